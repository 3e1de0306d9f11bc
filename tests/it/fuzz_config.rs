//! Fuzzing the config loader: a structure-aware generator of YAML configs (valid ones,
//! broken ones, deeply nested, large, with anchors, aliases and merge keys, duplicate
//! keys, unknown keys at every level, variables, and cut or corrupted text) through
//! `load` (parse, validate, graph). Whatever the input: no panic, and every error that
//! has a location points inside the text, on a character boundary, and renders.
//!
//! The default test run makes a few hundred cases; `VSS_FUZZ_CASES=100000 cargo test
//! --test it fuzz_config` makes a long run.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Keys the config knows, at every level, and a few it does not.
const KEYS: &[&str] = &[
    "version",
    "vault",
    "aws",
    "github",
    "merge_store",
    "pipeline",
    "audit",
    "ensure",
    "merge",
    "source",
    "sources",
    "targets",
    "dynamic_targets",
    "file",
    "path",
    "mount",
    "prefix",
    "address",
    "auth",
    "token",
    "imports",
    "inherits",
    "account_id",
    "region",
    "repo",
    "org",
    "scope",
    "environment",
    "names",
    "sync",
    "enabled",
    "parallel",
    "delete_orphans",
    "max_deletes",
    "count",
    "percent",
    "protect",
    "allow_emptying",
    "allow_empty",
    "timeouts",
    "connect",
    "request",
    "lists",
    "null",
    "bucket",
    "endpoint_url",
    "env",
    "json",
    "repositories",
    "T",
    "Base",
    "common",
    "a",
    "b",
    "unknwon",
    "imprts",
    "<<",
];

/// Scalars: names, numbers, variables, paths, quoted and odd text.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS).prop_map(str::to_string),
        (0u64..200).prop_map(|n| n.to_string()),
        Just("${X}".to_string()),
        Just("${X:-dflt}".to_string()),
        Just("$${X}".to_string()),
        Just("secret/../x".to_string()),
        Just("\"quoted: text\"".to_string()),
        Just("'single'".to_string()),
        Just("~".to_string()),
        Just("true".to_string()),
        Just("12345678901234567890123".to_string()),
        Just("1.10".to_string()),
        Just("!!str 5".to_string()),
        Just("!include x".to_string()),
        Just("\"\\u00e9\\t\"".to_string()),
        "[a-z0-9/_.*-]{0,12}",
    ]
}

/// A YAML node as text, at an indentation, in block or flow style.
#[derive(Clone, Debug)]
enum Node {
    Scalar(String),
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Anchor(String, Box<Node>),
    Alias(String),
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        4 => scalar().prop_map(Node::Scalar),
        1 => prop::sample::select(&["a", "b"][..]).prop_map(|a| Node::Alias(a.to_string())),
    ];
    leaf.prop_recursive(7, 64, 6, |inner| {
        prop_oneof![
            4 => prop::collection::vec((prop::sample::select(KEYS).prop_map(str::to_string), inner.clone()), 0..6)
                .prop_map(Node::Map),
            2 => prop::collection::vec(inner.clone(), 0..4).prop_map(Node::Seq),
            1 => (prop::sample::select(&["a", "b"][..]), inner).prop_map(|(a, n)| Node::Anchor(a.to_string(), Box::new(n))),
        ]
    })
}

fn render(node: &Node, indent: usize, flow: bool, out: &mut String) {
    let pad = " ".repeat(indent);
    match node {
        Node::Scalar(text) => out.push_str(text),
        Node::Alias(name) => {
            out.push('*');
            out.push_str(name);
        }
        Node::Anchor(name, inner) => {
            out.push('&');
            out.push_str(name);
            out.push(' ');
            render(inner, indent, true, out);
        }
        Node::Map(entries) if flow || entries.is_empty() => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(key);
                out.push_str(": ");
                render(value, indent, true, out);
            }
            out.push('}');
        }
        Node::Map(entries) => {
            for (key, value) in entries {
                out.push('\n');
                out.push_str(&pad);
                out.push_str(key);
                out.push(':');
                match value {
                    Node::Map(m) if !m.is_empty() => render(value, indent + 2, false, out),
                    _ => {
                        out.push(' ');
                        render(value, indent + 2, true, out);
                    }
                }
            }
        }
        Node::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(item, indent, true, out);
            }
            out.push(']');
        }
    }
}

