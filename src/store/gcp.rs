//! The `gcp` store: Google Cloud Secret Manager as a source and a target, with Google's
//! official Rust client (`google-cloud-secretmanager-v1`, REST).
//!
//! ```yaml
//! gcp:                                    # defaults (every field optional)
//!   project: platform-prod
//!   # endpoint: https://secretmanager.europe-west1.rep.googleapis.com  # private endpoints, tests
//!   # auth: adc                           # adc (default) | anonymous (only with endpoint)
//! sources:
//!   legacy: { gcp: { project: legacy-proj, prefix: app- } }
//! targets:
//!   Production:
//!     imports: [legacy]
//!     gcp:
//!       project: app-prod
//!       prefix: app-                      # secret id = prefix + path, `/` -> separator
//!       separator: "--"                   # default
//!       labels: { team: platform }
//!       replication: automatic            # or [europe-west1, europe-west4]
//!       kms_key: projects/p/locations/global/keyRings/r/cryptoKeys/k
//!       keep_versions: 5                  # destroy older versions after a write
//! ```
//!
//! - **Credentials**: application-default credentials (`GOOGLE_APPLICATION_CREDENTIALS`,
//!   workload identity / the metadata server, `gcloud` credentials), or none with
//!   `auth: anonymous`, which is accepted only together with an `endpoint`.
//! - **Ids**: GCP allows `[A-Za-z0-9_-]{1,255}`. A path maps to `prefix + path` with every
//!   `/` written as the separator (default `--`); an id maps back only when that gives a
//!   path that maps to the same id, so the rule is reversible. A path that cannot map
//!   (a character GCP refuses, the separator inside a segment, too long) is refused when
//!   the plan is made, naming the path, before anything is written.
//! - **Values**: the payload holds the value's JSON text (a string is held as it is);
//!   a payload that is a JSON object reads back as that object, other UTF-8 text as the
//!   string, other bytes as `{"$binary": "<base64>"}`. The payload's CRC32C is sent on
//!   every write and checked on every read.
//! - **Reads**: `ListSecrets` (paged) gives ids, labels, annotations and replication;
//!   `versions/latest:access` reads each value. A secret whose latest version is disabled
//!   or destroyed reads as absent.
//! - **Writes**: a new version only when the value changed (the engine writes only
//!   changes); a new secret is created with the config's labels, replication and key,
//!   the labels `managed-by=vss` and `vss-target=<target>` (lower case, `[a-z0-9_-]`,
//!   at most 63 characters) and the annotation `vss-target` holding the exact target name
//!   (ownership is read from it). `keep_versions: N` destroys all but the newest N versions
//!   after a write. Labels that differ from the config, and a replication that does, on a
//!   secret vss owns are reported as metadata drift; labels are put right by an update,
//!   replication cannot be changed in place (reported in the error).
//! - **Deletes**: `DeleteSecret` (every version), only of secrets vss owns, only with
//!   `delete_orphans`.
//! - Calls in `stats`: `ListSecrets` pages (`list`), each access (`read`), each create,
//!   add-version, update and version destroy (`write`), each delete (`delete`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use google_cloud_secretmanager_v1::client::SecretManagerService;
use google_cloud_secretmanager_v1::model;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::error::ErrorKind;
use crate::secret::{LiveSecret, LiveValue, SecretPath, SecretValue};
use crate::span::{Span, Spanned};
use crate::store::stats::{Call, CallCounter};
use crate::store::{Bundle, Capabilities, Locus, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// `gcp:` of a source or a target: Secret Manager in one project.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpConfig {
    /// The project (default: the top-level `gcp.project`).
    pub project: Option<Spanned<String>>,
    /// Secret id prefix: id = prefix + path, `/` written as `separator` (default: none).
    pub prefix: Option<Spanned<String>>,
    /// What a `/` of a path becomes in a secret id (default `--`).
    pub separator: Option<Spanned<String>>,
    /// Target only: labels of the secrets vss creates (and keeps in line), besides
    /// `managed-by=vss` and `vss-target=<target>`.
    pub labels: Option<BTreeMap<String, String>>,
    /// Target only: `automatic` (default) or the list of locations of new secrets.
    pub replication: Option<Replication>,
    /// Target only: the Cloud KMS key of new secrets.
    pub kms_key: Option<String>,
    /// Target only: after a write, destroy all but the newest N versions.
    pub keep_versions: Option<Spanned<u32>>,
}

