//! Every file in `examples/` is a valid config (validated `--offline`: without touching
//! any store, nor discovering dynamic targets).

#[test]
fn every_example_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let run = crate::common::Vss::new().args(["validate", "--offline", "--config"]).args([&path]).run();
        assert_eq!(run.code, 0, "{}:\n{}", path.display(), run.transcript());
        let graph =
            crate::common::Vss::new().args(["graph", "--offline", "--format", "json", "--config"]).args([&path]).run();
        assert_eq!(graph.code, 0, "{}:\n{}", path.display(), graph.transcript());
        seen += 1;
    }
    assert!(seen >= 1);
}
