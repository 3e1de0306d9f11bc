//! The README's quick start, on a copy of `examples/quickstart.yaml` and its fixtures: the
//! dry run finds changes and writes nothing, the apply writes the merged targets, and the
//! dry run after it is zero-sum.

use std::path::Path;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn quickstart_dry_run_apply_zero_sum() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ws = crate::common::Workspace::new();
    copy_dir(&root.join("examples"), &ws.path("examples"));
    copy_dir(&root.join("fixtures/sources"), &ws.path("fixtures/sources"));
    let config = ["--config", "examples/quickstart.yaml"];

    let dry = ws.vss([&["pipeline", "--dry-run", "--exit-code"][..], &config].concat());
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    assert!(dry.stdout.starts_with("CHANGES (dry run, nothing written)"), "{}", dry.stdout);
    assert!(!ws.path("target").exists());

    let apply = ws.vss([&["pipeline"][..], &config].concat());
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(
        ws.read_json("target/quickstart/production/app/config.json"),
        serde_json::json!({
            "database": {"host": "db.prod.internal", "pool": 50, "port": 5432},
            "features": ["audit", "metrics", "tracing"],
            "log_level": "warn"
        })
    );
    assert_eq!(
        ws.read_json("target/quickstart/staging/app/config.json")["features"],
        serde_json::json!(["audit", "metrics", "tracing"])
    );
    assert_eq!(ws.read_json("target/quickstart/staging/app/db.json")["password"], "example-staging-password");

    let again = ws.vss([&["pipeline", "--dry-run", "--exit-code", "--output", "compact"][..], &config].concat());
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(again.stdout, "ZERO-SUM: 18 unchanged\n");
}
