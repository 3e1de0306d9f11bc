//! The `kubernetes` store against the loopback kube-apiserver test server (`kube_server`),
//! which holds every request to the Kubernetes OpenAPI schemas: the conformance suite in
//! both layouts, the mixed pipeline from Vault through a Vault merge store to two GCP
//! projects and two Kubernetes namespaces on two clusters (checked through the servers'
//! state), no-op re-runs, metadata drift, orphans, a write that loses a race, immutable
//! Secrets, type rules, RBAC refusals, a server that never answers, canaries, and a
//! cross-check of the server with the official Python client.
#![cfg(feature = "kubernetes")]

use serde_json::{Value, json};
use vss::store::kubernetes::KubernetesDefaults;
use vss::store::{AnyStore, StoreConfig, StoreDefaults};

use crate::common::{Run, Vss, Workspace};
use crate::kube_server::KubeServer;

const CANARY: &str = "CANARY-kube-7d1f";

/// The top-level `kubernetes:` block of the configs run through the binary.
const HEADER: &str = "kubernetes: {kubeconfig: kubeconfig.yaml}\n";

fn run(ws: &Workspace, args: &[&str]) -> Run {
    Vss::new()
        .cwd(ws.dir.path())
        .env("VSS_TEST_VAULT_ADDR", std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run"))
        .env("VSS_TEST_VAULT_TOKEN", std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run"))
        .env_remove("KUBECONFIG")
        .env("HOME", ws.dir.path())
        .args(args)
        .run()
}

/// Opens a `kubernetes` location reached through the kubeconfig at `kubeconfig`.
pub(crate) async fn open_with(kubeconfig: &std::path::Path, config: Value) -> AnyStore {
    let config: StoreConfig = serde_json::from_value(json!({ "kubernetes": config })).unwrap();
    let spanned = |v: String| vss::span::Spanned { span: Default::default(), value: v };
    let kube = KubernetesDefaults { kubeconfig: Some(spanned(kubeconfig.display().to_string())), context: None };
    let mut defaults = StoreDefaults::default();
    defaults.set("kubernetes", std::sync::Arc::new(kube));
    crate::common::open_store(&config, &defaults, None).await.unwrap()
}

async fn open(ws: &Workspace, config: Value) -> AnyStore {
    open_with(&ws.path("kubeconfig.yaml"), config).await
}

/// The data of a namespace's Secrets, as text, by name.
fn data(server: &KubeServer, namespace: &str) -> Vec<(String, Value)> {
    server.secrets(namespace).into_iter().map(|(name, s)| (name, json!(s.text()))).collect()
}

#[tokio::test]
async fn conformance_in_both_layouts_with_short_pages() {
    let server = KubeServer::start(&["conf", "single"]);
    server.cap_pages(2);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "conf")]));
    let per_path = open(&ws, json!({"name_template": "vss-{path}"})).await;
    crate::conformance::run(&per_path, None).await;
    // Someone else's Secrets in the namespace are not the location's.
    server.put("conf", "other", json!({"data": {"k": "eA=="}}));
    server.put("conf", "vss-a", json!({"data": {"k": "eA=="}}));
    let paths = vss::store::Store::list(&open(&ws, json!({"name_template": "vss-{path}"})).await).await.unwrap();
    assert_eq!(paths.iter().map(|p| p.as_str()).collect::<Vec<_>>(), ["a"]);

    let single = open(&ws, json!({"namespace": "single", "name": "app-env"})).await;
    crate::conformance::run(&single, None).await;
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

fn vault_delete(folder: &str, path: &str) {
    let address = std::env::var("VSS_TEST_VAULT_ADDR").unwrap();
    let token = std::env::var("VSS_TEST_VAULT_TOKEN").unwrap();
    let delete = reqwest::Client::new()
        .delete(format!("{address}/v1/secret/metadata/{folder}/{path}"))
        .header("X-Vault-Token", token);
    tokio::runtime::Runtime::new().unwrap().block_on(delete.send()).unwrap();
}

