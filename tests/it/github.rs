//! The `github` store, end to end through the binary, against the loopback GitHub test
//! server (`github_server`): every scope, values checked by decrypting what the server
//! received, zero writes on a no-op re-run, source changes and drift reported exactly,
//! exclusions and refused names, rate limits, a wrong token, and no value in any output.
#![cfg(feature = "github")]

use serde_json::{Value, json};
use vss::secret::{Fingerprinter, Sensitive};
use vss::store::github::{GithubAuth, GithubDefaults};
use vss::store::stats::Stats;
use vss::store::{AnyStore, OpenContext, Sessions, StoreConfig, StoreDefaults};

use crate::common::{Run, Vss, Workspace};
use crate::github_server::GithubServer;

pub const TOKEN: &str = "ghp_test_token_0123456789";
pub const KEY: &str = "fingerprint-key-for-tests";
pub const CANARY: &str = "CANARY-gh-93be";

pub fn run(ws: &Workspace, server: &GithubServer, args: &[&str]) -> Run {
    Vss::new()
        .cwd(ws.dir.path())
        .env("GH_TEST_URL", &server.url)
        .env("GH_TEST_TOKEN", TOKEN)
        .env("VSS_FINGERPRINT_KEY", KEY)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env_remove("GITHUB_API_URL")
        .args(args)
        .run()
}

fn github_calls(report: &Value) -> Value {
    report["stats"]["calls"]["github"].clone()
}

/// A server with `repos` (each with a `production` environment) and the org `acme`.
pub fn server(repos: &[&str]) -> GithubServer {
    let server = GithubServer::start(TOKEN);
    for repo in repos {
        server.add_repo(repo);
        server.add_environment(repo, "production");
    }
    server.add_org("acme");
    server
}

pub const HEADER: &str =
    "github: {api_url: \"${GH_TEST_URL}\", auth: {token: \"${GH_TEST_TOKEN}\"}, write_interval_ms: 0}\n";

pub fn plaintexts(server: &GithubServer, collection: &str) -> Vec<(String, String)> {
    server.secrets(collection).into_iter().map(|(name, s)| (name, s.plaintext)).collect()
}

