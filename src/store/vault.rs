//! The `vault` store: HashiCorp Vault / OpenBao KV version 2, as a source, the merge store
//! and a target, over Vault's HTTP API.
//!
//! ```yaml
//! vault:                                  # default connection (every field optional)
//!   address: ${VAULT_ADDR}
//!   namespace: team-a
//!   auth: { approle: { role_id: ${ROLE_ID}, secret_id: ${SECRET_ID} } }
//! sources:
//!   common: { vault: { path: secret/common } }        # every KV2 secret below secret/common
//! merge_store:
//!   vault: { mount: secret, prefix: merged }           # bundles at secret/merged/<target>/<path>
//! targets:
//!   Production:
//!     imports: [common]
//!     vault: { path: team/kv/apps/prod, address: https://vault.prod:8200 }  # another server
//! ```
//!
//! - **Locations**: `path: secret/app` (the KV mount is found by asking the server, so
//!   multi-segment mounts such as `team/kv` and a bare mount root such as `secret` work) or
//!   `mount` + `prefix`. A KV version 1 mount is refused.
//! - **Connection**: `address`, `namespace` and `auth` of the store, else of the top-level
//!   `vault:` block, else Vault's own environment: `VAULT_ADDR`, `VAULT_NAMESPACE`,
//!   `VAULT_TOKEN` or `~/.vault-token`, `VAULT_CACERT`, `VAULT_SKIP_VERIFY`.
//! - **Auth**: `token`, `approle` (`mount` defaults to `approle`) or `kubernetes` (`mount`
//!   defaults to `kubernetes`, `jwt_path` to the service account token). Each distinct
//!   connection logs in once per run; a token is checked with `auth/token/lookup-self`.
//! - **Reads**: one `GET <mount>/data/<path>` per secret returns the value, its version
//!   (kept for check-and-set) and its `custom_metadata` (the ownership marker); listing is
//!   recursive (`LIST <mount>/metadata/<path>/`), folders listed concurrently.
//! - **Merge bundles** (`<mount>/<prefix>/<target>/…`) belong to vss entirely: every secret
//!   in a bundle counts as owned by its target, and no per-secret marker is written. Each
//!   has a manifest at `<mount>/<prefix>/<target>` (its state, and the version and digest
//!   of every secret): a MERGE marks it `writing` before its first write and `complete`,
//!   naming every secret's version, after its last; a SYNC reads the versions it names,
//!   so it never sees a half-written bundle, and a no-op MERGE compares by its digests
//!   instead of reading every secret.
//! - **Writes** use check-and-set (`cas` = the version read, 0 for a new secret): a secret
//!   changed since it was read fails with a conflict, and the engine retries from a fresh
//!   read. The marker (`managed-by=vss`, `vss-target=<target>`) is written to
//!   `custom_metadata` (other custom metadata is kept) when it changes. Deletes remove the
//!   metadata, so every version goes.
//! - KV2 stores objects: a scalar secret cannot be written to Vault.
//! - Calls counted in `stats`: each LIST, each GET (plus login, token and mount lookups,
//!   as reads), each POST of data or metadata (writes), each DELETE.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::error::ErrorKind;
use crate::secret::{LiveSecret, LiveState, SecretPath, SecretValue, Sensitive};
use crate::span::{Span, Spanned};
use crate::store::stats::{Call, CallCounter};
use crate::store::{Bundle, Capabilities, Locus, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// `vault:` options of a source, the merge store or a target.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultConfig {
    /// The location as one path (`secret/apps/prod`): the KV mount is the longest mount of
    /// the server that prefixes it, the rest is the prefix. Or use `mount` + `prefix`.
    pub path: Option<Spanned<String>>,
    /// The KV version 2 mount (`secret`, `team/kv`), with `prefix`.
    pub mount: Option<Spanned<String>>,
    /// The folder inside `mount` (default: the mount's root).
    pub prefix: Option<Spanned<String>>,
    /// This store's server (default: the top-level `vault.address`, then `VAULT_ADDR`).
    pub address: Option<Spanned<String>>,
    /// This store's namespace (default: the top-level `vault.namespace`, then `VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// This store's login (default: the top-level `vault.auth`, then `VAULT_TOKEN` or `~/.vault-token`).
    pub auth: Option<VaultAuth>,
}

/// The top-level `vault:` block: the default connection of every `vault` store.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VaultDefaults {
    /// Server address, e.g. `https://vault.example.com:8200` (default: `VAULT_ADDR`).
    pub address: Option<String>,
    /// Namespace (default: `VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// Login (default: `VAULT_TOKEN`, then `~/.vault-token`).
    pub auth: Option<VaultAuth>,
    /// PEM file of the CA that signed the server's certificate (default: `VAULT_CACERT`).
    pub ca_cert: Option<String>,
    /// Skip TLS verification (default: `VAULT_SKIP_VERIFY`). Never in production.
    pub skip_verify: Option<bool>,
}

/// How to log in to Vault: exactly one method.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum VaultAuth {
    /// A Vault token.
    Token(Sensitive),
    /// AppRole login.
    Approle(AppRoleAuth),
    /// Kubernetes service-account login.
    Kubernetes(KubernetesAuth),
}

/// `auth: { approle: {...} }`
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct AppRoleAuth {
    /// Where the AppRole method is mounted (default `approle`).
    #[serde(default = "default_approle_mount")]
    pub mount: String,
    /// The role id.
    pub role_id: Sensitive,
    /// The secret id.
    pub secret_id: Sensitive,
}

/// `auth: { kubernetes: {...} }`
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields)]
pub struct KubernetesAuth {
    /// Where the Kubernetes method is mounted (default `kubernetes`).
    #[serde(default = "default_kubernetes_mount")]
    pub mount: String,
    /// The Vault role to log in as.
    pub role: String,
    /// The service account token file.
    #[serde(default = "default_jwt_path")]
    pub jwt_path: String,
}

fn default_approle_mount() -> String {
    "approle".into()
}
fn default_kubernetes_mount() -> String {
    "kubernetes".into()
}
fn default_jwt_path() -> String {
    "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
}