/// Where a secret's payload is replicated.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Replication {
    /// `automatic`: Google chooses.
    Automatic(AutomaticKeyword),
    /// These locations (`[europe-west1, europe-west4]`).
    Locations(Vec<String>),
}

/// The word `automatic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AutomaticKeyword {
    /// Automatic replication.
    Automatic,
}

/// How vss authenticates to Google Cloud.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GcpAuth {
    /// Application-default credentials.
    #[default]
    Adc,
    /// No credentials (emulators and test servers; only with `endpoint`).
    Anonymous,
}

/// The top-level `gcp:` block.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GcpDefaults {
    /// The project of locations that name none.
    pub project: Option<Spanned<String>>,
    /// The Secret Manager endpoint (default: Google's); private or regional endpoints,
    /// emulators, tests.
    pub endpoint: Option<Spanned<String>>,
    /// `adc` (default) or `anonymous`.
    pub auth: Option<Spanned<GcpAuth>>,
}

/// One client per endpoint and kind of credentials, shared by a run's locations.
#[derive(Debug, Default)]
pub struct GcpSessions {
    clients: tokio::sync::Mutex<HashMap<(Option<String>, GcpAuth), SecretManagerService>>,
}

impl GcpSessions {
    async fn client(&self, defaults: &GcpDefaults) -> Result<SecretManagerService, StoreError> {
        let endpoint = defaults.endpoint.as_ref().map(|e| e.value.clone());
        let auth = defaults.auth.as_ref().map_or(GcpAuth::Adc, |a| a.value);
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&(endpoint.clone(), auth)) {
            return Ok(client.clone());
        }
        // vss retries through its own policy: the client's is off.
        // Each call gets the run's request timeout (connecting included): a server that
        // accepts and never answers fails the call, named, in bounded time.
        let limit = crate::store::timeouts();
        let mut builder = SecretManagerService::builder()
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .with_attempt_timeout(limit.connect + limit.request);
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint.clone());
        }
        if auth == GcpAuth::Anonymous {
            builder = builder.with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build());
        }
        let client = builder.build().await.map_err(|e| {
            StoreError::new(ErrorKind::Permission, format!("cannot set up the Secret Manager client: {e}"))
                .with_hint("set GOOGLE_APPLICATION_CREDENTIALS, or log in with `gcloud auth application-default login`")
        })?;
        clients.insert((endpoint, auth), client.clone());
        Ok(client)
    }
}

/// The default separator of path segments in secret ids.
const SEPARATOR: &str = "--";

/// Whether `c` may appear in a secret id.
fn id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A label value as GCP accepts it: lower case, `[a-z0-9_-]`, at most 63 characters.
pub fn label_value(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c.to_ascii_lowercase() } else { '_' })
        .take(63)
        .collect()
}

impl GcpConfig {
    fn prefix(&self) -> &str {
        self.prefix.as_ref().map_or("", |p| &p.value)
    }

    fn separator(&self) -> &str {
        self.separator.as_ref().map_or(SEPARATOR, |s| &s.value)
    }

    /// The project, its own or the default's.
    fn project<'a>(&'a self, defaults: &'a GcpDefaults) -> Option<&'a str> {
        self.project.as_ref().or(defaults.project.as_ref()).map(|p| p.value.as_str())
    }

    /// The id of `path`, or why it has none.
    pub fn id_of(&self, path: &SecretPath) -> Result<String, String> {
        let separator = self.separator();
        let mut id = self.prefix().to_string();
        for (i, segment) in path.as_str().split('/').enumerate() {
            if i > 0 {
                id.push_str(separator);
            }
            if segment.contains(separator) {
                return Err(format!("its segment `{segment}` holds the separator `{separator}`"));
            }
            if let Some(bad) = segment.chars().find(|c| !id_char(*c)) {
                return Err(format!("`{bad}` cannot be part of a GCP secret id (letters, digits, `_` and `-` only)"));
            }
            id.push_str(segment);
        }
        if id.len() > 255 {
            return Err(format!("its secret id would be {} characters long (at most 255)", id.len()));
        }
        Ok(id)
    }

