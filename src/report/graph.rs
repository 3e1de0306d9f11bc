//! `vss graph`: the resolved graph as text, Graphviz dot, or JSON.

use std::fmt::Write as _;

use serde_json::json;

use crate::config::Config;
use crate::config::model::Import;
use crate::graph::EdgeKind;

fn imports(config: &Config, imports: &[Import]) -> Vec<String> {
    imports
        .iter()
        .map(|i| match *i {
            Import::Source(s) => config.source(s).name.clone(),
            Import::Target(t) => config.target(t).name.clone(),
        })
        .collect()
}

/// Text: the execution order by level, each target with what it merges and where it goes.
pub fn text(config: &Config) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "sources:");
    for s in &config.sources {
        let _ = writeln!(out, "  {}  ({})", s.name, s.store.describe());
    }
    if let Some(store) = &config.merge_store {
        let _ = writeln!(out, "merge store: {}", store.describe());
    }
    for (level, targets) in config.graph.by_level().iter().enumerate() {
        let _ = writeln!(out, "level {level}:");
        for &id in targets {
            let t = config.target(id);
            let mut parts = Vec::new();
            if let Some(parent) = t.inherits {
                parts.push(format!("inherits {}", config.target(parent).name));
            }
            let names = imports(config, &t.imports);
            if !names.is_empty() {
                parts.push(format!("imports {}", names.join(", ")));
            }
            let dest =
                t.destination.as_ref().map_or("layer (not synced)".to_string(), |d| format!("-> {}", d.describe()));
            let _ = writeln!(out, "  {}  {}  {dest}", t.name, parts.join("; "));
        }
    }
    #[cfg(feature = "aws")]
    for d in &config.dynamic {
        let org = &d.discovery.organizations;
        let scope = if org.recursive == Some(true) { " and below" } else { "" };
        let _ =
            writeln!(out, "dynamic targets {}: one per account of {}{scope} (not discovered)", d.name, org.ou.value);
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz dot: sources as cylinders, targets as boxes (dashed for layers), edges from
/// what is needed to what needs it.
pub fn dot(config: &Config) -> String {
    let mut out = String::from("digraph vss {\n  rankdir=LR;\n");
    for s in &config.sources {
        let _ = writeln!(out, "  {} [shape=cylinder, label={}];", quote(&format!("source:{}", s.name)), quote(&s.name));
    }
    for t in &config.targets {
        let style = if t.destination.is_some() { "solid" } else { "dashed" };
        let _ = writeln!(
            out,
            "  {} [shape=box, style={style}, label={}];",
            quote(&format!("target:{}", t.name)),
            quote(&t.name)
        );
    }
    for t in &config.targets {
        let to = quote(&format!("target:{}", t.name));
        if let Some(parent) = t.inherits {
            let _ = writeln!(
                out,
                "  {} -> {to} [label=inherits];",
                quote(&format!("target:{}", config.target(parent).name))
            );
        }
        for import in &t.imports {
            let from = match *import {
                Import::Source(s) => format!("source:{}", config.source(s).name),
                Import::Target(x) => format!("target:{}", config.target(x).name),
            };
            let _ = writeln!(out, "  {} -> {to} [label=imports];", quote(&from));
        }
    }
    out.push_str("}\n");
    out
}

/// JSON: sources, merge store, targets with level, inherits, imports and destination, and
/// the execution order.
pub fn json(config: &Config) -> String {
    let targets: Vec<serde_json::Value> = config
        .graph
        .order
        .iter()
        .map(|&id| {
            let t = config.target(id);
            json!({
                "name": t.name,
                "level": config.graph.levels[id.0],
                "inherits": t.inherits.map(|p| config.target(p).name.clone()),
                "imports": imports(config, &t.imports),
                "destination": t.destination.as_ref().map(|d| d.describe()),
            })
        })
        .collect();
    let edges: Vec<serde_json::Value> = config
        .graph
        .dependencies
        .iter()
        .map(|d| {
            json!({
                "from": config.target(d.from).name,
                "to": config.target(d.to).name,
                "kind": match d.kind { EdgeKind::Inherits => "inherits", EdgeKind::Imports => "imports" },
            })
        })
        .collect();
    let doc = json!({
        "sources": config.sources.iter().map(|s| json!({"name": s.name, "store": s.store.describe()})).collect::<Vec<_>>(),
        "merge_store": config.merge_store.as_ref().map(|m| m.describe()),
        "targets": targets,
        "dependencies": edges,
        "order": config.graph.order.iter().map(|&id| config.target(id).name.clone()).collect::<Vec<_>>(),
    });
    #[cfg(feature = "aws")]
    let doc = {
        let mut doc = doc;
        if !config.dynamic.is_empty() {
            doc["dynamic_targets"] = config
                .dynamic
                .iter()
                .map(|d| json!({"name": d.name, "ou": d.discovery.organizations.ou.value, "discovered": false}))
                .collect();
        }
        doc
    };
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON serializes");
    text.push('\n');
    text
}