#[test]
fn every_scope_gets_exactly_the_mapped_values_and_a_rerun_writes_nothing() {
    let repos = ["acme/app1", "acme/app2", "acme/app3", "acme/app4", "acme/app5"];
    let server = server(&repos);
    let ws = Workspace::new();
    // The sources are in Vault (the OpenBao server `tests/run` starts); the merge store too.
    let folder = format!("gh-{}-{}", std::process::id(), server.url.rsplit(':').next().unwrap());
    let vault = |path: &str, data: Value| {
        let address = std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run");
        let token = std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run");
        let url = format!("{address}/v1/secret/data/{folder}/src/{path}");
        let request = reqwest::Client::new().post(url).header("X-Vault-Token", token).json(&json!({"data": data}));
        let status = tokio::runtime::Runtime::new().unwrap().block_on(request.send()).unwrap().status();
        assert!(status.is_success(), "{status}");
    };
    vault("app/db", json!({"user": "app", "password": format!("{CANARY}-db")}));
    vault("ci/keys", json!({"deploy_key": format!("{CANARY}-deploy"), "npm_token": "n"}));
    let mut targets = String::new();
    for repo in repos {
        let n = repo.trim_start_matches("acme/");
        targets.push_str(&format!(
            "  {n}-actions: {{imports: [s], github: {{repo: {repo}}}}}\n  {n}-prod: {{imports: [s], github: {{repo: {repo}, environment: production}}}}\n  {n}-bots: {{imports: [s], github: {{repo: {repo}, scope: dependabot, names: path_key}}}}\n"
        ));
    }
    targets.push_str("  app1-spaces: {imports: [s], github: {repo: acme/app1, scope: codespaces, prefix: vss_}}\n");
    targets.push_str(
        "  org: {imports: [s], github: {org: acme, visibility: selected, selected_repositories: [app1, app2]}}\n",
    );
    let vault = "vault: {address: \"${VSS_TEST_VAULT_ADDR}\", auth: {token: \"${VSS_TEST_VAULT_TOKEN}\"}}\n";
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}{vault}merge_store: {{vault: {{path: secret/{folder}/merged}}}}\nsources: {{s: {{vault: {{path: secret/{folder}/src}}}}}}\ntargets:\n{targets}"
        ),
    );

    let first = run(&ws, &server, &["-vvv", "pipeline", "--output", "json"]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    for secret in [CANARY, TOKEN] {
        assert!(!first.stdout.contains(secret) && !first.stderr.contains(secret), "{}", first.transcript());
    }
    let by_key = vec![
        ("DEPLOY_KEY".to_string(), format!("{CANARY}-deploy")),
        ("NPM_TOKEN".to_string(), "n".to_string()),
        ("PASSWORD".to_string(), format!("{CANARY}-db")),
        ("USER".to_string(), "app".to_string()),
    ];
    for repo in repos {
        assert_eq!(plaintexts(&server, &format!("/repos/{repo}/actions/secrets")), by_key, "{repo}");
        assert_eq!(plaintexts(&server, &format!("/repos/{repo}/environments/production/secrets")), by_key);
        assert_eq!(
            plaintexts(&server, &format!("/repos/{repo}/dependabot/secrets")),
            vec![
                ("APP_DB_PASSWORD".to_string(), format!("{CANARY}-db")),
                ("APP_DB_USER".to_string(), "app".to_string()),
                ("CI_KEYS_DEPLOY_KEY".to_string(), format!("{CANARY}-deploy")),
                ("CI_KEYS_NPM_TOKEN".to_string(), "n".to_string()),
            ]
        );
    }
    let spaces: Vec<String> = server.secrets("/repos/acme/app1/codespaces/secrets").into_keys().collect();
    assert_eq!(spaces, ["VSS_DEPLOY_KEY", "VSS_NPM_TOKEN", "VSS_PASSWORD", "VSS_USER"]);
    let org = server.secrets("/orgs/acme/actions/secrets");
    assert_eq!(org.len(), 4);
    let ids = [1000, 1001];
    for secret in org.values() {
        assert_eq!((secret.visibility.as_deref(), secret.selected.as_slice()), (Some("selected"), &ids[..]));
    }
    // The ledger holds fingerprints, never a value.
    let ledger = server.variable("/repos/acme/app1/actions/variables", "VSS_LEDGER_ACTIONS").expect("a ledger");
    assert!(ledger.contains("hmac:") && !ledger.contains(CANARY), "{ledger}");
    assert!(server.rejected().is_empty(), "requests GitHub would refuse: {:?}", server.rejected());

    // Nothing changed: zero-sum, and not one write.
    let writes = server.writes();
    let again = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let report = again.json();
    // 5 repositories x 3 targets x 4 names, plus Codespaces and the organization.
    let synced: u64 = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["phase"] == "sync")
        .map(|t| t["summary"]["unchanged"].as_u64().unwrap())
        .sum();
    assert_eq!(synced, 5 * 3 * 4 + 4 + 4, "{report}");
    let applied = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let calls = github_calls(&applied.json());
    assert_eq!(calls["write"], 0);
    // The rate limit as GitHub last reported it.
    let quota = &calls["quota"];
    assert_eq!(quota["limit"], 5000, "{calls}");
    assert_eq!(quota["used"].as_u64().unwrap() + quota["remaining"].as_u64().unwrap(), 5000, "{calls}");
    assert_eq!(server.writes(), writes, "a no-op run writes nothing");

    // The organization secrets' repositories change: a metadata change of each, applied.
    let config = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write("vss.yaml", &config.replace("selected_repositories: [app1, app2]", "selected_repositories: [app3]"));
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    let report = dry.json();
    let org =
        report["targets"].as_array().unwrap().iter().find(|t| t["name"] == "org" && t["phase"] == "sync").unwrap();
    let changed: Vec<(&str, bool)> = org["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["change"].as_str().unwrap(), c["metadata"] == true))
        .collect();
    assert_eq!(changed, [("modified", true); 4], "{org}");
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let ids = [1002];
    for secret in server.secrets("/orgs/acme/actions/secrets").values() {
        assert_eq!(secret.selected.as_slice(), &ids[..]);
    }
    assert_eq!(run(&ws, &server, &["pipeline", "--dry-run", "--exit-code"]).code, 0);
}

