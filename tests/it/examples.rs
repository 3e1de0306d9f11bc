//! Every file in `examples/` is a valid config (validated `--offline`: without touching
//! any store, nor discovering dynamic targets).

#[test]
fn every_example_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // examples/workflows: GitHub Actions workflows, checked below
        }
        let run = crate::common::Vss::new().args(["validate", "--offline", "--config"]).args([&path]).run();
        assert_eq!(run.code, 0, "{}:\n{}", path.display(), run.transcript());
        let graph =
            crate::common::Vss::new().args(["graph", "--offline", "--format", "json", "--config"]).args([&path]).run();
        assert_eq!(graph.code, 0, "{}:\n{}", path.display(), graph.transcript());
        seen += 1;
    }
    assert!(seen >= 1);
}

/// The workflow examples parse, and each runs a config that is in `examples/` (or asks
/// for secrets with `vss ensure --dispatch`, which needs none).
#[test]
fn workflow_examples_run_example_configs() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        vss::yaml::parse(&text).unwrap_or_else(|e| panic!("{}: {}", path.display(), e.message));
        let configs: Vec<&str> =
            text.split_whitespace().filter(|w| w.starts_with("examples/") && w.ends_with(".yaml")).collect();
        assert!(
            !configs.is_empty() || text.contains("vss ensure --dispatch"),
            "{} runs no example config",
            path.display()
        );
        for config in configs {
            assert!(dir.join("../..").join(config).is_file(), "{}: {config} is missing", path.display());
        }
        seen += 1;
    }
    assert_eq!(seen, 4);
}

/// Every example workflow follows GitHub's workflow grammar (SchemaStore's schema, as
/// vendored by `check-jsonschema`, which `tests/run` installs); a broken one is refused.
#[test]
fn workflow_examples_follow_githubs_workflow_grammar() {
    let check = std::env::var("VSS_TEST_CHECK_JSONSCHEMA").expect("run tests/run: it installs check-jsonschema");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/workflows");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let run = |files: &[std::path::PathBuf]| {
        std::process::Command::new(&check)
            .args(["--builtin-schema", "vendor.github-workflows"])
            .args(files)
            .output()
            .expect("check-jsonschema runs")
    };
    let out = run(&files);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let ws = crate::common::Workspace::new();
    let broken =
        ws.write("broken.yml", "on: push\njobs:\n  x:\n    runs-onn: ubuntu-latest\n    steps: [{run: echo}]\n");
    assert!(!run(&[broken]).status.success(), "the grammar check can fail");
}
