//! `vss plan -o` / `vss apply`: a plan applied unchanged writes exactly its changes; a
//! plan whose sources, config or live secrets changed writes nothing and names what went
//! stale. On the `file` store here; on real OpenBao in `vault.rs`.

use crate::common::{Vss, Workspace};
use serde_json::Value;

const KEY: &str = "plan-test-key-0123456789";

const CONFIG: &str = r#"
version: 1
merge_store: { file: { path: out/merged } }
pipeline: { sync: { delete_orphans: true } }
sources:
  common: { file: { path: src/common.yaml } }
  prod:   { file: { path: src/prod.yaml } }
targets:
  Base: { imports: [common] }
  Production:
    inherits: Base
    imports: [prod]
    file: { path: out/production }
"#;

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("vss.yaml", CONFIG);
    ws.write("src/common.yaml", "app/db: {user: app, password: canary-base-7f3a}\nold: {x: 1}\n");
    ws.write("src/prod.yaml", "app/db: {password: canary-prod-91c2}\napi: {key: canary-api-55d0}\n");
    ws
}

fn vss(ws: &Workspace, args: &[&str]) -> crate::common::Run {
    Vss::new().cwd(ws.dir.path()).env("VSS_FINGERPRINT_KEY", KEY).args(args).run()
}

/// Every file below `out/`, with its content.
fn snapshot(ws: &Workspace) -> Vec<(String, String)> {
    ws.files("out")
        .into_iter()
        .map(|f| (f.clone(), std::fs::read_to_string(ws.path(&format!("out/{f}"))).unwrap()))
        .collect()
}

/// A JSON report without its timings.
fn without_times(mut report: Value) -> Value {
    report["stats"]["duration_ms"] = Value::Null;
    for t in report["targets"].as_array_mut().unwrap() {
        t["duration_ms"] = Value::Null;
    }
    report
}

/// `(target, phase, path, kind)` of every change a plan file lists.
fn planned(plan: &Value) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for t in plan["targets"].as_array().unwrap() {
        for c in t["changes"].as_array().unwrap() {
            let s = |v: &Value| v.as_str().unwrap().to_string();
            out.push((s(&t["target"]), s(&t["phase"]), s(&c["path"]), s(&c["kind"])));
        }
    }
    out.sort();
    out
}

/// `(target, phase, path, kind)` of every change a JSON report lists with `status`.
fn reported(report: &Value, status: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for t in report["targets"].as_array().unwrap() {
        for c in t["changes"].as_array().unwrap().iter().filter(|c| c["status"] == status) {
            let s = |v: &Value| v.as_str().unwrap().to_string();
            out.push((s(&t["name"]), s(&t["phase"]), s(&c["path"]), s(&c["change"])));
        }
    }
    out.sort();
    out
}

