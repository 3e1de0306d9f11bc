//! Generated inputs shared by the in-memory benchmarks.
#![allow(dead_code)]

use serde_json::{Map, Value};
use vss::secret::{SecretMap, SecretPath, SecretValue};

/// `secrets` secrets of `keys` string keys each; `salt` changes every value.
pub fn secrets(secrets: usize, keys: usize, salt: &str) -> SecretMap {
    (0..secrets)
        .map(|i| {
            let value: Map<String, Value> =
                (0..keys).map(|k| (format!("key{k}"), Value::String(format!("value-{i}-{k}-{salt}")))).collect();
            (
                SecretPath::parse(&format!("team{}/app{}/secret{i}", i % 10, i % 100)).unwrap(),
                SecretValue::new(Value::Object(value)),
            )
        })
        .collect()
}

/// A layer that changes one key of every `every`-th secret and adds a key to it.
pub fn overlay(base: &SecretMap, every: usize) -> SecretMap {
    base.iter()
        .enumerate()
        .filter(|(i, _)| i % every == 0)
        .map(|(_, (path, _))| {
            let mut value = Map::new();
            value.insert("key0".into(), Value::String("changed".into()));
            value.insert("extra".into(), Value::String("added".into()));
            (path.clone(), SecretValue::new(Value::Object(value)))
        })
        .collect()
}

/// A config of `targets` targets in inheritance chains of `depth`, each importing one of
/// `sources` sources.
pub fn config_text(targets: usize, sources: usize, depth: usize) -> String {
    let mut text = String::from("version: 1\nmerge_store: {file: {path: merged}}\nsources:\n");
    for s in 0..sources {
        text.push_str(&format!("  src{s}: {{file: {{path: sources/src{s}}}}}\n"));
    }
    text.push_str("targets:\n");
    for t in 0..targets {
        text.push_str(&format!("  t{t}:\n    imports: [src{}]\n", t % sources));
        if t % depth != 0 {
            text.push_str(&format!("    inherits: t{}\n", t - 1));
        }
        text.push_str(&format!("    file: {{path: out/t{t}}}\n"));
    }
    text
}
