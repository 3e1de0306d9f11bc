//! The `kubernetes` store: Kubernetes Secrets as a source and a target, with kube-rs.
//!
//! ```yaml
//! kubernetes:                             # defaults (every field optional)
//!   # kubeconfig: ~/.kube/config          # default: $KUBECONFIG, ~/.kube/config, in-cluster
//!   context: prod-eu
//! sources:
//!   cluster: { kubernetes: { namespace: legacy, label_selector: "team=platform" } }
//! targets:
//!   Production:
//!     imports: [common]
//!     kubernetes:
//!       context: prod-eu                  # a kubeconfig context (default: the current one)
//!       namespace: app                    # default: the context's namespace
//!       name_template: "app-{path}"       # one Secret per secret path (the default layout)
//!       type: Opaque                      # or kubernetes.io/tls, kubernetes.io/dockerconfigjson…
//!       labels: { team: platform }
//!       # immutable: true                 # create Secrets immutable
//!       # replace_immutable: true         # delete and re-create them when they must change
//!   Worker:
//!     kubernetes:
//!       namespace: worker
//!       name: worker-env                  # layout single: every key in this one Secret
//!       names: path_key                   # how secrets become keys (key | path_key | path)
//! ```
//!
//! - **Credentials**: the kubeconfig (`kubeconfig:`, else `$KUBECONFIG`, else
//!   `~/.kube/config`) and its `context:` (default: the current context); without a
//!   kubeconfig, the in-cluster service account. Server URL, certificates and token all
//!   come from there, so one config reaches several clusters by naming their contexts.
//! - **Layouts**: by default each secret path is one Secret named by `name_template`
//!   (`{path}` with every `/` as `-`), each key of the secret's object one data key. The
//!   name must be a DNS subdomain (RFC 1123: lower case, digits, `-`, `.`, at most 253): a
//!   path that cannot be one is refused when the plan is made, naming it. The exact path is
//!   recorded in the annotation `vss.dev/path`, so names map back to paths; a Secret
//!   without it reads as the path that is its name. With `name:` (`layout: single`) every
//!   key of every secret goes into that one Secret, named by the shared flattening rules
//!   ([`crate::flatten`], `names:`, `prefix:`, `uppercase:`; `-` and `.` are kept).
//! - **Values**: each data key holds a string as its bytes, any other JSON value as its
//!   JSON text (read back as that text), `{"$binary": "<base64>"}` as those bytes. Data
//!   keys are `[-._a-zA-Z0-9]`, at most 253 characters; a Secret holds at most 1 MiB.
//!   `type:` checks the keys its type requires (`tls.crt` and `tls.key`, `.dockerconfigjson`…)
//!   when the plan is made.
//! - **Writes**: server-side apply with field manager `vss` (forced: vss owns the fields it
//!   writes), only when something changed. Each Secret gets the labels
//!   `app.kubernetes.io/managed-by=vss` and `vss.dev/target=<target>` (label rules:
//!   `[A-Za-z0-9._-]`, at most 63 characters, alphanumeric at both ends) and the annotation
//!   `vss.dev/target` with the exact target name (ownership is read from it); in the single
//!   layout the annotation `vss.dev/keys` lists the keys vss manages (only those are its
//!   own; other keys of the Secret are left alone). A write of a Secret that was read
//!   carries its `resourceVersion`: a Secret changed since is a conflict, and the engine
//!   starts over from a fresh read. An immutable Secret, or one of another `type`, cannot
//!   change in place: with `replace_immutable: true` it is deleted (only if unchanged since
//!   it was read) and created anew, otherwise the write fails naming it. Labels that differ
//!   from the config, or another type, on a Secret vss owns are metadata drift. One Secret
//!   per path holds exactly its secret's keys: a key someone else added (which an apply
//!   leaves to its manager) is removed by a merge patch after the apply.
//! - **Deletes**: only Secrets (or, in the single layout, keys) vss owns, only with
//!   `delete_orphans`; a delete is conditional on the `resourceVersion` read. A single
//!   Secret left without keys stays (empty).
//! - **RBAC**: `get`, `list` on `secrets` to read; `patch`, `create`, `delete` to write.
//! - Calls in `stats`: list pages (`list`), each get (`read`), each apply and create
//!   (`write`), each delete (`delete`). Listing returns the data, so a target of many
//!   Secrets is read in one call per 500.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, Preconditions};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::error::ErrorKind;
use crate::flatten::{FlattenOptions, Naming};
use crate::secret::{LiveSecret, LiveValue, SecretMap, SecretPath, SecretValue};
use crate::span::{Span, Spanned};
use crate::store::stats::{Call, CallCounter};
use crate::store::{Bundle, Capabilities, Locus, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// The label that marks what vss manages.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The label (sanitised) and annotation (exact) naming the target.
const TARGET: &str = "vss.dev/target";
/// The annotation recording a Secret's secret path (per-path layout).
const PATH: &str = "vss.dev/path";
/// The annotation listing the keys vss manages (single layout), as a JSON array.
const KEYS: &str = "vss.dev/keys";
/// The field manager of vss's server-side applies.
const MANAGER: &str = "vss";
/// The largest Secret Kubernetes stores (the sum of its data).
const MAX_SECRET: usize = 1_048_576;
/// Items per list page.
const PAGE: u32 = 500;

/// How a target's secrets are laid out in Secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One Secret per secret path, named by `name_template` (the default without `name`).
    PerPath,
    /// Every key in one Secret, `name` (the default with `name`).
    Single,
}