/// A target whose writes partly fail records only what was written: the next run still
/// sees the failed change, and nothing else.
#[test]
fn a_partly_failed_target_records_only_the_writes_that_happened() {
    let server = server(&["acme/app"]);
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {user: app, password: one}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  T: {{imports: [s], github: {{repo: acme/app}}}}\n"),
    );
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    ws.write("s.yaml", "app/db: {user: app2, password: two}\n");
    server.fail_writes_of("PASSWORD");
    let failed = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(failed.code, 2, "{}", failed.transcript());
    let collection = "/repos/acme/app/actions/secrets";
    assert_eq!(server.secrets(collection)["USER"].plaintext, "app2");
    assert_eq!(server.secrets(collection)["PASSWORD"].plaintext, "one");
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--output", "json"]);
    let changes: Vec<(String, String)> = dry.json()["targets"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["change"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(changes, [("PASSWORD".to_string(), "modified".to_string())], "only the failed write is left");
}

#[test]
fn source_changes_and_drift_are_reported_exactly_and_applied() {
    let server = server(&["acme/app"]);
    let ws = Workspace::new();
    // Big numbers and quoted strings reach GitHub exactly as the source holds them.
    let exact = "app/n: {big: 12345678901234567890123, dec: 1.10, quoted: '\"quoted\"'}\n";
    ws.write("s.yaml", &format!("app/db: {{user: app, password: one}}\napp/api: {{key: k}}\n{exact}"));
    ws.write(
        "vss.yaml",
        &format!("{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  T: {{imports: [s], github: {{repo: acme/app}}}}\n"),
    );
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let collection = "/repos/acme/app/actions/secrets";

    // A source change updates exactly the names it maps to.
    let secrets = server.secrets("/repos/acme/app/actions/secrets");
    let texts: Vec<&str> = ["BIG", "DEC", "QUOTED"].iter().map(|n| secrets[*n].plaintext.as_str()).collect();
    assert_eq!(texts, ["12345678901234567890123", "1.10", "\"quoted\""]);
    ws.write("s.yaml", &format!("app/db: {{user: app, password: two}}\napp/api: {{key: k}}\n{exact}"));
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    let changes = &dry.json()["targets"][0]["changes"];
    assert_eq!(changes.as_array().unwrap().len(), 1, "{changes}");
    assert_eq!((changes[0]["path"].as_str(), changes[0]["change"].as_str()), (Some("PASSWORD"), Some("modified")));
    let writes = server.writes();
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    assert_eq!(server.secrets(collection)["PASSWORD"].plaintext, "two");
    assert_eq!(server.writes(), writes + 2, "one secret and the ledger");

    // Someone changes a secret behind vss's back: drift in the dry run, rewritten by the apply.
    server.overwrite(collection, "KEY", "tampered");
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    let change = &dry.json()["targets"][0]["changes"][0];
    assert_eq!((change["path"].as_str(), change["drift"].as_bool()), (Some("KEY"), Some(true)), "{change}");
    let human = run(&ws, &server, &["pipeline", "--dry-run"]);
    assert!(human.stdout.contains("drift"), "{}", human.stdout);
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    assert_eq!(server.secrets(collection)["KEY"].plaintext, "k");
    assert_eq!(run(&ws, &server, &["pipeline", "--dry-run", "--exit-code"]).code, 0, "zero-sum again");
}

#[test]
fn excluded_and_refused_names_are_reported_before_any_write() {
    let server = server(&["acme/app"]);
    let ws = Workspace::new();
    ws.write("s.yaml", "app/ci: {actions_runner_debug: x, ci: y, deploy: z, skip_me: w}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  T: {{imports: [s], github: {{repo: acme/app, exclude: ['^SKIP_']}}}}\n"),
    );
    let run1 = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(run1.code, 0, "{}", run1.transcript());
    let report = run1.json();
    let excluded: Vec<(String, String)> = report["targets"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == "excluded")
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["excluded_by"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        excluded,
        [
            ("ACTIONS_RUNNER_DEBUG".into(), "^ACTIONS_".into()),
            ("CI".into(), "^CI$".into()),
            ("SKIP_ME".into(), "^SKIP_".into())
        ]
    );
    assert_eq!(server.secrets("/repos/acme/app/actions/secrets").into_keys().collect::<Vec<_>>(), ["DEPLOY"]);

    // Names GitHub would refuse, and two values with one name: refused, naming the paths.
    ws.write("s.yaml", "app/a: {1st: x, token: t}\napp/b: {TOKEN: u}\n");
    let writes = server.writes();
    let refused = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let message = refused.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(message.contains("`app/a` key `token` and `app/b` key `TOKEN` would both be named `TOKEN`"), "{message}");
    ws.write("s.yaml", "app/a: {1st: x, github_x: t}\n");
    let refused = run(&ws, &server, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let message = refused.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("`app/a` key `1st` cannot be named `1ST`: GitHub names cannot start with a digit"),
        "{message}"
    );
    assert!(message.contains("`app/a` key `github_x` cannot be named `GITHUB_X`"), "{message}");
    assert_eq!(server.writes(), writes, "nothing written");
    // Over GitHub's 48 KB: refused when the plan is made.
    ws.write("s.yaml", &format!("app/a: {{big: {}}}\n", "x".repeat(48 * 1024 + 1)));
    let refused = run(&ws, &server, &["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let message = refused.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("secret `BIG` cannot be written: it is 49153 bytes, over the store's limit of 49152"),
        "{message}"
    );
}

#[test]
fn a_wrong_token_and_a_spent_rate_limit_fail_cleanly_and_a_secondary_limit_is_waited_out() {
    let server = server(&["acme/app"]);
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {user: app, password: p}\n");
    ws.write(
        "vss.yaml",
        &format!("{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  T: {{imports: [s], github: {{repo: acme/app}}}}\n"),
    );
    let wrong = Vss::new()
        .cwd(ws.dir.path())
        .env("GH_TEST_URL", &server.url)
        .env("GH_TEST_TOKEN", "wrong")
        .env("VSS_FINGERPRINT_KEY", KEY)
        .args(["pipeline"])
        .run();
    assert_eq!(wrong.code, 2, "{}", wrong.transcript());
    assert!(wrong.stdout.contains("the token was refused (Bad credentials (HTTP 401))"), "{}", wrong.stdout);

    // A typo'd repository: one clear error, nothing written anywhere.
    let config = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write("vss.yaml", &config.replace("repo: acme/app}", "repo: acme/ap}"));
    let typo = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(typo.code, 2, "{}", typo.transcript());
    let error = &typo.json()["errors"][0];
    assert_eq!(error["kind"], "not_found", "{error}");
    assert!(error["message"].as_str().unwrap().contains("/repos/acme/ap/actions/secrets"), "{error}");
    assert_eq!(server.writes(), 0);
    ws.write("vss.yaml", &config);

    // Below the reserve: the run stops before writing, and the ledger claims nothing.
    server.set_remaining(50);
    let spent = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(spent.code, 2, "{}", spent.transcript());
    let error = &spent.json()["errors"][0];
    assert_eq!(error["kind"], "quota", "{error}");
    assert!(error["message"].as_str().unwrap().contains("calls left, within the reserve of 100"), "{error}");
    assert!(server.secrets("/repos/acme/app/actions/secrets").is_empty());
    assert_eq!(server.variable("/repos/acme/app/actions/variables", "VSS_LEDGER_ACTIONS"), None);

    // Enough calls to read, not to write and record: the run stops before its first
    // write, and says how many calls it needs.
    server.set_remaining(107);
    let short = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(short.code, 2, "{}", short.transcript());
    let error = &short.json()["errors"][0];
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("the run (1 target: T) needs about 6 calls, 105 are left"), "{error}");
    assert!(message.contains("100 are kept in reserve; it resets in "), "{error}");
    assert!(server.secrets("/repos/acme/app/actions/secrets").is_empty(), "nothing written");

    // A secondary limit on the first writes is waited out (`retry-after: 1`).
    server.set_remaining(5000);
    server.secondary_limit(2);
    let waited = run(&ws, &server, &["pipeline"]);
    assert_eq!(waited.code, 0, "{}", waited.transcript());
    assert_eq!(server.secrets("/repos/acme/app/actions/secrets").len(), 2);
    assert_eq!(run(&ws, &server, &["pipeline", "--dry-run", "--exit-code"]).code, 0);
}

