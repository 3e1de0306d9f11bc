//! The AWS stores against a moto server (started by `tests/run`): Secrets Manager
//! conformance in the base account and in an assumed one, S3 bundles with conditional
//! writes, and an end-to-end pipeline Vault -> S3 -> Secrets Manager in three accounts.
//! Results are checked with raw SDK calls made here, not through vss's store code.
//! Without the servers these tests fail: run `tests/run`.
#![cfg(all(feature = "aws", feature = "vault"))]

use std::time::{SystemTime, UNIX_EPOCH};

use crate::common::{Run, Vss, Workspace};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use serde_json::{Value, json};
use vss::error::ErrorKind;
use vss::secret::{SecretPath, SecretValue};
use vss::store::aws::AwsDefaults;
use vss::store::{AnyStore, Bundle, Store, StoreConfig, StoreDefaults};

fn endpoint() -> String {
    std::env::var("VSS_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("VSS_TEST_AWS_ENDPOINT is not set: the AWS tests need the moto server that `tests/run` starts")
    })
}

pub(crate) fn unique(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{tag}-{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// SDK config for the base account, or for `account` through an assumed role.
async fn sdk(account: Option<&str>) -> SdkConfig {
    let base = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await;
    let Some(account) = account else { return base };
    let sts = aws_sdk_sts::Client::new(&base);
    let assumed = sts
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/SecretsSync"))
        .role_session_name("test")
        .send()
        .await
        .unwrap();
    let c = assumed.credentials().unwrap();
    base.to_builder()
        .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "assumed",
        )))
        .build()
}

pub(crate) async fn sm(account: Option<&str>) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk(account).await)
}