/// `kubernetes:` of a source or a target: Secrets in one namespace of one cluster.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The kubeconfig context (default: the top-level `kubernetes.context`, else the
    /// kubeconfig's current context).
    pub context: Option<Spanned<String>>,
    /// The namespace (default: the context's namespace, else `default`).
    pub namespace: Option<Spanned<String>>,
    /// `per_path` (default) or `single` (default when `name` is set).
    pub layout: Option<Spanned<Layout>>,
    /// Per-path layout: the Secret name of a path, with `{path}` standing for the path
    /// with every `/` as `-` (default `{path}`).
    pub name_template: Option<Spanned<String>>,
    /// Single layout: the one Secret's name.
    pub name: Option<Spanned<String>>,
    /// Target only: the type of the Secrets (default `Opaque`); `kubernetes.io/tls`,
    /// `kubernetes.io/dockerconfigjson`, `kubernetes.io/dockercfg`,
    /// `kubernetes.io/basic-auth` and `kubernetes.io/ssh-auth` check their required keys.
    #[serde(rename = "type")]
    pub secret_type: Option<Spanned<String>>,
    /// Target only: labels of the Secrets vss writes, besides its own.
    pub labels: Option<BTreeMap<String, String>>,
    /// Target only: create Secrets immutable.
    pub immutable: Option<bool>,
    /// Target only: an immutable Secret (or one of another type) that must change is
    /// deleted and created anew; without it, such a write fails naming the Secret.
    pub replace_immutable: Option<bool>,
    /// Source only: read only the Secrets this label selector matches (`team=platform`).
    pub label_selector: Option<Spanned<String>>,
    /// Single layout: how secrets become keys: `key` (default), `path_key` or `path`.
    pub names: Option<Naming>,
    /// Single layout: prepended to every key.
    pub prefix: Option<String>,
    /// Single layout: upper-case every key (default false).
    pub uppercase: Option<bool>,
}

/// The top-level `kubernetes:` block.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubernetesDefaults {
    /// The kubeconfig file (default: `$KUBECONFIG`, else `~/.kube/config`, else the
    /// in-cluster service account). Relative paths are relative to the config file.
    pub kubeconfig: Option<Spanned<String>>,
    /// The context of locations that name none (default: the current context).
    pub context: Option<Spanned<String>>,
}

/// One connected cluster: its client, the context's namespace and the server's address.
#[derive(Clone)]
struct Cluster {
    client: kube::Client,
    namespace: String,
    server: String,
}

/// Which cluster: a kubeconfig file (none: the default one, or in-cluster) and a context.
type ClusterKey = (Option<std::path::PathBuf>, Option<String>);

/// One client per kubeconfig and context, shared by a run's locations.
#[derive(Default)]
pub struct KubernetesSessions {
    clusters: tokio::sync::Mutex<HashMap<ClusterKey, Cluster>>,
}

impl std::fmt::Debug for KubernetesSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KubernetesSessions")
    }
}

impl KubernetesSessions {
    async fn cluster(&self, kubeconfig: Option<std::path::PathBuf>, context: Option<String>) -> Result<Cluster, StoreError> {
        let mut clusters = self.clusters.lock().await;
        let key = (kubeconfig.clone(), context.clone());
        if let Some(cluster) = clusters.get(&key) {
            return Ok(cluster.clone());
        }
        let which = context.as_deref().map_or_else(|| "the current context".to_string(), |c| format!("context `{c}`"));
        let hint = "set KUBECONFIG or `kubernetes.kubeconfig`, and name a context it has";
        let options = kube::config::KubeConfigOptions { context: context.clone(), ..Default::default() };
        let mut config = match &kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    StoreError::invalid(format!("cannot read the kubeconfig {}: {e}", path.display())).with_hint(hint)
                })?;
                kube::Config::from_custom_kubeconfig(file, &options).await.map_err(|e| {
                    StoreError::invalid(format!("kubeconfig {}, {which}: {e}", path.display())).with_hint(hint)
                })?
            }
            None if context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| StoreError::invalid(format!("kubeconfig, {which}: {e}")).with_hint(hint))?,
            None => kube::Config::infer().await.map_err(|e| {
                StoreError::invalid(format!("no kubeconfig and not in a cluster: {e}")).with_hint(hint)
            })?,
        };
        let limit = crate::store::timeouts();
        config.connect_timeout = Some(limit.connect);
        config.read_timeout = Some(limit.request);
        config.write_timeout = Some(limit.request);
        let server = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let namespace = config.default_namespace.clone();
        let client = kube::Client::try_from(config)
            .map_err(|e| StoreError::invalid(format!("cannot set up the Kubernetes client for {server}: {e}")))?;
        let cluster = Cluster { client, namespace, server };
        clusters.insert(key, cluster.clone());
        Ok(cluster)
    }
}