#[test]
fn a_run_whose_targets_together_need_more_calls_than_are_left_writes_nothing() {
    let server = server(&["acme/one", "acme/two"]);
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {user: app, password: p}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  A: {{imports: [s], github: {{repo: acme/one}}}}\n  B: {{imports: [s], github: {{repo: acme/two}}}}\n"
        ),
    );
    // Reading both targets costs 4 calls, then about 110 are left: each target's 6 calls
    // fit above the reserve of 100, both together (12) do not.
    server.set_remaining(114);
    let refused = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let report = refused.json();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "both targets are refused: {report}");
    for (error, repo) in errors.iter().zip(["acme/one", "acme/two"]) {
        assert_eq!(error["kind"], "quota", "{error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with("the run was refused before its first write"), "{error}");
        assert!(message.contains("the run (2 targets: A, B) needs about 12 calls, 110 are left"), "{error}");
        assert!(message.contains("100 are kept in reserve"), "{error}");
        assert!(error["location"].as_str().unwrap().contains(repo), "{error}");
    }
    for target in report["targets"].as_array().unwrap() {
        assert_eq!(target["status"], "failed", "{target}");
        assert!(target["changes"].as_array().unwrap().iter().all(|c| c["status"] == "skipped"), "{target}");
    }
    assert_eq!(server.writes(), 0, "nothing written, no ledger");
    assert!(server.secrets("/repos/acme/one/actions/secrets").is_empty());

    // The same run fits once the quota has room, and writes both.
    server.set_remaining(5000);
    let done = run(&ws, &server, &["pipeline"]);
    assert_eq!(done.code, 0, "{}", done.transcript());
    assert_eq!(server.secrets("/repos/acme/two/actions/secrets").len(), 2);
}

