//! Fidelity, measured: random pipelines (layers, imports, edits to the sources, edits made
//! behind vss's back, deletions, options) against the `file` store, real OpenBao, moto
//! Secrets Manager, the GitHub test server and the GCP Secret Manager test server. For
//! every round of every case, what the dry run (or a saved plan) says must be exactly what
//! applying then does to the stores — read back through each server, not through vss —
//! and a second dry run must be zero-sum.
//!
//! A seeded generator, so that a failing case can be replayed: `VSS_FIDELITY_CASES=N` runs
//! N cases (default 8), `VSS_FIDELITY_SEED=S` starts from seed S.
#![cfg(all(feature = "aws", feature = "vault", feature = "github", feature = "gcp", feature = "kubernetes"))]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::common::{Run, Vss, Workspace};
use crate::github_server::GithubServer;

/// xorshift64*: small, seeded, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    File,
    Vault,
    Aws,
    Github,
    Gcp,
    Kubernetes,
}

const PATHS: &[&str] = &["app/db", "app/config", "api/stripe", "api/sendgrid", "ci/deploy", "shared/tls", "x", "y/z/w"];
const KEYS: &[&str] = &["user", "password", "host", "port", "token", "level"];

/// A source's secrets: path -> key -> value.
type Model = BTreeMap<String, serde_json::Map<String, Value>>;

/// What one store location holds, as read by the test: name -> something that changes
/// whenever the secret is written (its value, with its version where the store has one).
type Snapshot = BTreeMap<String, String>;

/// `(target, phase, path, kind)` of a change.
type Changed = BTreeSet<(String, String, String, String)>;

struct Case {
    rng: Rng,
    kind: Kind,
    ws: Workspace,
    unique: String,
    github: Option<GithubServer>,
    gcp: Option<crate::gcp_server::GcpServer>,
    kube: Option<crate::kube_server::KubeServer>,
    sources: Vec<Model>,
    /// Targets: name, whether it has a destination.
    targets: Vec<(String, bool)>,
    merge_store: bool,
    rt: tokio::runtime::Runtime,
}

impl Case {
    fn value(&mut self) -> Value {
        let n = self.rng.below(1000);
        match (self.kind, self.rng.below(5)) {
            (Kind::Github, _) | (_, 0..=2) => json!(format!("v{n}")),
            (_, 3) => json!(n),
            _ => json!({"nested": format!("n{n}"), "list": [n, "x"]}),
        }
    }

    fn secret(&mut self) -> serde_json::Map<String, Value> {
        let mut out = serde_json::Map::new();
        for _ in 0..1 + self.rng.below(3) {
            let key = self.rng.pick(KEYS).to_string();
            let value = self.value();
            out.insert(key, value);
        }
        out
    }

    fn write_sources(&self) {
        for (i, model) in self.sources.iter().enumerate() {
            let text = serde_json::to_string_pretty(model).unwrap();
            self.ws.write(&format!("src/s{i}.json"), &text);
        }
    }

    /// Random edits to the sources: values changed, keys and paths removed and added.
    fn edit_sources(&mut self) {
        for i in 0..self.sources.len() {
            for _ in 0..self.rng.below(4) {
                let paths: Vec<String> = self.sources[i].keys().cloned().collect();
                match self.rng.below(4) {
                    0 if !paths.is_empty() => {
                        let path = self.rng.pick(&paths).clone();
                        let key = self.rng.pick(KEYS).to_string();
                        let value = self.value();
                        self.sources[i].get_mut(&path).unwrap().insert(key, value);
                    }
                    1 if !paths.is_empty() => {
                        let path = self.rng.pick(&paths).clone();
                        let secret = self.sources[i].get_mut(&path).unwrap();
                        if secret.len() > 1 {
                            let key = secret.keys().next().unwrap().clone();
                            secret.remove(&key);
                        }
                    }
                    2 if paths.len() > 1 => {
                        let path = self.rng.pick(&paths).clone();
                        self.sources[i].remove(&path);
                    }
                    _ => {
                        let path = self.rng.pick(PATHS).to_string();
                        let secret = self.secret();
                        self.sources[i].insert(path, secret);
                    }
                }
            }
        }
        self.write_sources();
    }

