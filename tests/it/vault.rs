//! The `vault` store against real OpenBao dev servers (started by `tests/run`): the
//! conformance suite on several kinds of location, check-and-set conflicts, logins, and
//! end-to-end pipelines over two servers. Results are checked with plain HTTP calls, not
//! through vss's store code. Without the servers these tests fail: run `tests/run`.
#![cfg(feature = "vault")]

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{Vss, Workspace};
use serde_json::{Value, json};
use vss::error::ErrorKind;
use vss::secret::{SecretPath, SecretValue};
use vss::store::vault::{VaultDefaults, VaultStore};
use vss::store::{AnyStore, Store, StoreConfig, StoreDefaults, StoreError};

pub(crate) struct Servers {
    first: String,
    second: String,
    token: String,
}

pub(crate) fn servers() -> Servers {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: the Vault tests need the OpenBao servers that `tests/run` starts")
        })
    };
    Servers {
        first: var("VSS_TEST_VAULT_ADDR"),
        second: var("VSS_TEST_VAULT_ADDR_2"),
        token: var("VSS_TEST_VAULT_TOKEN"),
    }
}

/// The top-level `vault:` block of the configs run through the binary: the first server,
/// from the environment `run_vss` sets.
pub(crate) const HEADER: &str =
    "vault: {address: \"${VSS_TEST_VAULT_ADDR}\", auth: {token: \"${VSS_TEST_VAULT_TOKEN}\"}}\n";