impl VaultAuth {
    fn describe(&self) -> String {
        match self {
            VaultAuth::Token(_) => "token".into(),
            VaultAuth::Approle(a) => format!("approle at auth/{}", a.mount.trim_matches('/')),
            VaultAuth::Kubernetes(k) => format!("kubernetes at auth/{}", k.mount.trim_matches('/')),
        }
    }
}

impl VaultConfig {
    /// The server of this location: its address (no trailing `/`) and namespace, from the
    /// store block, then the top-level `vault:` block, then `VAULT_ADDR` / `VAULT_NAMESPACE`.
    pub fn server(&self, defaults: &VaultDefaults) -> (Option<String>, Option<String>) {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let address = self
            .address
            .as_ref()
            .map(|a| a.value.clone())
            .or_else(|| defaults.address.clone())
            .or_else(|| env("VAULT_ADDR"))
            .map(|a| a.trim_end_matches('/').to_string());
        let namespace = self.namespace.clone().or_else(|| defaults.namespace.clone()).or_else(|| env("VAULT_NAMESPACE"));
        (address, namespace)
    }

    /// A short description of the location, for reports: `vault secret/apps/prod`.
    pub fn describe(&self) -> String {
        let location = match (&self.path, &self.mount) {
            (Some(path), _) => path.value.trim_matches('/').to_string(),
            (None, Some(mount)) => join(&[&mount.value, self.prefix.as_ref().map_or("", |p| &p.value)]),
            (None, None) => String::new(),
        };
        match &self.address {
            Some(address) => format!("vault {location} at {}", address.value),
            None => format!("vault {location}"),
        }
    }
}

/// Joins path pieces with `/`, dropping empty pieces and stray slashes.
fn join(parts: &[&str]) -> String {
    parts.iter().flat_map(|p| p.split('/')).filter(|s| !s.is_empty()).collect::<Vec<_>>().join("/")
}

/// One logged-in connection, shared by every store location that uses it.
#[derive(Debug)]
pub struct VaultClient {
    http: reqwest::Client,
    address: String,
    namespace: Option<String>,
    token: Sensitive,
    calls: Arc<CallCounter>,
    mounts: Mutex<HashMap<String, String>>,
}

/// What identifies a connection: address, namespace and login.
type SessionKey = (String, Option<String>, VaultAuth);

/// The connections of one run, one per address, namespace and login. Each logs in once,
/// whatever the number of stores on it: the first store's login (with its retries) is
/// shared by the others, a failure too, and logins to different servers do not wait for
/// each other.
#[derive(Debug, Default)]
pub struct VaultSessions {
    clients: Mutex<HashMap<SessionKey, Arc<Login>>>,
}

/// One connection's login: done once, its outcome shared.
type Login = tokio::sync::OnceCell<Result<Arc<VaultClient>, StoreError>>;

/// What a request was for, to name the capability a 403 lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// LIST
    List,
    /// GET
    Read,
    /// POST (create or update)
    Write,
    /// DELETE
    Delete,
    /// A login or lookup.
    Login,
}

impl Op {
    fn capability(self) -> &'static str {
        match self {
            Op::List => "list",
            Op::Read => "read",
            Op::Write => "create/update",
            Op::Delete => "delete",
            Op::Login => "update",
        }
    }
}

/// Classifies a Vault answer that is not a success. `what` names the request (method and
/// API path), `address` the server. 404 is not classified here: callers turn it into `None`.
pub fn classify(status: u16, body: &str, op: Op, what: &str, address: &str) -> StoreError {
    let errors: Vec<String> = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let reason = crate::store::short(&errors.join("; "));
    // The server's reason with the status, or the status alone when it gave none.
    let detail = if reason.is_empty() { format!("HTTP {status}") } else { format!("{reason} (HTTP {status})") };
    match status {
        400 if reason.contains("check-and-set") => {
            StoreError::conflict(format!("{what} at {address}: changed since it was read (check-and-set)"))
        }
        403 => StoreError::permission(format!(
            "{what} at {address}: the token lacks the `{}` capability on this path ({})",
            op.capability(),
            if reason.is_empty() { "HTTP 403" } else { &reason }
        ))
        .with_hint(format!("grant the token's policy `{}` on this path", op.capability())),
        503 if reason.contains("sealed") => {
            StoreError::unavailable(format!("Vault at {address} is sealed")).with_hint("unseal it, or wait for it")
        }
        429 => StoreError::new(ErrorKind::Quota, format!("{what} at {address}: {detail}")),
        412 | 500 | 502 | 503 | 504 => StoreError::unavailable(format!("{what} at {address}: {detail}")),
        404 => StoreError::not_found(format!("{what} at {address}: {detail}")),
        _ => StoreError::invalid(format!("{what} at {address}: {detail}")),
    }
}

fn transport(error: reqwest::Error, what: &str, address: &str) -> StoreError {
    // The message and its causes; the URL is left out (the address is named already).
    let error = error.without_url();
    let message = crate::store::causes(&error);
    if error.is_timeout() {
        return crate::store::timed_out(what, address, &message);
    }
    StoreError::new(ErrorKind::Unavailable, format!("cannot reach Vault at {address} ({what}): {message}"))
}

impl VaultSessions {
    /// The logged-in client of a store's connection, created on first use.
    pub async fn client(
        &self,
        store: &VaultConfig,
        defaults: &VaultDefaults,
        calls: Arc<CallCounter>,
    ) -> Result<Arc<VaultClient>, StoreError> {
        let (address, namespace) = store.server(defaults);
        let address = address
            .ok_or_else(|| StoreError::invalid("no Vault address").with_hint("set `vault.address` or VAULT_ADDR"))?;
        let auth = match store.auth.clone().or_else(|| defaults.auth.clone()) {
            Some(auth) => auth,
            None => VaultAuth::Token(token_from_env().ok_or_else(|| {
                StoreError::invalid(format!(
                    "no Vault login for {address}: set `vault.auth`, VAULT_TOKEN or ~/.vault-token"
                ))
            })?),
        };
        let key = (address.clone(), namespace.clone(), auth.clone());
        let login = self.clients.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
        let outcome = login
            .get_or_init(|| async {
                let http = http_client(defaults, &address)?;
                let attempt = || VaultClient::login(http.clone(), address.clone(), namespace.clone(), &auth, calls.clone());
                crate::store::retry::RetryPolicy::default().run("login", attempt).await.map(Arc::new)
            })
            .await;
        // Retried already: a failure is final for every store that shares it.
        outcome.clone().map_err(StoreError::final_)
    }
}

