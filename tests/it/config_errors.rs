//! Every bad config in `fixtures/config/invalid/` is rejected with exit 2 and rendered
//! errors (`file:line:col`, the source line, a caret); the exact text is locked by
//! snapshots in `tests/snapshots/`.

use crate::common::Vss;

#[test]
fn invalid_configs_render_every_error() {
    insta::glob!("../../fixtures/config/invalid", "*.yaml", |path| {
        let relative = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().into_owned();
        let run = Vss::new()
            .cwd(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
            .env_remove("VSS_TEST_UNSET_SECRETS_DIR")
            .env_remove("VSS_TEST_UNSET_OTHER")
            .args(["validate", "--config", &relative])
            .run();
        assert_eq!(run.code, 2, "{relative} must be rejected:\n{}", run.transcript());
        assert!(run.stdout.is_empty(), "human errors go to stderr only");
        insta::assert_snapshot!(run.stderr);
    });
}

#[test]
fn missing_config_file_is_one_clear_error() {
    let run = Vss::new().args(["validate", "--config", "does/not/exist.yaml"]).run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("error: cannot read config file `does/not/exist.yaml`: "), "{}", run.stderr);
}

#[test]
fn json_validate_lists_errors_with_positions() {
    let run = Vss::new()
        .cwd(std::path::Path::new(env!("CARGO_MANIFEST_DIR")))
        .args(["pipeline", "--dry-run", "--output", "json", "--config", "fixtures/config/invalid/unknown-import.yaml"])
        .run();
    assert_eq!(run.code, 2);
    let report = run.json();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!((errors[0]["line"].as_u64(), errors[0]["col"].as_u64()), (Some(7), Some(23)));
    assert_eq!(errors[0]["message"], "unknown source or target `api-key` (did you mean `api-keys`?)");
}

#[test]
fn bad_flags_exit_2() {
    assert_eq!(Vss::new().args(["pipeline", "--output", "xml"]).run().code, 2);
    assert_eq!(Vss::new().args(["pipeline", "--parallel", "0"]).run().code, 2);
    assert_eq!(Vss::new().args(["frobnicate"]).run().code, 2);
    assert_eq!(Vss::new().args(["--help"]).run().code, 0);
}

#[test]
fn validate_json_has_one_shape() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let bad = Vss::new()
        .cwd(root)
        .args(["validate", "--output", "json", "--config", "fixtures/config/invalid/cycle.yaml"])
        .run();
    assert_eq!(bad.code, 2);
    let doc = bad.json();
    assert_eq!(doc["valid"], false);
    assert_eq!(doc["errors"][0]["line"], 6);
    let good =
        Vss::new().cwd(root).args(["validate", "--output", "json", "--config", "examples/quickstart.yaml"]).run();
    assert_eq!(good.code, 0);
    assert_eq!(good.json(), serde_json::json!({"valid": true, "errors": []}));
}

#[test]
fn empty_top_level_store_blocks_are_accepted_and_typos_in_them_are_located() {
    let ws = crate::common::Workspace::new();
    ws.write("s.yaml", "a: {b: 1}\n");
    ws.write("vss.yaml", "vault:\naws:\nsource: {file: {path: s.yaml}}\ntargets: {T: {file: {path: out}}}\n");
    let run = ws.vss(["validate"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    ws.write("vss.yaml", "vault: {adress: x}\nsource: {file: {path: s.yaml}}\ntargets: {T: {file: {path: out}}}\n");
    let run = ws.vss(["validate"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(run.stderr.contains("vss.yaml:1:9") && run.stderr.contains("did you mean `address`?"), "{}", run.stderr);
}

#[test]
fn an_alias_bomb_config_is_refused_with_a_location() {
    let ws = crate::common::Workspace::new();
    let mut text = String::from("targets: {T: {imports: [s]}}\nsources: {s: {file: {path: s.yaml}}}\nx0: &a0 [lol]\n");
    for level in 1..=10 {
        text.push_str(&format!("x{level}: &a{level} [{}]\n", vec![format!("*a{}", level - 1); 9].join(", ")));
    }
    ws.write("vss.yaml", &text);
    let run = ws.vss(["validate", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let error = &run.json()["errors"][0];
    assert!(error["message"].as_str().unwrap().contains("aliases expand to more than"), "{error}");
    assert_eq!(error["kind"], "config", "{error}");
    assert!((4..=13).contains(&error["line"].as_u64().unwrap()), "at one of the alias lines: {error}");
}