#[test]
fn a_plan_applied_unchanged_writes_exactly_its_changes_and_holds_no_value() {
    let ws = workspace();
    // A first run leaves `old` owned by Production; the plan then deletes it.
    assert_eq!(vss(&ws, &["pipeline"]).code, 0);
    ws.write("src/common.yaml", "app/db: {user: app, password: canary-base-7f3a}\n");
    ws.write(
        "src/prod.yaml",
        "app/db: {password: canary-prod-NEW1}\napi: {key: canary-api-55d0}\nnew: {k: canary-new-0b9e}\n",
    );

    let dry = vss(&ws, &["pipeline", "--dry-run", "--output", "json"]);
    let out = vss(&ws, &["plan", "-o", "plan.json", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(without_times(out.json()), without_times(dry.json()), "plan reports like the dry run");
    assert!(
        out.stderr.contains("plan written to plan.json: 7 changes; apply it with `vss apply plan.json`"),
        "{}",
        out.stderr
    );
    let text = std::fs::read_to_string(ws.path("plan.json")).unwrap();
    for canary in ["canary-base-7f3a", "canary-prod-NEW1", "canary-api-55d0", "canary-new-0b9e", "canary-prod-91c2"] {
        assert!(!text.contains(canary), "the plan holds a value: {text}");
    }
    let plan: Value = serde_json::from_str(&text).unwrap();
    let schema = crate::schemas::validator("schemas/plan.schema.json");
    assert!(schema.is_valid(&plan), "{plan:#}");
    assert_eq!(planned(&plan), reported(&dry.json(), "planned"));
    assert!(planned(&plan).contains(&("Production".into(), "sync".into(), "old".into(), "removed".into())));
    let modified = &plan["targets"][2]["changes"][0];
    assert_eq!((modified["path"].as_str(), modified["kind"].as_str()), (Some("app/db"), Some("modified")));
    assert!(modified["desired"].as_str().unwrap().starts_with("hmac:"), "{modified}");
    assert!(modified["live"]["fingerprint"].as_str().unwrap().starts_with("hmac:"), "{modified}");
    assert_eq!(modified["keys_modified"], serde_json::json!(["password"]));

    let applied = vss(&ws, &["apply", "plan.json", "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert_eq!(reported(&applied.json(), "applied"), planned(&plan), "apply writes exactly the plan");
    let calls = &applied.json()["stats"]["calls"]["file"];
    assert_eq!((calls["write"].as_u64(), calls["delete"].as_u64()), (Some(4), Some(3)), "{}", applied.stdout);
    assert_eq!(ws.read_json("out/production/new.json")["k"], "canary-new-0b9e");
    assert!(!ws.path("out/production/old.json").exists());

    // Applied again, the plan is stale everywhere (nothing left to do): nothing written.
    let again = vss(&ws, &["apply", "plan.json", "--output", "json"]);
    assert_eq!(again.code, 2, "{}", again.transcript());
    assert_eq!(again.json()["errors"][0]["kind"], "stale");
    let next = vss(&ws, &["plan", "-o", "next.json", "--exit-code", "--output", "compact"]);
    assert_eq!((next.code, next.stdout.as_str()), (0, "ZERO-SUM: 7 unchanged\n"), "{}", next.transcript());
    assert_eq!(vss(&ws, &["apply", "next.json", "--output", "compact"]).stdout, "ZERO-SUM: 7 unchanged\n");
}

#[test]
fn a_plan_applied_after_a_source_changed_writes_nothing_and_names_the_stale_change() {
    let ws = workspace();
    assert_eq!(vss(&ws, &["pipeline"]).code, 0);
    ws.write("src/prod.yaml", "app/db: {password: canary-prod-v2}\napi: {key: canary-api-55d0}\n");
    assert_eq!(vss(&ws, &["plan", "-o", "plan.json"]).code, 0);
    ws.write("src/prod.yaml", "app/db: {password: canary-prod-v3}\napi: {key: canary-api-55d0}\n");
    let before = snapshot(&ws);
    let out = vss(&ws, &["apply", "plan.json", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert_eq!(snapshot(&ws), before, "nothing written");
    let report = out.json();
    let errors = report["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["kind"] == "stale"), "{report:#}");
    let message = errors.iter().find(|e| e["target"] == "Production").unwrap()["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("the plan no longer holds: `Production` (merge) `app/db`: the desired value changed (hmac:"),
        "{message}"
    );
    assert!(!out.stdout.contains("canary") && !out.stderr.contains("canary"), "{}", out.transcript());

    // A secret edited at the target behind the plan's back: its live fingerprint differs.
    ws.write("src/prod.yaml", "app/db: {password: canary-prod-v2}\napi: {key: canary-api-55d0}\n");
    ws.write("out/production/api.json", r#"{"key": "edited by hand"}"#);
    assert_eq!(vss(&ws, &["plan", "-o", "plan.json"]).code, 0);
    ws.write("out/production/api.json", r#"{"key": "edited again"}"#);
    let before = snapshot(&ws);
    let out = vss(&ws, &["apply", "plan.json", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert_eq!(snapshot(&ws), before, "nothing written");
    let text = out.json()["errors"].to_string();
    assert!(text.contains("`Production` (sync) `api`: the live secret changed (hmac:"), "{text}");
    // The same plan, once the target is back as planned, applies.
    ws.write("out/production/api.json", r#"{"key": "edited by hand"}"#);
    let out = vss(&ws, &["apply", "plan.json", "--output", "compact"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, "APPLIED: +0 ~3 -0 =5\n"), "{}", out.transcript());
}

#[test]
fn a_plan_is_refused_for_another_config_key_or_format_and_needs_a_key() {
    let ws = workspace();
    let keyless = Vss::new().cwd(ws.dir.path()).args(["plan", "-o", "plan.json"]).run();
    assert_eq!(keyless.code, 2, "{}", keyless.transcript());
    assert!(keyless.stderr.contains("vss plan needs VSS_FINGERPRINT_KEY"), "{}", keyless.stderr);
    assert!(!ws.path("plan.json").exists());

    assert_eq!(vss(&ws, &["plan", "-o", "plan.json"]).code, 0);
    let other_key =
        Vss::new().cwd(ws.dir.path()).env("VSS_FINGERPRINT_KEY", "another").args(["apply", "plan.json"]).run();
    assert_eq!(other_key.code, 2);
    assert!(other_key.stderr.contains("the plan was made with another VSS_FINGERPRINT_KEY"), "{}", other_key.stderr);

    ws.write("vss.yaml", &format!("{CONFIG}# a comment\n"));
    let changed = vss(&ws, &["apply", "plan.json"]);
    assert_eq!(changed.code, 2);
    assert!(changed.stderr.contains("vss.yaml changed since the plan was made (SHA-256 "), "{}", changed.stderr);
    assert!(!ws.path("out").exists(), "nothing written");

    ws.write("broken.json", "{\"format\": 7}");
    let future = vss(&ws, &["apply", "broken.json"]);
    assert_eq!(future.code, 2);
    assert!(future.stderr.contains("plan file format 7 is not the one this vss reads (1)"), "{}", future.stderr);

    // A run with an error makes no plan.
    ws.write("vss.yaml", CONFIG);
    std::fs::remove_file(ws.path("src/prod.yaml")).unwrap();
    let failed = vss(&ws, &["plan", "-o", "failed.json"]);
    assert_eq!(failed.code, 2, "{}", failed.transcript());
    assert!(failed.stderr.contains("no plan written to failed.json"), "{}", failed.stderr);
    assert!(!ws.path("failed.json").exists());
}
