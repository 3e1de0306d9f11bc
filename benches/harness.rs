//! The pipeline benchmark, shared by `cargo bench --bench pipeline` (full scale, started by
//! `bench/run`) and `tests/bench_smoke.rs` (a tiny scale in the default test run, so this
//! code cannot rot).
//!
//! Scenarios, each measured as the median (min-max) of several runs on the same servers:
//! - **OpenBao apply**: `vss pipeline` (Vault sources -> Vault merge store -> Vault
//!   targets) against the *floor*, the minimal API calls that pipeline needs (list and read
//!   the sources, write each bundle secret, write each target secret and its ownership
//!   marker), issued directly over HTTP at the same concurrency with no merge or diff.
//! - **no-op re-run** and **dry run** of the same pipeline: write calls must be 0; read
//!   calls compared with the minimum possible.
//! - **20 ms latency**: the same pipeline, smaller, through a proxy that delays every
//!   request by 20 ms, against a sequential per-secret script (`bench/per_secret.py`).
//! - **moto Secrets Manager**: file source -> Secrets Manager targets, against the floor
//!   of the same creates through the SDK.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

/// How big a scenario is.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Targets (each syncs to its own location).
    pub targets: usize,
    /// Secrets per source (and so per target).
    pub secrets: usize,
    /// Keys per secret.
    pub keys: usize,
    /// Sources.
    pub sources: usize,
    /// Inheritance depth (targets come in chains of this length).
    pub depth: usize,
    /// Store calls in flight at once, for vss and for the floor.
    pub parallel: usize,
}

impl Scale {
    /// Secrets written to targets by one apply.
    pub fn target_secrets(&self) -> usize {
        self.targets * self.secrets
    }
}

/// Where the servers and tools are.
#[derive(Clone, Debug)]
pub struct Env {
    /// OpenBao address.
    pub vault: String,
    /// OpenBao token.
    pub token: String,
    /// moto endpoint, for the Secrets Manager scenario.
    pub aws: Option<String>,
    /// The vss binary.
    pub vss: PathBuf,
    /// Python, for the per-secret script.
    pub python: Option<PathBuf>,
    /// Runs per measurement.
    pub runs: usize,
    /// A scratch directory.
    pub work: PathBuf,
    /// A unique name for this benchmark's data on the shared servers.
    pub tag: String,
}

/// One row of the result table.
#[derive(Clone, Debug)]
pub struct Row {
    /// What was measured.
    pub scenario: String,
    /// vss's times, seconds.
    pub vss: Vec<f64>,
    /// The baseline's times (floor or script), seconds, if any.
    pub baseline: Vec<f64>,
    /// The name of the baseline.
    pub baseline_name: String,
    /// "vss / floor" or "script / vss".
    pub ratio_name: String,
    /// The ratio of medians.
    pub ratio: Option<f64>,
    /// The target, e.g. "<= 1.3".
    pub target: String,
    /// Whether the target holds.
    pub met: Option<bool>,
    /// Call counts and other notes.
    pub notes: String,
}

impl Row {
    /// A measurement with no baseline and no target.
    fn timing(scenario: impl Into<String>, vss: Vec<f64>) -> Row {
        Row {
            scenario: scenario.into(),
            vss,
            baseline: Vec::new(),
            baseline_name: String::new(),
            ratio_name: String::new(),
            ratio: None,
            target: "-".into(),
            met: None,
            notes: String::new(),
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

fn spread(values: &[f64]) -> String {
    if values.is_empty() {
        return "-".into();
    }
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.2}s ({:.2}-{:.2})", median(values), min, max)
}

/// Renders the rows as a table.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<44} {:>22} {:>30} {:>16} {:>8} {:>10}\n",
        "scenario", "vss median (min-max)", "baseline median (min-max)", "ratio", "target", "met"
    );
    for r in rows {
        let ratio = r.ratio.map_or("-".into(), |x| format!("{x:.2} {}", r.ratio_name));
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        let baseline = if r.baseline.is_empty() {
            "-".to_string()
        } else {
            format!("{} {}", r.baseline_name, spread(&r.baseline))
        };
        out.push_str(&format!(
            "{:<44} {:>22} {:>30} {:>16} {:>8} {:>10}\n",
            r.scenario,
            spread(&r.vss),
            baseline,
            ratio,
            r.target,
            met
        ));
        if !r.notes.is_empty() {
            out.push_str(&format!("    {}\n", r.notes));
        }
    }
    out
}