pub(crate) async fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&sdk(None).await).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Every secret (name -> parsed value) whose name starts with `prefix`, in one account.
pub(crate) async fn secrets(client: &aws_sdk_secretsmanager::Client, prefix: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut pages = client.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        for entry in page.unwrap().secret_list() {
            let name = entry.name().unwrap().to_string();
            if name.starts_with(prefix) && entry.deleted_date().is_none() {
                let value = client.get_secret_value().secret_id(&name).send().await.unwrap();
                let parsed = value.secret_string().map(|s| serde_json::from_str(s).unwrap()).unwrap_or(Value::Null);
                out.push((name, parsed));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

async fn tags(client: &aws_sdk_secretsmanager::Client, name: &str) -> Value {
    let described = client.describe_secret().secret_id(name).send().await.unwrap();
    Value::Object(described.tags().iter().map(|t| (t.key().unwrap().to_string(), json!(t.value().unwrap()))).collect())
}

async fn versions(client: &aws_sdk_secretsmanager::Client, name: &str) -> usize {
    client.list_secret_version_ids().secret_id(name).send().await.unwrap().versions().len()
}

fn defaults() -> StoreDefaults {
    let aws = AwsDefaults {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint()),
        execution_role_pattern: Some(vss::span::Spanned {
            span: Default::default(),
            value: "arn:aws:iam::{account_id}:role/SecretsSync".into(),
        }),
        ..AwsDefaults::default()
    };
    let mut defaults = StoreDefaults::default();
    defaults.set("aws", std::sync::Arc::new(aws));
    defaults
}

pub(crate) async fn open(config: Value, bundle: Option<Bundle<'_>>) -> AnyStore {
    let config: StoreConfig = serde_json::from_value(config).unwrap();
    crate::common::open_store(&config, &defaults(), bundle.as_ref()).await.unwrap()
}

fn run_vss(ws: &Workspace, args: &[&str]) -> Run {
    Vss::new()
        .cwd(ws.dir.path())
        .env("HOME", ws.dir.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .env("VSS_TEST_AWS_ENDPOINT", endpoint())
        .env("VSS_TEST_VAULT_ADDR", std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run"))
        .env("VSS_TEST_VAULT_TOKEN", std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run"))
        .args(args)
        .run()
}

#[tokio::test]
async fn conformance_in_the_base_account_and_in_an_assumed_account() {
    let prefix = format!("{}/", unique("conformance"));
    let base = open(json!({"aws": {"prefix": prefix}}), None).await;
    crate::conformance::run(&base, None).await;
    let assumed = open(json!({"aws": {"prefix": prefix, "account_id": "444444444444"}}), None).await;
    crate::conformance::run(&assumed, None).await;
    // What the assumed store wrote lives in that account only.
    assumed.write(&SecretPath::parse("only-here").unwrap(), &SecretValue::new(json!({"k": 1})), "T").await.unwrap();
    assert_eq!(
        secrets(&sm(Some("444444444444")).await, &prefix).await,
        [(format!("{prefix}only-here"), json!({"k": 1}))]
    );
    assert!(secrets(&sm(None).await, &prefix).await.is_empty());
}

#[tokio::test]
async fn conformance_of_an_s3_bundle() {
    let bucket = unique("conformance");
    s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
    let sources = vec!["common".to_string()];
    let bundle = Bundle { target: "Prod", sources: &sources };
    let store = open(json!({"s3": {"bucket": bucket, "prefix": "merged/"}}), Some(bundle)).await;
    crate::conformance::run(&store, Some("Prod")).await;
}

#[tokio::test]
async fn reads_use_list_and_batch_calls() {
    let prefix = format!("{}/", unique("batch"));
    let client = sm(None).await;
    for i in 0..45 {
        client
            .create_secret()
            .name(format!("{prefix}s{i:02}"))
            .secret_string(format!("{{\"i\": {i}}}"))
            .send()
            .await
            .unwrap();
    }
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!("aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"}}\nsource: {{aws: {{prefix: {prefix}}}}}\ntargets: {{T: {{file: {{path: out}}}}}}\n"),
    );
    let run = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    assert_eq!(ws.read_json("out/s44.json"), json!({"i": 44}));
    let calls = &run.json()["stats"]["calls"]["aws"];
    assert_eq!(calls["read"], 3, "45 secrets = 3 BatchGetSecretValue calls: {calls}");
    assert_eq!(calls["list"], 1, "one ListSecrets page: {calls}");
}

#[tokio::test]
async fn s3_bundles_are_one_object_written_conditionally() {
    let bucket = unique("bundles");
    let client = s3().await;
    client.create_bucket().bucket(&bucket).send().await.unwrap();
    let sources = vec!["common".to_string(), "team".to_string()];
    let store = open(
        json!({"s3": {"bucket": bucket, "prefix": "merged/"}}),
        Some(Bundle { target: "Prod", sources: &sources }),
    )
    .await;
    assert!(store.list().await.unwrap().is_empty());
    let path = SecretPath::parse("app/db").unwrap();
    store.commit(&[(path.clone(), SecretValue::new(json!({"user": "u"})))], &[], "Prod").await.unwrap();
    let object = client.get_object().bucket(&bucket).key("merged/Prod.json").send().await.unwrap();
    assert_eq!(object.server_side_encryption().map(|e| e.as_str()), Some("AES256"));
    let body: Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!((body["target"].clone(), body["sources"].clone()), (json!("Prod"), json!(["common", "team"])));
    assert_eq!(body["secrets"], json!({"app/db": {"user": "u"}}));
    assert!(body["generated_at"].as_str().unwrap().ends_with('Z'));

    // Another writer changes the object between our read and our write: a conflict.
    let fresh = open(
        json!({"s3": {"bucket": bucket, "prefix": "merged/"}}),
        Some(Bundle { target: "Prod", sources: &sources }),
    )
    .await;
    assert_eq!(fresh.list().await.unwrap(), std::slice::from_ref(&path));
    client
        .put_object()
        .bucket(&bucket)
        .key("merged/Prod.json")
        .body(
            serde_json::to_vec(&json!({"target": "Prod", "sources": [], "secrets": {"app/db": {"user": "theirs"}}}))
                .unwrap()
                .into(),
        )
        .send()
        .await
        .unwrap();
    let error =
        fresh.commit(&[(path.clone(), SecretValue::new(json!({"user": "mine"})))], &[], "Prod").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict, "{error}");
    // After a fresh read the write goes through; a new bundle is only created if absent.
    fresh.list().await.unwrap();
    fresh.commit(&[(path.clone(), SecretValue::new(json!({"user": "mine"})))], &[], "Prod").await.unwrap();
    let read = fresh.read(&path).await.unwrap().unwrap();
    assert!(read.value() == Some(&SecretValue::new(json!({"user": "mine"}))) && read.owner.as_deref() == Some("Prod"));
}

/// Vault sources -> S3 merge store -> Secrets Manager targets in three accounts; `@U@` is
/// replaced by a unique name, `@B@` by the bucket.
const THREE_ACCOUNTS: &str = r#"
vault: { address: "${VSS_TEST_VAULT_ADDR}", auth: { token: "${VSS_TEST_VAULT_TOKEN}" } }
aws:
  region: us-east-1
  endpoint_url: "${VSS_TEST_AWS_ENDPOINT}"
  execution_role_pattern: "arn:aws:iam::{account_id}:role/SecretsSync"
merge_store:
  s3: { bucket: "@B@", prefix: merged/ }
pipeline:
  sync: { delete_orphans: true }
sources:
  common: { vault: { path: secret/@U@/common } }
  team:   { vault: { path: secret/@U@/team } }
targets:
  Base:
    imports: [common]
  Dev:
    inherits: Base
    account_id: "111111111111"
    aws: { prefix: "@U@/" }
  Staging:
    inherits: Base
    imports: [team]
    aws: { account_id: "222222222222", prefix: "@U@/" }
  Production:
    inherits: Staging
    aws:
      account_id: "333333333333"
      prefix: "@U@/"
      description: managed by vss
      tags: { team: platform }
      recovery_window_days: 7
"#;

async fn vault_put(path: &str, data: Value) {
    let address = std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run");
    let token = std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run");
    let (mount, rest) = path.split_once('/').unwrap();
    let response = reqwest::Client::new()
        .post(format!("{address}/v1/{mount}/data/{rest}"))
        .header("X-Vault-Token", token)
        .json(&json!({"data": data}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

async fn vault_delete(path: &str) {
    let address = std::env::var("VSS_TEST_VAULT_ADDR").expect("run tests/run");
    let token = std::env::var("VSS_TEST_VAULT_TOKEN").expect("run tests/run");
    let (mount, rest) = path.split_once('/').unwrap();
    let response = reqwest::Client::new()
        .delete(format!("{address}/v1/{mount}/metadata/{rest}"))
        .header("X-Vault-Token", token)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn vault_to_s3_to_secrets_manager_in_three_accounts() {
    let u = unique("acct");
    let bucket = unique("merge");
    s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
    vault_put(&format!("secret/{u}/common/app/db"), json!({"user": "app", "password": "base"})).await;
    vault_put(&format!("secret/{u}/common/app/config"), json!({"level": "info", "hosts": ["a"]})).await;
    vault_put(&format!("secret/{u}/team/app/config"), json!({"level": "debug", "hosts": ["b"]})).await;
    vault_put(&format!("secret/{u}/team/api/stripe"), json!({"key": "sk_test"})).await;
    let ws = Workspace::new();
    ws.write("vss.yaml", &THREE_ACCOUNTS.replace("@U@", &u).replace("@B@", &bucket));
    let prefix = format!("{u}/");
    let (dev, staging, prod, base) = (
        sm(Some("111111111111")).await,
        sm(Some("222222222222")).await,
        sm(Some("333333333333")).await,
        sm(None).await,
    );

    // The dry run finds everything and writes nothing.
    let dry = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1, "{}", dry.transcript());
    for client in [&dev, &staging, &prod] {
        assert!(secrets(client, &prefix).await.is_empty());
    }
    assert!(s3().await.get_object().bucket(&bucket).key("merged/Base.json").send().await.is_err());

    // The apply: exactly the merged secrets in each account, nothing anywhere else.
    let apply = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let db = json!({"user": "app", "password": "base"});
    let staging_config = json!({"level": "debug", "hosts": ["a", "b"]});
    assert_eq!(
        secrets(&dev, &prefix).await,
        [(format!("{u}/app/config"), json!({"level": "info", "hosts": ["a"]})), (format!("{u}/app/db"), db.clone())]
    );
    let expected_staging = vec![
        (format!("{u}/api/stripe"), json!({"key": "sk_test"})),
        (format!("{u}/app/config"), staging_config.clone()),
        (format!("{u}/app/db"), db.clone()),
    ];
    assert_eq!(secrets(&staging, &prefix).await, expected_staging);
    assert_eq!(secrets(&prod, &prefix).await, expected_staging);
    assert!(secrets(&base, &prefix).await.is_empty(), "the base account gets nothing");
    assert_eq!(
        tags(&prod, &format!("{u}/app/db")).await,
        json!({"managed-by": "vss", "vss-target": "Production", "team": "platform"})
    );
    assert_eq!(tags(&dev, &format!("{u}/app/db")).await, json!({"managed-by": "vss", "vss-target": "Dev"}));
    let described = prod.describe_secret().secret_id(format!("{u}/app/db")).send().await.unwrap();
    assert_eq!(described.description(), Some("managed by vss"));
    let bundle = s3().await.get_object().bucket(&bucket).key("merged/Production.json").send().await.unwrap();
    let bundle: Value = serde_json::from_slice(&bundle.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(bundle["sources"], json!(["Staging"]));
    assert_eq!(bundle["secrets"]["app/config"], staging_config);

    // A re-run makes no write call.
    let again = run_vss(&ws, &["pipeline", "--exit-code", "--output", "json"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
    let calls = &again.json()["stats"]["calls"];
    assert_eq!((calls["aws"]["write"].clone(), calls["s3"]["write"].clone()), (json!(0), json!(0)), "{calls}");
    assert_eq!(calls["aws"]["delete"], 0);

    // A changed source key: reported first by the dry run, then exactly those secrets change.
    vault_put(&format!("secret/{u}/team/app/config"), json!({"level": "trace", "hosts": ["b"]})).await;
    let dry = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1);
    let report = dry.json();
    let changed: Vec<(String, String, String)> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| {
            t["changes"].as_array().unwrap().iter().map(move |c| {
                (
                    t["phase"].as_str().unwrap().to_string(),
                    t["name"].as_str().unwrap().to_string(),
                    c["path"].as_str().unwrap().to_string(),
                )
            })
        })
        .collect();
    let expected: Vec<(String, String, String)> =
        [("merge", "Staging"), ("merge", "Production"), ("sync", "Staging"), ("sync", "Production")]
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string(), "app/config".to_string()))
            .collect();
    assert_eq!(changed, expected, "{report:#}");
    let apply = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(secrets(&prod, &format!("{u}/app/config")).await[0].1["level"], "trace");
    assert_eq!(versions(&prod, &format!("{u}/app/config")).await, 2);
    assert_eq!(versions(&prod, &format!("{u}/app/db")).await, 1, "unchanged secrets get no new version");

    // A source secret deleted: its target secrets go (owned, delete_orphans on), and a
    // secret someone else created under the prefix stays.
    prod.create_secret().name(format!("{u}/manual")).secret_string("{\"keep\": true}").send().await.unwrap();
    vault_delete(&format!("secret/{u}/team/api/stripe")).await;
    let apply = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    let left: Vec<String> = secrets(&prod, &prefix).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, [format!("{u}/app/config"), format!("{u}/app/db"), format!("{u}/manual")]);
    let deleted = prod.describe_secret().secret_id(format!("{u}/api/stripe")).send().await.unwrap();
    assert!(deleted.deleted_date().is_some(), "deleted with its recovery window, restorable");

    // Desired again while scheduled for deletion: restored.
    vault_put(&format!("secret/{u}/team/api/stripe"), json!({"key": "sk_live"})).await;
    let apply = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(apply.code, 0, "{}", apply.transcript());
    assert_eq!(
        secrets(&prod, &format!("{u}/api/stripe")).await,
        [(format!("{u}/api/stripe"), json!({"key": "sk_live"}))]
    );

    // Tag drift on an owned secret is reconciled without a new value version.
    prod.untag_resource().secret_id(format!("{u}/app/db")).tag_keys("team").send().await.unwrap();
    let dry = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
    assert_eq!(dry.code, 1);
    let production = dry.json()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "Production" && t["phase"] == "sync")
        .cloned()
        .unwrap();
    assert_eq!(
        production["changes"],
        json!([{"path": "app/db", "change": "modified", "metadata": true, "status": "planned", "before": production["changes"][0]["before"], "after": production["changes"][0]["after"]}])
    );
    assert_eq!(run_vss(&ws, &["pipeline"]).code, 0);
    assert_eq!(tags(&prod, &format!("{u}/app/db")).await["team"], "platform");
    assert_eq!(versions(&prod, &format!("{u}/app/db")).await, 1);
    let zero = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(zero.code, 0, "{}", zero.transcript());
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_that_target_alone() {
    let u = unique("role");
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {user: u}\n");
    let long_session = "x".repeat(100);
    ws.write(
        "vss.yaml",
        &format!(
            "aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\", execution_role_pattern: \"arn:aws:iam::{{account_id}}:role/SecretsSync\"}}\nsource: {{file: {{path: s.yaml}}}}\ntargets:\n  Good: {{aws: {{account_id: \"555555555555\", prefix: {u}/}}}}\n  Bad: {{aws: {{account_id: \"666666666666\", prefix: {u}/, session_name: {long_session}}}}}\n"
        ),
    );
    let run = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    let report = run.json();
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{report:#}");
    assert_eq!(errors[0]["target"], "Bad");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.contains("arn:aws:iam::666666666666:role/SecretsSync"), "{message}");
    assert_eq!(
        secrets(&sm(Some("555555555555")).await, &format!("{u}/")).await,
        [(format!("{u}/app/db"), json!({"user": "u"}))]
    );
    assert!(secrets(&sm(Some("666666666666")).await, &format!("{u}/")).await.is_empty());
}

#[tokio::test]
async fn binary_secrets_stay_binary() {
    let u = unique("binary");
    let client = sm(None).await;
    client
        .create_secret()
        .name(format!("{u}/src/cert"))
        .secret_binary(aws_sdk_secretsmanager::primitives::Blob::new(vec![0u8, 1, 2, 255]))
        .send()
        .await
        .unwrap();
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        &format!("aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"}}\nsource: {{aws: {{prefix: {u}/src/}}}}\ntargets:\n  T: {{aws: {{prefix: {u}/dst/}}}}\n  F: {{file: {{path: out}}}}\n"),
    );
    let run = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    let copied = client.get_secret_value().secret_id(format!("{u}/dst/cert")).send().await.unwrap();
    assert_eq!(copied.secret_binary().map(|b| b.as_ref().to_vec()), Some(vec![0u8, 1, 2, 255]));
    assert!(copied.secret_string().is_none());
    assert_eq!(ws.read_json("out/cert.json"), json!({"$binary": "AAEC/w=="}));
    let again = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code"]);
    assert_eq!(again.code, 0, "{}", again.transcript());
}

#[test]
fn config_errors_for_aws_blocks() {
    let ws = Workspace::new();
    ws.write(
        "vss.yaml",
        "aws: {execution_role_pattern: \"arn:aws:iam::123:role/x\"}\nsources:\n  s: {aws: {prefix: a/, tags: {x: y}}}\ntargets:\n  T: {imports: [s], account_id: \"12\"}\n  U: {imports: [s], aws: {recovery_window_days: 3}}\n",
    );
    let run = run_vss(&ws, &["validate"]);
    assert_eq!(run.code, 2);
    for expected in [
        "`execution_role_pattern` has no `{account_id}` placeholder",
        "a source does not write secrets",
        "`12` is not an AWS account id",
        "`recovery_window_days` must be between 7 and 30",
    ] {
        assert!(run.stderr.contains(expected), "missing `{expected}` in:\n{}", run.stderr);
    }
}

#[tokio::test]
async fn two_concurrent_runs_on_one_s3_merge_store_lose_no_update() {
    let u = unique("s3race");
    let bucket = unique("race");
    s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
    let ws = Workspace::new();
    let write_source = |round: u32| {
        let body: String = (0..10).map(|i| format!("s{i}: {{v: {i}, round: {round}}}\n")).collect();
        ws.write("s.yaml", &body);
    };
    write_source(0);
    ws.write(
        "vss.yaml",
        &format!(
            "aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"}}\nmerge_store: {{s3: {{bucket: \"{bucket}\", prefix: m/}}}}\nsource: {{file: {{path: s.yaml}}}}\ntargets:\n  A: {{aws: {{prefix: {u}/a/}}}}\n  B: {{aws: {{prefix: {u}/b/}}}}\n"
        ),
    );
    assert_eq!(run_vss(&ws, &["pipeline"]).code, 0);
    for round in 1..=3 {
        write_source(round);
        crate::common::run_concurrently(2, || {
            Vss::new()
                .cwd(ws.dir.path())
                .env("HOME", ws.dir.path())
                .env("VSS_TEST_AWS_ENDPOINT", endpoint())
                .args(["-v", "pipeline", "--output", "compact"])
        });
        let object = s3().await.get_object().bucket(&bucket).key("m/A.json").send().await.unwrap();
        let bundle: Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
        assert_eq!(bundle["secrets"]["s7"], json!({"v": 7, "round": round}));
        assert_eq!(secrets(&sm(None).await, &format!("{u}/b/s9")).await[0].1, json!({"v": 9, "round": round}));
        let check = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
        assert_eq!(check.stdout, "ZERO-SUM: 40 unchanged\n", "{}", check.transcript());
    }
}

#[tokio::test]
async fn the_audit_log_in_an_s3_merge_store_keeps_every_event_of_concurrent_runs() {
    let u = unique("s3audit");
    let bucket = unique("audit");
    s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {password: CANARY-audit-s3-77a}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"}}\nmerge_store: {{s3: {{bucket: \"{bucket}\", prefix: m/}}}}\naudit: {{merge_store: vss-audit}}\nsource: {{file: {{path: s.yaml}}}}\ntargets:\n  A: {{aws: {{prefix: {u}/a/}}}}\n"
        ),
    );
    let vss = || Vss::new().cwd(ws.dir.path()).env("HOME", ws.dir.path()).env("VSS_TEST_AWS_ENDPOINT", endpoint());
    // The log is one object: three runs appending at once conflict on it, and each tries
    // again from a fresh read until its entry is in. Each run: one merge, one sync.
    crate::common::audit_log_keeps_concurrent_runs(vss, 3, 2);
    let object = s3().await.get_object().bucket(&bucket).key("m/vss-audit.json").send().await.unwrap();
    let log: Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    let entries = log["secrets"].as_object().unwrap();
    assert_eq!(entries.len(), 4, "{log}");
    assert!(entries.keys().all(|e| crate::common::is_audit_entry(e)), "{log}");
    assert!(!log.to_string().contains("CANARY-audit"), "no value in the log");
    let check = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code", "--output", "compact"]);
    assert_eq!(check.stdout, "ZERO-SUM: 2 unchanged\n", "{}", check.transcript());
}

#[test]
fn an_aws_endpoint_that_never_answers_fails_in_bounded_time_naming_the_call() {
    let hung = crate::common::hung_server();
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {password: p}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "pipeline: {{timeouts: {{connect: 1, request: 1}}}}\naws: {{endpoint_url: \"{hung}\", region: us-east-1}}\nsource: {{file: {{path: s.yaml}}}}\ntargets:\n  T: {{aws: {{prefix: app/}}}}\n"
        ),
    );
    let out = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(out.code, 2, "{}", out.transcript());
    let error = &out.json()["errors"][0];
    assert_eq!(error["kind"], "timeout", "{error}");
    assert!(error["message"].as_str().unwrap().contains("ListSecrets"), "{error}");
}