/// Whether `name` is a DNS subdomain (RFC 1123) as Kubernetes names Secrets: lower-case
/// letters, digits, `-` and `.`, alphanumeric at both ends of each label, at most 253.
pub fn is_dns_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// Why Kubernetes would refuse `key` as a data key, if it would.
pub fn key_error(key: &str) -> Option<String> {
    if key.is_empty() || key.len() > 253 {
        return Some(format!("key `{key}` must be 1 to 253 characters"));
    }
    if let Some(bad) = key.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Some(format!("key `{key}` holds `{bad}` (a Secret's keys are letters, digits, `-`, `_` and `.`)"));
    }
    if key == "." || key == ".." || key.starts_with("..") {
        return Some(format!("key `{key}` cannot be `.` or `..` or start with `..`"));
    }
    None
}

/// A label value as Kubernetes accepts it: `[A-Za-z0-9._-]`, alphanumeric at both ends,
/// at most 63 characters (other characters become `_`).
pub fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .take(63)
        .collect();
    mapped.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string()
}

/// The keys a Secret of `secret_type` must have: all of them, or (basic-auth) one of them.
fn required_keys(secret_type: &str) -> (&'static [&'static str], bool) {
    match secret_type {
        "kubernetes.io/tls" => (&["tls.crt", "tls.key"], true),
        "kubernetes.io/dockerconfigjson" => (&[".dockerconfigjson"], true),
        "kubernetes.io/dockercfg" => (&[".dockercfg"], true),
        "kubernetes.io/ssh-auth" => (&["ssh-privatekey"], true),
        "kubernetes.io/basic-auth" => (&["username", "password"], false),
        _ => (&[], true),
    }
}

/// Why a Secret of `secret_type` with `keys` would be refused, if it would.
fn type_error<'k>(secret_type: &str, keys: impl Iterator<Item = &'k str> + Clone) -> Option<String> {
    let (required, all) = required_keys(secret_type);
    if required.is_empty() {
        return None;
    }
    let has = |k: &str| keys.clone().any(|key| key == k);
    let missing: Vec<&str> = required.iter().copied().filter(|k| !has(k)).collect();
    let refused = if all { !missing.is_empty() } else { missing.len() == required.len() };
    refused.then(|| {
        let list = missing.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(if all { " and " } else { " or " });
        format!("a Secret of type `{secret_type}` needs {list}")
    })
}

impl KubernetesConfig {
    fn layout(&self) -> Layout {
        match (&self.layout, &self.name) {
            (Some(layout), _) => layout.value,
            (None, Some(_)) => Layout::Single,
            (None, None) => Layout::PerPath,
        }
    }

    fn template(&self) -> &str {
        self.name_template.as_ref().map_or("{path}", |t| &t.value)
    }

    fn secret_type(&self) -> &str {
        self.secret_type.as_ref().map_or("Opaque", |t| &t.value)
    }

    /// The Secret name of `path` (per-path layout), or why it has none.
    pub fn name_of(&self, path: &SecretPath) -> Result<String, String> {
        let name = self.template().replace("{path}", &path.as_str().replace('/', "-"));
        if is_dns_subdomain(&name) {
            Ok(name)
        } else {
            Err(format!(
                "its Secret name `{name}` is not a DNS subdomain (lower-case letters, digits, `-` and `.`, at most 253)"
            ))
        }
    }

    /// The path a Secret named `name` holds, when it is one of this location's: the path
    /// its annotation records when that maps to `name`, else the name's `{path}` part.
    fn path_of(&self, name: &str, recorded: Option<&str>) -> Option<SecretPath> {
        let (before, after) = self.template().split_once("{path}")?;
        let part = name.strip_prefix(before)?.strip_suffix(after).filter(|p| !p.is_empty())?;
        if let Some(path) = recorded.and_then(|r| SecretPath::parse(r).ok())
            && self.name_of(&path).ok().as_deref() == Some(name)
        {
            return Some(path);
        }
        SecretPath::parse(part).ok()
    }

    fn flattening(&self) -> FlattenOptions {
        FlattenOptions {
            naming: self.names.unwrap_or_default(),
            prefix: self.prefix.clone().unwrap_or_default(),
            uppercase: self.uppercase.unwrap_or(false),
            keep: "-.",
        }
    }
}

/// Secrets in one namespace.
pub struct KubernetesStore {
    api: Api<Secret>,
    config: KubernetesConfig,
    namespace: String,
    server: String,
    calls: Arc<CallCounter>,
    /// What the last listing (or get) found: Secret name -> the Secret (`None`: absent).
    seen: Mutex<HashMap<String, Option<Secret>>>,
    /// Whether `seen` holds every Secret of the namespace (a listing without a selector):
    /// a name it does not hold is absent, without a get.
    complete: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for KubernetesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesStore").field("server", &self.server).field("namespace", &self.namespace).finish()
    }
}

/// A data value as a JSON value: its UTF-8 text, else `{"$binary": …}`.
fn decode(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_string()),
        Err(_) => serde_json::json!({"$binary": base64::engine::general_purpose::STANDARD.encode(bytes)}),
    }
}

/// The inverse of [`decode`]; any other value is held as its JSON text.
fn encode(value: &Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::String(text) => Ok(text.clone().into_bytes()),
        Value::Object(map) if map.len() == 1 && map.get("$binary").is_some_and(Value::is_string) => {
            let b64 = map["$binary"].as_str().unwrap_or_default();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| StoreError::invalid(format!("`$binary` is not base64: {e}")))
        }
        other => {
            let mut text = String::new();
            crate::secret::canonical_json(other, &mut text);
            Ok(text.into_bytes())
        }
    }
}