/// Plain HTTP to OpenBao.
#[derive(Clone)]
struct Vault {
    address: String,
    token: String,
    client: reqwest::Client,
}

impl Vault {
    fn new(address: &str, token: &str) -> Self {
        let client = reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("an HTTP client");
        Self { address: address.to_string(), token: token.to_string(), client }
    }

    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
        let mut request =
            self.client.request(method, format!("{}/v1/{path}", self.address)).header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("OpenBao answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn secret_value(source: usize, secret: usize, keys: usize, salt: &str) -> Value {
    Value::Object(
        (0..keys)
            .map(|k| (format!("key{k}"), Value::String(format!("s{source}-v{secret}-{k}-{salt}-padding-to-look-real"))))
            .collect(),
    )
}

/// Writes the sources: `sources` folders of `secrets` secrets of `keys` keys, at
/// `secret/<tag>/src/s<j>/sec<k>`.
async fn load_sources(vault: &Vault, tag: &str, scale: Scale) {
    let writes = (0..scale.sources).flat_map(|s| (0..scale.secrets).map(move |k| (s, k)));
    futures::stream::iter(writes)
        .map(|(s, k)| {
            let vault = vault.clone();
            async move {
                let body = json!({"data": secret_value(s, k, scale.keys, "src")});
                let (status, answer) =
                    vault.call("POST", &format!("secret/data/{tag}/src/s{s}/sec{k}"), Some(&body)).await;
                assert_eq!(status, 200, "{answer}");
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// The pipeline config: target `t<i>` imports source `s<i % S>` and inherits `t<i-1>`
/// unless it starts a chain of `depth`.
fn vault_config(address: &str, token: &str, tag: &str, run: &str, scale: Scale) -> String {
    let mut text = format!(
        "vault: {{address: \"{address}\", auth: {{token: \"{token}\"}}}}\nmerge_store: {{vault: {{mount: secret, prefix: {tag}/{run}/merged}}}}\npipeline:\n  merge: {{parallel: {p}}}\n  sync: {{parallel: {p}}}\nsources:\n",
        p = scale.parallel
    );
    for s in 0..scale.sources {
        text.push_str(&format!("  s{s}: {{vault: {{path: secret/{tag}/src/s{s}}}}}\n"));
    }
    text.push_str("targets:\n");
    for t in 0..scale.targets {
        text.push_str(&format!("  t{t}:\n    imports: [s{}]\n", t % scale.sources));
        if t % scale.depth != 0 {
            text.push_str(&format!("    inherits: t{}\n", t - 1));
        }
        text.push_str(&format!("    vault: {{path: secret/{tag}/{run}/targets/t{t}}}\n"));
    }
    text
}

/// Runs vss; returns wall time and the JSON report.
fn run_vss(env: &Env, config: &Path, extra: &[&str]) -> (f64, Value) {
    let started = Instant::now();
    let out = std::process::Command::new(&env.vss)
        .args(["-q", "pipeline", "--output", "json", "--config"])
        .arg(config)
        .args(extra)
        .env_remove("VAULT_ADDR")
        .output()
        .expect("vss runs");
    let secs = started.elapsed().as_secs_f64();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert!(
        out.status.code() == Some(0),
        "vss failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout).chars().take(2000).collect::<String>(),
        String::from_utf8_lossy(&out.stderr)
    );
    (secs, report)
}

fn calls(report: &Value, store: &str, call: &str) -> u64 {
    report["stats"]["calls"][store][call].as_u64().unwrap_or(0)
}

/// The floor of one apply: list and read every source secret, write every bundle secret,
/// write every target secret and its ownership marker, `parallel` calls at a time.
async fn floor_vault(vault: &Vault, tag: &str, run: &str, scale: Scale) -> f64 {
    let started = Instant::now();
    // Sources: one LIST per source folder, one GET per secret.
    let mut values: Vec<Vec<Value>> = Vec::new();
    for s in 0..scale.sources {
        let (_, listed) = vault.call("LIST", &format!("secret/metadata/{tag}/src/s{s}"), None).await;
        let names: Vec<String> = listed["data"]["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        let read: Vec<Value> = futures::stream::iter(names)
            .map(|name| {
                let vault = vault.clone();
                async move {
                    vault.call("GET", &format!("secret/data/{tag}/src/s{s}/{name}"), None).await.1["data"]["data"]
                        .clone()
                }
            })
            .buffered(scale.parallel)
            .collect()
            .await;
        values.push(read);
    }
    let values = &values;
    // Bundles, then targets (with the marker), each secret once.
    for (folder, marker) in [("merged", false), ("targets", true)] {
        let writes = (0..scale.targets).flat_map(|t| (0..scale.secrets).map(move |k| (t, k)));
        futures::stream::iter(writes)
            .map(|(t, k)| {
                let vault = vault.clone();
                async move {
                    let path = format!("{tag}/{run}/{folder}/t{t}/sec{k}");
                    let body = json!({"options": {"cas": 0}, "data": values[t % scale.sources][k]});
                    vault.call("POST", &format!("secret/data/{path}"), Some(&body)).await;
                    if marker {
                        let meta = json!({"custom_metadata": {"managed-by": "vss", "vss-target": format!("t{t}")}});
                        vault.call("POST", &format!("secret/metadata/{path}"), Some(&meta)).await;
                    }
                }
            })
            .buffer_unordered(scale.parallel)
            .collect::<Vec<()>>()
            .await;
    }
    started.elapsed().as_secs_f64()
}

/// A TCP proxy to `upstream` that holds every chunk the client sends for `delay` before
/// passing it on: each request gets that much latency. Returns its address.
async fn delaying_proxy(upstream: String, delay: Duration) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { return };
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                let up = async {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = client_read.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            let _ = server_write.shutdown().await;
                            return;
                        }
                        tokio::time::sleep(delay).await;
                        if server_write.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = tokio::io::copy(&mut server_read, &mut client_write);
                let _ = tokio::join!(up, down);
            });
        }
    });
    format!("http://{address}")
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
    std::fs::write(path, text).expect("written");
    path.to_path_buf()
}