#[test]
fn a_github_that_never_answers_fails_in_bounded_time_naming_the_call() {
    let hung = crate::common::hung_server();
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {user: app, password: p}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "pipeline: {{timeouts: {{request: 1}}}}\n{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  T: {{imports: [s], github: {{repo: acme/app}}}}\n"
        ),
    );
    let out = Vss::new()
        .cwd(ws.dir.path())
        .env("GH_TEST_URL", &hung)
        .env("GH_TEST_TOKEN", TOKEN)
        .env("VSS_FINGERPRINT_KEY", KEY)
        .args(["pipeline", "--output", "json"])
        .run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    let error = &out.json()["errors"][0];
    assert_eq!(error["kind"], "timeout", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("GET /repos/acme/app"), "{error}");
    assert!(message.contains(&format!("at GitHub at {hung}: no answer within 1 s")), "{error}");
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
}

/// Opens a `github:` store on `server` the way the engine does, with a fingerprint key.
async fn open(server: &GithubServer, options: Value) -> AnyStore {
    let github = GithubDefaults {
        api_url: Some(server.url.clone()),
        auth: Some(GithubAuth::Token(Sensitive(TOKEN.into()))),
        write_interval_ms: Some(0),
        ..GithubDefaults::default()
    };
    let mut defaults = StoreDefaults::default();
    defaults.set("github", std::sync::Arc::new(github));
    let (stats, sessions, key) = (Stats::default(), Sessions::default(), Fingerprinter::with_key(KEY.as_bytes()));
    let ctx = OpenContext {
        base_dir: std::path::Path::new("."),
        stats: &stats,
        defaults: &defaults,
        sessions: &sessions,
        fingerprints: Some(&key),
    };
    let config: StoreConfig = serde_json::from_value(json!({"github": options})).unwrap();
    AnyStore::open(&config, &ctx, None).await.unwrap()
}

#[tokio::test]
async fn conformance_in_every_scope() {
    let server = server(&["acme/app"]);
    for options in [
        json!({"repo": "acme/app"}),
        json!({"repo": "acme/app", "environment": "production"}),
        json!({"repo": "acme/app", "scope": "dependabot"}),
        json!({"repo": "acme/app", "scope": "codespaces"}),
        json!({"org": "acme", "visibility": "selected", "selected_repositories": ["app"]}),
        json!({"org": "acme", "scope": "dependabot"}),
    ] {
        crate::conformance::run(&open(&server, options).await, None).await;
    }
    assert!(server.rejected().is_empty(), "requests GitHub would refuse: {:?}", server.rejected());
}