/// The pipeline: Vault → Vault merge store → two GCP projects and two Kubernetes
/// namespaces on two clusters (one Secret per path on one, every key in one Secret on the
/// other), checked through the servers' state.
#[cfg(feature = "gcp")]
#[test]
fn vault_to_two_projects_and_two_namespaces_exactly_then_zero_sum_drift_and_orphans() {
    let gcp = crate::gcp_server::GcpServer::start();
    let blue = KubeServer::start(&["app"]);
    let green = KubeServer::start(&["worker"]);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &KubeServer::kubeconfig_of(&[(&blue, "blue", "app"), (&green, "green", "default")]));
    let folder = format!("kube-{}-{}", std::process::id(), blue.url.rsplit(':').next().unwrap());
    crate::gcp::vault_put(
        &folder,
        "src/app/db",
        json!({"user": "app", "password": format!("{CANARY}-db"), "port": 5432}),
    );
    crate::gcp::vault_put(&folder, "src/api/stripe", json!({"key": format!("{CANARY}-stripe")}));
    crate::gcp::vault_put(&folder, "prod/app/db", json!({"password": format!("{CANARY}-prod")}));
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}gcp: {{endpoint: \"{}\", auth: anonymous}}\nvault: {{address: \"${{VSS_TEST_VAULT_ADDR}}\", auth: {{token: \"${{VSS_TEST_VAULT_TOKEN}}\"}}}}\nmerge_store: {{vault: {{path: secret/{folder}/merged}}}}\npipeline: {{sync: {{delete_orphans: true}}}}\nsources:\n  common: {{vault: {{path: secret/{folder}/src}}}}\n  prod: {{vault: {{path: secret/{folder}/prod}}}}\ntargets:\n  Staging: {{imports: [common], gcp: {{project: staging-proj, prefix: app-}}}}\n  Production: {{inherits: Staging, imports: [prod], gcp: {{project: prod-proj, prefix: app-}}}}\n  ProdApp: {{inherits: Production, kubernetes: {{context: blue, namespace: app, name_template: \"app-{{path}}\", labels: {{team: platform}}}}}}\n  ProdWorker: {{inherits: Production, kubernetes: {{context: green, namespace: worker, name: worker-env, names: path_key}}}}\n",
            gcp.url
        ),
    );
    let out = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!out.stdout.contains(CANARY) && !out.stderr.contains(CANARY), "{}", out.transcript());
    let prod_db = json!({"user": "app", "password": format!("{CANARY}-prod"), "port": "5432"});
    assert_eq!(
        data(&blue, "app"),
        [
            ("app-api-stripe".to_string(), json!({"key": format!("{CANARY}-stripe")})),
            ("app-app-db".to_string(), prod_db.clone()),
        ]
    );
    let secret = &blue.secrets("app")["app-app-db"];
    assert_eq!(secret.labels.get("app.kubernetes.io/managed-by").map(String::as_str), Some("vss"));
    assert_eq!(secret.labels.get("vss.dev/target").map(String::as_str), Some("ProdApp"));
    assert_eq!(secret.labels.get("team").map(String::as_str), Some("platform"));
    assert_eq!(secret.annotations.get("vss.dev/path").map(String::as_str), Some("app/db"));
    assert_eq!(
        data(&green, "worker"),
        [(
            "worker-env".to_string(),
            json!({
                "api_stripe_key": format!("{CANARY}-stripe"),
                "app_db_password": format!("{CANARY}-prod"),
                "app_db_port": "5432",
                "app_db_user": "app",
            })
        )]
    );
    let gcp_db = gcp.secrets("prod-proj")["app-app--db"].latest().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&gcp_db).unwrap(),
        json!({"user": "app", "password": format!("{CANARY}-prod"), "port": 5432})
    );
    assert!(gcp.secrets("staging-proj")["app-app--db"].latest().unwrap().contains(&format!("{CANARY}-db")));

    // A no-op re-run writes nothing anywhere.
    let writes = (blue.writes(), green.writes(), gcp.writes());
    let again = run(&ws, &["pipeline", "--exit-code", "--output", "compact"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!((blue.writes(), green.writes(), gcp.writes()), writes, "no write on a no-op re-run");

    // One changed key: exactly the Secrets that hold it.
    crate::gcp::vault_put(&folder, "src/api/stripe", json!({"key": format!("{CANARY}-stripe-2")}));
    let versions =
        |s: &KubeServer, ns: &str| -> Vec<u64> { s.secrets(ns).values().map(|x| x.resource_version).collect() };
    let (app_before, worker_before) = (versions(&blue, "app"), versions(&green, "worker"));
    let changed = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(changed.code, 0, "{}", changed.transcript());
    let (app_after, worker_after) = (versions(&blue, "app"), versions(&green, "worker"));
    assert_ne!(app_after[0], app_before[0], "app-api-stripe was written");
    assert_eq!(app_after[1], app_before[1], "app-app-db was not");
    assert_ne!(worker_after, worker_before, "the worker Secret holds the key");
    assert_eq!(green.secrets("worker")["worker-env"].text()["api_stripe_key"], format!("{CANARY}-stripe-2"));
    assert_eq!(blue.secrets("app")["app-api-stripe"].text()["key"], format!("{CANARY}-stripe-2"));

    // Labels changed behind vss's back: metadata drift, put right.
    blue.relabel("app", "app-app-db", "team", "someone-else");
    let dry = run(&ws, &["pipeline", "--dry-run", "--output", "json"]);
    let report = dry.json();
    let target = report["targets"].as_array().unwrap().iter().find(|t| t["name"] == "ProdApp" && t["phase"] == "sync");
    let db = target.unwrap()["changes"].as_array().unwrap().iter().find(|c| c["path"] == "app/db").unwrap().clone();
    assert_eq!((db["change"].as_str(), db["metadata"].as_bool()), (Some("modified"), Some(true)), "{db}");
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    assert_eq!(blue.secrets("app")["app-app-db"].labels["team"], "platform");

    // An orphan is deleted only when vss owns it; someone else's Secret (and key) stays.
    blue.put("app", "app-unmanaged", json!({"data": {"k": "eA=="}}));
    green.put("worker", "worker-env", json!({"data": {"added_by_hand": "eA=="}}));
    crate::gcp::vault_put(&folder, "src/old/key", json!({"v": "1"}));
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    assert!(blue.secrets("app").contains_key("app-old-key"));
    assert!(green.secrets("worker")["worker-env"].data.contains_key("old_key_v"));
    vault_delete(&folder, "src/old/key");
    let pruned = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(pruned.code, 0, "{}", pruned.transcript());
    assert!(!blue.secrets("app").contains_key("app-old-key"), "the owned orphan is deleted");
    assert!(blue.secrets("app").contains_key("app-unmanaged"), "someone else's Secret stays");
    let worker = &green.secrets("worker")["worker-env"];
    assert!(!worker.data.contains_key("old_key_v"), "the owned orphan key is deleted");
    assert!(worker.data.contains_key("added_by_hand"), "someone else's key stays");
    let check = run(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(check.code, 0, "{}", check.transcript());
    for server in [&blue, &green] {
        assert!(server.rejected().is_empty(), "{:?}", server.rejected());
    }
    assert!(gcp.rejected().is_empty(), "{:?}", gcp.rejected());
}

#[test]
fn a_write_that_meets_another_writer_is_retried_from_a_fresh_read() {
    let server = KubeServer::start(&["race"]);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "race")]));
    ws.write("s.yaml", &format!("app/db: {{password: {CANARY}}}\n"));
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{}}}}}}\n"),
    );
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    ws.write("s.yaml", &format!("app/db: {{password: {CANARY}-2}}\n"));
    server.race("app-db");
    let out = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(out.stderr.contains("starting over from a fresh read"), "{}", out.stderr);
    let secret = &server.secrets("race")["app-db"];
    assert_eq!(secret.text()["password"], format!("{CANARY}-2"));
    assert_eq!(
        secret.annotations.get("other.example/touched").map(String::as_str),
        Some("yes"),
        "the other write stays"
    );
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn immutable_secrets_are_replaced_only_when_allowed_and_types_check_their_keys() {
    let server = KubeServer::start(&["imm"]);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "imm")]));
    let config = |extra: &str| {
        format!(
            "{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{immutable: true{extra}}}}}}}\n"
        )
    };
    ws.write("vss.yaml", &config(""));
    ws.write("s.yaml", "app/db: {password: one}\n");
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    assert!(server.secrets("imm")["app-db"].immutable);
    ws.write("s.yaml", "app/db: {password: two}\n");
    let refused = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let error = &refused.json()["errors"][0];
    assert!(error["message"].as_str().unwrap().contains("Secret imm/app-db is immutable"), "{error}");
    assert!(error["hint"].as_str().unwrap().contains("replace_immutable: true"), "{error}");
    assert_eq!(server.secrets("imm")["app-db"].text()["password"], "one", "nothing written");
    ws.write("vss.yaml", &config(", replace_immutable: true"));
    let replaced = run(&ws, &["pipeline"]);
    assert_eq!(replaced.code, 0, "{}", replaced.transcript());
    let secret = &server.secrets("imm")["app-db"];
    assert_eq!((secret.text()["password"].as_str(), secret.immutable), ("two", true));

    // A TLS Secret without its key: refused when the plan is made, nothing written.
    ws.write("s.yaml", "web/cert: {tls.crt: x}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{type: kubernetes.io/tls}}}}}}\n"
        ),
    );
    let writes = server.writes();
    let tls = run(&ws, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(tls.code, 2, "{}", tls.transcript());
    let message = tls.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("secret `web/cert`: a Secret of type `kubernetes.io/tls` needs `tls.key`"), "{message}");
    // A path that cannot be a Secret name, and a key that cannot be a data key.
    ws.write("s.yaml", "Web/Cert: {k: x}\nok: {\"bad key\": x}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{}}}}}}\n"),
    );
    let names = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(names.code, 2, "{}", names.transcript());
    let message = names.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("key `bad key` holds ` `"), "{message}");
    ws.write("s.yaml", "Web/Cert: {k: x}\n");
    let names = run(&ws, &["pipeline", "--output", "json"]);
    let message = names.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("`Web/Cert`") && message.contains("`Web-Cert` is not a DNS subdomain"), "{message}");
    assert_eq!(server.writes(), writes, "nothing written");
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn config_errors_are_located() {
    let ws = Workspace::new();
    ws.write("s.yaml", "a: {k: v}\n");
    ws.write(
        "vss.yaml",
        "source: {file: {path: s.yaml}}\ntargets:\n  A: {kubernetes: {namespace: App_NS, name_template: \"{path}-{path}\"}}\n  B: {kubernetes: {layout: single}}\n  C: {kubernetes: {name: Bad_Name, label_selector: \"a=b\", type: kubernetes.io/service-account-token}}\n",
    );
    let out = Vss::new().cwd(ws.dir.path()).args(["validate"]).run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    for expected in [
        "`App_NS` is not a namespace name",
        "`name_template` must hold `{path}` exactly once",
        "`layout: single` needs the Secret's `name`",
        "`Bad_Name` is not a Secret name",
        "`label_selector` applies to sources only",
        "cannot write `kubernetes.io/service-account-token` Secrets",
        "vss.yaml:3:",
    ] {
        assert!(out.stdout.contains(expected) || out.stderr.contains(expected), "{expected}: {}", out.transcript());
    }
}