/// A name no other test (or earlier run against the same server) uses.
pub(crate) fn unique(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}-{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// Raw HTTP access to one server: what the tests check with, independent of vss.
pub(crate) struct Http {
    address: String,
    token: String,
    namespace: Option<String>,
    client: reqwest::Client,
}

impl Http {
    /// The first server of `tests/run`, from the environment.
    pub(crate) fn from_env() -> Self {
        let s = servers();
        Self::new(&s.first, &s.token)
    }

    fn new(address: &str, token: &str) -> Self {
        Self { address: address.to_string(), token: token.to_string(), namespace: None, client: reqwest::Client::new() }
    }

    fn in_namespace(address: &str, token: &str, namespace: &str) -> Self {
        Self { namespace: Some(namespace.to_string()), ..Self::new(address, token) }
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request =
            self.client.request(method, format!("{}/v1/{path}", self.address)).header("X-Vault-Token", &self.token);
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn put_secret(&self, mount_path: &str, data: Value) {
        let (mount, path) = mount_path.split_once('/').unwrap();
        let (status, body) = self.call("POST", &format!("{mount}/data/{path}"), Some(json!({"data": data}))).await;
        assert_eq!(status, 200, "{body}");
    }

    /// The data and the custom metadata of a secret, or `None`.
    pub(crate) async fn secret(&self, mount_path: &str) -> Option<(Value, Value)> {
        let (mount, path) = mount_path.split_once('/').unwrap();
        let (status, body) = self.call("GET", &format!("{mount}/data/{path}"), None).await;
        (status == 200).then(|| (body["data"]["data"].clone(), body["data"]["metadata"]["custom_metadata"].clone()))
    }

    pub(crate) async fn list(&self, mount_folder: &str) -> Vec<String> {
        let (mount, folder) = mount_folder.split_once('/').unwrap_or((mount_folder, ""));
        let (status, body) = self.call("LIST", &format!("{mount}/metadata/{folder}"), None).await;
        if status == 404 {
            return Vec::new();
        }
        assert_eq!(status, 200, "{body}");
        body["data"]["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect()
    }

    async fn enable_kv(&self, mount: &str, version: &str) {
        let (status, body) = self
            .call("POST", &format!("sys/mounts/{mount}"), Some(json!({"type": "kv", "options": {"version": version}})))
            .await;
        assert!(status == 204 || status == 200, "{body}");
    }
}

fn vault_config(value: Value) -> StoreConfig {
    serde_json::from_value(json!({ "vault": value })).unwrap()
}

/// Opens a `vault:` store with these options on the first test server.
pub(crate) async fn open_default(options: Value) -> AnyStore {
    open(&vault_config(options), &servers()).await.unwrap()
}

/// Opens a vault store the way the engine does, with the test server as the default.
async fn open(config: &StoreConfig, servers: &Servers) -> Result<AnyStore, StoreError> {
    open_at(config, servers, None).await
}

/// Opens a vault store at its location, or at one target's bundle in it.
async fn open_at(
    config: &StoreConfig,
    servers: &Servers,
    bundle: Option<&vss::store::Bundle<'_>>,
) -> Result<AnyStore, StoreError> {
    let vault = VaultDefaults {
        address: Some(servers.first.clone()),
        auth: Some(serde_json::from_value(json!({"token": servers.token})).unwrap()),
        ..VaultDefaults::default()
    };
    let mut defaults = StoreDefaults::default();
    defaults.set("vault", std::sync::Arc::new(vault));
    crate::common::open_store(config, &defaults, bundle).await
}

#[tokio::test]
async fn conformance_of_a_merge_bundle() {
    let s = servers();
    let config = vault_config(json!({"mount": "secret", "prefix": unique("bundles")}));
    let bundle = vss::store::Bundle { target: "Prod", sources: &[] };
    let store = open_at(&config, &s, Some(&bundle)).await.unwrap();
    crate::conformance::run(&store, Some("Prod")).await;
}

#[tokio::test]
async fn conformance_on_a_prefix_of_the_default_mount() {
    let s = servers();
    let store = open(&vault_config(json!({"path": format!("secret/{}", unique("conformance"))})), &s).await.unwrap();
    crate::conformance::run(&store, None).await;
}

#[tokio::test]
async fn conformance_on_a_multi_segment_mount_its_root_and_mount_plus_prefix() {
    let s = servers();
    let http = Http::new(&s.first, &s.token);
    let mount = format!("{}/kv", unique("team"));
    http.enable_kv(&mount, "2").await;
    let root = open(&vault_config(json!({"path": mount})), &s).await.unwrap();
    crate::conformance::run(&root, None).await;
    let nested = open(&vault_config(json!({"path": format!("{mount}/apps/prod")})), &s).await.unwrap();
    crate::conformance::run(&nested, None).await;
    let split = open(&vault_config(json!({"mount": mount, "prefix": "apps/staging"})), &s).await.unwrap();
    crate::conformance::run(&split, None).await;
    // Written where the HTTP API says, relative to the mount.
    split.write(&SecretPath::parse("x").unwrap(), &SecretValue::new(json!({"k": 1})), "T").await.unwrap();
    let (status, body) = http.call("GET", &format!("{mount}/data/apps/staging/x"), None).await;
    assert_eq!((status, body["data"]["data"].clone()), (200, json!({"k": 1})));
}

#[tokio::test]
async fn a_kv_version_1_mount_is_refused() {
    let s = servers();
    let mount = unique("kv1");
    Http::new(&s.first, &s.token).enable_kv(&mount, "1").await;
    let error = open(&vault_config(json!({"path": format!("{mount}/app")})), &s).await.unwrap_err();
    assert!(error.to_string().contains("is a KV version 1 mount; vss needs KV version 2"), "{error}");
    let error = open(&vault_config(json!({"path": "no-such-mount/app"})), &s).await.unwrap_err();
    assert!(error.to_string().contains("no secrets engine is mounted"), "{error}");
}

#[tokio::test]
async fn a_write_over_a_concurrent_change_is_a_conflict_not_a_lost_update() {
    let s = servers();
    let http = Http::new(&s.first, &s.token);
    let folder = format!("secret/{}", unique("cas"));
    let store = open(&vault_config(json!({"path": folder})), &s).await.unwrap();
    let path = SecretPath::parse("app/db").unwrap();
    store.write(&path, &SecretValue::new(json!({"v": 1})), "T").await.unwrap();
    assert!(store.read(&path).await.unwrap().is_some());
    // Someone else writes between our read and our write.
    http.put_secret(&format!("{folder}/app/db"), json!({"v": "theirs"})).await;
    let error = store.write(&path, &SecretValue::new(json!({"v": 2})), "T").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict, "{error}");
    assert_eq!(http.secret(&format!("{folder}/app/db")).await.unwrap().0, json!({"v": "theirs"}));
    // A fresh read, then the write goes through.
    store.read(&path).await.unwrap();
    store.write(&path, &SecretValue::new(json!({"v": 2})), "T").await.unwrap();
    assert_eq!(http.secret(&format!("{folder}/app/db")).await.unwrap().0, json!({"v": 2}));
    // Scalars cannot be stored in KV2.
    let error = store.write(&path, &SecretValue::new(json!("flat")), "T").await.unwrap_err();
    assert!(error.to_string().contains("Vault KV2 stores objects only"), "{error}");
}

/// A pipeline over two servers: sources and the merge store on the first, targets on the
/// second; `@U@` in the config is replaced by a unique name.
const TWO_SERVERS: &str = r#"
vault:
  address: ${VSS_TEST_VAULT_ADDR}
  auth: { token: "${VSS_TEST_VAULT_TOKEN}" }
merge_store:
  vault: { mount: secret, prefix: @U@/merged }
pipeline:
  sync: { delete_orphans: true }
sources:
  common: { vault: { path: secret/@U@/src/common } }
  team:   { vault: { path: secret/@U@/src/team } }
  prod:   { vault: { path: secret/@U@/src/prod } }
targets:
  Base:
    imports: [common]
  Staging:
    inherits: Base
    imports: [team]
    vault: { path: secret/@U@/staging, address: "${VSS_TEST_VAULT_ADDR_2}" }
  Production:
    inherits: Staging
    imports: [prod]
    vault: { path: secret/@U@/production, address: "${VSS_TEST_VAULT_ADDR_2}" }
"#;

/// `vss` in `ws`, with the test servers' addresses and token in the environment (and
/// Vault's own variables unset).
pub(crate) fn vss_in(ws: &Workspace, s: &Servers) -> Vss {
    Vss::new()
        .cwd(ws.dir.path())
        .env("VSS_TEST_VAULT_ADDR", &s.first)
        .env("VSS_TEST_VAULT_ADDR_2", &s.second)
        .env("VSS_TEST_VAULT_TOKEN", &s.token)
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env("HOME", ws.dir.path())
}

fn run_vss(ws: &Workspace, s: &Servers, args: &[&str]) -> crate::common::Run {
    vss_in(ws, s).args(args).run()
}

fn calls(report: &Value, kind: &str) -> Value {
    report["stats"]["calls"][kind].clone()
}

#[tokio::test]
async fn vault_to_vault_to_vault_over_two_servers() {
    let s = servers();
    let (one, two) = (Http::new(&s.first, &s.token), Http::new(&s.second, &s.token));
    let u = unique("e2e");
    one.put_secret(
        &format!("secret/{u}/src/common/app/config"),
        json!({"level": "info", "hosts": ["a"], "db": {"host": "base", "port": 5432}}),
    )
    .await;
    one.put_secret(&format!("secret/{u}/src/common/app/db"), json!({"user": "app", "password": "base"})).await;
    one.put_secret(
        &format!("secret/{u}/src/team/app/config"),
        json!({"level": "debug", "hosts": ["b"], "db": {"host": "staging"}}),
    )
    .await;
    one.put_secret(&format!("secret/{u}/src/team/api/deep/stripe"), json!({"key": "sk_test"})).await;
    one.put_secret(&format!("secret/{u}/src/prod/app/db"), json!({"password": "prod"})).await;
    let ws = Workspace::new();
    ws.write("vss.yaml", &TWO_SERVERS.replace("@U@", &u));

    // The dry run finds everything to add and writes nothing anywhere.
    let dry = run_vss(&ws, &s, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    assert_eq!(dry.json()["summary"]["added"], (2 + 3 + 3) + (3 + 3));
    assert_eq!(calls(&dry.json(), "vault")["write"], 0);
    assert!(one.list(&format!("secret/{u}/merged")).await.is_empty());
    assert!(two.list(&format!("secret/{u}")).await.is_empty());

    // The apply writes exactly the deep-merged values, each target on the second server.
    let apply = run_vss(&ws, &s, &["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let (config, marker) = two.secret(&format!("secret/{u}/production/app/config")).await.unwrap();
    assert_eq!(config, json!({"level": "debug", "hosts": ["a", "b"], "db": {"host": "staging", "port": 5432}}));
    assert_eq!(marker, json!({"managed-by": "vss", "vss-target": "Production"}));
    assert_eq!(
        two.secret(&format!("secret/{u}/production/app/db")).await.unwrap().0,
        json!({"user": "app", "password": "prod"})
    );
    assert_eq!(
        two.secret(&format!("secret/{u}/staging/app/db")).await.unwrap().0,
        json!({"user": "app", "password": "base"})
    );
    assert_eq!(
        two.secret(&format!("secret/{u}/production/api/deep/stripe")).await.unwrap().0,
        json!({"key": "sk_test"})
    );
    assert!(one.list(&format!("secret/{u}/production")).await.is_empty(), "targets go to the second server only");
    // Bundles on the first server, one folder per target, each with its manifest beside it,
    // and the registry of the targets written.
    assert_eq!(
        one.list(&format!("secret/{u}/merged")).await,
        ["Base", "Base/", "Production", "Production/", "Staging", "Staging/", "vss-registry/"]
    );
    let (manifest, _) = one.secret(&format!("secret/{u}/merged/Base")).await.unwrap();
    assert_eq!(
        (manifest["vss_manifest"].as_u64(), manifest["state"].as_str()),
        (Some(1), Some("complete")),
        "{manifest}"
    );
    assert_eq!(manifest["secrets"]["app/db"]["version"], 1, "{manifest}");
    assert!(manifest["secrets"]["app/db"]["digest"].as_str().unwrap().starts_with("hmac:"), "{manifest}");
    let (bundle, bundle_marker) = one.secret(&format!("secret/{u}/merged/Base/app/db")).await.unwrap();
    assert_eq!(bundle, json!({"user": "app", "password": "base"}));
    assert!(bundle_marker.is_null(), "bundles carry no per-secret marker: {bundle_marker}");

    // Zero-sum now, with zero writes.
    let again = run_vss(&ws, &s, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(calls(&again.json(), "vault")["write"], 0);
    let noop = run_vss(&ws, &s, &["pipeline", "--exit-code", "--output", "json"]);
    assert_eq!(noop.code, 0, "{}", noop.transcript());
    assert_eq!(calls(&noop.json(), "vault")["write"], 0);
    assert_eq!(calls(&noop.json(), "vault")["delete"], 0);

    // One changed key: exactly that key, in exactly the targets that import it.
    one.put_secret(&format!("secret/{u}/src/common/app/db"), json!({"user": "app2", "password": "base"})).await;
    let changed = run_vss(&ws, &s, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(changed.code, 1);
    let report = changed.json();
    assert_eq!(report["summary"]["modified"], 5, "{report:#}");
    for target in report["targets"].as_array().unwrap() {
        let changes = target["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1, "{target:#}");
        assert_eq!(changes[0]["keys_modified"], json!(["user"]));
    }

    // A secret someone else put in a target is never touched; an owned orphan goes.
    two.put_secret(&format!("secret/{u}/production/manual"), json!({"keep": true})).await;
    let (status, _) = one.call("DELETE", &format!("secret/metadata/{u}/src/team/api/deep/stripe"), None).await;
    assert_eq!(status, 204);
    let apply = run_vss(&ws, &s, &["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert!(two.secret(&format!("secret/{u}/production/api/deep/stripe")).await.is_none());
    assert!(
        one.secret(&format!("secret/{u}/merged/Production/api/deep/stripe")).await.is_none(),
        "vanished paths leave the bundle"
    );
    assert_eq!(two.secret(&format!("secret/{u}/production/manual")).await.unwrap().0, json!({"keep": true}));
    assert_eq!(two.secret(&format!("secret/{u}/production/app/db")).await.unwrap().0["user"], "app2");

    // SYNC alone reads the bundles back from the merge store.
    let sync_only = run_vss(&ws, &s, &["pipeline", "--sync-only", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(sync_only.code, 0, "{}", sync_only.transcript());
}

#[tokio::test]
async fn two_concurrent_runs_on_one_merge_store_lose_no_update() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("race");
    for i in 0..40 {
        one.put_secret(&format!("secret/{u}/src/s{i}"), json!({"v": i})).await;
    }
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}merge_store: {{vault: {{path: secret/{u}/merged}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  A: {{imports: [src], vault: {{path: secret/{u}/a}}}}\n  B: {{imports: [src], vault: {{path: secret/{u}/b}}}}\n"
        ),
    );
    assert_eq!(run_vss(&ws, &s, &["pipeline"]).code, 0);
    for round in 0..3 {
        for i in 0..40 {
            one.put_secret(&format!("secret/{u}/src/s{i}"), json!({"v": i, "round": round})).await;
        }
        crate::common::run_concurrently(2, || {
            Vss::new()
                .cwd(ws.dir.path())
                .env("VSS_TEST_VAULT_ADDR", &s.first)
                .env("VSS_TEST_VAULT_TOKEN", &s.token)
                .args(["-v", "pipeline", "--output", "compact", "--parallel", "16"])
        });
        for target in ["merged/A", "merged/B", "a", "b"] {
            for i in [0, 17, 39] {
                let (value, _) = one.secret(&format!("secret/{u}/{target}/s{i}")).await.unwrap();
                assert_eq!(value, json!({"v": i, "round": round}), "{target}/s{i} after round {round}");
            }
        }
        let check = run_vss(&ws, &s, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
        assert_eq!(check.stdout, "ZERO-SUM: 160 unchanged\n", "{}", check.transcript());
    }
}

#[tokio::test]
async fn the_audit_log_in_a_vault_merge_store_keeps_every_event_of_concurrent_runs() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("audit");
    one.put_secret(&format!("secret/{u}/src/app/db"), json!({"password": "CANARY-audit-vault-3f1"})).await;
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}merge_store: {{vault: {{path: secret/{u}/merged}}}}\naudit: {{merge_store: vss-audit}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  A: {{imports: [src], vault: {{path: secret/{u}/a}}}}\n  B: {{imports: [src], vault: {{path: secret/{u}/b}}}}\n"
        ),
    );
    let vss = || {
        Vss::new()
            .cwd(ws.dir.path())
            .env("VSS_TEST_VAULT_ADDR", &s.first)
            .env("VSS_TEST_VAULT_TOKEN", &s.token)
            .env_remove("GITHUB_ACTOR")
            .env("USER", "auditor")
    };
    // Each run: two merges and two syncs.
    let report = crate::common::audit_log_keeps_concurrent_runs(vss, 3, 4);
    assert!(report["events"].as_array().unwrap().iter().all(|e| e["actor"] == "auditor"), "{report}");
    // One KV2 secret per run beside the bundles, named by time and run id, holding no value.
    let entries = one.list(&format!("secret/{u}/merged/vss-audit")).await;
    assert_eq!(entries.len(), 4, "{entries:?}");
    assert!(entries.iter().all(|e| crate::common::is_audit_entry(e)), "{entries:?}");
    for entry in &entries {
        let (data, _) = one.secret(&format!("secret/{u}/merged/vss-audit/{entry}")).await.unwrap();
        assert_eq!(data["events"].as_array().unwrap().len(), 4, "{data}");
        assert!(!data.to_string().contains("CANARY-audit"), "no value in the log");
    }
    // The bundles are where they were, and the log is not one of them.
    let mut bundles = one.list(&format!("secret/{u}/merged")).await;
    bundles.sort();
    assert_eq!(bundles, ["A", "A/", "B", "B/", "vss-audit/", "vss-registry/"]);
    let check = vss().args(["pipeline", "--dry-run", "--exit-code", "--output", "compact"]).run();
    assert_eq!(check.stdout, "ZERO-SUM: 4 unchanged\n", "{}", check.transcript());

    // A log that cannot be written fails the run (exit 2) and says where.
    let policy = format!(
        "path \"secret/*\" {{ capabilities = [\"read\", \"list\"] }}\npath \"secret/data/{u}/merged/vss-audit/*\" {{ capabilities = [\"deny\"] }}\npath \"secret/data/{u}/merged/A/*\" {{ capabilities = [\"create\", \"update\", \"read\"] }}\npath \"secret/data/{u}/merged/B/*\" {{ capabilities = [\"create\", \"update\", \"read\"] }}\n"
    );
    let (status, body) = one.call("PUT", &format!("sys/policies/acl/{u}"), Some(json!({"policy": policy}))).await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = one.call("POST", "auth/token/create", Some(json!({"policies": [u], "ttl": "10m"}))).await;
    assert_eq!(status, 200, "{body}");
    let token = body["auth"]["client_token"].as_str().unwrap().to_string();
    let denied = vss().env("VSS_TEST_VAULT_TOKEN", &token).args(["pipeline", "--dry-run"]).run();
    assert_eq!(denied.code, 2, "{}", denied.transcript());
    assert!(
        denied.stderr.contains(&format!(
            "cannot append to the audit log `vss-audit` in the merge store (vault secret/{u}/merged)"
        )),
        "{}",
        denied.stderr
    );
    // The check above appended its entry; the refused run none.
    assert_eq!(one.list(&format!("secret/{u}/merged/vss-audit")).await.len(), 5);
}

#[tokio::test]
async fn a_run_that_would_delete_eleven_owned_secrets_is_refused_with_the_numbers() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("mass");
    for i in 0..12 {
        one.put_secret(&format!("secret/{u}/src/s{i}"), json!({"v": i})).await;
    }
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}pipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t}}}}\n"
        ),
    );
    assert_eq!(run_vss(&ws, &s, &["pipeline"]).code, 0);
    for i in 1..12 {
        let (status, body) = one.call("DELETE", &format!("secret/metadata/{u}/src/s{i}"), None).await;
        assert_eq!(status, 204, "{body}");
    }
    for args in [&["pipeline", "--dry-run", "--output", "json"][..], &["pipeline", "--output", "json"][..]] {
        let out = run_vss(&ws, &s, args);
        assert_eq!(out.code, 2, "{}", out.transcript());
        let error = &out.json()["errors"][0];
        assert_eq!(error["kind"], "refused", "{error}");
        assert!(
            error["message"].as_str().unwrap().contains(
                "it would delete 11 of the 12 secrets vss owns here (92 %), over the limit of 10 secrets and 25 %"
            ),
            "{error}"
        );
    }
    assert_eq!(one.list(&format!("secret/{u}/t")).await.len(), 12, "nothing deleted");
    let forced = run_vss(&ws, &s, &["pipeline", "--allow-mass-delete", "--output", "compact"]);
    assert_eq!(forced.stdout, "APPLIED: +0 ~0 -11 =1\n", "{}", forced.transcript());
    assert_eq!(one.list(&format!("secret/{u}/t")).await, ["s0"]);
}

/// Forwards a request to the Vault at `upstream` and returns its answer.
fn forward(upstream: &str, request: &crate::loopback::Request) -> crate::loopback::Response {
    let query: Vec<String> = request.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let url = if query.is_empty() {
        format!("{upstream}{}", request.path)
    } else {
        format!("{upstream}{}?{}", request.path, query.join("&"))
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let method = reqwest::Method::from_bytes(request.method.as_bytes()).unwrap();
        let mut call = reqwest::Client::new().request(method, url).body(request.body.clone());
        for (name, value) in &request.headers {
            if name.starts_with("x-vault-") || name == "content-type" {
                call = call.header(name.as_str(), value.as_str());
            }
        }
        let answer = call.send().await.unwrap();
        let status = answer.status().as_u16();
        crate::loopback::Response {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: answer.text().await.unwrap(),
        }
    })
}

#[tokio::test]
async fn a_write_whose_answer_is_lost_still_counts_as_made_by_the_run() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("lost");
    one.put_secret(&format!("secret/{u}/src/a"), json!({"v": 1})).await;
    // A proxy in front of the target's Vault: the first write of `a` lands, and its answer
    // is lost (a 500). vss retries it, meets its own new version (a check-and-set
    // conflict), and starts over from a fresh read, which finds `a` as desired.
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (upstream, write) = (s.first.clone(), format!("/v1/secret/data/{u}/t/a"));
    let seen = lost.clone();
    let proxy = crate::loopback::serve(move |request| {
        let answer = forward(&upstream, &request);
        if request.method == "POST" && request.path == write && !seen.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return crate::loopback::Response { status: 500, body: r#"{"errors":["lost"]}"#.into(), ..answer };
        }
        answer
    });
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{address: \"{proxy}\", path: secret/{u}/t}}}}\n"
        ),
    );
    let out = run_vss(&ws, &s, &["pipeline", "--exit-code", "--output", "json"]);
    assert!(lost.load(std::sync::atomic::Ordering::SeqCst), "the answer was lost");
    assert_eq!(out.code, 1, "the run made a change: {}", out.transcript());
    let report = out.json();
    assert_eq!(report["summary"]["added"], 1, "{report}");
    let change = &report["targets"][0]["changes"][0];
    assert_eq!((change["path"].as_str(), change["status"].as_str()), (Some("a"), Some("applied")), "{change}");
    assert_eq!(one.secret(&format!("secret/{u}/t/a")).await.unwrap().0, json!({"v": 1}));
}