/// A Secret's data as a value: an object of its keys.
fn data_value(secret: &Secret) -> Value {
    Value::Object(secret.data.iter().flatten().map(|(k, v)| (k.clone(), decode(&v.0))).collect())
}

impl KubernetesStore {
    fn labels(&self, owner: &str) -> BTreeMap<String, String> {
        let mut labels = self.config.labels.clone().unwrap_or_default();
        labels.insert(MANAGED_BY.into(), "vss".into());
        labels.insert(TARGET.into(), label_value(owner));
        labels
    }

    fn api_error(&self, error: kube::Error, what: &str, name: &str) -> StoreError {
        fail(error, what, &format!("{}/{name}", self.namespace), &self.server)
    }

    /// The Secret `name`: as last listed or got, else got now.
    async fn secret(&self, name: &str) -> Result<Option<Secret>, StoreError> {
        if let Some(seen) = self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(seen.clone());
        }
        if self.complete.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(None);
        }
        self.calls.count(Call::Read);
        let secret = self.api.get_opt(name).await.map_err(|e| self.api_error(e, "get Secret", name))?;
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), secret.clone());
        Ok(secret)
    }

    fn remember(&self, name: &str, secret: Option<Secret>) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(name.to_string(), secret);
    }

    /// The target that owns `secret`, by its marker.
    fn owner(secret: &Secret) -> Option<String> {
        let labels = secret.metadata.labels.as_ref()?;
        (labels.get(MANAGED_BY).map(String::as_str) == Some("vss"))
            .then(|| secret.metadata.annotations.as_ref()?.get(TARGET).cloned())
            .flatten()
    }

    /// Whether an owned Secret's metadata differs from what the config asks for.
    fn drifted(&self, secret: &Secret) -> bool {
        let labels = secret.metadata.labels.clone().unwrap_or_default();
        let wrong_labels = self.config.labels.iter().flatten().any(|(k, v)| labels.get(k) != Some(v));
        let wrong_type = secret.type_.as_deref().unwrap_or("Opaque") != self.config.secret_type();
        let not_immutable = self.config.immutable == Some(true) && secret.immutable != Some(true);
        wrong_labels || wrong_type || not_immutable
    }

    /// Every Secret of the namespace (that the source's selector matches), by name.
    async fn list_all(&self) -> Result<BTreeMap<String, Secret>, StoreError> {
        let mut params = ListParams::default().limit(PAGE);
        if let Some(selector) = &self.config.label_selector {
            params = params.labels(&selector.value);
        }
        let mut out = BTreeMap::new();
        loop {
            self.calls.count(Call::List);
            let page = self.api.list(&params).await.map_err(|e| self.api_error(e, "list Secrets", ""))?;
            for secret in page.items {
                if let Some(name) = secret.metadata.name.clone() {
                    out.insert(name, secret);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.clear();
        seen.extend(out.iter().map(|(name, secret)| (name.clone(), Some(secret.clone()))));
        self.complete.store(self.config.label_selector.is_none(), std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    /// The single layout's Secret name.
    fn single_name(&self) -> &str {
        self.config.name.as_ref().map_or("", |n| n.value.as_str())
    }

    /// The keys vss manages in the single layout's Secret (its `vss.dev/keys`).
    fn managed_keys(secret: &Secret) -> BTreeSet<String> {
        if Self::owner(secret).is_none() {
            return BTreeSet::new();
        }
        let recorded = secret.metadata.annotations.as_ref().and_then(|a| a.get(KEYS));
        recorded.and_then(|text| serde_json::from_str(text).ok()).unwrap_or_default()
    }

    /// Server-side applies `data` as Secret `name` of `owner`, with `annotations`; when
    /// the Secret was read, on condition that it is unchanged since.
    async fn apply(
        &self,
        name: &str,
        data: BTreeMap<String, Vec<u8>>,
        owner: &str,
        mut annotations: BTreeMap<String, String>,
        existing: Option<&Secret>,
    ) -> Result<(), StoreError> {
        let size: usize = data.values().map(Vec::len).sum();
        if size > MAX_SECRET {
            return Err(StoreError::invalid(format!(
                "Secret {}/{name} would hold {size} bytes, over Kubernetes' limit of {MAX_SECRET}; nothing written",
                self.namespace
            )));
        }
        annotations.insert(TARGET.into(), owner.into());
        let changed = |secret: &Secret| {
            let old: BTreeMap<&str, &[u8]> =
                secret.data.iter().flatten().map(|(k, v)| (k.as_str(), v.0.as_slice())).collect();
            let new: BTreeMap<&str, &[u8]> = data.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
            old != new || secret.type_.as_deref().unwrap_or("Opaque") != self.config.secret_type()
        };
        let mut condition = existing.and_then(|s| s.metadata.resource_version.clone());
        if let Some(secret) = existing
            && changed(secret)
            && (secret.immutable == Some(true) || secret.type_.as_deref().unwrap_or("Opaque") != self.config.secret_type())
        {
            let why = if secret.immutable == Some(true) { "is immutable" } else { "has another type" };
            if self.config.replace_immutable != Some(true) {
                return Err(StoreError::invalid(format!(
                    "Secret {}/{name} {why}, so it cannot change in place; nothing written",
                    self.namespace
                ))
                .with_hint("set `replace_immutable: true` to let vss delete it and create it anew"));
            }
            self.delete_secret(name, secret).await?;
            condition = None;
        }
        for bytes in data.values() {
            // Data goes out as base64: an error that echoes it must not print it.
            crate::scrub::remember_encoded(&base64::engine::general_purpose::STANDARD.encode(bytes));
        }
        let mut body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": self.labels(owner),
                "annotations": annotations,
            },
            "type": self.config.secret_type(),
            "data": data.iter().map(|(k, v)| (k.clone(), Value::String(base64::engine::general_purpose::STANDARD.encode(v)))).collect::<serde_json::Map<_, _>>(),
        });
        if let Some(version) = condition {
            body["metadata"]["resourceVersion"] = Value::String(version);
        }
        if self.config.immutable == Some(true) {
            body["immutable"] = Value::Bool(true);
        }
        self.calls.count(Call::Write);
        let params = PatchParams::apply(MANAGER).force();
        let mut applied =
            self.api.patch(name, &params, &Patch::Apply(&body)).await.map_err(|e| self.api_error(e, "apply Secret", name))?;
        // One Secret per path holds exactly the secret's keys; an apply keeps keys other
        // managers own (someone's `kubectl edit`), so those are removed explicitly, on
        // condition that the Secret is still as applied. The single layout leaves them.
        let foreign: Vec<String> =
            applied.data.iter().flatten().map(|(k, _)| k.clone()).filter(|k| !data.contains_key(k)).collect();
        if self.config.layout() == Layout::PerPath && !foreign.is_empty() {
            let removal = serde_json::json!({
                "metadata": { "resourceVersion": applied.metadata.resource_version },
                "data": foreign.iter().map(|k| (k.clone(), Value::Null)).collect::<serde_json::Map<_, _>>(),
            });
            let params = PatchParams { field_manager: Some(MANAGER.to_string()), ..PatchParams::default() };
            self.calls.count(Call::Write);
            applied = self
                .api
                .patch(name, &params, &Patch::Merge(&removal))
                .await
                .map_err(|e| self.api_error(e, "remove other keys of Secret", name))?;
        }
        self.remember(name, Some(applied));
        Ok(())
    }

    /// Deletes Secret `name`, on condition that it is still `secret` as read.
    async fn delete_secret(&self, name: &str, secret: &Secret) -> Result<(), StoreError> {
        let preconditions = Preconditions {
            resource_version: secret.metadata.resource_version.clone(),
            uid: secret.metadata.uid.clone(),
        };
        let params = DeleteParams { preconditions: Some(preconditions), ..DeleteParams::default() };
        self.calls.count(Call::Delete);
        match self.api.delete(name, &params).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(self.api_error(e, "delete Secret", name)),
        }
        self.remember(name, None);
        Ok(())
    }
}

