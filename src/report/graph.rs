//! `vss graph`: the resolved graph as text, Graphviz dot, or JSON.

use std::fmt::Write as _;

use serde_json::json;

use crate::config::model::Import;
use crate::graph::EdgeKind;
use crate::plan::Plan;

fn imports(plan: &Plan<'_>, imports: &[Import]) -> Vec<String> {
    imports
        .iter()
        .map(|i| match *i {
            Import::Source(s) => plan.source(s).name.clone(),
            Import::Target(t) => plan.target(t).name.clone(),
        })
        .collect()
}

/// Text: the execution order by level, each target with what it merges and where it goes.
pub fn text(plan: &Plan<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "sources:");
    for s in &plan.config.sources {
        let _ = writeln!(out, "  {}  ({})", s.name, s.store.describe());
    }
    if let Some(store) = &plan.config.merge_store {
        let _ = writeln!(out, "merge store: {}", store.describe());
    }
    for (level, targets) in plan.graph.by_level().iter().enumerate() {
        let _ = writeln!(out, "level {level}:");
        for &id in targets {
            let t = plan.target(id);
            let mut parts = Vec::new();
            if let Some(parent) = t.inherits {
                parts.push(format!("inherits {}", plan.target(parent).name));
            }
            let names = imports(plan, &t.imports);
            if !names.is_empty() {
                parts.push(format!("imports {}", names.join(", ")));
            }
            let defaults = &plan.config.defaults;
            let dest = t.destination.as_ref().map_or("layer (not synced)".to_string(), |d| match d.route(defaults) {
                Some(route) => format!("-> {} {route}", d.describe()),
                None => format!("-> {}", d.describe()),
            });
            let _ = writeln!(out, "  {}  {}  {dest}", t.name, parts.join("; "));
        }
    }
    for (name, discovery) in plan.undiscovered() {
        let _ = writeln!(out, "dynamic targets {name}: {discovery} (not discovered)");
    }
    out
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz dot: sources as cylinders, targets as boxes (dashed for layers), edges from
/// what is needed to what needs it.
pub fn dot(plan: &Plan<'_>) -> String {
    let mut out = String::from("digraph vss {\n  rankdir=LR;\n");
    for s in &plan.config.sources {
        let _ = writeln!(out, "  {} [shape=cylinder, label={}];", quote(&format!("source:{}", s.name)), quote(&s.name));
    }
    for t in &plan.targets {
        let style = if t.destination.is_some() { "solid" } else { "dashed" };
        let _ = writeln!(
            out,
            "  {} [shape=box, style={style}, label={}];",
            quote(&format!("target:{}", t.name)),
            quote(&t.name)
        );
    }
    for t in &plan.targets {
        let to = quote(&format!("target:{}", t.name));
        if let Some(parent) = t.inherits {
            let _ =
                writeln!(out, "  {} -> {to} [label=inherits];", quote(&format!("target:{}", plan.target(parent).name)));
        }
        for import in &t.imports {
            let from = match *import {
                Import::Source(s) => format!("source:{}", plan.source(s).name),
                Import::Target(x) => format!("target:{}", plan.target(x).name),
            };
            let _ = writeln!(out, "  {} -> {to} [label=imports];", quote(&from));
        }
    }
    out.push_str("}\n");
    out
}

/// JSON: sources, merge store, targets with level, inherits, imports (with
/// `import_options` and `inherits_options` when they select or rename), `include` /
/// `exclude` / `delete_orphans` when set, and destination, and the execution order.
pub fn json(plan: &Plan<'_>) -> String {
    let targets: Vec<serde_json::Value> = plan
        .graph
        .order
        .iter()
        .map(|&id| {
            let t = plan.target(id);
            let mut target = json!({
                "name": t.name,
                "level": plan.graph.levels[id.0],
                "inherits": t.inherits.map(|p| plan.target(p).name.clone()),
                "imports": imports(plan, &t.imports),
                "destination": t.destination.as_ref().map(|d| d.describe()),
            });
            if let Some(route) = t.destination.as_ref().and_then(|d| d.route(&plan.config.defaults)) {
                target["route"] = json!(route);
            }
            // What each import takes and how it renames it, aligned with `imports`.
            if t.selections.iter().any(|s| !s.is_identity()) {
                target["import_options"] = t.selections.iter().map(|s| s.describe()).collect();
            }
            if !t.inherit_selection.is_identity() {
                target["inherits_options"] = t.inherit_selection.describe();
            }
            if let Some(accepts) = t.accepts.describe().as_object().filter(|a| !a.is_empty()) {
                for (key, value) in accepts {
                    target[key] = value.clone();
                }
            }
            if let Some(delete_orphans) = t.delete_orphans {
                target["delete_orphans"] = json!(delete_orphans);
            }
            target
        })
        .collect();
    let edges: Vec<serde_json::Value> = plan
        .graph
        .dependencies
        .iter()
        .map(|d| {
            json!({
                "from": plan.target(d.from).name,
                "to": plan.target(d.to).name,
                "kind": match d.kind { EdgeKind::Inherits => "inherits", EdgeKind::Imports => "imports" },
            })
        })
        .collect();
    let doc = json!({
        "sources": plan.config.sources.iter().map(|s| json!({"name": s.name, "store": s.store.describe()})).collect::<Vec<_>>(),
        "merge_store": plan.config.merge_store.as_ref().map(|m| m.describe()),
        "targets": targets,
        "dependencies": edges,
        "order": plan.graph.order.iter().map(|&id| plan.target(id).name.clone()).collect::<Vec<_>>(),
    });
    let mut doc = doc;
    let undiscovered = plan.undiscovered();
    if !undiscovered.is_empty() {
        doc["dynamic_targets"] = undiscovered
            .into_iter()
            .map(|(name, discovery)| json!({"name": name, "discovery": discovery, "discovered": false}))
            .collect();
    }
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON serializes");
    text.push('\n');
    text
}