#[test]
fn a_vault_that_never_answers_fails_in_bounded_time_naming_the_call() {
    let hung = crate::common::hung_server();
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "pipeline: {{timeouts: {{connect: 1, request: 1}}}}\nvault: {{address: \"{hung}\"}}\nsource: {{vault: {{path: secret/src}}}}\ntargets:\n  A: {{vault: {{path: secret/a}}}}\n  B: {{vault: {{path: secret/b}}}}\n"
        ),
    );
    let started = std::time::Instant::now();
    let out = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_TOKEN", "t")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--output", "json"])
        .run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    let report = out.json();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{report}");
    for error in errors {
        assert_eq!(error["kind"], "timeout", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(&format!("GET auth/token/lookup-self at {hung}: no answer within 1 s")), "{error}");
        assert!(error["hint"].as_str().unwrap().contains("pipeline.timeouts.request"), "{error}");
    }
    // One login, retried, shared by both targets: seconds, not minutes (a loose bound, for
    // a hang only; the retries take about 5 s).
    assert!(started.elapsed() < std::time::Duration::from_secs(60), "{:?}", started.elapsed());

    // With the default 30 s per request, `--timeout` bounds the whole run.
    let config = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write("vss.yaml", &config.replace("pipeline: {timeouts: {connect: 1, request: 1}}\n", ""));
    let started = std::time::Instant::now();
    let out = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_TOKEN", "t")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--output", "json", "--timeout", "2"])
        .run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    let report = out.json();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{report}");
    for error in errors {
        assert_eq!(error["kind"], "timeout", "{error}");
        assert!(
            error["message"].as_str().unwrap().starts_with("not planned: the run's --timeout of 2 s passed"),
            "{error}"
        );
    }
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "well before one request's 30 s: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn approle_login_works_and_a_failed_login_is_one_clear_error() {
    let s = servers();
    let http = Http::new(&s.first, &s.token);
    let u = unique("approle");
    let (status, body) = http.call("POST", &format!("sys/auth/{u}"), Some(json!({"type": "approle"}))).await;
    assert_eq!(status, 204, "{body}");
    let writer = format!(
        "path \"secret/data/{u}/*\" {{ capabilities = [\"create\", \"read\", \"update\"] }}\npath \"secret/metadata/{u}/*\" {{ capabilities = [\"read\", \"list\", \"update\", \"delete\"] }}\npath \"secret/metadata/{u}\" {{ capabilities = [\"list\"] }}\n"
    );
    let reader = format!(
        "path \"secret/data/{u}/*\" {{ capabilities = [\"read\"] }}\npath \"secret/metadata/{u}/*\" {{ capabilities = [\"read\", \"list\"] }}\n"
    );
    for (name, policy) in [("writer", &writer), ("reader", &reader)] {
        let (status, body) =
            http.call("PUT", &format!("sys/policies/acl/{u}-{name}"), Some(json!({"policy": policy}))).await;
        assert_eq!(status, 204, "{body}");
        let (status, body) = http
            .call("POST", &format!("auth/{u}/role/{name}"), Some(json!({"token_policies": [format!("{u}-{name}")]})))
            .await;
        assert_eq!(status, 204, "{body}");
    }
    let credentials = |name: &'static str| {
        let http = &http;
        let u = u.clone();
        async move {
            let (_, role) = http.call("GET", &format!("auth/{u}/role/{name}/role-id"), None).await;
            let (_, secret) = http.call("POST", &format!("auth/{u}/role/{name}/secret-id"), None).await;
            (
                role["data"]["role_id"].as_str().unwrap().to_string(),
                secret["data"]["secret_id"].as_str().unwrap().to_string(),
            )
        }
    };
    http.put_secret(&format!("secret/{u}/src/app"), json!({"k": "v"})).await;
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "vault:\n  address: \"${{VSS_TEST_VAULT_ADDR}}\"\n  auth: {{ approle: {{ mount: {u}, role_id: \"${{ROLE_ID}}\", secret_id: \"${{SECRET_ID}}\" }} }}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets: {{T: {{imports: [src], vault: {{path: secret/{u}/target}}}}}}\n"
        ),
    );
    let run_as = |role: String, secret: String, args: &[&str]| {
        Vss::new()
            .cwd(ws.dir.path())
            .env("VSS_TEST_VAULT_ADDR", &s.first)
            .env("ROLE_ID", role)
            .env("SECRET_ID", secret)
            .env_remove("VAULT_TOKEN")
            .args(args)
            .run()
    };

    let (role, secret) = credentials("writer").await;
    let run = run_as(role.clone(), secret.clone(), &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let (value, marker) = http.secret(&format!("secret/{u}/target/app")).await.unwrap();
    assert_eq!((value, marker["vss-target"].clone()), (json!({"k": "v"}), json!("T")));

    // A wrong secret id: exit 2, one line naming the method and the mount.
    let run = run_as(role, "not-the-secret-id".into(), &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains(&format!("Vault login failed (approle at auth/{u}) at {}", s.first)), "{message}");
    assert!(!message.contains('\n') && !message.contains("not-the-secret-id"), "{message}");

    // A role that may only read: the write is refused, naming the path and the capability.
    http.put_secret(&format!("secret/{u}/src/app"), json!({"k": "changed"})).await;
    let (role, secret) = credentials("reader").await;
    let run = run_as(role, secret, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&format!("POST secret/data/{u}/target/app"))
            && message.contains("lacks the `create/update` capability"),
        "{message}"
    );
}