/// Creates the moto organization (once per server) and returns its root id.
async fn organization_root(org: &aws_sdk_organizations::Client) -> String {
    let _ =
        org.create_organization().feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All).send().await;
    org.list_roots().send().await.unwrap().roots()[0].id().unwrap().to_string()
}

async fn create_account(
    org: &aws_sdk_organizations::Client,
    name: &str,
    parent: &str,
    root: &str,
    env: &str,
) -> String {
    let created = org
        .create_account()
        .email(format!("{}@example.com", unique("acct")))
        .account_name(name)
        .tags(aws_sdk_organizations::types::Tag::builder().key("env").value(env).build().unwrap())
        .send()
        .await
        .unwrap();
    let id = created.create_account_status().unwrap().account_id().unwrap().to_string();
    org.move_account().account_id(&id).source_parent_id(root).destination_parent_id(parent).send().await.unwrap();
    id
}

#[tokio::test]
async fn dynamic_targets_from_organizations() {
    let org = aws_sdk_organizations::Client::new(&sdk(None).await);
    let root = organization_root(&org).await;
    let u = unique("org");
    let parent = org.create_organizational_unit().parent_id(&root).name(&u).send().await.unwrap();
    let parent = parent.organizational_unit().unwrap().id().unwrap().to_string();
    let child = org.create_organizational_unit().parent_id(&parent).name(format!("{u}-child")).send().await.unwrap();
    let child = child.organizational_unit().unwrap().id().unwrap().to_string();
    let a = create_account(&org, &format!("Team A {u}"), &parent, &root, "prod").await;
    let b = create_account(&org, &format!("Team B {u}"), &child, &root, "prod").await;
    let _dev = create_account(&org, &format!("Team C {u}"), &parent, &root, "dev").await;
    let excluded = create_account(&org, &format!("Team D {u}"), &parent, &root, "prod").await;

    let ws = Workspace::new();
    ws.write("common.yaml", "app/db: {user: app}\n");
    let config = |recursive: bool| {
        format!(
            "aws:\n  endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"\n  execution_role_pattern: \"arn:aws:iam::{{account_id}}:role/SecretsSync\"\nsources: {{common: {{file: {{path: common.yaml}}}}}}\ntargets:\n  Base: {{imports: [common]}}\ndynamic_targets:\n  workloads:\n    inherits: Base\n    discovery:\n      organizations: {{ou: {parent}, recursive: {recursive}, tags: {{env: [prod, staging]}}}}\n    exclude: [\"{excluded}\"]\n    prefix: {u}/\n"
        )
    };
    let names = |run: &Run| -> Vec<String> {
        run.json()["targets"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    ws.write("vss.yaml", &config(false));
    let graph = run_vss(&ws, &["graph", "--format", "json"]);
    assert_eq!(graph.code, 0, "{}", graph.transcript());
    assert_eq!(names(&graph), ["Base", format!("Team-A-{u}").as_str()]);

    ws.write("vss.yaml", &config(true));
    let graph = run_vss(&ws, &["graph", "--format", "json"]);
    assert_eq!(names(&graph), ["Base", format!("Team-A-{u}").as_str(), format!("Team-B-{u}").as_str()]);
    assert_eq!(graph.json()["targets"][1]["inherits"], "Base");
    let validate = run_vss(&ws, &["validate"]);
    assert!(validate.stdout.contains("3 targets"), "{}", validate.transcript());

    let run = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    for account in [&a, &b] {
        let found = secrets(&sm(Some(account)).await, &format!("{u}/")).await;
        assert_eq!(found, [(format!("{u}/app/db"), json!({"user": "app"}))], "account {account}");
    }
    assert!(secrets(&sm(Some(&excluded)).await, &format!("{u}/")).await.is_empty());

    // An OU that does not exist: one clear error, exit 2.
    ws.write("vss.yaml", &config(true).replace(&parent, "ou-0000-00000000"));
    let run = run_vss(&ws, &["graph"]);
    assert_eq!(run.code, 2, "{}", run.transcript());
    assert!(run.stderr.contains("discovery of dynamic targets `workloads` in ou-0000-00000000"), "{}", run.stderr);
    let json = run_vss(&ws, &["validate", "--output", "json"]);
    assert_eq!(json.code, 2);
    assert_eq!(json.json()["valid"], false);
    assert!(json.json()["errors"][0]["message"].as_str().unwrap().contains("ou-0000-00000000"));
    let offline = run_vss(&ws, &["validate", "--offline"]);
    assert_eq!(
        offline.code,
        0,
        "--offline checks the template without calling Organizations: {}",
        offline.transcript()
    );
}

#[tokio::test]
async fn kms_key_replicas_force_delete_and_the_endpoint_from_the_environment() {
    let u = unique("settings");
    let ws = Workspace::new();
    ws.write("s.yaml", "a: {k: 1}\nb: {k: 2}\n");
    // No endpoint in the config: AWS_ENDPOINT_URL, as the SDK reads it.
    ws.write(
        "vss.yaml",
        &format!(
            "pipeline: {{sync: {{delete_orphans: true}}}}\nsource: {{file: {{path: s.yaml}}}}\ntargets:\n  T: {{aws: {{prefix: {u}/, kms_key_id: alias/vss-test, replica_regions: [us-west-2], force_delete: true}}}}\n"
        ),
    );
    let run = |args: &[&str]| {
        Vss::new()
            .cwd(ws.dir.path())
            .env("HOME", ws.dir.path())
            .env("AWS_ENDPOINT_URL", endpoint())
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(args)
            .run()
    };
    let first = run(&["pipeline", "--output", "json"]);
    assert_eq!(first.code, 0, "{}", first.transcript());
    let client = sm(None).await;
    let described = client.describe_secret().secret_id(format!("{u}/a")).send().await.unwrap();
    assert_eq!(described.kms_key_id(), Some("alias/vss-test"));
    let replicas: Vec<&str> = described.replication_status().iter().filter_map(|r| r.region()).collect();
    assert_eq!(replicas, ["us-west-2"]);
    // force_delete: gone at once, not scheduled.
    ws.write("s.yaml", "a: {k: 1}\n");
    let second = run(&["pipeline", "--output", "json"]);
    assert_eq!(second.code, 0, "{}", second.transcript());
    let gone = client.describe_secret().secret_id(format!("{u}/b")).send().await;
    assert!(gone.is_err(), "deleted without a recovery window: {gone:?}");
    assert_eq!(run(&["pipeline", "--dry-run", "--exit-code"]).code, 0);
}

#[tokio::test]
async fn debug_of_secrets_manager_and_s3_stores_prints_no_value() {
    const CANARY: &str = "CANARY-aws-5d1e";
    let u = unique("debug");
    let client = sm(None).await;
    client
        .create_secret()
        .name(format!("{u}/db"))
        .secret_string(format!(r#"{{"p": "{CANARY}"}}"#))
        .send()
        .await
        .unwrap();
    let store = open(json!({"aws": {"prefix": format!("{u}/"), "external_id": CANARY}}), None).await;
    crate::no_leak::assert_debug_clean(store, CANARY).await;
    let bucket = unique("debug");
    s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
    let bundle = open(json!({"s3": {"bucket": bucket}}), Some(Bundle { target: "T", sources: &[] })).await;
    let value = SecretValue::new(json!({"p": CANARY}));
    bundle.commit(&[(SecretPath::parse("db").unwrap(), value)], &[], "T").await.unwrap();
    crate::no_leak::assert_debug_clean(bundle, CANARY).await;
}

/// The original design's own configs name only `account_id`: no role in the caller's own
/// account, `OrganizationAccountAccessRole` in any other.
#[test]
fn an_account_without_a_role_follows_the_organizations_convention() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let caller = rt.block_on(async {
        let sts = aws_sdk_sts::Client::new(&sdk(None).await);
        sts.get_caller_identity().send().await.unwrap().account().unwrap().to_string()
    });
    let other = "666666666666";
    let u = unique("convention");
    let ws = Workspace::new();
    ws.write("s.yaml", "app/db: {user: app}\n");
    ws.write(
        "vss.yaml",
        &format!(
            "aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"}}\nsource: {{file: {{path: s.yaml}}}}\ntargets:\n  Own: {{account_id: \"{caller}\", aws: {{prefix: {u}/own/}}}}\n  Other: {{account_id: \"{other}\", aws: {{prefix: {u}/other/}}}}\n"
        ),
    );
    let valid = run_vss(&ws, &["validate"]);
    assert_eq!(valid.code, 0, "{}", valid.transcript());
    let graph = run_vss(&ws, &["graph"]);
    assert!(
        graph.stdout.contains(&format!(
            "as arn:aws:iam::{other}:role/OrganizationAccountAccessRole (none if {other} is the caller's own account)"
        )),
        "{}",
        graph.transcript()
    );
    let run = run_vss(&ws, &["pipeline", "--output", "json"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    rt.block_on(async {
        // Its own account: written with the base credentials.
        assert_eq!(
            secrets(&sm(None).await, &format!("{u}/")).await,
            [(format!("{u}/own/app/db"), json!({"user": "app"}))]
        );
        // Another account: reached through the assumed role, so written there only.
        assert_eq!(
            secrets(&sm(Some(other)).await, &format!("{u}/")).await,
            [(format!("{u}/other/app/db"), json!({"user": "app"}))]
        );
    });
    // An explicit pattern wins over the convention.
    let pattern = "arn:aws:iam::{account_id}:role/SecretsSync";
    let text = std::fs::read_to_string(ws.path("vss.yaml")).unwrap();
    ws.write(
        "vss.yaml",
        &text.replace("aws: {endpoint_url", &format!("aws: {{execution_role_pattern: \"{pattern}\", endpoint_url")),
    );
    let graph = run_vss(&ws, &["graph"]);
    assert!(graph.stdout.contains(&format!("as arn:aws:iam::{caller}:role/SecretsSync")), "{}", graph.transcript());
}

/// The SDK's most verbose logs dump client configurations: `-vvv` must not print the
/// external id (nor any value).
#[test]
fn verbose_logs_print_no_external_id() {
    const CANARY: &str = "CANARY-external-3c9d";
    let u = unique("verbose");
    let ws = Workspace::new();
    ws.write("s.yaml", &format!("app/db: {{password: {CANARY}-value}}\n"));
    ws.write(
        "vss.yaml",
        &format!(
            "aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\", external_id: {CANARY}}}\nsource: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{account_id: \"777777777777\", aws: {{prefix: {u}/}}}}}}\n"
        ),
    );
    for args in [&["-vvv", "pipeline", "--dry-run"][..], &["-vvv", "pipeline"][..], &["-vv", "pipeline"][..]] {
        let run = run_vss(&ws, args);
        assert_eq!(run.code, 0, "{}", run.transcript());
        assert!(run.stderr.contains("DEBUG"), "the logs are verbose: {args:?}");
        assert!(!run.stdout.contains(CANARY) && !run.stderr.contains(CANARY), "{args:?}: {}", run.transcript());
    }
}

/// Only a JSON object is structured: every other SecretString reaches its targets exactly
/// as the source holds it, and a number from another source is held as its text.
#[test]
fn secret_strings_are_copied_byte_exact() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let u = unique("exact");
    let strings = [("big", "98765432109876543210"), ("quoted", "\"quoted\""), ("decimal", "1.10"), ("list", "[1, 2]")];
    let object = r#"{"n": 12345678901234567890123, "d": 1.10, "z": 0.000000000000000000001, "l": [1.0, -0]}"#;
    let bucket = unique("exact");
    rt.block_on(async {
        let client = sm(None).await;
        for (name, text) in strings.iter().copied().chain([("object", object)]) {
            client.create_secret().name(format!("{u}/src/{name}")).secret_string(text).send().await.unwrap();
        }
        s3().await.create_bucket().bucket(&bucket).send().await.unwrap();
    });
    let ws = Workspace::new();
    ws.write("numbers.yaml", "n: 42\n");
    ws.write(
        "vss.yaml",
        &format!(
            "aws: {{endpoint_url: \"${{VSS_TEST_AWS_ENDPOINT}}\"}}\nmerge_store: {{s3: {{bucket: {bucket}}}}}\nsources:\n  sm: {{aws: {{prefix: {u}/src/}}}}\n  numbers: {{file: {{path: numbers.yaml}}}}\ntargets:\n  T: {{imports: [sm, numbers], aws: {{prefix: {u}/dst/}}}}\n  F: {{imports: [sm], file: {{path: out}}}}\n"
        ),
    );
    let run = run_vss(&ws, &["pipeline"]);
    assert_eq!(run.code, 0, "{}", run.transcript());
    rt.block_on(async {
        let client = sm(None).await;
        for (name, text) in strings.iter().copied().chain([("n", "42")]) {
            let copied = client.get_secret_value().secret_id(format!("{u}/dst/{name}")).send().await.unwrap();
            assert_eq!(copied.secret_string(), Some(text), "{name}");
        }
        // An object is structured (keys sorted, no spaces), and its numbers keep their text,
        // through the S3 merge bundle too.
        let copied = client.get_secret_value().secret_id(format!("{u}/dst/object")).send().await.unwrap();
        let exact = r#"{"d":1.10,"l":[1.0,-0],"n":12345678901234567890123,"z":0.000000000000000000001}"#;
        assert_eq!(copied.secret_string(), Some(exact));
    });
    assert_eq!(ws.read_json("out/big.json"), json!("98765432109876543210"));
    let file = std::fs::read_to_string(ws.path("out/object.json")).unwrap();
    for text in ["12345678901234567890123", "1.10", "0.000000000000000000001", "1.0", "-0"] {
        assert!(file.contains(text), "{text} in {file}");
    }
    let again = run_vss(&ws, &["pipeline", "--dry-run", "--exit-code"]);
    assert_eq!(again.code, 0, "zero-sum on the next run: {}", again.transcript());
}