/// The `file` store at scale: `secrets` secrets (in 100 folders) applied to a fresh
/// target folder, then a no-op re-run. Target: the apply within 10 s, the re-run writing
/// nothing (the ownership sidecar is written twice per target, not once per secret).
pub fn file_store(env: &Env, secrets: usize) -> Vec<Row> {
    let source = env.work.join("file-src");
    for i in 0..secrets {
        write(&source.join(format!("g{}/s{i}.json", i % 100)), &format!(r#"{{"v": {i}, "key": "k{i}"}}"#));
    }
    let (mut apply, mut noop) = (vec![], vec![]);
    let mut noop_report = Value::Null;
    for run in 0..env.runs {
        let config = write(
            &env.work.join(format!("file-{run}.yaml")),
            &format!("source: {{file: {{path: file-src}}}}\ntargets:\n  T: {{file: {{path: file-out-{run}}}}}\n"),
        );
        let (secs, report) = run_vss(env, &config, &[]);
        assert_eq!(report["summary"]["added"], secrets, "every secret applied");
        apply.push(secs);
        let (secs, report) = run_vss(env, &config, &[]);
        noop.push(secs);
        noop_report = report;
    }
    let writes = calls(&noop_report, "file", "write");
    vec![
        Row {
            target: "< 10 s".into(),
            met: Some(median(&apply) < 10.0),
            ..Row::timing(format!("file store apply, {secrets} secrets"), apply)
        },
        Row {
            target: "0 writes".into(),
            met: Some(writes == 0),
            notes: format!("writes {writes}"),
            ..Row::timing("file store no-op re-run", noop)
        },
    ]
}

/// The OpenBao scenarios: apply vs floor, no-op re-run, dry runs.
pub async fn openbao(env: &Env, scale: Scale) -> Vec<Row> {
    let vault = Vault::new(&env.vault, &env.token);
    let tag = format!("{}-bao", env.tag);
    load_sources(&vault, &tag, scale).await;
    let (mut apply, mut floor, mut noop, mut dry_fresh, mut dry_zero) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut apply_report, mut noop_report) = (Value::Null, Value::Null);
    for run in 0..env.runs {
        let config = write(
            &env.work.join(format!("bao-{run}.yaml")),
            &vault_config(&env.vault, &env.token, &tag, &format!("r{run}"), scale),
        );
        let (secs, _) = run_vss(env, &config, &["--dry-run"]);
        dry_fresh.push(secs);
        let (secs, report) = run_vss(env, &config, &[]);
        apply.push(secs);
        apply_report = report;
        let (secs, report) = run_vss(env, &config, &[]);
        noop.push(secs);
        noop_report = report;
        let (secs, report) = run_vss(env, &config, &["--dry-run", "--exit-code"]);
        assert_eq!(report["zero_sum"], true, "the dry run after an apply is zero-sum");
        dry_zero.push(secs);
        floor.push(floor_vault(&vault, &tag, &format!("f{run}"), scale).await);
    }
    let n = scale.target_secrets() as u64;
    let written = calls(&apply_report, "vault", "write");
    let ratio = median(&apply) / median(&floor);
    // Reading every source, bundle and target secret once (what a no-op re-run read before
    // bundles had manifests): the manifest's digests stand in for the bundle reads.
    let per_secret_reads = (scale.sources * scale.secrets + 2 * scale.target_secrets()) as u64;
    let label = format!("{}x{} ({} target secrets)", scale.targets, scale.secrets, scale.target_secrets());
    vec![
        Row {
            baseline: floor,
            baseline_name: "floor".into(),
            ratio_name: "vss/floor".into(),
            ratio: Some(ratio),
            target: "<= 1.3".into(),
            met: Some(ratio <= 1.3),
            notes: format!(
                "vss calls: {} list, {} read, {written} write (floor: {} source lists, {} reads, {} writes)",
                calls(&apply_report, "vault", "list"),
                calls(&apply_report, "vault", "read"),
                scale.sources,
                scale.sources * scale.secrets,
                3 * n
            ),
            ..Row::timing(format!("OpenBao apply, {label}"), apply)
        },
        {
            let reads = calls(&noop_report, "vault", "read");
            let share = reads as f64 / per_secret_reads as f64;
            Row {
                ratio_name: "reads/per-secret".into(),
                ratio: Some(share),
                target: "0 writes, <= 0.55".into(),
                met: Some(
                    calls(&noop_report, "vault", "write") == 0
                        && calls(&noop_report, "vault", "delete") == 0
                        && share <= 0.55,
                ),
                notes: format!(
                    "writes {}; reads {reads} (one manifest per bundle, every source and target secret, login/lookups) against {per_secret_reads} to read every source, bundle and target secret once",
                    calls(&noop_report, "vault", "write"),
                ),
                ..Row::timing("OpenBao no-op re-run", noop)
            }
        },
        Row::timing("OpenBao dry run, nothing applied yet", dry_fresh),
        Row::timing("OpenBao dry run after apply (zero-sum)", dry_zero),
    ]
}

/// The latency scenario: vss and a sequential per-secret script, both through a proxy that
/// adds 20 ms to every request.
pub async fn latency(env: &Env, scale: Scale, script: &Path) -> Vec<Row> {
    let Some(python) = &env.python else { return vec![] };
    let vault = Vault::new(&env.vault, &env.token);
    let tag = format!("{}-lat", env.tag);
    load_sources(&vault, &tag, scale).await;
    let upstream = env.vault.trim_start_matches("http://").to_string();
    let proxy = delaying_proxy(upstream, Duration::from_millis(20)).await;
    let (mut ours, mut theirs) = (vec![], vec![]);
    for run in 0..env.runs {
        let config = write(
            &env.work.join(format!("lat-{run}.yaml")),
            &vault_config(&proxy, &env.token, &tag, &format!("r{run}"), scale),
        );
        let vss = env.clone();
        ours.push(tokio::task::spawn_blocking(move || run_vss(&vss, &config, &[]).0).await.expect("vss ran"));
        let plan: Vec<Value> = (0..scale.targets)
            .map(|t| {
                json!({
                    "source": format!("{tag}/src/s{}", t % scale.sources),
                    "target": format!("{tag}/script{run}/t{t}"),
                    "secrets": (0..scale.secrets).map(|k| format!("sec{k}")).collect::<Vec<_>>(),
                })
            })
            .collect();
        let plan_file = write(&env.work.join(format!("plan-{run}.json")), &serde_json::to_string(&plan).expect("JSON"));
        let (python, script, proxy, token) = (python.clone(), script.to_path_buf(), proxy.clone(), env.token.clone());
        let secs = tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let status = std::process::Command::new(python).arg(script).arg(&proxy).arg(&token).arg(plan_file).status();
            assert!(status.is_ok_and(|s| s.success()), "the per-secret script failed");
            started.elapsed().as_secs_f64()
        })
        .await
        .expect("the script ran");
        theirs.push(secs);
    }
    let ratio = median(&theirs) / median(&ours);
    vec![Row {
        baseline: theirs,
        baseline_name: "script".into(),
        ratio_name: "script/vss".into(),
        ratio: Some(ratio),
        target: ">= 10".into(),
        met: Some(ratio >= 10.0),
        notes: "vss does more (merge store bundles, ownership markers) and still runs calls concurrently".into(),
        ..Row::timing(format!("20 ms latency, {}x{} (OpenBao)", scale.targets, scale.secrets), ours)
    }]
}