#[test]
fn a_wrong_token_exits_2_with_a_one_line_reason() {
    let s = servers();
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        "source: {vault: {path: secret/anything}, allow_empty: true}\ntargets: {T: {vault: {path: secret/elsewhere}}}\n",
    );
    let run = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_ADDR", &s.first)
        .env("VAULT_TOKEN", "not-a-token")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--dry-run", "--output", "compact"])
        .run();
    assert_eq!(run.code, 2, "{}", run.transcript());
    let human = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_ADDR", &s.first)
        .env("VAULT_TOKEN", "not-a-token")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--dry-run"])
        .run();
    let error_line =
        human.stdout.lines().find(|l| l.contains("error:")).unwrap_or_else(|| panic!("{}", human.transcript()));
    assert!(
        error_line.contains(&format!("Vault rejected the token at {} (token lookup: permission denied)", s.first)),
        "{error_line}"
    );
    assert!(!human.stdout.contains("not-a-token") && !human.stderr.contains("not-a-token"));

    // One connection logs in once: three sources and three targets on it share one
    // failed login (one token lookup), and every target names it.
    let mut many = String::from("sources:\n");
    for i in 0..3 {
        many.push_str(&format!("  s{i}: {{vault: {{path: secret/s{i}}}, allow_empty: true}}\n"));
    }
    many.push_str("targets:\n");
    for i in 0..3 {
        many.push_str(&format!("  t{i}: {{imports: [s{i}], vault: {{path: secret/t{i}}}}}\n"));
    }
    ws.write("many.yaml", &many);
    let shared = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_ADDR", &s.first)
        .env("VAULT_TOKEN", "not-a-token")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--config", "many.yaml", "--dry-run", "--output", "json"])
        .run();
    assert_eq!(shared.code, 2, "{}", shared.transcript());
    let report = shared.json();
    assert_eq!(report["stats"]["calls"]["vault"]["read"], 1, "one login for the connection: {report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{report}");
    assert!(errors.iter().all(|e| e["message"].as_str().unwrap().contains("Vault rejected the token")), "{report}");

    // The same token from ~/.vault-token, the way Vault's own CLI finds it.
    std::fs::write(ws.path(".vault-token"), "not-a-token\n").unwrap();
    let from_file = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_ADDR", &s.first)
        .env_remove("VAULT_TOKEN")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--dry-run"])
        .run();
    assert!(from_file.stdout.contains("Vault rejected the token"), "{}", from_file.transcript());
    std::fs::write(ws.path(".vault-token"), format!("{}\n", s.token)).unwrap();
    let good = Vss::new()
        .cwd(ws.dir.path())
        .env("VAULT_ADDR", &s.first)
        .env_remove("VAULT_TOKEN")
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--dry-run", "--exit-code"])
        .run();
    assert_eq!(good.code, 0, "an empty source and target are zero-sum: {}", good.transcript());
}