    fn config(&mut self) -> String {
        let mut text = String::from("version: 1\n");
        match self.kind {
            Kind::Vault => text.push_str(crate::vault::HEADER),
            Kind::Aws => text.push_str("aws: {endpoint_url: \"${VSS_TEST_AWS_ENDPOINT}\", region: us-east-1}\n"),
            Kind::Github => text.push_str(crate::github::HEADER),
            Kind::Gcp => text.push_str("gcp: {endpoint: \"${GCP_TEST_URL}\", auth: anonymous}\n"),
            Kind::Kubernetes => text.push_str("kubernetes: {kubeconfig: kubeconfig.yaml}\n"),
            Kind::File => {}
        }
        if self.merge_store {
            match self.kind {
                Kind::Vault => {
                    text.push_str(&format!("merge_store: {{vault: {{path: secret/{}/merged}}}}\n", self.unique))
                }
                _ => text.push_str("merge_store: {file: {path: out/merged}}\n"),
            }
        }
        let delete_orphans = self.rng.chance(70);
        text.push_str(&format!(
            "pipeline: {{sync: {{delete_orphans: {delete_orphans}, max_deletes: {{count: 1000, percent: 100}}}}}}\nsources:\n"
        ));
        for i in 0..self.sources.len() {
            text.push_str(&format!("  s{i}: {{file: {{path: src/s{i}.json}}}}\n"));
        }
        text.push_str("targets:\n");
        for (n, (name, destination)) in self.targets.clone().iter().enumerate() {
            let mut imports: Vec<String> =
                (0..self.sources.len()).filter(|_| self.rng.chance(50)).map(|i| format!("s{i}")).collect();
            if imports.is_empty() {
                imports.push(format!("s{}", self.rng.below(self.sources.len())));
            }
            let inherits = if n > 0 { format!("inherits: {}, ", self.targets[n - 1].0) } else { String::new() };
            let place =
                if *destination { format!(", allow_emptying: true{}", self.location(n)) } else { String::new() };
            text.push_str(&format!("  {name}: {{{inherits}imports: [{}]{place}}}\n", imports.join(", ")));
        }
        text
    }

    fn location(&self, n: usize) -> String {
        let u = &self.unique;
        match self.kind {
            Kind::File => format!(", file: {{path: out/t{n}}}"),
            Kind::Vault => format!(", vault: {{path: secret/{u}/t{n}}}"),
            Kind::Aws => format!(", aws: {{prefix: {u}/t{n}/}}"),
            Kind::Github => format!(", github: {{repo: acme/t{n}-{u}, names: path_key}}"),
            Kind::Gcp => format!(", gcp: {{project: t{n}-{u}}}"),
            Kind::Kubernetes => format!(", kubernetes: {{namespace: t{n}}}"),
        }
    }

    fn vss(&self, args: &[&str]) -> Run {
        let mut vss = Vss::new()
            .cwd(self.ws.dir.path())
            .env("HOME", self.ws.dir.path())
            .env("VSS_FINGERPRINT_KEY", "fidelity-key")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN");
        for var in ["VSS_TEST_VAULT_ADDR", "VSS_TEST_VAULT_TOKEN", "VSS_TEST_AWS_ENDPOINT"] {
            if let Ok(value) = std::env::var(var) {
                vss = vss.env(var, value);
            }
        }
        if self.kind == Kind::Aws {
            vss = vss
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_PROFILE");
        }
        if let Some(server) = &self.github {
            vss = vss.env("GH_TEST_URL", &server.url).env("GH_TEST_TOKEN", crate::github::TOKEN);
        }
        if let Some(server) = &self.gcp {
            vss = vss.env("GCP_TEST_URL", &server.url);
        }
        vss.args(args).run()
    }

    /// Every location the run writes, read back: `(target, phase)` -> snapshot.
    fn snapshot(&self) -> BTreeMap<(String, String), Snapshot> {
        let mut out = BTreeMap::new();
        for (n, (name, destination)) in self.targets.iter().enumerate() {
            if *destination {
                out.insert((name.clone(), "sync".to_string()), self.read_location(n));
            }
            if self.merge_store {
                let bundle = match self.kind {
                    Kind::Vault => self.vault_tree(&format!("{}/merged/{name}", self.unique)),
                    _ => files(&self.ws, &format!("out/merged/{name}")),
                };
                out.insert((name.clone(), "merge".to_string()), bundle);
            }
        }
        out
    }