#[test]
fn a_source_reads_the_secrets_its_selector_matches_and_rbac_refusals_name_the_verbs() {
    let server = KubeServer::start(&["legacy", "locked"]);
    server.cap_pages(1);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "legacy")]));
    server.put("legacy", "db", json!({"metadata": {"labels": {"team": "platform"}}, "data": {"password": "cHc="}}));
    server.put("legacy", "api", json!({"metadata": {"labels": {"team": "platform"}}, "data": {"key": "aw=="}}));
    server.put("legacy", "other", json!({"metadata": {"labels": {"team": "web"}}, "data": {"x": "eA=="}}));
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{kubernetes: {{label_selector: \"team in (platform)\"}}}}\ntargets: {{T: {{file: {{path: out}}}}}}\n"),
    );
    let out = run(&ws, &["pipeline"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let files: Vec<String> = ws.files("out").into_iter().filter(|f| !f.starts_with('.')).collect();
    assert_eq!(files, ["api.json", "db.json"]);
    assert_eq!(ws.read_json("out/db.json"), json!({"password": "pw"}));
    assert!(
        server.requests().iter().any(|r| r.contains("labelSelector=team in (platform)")),
        "{:?}",
        server.requests()
    );

    server.forbid("patch");
    ws.write("s.yaml", "app/db: {k: v}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{namespace: locked}}}}}}\n"),
    );
    let denied = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(denied.code, 2, "{}", denied.transcript());
    let error = &denied.json()["errors"][0];
    assert_eq!(error["kind"], "permission", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("cannot patch resource \\\"secrets\\\"")
            || error["message"].as_str().unwrap().contains("cannot patch resource \"secrets\""),
        "{error}"
    );
    assert!(error["hint"].as_str().unwrap().contains("`patch`"), "{error}");
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn the_test_server_refuses_what_the_published_contract_does_not_allow() {
    let server = KubeServer::start(&["c"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let auth = format!("Bearer {}", crate::kube_server::TOKEN);
    let (field, route, param) = rt.block_on(async {
        let field = client
            .post(format!("{}/api/v1/namespaces/c/secrets", server.url))
            .header("Authorization", &auth)
            .json(&json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}, "datta": {}}))
            .send()
            .await
            .unwrap();
        let route = client
            .get(format!("{}/api/v1/namespaces/c/vaults", server.url))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        let param = client
            .get(format!("{}/api/v1/namespaces/c/secrets?labelz=a", server.url))
            .header("Authorization", &auth)
            .send()
            .await
            .unwrap();
        (field.status().as_u16(), route.status().as_u16(), param.status().as_u16())
    });
    assert_eq!((field, route, param), (400, 404, 400));
    let rejected = server.rejected();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    assert!(rejected[0].contains("datta"), "{rejected:?}");
}

#[test]
fn the_official_python_client_agrees_with_the_test_server() {
    let server = KubeServer::start(&["py"]);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "py")]));
    let venv = std::env::var("VSS_TEST_PYTHON_VENV").expect("run tests/run: it installs the Kubernetes Python client");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/python-check.py");
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .arg(ws.path("kubeconfig.yaml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
    // What the Python client wrote, vss reads as a source.
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{kubernetes: {{label_selector: \"from=python\"}}}}\ntargets: {{T: {{file: {{path: out}}}}}}\n"),
    );
    let read = run(&ws, &["pipeline"]);
    assert_eq!(read.code, 0, "{}", read.transcript());
    assert_eq!(ws.read_json("out/py-db.json"), json!({"password": "from-python-2", "user": "py"}));
    // And what vss writes, the Python client reads.
    ws.write("s.yaml", "app/db: {password: from-vss}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{}}}}}}\n"),
    );
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    let out = std::process::Command::new(format!("{venv}/bin/python"))
        .arg(&script)
        .arg(ws.path("kubeconfig.yaml"))
        .arg("read")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "from-vss vss T");
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn a_cluster_that_never_answers_fails_in_bounded_time_naming_the_call() {
    let hung = crate::common::hung_server();
    let ws = Workspace::new();
    ws.write(
        "kubeconfig.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: hung\nclusters: [{{name: c, cluster: {{server: \"{hung}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: hung, context: {{cluster: c, user: u, namespace: app}}}}]\n"
        ),
    );
    ws.write("s.yaml", "app/db: {k: v}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}pipeline: {{timeouts: {{connect: 1, request: 1}}}}\nsource: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{}}}}}}\n"),
    );
    let out = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let error = &out.json()["errors"][0];
    assert_eq!(error["kind"], "timeout", "{error}");
    assert!(error["message"].as_str().unwrap().contains("list Secrets app at http://127.0.0.1"), "{error}");
}

