//! The committed JSON Schemas match the code, and real reports validate against theirs.
//! Regenerate with `UPDATE_SCHEMAS=1 cargo test --test it schemas::`.

use std::path::Path;

fn check(file: &str, generated: String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    if std::env::var_os("UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{file} is stale: run `UPDATE_SCHEMAS=1 cargo test --test it schemas::` and commit it"
    );
}

#[test]
fn config_schema_is_current() {
    check("schemas/vss.schema.json", vss::config::raw::config_schema());
}

#[test]
fn report_schema_is_current() {
    check("schemas/report.schema.json", vss::report::report_schema());
}

#[test]
fn status_schema_is_current() {
    check("schemas/status.schema.json", vss::status::status_schema());
}

#[test]
fn explain_schema_is_current() {
    check("schemas/explain.schema.json", vss::provenance::explain_schema());
}

#[test]
fn plan_schema_is_current() {
    check("schemas/plan.schema.json", vss::plan_file::plan_schema());
}

#[test]
fn audit_schema_is_current() {
    check("schemas/audit.schema.json", vss::audit::audit_schema());
}

pub fn validator(file: &str) -> jsonschema::Validator {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

#[test]
fn real_reports_validate_against_the_report_schema() {
    let schema = validator("schemas/report.schema.json");
    let ws = crate::common::Workspace::new();
    ws.write("a.yaml", "app/db: {user: u, password: p}\nlist: {x: [1]}\n");
    ws.write("b.yaml", "app/db: {password: q}\n");
    ws.write(
        "vss.yaml",
        "merge_store: {file: {path: merged}}\npipeline: {sync: {delete_orphans: true}}\nsources:\n  a: {file: {path: a.yaml}}\n  b: {file: {path: b.yaml}}\n  broken: {file: {path: broken.json}}\ntargets:\n  T: {imports: [a, b], file: {path: out}}\n  F: {imports: [broken], file: {path: out-f}}\n",
    );
    ws.write("broken.json", "{not json");
    let mut reports = Vec::new();
    for args in [
        vec!["pipeline", "--dry-run", "--output", "json"],
        vec!["pipeline", "--output", "json", "--show-unchanged"],
        vec!["pipeline", "--dry-run", "--output", "json", "--show-unchanged"],
    ] {
        reports.push(ws.vss(&args).json());
    }
    ws.write("a.yaml", "app/db: {user: u, password: p}\n");
    ws.write("b.yaml", "other: {k: 1}\n");
    reports.push(ws.vss(["pipeline", "--output", "json"]).json());
    ws.write("vss.yaml", "targets: {T: {imports: [nope]}}\n");
    reports.push(ws.vss(["pipeline", "--output", "json"]).json());
    for report in &reports {
        let errors: Vec<String> = schema.iter_errors(report).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{errors:#?}\n{report:#}");
    }
    // The runs above cover every change kind, a failed target and a config error.
    let kinds: std::collections::BTreeSet<String> = reports
        .iter()
        .flat_map(|r| r["targets"].as_array().unwrap().iter().flat_map(|t| t["changes"].as_array().unwrap().iter()))
        .map(|c| c["change"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), ["added", "modified", "removed", "unchanged"]);
    assert!(reports.iter().any(|r| r["summary"]["failed_targets"] == 1));
    assert!(reports.iter().any(|r| r["errors"].as_array().unwrap().iter().any(|e| e.get("line").is_some())));
}

#[test]
fn examples_validate_against_the_config_schema() {
    let schema = validator("schemas/vss.schema.json");
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // examples/workflows: GitHub Actions workflows
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let value = vss::yaml::parse(&text).unwrap().to_json();
        let errors: Vec<String> = schema.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}