fn token_from_env() -> Option<Sensitive> {
    if let Some(token) = std::env::var("VAULT_TOKEN").ok().filter(|t| !t.is_empty()) {
        return Some(Sensitive(token));
    }
    let home = std::env::var_os("HOME")?;
    let token = std::fs::read_to_string(std::path::Path::new(&home).join(".vault-token")).ok()?;
    let token = token.trim().to_string();
    (!token.is_empty()).then_some(Sensitive(token))
}

fn http_client(defaults: &VaultDefaults, address: &str) -> Result<reqwest::Client, StoreError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(crate::store::timeouts().connect)
        .timeout(crate::store::timeouts().request);
    let ca_cert = defaults.ca_cert.clone().or_else(|| std::env::var("VAULT_CACERT").ok().filter(|v| !v.is_empty()));
    if let Some(path) = ca_cert {
        let pem = std::fs::read(&path)
            .map_err(|source| StoreError::io(format!("cannot read the Vault CA certificate {path}"), source))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| StoreError::invalid(format!("{path} is not a PEM certificate bundle: {e}")))?;
        builder = builder.tls_certs_merge(certs);
    }
    let skip = defaults.skip_verify.unwrap_or_else(|| {
        std::env::var("VAULT_SKIP_VERIFY")
            .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    });
    if skip {
        tracing::warn!(%address, "TLS verification of Vault is disabled");
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|e| StoreError::invalid(format!("cannot set up HTTPS for Vault at {address}: {e}")))
}

/// A response: status and body text.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

impl VaultClient {
    async fn login(
        http: reqwest::Client,
        address: String,
        namespace: Option<String>,
        auth: &VaultAuth,
        calls: Arc<CallCounter>,
    ) -> Result<Self, StoreError> {
        let mut client = VaultClient {
            http,
            address,
            namespace,
            token: Sensitive(String::new()),
            calls,
            mounts: Mutex::new(HashMap::new()),
        };
        let failed = |reason: String| {
            StoreError::permission(format!("Vault login failed ({}) at {}: {reason}", auth.describe(), client.address))
        };
        let (mount, body) = match auth {
            VaultAuth::Token(token) => {
                client.token = token.clone();
                let answer = client.send(reqwest::Method::GET, "auth/token/lookup-self", None, Call::Read).await?;
                return match answer.status {
                    200 => Ok(client),
                    403 => Err(StoreError::permission(format!(
                        "Vault rejected the token at {} (token lookup: permission denied)",
                        client.address
                    ))),
                    status => Err(classify(status, &answer.body, Op::Login, "token lookup", &client.address)),
                };
            }
            VaultAuth::Approle(a) => (&a.mount, json!({"role_id": a.role_id.0, "secret_id": a.secret_id.0})),
            VaultAuth::Kubernetes(k) => {
                let jwt = std::fs::read_to_string(&k.jwt_path)
                    .map_err(|e| failed(format!("cannot read {}: {e}", k.jwt_path)))?;
                (&k.mount, json!({"role": k.role, "jwt": jwt.trim()}))
            }
        };
        let path = format!("auth/{}/login", mount.trim_matches('/'));
        let answer = client.send(reqwest::Method::POST, &path, Some(&body), Call::Read).await?;
        if answer.status != 200 {
            return Err(match classify(answer.status, &answer.body, Op::Login, &path, &client.address) {
                retryable if retryable.is_retryable() => retryable,
                _ => {
                    let reasons = answer.json()["errors"]
                        .as_array()
                        .map(|e| e.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("; "));
                    failed(reasons.filter(|r| !r.is_empty()).unwrap_or_else(|| format!("HTTP {}", answer.status)))
                }
            });
        }
        let token = answer.json()["auth"]["client_token"].as_str().map(str::to_string);
        client.token = Sensitive(token.ok_or_else(|| failed("the answer carries no client token".into()))?);
        Ok(client)
    }

