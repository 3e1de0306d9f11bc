//! End-to-end pipelines on the `file` store, through the real binary: the issue's
//! "done means" scenario and the engine's behaviours (phases, subsets, failures, orphans).

use crate::common::Workspace;
use serde_json::{Value, json};

const CONFIG: &str = r#"
version: 1
merge_store:
  file: { path: out/merged }
pipeline:
  sync: { delete_orphans: true }
sources:
  common: { file: { path: src/common.yaml } }
  team:   { file: { path: src/team } }
  prod:   { file: { path: src/prod.json } }
  other:  { file: { path: src/other.yaml } }
targets:
  Base:
    imports: [common]
  Staging:
    inherits: Base
    imports: [team]
    file: { path: out/staging }
  Production:
    inherits: Staging
    imports: [prod]
    file: { path: out/production }
  Unrelated:
    imports: [other]
    file: { path: out/unrelated }
"#;

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("vss.yaml", CONFIG);
    ws.write(
        "src/common.yaml",
        "app/config:\n  level: info\n  hosts: [a, b]\n  db: {host: base, port: 5432}\napp/db:\n  user: app\n  password: base\n",
    );
    ws.write("src/team/app/config.json", r#"{"level": "debug", "hosts": ["c"], "db": {"host": "staging"}}"#);
    ws.write("src/team/api/stripe.yaml", "key: sk_test\n");
    ws.write(
        "src/prod.json",
        r#"{"app/config": {"level": "warn", "db": {"pool": 50}}, "app/db": {"password": "prod"}}"#,
    );
    ws.write("src/other.yaml", "solo:\n  x: 1\n");
    ws
}

fn changes(report: &Value, target: &str, phase: &str) -> Vec<Value> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == target && t["phase"] == phase)
        .unwrap_or_else(|| panic!("no {phase} entry for {target} in {report:#}"))["changes"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn dry_run_apply_zero_sum_and_one_changed_key() {
    let ws = workspace();

    // 1. The dry run finds changes (exit 1) and writes nothing.
    let dry = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    let report = dry.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["summary"]["added"], (2 + 3 + 3 + 1) + (3 + 3 + 1), "{report:#}");
    assert!(!ws.path("out").exists(), "a dry run must not write anything");
    assert_eq!(report["stats"]["calls"]["file"]["write"], 0);

    // 2. The apply writes exactly the deep-merged values.
    let apply = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(
        ws.read_json("out/production/app/config.json"),
        json!({"level": "warn", "hosts": ["a", "b", "c"], "db": {"host": "staging", "port": 5432, "pool": 50}}),
        "inheritance, list append and later-wins"
    );
    assert_eq!(ws.read_json("out/production/app/db.json"), json!({"user": "app", "password": "prod"}));
    assert_eq!(ws.read_json("out/production/api/stripe.json"), json!({"key": "sk_test"}));
    assert_eq!(
        ws.read_json("out/staging/app/config.json"),
        json!({"level": "debug", "hosts": ["a", "b", "c"], "db": {"host": "staging", "port": 5432}})
    );
    assert_eq!(ws.read_json("out/merged/Base/app/db.json"), json!({"user": "app", "password": "base"}));
    assert_eq!(ws.read_json("out/unrelated/solo.json"), json!({"x": 1}));
    assert_eq!(
        ws.files("out/production"),
        [".vss-managed.json", ".vss-managed.json.lock", "api/stripe.json", "app/config.json", "app/db.json"],
        "exactly the desired secrets, the ownership sidecar and its lock file"
    );
    assert_eq!(ws.read_json("out/production/.vss-managed.json")["secrets"]["app/db"]["vss-target"], "Production");

    // 3. The same dry run is now zero-sum, with zero writes.
    let again = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let report = again.json();
    assert_eq!(report["zero_sum"], true);
    assert_eq!(report["summary"]["added"].as_u64().unwrap() + report["summary"]["modified"].as_u64().unwrap(), 0);
    assert_eq!(report["stats"]["calls"]["file"]["write"], 0);
    assert_eq!(report["stats"]["calls"]["file"]["delete"], 0);
    // A real run on unchanged data writes nothing either.
    let noop = ws.vss(["pipeline", "--exit-code", "--output", "json"]);
    assert_eq!(noop.code, 0, "{}", noop.transcript());
    assert_eq!(noop.json()["stats"]["calls"]["file"]["write"], 0);

    // 4. One changed key in one source: exactly that key, in exactly the targets that
    //    import it (Base directly; Staging and Production through inheritance).
    ws.write(
        "src/common.yaml",
        "app/config:\n  level: info\n  hosts: [a, b]\n  db: {host: base, port: 5432}\napp/db:\n  user: app2\n  password: base\n",
    );
    let changed = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(changed.code, 1, "{}", changed.transcript());
    let report = changed.json();
    assert_eq!(report["summary"]["modified"], 5, "{report:#}");
    assert_eq!(report["summary"]["added"], 0);
    for (target, phase) in
        [("Base", "merge"), ("Staging", "merge"), ("Production", "merge"), ("Staging", "sync"), ("Production", "sync")]
    {
        let c = changes(&report, target, phase);
        assert_eq!(c.len(), 1, "{target} {phase}: {c:#?}");
        assert_eq!(c[0]["path"], "app/db");
        assert_eq!(c[0]["change"], "modified");
        assert_eq!(c[0]["keys_modified"], json!(["user"]));
        assert!(c[0].get("keys_added").is_none() && c[0].get("keys_removed").is_none());
        assert_ne!(c[0]["before"], c[0]["after"], "fingerprints differ");
    }
    assert!(changes(&report, "Unrelated", "sync").is_empty());
    assert!(changes(&report, "Unrelated", "merge").is_empty());
}

