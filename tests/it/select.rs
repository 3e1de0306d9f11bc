//! Selection and transforms end to end: one config sends only `payments/**` of a source,
//! renamed and prefixed, to one target and everything else to another, on the `file` store
//! and on real OpenBao, checked through what the stores hold; warnings for patterns that
//! match nothing; collisions; per-target `include`/`exclude` and `delete_orphans`;
//! `inherits` with a selection; orphans and unmanaged secrets listed by path.

use serde_json::{Value, json};

use crate::common::Workspace;

/// The selection of the issue's example, on whatever stores `source` and `payments` and
/// `rest` name.
fn config(header: &str, source: &str, payments: &str, rest: &str) -> String {
    format!(
        r#"{header}sources:
  api-keys: {source}
targets:
  Payments:
    imports:
      - source: api-keys
        include: ["payments/**"]
        exclude: ["**/test-*"]
        keys: {{include: [api_key, secret_key], exclude: [debug]}}
        rename: {{"payments/stripe": stripe, "payments/*": "pay-{{1}}"}}
        rename_keys: {{secret_key: STRIPE_SECRET_KEY}}
        prefix: third-party/
    {payments}
  Rest:
    imports:
      - {{source: api-keys, exclude: ["payments/**"]}}
    {rest}
"#
    )
}

/// What the source holds.
fn source_secrets() -> Vec<(&'static str, Value)> {
    vec![
        ("payments/stripe", json!({"api_key": "sk-1", "secret_key": "ss-1", "debug": "on", "other": "x"})),
        ("payments/adyen", json!({"api_key": "ad-1"})),
        ("payments/test-card", json!({"api_key": "tc-1"})),
        ("sendgrid", json!({"api_key": "sg-1"})),
        ("ci/deploy", json!({"token": "t-1"})),
    ]
}

/// What each target must hold, exactly.
fn expected() -> (Value, Value) {
    (
        json!({
            "third-party/stripe": {"api_key": "sk-1", "STRIPE_SECRET_KEY": "ss-1"},
            "third-party/pay-adyen": {"api_key": "ad-1"},
        }),
        json!({"sendgrid": {"api_key": "sg-1"}, "ci/deploy": {"token": "t-1"}}),
    )
}

/// The first OpenBao server, a folder of its own (`secret/<u>/src` holds the source's
/// secrets), a raw HTTP client to check with, and a runtime to run it on.
fn openbao_source(tag: &str) -> (crate::vault::Servers, String, crate::vault::Http, tokio::runtime::Runtime) {
    let s = crate::vault::servers();
    let u = crate::vault::unique(tag);
    let http = crate::vault::Http::from_env();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (path, value) in source_secrets() {
            http.put_secret(&format!("secret/{u}/src/{path}"), value).await;
        }
    });
    (s, u, http, rt)
}

/// The secrets below a file-store directory, by path.
fn file_tree(ws: &Workspace, dir: &str) -> Value {
    let mut out = serde_json::Map::new();
    for file in ws.files(dir).into_iter().filter(|f| !f.split('/').any(|s| s.starts_with('.'))) {
        let path = file.strip_suffix(".json").unwrap().to_string();
        out.insert(path, ws.read_json(&format!("{dir}/{file}")));
    }
    Value::Object(out)
}

/// The paths a dry run's JSON report would add, by target.
fn planned(report: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in report["targets"].as_array().unwrap() {
        for c in t["changes"].as_array().unwrap() {
            out.push((t["name"].as_str().unwrap().to_string(), c["path"].as_str().unwrap().to_string()));
        }
    }
    out.sort();
    out
}