/// The test server holds requests to GitHub's published description: what GitHub would
/// refuse, it refuses and records (so the tests above, asserting none, would catch vss
/// sending one).
#[tokio::test]
async fn the_test_server_refuses_what_github_would() {
    let server = server(&["acme/app"]);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<Value>| {
        let mut request = http.request(method, format!("{}{path}", server.url)).bearer_auth(TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let secrets = "/repos/acme/app/actions/secrets";
    assert_eq!(call(reqwest::Method::GET, &format!("{secrets}?per_page=100"), None).await, 200);
    assert_eq!(call(reqwest::Method::GET, &format!("{secrets}?per_page=101"), None).await, 422, "per_page <= 100");
    assert_eq!(call(reqwest::Method::GET, &format!("{secrets}?perpage=5"), None).await, 422, "no such parameter");
    let put = |body: Value| call(reqwest::Method::PUT, "/repos/acme/app/actions/secrets/X", Some(body));
    assert_eq!(put(json!({"encrypted_value": "AAAA"})).await, 422, "key_id is required");
    assert_eq!(put(json!({"encrypted_value": "not base64!", "key_id": "k"})).await, 422, "the value's pattern");
    assert_eq!(
        call(reqwest::Method::POST, "/orgs/acme/actions/variables", Some(json!({"name": "A", "value": "v"}))).await,
        422,
        "org variables need a visibility"
    );
    assert_eq!(call(reqwest::Method::GET, "/repos/acme/app/actions/secret", None).await, 404, "undocumented");
    assert_eq!(server.rejected().len(), 5, "{:?}", server.rejected());
}

/// A GitHub App key pair: the private key as PEM (PKCS#8), the public key as PKCS#1 DER.
fn app_key() -> (String, Vec<u8>) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine as _;
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&key).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
    (pem, key.public_key().as_ref().to_vec())
}

