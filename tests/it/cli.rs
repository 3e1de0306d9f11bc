//! `vss graph` and `vss version` output, locked by snapshots.

use crate::common::Vss;

fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn graph_formats() {
    for format in ["text", "dot", "json"] {
        let run =
            Vss::new().cwd(root()).args(["graph", "--config", "examples/quickstart.yaml", "--format", format]).run();
        assert_eq!(run.code, 0, "{}", run.transcript());
        insta::assert_snapshot!(format!("graph_{format}"), run.stdout);
    }
}

#[test]
fn version_names_the_stores() {
    let run = Vss::new().args(["version"]).run();
    assert_eq!(run.code, 0);
    let mut lines = run.stdout.lines();
    assert!(lines.next().unwrap().starts_with(&format!("vss {} (commit ", env!("CARGO_PKG_VERSION"))));
    assert_eq!(lines.next(), Some(format!("stores: {}", vss::store::StoreConfig::KINDS.join(", ")).as_str()));
    // The compiled-in stores are exactly the built features' stores, in list order.
    let mut expected = vec!["file"];
    if cfg!(feature = "vault") {
        expected.push("vault");
    }
    if cfg!(feature = "aws") {
        expected.extend(["aws", "s3"]);
    }
    if cfg!(feature = "github") {
        expected.push("github");
    }
    if cfg!(feature = "gcp") {
        expected.push("gcp");
    }
    if cfg!(feature = "kubernetes") {
        expected.push("kubernetes");
    }
    expected.push("env");
    assert_eq!(vss::store::StoreConfig::KINDS, expected.as_slice());
}

#[test]
fn verbose_logs_go_to_stderr_and_quiet_silences_them() {
    let ws = crate::common::Workspace::new();
    ws.write("s.yaml", "a: {b: 1}\n");
    ws.write("vss.yaml", "source: {file: {path: s.yaml}}\ntargets: {T: {file: {path: out}}}\n");
    let verbose = ws.vss(["-vv", "pipeline", "--output", "compact"]);
    assert_eq!(verbose.stdout, "APPLIED: +1 ~0 -0 =0\n", "stdout carries only the report");
    assert!(verbose.stderr.contains("starting the pipeline"), "{}", verbose.stderr);
    assert!(verbose.stderr.contains("write"), "{}", verbose.stderr);
    let quiet = ws.vss(["-q", "pipeline", "--output", "compact"]);
    assert_eq!(quiet.stderr, "");
    assert_eq!(quiet.stdout, "ZERO-SUM: 1 unchanged\n");
}

/// A target synced from `keep` and `gone`, then run again (JSON output) from `source`,
/// where `gone` is no longer desired (an owned orphan) and `blocked` cannot be written
/// because a directory stands where its file must go.
fn run_with_a_blocked_write(source: &str) -> (crate::common::Workspace, crate::common::Run) {
    let ws = crate::common::Workspace::new();
    ws.write("s.yaml", "keep: {v: 1}\ngone: {v: 1}\n");
    ws.write(
        "vss.yaml",
        "pipeline: {sync: {delete_orphans: true}}\nsource: {file: {path: s.yaml}}\ntargets: {T: {file: {path: out}}}\n",
    );
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    ws.write("s.yaml", source);
    std::fs::create_dir_all(ws.path("out/blocked.json/inside")).unwrap();
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    (ws, run)
}

#[test]
fn a_failed_write_skips_the_targets_deletes() {
    let (ws, run) = run_with_a_blocked_write("keep: {v: 1}\nblocked: {v: 2}\n");
    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("cannot write `blocked`") && message.ends_with("deletes skipped"), "{message}");
    assert!(ws.path("out/gone.json").exists(), "deletes run only after every write succeeded");
}

#[test]
fn github_output_stays_one_well_formed_command_per_line() {
    let ws = crate::common::Workspace::new();
    ws.write("s.yaml", "a: {b: 1}\n");
    ws.write("vss.yaml", "source: {file: {path: s.yaml}}\ntargets: {T: {file: {path: out}}}\n");
    let hostile = "T,::add-mask::x\n::error title=injected::owned\r\n%0A";
    let run = ws.vss(["pipeline", "--output", "github", "--targets", hostile]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one annotation, one line:\n{}", run.stdout);
    // The command and its properties end at the first `::`; everything after it is data, with
    // newlines, carriage returns and `%` escaped.
    assert!(lines[0].starts_with("::error title=vss::--targets: unknown target"), "{}", lines[0]);
    assert!(lines[0].ends_with("x%0A::error title=injected::owned%0D%0A%250A`"), "nothing injected: {}", lines[0]);
    // A config path with the same characters, in validate's notice.
    let dir = ws.path("odd::dir%");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("vss.yaml"), "source: {file: {path: ../s.yaml}}\ntargets: {T: {file: {path: out}}}\n")
        .unwrap();
    let run = ws.vss(["validate", "--output", "github", "--config", "odd::dir%/vss.yaml"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.stdout.starts_with("::notice title=vss::odd::dir%25/vss.yaml: valid"), "{}", run.stdout);
    assert_eq!(run.stdout.lines().count(), 1);
}

#[test]
fn a_partly_failed_target_reports_each_change() {
    let (ws, run) = run_with_a_blocked_write("keep: {v: 2}\nnew: {v: 1}\nblocked: {v: 2}\n");
    let report = run.json();
    let changes = &report["targets"][0]["changes"];
    let status = |path: &str| {
        let c = changes.as_array().unwrap().iter().find(|c| c["path"] == path).unwrap();
        (c["status"].as_str().unwrap().to_string(), c["error_kind"].as_str().map(str::to_string))
    };
    assert_eq!(status("blocked"), ("failed".to_string(), Some("io".to_string())), "{changes:#}");
    assert_eq!(status("keep"), ("applied".to_string(), None));
    assert_eq!(status("new"), ("applied".to_string(), None));
    assert_eq!(status("gone"), ("skipped".to_string(), None), "deletes wait for every write");
    let summary = &report["summary"];
    assert_eq!(
        (&summary["added"], &summary["modified"], &summary["removed"], &summary["failed"], &summary["skipped"]),
        (
            &serde_json::json!(1),
            &serde_json::json!(1),
            &serde_json::json!(0),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "summaries count what was applied: {summary}"
    );
    let compact = ws.vss(["pipeline", "--output", "compact"]);
    assert_eq!(compact.stdout, "FAILED: 1 error, +0 ~0 -0 =2\n", "{}", compact.transcript());
    let dry = ws.vss(["pipeline", "--dry-run", "--output", "json"]).json();
    let planned = dry["targets"][0]["changes"].as_array().unwrap().iter().all(|c| c["status"] == "planned");
    assert!(planned, "{dry:#}");
}