    /// The path of secret id `id`, when it is one of this location's (and maps back to it).
    pub fn path_of(&self, id: &str) -> Option<SecretPath> {
        let rest = id.strip_prefix(self.prefix()).filter(|r| !r.is_empty())?;
        let path = SecretPath::parse(&rest.replace(self.separator(), "/")).ok()?;
        (self.id_of(&path).ok()? == id).then_some(path)
    }
}

/// Secret Manager in one project.
pub struct GcpStore {
    client: SecretManagerService,
    config: GcpConfig,
    project: String,
    calls: Arc<CallCounter>,
    /// What the last listing found: id -> the secret's metadata.
    listed: Mutex<Option<HashMap<String, model::Secret>>>,
    /// The latest payload read of each id: a write of the same bytes (a change of labels
    /// only) adds no version.
    payloads: Mutex<HashMap<String, bytes::Bytes>>,
}

impl std::fmt::Debug for GcpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpStore").field("project", &self.project).field("prefix", &self.config.prefix()).finish()
    }
}

impl GcpStore {
    fn parent(&self) -> String {
        format!("projects/{}", self.project)
    }

    fn name(&self, id: &str) -> String {
        format!("projects/{}/secrets/{id}", self.project)
    }

    fn id(&self, path: &SecretPath) -> Result<String, StoreError> {
        self.config.id_of(path).map_err(|why| StoreError::invalid(format!("secret `{path}` cannot be named: {why}")))
    }

    /// The labels vss writes on the secrets of `owner`: the config's and its own.
    fn labels(&self, owner: &str) -> HashMap<String, String> {
        let mut labels: HashMap<String, String> =
            self.config.labels.clone().unwrap_or_default().into_iter().collect();
        labels.insert("managed-by".into(), "vss".into());
        labels.insert("vss-target".into(), label_value(owner));
        labels
    }

    /// Whether an owned secret's metadata differs from what the config asks for.
    fn drifted(&self, secret: &model::Secret) -> bool {
        let labels = self.config.labels.iter().flatten().any(|(k, v)| secret.labels.get(k) != Some(v));
        labels || self.replication_differs(secret)
    }

    /// Whether a secret's replication differs from the config's (when it says one).
    fn replication_differs(&self, secret: &model::Secret) -> bool {
        match (&self.config.replication, secret.replication.as_ref().and_then(|r| r.replication.as_ref())) {
            (None | Some(Replication::Automatic(_)), Some(model::replication::Replication::Automatic(_))) => false,
            (Some(Replication::Locations(wanted)), Some(model::replication::Replication::UserManaged(managed))) => {
                let mut have: Vec<&str> = managed.replicas.iter().map(|r| r.location.as_str()).collect();
                let mut want: Vec<&str> = wanted.iter().map(String::as_str).collect();
                have.sort_unstable();
                want.sort_unstable();
                have != want
            }
            (_, None) => false,
            _ => true,
        }
    }

    fn replication(&self) -> model::Replication {
        let automatic = || {
            let mut automatic = model::replication::Automatic::new();
            if let Some(key) = &self.config.kms_key {
                automatic = automatic
                    .set_customer_managed_encryption(model::CustomerManagedEncryption::new().set_kms_key_name(key));
            }
            model::Replication::new().set_automatic(automatic)
        };
        match &self.config.replication {
            None | Some(Replication::Automatic(_)) => automatic(),
            Some(Replication::Locations(locations)) => {
                let replicas = locations.iter().map(|location| {
                    let mut replica = model::replication::user_managed::Replica::new().set_location(location);
                    if let Some(key) = &self.config.kms_key {
                        replica = replica
                            .set_customer_managed_encryption(model::CustomerManagedEncryption::new().set_kms_key_name(key));
                    }
                    replica
                });
                model::Replication::new().set_user_managed(model::replication::UserManaged::new().set_replicas(replicas))
            }
        }
    }

