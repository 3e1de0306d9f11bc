//! The GitHub workflows on top of the `github` store, end to end through the binary
//! against the loopback GitHub test server: environments as code, `vss ensure` (also by
//! repository dispatch), `vss status` and the audit log.
#![cfg(feature = "github")]

use serde_json::Value;

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