/// A kube error as a store error: `what` was being done to `object` at `server`.
fn fail(error: kube::Error, what: &str, object: &str, server: &str) -> StoreError {
    let object = object.trim_end_matches('/');
    match error {
        kube::Error::Api(status) => {
            let message = format!(
                "{what} {object} at {server}: {} ({} {})",
                crate::store::short(&status.message),
                status.code,
                status.reason
            );
            match status.code {
                401 => StoreError::permission(message)
                    .with_hint("the kubeconfig's credentials were refused: log in again, or check the token"),
                403 => StoreError::permission(message).with_hint(
                    "grant the caller `get`, `list`, `patch`, `create` and `delete` on `secrets` in the namespace",
                ),
                404 => StoreError::not_found(message),
                409 => StoreError::conflict(message),
                429 => StoreError::new(ErrorKind::Quota, message).retry_after(std::time::Duration::from_secs(1)),
                500 | 502 | 503 | 504 => StoreError::unavailable(message),
                _ => StoreError::invalid(message),
            }
        }
        other => {
            let text = crate::store::causes(&other);
            if text.contains("timed out") || text.contains("deadline") || text.contains("elapsed") {
                crate::store::timed_out(&format!("{what} {object}"), server, &crate::store::short(&text))
            } else {
                StoreError::unavailable(format!("{what} {object} at {server}: {}", crate::store::short(&text)))
            }
        }
    }
}

