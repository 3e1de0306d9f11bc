//! `vss explain` and `pipeline --provenance`: where each key of a desired secret comes
//! from, with the config location of each layer's import, and no value anywhere.

use crate::common::Workspace;

const CONFIG: &str = "version: 1
sources:
  common: { file: { path: common.yaml } }
  prod:   { file: { path: prod.yaml } }
  extra:  { file: { path: extra.yaml } }
targets:
  Base: { imports: [common] }
  Shared: { imports: [extra] }
  Production:
    inherits: Base
    imports: [prod, Shared]
    file: { path: out }
";

fn workspace() -> Workspace {
    let ws = Workspace::new();
    ws.write("vss.yaml", CONFIG);
    ws.write("common.yaml", "app/db: {user: CANARY-user, password: CANARY-old, opts: {a: 1}}\n");
    ws.write("prod.yaml", "app/db: {password: CANARY-new, opts: {b: 2}}\n");
    ws.write("extra.yaml", "tls: CANARY-cert\n");
    ws
}

#[test]
fn explain_names_the_layer_that_set_each_key_and_the_ones_it_replaced() {
    let ws = workspace();
    let out = ws.vss(["explain", "--target", "Production"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!out.stdout.contains("CANARY"), "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "Production  app/db");
    assert!(lines[1].starts_with("  opts      hmac:"), "{}", out.stdout);
    assert!(
        lines[1].ends_with("merged, last from source `prod` (vss.yaml:11:15, imported by Production)"),
        "{}",
        out.stdout
    );
    assert!(lines[2].ends_with("with source `common` (vss.yaml:7:21, imported by Base)"), "{}", out.stdout);
    assert!(lines[3].ends_with("set by source `prod` (vss.yaml:11:15, imported by Production)"), "{}", out.stdout);
    assert!(lines[3].starts_with("  password  hmac:"), "{}", out.stdout);
    assert!(lines[4].ends_with("replaced source `common` (vss.yaml:7:21, imported by Base)"), "{}", out.stdout);
    assert!(lines[5].ends_with("set by source `common` (vss.yaml:7:21, imported by Base)"), "{}", out.stdout);
    assert_eq!(lines[6], "Production  tls");
    assert!(lines[7].starts_with("  (value)   hmac:"), "{}", out.stdout);
    assert!(lines[7].ends_with("set by target `Shared` (vss.yaml:11:21, imported by Production)"), "{}", out.stdout);

    let json = ws.vss(["explain", "--target", "Production", "app/db", "--output", "json"]);
    assert_eq!(json.code, 0, "{}", json.transcript());
    let document = json.json();
    let schema = crate::schemas::validator("schemas/explain.schema.json");
    assert!(schema.is_valid(&document), "{document:#}");
    let keys: Vec<&str> = document["keys"].as_array().unwrap().iter().map(|k| k["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["opts", "password", "user"]);
    let password = &document["keys"][1];
    assert_eq!(password["set_by"]["name"], "prod");
    assert_eq!(password["replaced"][0]["name"], "common");
    assert_ne!(password["fingerprint"], password["replaced"][0]["fingerprint"]);
    assert_eq!(password["fingerprint"], password["set_by"]["fingerprint"]);

    let unknown = ws.vss(["explain", "--target", "Production", "app/dv"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("`app/dv` is not a desired secret of `Production` (did you mean `app/db`?)"),
        "{}",
        unknown.stderr
    );
    let no_target = ws.vss(["explain", "--target", "Prod"]);
    assert_eq!(no_target.code, 2);
    assert!(no_target.stderr.contains("unknown target `Prod`"), "{}", no_target.stderr);
}

#[test]
fn the_json_report_carries_the_provenance_of_each_changed_key() {
    let ws = workspace();
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    ws.write("prod.yaml", "app/db: {password: CANARY-newer, opts: {b: 2}}\n");
    let out = ws.vss(["pipeline", "--dry-run", "--provenance", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!out.stdout.contains("CANARY"), "{}", out.stdout);
    let report = out.json();
    let schema = crate::schemas::validator("schemas/report.schema.json");
    assert!(schema.is_valid(&report), "{report:#}");
    let change = &report["targets"][0]["changes"][0];
    assert_eq!((change["path"].as_str(), change["change"].as_str()), (Some("app/db"), Some("modified")), "{report:#}");
    let provenance = change["provenance"].as_array().unwrap();
    assert_eq!(provenance.len(), 1, "only the changed key: {change:#}");
    assert_eq!(provenance[0]["key"], "password");
    assert_eq!(provenance[0]["set_by"]["name"], "prod");
    assert_eq!(provenance[0]["set_by"]["at"], "vss.yaml:11:15");
    assert_eq!(provenance[0]["fingerprint"], provenance[0]["set_by"]["fingerprint"]);
    assert_eq!(provenance[0]["replaced"][0]["name"], "common");
    // Without the flag, no provenance.
    let plain = ws.vss(["pipeline", "--dry-run", "--output", "json"]);
    assert!(!plain.stdout.contains("provenance"), "{}", plain.stdout);
}
