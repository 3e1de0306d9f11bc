//! The GitHub workflows on top of the `github` store, end to end through the binary
//! against the loopback GitHub test server: environments as code, `vss ensure` (also by
//! repository dispatch), `vss status` and the audit log.
#![cfg(feature = "github")]

use serde_json::{Value, json};

use crate::common::Workspace;
use crate::github::{CANARY, HEADER, plaintexts, run, server};

fn sync_target<'r>(report: &'r Value, name: &str) -> &'r Value {
    report["targets"].as_array().unwrap().iter().find(|t| t["name"] == name && t["phase"] == "sync").unwrap()
}

#[test]
fn environments_are_created_with_their_rules_updated_by_field_and_left_alone_when_they_match() {
    let server = server(&["acme/app"]);
    let octocat = server.add_user("octocat");
    let hubot = server.add_user("hubot");
    let platform = server.add_team("acme", "platform");
    let ws = Workspace::new();
    ws.write("s.yaml", &format!("app/db: {{password: {CANARY}}}\n"));
    let config = |production: &str| {
        format!(
            "{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n\
             \x20 dev: {{imports: [s], github: {{repo: acme/app, environment: {{name: dev}}}}}}\n\
             \x20 staging: {{imports: [s], github: {{repo: acme/app, environment: {{name: staging, wait_timer: 5, deployment_branches: [main, release/*]}}}}}}\n\
             \x20 production: {{imports: [s], github: {{repo: acme/app, environment: {{name: production, {production}}}}}}}\n"
        )
    };
    ws.write(
        "vss.yaml",
        &config("wait_timer: 10, prevent_self_review: true, reviewers: [{user: octocat}, {team: platform}], deployment_branches: protected"),
    );
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    let report = dry.json();
    assert_eq!(report["summary"]["settings"], 3, "{report}");
    let staging = &sync_target(&report, "staging")["settings"];
    assert_eq!(staging["subject"], "environment staging");
    assert_eq!((staging["change"].as_str(), staging["status"].as_str()), (Some("added"), Some("planned")));
    assert_eq!(staging["fields"], serde_json::json!(["wait_timer", "deployment_branches"]));
    assert_eq!(sync_target(&report, "dev")["settings"]["fields"], serde_json::json!([]));
    assert_eq!(sync_target(&report, "production")["summary"]["added"], 1, "its secrets too, though it does not exist");
    assert!(server.environment("acme/app", "staging").is_none(), "a dry run creates nothing");
    let human = run(&ws, &server, &["pipeline", "--dry-run"]);
    assert!(
        human.stdout.contains("+ environment staging (created: wait_timer, deployment_branches)"),
        "{}",
        human.stdout
    );

    let applied = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(applied.code, 0, "{}", applied.transcript());
    let production = server.environment("acme/app", "production").expect("created");
    assert_eq!(production.wait_timer, 10);
    assert!(production.prevent_self_review);
    assert_eq!(production.reviewers, [("Team".to_string(), platform), ("User".to_string(), octocat)]);
    assert_eq!(production.policy, Some((true, false)));
    let staging = server.environment("acme/app", "staging").expect("created");
    let mut patterns: Vec<String> = staging.branch_policies.values().map(|(p, _)| p.clone()).collect();
    patterns.sort();
    assert_eq!(
        (staging.wait_timer, staging.policy, patterns),
        (5, Some((false, true)), vec!["main".into(), "release/*".into()])
    );
    for env in ["dev", "staging", "production"] {
        let secrets = plaintexts(&server, &format!("/repos/acme/app/environments/{env}/secrets"));
        assert_eq!(secrets, [("PASSWORD".to_string(), CANARY.to_string())], "{env}");
    }
    assert!(!applied.stdout.contains(CANARY) && !applied.stderr.contains(CANARY));

    // Nothing changed: not one write, environments included.
    let writes = server.writes();
    let again = run(&ws, &server, &["pipeline", "--exit-code", "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    assert_eq!(server.writes(), writes, "a no-op run writes nothing");
    assert!(again.json()["targets"].as_array().unwrap().iter().all(|t| t.get("settings").is_none()));

    // One reviewer swapped, the wait timer dropped, the branches opened: modified, by field.
    ws.write("vss.yaml", &config("prevent_self_review: true, reviewers: [{user: hubot}, {team: platform}]"));
    let dry = run(&ws, &server, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    let report = dry.json();
    let settings = &sync_target(&report, "production")["settings"];
    assert_eq!(settings["change"], "modified");
    assert_eq!(settings["fields"], serde_json::json!(["wait_timer", "reviewers", "deployment_branches"]));
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let production = server.environment("acme/app", "production").unwrap();
    assert_eq!(production.reviewers, [("Team".to_string(), platform), ("User".to_string(), hubot)]);
    assert_eq!((production.wait_timer, production.policy), (0, None));
    // Branch patterns changed: one added, one removed.
    let config_text = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write("vss.yaml", &config_text.replace("[main, release/*]", "[main, hotfix/*]"));
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let mut patterns: Vec<String> =
        server.environment("acme/app", "staging").unwrap().branch_policies.values().map(|(p, _)| p.clone()).collect();
    patterns.sort();
    assert_eq!(patterns, ["hotfix/*", "main"]);
    assert_eq!(run(&ws, &server, &["pipeline", "--dry-run", "--exit-code"]).code, 0, "zero-sum again");
    assert!(server.rejected().is_empty(), "requests GitHub would refuse: {:?}", server.rejected());
}

#[test]
fn an_unknown_reviewer_fails_its_target_alone_naming_the_reviewer() {
    let server = server(&["acme/app"]);
    server.add_user("octocat");
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {password: p}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}}}\ntargets:\n\
             \x20 ok: {{imports: [s], github: {{repo: acme/app}}}}\n\
             \x20 prod: {{imports: [s], github: {{repo: acme/app, environment: {{name: prod, reviewers: [{{user: octocat}}, {{team: ghosts}}]}}}}}}\n"
        ),
    );
    let out = run(&ws, &server, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let report = out.json();
    assert_eq!(report["errors"].as_array().unwrap().len(), 1, "{report}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("reviewer team `ghosts` of environment `prod`"), "{message}");
    assert!(message.contains("the organization `acme` has no such team"), "{message}");
    assert_eq!(sync_target(&report, "ok")["status"], "ok");
    assert_eq!(plaintexts(&server, "/repos/acme/app/actions/secrets").len(), 1, "the other target was synced");
    assert!(server.environment("acme/app", "prod").is_none(), "nothing created");
}

/// A repository with one secret of each finding: missing, drifted, unmanaged, and a name
/// its Actions and Dependabot scopes would hold with different values.
fn seeded(ws: &Workspace) -> crate::github_server::GithubServer {
    let server = server(&["acme/app"]);
    ws.write("s.yaml", "app: {api_key: a, token: t1}\n");
    ws.write("bots.yaml", "bots: {token: t2}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}audit: {{file: audit.jsonl}}\nsources: {{s: {{file: {{path: s.yaml}}}}, bots: {{file: {{path: bots.yaml}}}}}}\ntargets:\n\
             \x20 app-actions: {{imports: [s], github: {{repo: acme/app}}}}\n\
             \x20 app-bots: {{imports: [bots], github: {{repo: acme/app, scope: dependabot}}}}\n"
        ),
    );
    assert_eq!(run(ws, &server, &["pipeline"]).code, 0);
    ws.write("s.yaml", &format!("app: {{api_key: a, token: t1, new_key: {CANARY}}}\n"));
    server.overwrite("/repos/acme/app/actions/secrets", "API_KEY", "tampered");
    server.put_secret("/repos/acme/app/actions/secrets", "STRAY", "someone's");
    server
}