#[test]
fn tls_with_a_ca_file_with_skip_verify_and_without_either() {
    let s = servers();
    let address = std::env::var("VSS_TEST_VAULT_TLS_ADDR").expect("VSS_TEST_VAULT_TLS_ADDR: run tests/run");
    let ca = std::env::var("VSS_TEST_VAULT_TLS_CACERT").expect("VSS_TEST_VAULT_TLS_CACERT: run tests/run");
    let ws = Workspace::new();
    let plain = "source: {vault: {path: secret/tls-src}, allow_empty: true}\ntargets: {T: {file: {path: out}}}\n";
    let run = |envs: &[(&str, &str)], config: &str| {
        ws.write("vss.yaml", config);
        let mut vss = Vss::new()
            .cwd(ws.dir.path())
            .env("VAULT_ADDR", &address)
            .env("VAULT_TOKEN", &s.token)
            .env("HOME", ws.dir.path())
            .env_remove("VAULT_CACERT")
            .env_remove("VAULT_SKIP_VERIFY");
        for (k, v) in envs {
            vss = vss.env(k, v);
        }
        vss.args(["pipeline", "--dry-run", "--output", "json"]).run()
    };
    let untrusted = run(&[], plain);
    assert_eq!(untrusted.code, 2, "{}", untrusted.transcript());
    let message = untrusted.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains(&format!("cannot reach Vault at {address}")) && message.contains("certificate"),
        "{message}"
    );
    let with_env = run(&[("VAULT_CACERT", &ca)], plain);
    assert_eq!(with_env.code, 0, "{}", with_env.transcript());
    assert_eq!(run(&[("VAULT_SKIP_VERIFY", "true")], plain).code, 0);
    let in_config = format!("vault: {{ca_cert: \"{ca}\"}}\n{plain}");
    assert_eq!(run(&[], &in_config).code, 0);
}

#[tokio::test]
async fn namespaces_per_store() {
    let s = servers();
    let root = Http::new(&s.first, &s.token);
    let namespace = unique("ns");
    let (status, body) = root.call("POST", &format!("sys/namespaces/{namespace}"), None).await;
    assert_eq!(status, 200, "{body}");
    let inside = Http::in_namespace(&s.first, &s.token, &namespace);
    inside.enable_kv("kv", "2").await;
    inside.put_secret("kv/app/db", json!({"user": "ns-user"})).await;
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{ns: {{vault: {{path: kv/app, namespace: {namespace}}}}}}}\ntargets:\n  T: {{imports: [ns], vault: {{path: kv/copy, namespace: {namespace}}}}}\n  F: {{imports: [ns], file: {{path: out}}}}\n"
        ),
    );
    let run = run_vss(&ws, &s, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(ws.read_json("out/db.json"), json!({"user": "ns-user"}));
    let (status, body) = inside.call("GET", "kv/data/copy/db", None).await;
    assert_eq!((status, body["data"]["data"].clone()), (200, json!({"user": "ns-user"})));
    let (status, _) = root.call("GET", "kv/data/copy/db", None).await;
    assert_ne!(status, 200, "written inside the namespace only");
}