    fn url(&self, api_path: &str) -> Result<reqwest::Url, StoreError> {
        let mut url = reqwest::Url::parse(&self.address)
            .map_err(|e| StoreError::invalid(format!("`{}` is not a Vault address: {e}", self.address)))?;
        {
            let mut segments = url
                .path_segments_mut()
                .map_err(|_| StoreError::invalid(format!("`{}` is not a Vault address", self.address)))?;
            segments.pop_if_empty().push("v1");
            segments.extend(api_path.split('/').filter(|s| !s.is_empty()));
        }
        Ok(url)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        api_path: &str,
        body: Option<&Value>,
        call: Call,
    ) -> Result<Answer, StoreError> {
        let (path, query) = api_path.split_once('?').map_or((api_path, None), |(p, q)| (p, Some(q)));
        let mut url = self.url(path)?;
        url.set_query(query);
        if method.as_str() == "LIST" {
            // LIST wants the folder's trailing slash.
            let path = format!("{}/", url.path().trim_end_matches('/'));
            url.set_path(&path);
        }
        let what = format!("{method} {api_path}");
        let mut request = self.http.request(method, url).header("X-Vault-Request", "true");
        if !self.token.0.is_empty() {
            request = request.header("X-Vault-Token", &self.token.0);
        }
        if let Some(namespace) = &self.namespace {
            request = request.header("X-Vault-Namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.calls.count(call);
        let response = request.send().await.map_err(|e| transport(e, &what, &self.address))?;
        let status = response.status().as_u16();
        // A server that says when to come back (429, 503 with `Retry-After` in seconds) is
        // waited out that long by the retry wrapper.
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.text().await.map_err(|e| transport(e, &what, &self.address))?;
        if let (429 | 503, Some(seconds)) = (status, retry_after) {
            let error = classify(status, &body, Op::Read, &what, &self.address);
            return Err(error.retry_after(std::time::Duration::from_secs(seconds)));
        }
        Ok(Answer { status, body })
    }

    /// The KV mount holding `path` (as `secret` or `team/kv`), checked to be KV version 2.
    async fn mount_of(&self, path: &str) -> Result<String, StoreError> {
        let path = join(&[path]);
        if let Some(mount) = self.mounts.lock().unwrap_or_else(|e| e.into_inner()).get(&path) {
            return Ok(mount.clone());
        }
        let api = format!("sys/internal/ui/mounts/{path}");
        let answer = self.send(reqwest::Method::GET, &api, None, Call::Read).await?;
        let info = match answer.status {
            200 => answer.json()["data"].clone(),
            403 | 404 => self.mount_from_table(&path).await?,
            status => return Err(classify(status, &answer.body, Op::Read, &api, &self.address)),
        };
        let mount = info["path"].as_str().map(|m| join(&[m])).filter(|m| !m.is_empty()).ok_or_else(|| {
            StoreError::not_found(format!("no secrets engine is mounted at `{path}` on {}", self.address))
        })?;
        let kind = info["type"].as_str().unwrap_or("");
        if kind != "kv" && kind != "generic" {
            return Err(StoreError::invalid(format!(
                "`{mount}` on {} is a `{kind}` secrets engine, not KV version 2",
                self.address
            )));
        }
        if info["options"]["version"].as_str() != Some("2") {
            return Err(StoreError::invalid(format!(
                "`{mount}` on {} is a KV version 1 mount; vss needs KV version 2 (enable one with `-version=2`, or upgrade the mount with `kv enable-versioning`)",
                self.address
            )));
        }
        self.mounts.lock().unwrap_or_else(|e| e.into_inner()).insert(path, mount.clone());
        Ok(mount)
    }

    /// The longest mount of `sys/mounts` that prefixes `path`.
    async fn mount_from_table(&self, path: &str) -> Result<Value, StoreError> {
        let answer = self.send(reqwest::Method::GET, "sys/mounts", None, Call::Read).await?;
        if answer.status != 200 {
            return Err(classify(
                answer.status,
                &answer.body,
                Op::Read,
                "sys/mounts (to find the KV mount)",
                &self.address,
            ));
        }
        let table = answer.json();
        let table = table.get("data").filter(|d| d.is_object()).unwrap_or(&table);
        let best = table.as_object().into_iter().flatten().filter(|(mount, _)| {
            let mount = mount.trim_end_matches('/');
            path == mount || path.starts_with(&format!("{mount}/"))
        });
        let best = best.max_by_key(|(mount, _)| mount.len());
        Ok(best
            .map(|(mount, info)| {
                let mut info = info.clone();
                info["path"] = Value::String(mount.clone());
                info
            })
            .unwrap_or(Value::Null))
    }
}

/// A KV2 location (`mount` + `prefix`) on one connection.
#[derive(Debug)]
pub struct VaultStore {
    client: Arc<VaultClient>,
    mount: String,
    prefix: String,
    /// The target, when this location is its merge bundle: everything in it belongs to
    /// that target, so no per-secret marker is written (one call saved per secret).
    bundle: Option<String>,
    /// What the last read saw of each secret: its version (for check-and-set) and its
    /// custom metadata (to keep it when the marker is written).
    seen: Mutex<HashMap<SecretPath, Seen>>,
    /// Every path the last listing found (soft-deleted ones included): a path not in it is
    /// new, so its write needs no read first (check-and-set 0 still guards a race).
    listed: Mutex<Option<std::collections::HashSet<SecretPath>>>,
    /// A merge bundle's manifest as last read or written, with its KV2 version.
    manifest: Mutex<Option<(u64, Option<Manifest>)>>,
    /// The key of a bundle manifest's digests.
    digests: crate::secret::Fingerprinter,
    /// What this run did to a bundle: wrote its intent (`writing`), met a conflict (the
    /// manifest is then not trusted again), and the paths whose write or delete failed.
    run: Mutex<BundleRun>,
    /// The token may not create the metadata of a new secret: its marker is written after
    /// its value (a run cut off in between leaves it unmarked).
    marker_after: std::sync::atomic::AtomicBool,
}

#[derive(Clone, Debug, Default)]
struct Seen {
    version: u64,
    custom: BTreeMap<String, String>,
    /// The digest of its value (merge bundles), when known.
    digest: Option<String>,
}

/// What one run did to a merge bundle (see [`VaultStore::run`](VaultStore)).
#[derive(Debug, Default)]
struct BundleRun {
    intent: bool,
    conflicted: bool,
    failed: std::collections::HashSet<SecretPath>,
}

/// A merge bundle's manifest, the KV2 secret at the bundle's own path
/// (`<mount>/<prefix>/<target>`, beside the folder of its secrets): the KV2 version and a
/// digest of every bundle secret. A MERGE marks it `writing` (keeping the last complete
/// generation as `previous`) before its first write and `complete` after its last one,
/// both with check-and-set; a SYNC reads the versions it names, so it never sees a bundle
/// half-written.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    vss_manifest: u32,
    state: ManifestState,
    secrets: BTreeMap<String, Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<BTreeMap<String, Entry>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ManifestState {
    Complete,
    Writing,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    version: u64,
    digest: String,
}

/// The key of the digests in bundle manifests. The manifest sits beside the values it
/// describes, under the same policy, so the digests need no secret key; they only have to
/// be stable from one run to the next.
const MANIFEST_KEY: &[u8] = b"vss bundle manifest";

impl VaultStore {
    /// Opens the location of `config` (plus `extra`, a bundle's target name) on `client`.
    pub async fn at(client: Arc<VaultClient>, config: &VaultConfig, extra: Option<&str>) -> Result<Self, StoreError> {
        let (mount, prefix) = match (&config.path, &config.mount) {
            (Some(path), _) => {
                let mount = client.mount_of(&path.value).await?;
                let full = join(&[&path.value]);
                let prefix = full.strip_prefix(&mount).unwrap_or("").to_string();
                (mount, join(&[&prefix]))
            }
            (None, Some(mount)) => {
                let declared = join(&[&mount.value]);
                let found = client.mount_of(&declared).await?;
                if found != declared {
                    return Err(StoreError::invalid(format!(
                        "`{declared}` is not a mount on {} (it is inside `{found}`): write `path: {declared}` instead",
                        client.address
                    )));
                }
                (found, join(&[config.prefix.as_ref().map_or("", |p| &p.value)]))
            }
            (None, None) => return Err(StoreError::invalid("a `vault` store needs `path` or `mount`")),
        };
        let prefix = join(&[&prefix, extra.unwrap_or("")]);
        Ok(Self {
            client,
            mount,
            prefix,
            bundle: extra.map(str::to_string),
            seen: Mutex::new(HashMap::new()),
            listed: Mutex::new(None),
            manifest: Mutex::new(None),
            digests: crate::secret::Fingerprinter::with_key(MANIFEST_KEY),
            run: Mutex::new(BundleRun::default()),
            marker_after: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn bundle_run(&self) -> std::sync::MutexGuard<'_, BundleRun> {
        self.run.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the bundle's manifest: its KV2 version (0 when there is none) and content.
    async fn read_manifest(&self) -> Result<(u64, Option<Manifest>), StoreError> {
        let api = self.api("data", &self.prefix);
        let answer = self.client.send(reqwest::Method::GET, &api, None, Call::Read).await?;
        let body = answer.json();
        let version = body["data"]["metadata"]["version"].as_u64().unwrap_or(0);
        let read = match answer.status {
            200 if !body["data"]["data"].is_null() => {
                let manifest = serde_json::from_value(body["data"]["data"].clone()).map_err(|e| {
                    StoreError::invalid(format!(
                        "`{}/{}` on {} is not a vss bundle manifest ({e}): it is the path of a bundle's manifest, move that secret away",
                        self.mount, self.prefix, self.client.address
                    ))
                })?;
                (version, Some(manifest))
            }
            200 | 404 => (version, None),
            status => {
                return Err(classify(status, &answer.body, Op::Read, &format!("GET {api}"), &self.client.address));
            }
        };
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = Some(read.clone());
        Ok(read)
    }

    /// The manifest as last read, or read now.
    async fn manifest(&self) -> Result<(u64, Option<Manifest>), StoreError> {
        let known = self.manifest.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match known {
            Some(known) => Ok(known),
            None => self.read_manifest().await,
        }
    }

    /// Writes the manifest with check-and-set on the version last seen.
    async fn write_manifest(&self, manifest: Manifest) -> Result<(), StoreError> {
        let (version, _) = self.manifest().await?;
        let api = self.api("data", &self.prefix);
        let data = serde_json::to_value(&manifest).expect("a manifest serializes");
        let body = json!({"options": {"cas": version}, "data": data});
        let answer = self.client.send(reqwest::Method::POST, &api, Some(&body), Call::Write).await?;
        if answer.status != 200 && answer.status != 204 {
            *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let error = classify(answer.status, &answer.body, Op::Write, &format!("POST {api}"), &self.client.address);
            if error.kind == ErrorKind::Conflict {
                self.bundle_run().conflicted = true;
            }
            return Err(error);
        }
        let written = answer.json()["data"]["version"].as_u64().unwrap_or(version + 1);
        *self.manifest.lock().unwrap_or_else(|e| e.into_inner()) = Some((written, Some(manifest)));
        Ok(())
    }

    /// Writes the custom metadata (with the ownership marker) of the secret at `full`.
    async fn write_marker(&self, full: &str, custom: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let api = self.api("metadata", full);
        let body = json!({ "custom_metadata": custom });
        let answer = self.client.send(reqwest::Method::POST, &api, Some(&body), Call::Write).await?;
        if answer.status != 200 && answer.status != 204 {
            return Err(classify(answer.status, &answer.body, Op::Write, &format!("POST {api}"), &self.client.address));
        }
        Ok(())
    }

    /// The bundle's secrets as last read or written: version and digest of each.
    fn entries(&self) -> BTreeMap<String, Entry> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.iter()
            .filter_map(|(path, s)| {
                let digest = s.digest.clone()?;
                Some((path.to_string(), Entry { version: s.version, digest }))
            })
            .collect()
    }

    /// Reads every secret `entries` names at the version it names, with its value; `None`
    /// when one of those versions is gone or differs from its digest (a MERGE rewrote the
    /// bundle meanwhile), with that secret's path.
    async fn read_versions(&self, entries: &BTreeMap<String, Entry>) -> Result<Result<LiveState, String>, StoreError> {
        let owned: Vec<(String, Entry)> = entries.iter().map(|(p, e)| (p.clone(), e.clone())).collect();
        let reads = futures::stream::iter(owned)
            .map(|(path, entry)| async move {
                let api = format!("{}?version={}", self.api("data", &join(&[&self.prefix, &path])), entry.version);
                let answer = self.client.send(reqwest::Method::GET, &api, None, Call::Read).await?;
                let body = answer.json();
                match answer.status {
                    200 if !body["data"]["data"].is_null() => {
                        let value = SecretValue::new(body["data"]["data"].clone());
                        let intact = self.digests.fingerprint_secret(&value) == entry.digest;
                        Ok((path, intact.then_some(value)))
                    }
                    200 | 404 => Ok((path, None)),
                    status => Err(classify(status, &answer.body, Op::Read, &format!("GET {api}"), &self.client.address)),
                }
            })
            .buffer_unordered(LIST_CONCURRENCY);
        let results: Vec<Result<(String, Option<SecretValue>), StoreError>> = reads.collect().await;
        let mut state = LiveState::new();
        for result in results {
            let (path, value) = result?;
            let Some(value) = value else { return Ok(Err(path)) };
            let path = SecretPath::parse(&path).map_err(StoreError::invalid)?;
            state.insert(path, LiveSecret::with_value(value, self.bundle.clone()));
        }
        Ok(Ok(state))
    }

    fn full(&self, path: &SecretPath) -> String {
        join(&[&self.prefix, path.as_str()])
    }

    fn api(&self, kind: &str, full: &str) -> String {
        join(&[&self.mount, kind, full])
    }

    fn remember(&self, path: &SecretPath, seen: Seen) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), seen);
    }

    fn recall(&self, path: &SecretPath) -> Option<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(path).cloned()
    }

