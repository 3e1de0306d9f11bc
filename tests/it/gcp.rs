//! The `gcp` store (Google Cloud Secret Manager) against the loopback test server
//! (`gcp_server`), which holds every request to Google's published discovery document:
//! the conformance suite, paging, end-to-end pipelines from Vault through a Vault merge
//! store to two projects (checked through the server's state, not vss's code), no-op
//! re-runs, metadata drift, orphans, a create that loses a race, canaries, and a
//! cross-check of the server with Google's official Python client.
#![cfg(feature = "gcp")]

use serde_json::{Value, json};
use vss::store::gcp::{GcpAuth, GcpDefaults};
use vss::store::{AnyStore, StoreConfig, StoreDefaults};

use crate::common::{Run, Vss, Workspace};
use crate::gcp_server::GcpServer;

const CANARY: &str = "CANARY-gcp-5e0c";

/// The top-level `gcp:` block of the configs run through the binary.
const HEADER: &str = "gcp: {endpoint: \"${GCP_TEST_URL}\", auth: anonymous}\n";

fn run(ws: &Workspace, server: &GcpServer, args: &[&str]) -> Run {
    Vss::new()
        .cwd(ws.dir.path())
        .env("GCP_TEST_URL", &server.url)
        .env("VSS_TEST_VAULT_ADDR", std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run"))
        .env("VSS_TEST_VAULT_TOKEN", std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run"))
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env("HOME", ws.dir.path())
        .args(args)
        .run()
}

pub(crate) async fn open(server: &GcpServer, config: Value) -> AnyStore {
    let config: StoreConfig = serde_json::from_value(json!({ "gcp": config })).unwrap();
    let spanned = |v| vss::span::Spanned { span: Default::default(), value: v };
    let gcp = GcpDefaults {
        project: None,
        endpoint: Some(spanned(server.url.clone())),
        auth: Some(vss::span::Spanned { span: Default::default(), value: GcpAuth::Anonymous }),
    };
    let mut defaults = StoreDefaults::default();
    defaults.set("gcp", std::sync::Arc::new(gcp));
    crate::common::open_store(&config, &defaults, None).await.unwrap()
}

/// Latest payloads of a project's secrets, parsed when JSON.
fn values(server: &GcpServer, project: &str) -> Vec<(String, Value)> {
    server
        .secrets(project)
        .into_iter()
        .filter_map(|(id, s)| {
            let text = s.latest()?;
            Some((id, serde_json::from_str(&text).unwrap_or(Value::String(text))))
        })
        .collect()
}

#[tokio::test]
async fn conformance_with_short_pages_and_a_prefix() {
    let server = GcpServer::start();
    server.cap_pages(2);
    let store = open(&server, json!({"project": "conf", "prefix": "vss-"})).await;
    crate::conformance::run(&store, None).await;
    // Someone else's secrets in the project are not the location's.
    server.put("conf", "other", "x", &[]);
    server.put("conf", "vss-a--b", "{\"k\":1}", &[]);
    let paths = vss::store::Store::list(&store).await.unwrap();
    assert_eq!(paths.iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["a/b"]);
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

/// Writes `data` at `secret/<folder>/<path>` on the first OpenBao server.
pub(crate) fn vault_put(folder: &str, path: &str, data: Value) {
    let address = std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run");
    let token = std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run");
    let url = format!("{address}/v1/secret/data/{folder}/{path}");
    let request = reqwest::Client::new().post(url).header("X-Vault-Token", token).json(&json!({"data": data}));
    let status = tokio::runtime::Runtime::new().unwrap().block_on(request.send()).unwrap().status();
    assert!(status.is_success(), "{status}");
}

#[test]
fn vault_to_two_projects_exactly_then_zero_sum_drift_and_orphans() {
    let server = GcpServer::start();
    let ws = Workspace::new();
    let folder = format!("gcp-{}-{}", std::process::id(), server.url.rsplit(':').next().unwrap());
    vault_put(&folder, "src/app/db", json!({"user": "app", "password": format!("{CANARY}-db")}));
    vault_put(&folder, "src/api/stripe", json!({"key": format!("{CANARY}-stripe")}));
    vault_put(&folder, "prod/app/db", json!({"password": format!("{CANARY}-prod")}));
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}vault: {{address: \"${{VSS_TEST_VAULT_ADDR}}\", auth: {{token: \"${{VSS_TEST_VAULT_TOKEN}}\"}}}}\nmerge_store: {{vault: {{path: secret/{folder}/merged}}}}\npipeline: {{sync: {{delete_orphans: true}}}}\nsources:\n  common: {{vault: {{path: secret/{folder}/src}}}}\n  prod: {{vault: {{path: secret/{folder}/prod}}}}\ntargets:\n  Staging: {{imports: [common], gcp: {{project: staging-proj, prefix: app-, labels: {{team: platform}}}}}}\n  Production: {{inherits: Staging, imports: [prod], gcp: {{project: prod-proj, prefix: app-, labels: {{team: platform}}, replication: [europe-west1, europe-west4]}}}}\n"
        ),
    );
    let out = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!out.stdout.contains(CANARY) && !out.stderr.contains(CANARY), "{}", out.transcript());
    assert_eq!(
        values(&server, "prod-proj"),
        [
            ("app-api--stripe".to_string(), json!({"key": format!("{CANARY}-stripe")})),
            ("app-app--db".to_string(), json!({"user": "app", "password": format!("{CANARY}-prod")})),
        ]
    );
    assert_eq!(values(&server, "staging-proj")[1].1, json!({"user": "app", "password": format!("{CANARY}-db")}));
    let secret = &server.secrets("prod-proj")["app-app--db"];
    assert_eq!(secret.labels.get("managed-by").map(String::as_str), Some("vss"));
    assert_eq!(secret.labels.get("vss-target").map(String::as_str), Some("production"));
    assert_eq!(secret.labels.get("team").map(String::as_str), Some("platform"));
    assert_eq!(secret.annotations.get("vss-target").map(String::as_str), Some("Production"));
    assert_eq!(secret.replication["userManaged"]["replicas"][1]["location"], "europe-west4");

    // A no-op re-run writes nothing.
    let writes = server.writes();
    let again = run(&ws, &server, &["pipeline", "--exit-code", "--output", "compact"]);
    assert_eq!((again.code, again.stdout.as_str()), (0, "ZERO-SUM: 8 unchanged\n"), "{}", again.transcript());
    assert_eq!(server.writes(), writes, "no write on a no-op re-run");

    // One changed key: a new version of exactly the secrets that hold it.
    vault_put(&folder, "src/api/stripe", json!({"key": format!("{CANARY}-stripe-2")}));
    let changed = run(&ws, &server, &["pipeline", "--output", "compact"]);
    assert_eq!(changed.stdout, "APPLIED: +0 ~4 -0 =4\n", "{}", changed.transcript());
    assert_eq!(server.secrets("prod-proj")["app-api--stripe"].versions.len(), 2);
    assert_eq!(server.secrets("prod-proj")["app-app--db"].versions.len(), 1);

    // Labels changed behind vss's back: metadata drift, put right without a new version.
    server.relabel("prod-proj", "app-app--db", "team", "someone-else");
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--output", "json"]);
    let report = dry.json();
    let prod = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Production" && t["phase"] == "sync")
        .unwrap()
        .clone();
    let db = prod["changes"].as_array().unwrap().iter().find(|c| c["path"] == "app/db").unwrap().clone();
    assert_eq!((db["change"].as_str(), db["metadata"].as_bool()), (Some("modified"), Some(true)), "{prod:#}");
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let secret = &server.secrets("prod-proj")["app-app--db"];
    assert_eq!(secret.labels.get("team").map(String::as_str), Some("platform"));
    assert_eq!(secret.versions.len(), 1, "labels only: no new version");

    // An orphan is deleted only when vss owns it; someone else's secret stays.
    server.put("prod-proj", "app-unmanaged", "x", &[]);
    vault_put(&folder, "src/old/key", json!({"v": 1}));
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    assert!(server.secrets("prod-proj").contains_key("app-old--key"));
    let address = std::env::var("VSS_TEST_VAULT_ADDR").unwrap();
    let token = std::env::var("VSS_TEST_VAULT_TOKEN").unwrap();
    let delete = reqwest::Client::new()
        .delete(format!("{address}/v1/secret/metadata/{folder}/src/old/key"))
        .header("X-Vault-Token", token);
    tokio::runtime::Runtime::new().unwrap().block_on(delete.send()).unwrap();
    let pruned = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(pruned.code, 0, "{}", pruned.transcript());
    assert!(!server.secrets("prod-proj").contains_key("app-old--key"), "the owned orphan is deleted");
    assert!(server.secrets("prod-proj").contains_key("app-unmanaged"), "someone else's secret stays");
    let check = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(check.code, 0, "{}", check.transcript());
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn a_create_that_loses_a_race_is_retried_from_a_fresh_read() {
    let server = GcpServer::start();
    let ws = Workspace::new();
    ws.write("s.yaml", &format!("app/db: {{password: {CANARY}}}\n"));
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{gcp: {{project: race}}}}}}\n"),
    );
    server.race_create("app--db");
    let out = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("starting over from a fresh read"), "{}", out.stderr);
    let secret = &server.secrets("race")["app--db"];
    assert_eq!(serde_json::from_str::<Value>(&secret.latest().unwrap()).unwrap(), json!({"password": CANARY}));
    assert_eq!(secret.annotations.get("vss-target").map(String::as_str), Some("T"));
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn paths_a_secret_id_cannot_hold_are_refused_before_anything_is_written() {
    let server = GcpServer::start();
    let ws = Workspace::new();
    ws.write("s.yaml", "good: {k: v}\nbad.name: {k: v}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{gcp: {{project: p}}}}}}\n"),
    );
    let out = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let message = out.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("`bad.name`") && message.contains("`.` cannot be part of a GCP secret id"), "{message}");
    assert_eq!(server.writes(), 0, "nothing written");

    ws.write(
        "vss.yaml",
        "gcp: {auth: anonymous}\nsource: {file: {path: s.yaml}}\ntargets: {T: {gcp: {prefix: \"a/b\"}}}\n",
    );
    let invalid = run(&ws, &server, &["validate"]);
    assert_eq!(invalid.code, 2, "{}", invalid.transcript());
    for expected in ["`auth: anonymous` needs an `endpoint`", "a `gcp` store needs a project", "`prefix` holds `/`"] {
        assert!(
            invalid.stdout.contains(expected) || invalid.stderr.contains(expected),
            "{expected}: {}",
            invalid.transcript()
        );
    }
}