#[test]
fn only_the_selected_secrets_renamed_and_prefixed_reach_each_target_on_the_file_store() {
    let ws = Workspace::new();
    for (path, value) in source_secrets() {
        ws.write(&format!("src/{path}.json"), &value.to_string());
    }
    ws.write("vss.yaml", &config("", "{file: {path: src}}", "file: {path: out/payments}", "file: {path: out/rest}"));
    let dry = ws.vss(["pipeline", "--dry-run", "--output", "json"]);
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    let out = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (payments, rest) = expected();
    assert_eq!(file_tree(&ws, "out/payments"), payments);
    assert_eq!(file_tree(&ws, "out/rest"), rest);
    // The dry run said exactly what the stores now hold.
    let mut held: Vec<(String, String)> = Vec::new();
    for (target, tree) in [("Payments", &payments), ("Rest", &rest)] {
        held.extend(tree.as_object().unwrap().keys().map(|p| (target.to_string(), p.clone())));
    }
    held.sort();
    assert_eq!(planned(&dry.json()), held);
    assert_eq!(planned(&out.json()), held);
    assert!(out.json().get("warnings").is_none(), "every pattern matched: {}", out.stdout);
    let again = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!((again.code, again.stdout.as_str()), (0, "ZERO-SUM: 4 unchanged\n"), "{}", again.transcript());
    // `vss explain` names the rename and the import's options of each key.
    let explain = ws.vss(["explain", "--target", "Payments", "third-party/stripe", "--output", "json"]);
    assert_eq!(explain.code, 0, "{}", explain.transcript());
    let keys = explain.json()["keys"].clone();
    let secret = keys.as_array().unwrap().iter().find(|k| k["key"] == "STRIPE_SECRET_KEY").unwrap().clone();
    assert_eq!(secret["set_by"]["renamed_from"], "`payments/stripe` key `secret_key`", "{secret}");
    assert_eq!(secret["set_by"]["options"]["prefix"], "third-party/", "{secret}");
    assert_eq!(secret["set_by"]["name"], "api-keys", "{secret}");
    let human = ws.vss(["explain", "--target", "Payments"]);
    assert!(human.stdout.contains("renamed from `payments/adyen`, taking"), "{}", human.stdout);
    // `vss graph --format json` carries the import options.
    let graph = ws.vss(["graph", "--format", "json"]);
    assert_eq!(graph.code, 0, "{}", graph.transcript());
    let graph: Value = serde_json::from_str(&graph.stdout).unwrap();
    let payments = graph["targets"].as_array().unwrap().iter().find(|t| t["name"] == "Payments").unwrap().clone();
    assert_eq!(payments["import_options"][0]["prefix"], "third-party/", "{payments}");
    assert_eq!(payments["import_options"][0]["rename"]["payments/*"], "pay-{1}", "{payments}");
}