    fn read_location(&self, n: usize) -> Snapshot {
        let u = &self.unique;
        match self.kind {
            Kind::File => files(&self.ws, &format!("out/t{n}")),
            Kind::Vault => self.vault_tree(&format!("{u}/t{n}")),
            Kind::Aws => self.rt.block_on(async {
                let client = crate::aws::sm(None).await;
                let prefix = format!("{u}/t{n}/");
                let listed = crate::aws::secrets(&client, &prefix).await;
                listed.into_iter().map(|(name, value)| (name[prefix.len()..].to_string(), value.to_string())).collect()
            }),
            Kind::Github => {
                let server = self.github.as_ref().unwrap();
                let secrets = server.secrets(&format!("/repos/acme/t{n}-{u}/actions/secrets"));
                secrets.into_iter().map(|(name, s)| (name, format!("{} @{}", s.plaintext, s.updated_at))).collect()
            }
            Kind::Gcp => {
                let server = self.gcp.as_ref().unwrap();
                let secrets = server.secrets(&format!("t{n}-{u}"));
                // Ids name paths with `--` for `/`; a secret with no enabled version is absent.
                secrets
                    .into_iter()
                    .filter_map(|(id, s)| {
                        Some((id.replace("--", "/"), format!("{} @{}", s.latest()?, s.versions.len())))
                    })
                    .collect()
            }
            Kind::Kubernetes => {
                let server = self.kube.as_ref().unwrap();
                // Named by the path vss recorded (or the name); the value with its version.
                server
                    .secrets(&format!("t{n}"))
                    .into_iter()
                    .map(|(name, s)| {
                        let path = s.annotations.get("vss.dev/path").cloned().unwrap_or(name);
                        (path, format!("{:?} @{}", s.text(), s.resource_version))
                    })
                    .collect()
            }
        }
    }

    /// Every KV2 secret below `secret/<folder>/`: its value and version.
    fn vault_tree(&self, folder: &str) -> Snapshot {
        let http = crate::vault::Http::from_env();
        self.rt.block_on(async {
            let mut out = Snapshot::new();
            let mut pending = vec![String::new()];
            while let Some(sub) = pending.pop() {
                for key in http.list(&format!("secret/{folder}{sub}")).await {
                    let relative = format!("{sub}/{key}");
                    if let Some(dir) = relative.strip_suffix('/') {
                        pending.push(dir.to_string());
                        continue;
                    }
                    let (_, body) = http.call("GET", &format!("secret/data/{folder}{relative}"), None).await;
                    let version = &body["data"]["metadata"]["version"];
                    out.insert(relative[1..].to_string(), format!("{} @{version}", body["data"]["data"]));
                }
            }
            out
        })
    }