    /// Every secret of the project, by id (paged).
    async fn list_all(&self) -> Result<HashMap<String, model::Secret>, StoreError> {
        let mut out = HashMap::new();
        let mut token = String::new();
        loop {
            self.calls.count(Call::List);
            let page = self
                .client
                .list_secrets()
                .set_parent(self.parent())
                .set_page_size(250)
                .set_page_token(token.clone())
                .send()
                .await
                .map_err(|e| fail(&e, "ListSecrets", &self.parent()))?;
            for secret in page.secrets {
                let id = secret.name.rsplit('/').next().unwrap_or_default().to_string();
                out.insert(id, secret);
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        Ok(out)
    }

    async fn listed(&self, id: &str) -> Result<Option<model::Secret>, StoreError> {
        if self.listed.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            self.list().await?;
        }
        Ok(self.listed.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|l| l.get(id).cloned()))
    }

    /// Destroys all but the newest `keep` versions of `id`.
    async fn prune_versions(&self, id: &str, keep: usize) -> Result<(), StoreError> {
        let name = self.name(id);
        let mut versions: Vec<model::SecretVersion> = Vec::new();
        let mut token = String::new();
        loop {
            self.calls.count(Call::List);
            let page = self
                .client
                .list_secret_versions()
                .set_parent(&name)
                .set_page_size(250)
                .set_page_token(token.clone())
                .send()
                .await
                .map_err(|e| fail(&e, "ListSecretVersions", &name))?;
            versions.extend(page.versions.into_iter().filter(|v| v.state != model::secret_version::State::Destroyed));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        // Newest first: version names end in increasing numbers.
        versions.sort_by_key(|v| std::cmp::Reverse(v.name.rsplit('/').next().and_then(|n| n.parse::<u64>().ok())));
        for version in versions.into_iter().skip(keep) {
            self.calls.count(Call::Write);
            self.client
                .destroy_secret_version()
                .set_name(&version.name)
                .send()
                .await
                .map_err(|e| fail(&e, "DestroySecretVersion", &version.name))?;
        }
        Ok(())
    }
}

/// A failed call as a store error, classified by its status; never a value.
fn fail(error: &google_cloud_gax::error::Error, call: &str, resource: &str) -> StoreError {
    use google_cloud_gax::error::rpc::Code;
    let what = format!("{call} {resource}");
    if error.is_timeout() {
        return crate::store::timed_out(&what, "Secret Manager", "the call's deadline passed");
    }
    if error.is_connect() || error.is_io() || error.is_transport() {
        return StoreError::unavailable(format!("{what}: cannot reach Secret Manager ({error})"));
    }
    if error.is_authentication() {
        return StoreError::new(ErrorKind::Permission, format!("{what}: cannot authenticate ({error})"))
            .with_hint("set GOOGLE_APPLICATION_CREDENTIALS, or log in with `gcloud auth application-default login`");
    }
    let Some(status) = error.status() else {
        return StoreError::invalid(format!("{what}: {}", crate::store::short(&error.to_string())));
    };
    let message = format!("{what}: {} ({})", crate::store::short(&status.message), status.code.name());
    match status.code {
        Code::NotFound => StoreError::not_found(message),
        Code::PermissionDenied | Code::Unauthenticated => StoreError::permission(message)
            .with_hint("grant the caller `roles/secretmanager.admin` on the project (or secretAccessor to read)"),
        Code::AlreadyExists | Code::Aborted => StoreError::conflict(message),
        Code::ResourceExhausted => StoreError::new(ErrorKind::Quota, message),
        Code::Unavailable | Code::Internal | Code::Unknown => StoreError::unavailable(message),
        Code::DeadlineExceeded => StoreError::new(ErrorKind::Timeout, message),
        _ => StoreError::invalid(message),
    }
}

/// A payload as a value: a JSON object, else the UTF-8 text, else `{"$binary": …}`.
fn decode(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            _ => Value::String(text.to_string()),
        },
        Err(_) => serde_json::json!({"$binary": base64::engine::general_purpose::STANDARD.encode(bytes)}),
    }
}