#[test]
fn bad_config_exits_2_with_a_location() {
    let ws = workspace();
    ws.write("vss.yaml", &CONFIG.replace("inherits: Base", "inherits: Bsae"));
    let run = ws.vss(["pipeline", "--dry-run", "--exit-code"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(run.stderr.contains("vss.yaml:16:15"), "{}", run.stderr);
    assert!(run.stderr.contains("did you mean `Base`?"), "{}", run.stderr);
    assert!(!ws.path("out").exists());
}

#[test]
fn orphans_are_deleted_only_when_owned_and_enabled() {
    let ws = workspace();
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    // Someone else's secret in the target is never touched.
    ws.write("out/production/manual.json", r#"{"keep": true}"#);
    // The source no longer has api/stripe: Staging and Production own it, so it goes.
    std::fs::remove_file(ws.path("src/team/api/stripe.yaml")).unwrap();
    let dry = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1);
    let report = dry.json();
    let prod = changes(&report, "Production", "sync");
    assert_eq!(prod.len(), 1);
    assert_eq!((prod[0]["path"].as_str(), prod[0]["change"].as_str()), (Some("api/stripe"), Some("removed")));
    let entry = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Production" && t["phase"] == "sync")
        .unwrap();
    assert_eq!(entry["summary"]["unmanaged"], 1);

    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert!(!ws.path("out/production/api/stripe.json").exists());
    assert!(!ws.path("out/merged/Production/api/stripe.json").exists(), "vanished paths leave the bundle");
    assert!(ws.path("out/production/manual.json").exists(), "unmanaged secrets are never deleted");

    // With delete_orphans off, owned orphans are kept and counted.
    ws.write("vss.yaml", &CONFIG.replace("delete_orphans: true", "delete_orphans: false"));
    std::fs::remove_file(ws.path("src/other.yaml")).unwrap();
    ws.write("src/other.yaml", "other:\n  y: 2\n");
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(ws.path("out/unrelated/solo.json").exists());
    let report = run.json();
    let entry = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Unrelated" && t["phase"] == "sync")
        .unwrap();
    assert_eq!(entry["summary"]["orphans"], 1, "{entry:#}");
}

#[test]
fn targets_subset_merges_ancestors_and_syncs_only_the_named() {
    let ws = workspace();
    let run = ws.vss(["pipeline", "--targets", "Staging", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let report = run.json();
    let entries: Vec<(String, String)> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["phase"].as_str().unwrap().to_string(), t["name"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        entries,
        [("merge".into(), "Base".into()), ("merge".into(), "Staging".into()), ("sync".into(), "Staging".into())]
    );
    assert!(ws.path("out/staging/app/db.json").exists());
    assert!(!ws.path("out/production").exists());
    assert!(!ws.path("out/unrelated").exists());

    let unknown = ws.vss(["pipeline", "--targets", "Prodution"]);
    assert_eq!(unknown.code, 2);
    assert!(unknown.stderr.contains("unknown target `Prodution` (did you mean `Production`?)"), "{}", unknown.stderr);
}

#[test]
fn merge_only_then_sync_only_from_bundles() {
    let ws = workspace();
    let merged = ws.vss(["pipeline", "--merge-only", "--output", "json"]);
    assert_eq!(merged.code, 0, "{}", merged.transcript());
    assert!(merged.json()["targets"].as_array().unwrap().iter().all(|t| t["phase"] == "merge"));
    assert!(ws.path("out/merged/Production/app/db.json").exists());
    assert!(!ws.path("out/production").exists());

    // SYNC alone reads the bundles, not the sources: a source change is not seen.
    ws.write("src/prod.json", r#"{"app/db": {"password": "changed"}}"#);
    let synced = ws.vss(["pipeline", "--sync-only", "--output", "json"]);
    assert_eq!(synced.code, 0, "{}", synced.transcript());
    assert!(synced.json()["targets"].as_array().unwrap().iter().all(|t| t["phase"] == "sync"));
    assert_eq!(ws.read_json("out/production/app/db.json"), json!({"user": "app", "password": "prod"}));

    let both = ws.vss(["pipeline", "--merge-only", "--sync-only"]);
    assert_eq!(both.code, 2, "the flags exclude each other");
}

#[test]
fn sync_only_without_a_bundle_fails_instead_of_wiping() {
    let ws = workspace();
    let run = ws.vss(["pipeline", "--sync-only", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report = run.json();
    assert_eq!(report["summary"]["failed_targets"], 3);
    assert!(report["errors"][0]["message"].as_str().unwrap().contains("run the merge phase first"), "{report:#}");
}

#[test]
fn without_a_merge_store_sync_reads_sources_directly() {
    let ws = workspace();
    let config = CONFIG.replace("merge_store:\n  file: { path: out/merged }\n", "");
    ws.write("vss.yaml", &config);
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.json()["targets"].as_array().unwrap().iter().all(|t| t["phase"] == "sync"));
    assert_eq!(ws.read_json("out/production/app/db.json"), json!({"user": "app", "password": "prod"}));
    assert!(!ws.path("out/merged").exists());
    let again = ws.vss(["pipeline", "--dry-run", "--exit-code"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn a_failing_target_is_reported_and_the_others_still_run() {
    let ws = workspace();
    ws.write("src/other.yaml", "this: [is: not valid yaml\n");
    let run = ws.vss(["pipeline", "--output", "json", "--exit-code"]);
    assert_eq!(run.code, 2, "errors win over changes: {}", run.transcript());
    let report = run.json();
    let failed: Vec<&str> =
        report["errors"].as_array().unwrap().iter().map(|e| e["target"].as_str().unwrap()).collect();
    assert_eq!(failed, ["Unrelated", "Unrelated"], "{report:#}");
    assert!(report["errors"][0]["message"].as_str().unwrap().contains("cannot read source `other`"));
    assert!(!ws.path("out/merged/Unrelated").exists(), "no bundle is written when an import failed");
    assert!(ws.path("out/production/app/db.json").exists(), "other targets still ran");
}

#[test]
fn single_file_targets_and_parallel_one() {
    let ws = workspace();
    ws.write("vss.yaml", &CONFIG.replace("out/production }", "out/production.yaml }"));
    let run = ws.vss(["pipeline", "--parallel", "1"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let text = std::fs::read_to_string(ws.path("out/production.yaml")).unwrap();
    assert!(text.contains("app/db:\n  password: \"prod\"\n  user: \"app\"\n"), "{text}");
    assert!(ws.path("out/.production.yaml.vss-managed.json").exists());
    let again = ws.vss(["pipeline", "--dry-run", "--exit-code", "--parallel", "1"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn other_outputs_report_the_same_run() {
    let ws = workspace();
    let compact = ws.vss(["pipeline", "--dry-run", "--output", "compact"]);
    assert_eq!(compact.stdout, "CHANGES: +16 ~0 -0 =0\n");
    let human = ws.vss(["pipeline", "--dry-run"]);
    assert!(human.stdout.starts_with("CHANGES (dry run, nothing written): 16 added"), "{}", human.stdout);
    assert!(human.stdout.contains("  + app/db  keys: password, user\n"), "{}", human.stdout);
    assert!(!human.stdout.contains('\x1b'), "no colour when stdout is not a terminal");
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    let zero = ws.vss(["pipeline", "--dry-run", "--output", "compact"]);
    assert_eq!(zero.stdout, "ZERO-SUM: 16 unchanged\n");
    let shown = ws.vss(["pipeline", "--dry-run", "--show-unchanged", "--output", "json"]);
    assert_eq!(changes(&shown.json(), "Production", "sync").len(), 3);
}

#[test]
fn github_output_groups_annotations_and_files() {
    let ws = workspace();
    let outputs = ws.path("gh-output");
    let summary = ws.path("gh-summary");
    let run = crate::common::Vss::new()
        .cwd(ws.dir.path())
        .args(["pipeline", "--dry-run", "--output", "github"])
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .run();
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(
        run.stdout.contains("::group::sync Production (file out/production) +3 ~0 -0 =0\n+ api/stripe\n"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("::endgroup::\n"));
    assert!(run.stdout.contains("::notice title=vss::would change: +16 ~0 -0 =0\n"), "{}", run.stdout);
    assert!(!run.stdout.contains("add-mask") && !run.stdout.contains("set-output"));
    assert_eq!(
        std::fs::read_to_string(&outputs).unwrap(),
        "changes=true\nadded=16\nmodified=0\nremoved=0\nzero_sum=false\nfailed_targets=0\n"
    );
    let table = std::fs::read_to_string(&summary).unwrap();
    assert!(table.contains("| Production | sync | ok | 3 | 0 | 0 | 0 |"), "{table}");

    ws.write("vss.yaml", &CONFIG.replace("imports: [team]", "imports: [teem]"));
    let bad = ws.vss(["validate", "--output", "github"]);
    assert_eq!(bad.code, 2);
    assert_eq!(
        bad.stdout,
        "::error file=vss.yaml,line=17,col=15,title=vss::unknown source or target `teem` (did you mean `team`?)\n"
    );
}

#[test]
fn phases_can_be_disabled_in_the_config() {
    let ws = workspace();
    ws.write(
        "vss.yaml",
        &CONFIG.replace("pipeline:\n  sync: { delete_orphans: true }", "pipeline:\n  sync: { enabled: false }"),
    );
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.json()["targets"].as_array().unwrap().iter().all(|t| t["phase"] == "merge"));
    assert!(ws.path("out/merged/Production").exists() && !ws.path("out/production").exists());

    // MERGE off with a merge store: SYNC reads the bundles written above.
    ws.write(
        "vss.yaml",
        &CONFIG.replace("pipeline:\n  sync: { delete_orphans: true }", "pipeline:\n  merge: { enabled: false }"),
    );
    ws.write("src/prod.json", r#"{"app/db": {"password": "not seen"}}"#);
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert!(run.json()["targets"].as_array().unwrap().iter().all(|t| t["phase"] == "sync"));
    assert_eq!(ws.read_json("out/production/app/db.json"), json!({"user": "app", "password": "prod"}));

    // Both off: nothing to run is an error, not a silent success.
    ws.write(
        "vss.yaml",
        &CONFIG.replace(
            "pipeline:\n  sync: { delete_orphans: true }",
            "pipeline:\n  merge: { enabled: false }\n  sync: { enabled: false }",
        ),
    );
    let run = ws.vss(["pipeline"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nothing to run"), "{}", run.stderr);
}

#[test]
fn fingerprints_are_stable_with_a_key_and_per_run_without() {
    let ws = workspace();
    let fingerprint = |key: Option<&str>| {
        let mut vss = crate::common::Vss::new().cwd(ws.dir.path()).args(["pipeline", "--dry-run", "--output", "json"]);
        if let Some(key) = key {
            vss = vss.env("VSS_FINGERPRINT_KEY", key);
        }
        let report = vss.run().json();
        changes(&report, "Production", "sync")[0]["after"].as_str().unwrap().to_string()
    };
    assert_eq!(fingerprint(Some("k1")), fingerprint(Some("k1")));
    assert_ne!(fingerprint(Some("k1")), fingerprint(Some("k2")));
    assert_ne!(fingerprint(None), fingerprint(None), "a random key per run");
    assert!(fingerprint(None).starts_with("hmac:"));
}

#[test]
fn hostile_yaml_sources_fail_their_targets_and_write_nothing() {
    let ws = Workspace::new();
    // Ten levels of nine aliases: billions of nodes if expanded.
    let mut bomb = String::from("x0: &a0 [lol]\n");
    for level in 1..=10 {
        bomb.push_str(&format!("x{level}: &a{level} [{}]\n", vec![format!("*a{}", level - 1); 9].join(", ")));
    }
    for (name, text, expected) in [
        ("bomb", bomb.as_str(), "aliases expand to more than"),
        ("tagged", "app: {path: !include other.yaml}\n", "unsupported YAML tag `!include`"),
        ("twice", "ok//two/: {v: 1}\nok/two: {v: 2}\n", "`ok//two/` and `ok/two` are the same secret `ok/two`"),
    ] {
        ws.write(&format!("{name}.yaml"), text);
        ws.write(
            "vss.yaml",
            &format!("source: {{file: {{path: {name}.yaml}}}}\ntargets: {{T: {{file: {{path: out-{name}}}}}}}\n"),
        );
        let run = ws.vss(["pipeline", "--output", "json"]);
        assert_eq!(run.code, 2, "{name}: {}", run.transcript());
        let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
        assert!(message.contains(expected), "{name}: {message}");
        assert!(!ws.path(&format!("out-{name}")).exists(), "{name}: nothing written");
    }
}

#[test]
fn a_missing_or_empty_source_fails_its_targets_and_deletes_nothing() {
    let ws = Workspace::new();
    ws.write("secrets/app.json", r#"{"k": "v"}"#);
    let config = |path: &str, extra: &str| {
        format!(
            "pipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{s: {{file: {{path: {path}}}{extra}}}}}\ntargets: {{T: {{imports: [s], file: {{path: out}}}}}}\n"
        )
    };
    let emptied = |path: &str, extra: &str| {
        config(path, extra).replace("file: {path: out}", "file: {path: out}, allow_emptying: true")
    };
    ws.write("vss.yaml", &config("secrets", ""));
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert!(ws.path("out/app.json").exists());
    // A typo in the path, and an empty directory: both fail, in a dry run too, and delete nothing.
    std::fs::create_dir_all(ws.path("empty")).unwrap();
    for path in ["secrest", "empty"] {
        ws.write("vss.yaml", &config(path, ""));
        for args in [&["pipeline", "--dry-run", "--output", "json"][..], &["pipeline", "--output", "json"][..]] {
            let run = ws.vss(args);
            assert_eq!(run.code, 2, "{path}: {}", run.transcript());
            let error = &run.json()["errors"][0];
            assert_eq!(error["kind"], "not_found", "{error}");
            assert!(
                error["message"].as_str().unwrap().contains(&format!("cannot read source `s` (file {path})")),
                "{error}"
            );
            assert!(error["hint"].as_str().unwrap().contains("allow_empty: true"), "{error}");
        }
        assert!(ws.path("out/app.json").exists(), "{path}: nothing deleted");
    }
    // An empty source said on purpose still empties a target only when the target says so too.
    ws.write("vss.yaml", &config("empty", ", allow_empty: true"));
    let refused = ws.vss(["pipeline", "--output", "json", "--allow-mass-delete"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let error = &refused.json()["errors"][0];
    assert_eq!(error["kind"], "refused", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("its desired state is empty: it would delete all 1 of the secrets vss owns here"),
        "{error}"
    );
    assert!(error["hint"].as_str().unwrap().contains("allow_emptying: true"), "{error}");
    assert!(ws.path("out/app.json").exists(), "nothing deleted");
    ws.write("vss.yaml", &emptied("empty", ", allow_empty: true"));
    let run = ws.vss(["pipeline", "--output", "compact"]);
    assert_eq!((run.code, run.stdout.as_str()), (0, "APPLIED: +0 ~0 -1 =0\n"), "{}", run.transcript());
    assert!(!ws.path("out/app.json").exists());
}

#[test]
fn the_audit_log_in_a_file_merge_store_keeps_every_event_of_concurrent_runs() {
    let ws = workspace();
    let config = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write("vss.yaml", &format!("audit: {{merge_store: vss-audit}}\n{config}"));
    let vss = || crate::common::Vss::new().cwd(ws.dir.path());
    // Each run: four merges (Base, Staging, Production, Unrelated) and three syncs.
    crate::common::audit_log_keeps_concurrent_runs(vss, 3, 7);
    let entries: Vec<String> = ws.files("out/merged/vss-audit").into_iter().filter(|f| !f.starts_with('.')).collect();
    assert_eq!(entries.len(), 4, "one file per run: {entries:?}");
    assert!(entries.iter().all(|e| crate::common::is_audit_entry(e.trim_end_matches(".json"))), "{entries:?}");
}

#[test]
fn mass_deletions_and_emptying_are_refused_and_protected_paths_are_never_overwritten_or_deleted() {
    let ws = Workspace::new();
    let source = |names: &[&str], keep: &str| {
        let _ = std::fs::remove_dir_all(ws.path("src"));
        for name in names {
            ws.write(&format!("src/{name}.json"), r#"{"v": 1}"#);
        }
        ws.write("src/keep/a.json", &format!(r#"{{"v": "{keep}"}}"#));
    };
    let all: Vec<String> = (0..12).map(|i| format!("s{i}")).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    source(&all, "one");
    let config = |guards: &str| {
        format!(
            "pipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{s: {{file: {{path: src}}}}}}\ntargets:\n  T: {{imports: [s], file: {{path: out}}{guards}}}\n"
        )
    };
    ws.write("vss.yaml", &config(""));
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert_eq!(ws.files("out").iter().filter(|f| f.ends_with(".json") && !f.starts_with('.')).count(), 13);

    // 12 of 13 would go: refused, in the dry run first (which still lists them), then in the run.
    source(&["s0"], "one");
    let dry = ws.vss(["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(dry.code, 2, "{}", dry.transcript());
    let report = dry.json();
    let error = &report["errors"][0];
    assert_eq!(error["kind"], "refused", "{error}");
    assert_eq!(
        error["message"],
        "target `T` is refused: it would delete 11 of the 13 secrets vss owns here (85 %), over the limit of 10 \
         secrets and 25 %; nothing written",
        "{error}"
    );
    assert!(error["hint"].as_str().unwrap().contains("--allow-mass-delete"), "{error}");
    assert_eq!(report["targets"][0]["summary"]["removed"], 11, "the dry run shows what would go");
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(run.json()["targets"][0]["changes"].as_array().unwrap().iter().all(|c| c["status"] == "skipped"));
    assert!(ws.path("out/s11.json").exists(), "nothing deleted");
    // A limit the target sets for itself, or the flag, lets it through.
    ws.write("vss.yaml", &config(", max_deletes: {count: 11, percent: 90}"));
    assert_eq!(ws.vss(["pipeline", "--dry-run", "--output", "compact"]).stdout, "CHANGES: +0 ~0 -11 =2\n");
    ws.write("vss.yaml", &config(""));
    let forced = ws.vss(["pipeline", "--allow-mass-delete", "--output", "compact"]);
    assert_eq!((forced.code, forced.stdout.as_str()), (0, "APPLIED: +0 ~0 -11 =2\n"), "{}", forced.transcript());

    // By share: 2 of 5 (40 %) is over 25 %; one deletion is an edit, never a mass deletion.
    source(&["s0", "s1", "s2", "s3"], "one");
    assert_eq!(ws.vss(["pipeline", "--output", "compact"]).code, 0);
    source(&["s0", "s1"], "one");
    let share = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(share.code, 2, "{}", share.transcript());
    assert!(
        share.json()["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("delete 2 of the 5 secrets vss owns here (40 %)")
    );
    source(&["s0", "s1", "s2"], "one");
    assert_eq!(ws.vss(["pipeline", "--output", "compact"]).stdout, "APPLIED: +0 ~0 -1 =4\n");

    // Protected: never overwritten, never deleted; reported as excluded by the pattern.
    ws.write("vss.yaml", &config(", protect: [\"keep/**\"]"));
    source(&["s0", "s1", "s2"], "two");
    let protected = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(protected.code, 0, "{}", protected.transcript());
    let change = &protected.json()["targets"][0]["changes"][0];
    assert_eq!((change["path"].as_str(), change["change"].as_str()), (Some("keep/a"), Some("excluded")), "{change}");
    assert_eq!(change["excluded_by"], "protect: keep/**");
    assert_eq!(ws.read_json("out/keep/a.json"), json!({"v": "one"}), "not overwritten");
    let _ = std::fs::remove_dir_all(ws.path("src/keep"));
    assert_eq!(ws.vss(["pipeline", "--output", "compact"]).code, 0);
    assert!(ws.path("out/keep/a.json").exists(), "not deleted");
}

#[test]
fn the_file_store_never_writes_through_a_link_that_leads_out_of_its_folder() {
    let ws = Workspace::new();
    ws.write("src/app/db.json", r#"{"password": "p"}"#);
    ws.write("src/top.json", r#"{"v": 1}"#);
    ws.write("vss.yaml", "source: {file: {path: src}}\ntargets:\n  T: {file: {path: out}}\n");
    std::fs::create_dir_all(ws.path("outside")).unwrap();
    std::fs::create_dir_all(ws.path("out")).unwrap();
    std::os::unix::fs::symlink("../outside", ws.path("out/app")).unwrap();
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let error = &run.json()["errors"][0];
    assert_eq!(error["kind"], "invalid", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("out/app is a link to") && message.contains("outside the store's folder"), "{error}");
    assert!(ws.files("outside").is_empty(), "nothing written outside");
    // A link that stays inside the folder is followed.
    std::fs::remove_file(ws.path("out/app")).unwrap();
    std::fs::create_dir_all(ws.path("out/real")).unwrap();
    std::os::unix::fs::symlink("real", ws.path("out/app")).unwrap();
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert!(ws.path("out/real/db.json").exists());
}

#[test]
fn two_runs_writing_to_one_folder_at_once_lose_no_ownership_marker() {
    let ws = Workspace::new();
    for side in ["a", "b"] {
        for i in 0..100 {
            ws.write(&format!("src-{side}/{side}{i}.json"), &format!(r#"{{"v": {i}}}"#));
        }
        ws.write(
            &format!("{side}.yaml"),
            &format!(
                "source: {{file: {{path: src-{side}}}}}\ntargets:\n  {}: {{file: {{path: out}}}}\n",
                side.to_uppercase()
            ),
        );
    }
    crate::common::run_concurrently(2, || {
        // Each run alternates: the other's writes land between its own.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let side = ["a", "b"][NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2];
        crate::common::Vss::new().cwd(ws.dir.path()).args([
            "pipeline",
            "--config",
            &format!("{side}.yaml"),
            "--parallel",
            "4",
        ])
    });
    let manifest = ws.read_json("out/.vss-managed.json");
    let owners = manifest["secrets"].as_object().unwrap();
    assert_eq!(owners.len(), 200, "no marker lost");
    assert!(owners.iter().all(|(path, o)| o["vss-target"] == path[..1].to_uppercase()), "{manifest}");
    // Each run now sees its own 100 as owned and the other's as unmanaged.
    let check = ws.vss(["pipeline", "--config", "a.yaml", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(check.code, 0, "{}", check.transcript());
    assert_eq!(check.json()["targets"][0]["summary"]["unmanaged"], 100);
}

#[test]
fn an_interrupted_write_leaves_no_value_without_its_marker_and_a_failed_one_no_stray_marker() {
    // Markers are recorded before the values: a run cut off after some writes leaves
    // markers for values it had not written yet, never a value of vss's without one.
    let ws = Workspace::new();
    ws.write("src/one.json", r#"{"v": 1}"#);
    ws.write("src/two.json", r#"{"v": 2}"#);
    ws.write("vss.yaml", "source: {file: {path: src}}\ntargets:\n  T: {file: {path: out}}\n");
    // `two` cannot be written: a folder stands where its file goes.
    std::fs::create_dir_all(ws.path("out/two.json")).unwrap();
    let run = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let owners = ws.read_json("out/.vss-managed.json")["secrets"].clone();
    assert_eq!(owners, json!({"one": {"vss-target": "T"}}), "the failed write's marker is dropped");
    std::fs::remove_dir(ws.path("out/two.json")).unwrap();
    assert_eq!(ws.vss(["pipeline", "--output", "compact"]).stdout, "APPLIED: +1 ~0 -0 =1\n");
    let owners = ws.read_json("out/.vss-managed.json")["secrets"].clone();
    assert_eq!(owners.as_object().unwrap().len(), 2);
}

#[test]
fn temporary_files_a_killed_run_left_are_removed_before_the_next_writes() {
    let ws = Workspace::new();
    ws.write("src.yaml", "a: {k: v}\n");
    ws.write("vss.yaml", "source: {file: {path: src.yaml}}\ntargets: {T: {file: {path: out}}}\n");
    // A dead process's temporary file (holding a value), and one of a live process.
    let dead = ws.write("out/.vss-tmp-4194303-Zq81x", "{\"k\": \"CANARY-tmp\"}");
    let live = ws.write(&format!("out/sub/.vss-tmp-{}-Ab3dE", std::process::id()), "{}");
    let dry = ws.vss(["pipeline", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    assert!(dead.exists(), "a dry run writes and removes nothing");
    let out = ws.vss(["pipeline"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!dead.exists(), "the dead run's temporary file is gone");
    assert!(live.exists(), "a running process's temporary file is left alone");
    let left: Vec<String> = ws.files("out").into_iter().filter(|f| f.contains(".vss-tmp-")).collect();
    assert_eq!(left, ["sub/.vss-tmp-".to_string() + &format!("{}-Ab3dE", std::process::id())]);
}

#[test]
fn a_merge_that_fails_mid_way_leaves_sync_seeing_the_last_whole_file_bundle() {
    let ws = Workspace::new();
    let source = |generation: u32, poison: bool| {
        let mut text: String = (0..20).map(|i| format!("s{i:02}: {{v: {i}, generation: {generation}}}\n")).collect();
        // `zz.json/y` is a folder `zz.json` in the bundle; a later secret `zz` (file
        // `zz.json`) cannot be written while that folder is there: the MERGE fails after
        // writing the other secrets.
        text.push_str(if poison { "zz: {v: 1}\n" } else { "zz.json/y: {v: 1}\n" });
        text
    };
    ws.write("src.yaml", &source(1, false));
    ws.write(
        "vss.yaml",
        "merge_store: {file: {path: out/merged}}\nsource: {file: {path: src.yaml}}\ntargets: {T: {file: {path: out/t}}}\n",
    );
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    ws.write("src.yaml", &source(2, true));
    let merge = ws.vss(["pipeline", "--merge-only", "--output", "json"]);
    assert_eq!(merge.code, 2, "{}", merge.transcript());
    assert_eq!(merge.json()["errors"][0]["target"], "T");
    let applied =
        merge.json()["targets"][0]["changes"].as_array().unwrap().iter().filter(|c| c["status"] == "applied").count();
    assert_eq!(applied, 20, "the other writes were made: {}", merge.stdout);
    // The bundle, as SYNC reads it, is still all of generation 1.
    for i in 0..20 {
        assert_eq!(ws.read_json(&format!("out/merged/T/s{i:02}.json"))["generation"], 1, "s{i:02}");
    }
    let sync = ws.vss(["pipeline", "--sync-only", "--exit-code", "--output", "compact"]);
    assert_eq!((sync.code, sync.stdout.as_str()), (0, "ZERO-SUM: 21 unchanged\n"), "{}", sync.transcript());
    // Fixed, a re-run converges; one earlier generation is kept for readers, no more.
    ws.write("src.yaml", &source(2, false));
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert_eq!(ws.read_json("out/merged/T/s00.json")["generation"], 2);
    assert_eq!(ws.read_json("out/t/s00.json")["generation"], 2);
    let generations = std::fs::read_dir(ws.path("out/merged/.T.gen")).unwrap().count();
    assert_eq!(generations, 2, "the current generation and the one before");
    assert!(std::fs::symlink_metadata(ws.path("out/merged/T")).unwrap().file_type().is_symlink());
    let check = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(check.code, 0, "{}", check.transcript());
}
