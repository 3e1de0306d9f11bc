//! No secret value is ever printed: canary values in the sources, then every command,
//! every output format, verbose logs and error paths; the canary must not appear in
//! stdout, stderr or any report file.

use crate::common::{Run, Vss, Workspace};

const CANARY: &str = "CANARY-7f3a9c1e";

fn assert_clean(what: &str, run: &Run) {
    assert!(!run.stdout.contains(CANARY), "{what}: canary in stdout:\n{}", run.stdout);
    assert!(!run.stderr.contains(CANARY), "{what}: canary in stderr:\n{}", run.stderr);
}

fn setup() -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "src/common.yaml",
        &format!("app/db:\n  password: {CANARY}-db\n  list: [{CANARY}-item, {{nested: {CANARY}-n}}]\nscalar: {CANARY}-scalar\n"),
    );
    ws.write("src/dir/api.json", &format!(r#"{{"token": "{CANARY}-token", "n": 1}}"#));
    ws.write(
        "vss.yaml",
        "merge_store: {file: {path: out/merged}}\npipeline: {sync: {delete_orphans: true}}\nsources:\n  common: {file: {path: src/common.yaml}}\n  dir: {file: {path: src/dir}}\ntargets:\n  Base: {imports: [common]}\n  Prod: {inherits: Base, imports: [dir], file: {path: out/prod}}\n  Flat: {imports: [common, dir], file: {path: out/flat.yaml}}\n",
    );
    ws
}

fn every_output(ws: &Workspace, extra: &[&str], label: &str) {
    for output in ["human", "json", "github", "compact"] {
        let gh_out = ws.path(&format!("gh-output-{label}-{output}"));
        let gh_sum = ws.path(&format!("gh-summary-{label}-{output}"));
        let run = Vss::new()
            .cwd(ws.dir.path())
            .args(["-vvv", "pipeline", "--show-unchanged", "--output", output])
            .args(extra)
            .env("GITHUB_OUTPUT", &gh_out)
            .env("GITHUB_STEP_SUMMARY", &gh_sum)
            .run();
        assert_clean(&format!("{label} --output {output}"), &run);
        for file in [&gh_out, &gh_sum] {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            assert!(!text.contains(CANARY), "{label} {output}: canary in {}", file.display());
        }
    }
}

#[test]
fn no_output_format_or_log_prints_a_value() {
    let ws = setup();
    for args in [vec!["validate"], vec!["graph"], vec!["graph", "--format", "dot"], vec!["graph", "--format", "json"]] {
        assert_clean(&args.join(" "), &ws.vss(&args));
    }
    every_output(&ws, &["--dry-run"], "first-dry-run");
    every_output(&ws, &[], "apply");
    assert!(
        std::fs::read_to_string(ws.path("out/prod/app/db.json")).unwrap().contains(CANARY),
        "the values did arrive"
    );

    // Modify, add and remove keys and secrets so every change kind is rendered.
    ws.write("src/common.yaml", &format!("app/db:\n  password: {CANARY}-changed\n  extra: {CANARY}-extra\n"));
    every_output(&ws, &["--dry-run"], "changed-dry-run");
    every_output(&ws, &[], "changed-apply");
}

#[test]
fn error_paths_print_no_value() {
    let ws = setup();
    // A source file that does not parse, with the canary near the error.
    ws.write("src/dir/broken.json", &format!(r#"{{"token": "{CANARY}-broken" "#));
    every_output(&ws, &["--dry-run"], "broken-source");
    // A YAML source with a syntax error right after a canary.
    ws.write("src/dir/broken.json", "{}");
    ws.write("src/common.yaml", &format!("app/db:\n  password: {CANARY}\n   bad: [indent\n"));
    every_output(&ws, &["--dry-run"], "broken-yaml");

    // A config whose variable holds a canary, used where a number is expected.
    ws.write("src/common.yaml", "a: {b: 1}\n");
    ws.write(
        "vss.yaml",
        "pipeline: {sync: {parallel: \"${SECRET_ENV}\"}}\nsources: {s: {file: {path: src/common.yaml}}}\ntargets: {T: {imports: [s], file: {path: out/t}}}\n",
    );
    for output in ["human", "json", "github", "compact"] {
        let run = Vss::new().cwd(ws.dir.path()).env("SECRET_ENV", CANARY).args(["pipeline", "--output", output]).run();
        assert_eq!(run.code, 2);
        assert_clean(&format!("typed env var, {output}"), &run);
    }

    // A target that cannot be written (its directory is a file).
    ws.write(
        "vss.yaml",
        "sources: {s: {file: {path: src/dir}}}\ntargets: {T: {imports: [s], file: {path: blocker/t}}}\n",
    );
    ws.write("blocker", "not a directory");
    let run = ws.vss(["-vvv", "pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert_clean("unwritable target", &run);
}

/// `Debug` of everything that holds, or has seen, a value prints none: the config (with
/// credentials), every store and handle after reading and writing canaries, the sessions,
/// the live state, and the run's outcome.
#[tokio::test]
async fn debug_formatting_prints_no_value() {
    use std::sync::Arc;
    use vss::engine::handle::Handle;
    use vss::engine::{NoProgress, RunOptions};
    use vss::store::stats::Stats;
    use vss::store::{AnyStore, OpenContext, Sessions, Store};

    let ws = setup();
    let config_text = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write(
        "vss.yaml",
        &format!(
            "vault: {{auth: {{approle: {{role_id: {CANARY}-role, secret_id: {CANARY}-secret}}}}}}\naws: {{external_id: {CANARY}-external}}\n{config_text}"
        ),
    );
    let config = vss::config::load(&ws.path("vss.yaml"), &|_| None).expect("a valid config");
    let mut seen = vec![format!("{config:?}")];
    let options = RunOptions {
        exact: None,
        provenance: false,
        dry_run: false,
        merge: true,
        sync: true,
        targets: None,
        parallel: None,
        from_sources: false,
        adopt: false,
        allow_mass_delete: false,
        timeout: None,
        ensure: None,
    };
    let outcome = vss::engine::run(&vss::plan::Plan::complete(&config).unwrap(), &options, Arc::new(NoProgress)).await;
    assert!(outcome.targets.iter().all(|t| t.error.is_none()), "{outcome:?}");
    seen.push(format!("{outcome:?}"));
    let (stats, sessions) = (Stats::default(), Sessions::default());
    let ctx = OpenContext {
        base_dir: &config.base_dir,
        stats: &stats,
        defaults: &config.defaults,
        sessions: &sessions,
        fingerprints: None,
    };
    let stores =
        config.sources.iter().map(|s| &s.store).chain(config.targets.iter().filter_map(|t| t.destination.as_ref()));
    for store_config in stores {
        let store = AnyStore::open(store_config, &ctx, None).await.unwrap();
        let paths = store.list().await.unwrap();
        let read = store.read(&paths[0]).await.unwrap();
        assert!(read.is_some_and(|r| format!("{:?}", r.value()).contains("redacted")));
        store
            .write(&paths[0], &vss::secret::SecretValue::new(serde_json::json!({"k": format!("{CANARY}-w")})), "T")
            .await
            .unwrap();
        seen.push(format!("{store:?}"));
        let handle = Handle::new(store, Arc::new(tokio::sync::Semaphore::new(1)), 1);
        let state = handle.read_state().await.unwrap();
        seen.push(format!("{handle:?} {state:?} {sessions:?} {:?}", config.defaults));
    }
    for text in seen {
        assert!(!text.contains(CANARY), "a canary in Debug output:\n{text}");
    }
}

/// Reads everything `store` holds (`canary` is in its values), then checks that `Debug` of
/// the store, its handle and what was read prints no canary. Used by the server tests.
pub async fn assert_debug_clean(store: vss::store::AnyStore, canary: &str) {
    use std::sync::Arc;
    let handle = vss::engine::handle::Handle::new(store, Arc::new(tokio::sync::Semaphore::new(4)), 4);
    let state = handle.read_state().await.unwrap();
    assert!(!state.is_empty(), "the store holds the canaries");
    let text = format!("{handle:?} {state:?}");
    assert!(!text.contains(canary), "a canary in Debug output:\n{text}");
}