/// The inverse of [`decode`].
fn encode(value: &Value) -> Result<Vec<u8>, StoreError> {
    if let Some(map) = value.as_object()
        && map.len() == 1
        && let Some(Value::String(b64)) = map.get("$binary")
    {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| StoreError::invalid(format!("`$binary` is not base64: {e}")));
    }
    Ok(match value {
        Value::String(text) => text.clone().into_bytes(),
        other => {
            let mut text = String::new();
            crate::secret::canonical_json(other, &mut text);
            text.into_bytes()
        }
    })
}

impl StoreKind for GcpStore {
    const NAME: &'static str = "gcp";
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: true, merge_store: false, target: true },
        reads_values: true,
        value_shape: ValueShape::ObjectOrText,
        min_value_bytes: 1,
        max_value_bytes: Some(65_536),
        exact_numbers: true,
        ownership: true,
        atomic_commit: false,
    };
    const DEFAULTS_KEY: Option<&'static str> = Some("gcp");
    type Config = GcpConfig;
    type Defaults = GcpDefaults;
    type Session = GcpSessions;

    fn describe(config: &GcpConfig) -> String {
        let project = config.project.as_ref().map_or("(default project)", |p| p.value.as_str());
        let prefix = config.prefix.as_ref().map(|p| p.value.as_str()).filter(|p| !p.is_empty()).unwrap_or("(no prefix)");
        format!("gcp {project} {prefix}")
    }

    fn check(config: &GcpConfig, role: Role, defaults: &GcpDefaults, span: Span, out: &mut Vec<Diagnostic>) {
        if config.project(defaults).is_none() {
            out.push(
                Diagnostic::at(span, "a `gcp` store needs a project")
                    .with_label("write `project:` here, or in the top-level `gcp:` block"),
            );
        }
        for (key, value) in [("prefix", &config.prefix), ("separator", &config.separator)] {
            if let Some(value) = value
                && let Some(bad) = value.value.chars().find(|c| !id_char(*c))
            {
                out.push(
                    Diagnostic::at(value.span, format!("`{key}` holds `{bad}`, which a GCP secret id cannot"))
                        .with_label("secret ids are letters, digits, `_` and `-`"),
                );
            }
        }
        if let Some(separator) = &config.separator
            && separator.value.is_empty()
        {
            out.push(Diagnostic::at(separator.span, "`separator` is empty").with_label("paths could not be told apart"));
        }
        if role == Role::Source {
            let target_only = [
                ("labels", config.labels.is_some()),
                ("replication", config.replication.is_some()),
                ("kms_key", config.kms_key.is_some()),
                ("keep_versions", config.keep_versions.is_some()),
            ];
            for (key, set) in target_only {
                if set {
                    out.push(Diagnostic::at(span, format!("`{key}` applies to targets only")));
                }
            }
        }
        if let Some(keep) = &config.keep_versions
            && keep.value == 0
        {
            out.push(Diagnostic::at(keep.span, "`keep_versions` must keep at least 1 version"));
        }
    }

    fn check_defaults(defaults: &GcpDefaults, out: &mut Vec<Diagnostic>) {
        if let Some(auth) = &defaults.auth
            && auth.value == GcpAuth::Anonymous
            && defaults.endpoint.is_none()
        {
            out.push(
                Diagnostic::at(auth.span, "`auth: anonymous` needs an `endpoint`")
                    .with_label("Google's own endpoint refuses calls without credentials"),
            );
        }
    }

    fn locus(config: &GcpConfig, defaults: &GcpDefaults, _base_dir: &std::path::Path) -> Option<Locus> {
        let project = config.project(defaults)?;
        let endpoint = defaults.endpoint.as_ref().map_or("", |e| e.value.as_str());
        Some(Locus {
            system: format!("GCP Secret Manager {project}{}", if endpoint.is_empty() { String::new() } else { format!(" at {endpoint}") }),
            path: crate::store::LocusPath::Prefix(config.prefix().to_string()),
        })
    }

    async fn open(config: &GcpConfig, ctx: &OpenContext<'_>, _bundle: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let defaults = ctx.defaults::<Self>();
        let project = config
            .project(defaults)
            .ok_or_else(|| StoreError::invalid("a `gcp` store needs a project"))?
            .to_string();
        let client = ctx.session::<Self>().client(defaults).await?;
        Ok(GcpStore {
            client,
            config: config.clone(),
            project,
            calls: ctx.calls::<Self>(),
            listed: Mutex::new(None),
            payloads: Mutex::new(HashMap::new()),
        })
    }
}