#[test]
fn only_the_selected_secrets_renamed_and_prefixed_reach_each_target_on_openbao() {
    let (s, u, http, rt) = openbao_source("select");
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &config(
            crate::vault::HEADER,
            &format!("{{vault: {{path: secret/{u}/src}}}}"),
            &format!("vault: {{path: secret/{u}/payments}}"),
            &format!("vault: {{path: secret/{u}/rest}}"),
        ),
    );
    let out = crate::vault::vss_in(&ws, &s).args(["pipeline", "--output", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let (payments, rest) = expected();
    rt.block_on(async {
        for (folder, tree) in [("payments", &payments), ("rest", &rest)] {
            for (path, value) in tree.as_object().unwrap() {
                let (data, marker) = http.secret(&format!("secret/{u}/{folder}/{path}")).await.expect(path);
                assert_eq!(&data, value, "{folder}/{path}");
                assert_eq!(marker["managed-by"], "vss");
            }
        }
        assert_eq!(http.list(&format!("secret/{u}/payments")).await, ["third-party/"]);
        let mut third = http.list(&format!("secret/{u}/payments/third-party")).await;
        third.sort();
        assert_eq!(third, ["pay-adyen", "stripe"], "nothing else");
        let mut others = http.list(&format!("secret/{u}/rest")).await;
        others.sort();
        assert_eq!(others, ["ci/", "sendgrid"]);
    });
    let again =
        crate::vault::vss_in(&ws, &s).args(["pipeline", "--dry-run", "--exit-code", "--output", "compact"]).run();
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn patterns_that_match_nothing_warn_and_collisions_fail_naming_both() {
    let ws = Workspace::new();
    for (path, value) in source_secrets() {
        ws.write(&format!("src/{path}.json"), &value.to_string());
    }
    ws.write(
        "vss.yaml",
        "sources: {s: {file: {path: src}}}\ntargets:\n  T:\n    imports: [{source: s, include: [\"paymnts/**\", sendgrid], keys: {exclude: [nope]}}]\n    file: {path: out}\n",
    );
    let out = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    let warnings = out.json()["warnings"].clone();
    assert_eq!(
        warnings,
        json!([
            {"target": "T", "message": "import `s`: include `paymnts/**` matches nothing"},
            {"target": "T", "message": "import `s`: keys.exclude `nope` matches nothing"},
        ])
    );
    let human = ws.vss(["pipeline", "--dry-run"]);
    assert!(
        human.stdout.contains("warning: target `T`: import `s`: include `paymnts/**` matches nothing"),
        "{}",
        human.stdout
    );
    let github = ws.vss(["pipeline", "--dry-run", "--output", "github"]);
    assert!(
        github.stdout.contains("::warning title=vss::target `T`: import `s`: include `paymnts/**`"),
        "{}",
        github.stdout
    );

    ws.write(
        "vss.yaml",
        "sources: {s: {file: {path: src}}}\ntargets:\n  T:\n    imports: [{source: s, rename: {\"payments/*\": all}}]\n    file: {path: out2}\n",
    );
    let collision = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(collision.code, 2, "{}", collision.transcript());
    let message = collision.json()["errors"][0]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("import `s`: `payments/adyen` and `payments/stripe` would both become `all`"),
        "{message}"
    );
    assert!(ws.files("out2").is_empty(), "nothing written");
}

#[test]
fn selection_config_errors_are_located() {
    let ws = Workspace::new();
    ws.write("src/a.json", "{\"k\": 1}");
    ws.write(
        "vss.yaml",
        "sources: {s: {file: {path: src}}}\ntargets:\n  A:\n    imports: [{source: s, target: B, include: [\"a[\"]}]\n    file: {path: a}\n  B:\n    imports: [{include: [x]}, {source: s, rename: {\"x/*\": \"{2}\"}, prefix: \"../up\"}]\n    inherits: {source: s}\n    file: {path: b}\n  C: {inherits: {target: B, rename: {\"a/[bc]\": x}}, exclude: [\"[\"], file: {path: c}}\n  D: {imports: [s], delete_orphans: true}\n",
    );
    let out = ws.vss(["validate"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    for expected in [
        "an import block names `source:` or `target:`, not both",
        "this import block names nothing to import",
        "rename `x/*`: `{2}` in `{2}` names no wildcard of `x/*` (it has 1)",
        "`prefix`: `../up` is not a secret path",
        "`inherits` names a target: write `target:`",
        "rename `a/[bc]`: a rename glob may use only `*`, `**` and `?`",
        "`[` is not a glob",
        "target `D` has no destination: `delete_orphans` deletes nothing",
        "vss.yaml:4:",
    ] {
        assert!(out.stdout.contains(expected) || out.stderr.contains(expected), "{expected}: {}", out.transcript());
    }
}

#[test]
fn targets_filter_their_final_state_override_delete_orphans_and_list_orphans_by_path() {
    let ws = Workspace::new();
    for (path, value) in source_secrets() {
        ws.write(&format!("src/{path}.json"), &value.to_string());
    }
    // Base takes everything; Child inherits only payments/ of it, and accepts no test-*.
    ws.write(
        "vss.yaml",
        "pipeline: {sync: {delete_orphans: false}}\nsources: {s: {file: {path: src}}}\ntargets:\n  Base: {imports: [s]}\n  Child:\n    inherits: {target: Base, include: [\"payments/**\"]}\n    exclude: [\"**/test-*\"]\n    delete_orphans: true\n    file: {path: child}\n  Keep: {imports: [s], file: {path: keep}}\n",
    );
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert_eq!(
        file_tree(&ws, "child").as_object().unwrap().keys().collect::<Vec<_>>(),
        ["payments/adyen", "payments/stripe"]
    );
    // A secret leaves the source: Child (delete_orphans: true) deletes it, Keep keeps it
    // as an orphan, and both list what they keep by path.
    std::fs::remove_file(ws.path("src/payments/adyen.json")).unwrap();
    for n in 0..103 {
        ws.write(&format!("keep/zz/unmanaged-{n:03}.json"), "{\"k\": 1}");
    }
    let out = ws.vss(["pipeline", "--output", "json"]);
    assert_eq!(out.code, 0, "{}", out.transcript());
    assert!(!ws.path("child/payments/adyen.json").exists(), "the target's own delete_orphans");
    assert!(ws.path("keep/payments/adyen.json").exists(), "the phase default");
    let report = out.json();
    let keep = report["targets"].as_array().unwrap().iter().find(|t| t["name"] == "Keep").unwrap().clone();
    assert_eq!(keep["orphans"], json!(["payments/adyen"]));
    assert_eq!(keep["summary"]["unmanaged"], 103);
    let unmanaged = keep["unmanaged"].as_array().unwrap();
    assert_eq!((unmanaged.len(), unmanaged[0].as_str()), (100, Some("zz/unmanaged-000")), "capped at 100");
    let human = ws.vss(["pipeline", "--dry-run", "--show-unmanaged"]);
    assert!(human.stdout.contains("    payments/adyen\n"), "{}", human.stdout);
    assert!(
        human.stdout.contains("    zz/unmanaged-099\n") && human.stdout.contains("… and 3 more"),
        "{}",
        human.stdout
    );
    let quiet = ws.vss(["pipeline", "--dry-run"]);
    assert!(!quiet.stdout.contains("zz/unmanaged-000"), "listed only when asked: {}", quiet.stdout);
}

/// The registry remembers every target written; once one is deleted from the config,
/// `vss prune` lists exactly what vss owns for it (and its bundle), deletes it only with
/// `--yes`, and forgets it.
#[test]
fn prune_removes_only_a_deleted_targets_owned_secrets_and_bundle_on_the_file_store() {
    let ws = Workspace::new();
    for (path, value) in source_secrets() {
        ws.write(&format!("src/{path}.json"), &value.to_string());
    }
    let config = |with_b: bool| {
        let b = if with_b {
            "  B: {imports: [{source: s, include: [\"payments/**\"]}], file: {path: out/b}}\n"
        } else {
            ""
        };
        format!(
            "registry: {{file: state/registry.json}}\nmerge_store: {{file: {{path: merged}}}}\nsources: {{s: {{file: {{path: src}}}}}}\ntargets:\n  A: {{imports: [s], file: {{path: out/a}}}}\n{b}"
        )
    };
    std::fs::create_dir_all(ws.path("state")).unwrap();
    ws.write("vss.yaml", &config(true));
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    let registry = ws.read_json("state/registry.json");
    assert_eq!(registry["targets"]["B"]["location"], "file out/b");
    assert_eq!(registry["targets"]["B"]["bundle"], true);
    assert!(!registry.to_string().contains("sk-1"), "no value in the registry");
    // A run that writes the same targets again leaves the registry as it is.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    assert_eq!(ws.read_json("state/registry.json"), registry, "no change, no write");
    ws.write("out/b/by-hand.json", "{\"someone\": \"else\"}");
    assert!(ws.vss(["prune", "--dry-run"]).stdout.contains("nothing to prune"), "B is still configured");

    // B leaves the config: prune lists its owned secrets and bundle, deletes only with --yes.
    ws.write("vss.yaml", &config(false));
    let dry = ws.vss(["prune", "--dry-run", "--output", "json"]);
    assert_eq!(dry.code, 0, "{}", dry.transcript());
    let listed = dry.json();
    assert_eq!(listed["targets"][0]["target"], "B");
    assert_eq!(listed["targets"][0]["secrets"], json!(["payments/adyen", "payments/stripe", "payments/test-card"]));
    assert_eq!(listed["targets"][0]["bundle"], json!(["payments/adyen", "payments/stripe", "payments/test-card"]));
    let unconfirmed = ws.vss(["prune"]);
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.transcript());
    assert!(unconfirmed.stderr.contains("only with `--yes`"), "{}", unconfirmed.stderr);
    assert!(ws.path("out/b/payments/stripe.json").exists(), "nothing deleted without --yes");
    let pruned = ws.vss(["prune", "--yes"]);
    assert_eq!(pruned.code, 0, "{}", pruned.transcript());
    assert_eq!(file_tree(&ws, "out/b"), json!({"by-hand": {"someone": "else"}}), "only vss's secrets of B went");
    assert_eq!(file_tree(&ws, "out/a").as_object().unwrap().len(), 5, "A untouched");
    assert_eq!(file_tree(&ws, "merged/B"), json!({}), "B's bundle went");
    assert!(ws.read_json("state/registry.json")["targets"].get("B").is_none(), "B forgotten");
    assert!(ws.vss(["prune", "--dry-run"]).stdout.contains("nothing to prune"));
    // A re-run of the pipeline is zero-sum: A and its bundle were left alone.
    let again = ws.vss(["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn prune_on_openbao_with_the_registry_in_the_merge_store() {
    let (s, u, http, rt) = openbao_source("prune");
    let ws = Workspace::new();
    let config = |with_old: bool| {
        let old = if with_old {
            format!("  Old: {{imports: [s], vault: {{path: secret/{u}/old}}}}\n")
        } else {
            String::new()
        };
        format!(
            "{}merge_store: {{vault: {{path: secret/{u}/merged}}}}\nsources: {{s: {{vault: {{path: secret/{u}/src}}}}}}\ntargets:\n  Keep: {{imports: [s], vault: {{path: secret/{u}/keep}}}}\n{old}",
            crate::vault::HEADER
        )
    };
    ws.write("vss.yaml", &config(true));
    let run = |args: &[&str]| crate::vault::vss_in(&ws, &s).args(args).run();
    assert_eq!(run(&["pipeline"]).code, 0);
    rt.block_on(async {
        let mut registered = http.list(&format!("secret/{u}/merged/vss-registry")).await;
        registered.sort();
        assert_eq!(registered, ["Keep", "Old"]);
        http.put_secret(&format!("secret/{u}/old/unmanaged"), json!({"someone": "else"})).await;
    });
    ws.write("vss.yaml", &config(false));
    let pruned = run(&["prune", "--yes", "--output", "json"]);
    assert_eq!(pruned.code, 0, "{}", pruned.transcript());
    assert_eq!(pruned.json()["targets"][0]["secrets"].as_array().unwrap().len(), 5);
    rt.block_on(async {
        assert_eq!(http.list(&format!("secret/{u}/old")).await, ["unmanaged"], "only vss's secrets went");
        assert!(http.list(&format!("secret/{u}/merged/Old")).await.is_empty(), "its bundle went");
        assert_eq!(http.list(&format!("secret/{u}/merged/vss-registry")).await, ["Keep"]);
        assert!(!http.list(&format!("secret/{u}/keep")).await.is_empty(), "Keep untouched");
    });
    let again = run(&["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

/// A target renamed in the config writes where the old one did; secrets it left unchanged
/// still carry the old name. `prune` leaves that location to the new target.
#[test]
fn prune_leaves_the_location_of_a_renamed_target_to_its_successor() {
    let ws = Workspace::new();
    for (path, value) in source_secrets() {
        ws.write(&format!("src/{path}.json"), &value.to_string());
    }
    let config = |name: &str| {
        format!(
            "registry: {{file: registry.json}}\nsources: {{s: {{file: {{path: src}}}}}}\ntargets:\n  {name}: {{imports: [s], file: {{path: out}}}}\n"
        )
    };
    ws.write("vss.yaml", &config("Old"));
    assert_eq!(ws.vss(["pipeline"]).code, 0);
    ws.write("vss.yaml", &config("New"));
    let zero = ws.vss(["pipeline", "--exit-code", "--output", "compact"]);
    assert_eq!(zero.code, 0, "unchanged values are not rewritten: {}", zero.transcript());
    let pruned = ws.vss(["prune", "--yes", "--output", "json"]);
    assert_eq!(pruned.code, 0, "{}", pruned.transcript());
    let old = pruned.json()["targets"][0].clone();
    assert_eq!((old["target"].as_str(), old["secrets"].as_array().map(Vec::len)), (Some("Old"), Some(0)), "{old}");
    assert!(old["kept"].as_str().unwrap().contains("now target `New`'s"), "{old}");
    assert_eq!(file_tree(&ws, "out").as_object().unwrap().len(), 5, "nothing deleted");
    assert!(ws.read_json("registry.json")["targets"].get("Old").is_none());
}