#[test]
fn a_github_app_logs_in_with_a_signed_jwt_and_a_wrong_key_is_one_clear_error() {
    let server = server(&["acme/app"]);
    let (pem, public) = app_key();
    server.add_app("12345", 777, &public);
    let ws = Workspace::new();
    ws.write("app.pem", &pem);
    ws.write("s.yaml", "app/db: {password: p}\n");
    let config = |key: &str| {
        format!(
            "github: {{api_url: \"${{GH_TEST_URL}}\", auth: {{app: {{app_id: \"12345\", installation_id: 777, private_key_file: {key}}}}}, write_interval_ms: 0}}\nsources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n  A: {{imports: [s], github: {{repo: acme/app}}}}\n  B: {{imports: [s], github: {{repo: acme/app, scope: dependabot}}}}\n"
        )
    };
    ws.write("vss.yaml", &config("app.pem"));
    let applied = run(&ws, &server, &["pipeline"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    assert_eq!(server.secrets("/repos/acme/app/actions/secrets")["PASSWORD"].plaintext, "p");
    assert_eq!(server.issued(), 1, "one installation token for the run, shared by both targets");
    assert!(!applied.stdout.contains("ghs_") && !applied.stderr.contains("ghs_"), "{}", applied.transcript());
    // A token with less than five minutes left is renewed before it is used.
    server.set_token_lifetime(200);
    let renewed = run(&ws, &server, &["pipeline", "--dry-run"]);
    assert_eq!(renewed.code, 0, "{}", renewed.transcript());
    assert!(server.issued() >= 3, "a short-lived token is renewed: {} issued", server.issued());

    // Another App's key: one line saying the App cannot log in.
    ws.write("other.pem", &app_key().0);
    ws.write("vss.yaml", &config("other.pem"));
    let refused = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(refused.code, 2, "{}", refused.transcript());
    let error = &refused.json()["errors"][0];
    assert_eq!(error["kind"], "permission", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("GitHub App 12345 cannot log in to installation 777"),
        "{error}"
    );
    ws.write("bad.pem", "not a key");
    ws.write("vss.yaml", &config("bad.pem"));
    let bad = run(&ws, &server, &["pipeline"]);
    assert_eq!(bad.code, 2, "{}", bad.transcript());
    assert!(bad.stdout.contains("bad.pem is not an RSA private key in PEM"), "{}", bad.stdout);
}

/// Runs an example config from `examples/` as its workflow does: secrets handed in
/// `ACTIONS_SECRETS`, the token and API URL from the environment.
fn run_example(server: &GithubServer, config: &str, extra: &[(&str, &str)], args: &[&str]) -> Run {
    let secrets = json!({"github_token": "ghs_workflow", "DB_PASSWORD": format!("{CANARY}-p"), "NPM_TOKEN": "n"});
    let mut vss = Vss::new()
        .env("ACTIONS_SECRETS", secrets.to_string())
        .env("GITHUB_API_URL", &server.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env("VSS_FINGERPRINT_KEY", KEY)
        .args(["pipeline", "--config", config])
        .args(args);
    for (key, value) in extra {
        vss = vss.env(key, value);
    }
    vss.run()
}

#[test]
fn the_workflow_examples_mirror_and_copy_actions_secrets() {
    let server = server(&["acme/app", "acme/other"]);
    // Mirror Actions -> Dependabot and Codespaces, at GitHub's default pace.
    let mirror = run_example(&server, "examples/github-mirror.yaml", &[("GITHUB_REPOSITORY", "acme/app")], &[]);
    assert_eq!(mirror.code, 0, "{}", mirror.transcript());
    let handed = vec![("DB_PASSWORD".to_string(), format!("{CANARY}-p")), ("NPM_TOKEN".to_string(), "n".to_string())];
    assert_eq!(plaintexts(&server, "/repos/acme/app/dependabot/secrets"), handed, "the workflow token is not copied");
    assert_eq!(plaintexts(&server, "/repos/acme/app/codespaces/secrets"), handed);
    assert!(!mirror.stdout.contains(CANARY) && !mirror.stderr.contains(CANARY), "{}", mirror.transcript());

    // Copy into another repository: missing secrets are added, its own are left alone.
    server.put_secret("/repos/acme/other/actions/secrets", "NPM_TOKEN", "theirs");
    let copy = run_example(
        &server,
        "examples/github-copy.yaml",
        &[("TARGET_REPOSITORY", "acme/other")],
        &["--output", "json"],
    );
    assert_eq!(copy.code, 0, "{}", copy.transcript());
    let report = copy.json();
    assert_eq!(
        (report["summary"]["added"].as_u64(), report["summary"]["unverified"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(report["targets"][0]["hint"].as_str().unwrap().contains("vss did not write them"), "{report}");
    // Without a fingerprint key nothing can be verified, and the report says what to set.
    let unkeyed = Vss::new()
        .env("ACTIONS_SECRETS", json!({"NPM_TOKEN": "x"}).to_string())
        .env("GITHUB_API_URL", &server.url)
        .env("GITHUB_TOKEN", TOKEN)
        .env("TARGET_REPOSITORY", "acme/other")
        .env_remove("VSS_FINGERPRINT_KEY")
        .args(["pipeline", "--config", "examples/github-copy.yaml", "--dry-run"])
        .run();
    assert_eq!(unkeyed.code, 0, "{}", unkeyed.transcript());
    let hint = "hint: GitHub returns no values, and without VSS_FINGERPRINT_KEY";
    assert!(unkeyed.stdout.contains(hint), "{}", unkeyed.stdout);
    assert_eq!(
        plaintexts(&server, "/repos/acme/other/actions/secrets"),
        vec![("DB_PASSWORD".to_string(), format!("{CANARY}-p")), ("NPM_TOKEN".to_string(), "theirs".to_string())]
    );
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

/// `Debug` of the store, its defaults and the run's sessions prints neither the token nor
/// a value written.
#[tokio::test]
async fn debug_formatting_prints_no_token_and_no_value() {
    let server = server(&["acme/app"]);
    let store = open(&server, json!({"repo": "acme/app"})).await;
    use vss::store::Store as _;
    let name = vss::secret::SecretPath::parse("TOKEN").unwrap();
    let value = vss::secret::SecretValue::new(json!(format!("{CANARY}-value")));
    store.write(&name, &value, "T").await.unwrap();
    store.finish().await.unwrap();
    let read = store.read(&name).await.unwrap();
    let defaults =
        GithubDefaults { auth: Some(GithubAuth::Token(Sensitive(TOKEN.into()))), ..GithubDefaults::default() };
    let sessions = vss::store::github::GithubSessions::default();
    let stats = Stats::default();
    sessions.client(&defaults, std::path::Path::new("."), stats.counter("github")).unwrap();
    let text = format!("{store:?} {read:?} {defaults:?} {sessions:?}");
    assert!(!text.contains(CANARY) && !text.contains(TOKEN), "{text}");
}

/// What vss sends GitHub opens with libsodium (PyNaCl), as GitHub opens it: a value sealed
/// by the store to the location's public key is opened by `nacl.public.SealedBox`. The
/// test server's own opening (crypto_box) is checked against libsodium the other way.
#[tokio::test]
async fn sealed_boxes_open_with_libsodium_both_ways() {
    use base64::Engine as _;
    let python = std::env::var("VSS_TEST_PYTHON").expect("run tests/run: it installs PyNaCl");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    // vss seals (through the store, to the test server's key); PyNaCl opens with the private key.
    let server = server(&["acme/app"]);
    let store = open(&server, json!({"repo": "acme/app"})).await;
    use vss::store::Store as _;
    let value = format!("{CANARY} ünïcödé \n\t\"quoted\"");
    let path = vss::secret::SecretPath::parse("SEALED").unwrap();
    store.write(&path, &vss::secret::SecretValue::new(json!(value)), "T").await.unwrap();
    let (secret_key, sealed) = server.last_sealed("/repos/acme/app/actions/secrets").expect("a sealed value");
    let open = "import base64, sys\nfrom nacl.public import PrivateKey, SealedBox\nkey = PrivateKey(base64.b64decode(sys.argv[1]))\nsys.stdout.buffer.write(SealedBox(key).decrypt(base64.b64decode(sys.argv[2])))";
    let out = std::process::Command::new(&python).args(["-c", open, &b64(&secret_key), &sealed]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
    // PyNaCl seals to a key; crypto_box (what the test server opens with) opens it.
    let key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
    let seal = "import base64, sys\nfrom nacl.public import PublicKey, SealedBox\nbox = SealedBox(PublicKey(base64.b64decode(sys.argv[1])))\nprint(base64.b64encode(box.encrypt(sys.argv[2].encode())).decode())";
    let out = std::process::Command::new(&python)
        .args(["-c", seal, &b64(key.public_key().as_bytes()), &value])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sealed =
        base64::engine::general_purpose::STANDARD.decode(String::from_utf8(out.stdout).unwrap().trim()).unwrap();
    assert_eq!(String::from_utf8(key.unseal(&sealed).unwrap()).unwrap(), value);
}

/// The test server, cross-checked once with GitHub's official client: Octokit seals with
/// libsodium as GitHub's docs show, writes, pages (two per page, following `Link`), keeps a
/// variable, reads a missing secret as 404 and deletes; the server's state must agree.
#[test]
fn octokit_agrees_with_the_test_server() {
    use std::io::Write as _;
    let node_dir = std::env::var("VSS_TEST_NODE_DIR").expect("run tests/run: it installs Octokit");
    let server = server(&["acme/app"]);
    let script =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/github/octokit-check.mjs")).unwrap();
    let mut child = std::process::Command::new("node")
        .args(["--input-type=module"])
        .current_dir(&node_dir)
        .env("GH_URL", &server.url)
        .env("GH_TOKEN", TOKEN)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["listed"], json!(["ALPHA", "BETA", "GAMMA"]), "{result}");
    assert_eq!((result["variable"].as_str(), result["missing"].as_u64()), (Some("v2"), Some(404)), "{result}");
    assert_eq!((result["after"].clone(), result["total"].as_u64()), (json!(["ALPHA", "BETA"]), Some(2)), "{result}");
    assert_eq!(
        plaintexts(&server, "/repos/acme/app/actions/secrets"),
        vec![("ALPHA".to_string(), "a-value".to_string()), ("BETA".to_string(), "b-value".to_string())]
    );
    assert!(server.rejected().is_empty(), "Octokit sent what GitHub would refuse: {:?}", server.rejected());
}