#[tokio::test]
async fn kubernetes_login_reaches_the_server_and_failures_are_one_clear_error() {
    let s = servers();
    let http = Http::new(&s.first, &s.token);
    let mount = unique("k8s");
    let (status, body) = http.call("POST", &format!("sys/auth/{mount}"), Some(json!({"type": "kubernetes"}))).await;
    assert_eq!(status, 204, "{body}");
    let ca = std::fs::read_to_string(std::env::var("VSS_TEST_VAULT_TLS_CACERT").expect("run tests/run")).unwrap();
    let config =
        json!({"kubernetes_host": "https://127.0.0.1:1", "disable_local_ca_jwt": true, "kubernetes_ca_cert": ca});
    let (status, body) = http.call("POST", &format!("auth/{mount}/config"), Some(config)).await;
    assert_eq!(status, 204, "{body}");
    let role = json!({"bound_service_account_names": ["vss"], "bound_service_account_namespaces": ["ci"]});
    let (status, body) = http.call("POST", &format!("auth/{mount}/role/vss"), Some(role)).await;
    assert_eq!(status, 204, "{body}");
    let ws = Workspace::new();
    ws.write("jwt", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n");
    let config = |jwt: &str| {
        format!(
            "vault: {{address: \"${{VSS_TEST_VAULT_ADDR}}\", auth: {{kubernetes: {{mount: {mount}, role: vss, jwt_path: \"{jwt}\"}}}}}}\nsource: {{vault: {{path: secret/k8s}}}}\ntargets: {{T: {{file: {{path: out}}}}}}\n"
        )
    };
    // The server received the login (role and token) and refused it.
    ws.write("vss.yaml", &config(&ws.path("jwt").display().to_string()));
    let run = run_vss(&ws, &s, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
    let expected = format!("Vault login failed (kubernetes at auth/{mount}) at {}", s.first);
    assert!(message.contains(&expected) && !message.contains('\n'), "{message}");
    // No token file: the same error, naming the file.
    ws.write("vss.yaml", &config("/nonexistent/token"));
    let run = run_vss(&ws, &s, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 2);
    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains(&expected) && message.contains("cannot read /nonexistent/token"), "{message}");
}

#[tokio::test]
async fn no_value_from_vault_is_ever_printed() {
    const CANARY: &str = "CANARY-vault-91b2";
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("leak");
    one.put_secret(&format!("secret/{u}/src/app/db"), json!({"password": format!("{CANARY}-1"), "list": [CANARY]}))
        .await;
    one.put_secret(&format!("secret/{u}/src/app/api"), json!({"token": format!("{CANARY}-2")})).await;
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}merge_store: {{vault: {{path: secret/{u}/merged}}}}\npipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  V: {{imports: [src], vault: {{path: secret/{u}/target, address: \"${{VSS_TEST_VAULT_ADDR_2}}\"}}}}\n  F: {{imports: [src], file: {{path: out}}}}\n"
        ),
    );
    let check = |label: &str, ws: &Workspace| {
        for output in ["human", "json", "github", "compact"] {
            for dry in [true, false] {
                let mut args = vec!["-vvv", "pipeline", "--show-unchanged", "--output", output];
                if dry {
                    args.push("--dry-run");
                }
                let run = run_vss(ws, &s, &args);
                assert!(
                    !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
                    "{label} {output}: {}",
                    run.transcript()
                );
            }
        }
    };
    check("first runs", &ws);
    assert!(std::fs::read_to_string(ws.path("out/app/db.json")).unwrap().contains(CANARY), "the values did arrive");
    let source = open(&vault_config(json!({"path": format!("secret/{u}/src")})), &s).await.unwrap();
    crate::no_leak::assert_debug_clean(source, CANARY).await;
    one.put_secret(&format!("secret/{u}/src/app/db"), json!({"password": format!("{CANARY}-changed")})).await;
    check("after a change", &ws);
}

#[test]
fn a_value_vault_cannot_hold_is_refused_when_the_plan_is_made() {
    let s = servers();
    let ws = Workspace::new();
    let folder = unique("unfit");
    ws.write("s.yaml", "app/db: {user: app}\napp/token: just-a-string\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{vault: {{path: secret/{folder}}}}}}}\n"),
    );
    for args in [&["pipeline", "--dry-run", "--output", "json"][..], &["pipeline", "--output", "json"][..]] {
        let run = run_vss(&ws, &s, args);
        assert_eq!(run.code, 2, "{}", run.transcript());
        let error = &run.json()["errors"][0];
        assert_eq!(error["kind"], "invalid", "{error}");
        assert_eq!(error["store"], "vault", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("secret `app/token` cannot be written: it is not an object"), "{message}");
        assert!(!message.contains("just-a-string"), "no value in errors: {message}");
        assert_eq!(calls(&run.json(), "vault")["write"], 0, "nothing is written, not even the object");
    }
}

#[tokio::test]
async fn a_typo_in_a_source_path_fails_and_deletes_nothing() {
    let s = servers();
    let http = Http::new(&s.first, &s.token);
    let u = unique("typo");
    http.put_secret(&format!("secret/{u}/platform/common/app"), json!({"k": "v"})).await;
    let ws = Workspace::new();
    let config = |path: &str| {
        format!(
            "{HEADER}pipeline: {{sync: {{delete_orphans: true}}}}\nsource: {{vault: {{path: secret/{u}/{path}}}}}\ntargets: {{T: {{vault: {{path: secret/{u}/target}}}}}}\n"
        )
    };
    ws.write("vss.yaml", &config("platform/common"));
    assert_eq!(run_vss(&ws, &s, &["pipeline"]).code, 0);
    assert!(http.secret(&format!("secret/{u}/target/app")).await.is_some());
    ws.write("vss.yaml", &config("platfrom/common"));
    let run = run_vss(&ws, &s, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let error = &run.json()["errors"][0];
    assert_eq!((error["kind"].as_str(), error["store"].as_str()), (Some("not_found"), Some("vault")), "{error}");
    assert!(error["message"].as_str().unwrap().contains("platfrom/common"), "{error}");
    assert_eq!(calls(&run.json(), "vault")["delete"], 0);
    assert!(http.secret(&format!("secret/{u}/target/app")).await.is_some(), "the target keeps its secret");
}

#[test]
fn an_integer_vault_would_round_is_refused_naming_its_key() {
    let s = servers();
    let ws = Workspace::new();
    let folder = unique("round");
    ws.write("s.yaml", "app/ids: {small: 9007199254740992, big: 12345678901234567}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{vault: {{path: secret/{folder}}}}}}}\n"),
    );
    let run = run_vss(&ws, &s, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message
            .contains("secret `app/ids` cannot be written: key `big` holds a number whose text the store would change"),
        "{message}"
    );
    assert!(!message.contains("12345678901234567"), "no value in errors: {message}");
}

/// What vss accepts for Vault is exactly what the real server returns unchanged: every
/// number below is written to OpenBao as raw JSON and read back, and vss's check accepts
/// it if and only if its text came back byte for byte.
#[tokio::test]
async fn vault_is_refused_exactly_the_numbers_whose_text_it_would_change() {
    use vss::store::StoreKind;
    let s = servers();
    let http = Http::new(&s.first, &s.token);
    let folder = unique("numbers");
    let numbers = [
        "0",
        "-0",
        "1",
        "-17",
        "1.5",
        "0.1",
        "1.10",
        "1.0",
        "2.50",
        "9007199254740992",
        "9007199254740993",
        "12345678901234567",
        "12345678901234567890123",
        "98765432109876543210",
        "100000000000000000000",
        "1e+21",
        "1e21",
        "1E21",
        "1.2345678901234568e+22",
        "1e-7",
        "0.000001",
        "0.0000001",
        "1e-6",
        "2.5e-3",
        "123.456e-300",
        "5e-324",
        "1.7976931348623157e+308",
        "1e400",
        "1e+5",
        "100000",
    ];
    for (i, text) in numbers.iter().enumerate() {
        let data: Value = serde_json::from_str(&format!(r#"{{"n": {text}}}"#)).unwrap();
        let sent = data["n"].to_string();
        let (status, _) = http.call("POST", &format!("secret/data/{folder}/{i}"), Some(json!({"data": data}))).await;
        let returned = match status {
            200 => http.secret(&format!("secret/{folder}/{i}")).await.map(|(data, _)| data["n"].to_string()),
            _ => None,
        };
        let exact = returned.as_deref() == Some(sent.as_str());
        let accepted = VaultStore::CAPABILITIES.accepts(&SecretValue::new(data)).is_ok();
        assert_eq!(accepted, exact, "{text}: vss accepts it: {accepted}, OpenBao returned {returned:?}");
    }
}

#[tokio::test]
async fn a_plan_is_stale_once_a_target_secret_gets_a_new_version_and_applies_exactly_when_not() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("plan");
    one.put_secret(&format!("secret/{u}/src/a"), json!({"v": "canary-plan-1"})).await;
    one.put_secret(&format!("secret/{u}/src/b"), json!({"v": 2})).await;
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t}}}}\n"
        ),
    );
    let vss = |args: &[&str]| vss_in(&ws, &s).env("VSS_FINGERPRINT_KEY", "vault-plan-key").args(args).run();
    assert_eq!(vss(&["pipeline"]).code, 0);
    one.put_secret(&format!("secret/{u}/src/a"), json!({"v": "canary-plan-2"})).await;
    let planned = vss(&["plan", "-o", "plan.json", "--output", "compact"]);
    assert_eq!(planned.stdout, "CHANGES: +0 ~1 -0 =1\n", "{}", planned.transcript());
    let plan = ws.read_json("plan.json");
    let change = &plan["targets"][0]["changes"][0];
    assert_eq!((change["path"].as_str(), change["live"]["version"].as_str()), (Some("a"), Some("1")), "{plan:#}");
    assert_eq!(change["live"]["owner"], "T");
    assert!(!plan.to_string().contains("canary-plan"), "{plan}");

    // Someone writes `a` again, with the value it had: same value, new version.
    one.put_secret(&format!("secret/{u}/t/a"), json!({"v": "canary-plan-1"})).await;
    let stale = vss(&["apply", "plan.json", "--output", "json"]);
    assert_eq!(stale.code, 2, "{}", stale.transcript());
    let message = stale.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("`T` (sync) `a`: the live secret changed (version 1, hmac:"), "{message}");
    assert!(message.contains("→ version 2, hmac:"), "{message}");
    let (_, body) = one.call("GET", &format!("secret/data/{u}/t/a"), None).await;
    let (value, version) = (&body["data"]["data"], body["data"]["metadata"]["version"].as_u64());
    assert_eq!((value, version), (&json!({"v": "canary-plan-1"}), Some(2)), "nothing written");

    assert_eq!(vss(&["plan", "-o", "plan.json"]).code, 0);
    let applied = vss(&["apply", "plan.json", "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let report = applied.json();
    assert_eq!(report["summary"]["modified"], 1, "{report}");
    assert_eq!(calls(&report, "vault")["write"], 1, "{report}");
    let (_, body) = one.call("GET", &format!("secret/data/{u}/t/a"), None).await;
    let (value, version) = (&body["data"]["data"], body["data"]["metadata"]["version"].as_u64());
    assert_eq!((value, version), (&json!({"v": "canary-plan-2"}), Some(3)));
}

#[tokio::test]
async fn a_vault_killed_mid_merge_leaves_sync_seeing_only_whole_bundles() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("killed");
    let generation = |g: u32| (0..20).map(move |i| (format!("s{i:02}"), json!({"v": i, "generation": g})));
    for (name, value) in generation(1) {
        one.put_secret(&format!("secret/{u}/src/{name}"), value).await;
    }
    // The merge store is reached through a proxy that "dies" (drops every connection
    // without an answer) after 8 bundle writes, until it is "restarted".
    let (dead, writes) = (std::sync::Arc::new(AtomicBool::new(false)), std::sync::Arc::new(AtomicUsize::new(0)));
    let armed = std::sync::Arc::new(AtomicBool::new(false));
    let (upstream, bundle) = (s.first.clone(), format!("/v1/secret/data/{u}/merged/T/"));
    let (d, w, a) = (dead.clone(), writes.clone(), armed.clone());
    let proxy = crate::loopback::serve(move |request| {
        if d.load(Ordering::SeqCst) {
            return crate::loopback::Response { status: 0, headers: Vec::new(), content_type: "", body: String::new() };
        }
        let answer = forward(&upstream, &request);
        if a.load(Ordering::SeqCst)
            && request.method == "POST"
            && request.path.starts_with(&bundle)
            && w.fetch_add(1, Ordering::SeqCst) + 1 >= 8
        {
            d.store(true, Ordering::SeqCst);
        }
        answer
    });
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}merge_store: {{vault: {{path: secret/{u}/merged, address: \"{proxy}\"}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t}}}}\n"
        ),
    );
    assert_eq!(run_vss(&ws, &s, &["pipeline"]).code, 0);
    for (name, value) in generation(2) {
        one.put_secret(&format!("secret/{u}/src/{name}"), value).await;
    }
    armed.store(true, Ordering::SeqCst);
    let killed = run_vss(&ws, &s, &["pipeline", "--merge-only", "--parallel", "1", "--output", "json"]);
    assert_eq!(killed.code, 2, "{}", killed.transcript());
    let report = killed.json();
    assert_eq!(report["errors"][0]["target"], "T", "{report:#}");
    assert_eq!(report["errors"][0]["phase"], "merge", "{report:#}");
    // The bundle's latest versions are now a mix of both generations.
    let mut mixed = std::collections::BTreeSet::new();
    for (name, _) in generation(0) {
        let (value, _) = one.secret(&format!("secret/{u}/merged/T/{name}")).await.unwrap();
        mixed.insert(value["generation"].as_u64().unwrap());
    }
    assert_eq!(mixed, [1, 2].into(), "the kill left a half-written bundle");

    // The server is back. SYNC sees the last complete bundle, all of generation 1: the
    // target is unchanged.
    dead.store(false, Ordering::SeqCst);
    armed.store(false, Ordering::SeqCst);
    let sync = run_vss(&ws, &s, &["pipeline", "--sync-only", "--exit-code", "--output", "compact"]);
    assert_eq!((sync.code, sync.stdout.as_str()), (0, "ZERO-SUM: 20 unchanged\n"), "{}", sync.transcript());
    for (name, _) in generation(0) {
        let (value, _) = one.secret(&format!("secret/{u}/t/{name}")).await.unwrap();
        assert_eq!(value["generation"], 1, "{name}");
    }
    // A re-run converges, and is zero-sum afterwards, with the bundle complete again.
    let rerun = run_vss(&ws, &s, &["pipeline", "--output", "compact"]);
    assert_eq!(rerun.code, 0, "{}", rerun.transcript());
    for (name, _) in generation(0) {
        let (value, _) = one.secret(&format!("secret/{u}/t/{name}")).await.unwrap();
        assert_eq!(value["generation"], 2, "{name}");
    }
    let (manifest, _) = one.secret(&format!("secret/{u}/merged/T")).await.unwrap();
    assert_eq!(manifest["state"], "complete", "{manifest}");
    for args in [&["pipeline"][..], &["pipeline", "--sync-only"][..]] {
        let args: Vec<&str> = args.iter().copied().chain(["--dry-run", "--exit-code", "--output", "compact"]).collect();
        let check = run_vss(&ws, &s, &args);
        assert_eq!(check.code, 0, "{}", check.transcript());
    }
}

/// A proxy in front of the first Vault that holds every write to a path under `slow` for
/// `delay`, and counts the data writes there.
fn slow_proxy(
    s: &Servers,
    slow: String,
    delay: std::time::Duration,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let writes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (upstream, counted) = (s.first.clone(), writes.clone());
    let proxy = crate::loopback::serve(move |request| {
        let write = request.method == "POST" && request.path.contains(&slow);
        if write {
            std::thread::sleep(delay);
        }
        let answer = forward(&upstream, &request);
        if write && request.path.starts_with("/v1/secret/data/") {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        answer
    });
    (proxy, writes)
}

/// Waits until `count` reaches `at_least` (at most 30 s).
fn wait_for(count: &std::sync::atomic::AtomicUsize, at_least: usize) {
    let started = std::time::Instant::now();
    while count.load(std::sync::atomic::Ordering::SeqCst) < at_least {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the run never got that far");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn signal(child: &std::process::Child, name: &str) {
    let status =
        std::process::Command::new("kill").args([format!("-{name}"), child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name}");
}

/// Every secret below `secret/<folder>`: whether it has a value, and whether it carries
/// vss's marker.
async fn values_and_markers(http: &Http, folder: &str) -> Vec<(String, bool, bool)> {
    let mut out = Vec::new();
    for name in http.list(&format!("secret/{folder}")).await {
        let (_, body) = http.call("GET", &format!("secret/data/{folder}/{name}"), None).await;
        let (_, meta) = http.call("GET", &format!("secret/metadata/{folder}/{name}"), None).await;
        let has_value = !body["data"]["data"].is_null();
        let marked = meta["data"]["custom_metadata"]["managed-by"] == "vss";
        out.push((name, has_value, marked));
    }
    out
}

#[tokio::test]
async fn an_interrupted_run_finishes_its_writes_in_flight_and_reports_what_it_did() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("sigint");
    for i in 0..30 {
        one.put_secret(&format!("secret/{u}/src/s{i:02}"), json!({"v": i})).await;
    }
    let (proxy, writes) = slow_proxy(&s, format!("/{u}/t/"), std::time::Duration::from_millis(150));
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}pipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t, address: \"{proxy}\"}}}}\n"
        ),
    );
    let vss = || vss_in(&ws, &s).args(["pipeline", "--parallel", "2", "--output", "json"]);
    let child = vss().spawn();
    wait_for(&writes, 4);
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted: finishing the writes in flight"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["errors"][0]["kind"], "interrupted", "{report:#}");
    let added = report["summary"]["added"].as_u64().unwrap() as usize;
    assert!((4..30).contains(&added), "{report:#}");
    let skipped =
        report["targets"][0]["changes"].as_array().unwrap().iter().filter(|c| c["status"] == "skipped").count();
    assert_eq!(added + skipped, 30, "{report:#}");
    // What the report says was written is there, each with its marker; nothing else is.
    let held = values_and_markers(&one, &format!("{u}/t")).await;
    assert_eq!(held.iter().filter(|(_, value, _)| *value).count(), added, "{held:?}");
    assert!(held.iter().all(|(_, value, marked)| !value || *marked), "a value without its marker: {held:?}");

    // A re-run picks up from there.
    let rerun = vss().run();
    assert_eq!(rerun.code, 0, "{}", rerun.transcript());
    assert_eq!(rerun.json()["summary"]["added"].as_u64().unwrap() as usize, 30 - added);

    // A second interrupt stops at once (exit 130), while writes (held 2 s each) are in flight.
    for i in 0..30 {
        one.put_secret(&format!("secret/{u}/src/s{i:02}"), json!({"v": i, "again": true})).await;
    }
    let (slower, slow_writes) = slow_proxy(&s, format!("/{u}/t/"), std::time::Duration::from_secs(2));
    ws.write("slower.yaml", &std::fs::read_to_string(ws.path("vss.yaml")).unwrap().replace(&proxy, &slower));
    let child = vss_in(&ws, &s).args(["pipeline", "--config", "slower.yaml", "--parallel", "2"]).spawn();
    wait_for(&slow_writes, 1);
    // The next writes are now held by the proxy: in flight when the signals come.
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, "INT");
    std::thread::sleep(std::time::Duration::from_millis(300));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_run_killed_mid_apply_leaves_no_value_without_its_marker() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("kill9");
    for i in 0..30 {
        one.put_secret(&format!("secret/{u}/src/s{i:02}"), json!({"v": i})).await;
    }
    let (proxy, writes) = slow_proxy(&s, format!("/{u}/t/"), std::time::Duration::from_millis(60));
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}pipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t, address: \"{proxy}\"}}}}\n"
        ),
    );
    let vss = |args: &[&str]| vss_in(&ws, &s).args(args);
    let child = vss(&["pipeline", "--parallel", "4"]).spawn();
    wait_for(&writes, 6);
    signal(&child, "KILL");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), None, "killed");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let held = values_and_markers(&one, &format!("{u}/t")).await;
    assert!(held.iter().any(|(_, value, _)| *value), "some writes landed: {held:?}");
    assert!(held.iter().all(|(_, value, marked)| !value || *marked), "a value without its marker: {held:?}");
    // A re-run converges, and what vss wrote is vss's: an orphan is deleted.
    assert_eq!(vss(&["pipeline"]).run().code, 0);
    let (status, _) = one.call("DELETE", &format!("secret/metadata/{u}/src/s00"), None).await;
    assert_eq!(status, 204);
    let out = vss(&["pipeline", "--output", "compact"]).run();
    assert_eq!(out.stdout, "APPLIED: +0 ~0 -1 =29\n", "{}", out.transcript());
    let check = vss(&["pipeline", "--dry-run", "--exit-code", "--output", "compact"]).run();
    assert_eq!(check.stdout, "ZERO-SUM: 29 unchanged\n", "{}", check.transcript());
}