#[test]
fn keys_added_by_hand_to_a_secret_per_path_are_removed_and_foreign_fields_stay() {
    let server = KubeServer::start(&["edit"]);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "edit")]));
    ws.write("s.yaml", "app/db: {password: pw}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{}}}}}}\n"),
    );
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    // `kubectl edit`: a key and a label added by another field manager.
    server.put("edit", "app-db", json!({"metadata": {"labels": {"owner": "ops"}}, "data": {"debug": "dHJ1ZQ=="}}));
    let dry = run(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!((dry.code, dry.stdout.as_str()), (1, "CHANGES: +0 ~1 -0 =0\n"), "{}", dry.transcript());
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    let secret = &server.secrets("edit")["app-db"];
    assert_eq!(json!(secret.text()), json!({"password": "pw"}), "the secret holds exactly its keys");
    assert_eq!(secret.labels.get("owner").map(String::as_str), Some("ops"), "another manager's label stays");
    let again = run(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn kubeconfig_from_the_environment_and_its_contexts_pick_the_clusters() {
    let (blue, green) = (KubeServer::start(&["app"]), KubeServer::start(&["app"]));
    let ws = Workspace::new();
    let kubeconfig =
        ws.write("clusters.yaml", &KubeServer::kubeconfig_of(&[(&blue, "blue", "app"), (&green, "green", "app")]));
    ws.write("s.yaml", "app/db: {password: pw}\n");
    // No `kubernetes:` block: $KUBECONFIG, its current context (blue) and a named one.
    ws.write(
        "vss.yaml",
        "source: {file: {path: s.yaml}}\ntargets:\n  Current: {kubernetes: {name_template: \"current-{path}\"}}\n  Green: {kubernetes: {context: green}}\n",
    );
    let out = Vss::new()
        .cwd(ws.dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", ws.dir.path())
        .args(["pipeline"])
        .run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert_eq!(blue.secrets("app").keys().collect::<Vec<_>>(), ["current-app-db"]);
    assert_eq!(green.secrets("app").keys().collect::<Vec<_>>(), ["app-db"]);
    // A context the kubeconfig does not have: an error naming it.
    ws.write("vss.yaml", "source: {file: {path: s.yaml}}\ntargets: {T: {kubernetes: {context: purple}}}\n");
    let out = Vss::new()
        .cwd(ws.dir.path())
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", ws.dir.path())
        .args(["pipeline", "--output", "json"])
        .run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    let message = out.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("context `purple`"), "{message}");
}

/// A cluster that dies in the middle of a run: the target fails naming the call and the
/// server, exit 2, nothing is reported applied that was not; once it is back, a re-run
/// converges and the next is zero-sum.
#[test]
fn a_cluster_that_dies_mid_run_fails_the_target_and_a_rerun_converges() {
    let server = KubeServer::start(&["app"]);
    let ws = Workspace::new();
    ws.write("kubeconfig.yaml", &server.kubeconfig(&[("test", "app")]));
    let secrets: String = (0..8).map(|n| format!("s{n}: {{k: \"{CANARY}-{n}\"}}\n")).collect();
    ws.write("s.yaml", &secrets);
    ws.write(
        "vss.yaml",
        &format!("{HEADER}pipeline: {{sync: {{parallel: 1}}}}\nsource: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{kubernetes: {{}}}}}}\n"),
    );
    // The listing and three applies get through; then the server is gone.
    server.die_after(4);
    let out = run(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(!out.stdout.contains(CANARY) && !out.stderr.contains(CANARY), "{}", out.transcript());
    let report = out.json();
    assert_eq!(report["errors"][0]["kind"], "unavailable", "{report}");
    assert!(report["errors"][0]["message"].as_str().unwrap().contains(&server.url), "{report}");
    let applied =
        report["targets"][0]["changes"].as_array().unwrap().iter().filter(|c| c["status"] == "applied").count();
    assert_eq!(applied, server.secrets("app").len(), "the report says exactly what landed: {report}");
    server.revive();
    assert_eq!(run(&ws, &["pipeline"]).code, 0);
    assert_eq!(server.secrets("app").len(), 8);
    let again = run(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}