    /// One LIST: the sub-folders and the secrets of `folder`, as full paths.
    async fn list_folder(&self, folder: String) -> Result<Listing, StoreError> {
        let api = self.api("metadata", &folder);
        let answer = self
            .client
            .send(reqwest::Method::from_bytes(b"LIST").expect("LIST is a method"), &api, None, Call::List)
            .await?;
        match answer.status {
            200 => {}
            404 => return Ok((Vec::new(), Vec::new())),
            status => {
                return Err(classify(status, &answer.body, Op::List, &format!("LIST {api}"), &self.client.address));
            }
        }
        let (mut folders, mut secrets) = (Vec::new(), Vec::new());
        for key in answer.json()["data"]["keys"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            let child = join(&[&folder, key]);
            if key.ends_with('/') { folders.push(child) } else { secrets.push(child) }
        }
        Ok((folders, secrets))
    }
}

/// Sub-folders and secrets of one folder.
type Listing = (Vec<String>, Vec<String>);

/// Folders listed at once while walking a tree.
const LIST_CONCURRENCY: usize = 16;

impl StoreKind for VaultStore {
    const NAME: &'static str = "vault";
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: true, merge_store: true, target: true },
        reads_values: true,
        value_shape: ValueShape::Object,
        min_value_bytes: 0,
        max_value_bytes: None,
        exact_numbers: false,
        ownership: true,
        atomic_commit: false,
    };
    const DEFAULTS_KEY: Option<&'static str> = Some("vault");
    type Config = VaultConfig;
    type Defaults = VaultDefaults;
    type Session = VaultSessions;

    fn describe(config: &VaultConfig) -> String {
        config.describe()
    }

    fn check(config: &VaultConfig, _: Role, _: &VaultDefaults, span: Span, out: &mut Vec<Diagnostic>) {
        match (&config.path, &config.mount, &config.prefix) {
            (Some(path), None, None) if path.value.trim_matches('/').trim().is_empty() => {
                out.push(Diagnostic::at(path.span, "`path` is empty"));
            }
            (Some(_), None, None) | (None, Some(_), _) => {}
            (None, None, _) => out.push(
                Diagnostic::at(span, "a `vault` store needs a location")
                    .with_label("write `path: <mount>/<folder>`, or `mount:` and `prefix:`"),
            ),
            (Some(path), _, _) => out.push(
                Diagnostic::at(path.span, "`path` and `mount`/`prefix` exclude each other")
                    .with_label("`path` already names the mount: the server is asked which part is the mount"),
            ),
        }
        for (key, value) in [("path", &config.path), ("mount", &config.mount), ("prefix", &config.prefix)] {
            let Some(value) = value else { continue };
            let trimmed = value.value.trim_matches('/');
            if let Some(bad) = trimmed.split('/').find(|s| matches!(*s, "." | "..") || (s.is_empty() && !trimmed.is_empty())) {
                let what = if bad.is_empty() { "an empty segment".to_string() } else { format!("a `{bad}` segment") };
                out.push(
                    Diagnostic::at(value.span, format!("`{key}` has {what}"))
                        .with_label("a Vault location is a plain path: write it without `.`, `..` or `//`"),
                );
            }
        }
    }

    fn locus(config: &VaultConfig, defaults: &VaultDefaults, _base_dir: &std::path::Path) -> Option<Locus> {
        let path = match (&config.path, &config.mount) {
            (Some(path), _) => path.value.clone(),
            (None, Some(mount)) => format!("{}/{}", mount.value, config.prefix.as_ref().map_or("", |p| &p.value)),
            (None, None) => return None,
        };
        let (address, namespace) = config.server(defaults);
        let server = format!(
            "Vault {}{}",
            address.as_deref().unwrap_or("(no address)"),
            namespace.map(|n| format!(" namespace {n}")).unwrap_or_default()
        );
        Some(Locus::segments(server, &path))
    }

    async fn open(
        config: &VaultConfig,
        ctx: &OpenContext<'_>,
        bundle: Option<&Bundle<'_>>,
    ) -> Result<Self, StoreError> {
        let client = ctx.session::<Self>().client(config, ctx.defaults::<Self>(), ctx.calls::<Self>()).await?;
        VaultStore::at(client, config, bundle.map(|b| b.target)).await
    }
}