/// The moto scenario: file source -> Secrets Manager targets, against the SDK floor.
pub async fn moto(env: &Env, scale: Scale) -> Vec<Row> {
    let Some(endpoint) = &env.aws else { return vec![] };
    let tag = format!("{}-sm", env.tag);
    let source: String =
        (0..scale.secrets).map(|k| format!("sec{k}: {}\n", secret_value(0, k, scale.keys, "sm"))).collect();
    write(&env.work.join("sm-source.yaml"), &source);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let (mut apply, mut floor, mut noop, mut dry_fresh, mut dry_zero) = (vec![], vec![], vec![], vec![], vec![]);
    let mut noop_report = Value::Null;
    for run in 0..env.runs {
        let mut text = format!(
            "aws: {{endpoint_url: \"{endpoint}\", region: us-east-1}}\npipeline: {{sync: {{parallel: {}}}}}\nsources: {{src: {{file: {{path: sm-source.yaml}}}}}}\ntargets:\n",
            scale.parallel
        );
        for t in 0..scale.targets {
            text.push_str(&format!("  t{t}: {{imports: [src], aws: {{prefix: {tag}/r{run}/t{t}/}}}}\n"));
        }
        let config = write(&env.work.join(format!("sm-{run}.yaml")), &text);
        dry_fresh.push(run_vss(env, &config, &["--dry-run"]).0);
        apply.push(run_vss(env, &config, &[]).0);
        let (secs, report) = run_vss(env, &config, &[]);
        noop.push(secs);
        noop_report = report;
        let (secs, report) = run_vss(env, &config, &["--dry-run", "--exit-code"]);
        assert_eq!(report["zero_sum"], true, "the dry run after an apply is zero-sum");
        dry_zero.push(secs);
        // The floor: one ListSecrets per target, one CreateSecret (with the tags) per secret.
        let started = Instant::now();
        for t in 0..scale.targets {
            let _ = client
                .list_secrets()
                .filters(
                    aws_sdk_secretsmanager::types::Filter::builder()
                        .key(aws_sdk_secretsmanager::types::FilterNameStringType::Name)
                        .values(format!("{tag}/f{run}/t{t}/"))
                        .build(),
                )
                .send()
                .await;
        }
        let creates = (0..scale.targets).flat_map(|t| (0..scale.secrets).map(move |k| (t, k)));
        futures::stream::iter(creates)
            .map(|(t, k)| {
                let client = client.clone();
                let tag = tag.clone();
                async move {
                    let tag_of =
                        |k: &str, v: String| aws_sdk_secretsmanager::types::Tag::builder().key(k).value(v).build();
                    client
                        .create_secret()
                        .name(format!("{tag}/f{run}/t{t}/sec{k}"))
                        .secret_string(secret_value(0, k, scale.keys, "sm").to_string())
                        .tags(tag_of("managed-by", "vss".into()))
                        .tags(tag_of("vss-target", format!("t{t}")))
                        .send()
                        .await
                        .expect("moto creates");
                }
            })
            .buffer_unordered(scale.parallel)
            .collect::<Vec<()>>()
            .await;
        floor.push(started.elapsed().as_secs_f64());
    }
    let ratio = median(&apply) / median(&floor);
    let min_reads = scale.targets * scale.secrets.div_ceil(20);
    vec![
        Row {
            baseline: floor,
            baseline_name: "floor".into(),
            ratio_name: "vss/floor".into(),
            ratio: Some(ratio),
            target: "<= 1.3".into(),
            met: Some(ratio <= 1.3),
            notes: "moto serves ~300 requests/s whatever the concurrency".into(),
            ..Row::timing(format!("moto Secrets Manager apply, {}x{}", scale.targets, scale.secrets), apply)
        },
        Row {
            target: "0 writes".into(),
            met: Some(calls(&noop_report, "aws", "write") == 0),
            notes: format!(
                "writes {}; reads {} (BatchGetSecretValue) vs minimum {min_reads}; lists {} (one ListSecrets page per target)",
                calls(&noop_report, "aws", "write"),
                calls(&noop_report, "aws", "read"),
                calls(&noop_report, "aws", "list")
            ),
            ..Row::timing("moto Secrets Manager no-op re-run", noop)
        },
        Row::timing("moto Secrets Manager dry run, nothing applied", dry_fresh),
        Row::timing("moto Secrets Manager dry run after apply", dry_zero),
    ]
}