#[test]
fn the_test_server_refuses_what_the_published_contract_does_not_allow() {
    let server = GcpServer::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let (unknown_field, unknown_route) = rt.block_on(async {
        let field = client
            .post(format!("{}/v1/projects/p/secrets?secretId=x", server.url))
            .json(&json!({"replication": {"automatic": {}}, "labelz": {"a": "b"}}))
            .send()
            .await
            .unwrap();
        let route = client.get(format!("{}/v1/projects/p/vaults", server.url)).send().await.unwrap();
        (field.status().as_u16(), route.status().as_u16())
    });
    assert_eq!((unknown_field, unknown_route), (400, 404));
    let rejected = server.rejected();
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(rejected[0].contains("Unknown name \"labelz\""), "{rejected:?}");
}

#[test]
fn googles_python_client_agrees_with_the_test_server() {
    let server = GcpServer::start();
    let venv = std::env::var("VSS_TEST_PYTHON_VENV").expect("run tests/run: it installs Google's Python client");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/gcp/python-check.py");
    let out = std::process::Command::new(format!("{venv}/bin/python")).arg(&script).arg(&server.url).output().unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
    // What Google's client wrote, vss reads as a source.
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}source: {{gcp: {{project: py-proj, prefix: py-}}}}\ntargets: {{T: {{file: {{path: out}}}}}}\n"
        ),
    );
    let run = run(&ws, &server, &["pipeline"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(ws.read_json("out/app/db.json"), json!({"password": "from-python"}));
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn keep_versions_destroys_older_versions_and_a_replication_change_is_refused() {
    let server = GcpServer::start();
    // Pages of one: the versions to keep are found across pages.
    server.cap_pages(1);
    let ws = Workspace::new();
    let config = |replication: &str| {
        format!(
            "{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{gcp: {{project: kv, keep_versions: 2{replication}}}}}}}\n"
        )
    };
    ws.write("vss.yaml", &config(""));
    for round in 1..=4 {
        ws.write("s.yaml", &format!("app/db: {{round: {round}}}\n"));
        let out = run(&ws, &server, &["pipeline"]);
        assert_eq!(out.code, 0, "{}", out.transcript());
    }
    let states: Vec<&str> = server.secrets("kv")["app--db"].versions.iter().map(|v| v.state).collect();
    assert_eq!(states, ["DESTROYED", "DESTROYED", "ENABLED", "ENABLED"]);
    assert_eq!(server.secrets("kv")["app--db"].latest().as_deref(), Some("{\"round\":4}"));

    // A payload that does not match its CRC32C is an error, never a value.
    server.corrupt_payloads();
    let corrupt = run(&ws, &server, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(corrupt.code, 2, "{}", corrupt.transcript());
    let message = corrupt.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("does not match its CRC32C"), "{message}");
    server.intact_payloads();

    // The config now asks for user-managed replication: drift, which cannot be put right
    // in place.
    ws.write("vss.yaml", &config(", replication: [europe-west1]"));
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--output", "json"]);
    let change = &dry.json()["targets"][0]["changes"][0];
    assert_eq!((change["change"].as_str(), change["metadata"].as_bool()), (Some("modified"), Some(true)), "{change}");
    let out = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let message = out.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("replication differs from the config's"), "{message}");
    assert_eq!(server.secrets("kv")["app--db"].versions.len(), 4, "nothing written");
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn a_secret_manager_that_never_answers_fails_in_bounded_time_naming_the_call() {
    let hung = crate::common::hung_server();
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {k: v}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "gcp: {{endpoint: \"{hung}\", auth: anonymous}}\npipeline: {{timeouts: {{connect: 1, request: 1}}}}\nsource: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{gcp: {{project: p}}}}}}\n"
        ),
    );
    let out = Vss::new().cwd(ws.dir.path()).args(["pipeline", "--output", "json"]).run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    let error = &out.json()["errors"][0];
    assert_eq!(error["kind"], "timeout", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("ListSecrets projects/p at Secret Manager: no answer within 1 s"),
        "{error}"
    );
}