/// A config: a top-level mapping, sometimes with a valid skeleton, then sometimes cut,
/// corrupted, repeated (large) or nested very deep.
fn config() -> impl Strategy<Value = String> {
    let skeleton = prop_oneof![
        Just(String::new()),
        Just("source: {file: {path: s.yaml}}\ntargets:\n  T: {file: {path: out}}\n".to_string()),
        Just("sources: {s: {vault: {path: secret/s}}}\ntargets:\n  Base: {imports: [s]}\n  P: {inherits: Base, vault: {path: secret/p}}\n".to_string()),
    ];
    let top = prop::collection::vec((prop::sample::select(KEYS).prop_map(str::to_string), node()), 0..8);
    let mutation = prop_oneof![
        4 => Just(None),
        1 => (0usize..400).prop_map(|at| Some(("cut", at, 0u8))),
        1 => (0usize..400, any::<u8>()).prop_map(|(at, byte)| Some(("insert", at, byte))),
        1 => (0usize..4).prop_map(|n| Some(("repeat", n, 0u8))),
        1 => (50usize..300).prop_map(|depth| Some(("deep", depth, 0u8))),
    ];
    (skeleton, top, mutation).prop_map(|(skeleton, top, mutation)| {
        let mut text = skeleton;
        for (key, value) in &top {
            let mut line = format!("{key}:");
            match value {
                Node::Map(m) if !m.is_empty() => render(value, 2, false, &mut line),
                _ => {
                    line.push(' ');
                    render(value, 2, true, &mut line);
                }
            }
            text.push_str(&line);
            text.push('\n');
        }
        match mutation {
            Some(("cut", at, _)) => {
                let mut at = at.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.truncate(at);
            }
            Some(("insert", at, byte)) => {
                let mut at = at.min(text.len());
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                text.insert(at, char::from(byte));
            }
            Some(("repeat", n, _)) => text = text.repeat(n * 50 + 2),
            Some(("deep", depth, _)) => {
                text.push_str(&format!("targets: {}x{}\n", "[".repeat(depth), "]".repeat(depth)));
            }
            _ => {}
        }
        text
    })
}

fn cases() -> u32 {
    std::env::var("VSS_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(384)
}

#[test]
fn the_config_loader_never_panics_and_locates_every_error() {
    let mut runner = TestRunner::new(Config { cases: cases(), failure_persistence: None, ..Config::default() });
    use std::cell::Cell;
    let (valid, located, global) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    runner
        .run(&config(), |text| {
            let env = |name: &str| (name == "X").then(|| "x".to_string());
            match vss::config::load_str("fuzz.yaml", text.clone(), std::path::Path::new("."), &env) {
                Ok(_) => valid.set(valid.get() + 1),
                Err(error) => {
                    prop_assert!(!error.diagnostics.is_empty(), "an error says what is wrong");
                    for d in &error.diagnostics {
                        match d.span {
                            Some(span) => {
                                located.set(located.get() + 1);
                                prop_assert!(span.start <= span.end && span.end <= text.len(), "{d:?} in {text:?}");
                                prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
                            }
                            None => global.set(global.get() + 1),
                        }
                    }
                    let rendered = error.to_string();
                    prop_assert!(!rendered.is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
    let (valid, located, global) = (valid.get(), located.get(), global.get());
    eprintln!("{} cases: {valid} valid, {located} located errors, {global} errors about the whole file", cases());
    assert!(valid > 0 && located > 0, "the generator reaches both valid and broken configs");
}

#[test]
fn a_config_that_is_not_utf8_is_one_located_error() {
    let ws = crate::common::Workspace::new();
    std::fs::write(ws.path("vss.yaml"), b"targets:\n  T: {file: {path: o\xff\xfeut}}\n").unwrap();
    let run = ws.vss(["validate", "--config", "vss.yaml"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(run.stderr.contains("vss.yaml"), "{}", run.stderr);
}