#[test]
fn status_reports_each_kind_of_finding_with_remediation_and_exits_1() {
    let ws = Workspace::new();
    let server = seeded(&ws);
    let writes = server.writes();
    let out = run(&ws, &server, &["status", "--exit-code", "--output", "json"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let report = out.json();
    let findings: Vec<(String, String, String)> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t["findings"].as_array().unwrap().iter().map(move |f| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    f["kind"].as_str().unwrap().to_string(),
                    f["name"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    let expected = [
        ("app-actions", "missing", "NEW_KEY"),
        ("app-actions", "drifted", "API_KEY"),
        ("app-actions", "unmanaged", "STRAY"),
    ];
    assert_eq!(findings, expected.map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())), "{report}");
    assert_eq!(report["conflicts"].as_array().unwrap().len(), 1, "{report}");
    let conflict = &report["conflicts"][0];
    assert_eq!((conflict["place"].as_str(), conflict["name"].as_str()), (Some("github acme/app"), Some("TOKEN")));
    let scopes: Vec<&str> =
        conflict["scopes"].as_array().unwrap().iter().map(|s| s["scope"].as_str().unwrap()).collect();
    assert_eq!(scopes, ["actions", "dependabot"]);
    assert!(conflict["scopes"][0]["fingerprint"].as_str().unwrap().starts_with("hmac:"));
    let summary = &report["summary"];
    assert_eq!((summary["total"].as_u64(), summary["valid"].as_u64()), (Some(2), Some(0)), "{summary}");
    assert_eq!(
        (summary["missing"].as_u64(), summary["conflicts"].as_u64(), summary["findings"].as_u64()),
        (Some(1), Some(1), Some(4))
    );
    for f in report["targets"][0]["findings"].as_array().unwrap() {
        assert!(f["remediation"].as_str().unwrap().contains("vss pipeline --targets app-actions"), "{f}");
    }
    assert!(report["quota"]["github"]["remaining"].as_u64().is_some(), "{report}");
    assert_eq!(server.writes(), writes, "status writes nothing");
    // The schema holds, and no output carries a value.
    let schema =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/status.schema.json"))
            .unwrap();
    let validator = jsonschema::validator_for(&serde_json::from_str(&schema).unwrap()).unwrap();
    assert!(validator.is_valid(&report), "{report}");
    let human = run(&ws, &server, &["status"]);
    assert_eq!(human.code, 0, "without --exit-code findings are not a failure");
    assert!(
        human
            .stdout
            .starts_with("FINDINGS: 4 findings in 2 of 2 targets (1 missing, 1 drifted, 1 unmanaged, 1 conflict)"),
        "{}",
        human.stdout
    );
    assert!(human.stdout.contains("remove the unmanaged secret STRAY"), "{}", human.stdout);
    for text in [&out.stdout, &out.stderr, &human.stdout, &human.stderr] {
        assert!(!text.contains(CANARY) && !text.contains("tampered") && !text.contains("t2"), "{text}");
    }
    // Once applied (the unmanaged secret adopted by a source), the repository is clean but for the conflict.
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let after = run(&ws, &server, &["status", "--output", "json"]).json();
    assert_eq!(after["summary"]["findings"], 2, "the unmanaged secret and the conflict remain: {after}");
}

#[test]
fn a_value_a_scope_still_holds_from_the_ledger_conflicts_with_what_vss_writes_elsewhere() {
    let server = server(&["acme/app"]);
    let ws = Workspace::new();
    ws.write("s.yaml", "app: {token: t1}\n");
    ws.write("bots.yaml", "bots: {token: t1}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "{HEADER}sources: {{s: {{file: {{path: s.yaml}}}}, bots: {{file: {{path: bots.yaml}}}}}}\ntargets:\n\
             \x20 app-actions: {{imports: [s], github: {{repo: acme/app}}}}\n\
             \x20 app-bots: {{imports: [bots], github: {{repo: acme/app, scope: dependabot}}}}\n"
        ),
    );
    assert_eq!(run(&ws, &server, &["pipeline"]).code, 0);
    let conflicts = |ws: &Workspace| run(ws, &server, &["status", "--output", "json"]).json()["conflicts"].clone();
    assert_eq!(conflicts(&ws), json!([]), "one value in both scopes");
    // Dependabot no longer gets TOKEN, but keeps the t1 vss wrote there (an orphan, known
    // by its ledger fingerprint), while Actions moves on to t2.
    ws.write("bots.yaml", "bots: {other: x}\n");
    ws.write("s.yaml", "app: {token: t2}\n");
    let found = conflicts(&ws);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    let conflict = &found[0];
    assert_eq!(conflict["name"], "TOKEN");
    let scopes: Vec<(&str, &str)> = conflict["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["scope"].as_str().unwrap(), s["from"].as_str().unwrap()))
        .collect();
    assert_eq!(scopes, [("actions", "desired"), ("dependabot", "held")]);
    let ledger = |secret: &str| {
        vss::secret::Fingerprinter::with_key(crate::github::KEY.as_bytes())
            .fingerprint_secret(&vss::secret::SecretValue::new(json!(secret)))
    };
    assert_eq!(conflict["scopes"][1]["fingerprint"], ledger("t1"), "the ledger's fingerprint of what vss wrote");
    assert_eq!(conflict["scopes"][0]["fingerprint"], ledger("t2"));
    assert!(
        conflict["remediation"]
            .as_str()
            .unwrap()
            .starts_with("delete the TOKEN that vss no longer writes from dependabot"),
        "{conflict}"
    );
    // Back to t1 in Actions: the orphan holds the same value, so no conflict.
    ws.write("s.yaml", "app: {token: t1}\n");
    assert_eq!(conflicts(&ws), json!([]));
}

#[test]
fn ensure_writes_only_missing_names_and_never_overwrites() {
    let ws = Workspace::new();
    let server = seeded(&ws);
    let collection = "/repos/acme/app/actions/secrets";
    let dry = run(
        &ws,
        &server,
        &["ensure", "--target", "app-actions", "--all", "--dry-run", "--exit-code", "--output", "json"],
    );
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    assert_eq!(dry.json()["summary"]["added"], 1, "{}", dry.stdout);
    let writes = server.writes();
    let out = run(&ws, &server, &["ensure", "--target", "app-actions", "--exit-code", "new_key", "API_KEY"]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let secrets = server.secrets(collection);
    assert_eq!(secrets["NEW_KEY"].plaintext, CANARY);
    assert_eq!(secrets["API_KEY"].plaintext, "tampered", "an existing secret is never overwritten");
    assert_eq!(secrets["STRAY"].plaintext, "someone's");
    assert_eq!(server.writes(), writes + 2, "one secret and the ledger");
    let again = run(&ws, &server, &["ensure", "--target", "app-actions", "--exit-code", "NEW_KEY"]);
    assert_eq!(again.code, 0, "nothing missing: {}", again.transcript());
    // A name no source has is an error that says so; nothing is written.
    let unknown = run(&ws, &server, &["ensure", "--target", "app-actions", "NOPE"]);
    assert_eq!(unknown.code, 2, "{}", unknown.transcript());
    assert!(
        unknown.stdout.contains("`NOPE` is not in the desired state of `app-actions`: add it to one of its sources"),
        "{}",
        unknown.stdout
    );
    // --repo is refused unless the config allows the repository.
    let refused = run(&ws, &server, &["ensure", "--target", "app-actions", "--repo", "acme/other", "NEW_KEY"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("`ensure.repositories`"), "{}", refused.stderr);
}

/// `vss` as the asking repository's workflow runs it: a token and GitHub's API, no config.
fn asking(server: &crate::github_server::GithubServer, ws: &Workspace) -> crate::common::Vss {
    crate::common::Vss::new()
        .cwd(ws.dir.path())
        .env("GITHUB_API_URL", &server.url)
        .env("GITHUB_TOKEN", crate::github::TOKEN)
}

#[test]
fn ensure_by_dispatch_waits_for_the_source_repositorys_workflow() {
    let server = server(&["acme/web", "acme/keeper"]);
    let keeper = Workspace::new();
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/github-ensure.yaml");
    keeper.write("keeper.yaml", &std::fs::read_to_string(example).unwrap());
    let handed =
        format!(r#"{{"DEPLOY_KEY": "{CANARY}-deploy", "NPM_TOKEN": "npm", "OTHER": "x", "github_token": "ghs_x"}}"#);
    // The keeper's workflow (examples/workflows/vss-ensure.yml), played when the dispatch arrives.
    let (url, dir) = (server.url.clone(), keeper.dir.path().to_path_buf());
    server.on_dispatch(move |dispatch| {
        assert_eq!((dispatch.repo.as_str(), dispatch.event_type.as_str()), ("acme/keeper", "vss-ensure"));
        let repo = dispatch.payload["repository"].as_str().unwrap().to_string();
        let names: Vec<String> =
            dispatch.payload["names"].as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect();
        let out = crate::common::Vss::new()
            .cwd(&dir)
            .env("GITHUB_API_URL", &url)
            .env("GITHUB_TOKEN", crate::github::TOKEN)
            .env("VSS_FINGERPRINT_KEY", crate::github::KEY)
            .env("ACTIONS_SECRETS", &handed)
            .args([
                "ensure",
                "--config",
                "keeper.yaml",
                "--target",
                "requester",
                "--repo",
                &repo,
                "--output",
                "github",
                "--",
            ])
            .args(&names)
            .run();
        assert_eq!(out.code, 0, "{}", out.transcript());
    });
    server.put_secret("/repos/acme/web/actions/secrets", "NPM_TOKEN", "already there");
    let web = Workspace::new();
    let ask = |extra: &[&str]| {
        asking(&server, &web)
            .args([
                "ensure",
                "--dispatch",
                "acme/keeper",
                "--repo",
                "acme/web",
                "--timeout",
                "30",
                "--interval",
                "1",
                "--exit-code",
                "--output",
                "json",
            ])
            .args(extra)
            .args(["DEPLOY_KEY", "NPM_TOKEN"])
            .run()
    };
    let dry = ask(&["--dry-run"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    assert!(server.dispatches().is_empty(), "a dry run dispatches nothing");
    let out = ask(&[]);
    assert_eq!(out.code, 1, "{}", out.transcript());
    let report = out.json();
    let changes: Vec<(&str, &str)> = report["targets"][0]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap(), c["change"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [("DEPLOY_KEY", "added"), ("NPM_TOKEN", "unchanged")]);
    let dispatches = server.dispatches();
    assert_eq!(dispatches.len(), 1);
    assert_eq!(dispatches[0].payload, serde_json::json!({"repository": "acme/web", "names": ["DEPLOY_KEY"]}));
    let secrets = plaintexts(&server, "/repos/acme/web/actions/secrets");
    assert_eq!(
        secrets,
        [
            ("DEPLOY_KEY".to_string(), format!("{CANARY}-deploy")),
            ("NPM_TOKEN".to_string(), "already there".to_string())
        ]
    );
    assert!(!out.stdout.contains(CANARY) && !out.stderr.contains(CANARY));
    assert_eq!(ask(&[]).code, 0, "nothing missing, nothing dispatched");
    assert_eq!(server.dispatches().len(), 1);
    assert!(server.rejected().is_empty(), "{:?}", server.rejected());
}

#[test]
fn ensure_by_dispatch_times_out_naming_what_is_still_missing() {
    let server = server(&["acme/web", "acme/keeper"]);
    let ws = Workspace::new();
    let out = asking(&server, &ws)
        .args([
            "ensure",
            "--dispatch",
            "acme/keeper",
            "--repo",
            "acme/web",
            "--timeout",
            "2",
            "--interval",
            "1",
            "DEPLOY_KEY",
        ])
        .run();
    assert_eq!(out.code, 2, "{}", out.transcript());
    assert!(out.stdout.contains("still missing after 2 s: DEPLOY_KEY"), "{}", out.stdout);
    assert_eq!(server.dispatches().len(), 1);
}

#[test]
fn every_run_appends_its_events_and_concurrent_runs_lose_none() {
    let ws = Workspace::new();
    let server = seeded(&ws);
    assert_eq!(run(&ws, &server, &["status"]).code, 0);
    assert_eq!(run(&ws, &server, &["ensure", "--target", "app-actions", "NEW_KEY"]).code, 0);
    // Two runs at once, each appending two events.
    let children: Vec<_> = (0..2)
        .map(|_| {
            crate::common::Vss::new()
                .cwd(ws.dir.path())
                .env("GH_TEST_URL", &server.url)
                .env("GH_TEST_TOKEN", crate::github::TOKEN)
                .env("VSS_FINGERPRINT_KEY", crate::github::KEY)
                .args(["pipeline", "--dry-run"])
                .spawn()
        })
        .collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let out = run(&ws, &server, &["audit", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = out.json();
    let events = report["events"].as_array().unwrap();
    let ops: Vec<(&str, &str)> =
        events.iter().map(|e| (e["command"].as_str().unwrap(), e["operation"].as_str().unwrap())).collect();
    // The seeding pipeline (2 targets), status (2), ensure (1), the two concurrent runs (2 each).
    assert_eq!(ops.len(), 9, "{report}");
    assert_eq!(ops.iter().filter(|(c, _)| *c == "pipeline").count(), 6);
    assert_eq!(ops.iter().filter(|(c, _)| *c == "status").count(), 2);
    assert_eq!(ops.iter().filter(|(c, o)| (*c, *o) == ("ensure", "ensure")).count(), 1);
    let mut runs: Vec<&str> = events.iter().map(|e| e["run"].as_str().unwrap()).collect();
    runs.dedup();
    assert_eq!(runs.len(), 5, "one id per run: {runs:?}");
    let ensure = events.iter().find(|e| e["command"] == "ensure").unwrap();
    assert_eq!((ensure["status"].as_str(), ensure["counts"]["added"].as_u64()), (Some("success"), Some(1)));
    assert_eq!((ensure["scope"].as_str(), ensure["store"].as_str()), (Some("actions"), Some("github")));
    assert!(ensure["quota"]["remaining"].as_u64().is_some(), "{ensure}");
    assert_eq!(report["skipped_lines"], 0);
    let log = std::fs::read_to_string(ws.path("audit.jsonl")).unwrap();
    assert!(!log.contains(CANARY) && !log.contains("tampered"), "no value in the log");
    // Filters.
    let filtered = run(&ws, &server, &["audit", "--output", "json", "--target", "app-bots", "--since", "1h"]).json();
    assert_eq!(filtered["events"].as_array().unwrap().len(), 4, "{filtered}");
    let none = run(&ws, &server, &["audit", "--output", "json", "--status", "failure"]).json();
    assert_eq!(none["events"].as_array().unwrap().len(), 0);
    let human = run(&ws, &server, &["audit", "--target", "app-actions"]);
    assert_eq!(human.stdout.lines().count(), 5, "{}", human.stdout);
    assert_eq!(run(&ws, &server, &["audit", "--since", "soon"]).code, 2);
}