impl Store for GcpStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        let all = self.list_all().await?;
        let mut paths: Vec<SecretPath> = all.keys().filter_map(|id| self.config.path_of(id)).collect();
        paths.sort();
        *self.listed.lock().unwrap_or_else(|e| e.into_inner()) = Some(all);
        Ok(paths)
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        let id = self.id(path)?;
        let Some(secret) = self.listed(&id).await? else { return Ok(None) };
        let version = format!("{}/versions/latest", self.name(&id));
        self.calls.count(Call::Read);
        let answer = match self.client.access_secret_version().set_name(&version).send().await {
            Ok(answer) => answer,
            Err(e) => {
                let error = fail(&e, "AccessSecretVersion", &version);
                // No enabled version (none yet, or the latest disabled or destroyed).
                let code = e.status().map(|s| s.code);
                use google_cloud_gax::error::rpc::Code;
                if matches!(code, Some(Code::NotFound | Code::FailedPrecondition)) {
                    return Ok(None);
                }
                return Err(error);
            }
        };
        let payload = answer.payload.unwrap_or_default();
        if let Some(expected) = payload.data_crc32c
            && i64::from(crc32c::crc32c(&payload.data)) != expected
        {
            return Err(StoreError::unavailable(format!(
                "AccessSecretVersion {version}: the payload does not match its CRC32C (corrupted on the way)"
            )));
        }
        let owned = secret.labels.get("managed-by").map(String::as_str) == Some("vss");
        let owner = owned.then(|| secret.annotations.get("vss-target").cloned()).flatten();
        let drift = owner.is_some() && self.drifted(&secret);
        let value = SecretValue::new(decode(&payload.data));
        self.payloads.lock().unwrap_or_else(|e| e.into_inner()).insert(id, payload.data.clone());
        let number = answer.name.rsplit('/').next().map(str::to_string);
        Ok(Some(LiveSecret { value: LiveValue::Value(value), owner, drift, version: number }))
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        let id = self.id(path)?;
        let data = encode(&value.expose())?;
        let name = self.name(&id);
        match self.listed(&id).await? {
            None => {
                let secret = model::Secret::new()
                    .set_replication(self.replication())
                    .set_labels(self.labels(owner))
                    .set_annotations([("vss-target".to_string(), owner.to_string())]);
                self.calls.count(Call::Write);
                let created = self
                    .client
                    .create_secret()
                    .set_parent(self.parent())
                    .set_secret_id(&id)
                    .set_secret(secret)
                    .send()
                    .await
                    .map_err(|e| fail(&e, "CreateSecret", &name))?;
                if let Some(listed) = self.listed.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    listed.insert(id.clone(), created);
                }
            }
            Some(secret) => {
                if secret.annotations.get("vss-target").map(String::as_str) == Some(owner)
                    && self.replication_differs(&secret)
                {
                    return Err(StoreError::invalid(format!(
                        "{name}: its replication differs from the config's, and Secret Manager cannot change it in place; nothing written"
                    ))
                    .with_hint("delete the secret so that vss creates it anew, or make the config say its replication"));
                }
                let mut labels = secret.labels.clone();
                labels.extend(self.labels(owner));
                let mut annotations = secret.annotations.clone();
                annotations.insert("vss-target".into(), owner.into());
                if labels != secret.labels || annotations != secret.annotations {
                    self.calls.count(Call::Write);
                    let update = model::Secret::new().set_name(&name).set_labels(labels).set_annotations(annotations);
                    let mask = google_cloud_wkt::FieldMask::default().set_paths(["labels", "annotations"]);
                    let updated = self
                        .client
                        .update_secret()
                        .set_secret(update)
                        .set_update_mask(mask)
                        .send()
                        .await
                        .map_err(|e| fail(&e, "UpdateSecret", &name))?;
                    if let Some(listed) = self.listed.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        listed.insert(id.clone(), updated);
                    }
                }
            }
        }
        let unchanged = self.payloads.lock().unwrap_or_else(|e| e.into_inner()).get(&id).is_some_and(|p| p[..] == data[..]);
        if unchanged {
            return Ok(());
        }
        // The payload goes out as base64: an error that echoes it must not print it.
        crate::scrub::remember_encoded(&base64::engine::general_purpose::STANDARD.encode(&data));
        let crc = i64::from(crc32c::crc32c(&data));
        let payload = model::SecretPayload::new().set_data(bytes::Bytes::from(data)).set_data_crc32c(crc);
        self.calls.count(Call::Write);
        self.client
            .add_secret_version()
            .set_parent(&name)
            .set_payload(payload)
            .send()
            .await
            .map_err(|e| fail(&e, "AddSecretVersion", &name))?;
        if let Some(keep) = &self.config.keep_versions {
            self.prune_versions(&id, keep.value as usize).await?;
        }
        Ok(())
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        let id = self.id(path)?;
        let name = self.name(&id);
        self.calls.count(Call::Delete);
        match self.client.delete_secret().set_name(&name).send().await {
            Ok(()) => {}
            Err(e) if e.status().is_some_and(|s| s.code == google_cloud_gax::error::rpc::Code::NotFound) => {}
            Err(e) => return Err(fail(&e, "DeleteSecret", &name)),
        }
        if let Some(listed) = self.listed.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            listed.remove(&id);
        }
        Ok(())
    }

    fn name_error(&self, name: &SecretPath) -> Option<String> {
        self.config.id_of(name).err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefix: &str, separator: Option<&str>) -> GcpConfig {
        let spanned = |v: &str| Spanned { span: Span::default(), value: v.to_string() };
        GcpConfig { prefix: Some(spanned(prefix)), separator: separator.map(spanned), ..GcpConfig::default() }
    }

    #[test]
    fn ids_map_to_paths_and_back_or_are_refused() {
        let c = config("app-", None);
        let path = SecretPath::parse("payments/stripe_key").unwrap();
        assert_eq!(c.id_of(&path).unwrap(), "app-payments--stripe_key");
        assert_eq!(c.path_of("app-payments--stripe_key"), Some(path));
        assert_eq!(c.path_of("other-x"), None, "not under the prefix");
        assert_eq!(c.path_of("app-"), None);
        assert!(c.id_of(&SecretPath::parse("a.b").unwrap()).unwrap_err().contains("`.` cannot be part"));
        assert!(c.id_of(&SecretPath::parse("a--b/c").unwrap()).unwrap_err().contains("separator"));
        assert!(c.id_of(&SecretPath::parse(&"x".repeat(300)).unwrap()).unwrap_err().contains("at most 255"));
        let underscore = config("", Some("__"));
        assert_eq!(underscore.id_of(&SecretPath::parse("a/b").unwrap()).unwrap(), "a__b");
        assert_eq!(underscore.path_of("a__b").unwrap().as_str(), "a/b");
    }

    #[test]
    fn label_values_follow_gcp_rules() {
        assert_eq!(label_value("Production.EU"), "production_eu");
        assert_eq!(label_value(&"X".repeat(80)).len(), 63);
    }

    #[test]
    fn payloads_round_trip() {
        for value in [serde_json::json!({"a": 1, "b": "x"}), serde_json::json!("plain text"), serde_json::json!({"$binary": "AP8="})] {
            assert_eq!(decode(&encode(&value).unwrap()), value);
        }
    }
}