    /// Edits made behind vss's back at the targets: values overwritten, secrets deleted,
    /// unmanaged secrets added.
    fn edit_targets(&mut self) {
        let u = self.unique.clone();
        for (n, (_, destination)) in self.targets.clone().iter().enumerate() {
            if !destination || !self.rng.chance(40) {
                continue;
            }
            let held: Vec<String> = self.read_location(n).into_keys().collect();
            let extra = format!("extra{}", self.rng.below(3));
            let victim = (!held.is_empty()).then(|| self.rng.pick(&held).clone());
            let what = self.rng.below(3);
            match self.kind {
                Kind::File => match (what, &victim) {
                    (0, Some(v)) => drop(self.ws.write(&format!("out/t{n}/{v}.json"), r#"{"edited": "by hand"}"#)),
                    (1, Some(v)) => std::fs::remove_file(self.ws.path(&format!("out/t{n}/{v}.json"))).unwrap(),
                    _ => drop(self.ws.write(&format!("out/t{n}/{extra}.json"), r#"{"someone": "else"}"#)),
                },
                Kind::Vault => {
                    let http = crate::vault::Http::from_env();
                    self.rt.block_on(async {
                        match (what, &victim) {
                            (0, Some(v)) => {
                                http.put_secret(&format!("secret/{u}/t{n}/{v}"), json!({"edited": "by hand"})).await
                            }
                            (1, Some(v)) => {
                                drop(http.call("DELETE", &format!("secret/metadata/{u}/t{n}/{v}"), None).await)
                            }
                            _ => http.put_secret(&format!("secret/{u}/t{n}/{extra}"), json!({"someone": "else"})).await,
                        }
                    });
                }
                Kind::Aws => self.rt.block_on(async {
                    let client = crate::aws::sm(None).await;
                    match (what, &victim) {
                        (0, Some(v)) => {
                            let id = format!("{u}/t{n}/{v}");
                            client
                                .put_secret_value()
                                .secret_id(id)
                                .secret_string(r#"{"edited":"by hand"}"#)
                                .send()
                                .await
                                .unwrap();
                        }
                        _ => {
                            let id = format!("{u}/t{n}/{extra}");
                            if client.describe_secret().secret_id(&id).send().await.is_err() {
                                client
                                    .create_secret()
                                    .name(id)
                                    .secret_string(r#"{"someone":"else"}"#)
                                    .send()
                                    .await
                                    .unwrap();
                            }
                        }
                    }
                }),
                Kind::Gcp => {
                    let server = self.gcp.as_ref().unwrap();
                    let project = format!("t{n}-{u}");
                    match (what, &victim) {
                        (0, Some(v)) => server.put(&project, &v.replace('/', "--"), r#"{"edited":"by hand"}"#, &[]),
                        _ => server.put(&project, &extra, r#"{"someone":"else"}"#, &[]),
                    }
                }
                Kind::Kubernetes => {
                    let server = self.kube.as_ref().unwrap();
                    let namespace = format!("t{n}");
                    let name = |path: &str| path.replace('/', "-");
                    match (what, &victim) {
                        // `kubectl edit`: a value changed and a key added, by another manager.
                        (0, Some(v)) => server.put(
                            &namespace,
                            &name(v),
                            json!({"data": {"user": "aGFuZA==", "edited": "aGFuZA=="}}),
                        ),
                        (1, Some(v)) => server.remove(&namespace, &name(v)),
                        _ => server.put(&namespace, &extra, json!({"data": {"someone": "ZWxzZQ=="}})),
                    }
                }
                Kind::Github => {
                    let server = self.github.as_ref().unwrap();
                    let collection = format!("/repos/acme/t{n}-{u}/actions/secrets");
                    match (what, &victim) {
                        (0, Some(v)) => server.overwrite(&collection, v, "edited by hand"),
                        _ => server.put_secret(&collection, &extra.to_uppercase(), "someone else"),
                    }
                }
            }
        }
    }
}

/// Every file below `dir` (hidden ones aside): its path without the extension, and content.
fn files(ws: &Workspace, dir: &str) -> Snapshot {
    ws.files(dir)
        .into_iter()
        .filter(|f| !f.split('/').any(|s| s.starts_with('.')))
        .map(|f| {
            let content = std::fs::read_to_string(ws.path(&format!("{dir}/{f}"))).unwrap();
            (f.rsplit_once('.').map_or(f.clone(), |(stem, _)| stem.to_string()), content)
        })
        .collect()
}

/// The writes and deletes a report lists (all of them, or those with `status`).
fn reported(report: &Value, status: Option<&str>) -> Changed {
    let mut out = Changed::new();
    for t in report["targets"].as_array().unwrap() {
        for c in t["changes"].as_array().unwrap() {
            let kind = c["change"].as_str().unwrap();
            if !matches!(kind, "added" | "modified" | "removed") || status.is_some_and(|s| c["status"] != s) {
                continue;
            }
            let s = |v: &Value| v.as_str().unwrap().to_string();
            out.insert((s(&t["name"]), s(&t["phase"]), s(&c["path"]), kind.to_string()));
        }
    }
    out
}

/// What changed between two snapshots of every location.
fn observed(before: &BTreeMap<(String, String), Snapshot>, after: &BTreeMap<(String, String), Snapshot>) -> Changed {
    let mut out = Changed::new();
    for (place, then) in before {
        let now = &after[place];
        let names: BTreeSet<&String> = then.keys().chain(now.keys()).collect();
        for name in names {
            let kind = match (then.get(name), now.get(name)) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(a), Some(b)) if a != b => "modified",
                _ => continue,
            };
            out.insert((place.0.clone(), place.1.clone(), name.clone(), kind.to_string()));
        }
    }
    out
}

fn stores() -> Vec<Kind> {
    let mut kinds = vec![Kind::File, Kind::Github, Kind::Gcp, Kind::Kubernetes];
    if std::env::var_os("VSS_TEST_VAULT_ADDR").is_some() {
        kinds.push(Kind::Vault);
    }
    if std::env::var_os("VSS_TEST_AWS_ENDPOINT").is_some() {
        kinds.push(Kind::Aws);
    }
    kinds
}

#[test]
fn what_the_dry_run_says_is_what_applying_does() {
    let cases: u64 = std::env::var("VSS_FIDELITY_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(8);
    let first: u64 = std::env::var("VSS_FIDELITY_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(1);
    let kinds = stores();
    assert!(kinds.len() == 6, "the fidelity test needs the servers `tests/run` starts");
    let (mut rounds, mut checked, mut mismatches) = (0, 0, Vec::new());
    for seed in first..first + cases {
        let mut rng = Rng::new(seed);
        let kind = kinds[(seed as usize) % kinds.len()];
        let unique = format!("fid{seed}-{}", crate::aws::unique("x").rsplit('-').next().unwrap());
        let count = 1 + rng.below(3);
        let targets: Vec<(String, bool)> =
            (0..count).map(|n| (format!("T{n}"), n + 1 == count || rng.chance(70))).collect();
        let github = (kind == Kind::Github).then(|| {
            let server = crate::github::server(&[]);
            for n in 0..targets.len() {
                server.add_repo(&format!("acme/t{n}-{unique}"));
            }
            server
        });
        let gcp = (kind == Kind::Gcp).then(crate::gcp_server::GcpServer::start);
        let kube = (kind == Kind::Kubernetes).then(|| crate::kube_server::KubeServer::start(&["t0", "t1", "t2"]));
        let merge_store = matches!(kind, Kind::File | Kind::Vault) && rng.chance(60);
        let mut case = Case {
            rng,
            kind,
            ws: Workspace::new(),
            unique,
            github,
            gcp,
            kube,
            sources: Vec::new(),
            targets,
            merge_store,
            rt: tokio::runtime::Runtime::new().unwrap(),
        };
        for _ in 0..1 + case.rng.below(3) {
            let mut model = Model::new();
            for _ in 0..1 + case.rng.below(4) {
                let path = case.rng.pick(PATHS).to_string();
                let secret = case.secret();
                model.insert(path, secret);
            }
            case.sources.push(model);
        }
        case.write_sources();
        if let Some(server) = &case.kube {
            case.ws.write("kubeconfig.yaml", &server.kubeconfig(&[("fidelity", "t0")]));
        }
        let config = case.config();
        case.ws.write("vss.yaml", &config);
        let context = |round: usize| format!("seed {seed} ({kind:?}), round {round}\n--- vss.yaml\n{config}");
        for round in 0..3 {
            if round > 0 {
                case.edit_sources();
                case.edit_targets();
            }
            let by_plan = case.rng.chance(50);
            let dry = if by_plan {
                case.vss(&["plan", "-o", "plan.json", "--output", "json"])
            } else {
                case.vss(&["pipeline", "--dry-run", "--output", "json"])
            };
            assert_eq!(dry.code, 0, "{}\n{}", context(round), dry.transcript());
            let planned = reported(&dry.json(), None);
            checked += planned.len();
            let before = case.snapshot();
            let applied = if by_plan {
                case.vss(&["apply", "plan.json", "--output", "json"])
            } else {
                case.vss(&["pipeline", "--output", "json"])
            };
            assert_eq!(applied.code, 0, "{}\n{}", context(round), applied.transcript());
            let after = case.snapshot();
            let seen = observed(&before, &after);
            let said = reported(&applied.json(), Some("applied"));
            if planned != seen || said != seen {
                mismatches.push(format!(
                    "{}\nplanned: {planned:#?}\nreported applied: {said:#?}\nobserved in the stores: {seen:#?}",
                    context(round)
                ));
            }
            let again = case.vss(&["pipeline", "--dry-run", "--exit-code", "--output", "json"]);
            if again.code != 0 {
                mismatches.push(format!("{}\nthe second dry run is not zero-sum:\n{}", context(round), again.stdout));
            }
            rounds += 1;
        }
    }
    eprintln!("fidelity: {cases} cases, {rounds} rounds, {checked} changes, {} mismatches", mismatches.len());
    assert!(checked > 0, "the cases changed nothing: the test checks nothing");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