impl StoreKind for KubernetesStore {
    const NAME: &'static str = "kubernetes";
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: true, merge_store: false, target: true },
        reads_values: true,
        value_shape: ValueShape::TextMap,
        min_value_bytes: 0,
        max_value_bytes: Some(MAX_SECRET),
        exact_numbers: true,
        ownership: true,
        atomic_commit: false,
    };
    const DEFAULTS_KEY: Option<&'static str> = Some("kubernetes");
    type Config = KubernetesConfig;
    type Defaults = KubernetesDefaults;
    type Session = KubernetesSessions;

    fn capabilities_of(config: &KubernetesConfig) -> Capabilities {
        match config.layout() {
            Layout::PerPath => Self::CAPABILITIES,
            // One Secret: flat names, written together by one apply.
            Layout::Single => Capabilities { value_shape: ValueShape::FlatStrings, atomic_commit: true, ..Self::CAPABILITIES },
        }
    }

    fn capabilities(&self) -> Capabilities {
        Self::capabilities_of(&self.config)
    }

    fn describe(config: &KubernetesConfig) -> String {
        let context = config.context.as_ref().map_or("", |c| c.value.as_str());
        let namespace = config.namespace.as_ref().map_or("(default namespace)", |n| n.value.as_str());
        let at = if context.is_empty() { namespace.to_string() } else { format!("{context}/{namespace}") };
        match config.layout() {
            Layout::Single => format!("kubernetes {at} secret {}", config.name.as_ref().map_or("", |n| n.value.as_str())),
            Layout::PerPath => format!("kubernetes {at} {}", config.template()),
        }
    }

    fn check(config: &KubernetesConfig, role: Role, _defaults: &KubernetesDefaults, span: Span, out: &mut Vec<Diagnostic>) {
        if let Some(namespace) = &config.namespace
            && (!is_dns_subdomain(&namespace.value) || namespace.value.contains('.') || namespace.value.len() > 63)
        {
            out.push(
                Diagnostic::at(namespace.span, format!("`{}` is not a namespace name", namespace.value))
                    .with_label("namespaces are lower-case letters, digits and `-`, at most 63"),
            );
        }
        match (config.layout(), &config.name, &config.name_template) {
            (Layout::Single, None, _) => out.push(
                Diagnostic::at(span, "`layout: single` needs the Secret's `name`")
                    .with_label("write `name:` here"),
            ),
            (Layout::Single, Some(_), Some(template)) => out.push(
                Diagnostic::at(template.span, "`name_template` is for the per-path layout")
                    .with_label("with `name`, every key goes into that one Secret"),
            ),
            (Layout::PerPath, Some(name), _) => out.push(
                Diagnostic::at(name.span, "`name` is for `layout: single`")
                    .with_label("use `name_template` for one Secret per path"),
            ),
            _ => {}
        }
        if let Some(name) = &config.name
            && !is_dns_subdomain(&name.value)
        {
            out.push(
                Diagnostic::at(name.span, format!("`{}` is not a Secret name", name.value))
                    .with_label("lower-case letters, digits, `-` and `.` (RFC 1123), at most 253"),
            );
        }
        if let Some(template) = &config.name_template {
            let holes = template.value.matches("{path}").count();
            if holes != 1 {
                out.push(
                    Diagnostic::at(template.span, "`name_template` must hold `{path}` exactly once")
                        .with_label("e.g. `app-{path}`: every path needs its own name"),
                );
            } else if !is_dns_subdomain(&template.value.replace("{path}", "x")) {
                out.push(
                    Diagnostic::at(template.span, format!("`{}` cannot make Secret names", template.value))
                        .with_label("around `{path}`: lower-case letters, digits, `-` and `.` (RFC 1123)"),
                );
            }
        }
        if config.layout() == Layout::PerPath {
            for (key, set) in
                [("names", config.names.is_some()), ("prefix", config.prefix.is_some()), ("uppercase", config.uppercase.is_some())]
            {
                if set {
                    out.push(Diagnostic::at(span, format!("`{key}` is for `layout: single` (keys of one Secret)")));
                }
            }
        }
        if let Some(prefix) = &config.prefix
            && !prefix.is_empty()
            && let Some(why) = key_error(prefix)
        {
            out.push(Diagnostic::at(span, format!("`prefix`: {why}")));
        }
        if let Some(secret_type) = &config.secret_type
            && secret_type.value == "kubernetes.io/service-account-token"
        {
            out.push(
                Diagnostic::at(secret_type.span, "vss cannot write `kubernetes.io/service-account-token` Secrets")
                    .with_label("Kubernetes fills them in itself"),
            );
        }
        match role {
            Role::Source => {
                let target_only = [
                    ("type", config.secret_type.is_some()),
                    ("labels", config.labels.is_some()),
                    ("immutable", config.immutable.is_some()),
                    ("replace_immutable", config.replace_immutable.is_some()),
                ];
                for (key, set) in target_only {
                    if set {
                        out.push(Diagnostic::at(span, format!("`{key}` applies to targets only")));
                    }
                }
            }
            _ => {
                if config.label_selector.is_some() {
                    out.push(
                        Diagnostic::at(span, "`label_selector` applies to sources only")
                            .with_label("a target sees every Secret of its namespace"),
                    );
                }
            }
        }
        for (key, value) in config.labels.iter().flatten() {
            if key == MANAGED_BY || key == TARGET {
                out.push(Diagnostic::at(span, format!("label `{key}` is vss's own")));
            } else if value.len() > 63 || label_value(value) != *value {
                out.push(
                    Diagnostic::at(span, format!("label `{key}`: `{value}` is not a label value"))
                        .with_label("`[A-Za-z0-9._-]`, alphanumeric at both ends, at most 63"),
                );
            }
        }
    }

    fn locus(config: &KubernetesConfig, defaults: &KubernetesDefaults, _base_dir: &std::path::Path) -> Option<Locus> {
        let context = config.context.as_ref().or(defaults.context.as_ref()).map_or("(current context)", |c| c.value.as_str());
        let namespace = config.namespace.as_ref()?;
        let path = match config.layout() {
            // One Secret: only this name (a trailing `/` ends it).
            Layout::Single => format!("{}/{}/", namespace.value, config.name.as_ref()?.value),
            Layout::PerPath => format!("{}/{}", namespace.value, config.template().split("{path}").next().unwrap_or("")),
        };
        Some(Locus::prefix(format!("Kubernetes {context}"), &path))
    }

    async fn open(config: &KubernetesConfig, ctx: &OpenContext<'_>, _bundle: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let defaults = ctx.defaults::<Self>();
        let kubeconfig = defaults.kubeconfig.as_ref().map(|k| ctx.base_dir.join(&k.value));
        let context = config.context.as_ref().or(defaults.context.as_ref()).map(|c| c.value.clone());
        let cluster = ctx.session::<Self>().cluster(kubeconfig, context).await?;
        let namespace = config.namespace.as_ref().map_or(cluster.namespace.clone(), |n| n.value.clone());
        Ok(KubernetesStore {
            api: Api::namespaced(cluster.client, &namespace),
            config: config.clone(),
            namespace,
            server: cluster.server,
            calls: ctx.calls::<Self>(),
            seen: Mutex::new(HashMap::new()),
            complete: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Store for KubernetesStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        match self.config.layout() {
            Layout::PerPath => {
                let all = self.list_all().await?;
                let mut paths: Vec<SecretPath> = all
                    .iter()
                    .filter_map(|(name, secret)| {
                        let recorded = secret.metadata.annotations.as_ref().and_then(|a| a.get(PATH));
                        self.config.path_of(name, recorded.map(String::as_str))
                    })
                    .collect();
                paths.sort();
                paths.dedup();
                Ok(paths)
            }
            Layout::Single => {
                self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
                self.complete.store(false, std::sync::atomic::Ordering::Relaxed);
                let secret = self.secret(self.single_name()).await?;
                let mut keys: Vec<SecretPath> = secret
                    .iter()
                    .flat_map(|s| s.data.iter().flatten())
                    .filter_map(|(key, _)| SecretPath::parse(key).ok().filter(|p| p.as_str() == key))
                    .collect();
                keys.sort();
                Ok(keys)
            }
        }
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        match self.config.layout() {
            Layout::PerPath => {
                let name = self.config.name_of(path).map_err(|why| {
                    StoreError::invalid(format!("secret `{path}` cannot be named: {why}"))
                })?;
                let Some(secret) = self.secret(&name).await? else { return Ok(None) };
                let recorded = secret.metadata.annotations.as_ref().and_then(|a| a.get(PATH));
                if self.config.path_of(&name, recorded.map(String::as_str)).as_ref() != Some(path) {
                    // The name holds another path's Secret: this path has none.
                    return Ok(None);
                }
                let owner = Self::owner(&secret);
                let drift = owner.is_some() && self.drifted(&secret);
                let value = SecretValue::new(data_value(&secret));
                let version = secret.metadata.resource_version.clone();
                Ok(Some(LiveSecret { value: LiveValue::Value(value), owner, drift, version }))
            }
            Layout::Single => {
                let Some(secret) = self.secret(self.single_name()).await? else { return Ok(None) };
                let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(path.as_str())) else { return Ok(None) };
                let owner = Self::managed_keys(&secret).contains(path.as_str()).then(|| Self::owner(&secret)).flatten();
                let drift = owner.is_some() && self.drifted(&secret);
                let value = SecretValue::new(decode(&bytes.0));
                let version = secret.metadata.resource_version.clone();
                Ok(Some(LiveSecret { value: LiveValue::Value(value), owner, drift, version }))
            }
        }
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        if self.config.layout() == Layout::Single {
            return self.commit(&[(path.clone(), value.clone())], &[], owner).await;
        }
        let name = self
            .config
            .name_of(path)
            .map_err(|why| StoreError::invalid(format!("secret `{path}` cannot be named: {why}")))?;
        let existing = self.secret(&name).await?;
        if let Some(secret) = &existing {
            let recorded = secret.metadata.annotations.as_ref().and_then(|a| a.get(PATH));
            let held = self.config.path_of(&name, recorded.map(String::as_str));
            if held.as_ref() != Some(path) {
                let held = held.map_or_else(|| "another secret".to_string(), |h| format!("`{h}`"));
                return Err(StoreError::invalid(format!(
                    "Secret {}/{name} holds {held}, and `{path}` would be named `{name}` too; nothing written",
                    self.namespace
                ))
                .with_hint("rename one of the two paths, or change `name_template`"));
            }
        }
        let Value::Object(map) = value.expose() else {
            return Err(StoreError::invalid(format!("secret `{path}` is not an object of keys")));
        };
        let mut data = BTreeMap::new();
        for (key, item) in &map {
            data.insert(key.clone(), encode(item)?);
        }
        let annotations = BTreeMap::from([(PATH.to_string(), path.as_str().to_string())]);
        self.apply(&name, data, owner, annotations, existing.as_ref()).await
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        if self.config.layout() == Layout::Single {
            return self.commit(&[], std::slice::from_ref(path), "").await;
        }
        let name = self
            .config
            .name_of(path)
            .map_err(|why| StoreError::invalid(format!("secret `{path}` cannot be named: {why}")))?;
        match self.secret(&name).await? {
            Some(secret) => self.delete_secret(&name, &secret).await,
            None => Ok(()),
        }
    }

    async fn commit(&self, writes: &[(SecretPath, SecretValue)], deletes: &[SecretPath], owner: &str) -> Result<(), StoreError> {
        let name = self.single_name().to_string();
        let existing = self.secret(&name).await?;
        let mut data: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut deleting = false;
        if let Some(secret) = &existing {
            // The keys vss manages stay, as they are, unless deleted or rewritten.
            let current = secret.data.clone().unwrap_or_default();
            for key in Self::managed_keys(secret) {
                let Some(bytes) = current.get(&key) else { continue };
                if deletes.iter().any(|d| d.as_str() == key) {
                    deleting = true;
                } else {
                    data.insert(key, bytes.0.clone());
                }
            }
        }
        if writes.is_empty() && !deleting {
            return Ok(());
        }
        for (path, value) in writes {
            data.insert(path.as_str().to_string(), encode(&value.expose())?);
        }
        // A delete alone keeps the Secret's owner.
        let owner = match (owner, existing.as_ref().and_then(Self::owner)) {
            ("", Some(current)) => current,
            (owner, _) => owner.to_string(),
        };
        let keys: Vec<&String> = data.keys().collect();
        let annotations = BTreeMap::from([(KEYS.to_string(), serde_json::to_string(&keys).unwrap_or_default())]);
        self.apply(&name, data, &owner, annotations, existing.as_ref()).await
    }

    fn flattening(&self) -> Option<FlattenOptions> {
        (self.config.layout() == Layout::Single).then(|| self.config.flattening())
    }

    fn name_error(&self, name: &SecretPath) -> Option<String> {
        match self.config.layout() {
            Layout::PerPath => self.config.name_of(name).err(),
            Layout::Single => key_error(name.as_str()),
        }
    }

    fn desired_error(&self, desired: &SecretMap) -> Option<String> {
        let secret_type = self.config.secret_type();
        let problems: Vec<String> = match self.config.layout() {
            Layout::Single => type_error(secret_type, desired.keys().map(SecretPath::as_str))
                .map(|why| format!("Secret {}/{}: {why}", self.namespace, self.single_name()))
                .into_iter()
                .collect(),
            Layout::PerPath => desired
                .iter()
                .filter_map(|(path, value)| {
                    let value = value.expose();
                    let map = value.as_object()?;
                    let mut why: Vec<String> = map.keys().filter_map(|k| key_error(k)).collect();
                    why.extend(type_error(secret_type, map.keys().map(String::as_str)));
                    (!why.is_empty()).then(|| format!("secret `{path}`: {}", why.join(", ")))
                })
                .collect(),
        };
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spanned<T>(value: T) -> Spanned<T> {
        Spanned { span: Span::default(), value }
    }

    #[test]
    fn names_follow_rfc_1123_and_map_back() {
        let c = KubernetesConfig { name_template: Some(spanned("app-{path}".into())), ..Default::default() };
        let path = SecretPath::parse("payments/stripe").unwrap();
        assert_eq!(c.name_of(&path).unwrap(), "app-payments-stripe");
        assert_eq!(c.path_of("app-payments-stripe", Some("payments/stripe")), Some(path));
        assert_eq!(c.path_of("app-payments-stripe", None).unwrap().as_str(), "payments-stripe");
        assert_eq!(c.path_of("app-x", Some("payments/stripe")).unwrap().as_str(), "x", "a record that does not map back");
        assert_eq!(c.path_of("other", None), None);
        assert!(c.name_of(&SecretPath::parse("Payments/key").unwrap()).unwrap_err().contains("not a DNS subdomain"));
        assert!(c.name_of(&SecretPath::parse("a_b").unwrap()).is_err());
        assert!(is_dns_subdomain("a.b-c"));
        assert!(!is_dns_subdomain("-a") && !is_dns_subdomain("a..b") && !is_dns_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn keys_labels_and_types_follow_kubernetes_rules() {
        assert_eq!(key_error("tls.crt"), None);
        assert!(key_error("a b").unwrap().contains("holds ` `"));
        assert!(key_error("..x").is_some());
        assert_eq!(label_value("Production EU"), "Production_EU");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"y".repeat(80)).len(), 63);
        assert_eq!(type_error("Opaque", ["a"].into_iter()), None);
        assert_eq!(
            type_error("kubernetes.io/tls", ["tls.crt"].into_iter()).unwrap(),
            "a Secret of type `kubernetes.io/tls` needs `tls.key`"
        );
        assert_eq!(type_error("kubernetes.io/basic-auth", ["password"].into_iter()), None);
        assert!(type_error("kubernetes.io/basic-auth", ["x"].into_iter()).unwrap().contains("`username` or `password`"));
    }

    #[test]
    fn data_round_trips() {
        for value in [serde_json::json!("text"), serde_json::json!({"$binary": "AP8="})] {
            assert_eq!(decode(&encode(&value).unwrap()), value);
        }
        assert_eq!(encode(&serde_json::json!(5432)).unwrap(), b"5432");
    }
}