#[tokio::test]
async fn faults_between_vss_and_vault_are_retried_or_named_and_a_rerun_converges() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("faults");
    for i in 0..10 {
        one.put_secret(&format!("secret/{u}/src/s{i}"), json!({"v": i})).await;
    }
    let empty = |status: u16| crate::loopback::Response {
        status,
        headers: Vec::new(),
        content_type: "application/json",
        body: String::new(),
    };
    // A: its first data writes meet a 503 with `Retry-After: 1`, an answer lost halfway
    // (after the write landed), a 500 and a 429; then all is well.
    let (upstream, writes_a) = (s.first.clone(), Arc::new(AtomicUsize::new(0)));
    let times: Arc<Mutex<Vec<std::time::Instant>>> = Arc::default();
    let (count, seen, data_a) = (writes_a.clone(), times.clone(), format!("/v1/secret/data/{u}/a/"));
    let flaky = crate::loopback::serve(move |request| {
        if !(request.method == "POST" && request.path.starts_with(&data_a)) {
            return forward(&upstream, &request);
        }
        seen.lock().unwrap().push(std::time::Instant::now());
        match count.fetch_add(1, Ordering::SeqCst) {
            0 => crate::loopback::Response {
                headers: vec![("retry-after".into(), "1".into())],
                body: r#"{"errors":["busy"]}"#.into(),
                ..empty(503)
            },
            1 => {
                forward(&upstream, &request);
                empty(1)
            }
            2 => crate::loopback::Response { body: r#"{"errors":["internal error"]}"#.into(), ..empty(500) },
            3 => crate::loopback::Response { body: r#"{"errors":["rate limited"]}"#.into(), ..empty(429) },
            _ => forward(&upstream, &request),
        }
    });
    // B: the server dies after 3 data writes (mid-SYNC), until it is back.
    let (upstream, dead, writes_b) = (s.first.clone(), Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let (gone, count, data_b) = (dead.clone(), writes_b.clone(), format!("/v1/secret/data/{u}/b/"));
    let dying = crate::loopback::serve(move |request| {
        if gone.load(Ordering::SeqCst) {
            return empty(0);
        }
        let answer = forward(&upstream, &request);
        if request.method == "POST"
            && request.path.starts_with(&data_b)
            && count.fetch_add(1, Ordering::SeqCst) + 1 == 3
        {
            gone.store(true, Ordering::SeqCst);
        }
        answer
    });
    // C: nothing listens there.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  A: {{imports: [src], vault: {{path: secret/{u}/a, address: \"{flaky}\"}}}}\n  B: {{imports: [src], vault: {{path: secret/{u}/b, address: \"{dying}\"}}}}\n  C: {{imports: [src], vault: {{path: secret/{u}/c, address: \"{refused}\"}}}}\n"
        ),
    );
    let out = run_vss(&ws, &s, &["pipeline", "--targets", "A,B", "--parallel", "1", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let report = out.json();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "only B failed: {report:#}");
    assert_eq!(
        (errors[0]["target"].as_str(), errors[0]["kind"].as_str()),
        (Some("B"), Some("unavailable")),
        "{report:#}"
    );
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("POST secret/") && message.contains(&format!("{u}/b/s")), "names the call: {message}");
    assert!(message.contains(&dying), "names the address: {message}");
    for i in 0..10 {
        assert_eq!(one.secret(&format!("secret/{u}/a/s{i}")).await.unwrap().0, json!({"v": i}), "A s{i}");
    }
    assert_eq!(report["targets"][0]["summary"]["added"], 10, "A wrote every secret: {report:#}");
    let times = times.lock().unwrap().clone();
    assert!(times[1] - times[0] >= std::time::Duration::from_millis(950), "Retry-After: 1 is waited out");

    let c = run_vss(&ws, &s, &["pipeline", "--targets", "C", "--output", "json"]);
    assert_eq!(c.code, 2, "{}", c.transcript());
    let error = &c.json()["errors"][0];
    assert_eq!((error["target"].as_str(), error["kind"].as_str()), (Some("C"), Some("unavailable")), "{error}");
    assert!(error["message"].as_str().unwrap().contains(refused.trim_start_matches("http://")), "{error}");

    dead.store(false, Ordering::SeqCst);
    let rerun = run_vss(&ws, &s, &["pipeline", "--targets", "A,B", "--output", "compact"]);
    assert_eq!(rerun.code, 0, "{}", rerun.transcript());
    let check = run_vss(&ws, &s, &["pipeline", "--targets", "A,B", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(check.stdout, "ZERO-SUM: 20 unchanged\n", "{}", check.transcript());
}

#[tokio::test]
async fn a_source_that_fails_mid_read_leaves_its_targets_untouched() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("srcfail");
    for i in 0..6 {
        one.put_secret(&format!("secret/{u}/src/s{i}"), json!({"v": i})).await;
    }
    // The source is read through a proxy that answers 500 to every read of `s3` once the
    // first run is over.
    let (upstream, reads, poisoned) =
        (s.first.clone(), std::sync::Arc::new(AtomicUsize::new(0)), format!("/v1/secret/data/{u}/src/s3"));
    let failing = reads.clone();
    let proxy = crate::loopback::serve(move |request| {
        if request.path == poisoned && failing.load(Ordering::SeqCst) > 0 {
            return crate::loopback::Response {
                status: 500,
                headers: Vec::new(),
                content_type: "application/json",
                body: r#"{"errors":["internal error"]}"#.into(),
            };
        }
        forward(&upstream, &request)
    });
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}pipeline: {{sync: {{delete_orphans: true}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src, address: \"{proxy}\"}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t}}}}\n"
        ),
    );
    assert_eq!(run_vss(&ws, &s, &["pipeline"]).code, 0);
    reads.store(1, Ordering::SeqCst);
    // Meanwhile a source secret changed and one went: neither reaches the target.
    one.put_secret(&format!("secret/{u}/src/s0"), json!({"v": "changed"})).await;
    let (status, _) = one.call("DELETE", &format!("secret/metadata/{u}/src/s1"), None).await;
    assert_eq!(status, 204);
    let out = run_vss(&ws, &s, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let report = out.json();
    let error = &report["errors"][0];
    assert_eq!((error["target"].as_str(), error["kind"].as_str()), (Some("T"), Some("unavailable")), "{report:#}");
    assert!(error["message"].as_str().unwrap().contains("cannot read source `src`"), "{error}");
    assert_eq!(
        (calls(&report, "vault")["write"].as_u64(), calls(&report, "vault")["delete"].as_u64()),
        (Some(0), Some(0)),
        "{report:#}"
    );
    assert_eq!(one.list(&format!("secret/{u}/t")).await.len(), 6, "nothing deleted");
    assert_eq!(one.secret(&format!("secret/{u}/t/s0")).await.unwrap().0, json!({"v": 0}), "nothing written");
}

#[tokio::test]
async fn a_bundle_whose_named_version_is_gone_is_refused_not_read_as_a_mix() {
    let s = servers();
    let one = Http::new(&s.first, &s.token);
    let u = unique("torn");
    for i in 0..3 {
        one.put_secret(&format!("secret/{u}/src/s{i}"), json!({"v": i})).await;
    }
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}merge_store: {{vault: {{path: secret/{u}/merged}}}}\nsources: {{src: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  T: {{imports: [src], vault: {{path: secret/{u}/t}}}}\n"
        ),
    );
    assert_eq!(run_vss(&ws, &s, &["pipeline"]).code, 0);
    // A secret the complete manifest names disappears from the bundle (as when a MERGE
    // deletes it and dies before its manifest is complete).
    let (status, _) = one.call("DELETE", &format!("secret/metadata/{u}/merged/T/s1"), None).await;
    assert_eq!(status, 204);
    let out = run_vss(&ws, &s, &["pipeline", "--sync-only", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let error = &out.json()["errors"][0];
    assert_eq!(error["kind"], "conflict", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("changed while it was read") && message.contains("`s1`"), "{message}");
    assert_eq!(calls(&out.json(), "vault")["write"], 0, "nothing written");
    // The MERGE repairs it (the listing no longer matches the manifest: a full read).
    assert_eq!(run_vss(&ws, &s, &["pipeline", "--merge-only"]).code, 0);
    let sync = run_vss(&ws, &s, &["pipeline", "--sync-only", "--exit-code", "--output", "compact"]);
    assert_eq!((sync.code, sync.stdout.as_str()), (0, "ZERO-SUM: 3 unchanged\n"), "{}", sync.transcript());
}