impl Store for VaultStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        let mut found = Vec::new();
        let mut level = vec![self.prefix.clone()];
        while !level.is_empty() {
            let results: Vec<Result<Listing, StoreError>> = futures::stream::iter(level)
                .map(|f| self.list_folder(f))
                .buffer_unordered(LIST_CONCURRENCY)
                .collect()
                .await;
            level = Vec::new();
            for result in results {
                let (folders, secrets) = result?;
                level.extend(folders);
                found.extend(secrets);
            }
        }
        let mut paths = Vec::with_capacity(found.len());
        for full in found {
            let relative = full.strip_prefix(&self.prefix).unwrap_or(&full);
            paths.push(SecretPath::parse(relative).map_err(StoreError::invalid)?);
        }
        paths.sort();
        paths.dedup();
        if self.bundle.is_some() {
            // A bundle is read whole from here: nothing from an earlier read may reach its
            // manifest.
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        *self.listed.lock().unwrap_or_else(|e| e.into_inner()) = Some(paths.iter().cloned().collect());
        Ok(paths)
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        let api = self.api("data", &self.full(path));
        let answer = self.client.send(reqwest::Method::GET, &api, None, Call::Read).await?;
        let body = answer.json();
        let metadata = &body["data"]["metadata"];
        let custom: BTreeMap<String, String> = metadata["custom_metadata"]
            .as_object()
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string()))).collect())
            .unwrap_or_default();
        let version = metadata["version"].as_u64().unwrap_or(0);
        match answer.status {
            200 if !body["data"]["data"].is_null() => {
                let marked = (custom.get("managed-by").map(String::as_str) == Some("vss"))
                    .then(|| custom.get("vss-target").cloned())
                    .flatten();
                let owner = self.bundle.clone().or(marked);
                let value = SecretValue::new(body["data"]["data"].clone());
                let digest = self.bundle.is_some().then(|| self.digests.fingerprint_secret(&value));
                self.remember(path, Seen { version, custom, digest });
                Ok(Some(LiveSecret::with_value(value, owner).at_version(version)))
            }
            // Missing, or its latest version is deleted: the next write must still name the
            // current version for check-and-set.
            200 | 404 => {
                self.remember(path, Seen { version, custom, digest: None });
                Ok(None)
            }
            status => Err(classify(status, &answer.body, Op::Read, &format!("GET {api}"), &self.client.address)),
        }
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        if !value.is_object() {
            return Err(StoreError::invalid(format!(
                "secret `{path}` is not an object: Vault KV2 stores objects only"
            )));
        }
        let full = self.full(path);
        let known_new =
            self.listed.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|l| !l.contains(path));
        let seen = match self.recall(path) {
            Some(seen) => seen,
            None if known_new => Seen::default(),
            None => {
                self.read(path).await?;
                self.recall(path).unwrap_or_default()
            }
        };
        let mut custom = seen.custom.clone();
        let marked = self.bundle.is_some()
            || (custom.get("managed-by").map(String::as_str) == Some("vss")
                && custom.get("vss-target").map(String::as_str) == Some(owner));
        if !marked {
            custom.insert("managed-by".into(), "vss".into());
            custom.insert("vss-target".into(), owner.into());
        }
        // The marker goes first, so that a run cut off between the two calls leaves no
        // value of vss's without its marker. For a new secret that needs the `create`
        // capability on its metadata; a token without it gets the marker after the value.
        let mut marker_pending = !marked;
        if marker_pending && !(seen.version == 0 && self.marker_after.load(std::sync::atomic::Ordering::Relaxed)) {
            match self.write_marker(&full, &custom).await {
                Ok(()) => marker_pending = false,
                Err(e) if e.kind == ErrorKind::Permission && seen.version == 0 => {
                    tracing::debug!(path = %path, "no `create` on the metadata of new secrets: their marker follows the value");
                    self.marker_after.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let api = self.api("data", &full);
        let body = json!({"options": {"cas": seen.version}, "data": value.expose()});
        self.bundle_run().failed.insert(path.clone());
        let answer = self.client.send(reqwest::Method::POST, &api, Some(&body), Call::Write).await?;
        if answer.status != 200 && answer.status != 204 {
            // A stale version: forget it, so a retry starts from a fresh read.
            self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
            let error = classify(answer.status, &answer.body, Op::Write, &format!("POST {api}"), &self.client.address);
            if error.kind == ErrorKind::Conflict {
                self.bundle_run().conflicted = true;
            }
            return Err(error);
        }
        let version = answer.json()["data"]["version"].as_u64().unwrap_or(seen.version + 1);
        if marker_pending {
            self.write_marker(&full, &custom).await?;
        }
        let digest = self.bundle.is_some().then(|| self.digests.fingerprint_secret(value));
        self.remember(path, Seen { version, custom, digest });
        self.bundle_run().failed.remove(path);
        Ok(())
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        let api = self.api("metadata", &self.full(path));
        self.bundle_run().failed.insert(path.clone());
        let answer = self.client.send(reqwest::Method::DELETE, &api, None, Call::Delete).await?;
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
        // A metadata delete removes every version: the path is new again.
        if let Some(listed) = self.listed.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            listed.remove(path);
        }
        match answer.status {
            200 | 204 | 404 => {
                self.bundle_run().failed.remove(path);
                Ok(())
            }
            status => Err(classify(status, &answer.body, Op::Delete, &format!("DELETE {api}"), &self.client.address)),
        }
    }

    fn fingerprints(&self) -> Option<&crate::secret::Fingerprinter> {
        self.bundle.as_ref().map(|_| &self.digests)
    }

    /// A bundle whose manifest is missing or not `complete` (a MERGE died, or none has
    /// run since bundles had manifests) needs one: a change of the bundle's settings.
    async fn settings(&self) -> Result<Option<crate::diff::SettingsChange>, StoreError> {
        if self.bundle.is_none() {
            return Ok(None);
        }
        let (_, manifest) = self.read_manifest().await?;
        let kind = match &manifest {
            Some(m) if m.state == ManifestState::Complete => return Ok(None),
            Some(_) => crate::diff::ChangeKind::Modified,
            None => crate::diff::ChangeKind::Added,
        };
        Ok(Some(crate::diff::SettingsChange {
            subject: "bundle manifest".into(),
            kind,
            fields: vec!["state".into()],
            status: crate::diff::ChangeStatus::Planned,
            error: None,
        }))
    }

    /// Before a MERGE's first write: the manifest says `writing`, and keeps the last
    /// complete generation for readers.
    async fn prepare(&self, _paths: &[SecretPath], _owner: &str) -> Result<(), StoreError> {
        if self.bundle.is_none() {
            return Ok(());
        }
        let (_, manifest) = self.manifest().await?;
        let previous = match manifest {
            Some(m) if m.state == ManifestState::Complete => Some(m.secrets),
            Some(m) => m.previous,
            // The first MERGE of a bundle, or of one written before bundles had manifests:
            // what it holds now is the best there is.
            None => Some(self.entries()),
        };
        let intent = Manifest { vss_manifest: 1, state: ManifestState::Writing, secrets: self.entries(), previous };
        self.write_manifest(intent).await?;
        let mut run = self.bundle_run();
        run.intent = true;
        run.failed.clear();
        Ok(())
    }

    /// After a MERGE's last write: when every write and delete succeeded, the manifest
    /// names the new generation, `complete`.
    async fn finish(&self) -> Result<(), StoreError> {
        let done = {
            let run = self.bundle_run();
            self.bundle.is_some() && run.intent && run.failed.is_empty()
        };
        if !done {
            return Ok(());
        }
        let complete =
            Manifest { vss_manifest: 1, state: ManifestState::Complete, secrets: self.entries(), previous: None };
        match self.write_manifest(complete).await {
            Ok(()) => {}
            // Another MERGE of this bundle marked it `writing` after us: it read what we
            // wrote (or meets it by check-and-set) and completes the manifest itself.
            Err(e) if e.kind == ErrorKind::Conflict => {
                let (_, now) = self.read_manifest().await?;
                if now.is_none_or(|m| m.state != ManifestState::Writing) {
                    return Err(e);
                }
                tracing::debug!(bundle = ?self.bundle, "another MERGE is writing this bundle: it completes the manifest");
            }
            Err(e) => return Err(e),
        }
        self.bundle_run().intent = false;
        Ok(())
    }

    /// A MERGE's read of its bundle: the manifest's versions and digests, when it is
    /// `complete`, this run met no conflict, and a listing finds exactly its secrets.
    async fn recorded_state(&self) -> Result<Option<LiveState>, StoreError> {
        if self.bundle.is_none() || self.bundle_run().conflicted {
            return Ok(None);
        }
        let (_, manifest) = self.manifest().await?;
        let Some(manifest) = manifest.filter(|m| m.state == ManifestState::Complete) else { return Ok(None) };
        let listed = self.list().await?;
        if listed.len() != manifest.secrets.len() || listed.iter().any(|p| !manifest.secrets.contains_key(p.as_str())) {
            return Ok(None);
        }
        let mut state = LiveState::new();
        for (path, entry) in manifest.secrets {
            let path = SecretPath::parse(&path).map_err(StoreError::invalid)?;
            let seen = Seen { version: entry.version, custom: BTreeMap::new(), digest: Some(entry.digest.clone()) };
            self.remember(&path, seen);
            let live = LiveSecret {
                value: crate::secret::LiveValue::Fingerprint(entry.digest),
                owner: self.bundle.clone(),
                drift: false,
                version: Some(entry.version.to_string()),
            };
            state.insert(path, live);
        }
        Ok(Some(state))
    }

    /// A SYNC's read of a bundle: every secret at the version the manifest names (the last
    /// complete generation while a MERGE is writing). A bundle without a manifest (none
    /// written yet) is listed and read as it is.
    async fn complete_state(&self) -> Result<Option<LiveState>, StoreError> {
        if self.bundle.is_none() {
            return Ok(None);
        }
        let mut torn = None;
        for _ in 0..2 {
            let (_, manifest) = self.read_manifest().await?;
            let Some(manifest) = manifest else { return Ok(None) };
            let entries = match manifest.state {
                ManifestState::Complete => manifest.secrets,
                ManifestState::Writing => manifest.previous.ok_or_else(|| {
                    StoreError::new(
                        ErrorKind::NotFound,
                        format!(
                            "the bundle at `{}/{}` was never completely written: a MERGE is writing it or died",
                            self.mount, self.prefix
                        ),
                    )
                    .with_hint("run the MERGE again (`vss pipeline --merge-only`)")
                })?,
            };
            match self.read_versions(&entries).await? {
                Ok(state) => return Ok(Some(state)),
                Err(path) => torn = Some(path),
            }
        }
        let path = torn.expect("a second attempt follows a torn read");
        Err(StoreError::new(
            ErrorKind::Conflict,
            format!(
                "the bundle at `{}/{}` changed while it was read (the version of `{path}` its manifest names is gone): a MERGE is rewriting it, or died while deleting",
                self.mount, self.prefix
            ),
        )
        .with_hint("run the MERGE again (`vss pipeline --merge-only`), then the SYNC"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Response bodies as recorded from an OpenBao 2.7 dev server.
    const DENIED: &str = r#"{"errors":["permission denied"]}"#;
    const CAS: &str = r#"{"errors":["check-and-set parameter did not match the current version"]}"#;
    const SEALED: &str = r#"{"errors":["Vault is sealed"]}"#;
    const INTERNAL: &str = r#"{"errors":["1 error occurred:\n\t* internal error\n\n"]}"#;
    const NO_ROUTE: &str = r#"{"errors":["no handler for route \"nomount/data/x\". route entry not found."]}"#;

    #[test]
    fn permission_denied_names_the_path_and_capability() {
        let e = classify(403, DENIED, Op::Write, "POST secret/data/app/db", "http://v:8200");
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(
            e.to_string(),
            "permission denied: POST secret/data/app/db at http://v:8200: the token lacks the `create/update` capability on this path (permission denied)"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn check_and_set_mismatch_is_a_conflict() {
        let e = classify(400, CAS, Op::Write, "POST secret/data/x", "http://v");
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(!e.is_retryable(), "conflicts are retried by the engine from a fresh read, not blindly");
    }

    #[test]
    fn sealed_and_server_errors_are_retryable_and_name_the_address() {
        let e = classify(503, SEALED, Op::Read, "GET secret/data/x", "http://v:8200");
        assert_eq!(e.to_string(), "unavailable: Vault at http://v:8200 is sealed");
        assert!(e.is_retryable());
        for status in [429, 500, 502, 504] {
            assert!(classify(status, INTERNAL, Op::Read, "GET x", "http://v").is_retryable(), "{status}");
        }
    }

    #[test]
    fn other_answers_are_permanent_and_keep_the_server_reason() {
        let e = classify(404, NO_ROUTE, Op::Read, "GET nomount/data/x", "http://v");
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("no handler for route"), "{e}");
        let e = classify(400, "not json", Op::Write, "POST x", "http://v");
        assert_eq!(e.to_string(), "POST x at http://v: HTTP 400", "the status is named once");
        let e = classify(400, r#"{"errors":["bad input"]}"#, Op::Write, "POST x", "http://v");
        assert_eq!(e.to_string(), "POST x at http://v: bad input (HTTP 400)");
    }

    #[test]
    fn credentials_are_redacted_in_debug() {
        let auth = VaultAuth::Approle(AppRoleAuth {
            mount: "approle".into(),
            role_id: Sensitive("role-123".into()),
            secret_id: Sensitive("s3cr3t".into()),
        });
        let debug = format!("{auth:?}");
        assert!(!debug.contains("s3cr3t") && !debug.contains("role-123"), "{debug}");
        assert_eq!(auth.describe(), "approle at auth/approle");
    }

    #[test]
    fn paths_join_without_stray_slashes() {
        assert_eq!(join(&["secret/", "/merged/", "", "Base", "app/db"]), "secret/merged/Base/app/db");
        assert_eq!(join(&["", ""]), "");
    }
}
