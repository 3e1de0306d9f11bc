//! Stores: where secrets are read from and written to. A store does I/O and nothing else:
//! it does not retry, sleep, print, or know about dry runs. [`retry`] wraps every call,
//! [`stats`] counts them, and the engine decides what to call.
//!
//! ## Adding a store
//!
//! One file here, one line in the `stores!` list at the bottom of this module, and one
//! cargo feature. The file holds the store's config type, the [`Store`] implementation
//! (I/O only) and the [`StoreKind`] implementation: its config key, its
//! [`Capabilities`], its top-level defaults block and per-run session (if any), its own
//! config checks, and how it opens. The list generates everything else: the
//! [`StoreConfig`] enum (config parsing and the JSON Schema), [`StoreConfig::KINDS`], the
//! dispatch of [`AnyStore`], the top-level defaults blocks ([`StoreDefaults`]) and the
//! sessions ([`Sessions`]). The conformance suite (`tests/it/conformance.rs`) then runs
//! against it, skipping exactly what its capabilities say it cannot do.

#[cfg(feature = "aws")]
pub mod aws;
pub mod quota;
pub mod retry;
pub mod stats;

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::diagnostic::Diagnostic;
use crate::error::{ErrorKind, Failure};
use crate::secret::{LiveSecret, LiveState, SecretPath, SecretValue};
use crate::span::{Lenient, Span, Spanned};
use crate::store::stats::Stats;

/// Which roles a store can play.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// Can be a source.
    pub source: bool,
    /// Can be the merge store.
    pub merge_store: bool,
    /// Can be a target.
    pub target: bool,
}

/// What values a store can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueShape {
    /// Any JSON value: an object, a string, a number, a list.
    Any,
    /// JSON objects only (Vault KV2).
    Object,
    /// JSON objects, or else text (Secrets Manager's `SecretString`): a string is held as
    /// it is, any other value as its JSON text; text that is a JSON object reads back as
    /// that object, any other text as the string it is.
    ObjectOrText,
    /// One string per name (GitHub secrets, the keys of one Kubernetes Secret, environment
    /// variables): structured secrets are flattened into names first ([`crate::flatten`]).
    FlatStrings,
    /// JSON objects held key by key as text (a Kubernetes Secret's data): a key's string is
    /// held as it is, any other value as its JSON text, and reads back as that text; a
    /// `{"$binary": "<base64>"}` value is held as those bytes.
    TextMap,
}

/// What a store can do; validation and the engine read these instead of asking which
/// store it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The roles it can play.
    pub roles: Roles,
    /// Reads return values. When false, a read says only that a secret is present (with
    /// the store's version or `updated_at`), and the diff says so instead of guessing.
    pub reads_values: bool,
    /// The values it can hold.
    pub value_shape: ValueShape,
    /// The smallest value it accepts, in bytes of its JSON text (or of the string): 1 for
    /// a store that cannot hold an empty string (Secrets Manager).
    pub min_value_bytes: usize,
    /// The largest value it accepts, in bytes of its JSON text (or of the string).
    pub max_value_bytes: Option<usize>,
    /// Whether it keeps every number's text exactly; false for stores that hold JSON
    /// numbers as 64-bit floats (Vault), which round `12345678901234567890123` and rewrite
    /// `1.10` as `1.1`. Such a store is refused a number whose text would change.
    pub exact_numbers: bool,
    /// Stores vss's ownership marker, so orphans can be deleted safely.
    pub ownership: bool,
    /// Applies all of a location's writes and deletes as one change ([`Store::commit`]),
    /// rather than secret by secret.
    pub atomic_commit: bool,
}

impl Capabilities {
    /// `value` as the store will return it, for comparing with what it holds (what is
    /// written is `value` itself). For [`ValueShape::ObjectOrText`]: a value that is
    /// neither an object nor a string becomes its JSON text (a number written is read back
    /// as that string), and a string that is a JSON object's text becomes that object.
    pub fn normalize(&self, value: &SecretValue) -> SecretValue {
        if self.value_shape == ValueShape::TextMap {
            return match value.expose() {
                serde_json::Value::Object(map) => SecretValue::new(serde_json::Value::Object(
                    map.into_iter().map(|(key, item)| (key, as_text(item))).collect(),
                )),
                _ => value.clone(),
            };
        }
        if self.value_shape != ValueShape::ObjectOrText || value.is_object() {
            return value.clone();
        }
        match value.expose() {
            serde_json::Value::String(text) => match serde_json::from_str(&text) {
                Ok(object @ serde_json::Value::Object(_)) => SecretValue::new(object),
                _ => value.clone(),
            },
            _ => SecretValue::new(serde_json::Value::String(value.canonical().to_string())),
        }
    }

    /// Whether a store with these capabilities can hold `value`; if not, why (never
    /// quoting the value).
    pub fn accepts(&self, value: &SecretValue) -> Result<(), String> {
        let text = value.canonical();
        match self.value_shape {
            ValueShape::Object | ValueShape::TextMap if !value.is_object() => {
                return Err("it is not an object (the store holds objects only)".into());
            }
            ValueShape::FlatStrings if !text.starts_with('"') => {
                return Err("it is not a string (the store holds one string per name)".into());
            }
            _ => {}
        }
        // A string is stored as its text; anything else as its JSON (parsed only for a string).
        let size = match text.starts_with('"').then(|| value.expose()) {
            Some(serde_json::Value::String(s)) => s.len(),
            _ => text.len(),
        };
        if size < self.min_value_bytes {
            return Err(format!("it is {size} bytes, under the store's minimum of {}", self.min_value_bytes));
        }
        if let Some(max) = self.max_value_bytes
            && size > max
        {
            return Err(format!("it is {size} bytes, over the store's limit of {max}"));
        }
        if !self.exact_numbers
            && let Some(key) = inexact_number(&value.expose(), "")
        {
            return Err(format!(
                "{key} holds a number whose text the store would change, as it keeps numbers as 64-bit floats \
                 (quote it to keep it as text)"
            ));
        }
        Ok(())
    }
}

/// One key's value of a [`ValueShape::TextMap`] store as it is held and read back: a
/// string as it is; a `{"$binary": …}` object as it is, unless its bytes are UTF-8 text,
/// which reads back as that string; anything else as its canonical JSON text.
fn as_text(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(_) => value,
        serde_json::Value::Object(ref map) if map.len() == 1 && map.get("$binary").is_some_and(|b| b.is_string()) => {
            use base64::Engine as _;
            let decode = |b: &str| base64::engine::general_purpose::STANDARD.decode(b).ok();
            let text = map["$binary"].as_str().and_then(decode).and_then(|b| String::from_utf8(b).ok());
            text.map_or(value, serde_json::Value::String)
        }
        other => {
            let mut text = String::new();
            crate::secret::canonical_json(&other, &mut text);
            serde_json::Value::String(text)
        }
    }
}

/// Where in `value` a number lies whose text does not survive a store that keeps numbers
/// as 64-bit floats and returns each in its shortest form (Go's `encoding/json`, as Vault
/// does): `key \`a.b\``, or `the value` at the top. Such a store turns
/// `12345678901234567890123` into `1.2345678901234568e+22`, `1.10` into `1.1` and `1.0`
/// into `1`.
fn inexact_number(value: &serde_json::Value, at: &str) -> Option<String> {
    let here = || if at.is_empty() { "the value".to_string() } else { format!("key `{at}`") };
    match value {
        serde_json::Value::Number(n) => {
            let text = n.to_string();
            (float64_text(&text).as_deref() != Some(text.as_str())).then(here)
        }
        serde_json::Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| inexact_number(v, &join_key(at, &i.to_string())))
        }
        serde_json::Value::Object(map) => map.iter().find_map(|(k, v)| inexact_number(v, &join_key(at, k))),
        _ => None,
    }
}

/// The text Go's `encoding/json` writes for the 64-bit float nearest to the JSON number
/// `text`: the shortest digits that read back as that float, in plain notation from 1e-6
/// up to 1e21 and as `d.ddde±x` outside it. None when the number is beyond a float's range.
fn float64_text(text: &str) -> Option<String> {
    let f: f64 = text.parse().ok().filter(|f: &f64| f.is_finite())?;
    let abs = f.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return Some(format!("{f}"));
    }
    let scientific = format!("{f:e}");
    let (digits, exponent) = scientific.split_once('e')?;
    Some(match exponent.strip_prefix('-') {
        Some(negative) => format!("{digits}e-{negative}"),
        None => format!("{digits}e+{exponent:0>2}"),
    })
}

fn join_key(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_string() } else { format!("{at}.{key}") }
}

/// Whether `text` is a repository's `owner/name` as GitHub allows them (letters, digits,
/// `-`, `_` and `.` in each part): the one rule for every place that names a repository.
pub fn is_repository(text: &str) -> bool {
    let part =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    matches!(text.split('/').collect::<Vec<_>>().as_slice(), [owner, name] if part(owner) && part(name))
}

/// The role a store plays in a config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A source (`sources.NAME`, `source`).
    Source,
    /// The merge store.
    MergeStore,
    /// A target's destination.
    Target,
}

/// Why a store call failed: a kind, a message that names the store, the location and what
/// was being done (never a secret value), and a hint when vss knows what to do.
#[derive(Clone, Debug)]
pub struct StoreError {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
    retry: Option<Retry>,
}

/// What the server said of retrying, overriding what the error's kind implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Try again after this long (a `retry-after` header).
    After(std::time::Duration),
    /// Trying again cannot help before the run would end (a spent API quota).
    Never,
}

impl StoreError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), hint: None, retry: None }
    }

    /// The credentials lack a permission, or a login failed.
    pub fn permission(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permission, message)
    }

    /// The store could not be reached or is failing for now (retried).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// A conditional write lost a race (retried by the engine from a fresh read).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// The store holds, or was asked to hold, something vss cannot use.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    /// Something the config names does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// A local I/O error while `context` (which names the file).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match source.kind() {
            Io::Interrupted | Io::WouldBlock => ErrorKind::Unavailable,
            Io::TimedOut => ErrorKind::Timeout,
            Io::PermissionDenied => ErrorKind::Permission,
            _ => ErrorKind::Io,
        };
        Self::new(kind, format!("{}: {source}", context.into()))
    }

    /// Adds what to do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// What to do about it, when known.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The server asked to wait this long before trying again (retried after that wait).
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry = Some(Retry::After(wait));
        self
    }

    /// Trying again cannot help during this run (a spent API quota): never retried.
    pub fn final_(mut self) -> Self {
        self.retry = Some(Retry::Never);
        self
    }

    /// How long the server asked to wait before trying again, if it said.
    pub fn wait(&self) -> Option<std::time::Duration> {
        match self.retry {
            Some(Retry::After(wait)) => Some(wait),
            _ => None,
        }
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self.retry {
            Some(Retry::After(_)) => true,
            Some(Retry::Never) => false,
            None => self.kind.is_retryable(),
        }
    }

    /// This error as a target's failure: `context` says what was being done (`cannot read
    /// source \`common\``), `store` and `location` where.
    pub fn into_failure(self, context: &str, store: &'static str, location: &str) -> Failure {
        let message = if context.is_empty() { self.to_string() } else { format!("{context}: {self}") };
        Failure { kind: self.kind, store: Some(store), location: Some(location.to_string()), message, hint: self.hint }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = match self.kind {
            ErrorKind::Permission => "permission denied: ",
            ErrorKind::Unavailable => "unavailable: ",
            ErrorKind::Conflict => "conflict: ",
            ErrorKind::Timeout => "timed out: ",
            ErrorKind::Quota => "rate limited: ",
            ErrorKind::NotFound => "not found: ",
            _ => "",
        };
        write!(f, "{prefix}{}", self.message)
    }
}

impl std::error::Error for StoreError {}

/// How long a store waits: to connect to its server, and for one request's answer (each
/// attempt). Set once per run from `pipeline.timeouts` ([`set_timeouts`]); every store
/// that talks to a server reads it when it builds its client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting.
    pub connect: std::time::Duration,
    /// One request's answer.
    pub request: std::time::Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: std::time::Duration::from_secs(5), request: std::time::Duration::from_secs(30) }
    }
}

static TIMEOUTS: std::sync::OnceLock<Timeouts> = std::sync::OnceLock::new();

/// Sets the run's timeouts (the first call wins: one run per process).
pub fn set_timeouts(timeouts: Timeouts) {
    let _ = TIMEOUTS.set(timeouts);
}

/// The run's timeouts: as set, else the defaults (5 s to connect, 30 s per request).
pub fn timeouts() -> Timeouts {
    TIMEOUTS.get().copied().unwrap_or_default()
}

/// The error of call `what` to the server at `server` that got no answer within the
/// run's request timeout (`detail`: the HTTP client's own words).
pub fn timed_out(what: &str, server: &str, detail: &str) -> StoreError {
    let limit = timeouts().request.as_secs();
    StoreError::new(ErrorKind::Timeout, format!("{what} at {server}: no answer within {limit} s ({detail})"))
        .with_hint("check that the server answers, or raise `pipeline.timeouts.request`")
}

/// A server's error text, as much of it as is safe to keep: on one line (whitespace
/// collapsed), at most [`SHORT`] characters. Server text is untrusted (some quote the request body); what is
/// kept is still scrubbed of every value before it is printed ([`crate::scrub`]).
pub fn short(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(SHORT) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// How many characters of a server's error text are kept ([`short`]).
pub const SHORT: usize = 200;

/// An error and its causes, each by its `Display`, joined with `: `, a cause whose text
/// is already there left out (clients' own renderings append long `Debug` dumps, or
/// repeat their cause).
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// The I/O every store implements, at one location (a directory, a KV prefix…). `Debug`
/// must not print values (stores that cache values implement it by hand).
pub trait Store: Send + Sync + fmt::Debug {
    /// Every secret path below the location, sorted.
    fn list(&self) -> impl Future<Output = Result<Vec<SecretPath>, StoreError>> + Send;

    /// One secret and its ownership marker; `None` when it does not exist.
    fn read(&self, path: &SecretPath) -> impl Future<Output = Result<Option<LiveSecret>, StoreError>> + Send;

    /// Creates or replaces a secret, recording `owner` (a target name) as its
    /// `managed-by=vss` ownership marker.
    fn write(
        &self,
        path: &SecretPath,
        value: &SecretValue,
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes a secret and its marker; deleting a missing secret is not an error.
    fn delete(&self, path: &SecretPath) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many secrets one [`Store::read_batch`] call reads at most (1: no batch API).
    fn batch_size(&self) -> usize {
        1
    }

    /// Reads several secrets (at most [`Store::batch_size`]); missing ones are left out.
    fn read_batch(
        &self,
        paths: &[SecretPath],
    ) -> impl Future<Output = Result<Vec<(SecretPath, LiveSecret)>, StoreError>> + Send {
        async move {
            let mut found = Vec::with_capacity(paths.len());
            for path in paths {
                if let Some(secret) = self.read(path).await? {
                    found.push((path.clone(), secret));
                }
            }
            Ok(found)
        }
    }

    /// How desired secrets become this store's flat names, for stores whose values are
    /// one string per name ([`ValueShape::FlatStrings`]).
    fn flattening(&self) -> Option<crate::flatten::FlattenOptions> {
        None
    }

    /// The exclusion pattern `name` matches, if any: such a name is never written nor
    /// deleted, and is reported as excluded.
    fn excluded(&self, name: &SecretPath) -> Option<String> {
        let _ = name;
        None
    }

    /// Why the store would refuse `name`, if it would (its naming rules), so the plan
    /// can refuse it before anything is written.
    fn name_error(&self, name: &SecretPath) -> Option<String> {
        let _ = name;
        None
    }

    /// Why the store would refuse a target's desired state (as its names, after any
    /// flattening), if it would: rules that see a whole value or every name at once (the
    /// keys a Kubernetes Secret of type `kubernetes.io/tls` must have). Checked when the
    /// plan is made, before anything is read or written; every problem is named.
    fn desired_error(&self, desired: &crate::secret::SecretMap) -> Option<String> {
        let _ = desired;
        None
    }

    /// The key of the fingerprints its reads return ([`crate::secret::LiveValue::Fingerprint`]),
    /// for stores that record fingerprints instead of returning values.
    fn fingerprints(&self) -> Option<&crate::secret::Fingerprinter> {
        None
    }

    /// What to say of secrets this store reports as `unverified` (present, with nothing
    /// to prove them equal or different): why, and what to set if something would help.
    fn unverified_hint(&self) -> Option<String> {
        None
    }

    /// The API quota the store's calls draw from, shared by every store of one login
    /// (GitHub's rate limit); `None` for stores without one. The engine checks a run's
    /// planned calls against it before the run's first write, and each target's before
    /// its own ([`quota::QuotaPool`]).
    fn quota(&self) -> Option<&std::sync::Arc<quota::QuotaPool>> {
        None
    }

    /// How many API calls applying `changes` changes (writes and deletes) takes, with the
    /// store's own overhead (a public key, recording what was written).
    fn calls_for(&self, changes: usize) -> usize {
        changes
    }

    /// The location's own settings that the config declares (a GitHub environment's
    /// protection rules), compared with what the store holds: the change, or `None` when
    /// the config declares none or they match. Called before the location is read: a
    /// location that does not exist yet reads as empty once this has said it will be
    /// created.
    fn settings(&self) -> impl Future<Output = Result<Option<crate::diff::SettingsChange>, StoreError>> + Send {
        async { Ok(None) }
    }

    /// Creates or updates the location to its declared settings, after [`Store::settings`]
    /// found a change, before any secret is written (never in a dry run).
    fn apply_settings(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// Called once before a target's writes (never in a dry run), with every path about to
    /// be written for `owner`: a store that keeps ownership markers apart from the values
    /// records them here first, so that an interrupted run leaves no value of vss's
    /// without its marker.
    fn prepare(&self, paths: &[SecretPath], owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (paths, owner);
        async { Ok(()) }
    }

    /// Called once after a target's changes were applied (also when some failed, never in
    /// a dry run): a store that keeps a record of its writes saves it here. Only the writes
    /// and deletes that succeeded were recorded.
    fn finish(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// The location's state from the store's own record of it (a Vault merge bundle's
    /// manifest), when the record is current and reading it costs fewer calls than listing
    /// and reading every secret; `None` otherwise, and the engine lists and reads. Secrets
    /// may come back as fingerprints keyed by [`Store::fingerprints`].
    fn recorded_state(&self) -> impl Future<Output = Result<Option<LiveState>, StoreError>> + Send {
        async { Ok(None) }
    }

    /// A merge bundle as its last complete MERGE left it, with values: never part of one
    /// MERGE and part of another (a Vault bundle's manifest names the version of every
    /// secret). `None` when the store keeps no such record: the engine lists and reads.
    fn complete_state(&self) -> impl Future<Output = Result<Option<LiveState>, StoreError>> + Send {
        async { Ok(None) }
    }

    /// Applies writes and deletes as one change. Only called on stores with
    /// [`Capabilities::atomic_commit`]; elsewhere it applies them one by one.
    fn commit(
        &self,
        writes: &[(SecretPath, SecretValue)],
        deletes: &[SecretPath],
        owner: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for (path, value) in writes {
                self.write(path, value, owner).await?;
            }
            for path in deletes {
                self.delete(path).await?;
            }
            Ok(())
        }
    }
}

/// A kind of store, as registered in the `stores!` list: everything about it that is not
/// I/O.
pub trait StoreKind: Store + Sized + 'static {
    /// The config key (`file`, `vault`…), also its name in reports and stats.
    const NAME: &'static str;
    /// What it can do.
    const CAPABILITIES: Capabilities;
    /// The key of its top-level defaults block (`vault:`), if it has one. Stores that share
    /// a block (`aws` and `s3` share `aws:`) name the same key and the same `Defaults`.
    const DEFAULTS_KEY: Option<&'static str> = None;
    /// Target-level keys that are shorthand for this store as the destination
    /// (`account_id: "…"` for `aws: { account_id: "…" }`); see [`StoreKind::shorthand`].
    const SHORTHANDS: &'static [&'static str] = &[];

    /// Its options (`file: { path: … }`).
    type Config: DeserializeOwned + JsonSchema + Clone + fmt::Debug + Send + Sync + 'static;
    /// Its top-level defaults block (`()` when it has none).
    type Defaults: DeserializeOwned + JsonSchema + Clone + fmt::Debug + Default + Send + Sync + 'static;
    /// What one run shares between the locations of this store (logins, credentials);
    /// stores that share a session name the same type.
    type Session: Default + fmt::Debug + Send + Sync + 'static;

    /// What a location with `config` can do: [`StoreKind::CAPABILITIES`], unless the
    /// store's options change it (a Kubernetes location of one Secret holds flat names).
    fn capabilities_of(config: &Self::Config) -> Capabilities {
        let _ = config;
        Self::CAPABILITIES
    }

    /// What this opened location can do ([`StoreKind::capabilities_of`] its config).
    fn capabilities(&self) -> Capabilities {
        Self::CAPABILITIES
    }

    /// A short description of a location, for reports: `file ./out/prod`.
    fn describe(config: &Self::Config) -> String;

    /// Its own config rules, beyond the types (`span` is where the store block is written).
    fn check(config: &Self::Config, role: Role, defaults: &Self::Defaults, span: Span, out: &mut Vec<Diagnostic>) {
        let _ = (config, role, defaults, span, out);
    }

    /// How a location is reached, when that is worth showing in `vss graph` (the AWS role
    /// assumed); never contacts the store.
    fn route(config: &Self::Config, defaults: &Self::Defaults) -> Option<String> {
        let _ = (config, defaults);
        None
    }

    /// Where the location is, for telling at `validate` whether two locations overlap
    /// (one inside the other: they would overwrite or delete each other's secrets);
    /// `None` when that cannot be known without the store. Relative paths resolve against
    /// `base_dir`.
    fn locus(config: &Self::Config, defaults: &Self::Defaults, base_dir: &std::path::Path) -> Option<Locus> {
        let _ = (config, defaults, base_dir);
        None
    }

    /// The same location re-pointed at another repository for one run (`vss ensure
    /// --repo`), for stores whose locations are repositories; `None` for the others.
    fn retarget(config: &Self::Config, repository: &str) -> Option<Self::Config> {
        let _ = (config, repository);
        None
    }

    /// Which scope of which place a location is, for stores whose places hold several
    /// scopes of secrets (a GitHub repository's Actions, environment, Dependabot and
    /// Codespaces secrets): `vss status` compares the names the scopes of one place share,
    /// and the audit log records the scope.
    fn scope(config: &Self::Config) -> Option<Scope> {
        let _ = config;
        None
    }

    /// Rules of its top-level defaults block.
    fn check_defaults(defaults: &Self::Defaults, out: &mut Vec<Diagnostic>) {
        let _ = (defaults, out);
    }

    /// Applies the target-level shorthand `key` (one of [`StoreKind::SHORTHANDS`]) of
    /// target `target`: returns a new destination when the target has none (`existing` is
    /// `None`), or fills in the one it has.
    fn shorthand(
        target: &str,
        key: &Spanned<String>,
        value: &Spanned<String>,
        existing: Option<&mut Self::Config>,
    ) -> Result<Option<Self::Config>, Diagnostic> {
        let _ = (target, value, existing);
        Err(Diagnostic::at(key.span, format!("`{}` is not a shorthand of the `{}` store", key.value, Self::NAME)))
    }

    /// Opens the store at its location, or at the location of one target's bundle when it
    /// is the merge store.
    fn open(
        config: &Self::Config,
        ctx: &OpenContext<'_>,
        bundle: Option<&Bundle<'_>>,
    ) -> impl Future<Output = Result<Self, StoreError>> + Send;
}

/// Where a location is, as far as the config tells: a system (a server, an account and
/// region, a repository's scope) and a path in it. Two loci overlap when they are in the
/// same system and one path is a prefix of the other ([`Locus::overlaps`]). Sorted, a
/// locus comes right after every locus that contains it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Locus {
    /// The system (`Vault https://vault:8200`, `AWS Secrets Manager 1111 us-east-1`).
    pub system: String,
    /// The path within it, as segments (a folder) or as one string prefix (flat names).
    pub path: LocusPath,
}

/// A [`Locus`]'s path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LocusPath {
    /// A folder: overlaps a folder it contains or is contained in, segment by segment.
    Segments(Vec<String>),
    /// A name prefix: overlaps any prefix that starts with it, or that it starts with.
    Prefix(String),
}

impl Locus {
    /// A folder `path` (`/`-separated; `.` and empty segments dropped) in `system`.
    pub fn segments(system: impl Into<String>, path: &str) -> Self {
        let segments = path.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_string).collect();
        Locus { system: system.into(), path: LocusPath::Segments(segments) }
    }

    /// A name `prefix` in `system`.
    pub fn prefix(system: impl Into<String>, prefix: &str) -> Self {
        Locus { system: system.into(), path: LocusPath::Prefix(prefix.to_string()) }
    }

    /// Whether one of the two is inside the other.
    pub fn overlaps(&self, other: &Locus) -> bool {
        if self.system != other.system {
            return false;
        }
        match (&self.path, &other.path) {
            (LocusPath::Segments(a), LocusPath::Segments(b)) => a.iter().zip(b).all(|(x, y)| x == y),
            (LocusPath::Prefix(a), LocusPath::Prefix(b)) => a.starts_with(b.as_str()) || b.starts_with(a.as_str()),
            _ => false,
        }
    }
}

/// One scope of a place ([`StoreKind::scope`]).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    /// The place: `github acme/app`.
    pub place: String,
    /// The scope within it: `actions`, `environment production`, `dependabot`.
    pub name: String,
}

/// Which bundle of the merge store to open: the target, and the names it merges.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    /// The target whose bundle it is.
    pub target: &'a str,
    /// The names of its imports (and parent), recorded in the bundle where the store can.
    pub sources: &'a [String],
}

/// What opening a store needs besides its config.
#[derive(Clone, Copy, Debug)]
pub struct OpenContext<'a> {
    /// Relative paths in the config are relative to this directory (the config file's).
    pub base_dir: &'a Path,
    /// Where the store counts its calls.
    pub stats: &'a Stats,
    /// The config's top-level defaults blocks.
    pub defaults: &'a StoreDefaults,
    /// The run's shared connections.
    pub sessions: &'a Sessions,
    /// The run's stable fingerprint key (`VSS_FINGERPRINT_KEY`), when set: what write-only
    /// stores record their writes with.
    pub fingerprints: Option<&'a crate::secret::Fingerprinter>,
}

impl OpenContext<'_> {
    /// The defaults block of store `K`.
    pub fn defaults<K: StoreKind>(&self) -> &K::Defaults {
        self.defaults.get::<K>()
    }

    /// The run's session of store `K`.
    pub fn session<K: StoreKind>(&self) -> Arc<K::Session> {
        self.sessions.get::<K::Session>()
    }

    /// The call counter of store `K`.
    pub fn calls<K: StoreKind>(&self) -> Arc<stats::CallCounter> {
        self.stats.counter(K::NAME)
    }
}

/// One parsed top-level defaults block, typed by the store that owns its key.
pub trait DefaultsBlock: Any + fmt::Debug + Send + Sync {
    /// For downcasting to the store's `Defaults`.
    fn as_any(&self) -> &dyn Any;
}

impl<T: Any + fmt::Debug + Default + Send + Sync> DefaultsBlock for T {
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The config's top-level defaults blocks (`vault:`, `aws:`), by key; a block not written
/// holds its type's default.
#[derive(Debug)]
pub struct StoreDefaults {
    blocks: BTreeMap<&'static str, Arc<dyn DefaultsBlock>>,
}

impl Clone for StoreDefaults {
    fn clone(&self) -> Self {
        Self { blocks: self.blocks.clone() }
    }
}

impl StoreDefaults {
    /// The defaults of store `K` (its type's default when `K` has no block).
    pub fn get<K: StoreKind>(&self) -> &K::Defaults {
        static NONE: LazyLock<Mutex<HashMap<TypeId, &'static (dyn Any + Send + Sync)>>> =
            LazyLock::new(Default::default);
        match K::DEFAULTS_KEY.and_then(|key| self.blocks.get(key)) {
            Some(block) => (**block)
                .as_any()
                .downcast_ref::<K::Defaults>()
                .expect("stores that share a defaults key share its type (checked by a unit test)"),
            None => {
                // A store without a block: one leaked default value per type, for the process.
                let mut none = NONE.lock().unwrap_or_else(|e| e.into_inner());
                let value = *none
                    .entry(TypeId::of::<K::Defaults>())
                    .or_insert_with(|| Box::leak(Box::new(K::Defaults::default())));
                value.downcast_ref::<K::Defaults>().expect("keyed by its own type")
            }
        }
    }

    /// Sets the block under `key` (a value of the type its stores declare).
    pub fn set(&mut self, key: &'static str, block: Arc<dyn DefaultsBlock>) {
        self.blocks.insert(key, block);
    }
}

/// Connections opened during one run and shared by the stores that use them (one login
/// per distinct connection), one per session type.
#[derive(Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.sessions.lock().map(|s| s.len()).unwrap_or(0);
        write!(f, "Sessions({n} open)")
    }
}

impl Sessions {
    /// The session of type `S`, created on first use.
    pub fn get<S: Default + Send + Sync + 'static>(&self) -> Arc<S> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.entry(TypeId::of::<S>()).or_insert_with(|| Arc::new(S::default())).clone();
        session.downcast::<S>().expect("keyed by its own type")
    }
}

/// Generates, from the one list of stores, their modules, the [`StoreConfig`] enum,
/// [`AnyStore`] and their dispatch, and the defaults blocks. Each line: the doc comment,
/// the variant, the store type, the cargo feature that builds it (if any), and the module
/// to declare (unless several stores share one, as `aws` and `s3` share `aws`).
macro_rules! stores {
    (@module $module:ident) => {
        pub mod $module;
    };
    (@module) => {};
    ($( $(#[doc = $doc:literal])* $variant:ident($store:ty) $(if $cfg:meta)? $(, mod $module:ident)?; )*) => {
        $( $(#[cfg($cfg)])? stores!(@module $($module)?); )*

        /// Every store vss knows, as written in a config (`file: {...}`): config parsing and
        /// the JSON Schema come from this enum.
        #[derive(Clone, Debug, Deserialize, JsonSchema)]
        #[serde(rename_all = "snake_case", deny_unknown_fields)]
        pub enum StoreConfig {
            $( $(#[doc = $doc])* $(#[cfg($cfg)])? $variant(Box<<$store as StoreKind>::Config>), )*
        }

        /// A store opened at one location.
        #[derive(Debug)]
        pub enum AnyStore {
            $( $(#[doc = $doc])* $(#[cfg($cfg)])? $variant(Box<$store>), )*
        }

        impl StoreConfig {
            /// The config key of every store, in list order.
            pub const KINDS: &'static [&'static str] = &[ $( $(#[cfg($cfg)])? <$store as StoreKind>::NAME, )* ];

            /// The config key of this store, also its name in reports.
            pub fn kind(&self) -> &'static str {
                match self { $( $(#[cfg($cfg)])? StoreConfig::$variant(_) => <$store as StoreKind>::NAME, )* }
            }

            /// What this store can do.
            pub fn capabilities(&self) -> Capabilities {
                match self { $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => <$store as StoreKind>::capabilities_of(c), )* }
            }

            /// A short human description of the location, e.g. `file ./out/prod`.
            pub fn describe(&self) -> String {
                match self { $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => <$store as StoreKind>::describe(c), )* }
            }

            /// This location re-pointed at `repository` (`vss ensure --repo`), when its
            /// store's locations are repositories.
            pub fn retarget(&self, repository: &str) -> Option<StoreConfig> {
                match self {
                    $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => {
                        <$store as StoreKind>::retarget(c, repository).map(|c| StoreConfig::$variant(Box::new(c)))
                    } )*
                }
            }

            /// Which scope of which place the location is, when its store has scopes.
            pub fn scope(&self) -> Option<Scope> {
                match self { $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => <$store as StoreKind>::scope(c), )* }
            }

            /// How the location is reached, when worth showing (the AWS role assumed).
            pub fn route(&self, defaults: &StoreDefaults) -> Option<String> {
                match self {
                    $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => <$store as StoreKind>::route(c, defaults.get::<$store>()), )*
                }
            }

            /// Where the location is, for overlap checks ([`StoreKind::locus`]).
            pub fn locus(&self, defaults: &StoreDefaults, base_dir: &std::path::Path) -> Option<Locus> {
                match self {
                    $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => <$store as StoreKind>::locus(c, defaults.get::<$store>(), base_dir), )*
                }
            }

            /// The store's own config rules for this location in `role`.
            pub fn check(&self, role: Role, defaults: &StoreDefaults, span: Span, out: &mut Vec<Diagnostic>) {
                match self {
                    $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => {
                        <$store as StoreKind>::check(c, role, defaults.get::<$store>(), span, out)
                    } )*
                }
            }

            /// Every target-level shorthand key of every store, with the store's name.
            pub fn shorthands() -> Vec<(&'static str, &'static str)> {
                let mut keys = Vec::new();
                $( $(#[cfg($cfg)])? for key in <$store as StoreKind>::SHORTHANDS {
                    keys.push((*key, <$store as StoreKind>::NAME));
                } )*
                keys
            }

            /// Applies the target-level shorthand `key: value` of `target` to its
            /// destinations: makes the owning store's destination, or fills in the one
            /// written (reporting a conflict with another store).
            pub fn apply_shorthand(
                target: &str,
                key: &Spanned<String>,
                value: &Spanned<String>,
                destinations: &mut Vec<(Spanned<String>, StoreConfig)>,
            ) -> Result<(), Diagnostic> {
                $( $(#[cfg($cfg)])? if <$store as StoreKind>::SHORTHANDS.contains(&key.value.as_str()) {
                    let kind = <$store as StoreKind>::NAME;
                    return match destinations.first_mut() {
                        None => {
                            if let Some(config) = <$store as StoreKind>::shorthand(target, key, value, None)? {
                                let key = Spanned { span: key.span, value: kind.to_string() };
                                destinations.push((key, StoreConfig::$variant(Box::new(config))));
                            }
                            Ok(())
                        }
                        Some((_, StoreConfig::$variant(config))) => {
                            <$store as StoreKind>::shorthand(target, key, value, Some(config)).map(|_| ())
                        }
                        #[allow(unreachable_patterns)]
                        Some((other, _)) => Err(Diagnostic::at(
                            key.span,
                            format!(
                                "`{}` is shorthand for a `{kind}` destination, but target `{target}` syncs to `{}`",
                                key.value, other.value
                            ),
                        )
                        .with_label("move it into the destination block, or remove it")),
                    };
                } )*
                Err(Diagnostic::at(key.span, format!("`{}` is not a shorthand of any store", key.value)))
            }
        }

        impl StoreDefaults {
            /// Every top-level defaults key, in list order, without repeats.
            pub fn keys() -> Vec<&'static str> {
                let mut keys: Vec<&'static str> = Vec::new();
                $( $(#[cfg($cfg)])? if let Some(key) = <$store as StoreKind>::DEFAULTS_KEY {
                    if !keys.contains(&key) { keys.push(key); }
                } )*
                keys
            }

            /// Parses the top-level block `key` as the type of the first store that owns it;
            /// `None` when it failed to parse (its errors are recorded).
            pub fn parse_block<'de, D: serde::Deserializer<'de>>(
                key: &str,
                deserializer: D,
            ) -> Result<Option<Arc<dyn DefaultsBlock>>, D::Error> {
                $( $(#[cfg($cfg)])? if <$store as StoreKind>::DEFAULTS_KEY == Some(key) {
                    // `vault:` with nothing under it is no block, as if it were not written.
                    let parsed = Option::<Lenient<<$store as StoreKind>::Defaults>>::deserialize(deserializer)?;
                    return Ok(parsed.and_then(|p| p.0).map(|block| Arc::new(block) as Arc<dyn DefaultsBlock>));
                } )*
                Err(serde::de::Error::custom(format!("`{key}` is not a store's defaults block")))
            }

            /// Checks every block with the rules of the stores that own it.
            pub fn check(&self, out: &mut Vec<Diagnostic>) {
                let mut seen: Vec<&'static str> = Vec::new();
                $( $(#[cfg($cfg)])? if let Some(key) = <$store as StoreKind>::DEFAULTS_KEY
                    && !seen.contains(&key)
                {
                    seen.push(key);
                    <$store as StoreKind>::check_defaults(self.get::<$store>(), out);
                } )*
            }

            /// The JSON Schema of each top-level defaults block, by key.
            pub fn schemas(generator: &mut schemars::SchemaGenerator) -> Vec<(&'static str, schemars::Schema)> {
                let mut out: Vec<(&'static str, schemars::Schema)> = Vec::new();
                $( $(#[cfg($cfg)])? if let Some(key) = <$store as StoreKind>::DEFAULTS_KEY
                    && !out.iter().any(|(k, _)| *k == key)
                {
                    out.push((key, generator.subschema_for::<<$store as StoreKind>::Defaults>()));
                } )*
                out
            }

            /// Whether every store that names a key declares the same type for it.
            #[cfg(test)]
            fn consistent() -> bool {
                let mut types: Vec<(&'static str, TypeId)> = Vec::new();
                $( $(#[cfg($cfg)])? if let Some(key) = <$store as StoreKind>::DEFAULTS_KEY {
                    let id = TypeId::of::<<$store as StoreKind>::Defaults>();
                    if types.iter().any(|(k, t)| *k == key && *t != id) { return false; }
                    types.push((key, id));
                } )*
                true
            }
        }

        impl Default for StoreDefaults {
            fn default() -> Self {
                let mut defaults = StoreDefaults { blocks: BTreeMap::new() };
                $( $(#[cfg($cfg)])? if let Some(key) = <$store as StoreKind>::DEFAULTS_KEY {
                    defaults.blocks.entry(key).or_insert_with(|| {
                        Arc::new(<<$store as StoreKind>::Defaults as Default>::default()) as Arc<dyn DefaultsBlock>
                    });
                } )*
                defaults
            }
        }

        impl AnyStore {
            /// Opens `config` at its own location (a source or a target), or at the location
            /// of one target's bundle (the merge store).
            pub async fn open(
                config: &StoreConfig,
                ctx: &OpenContext<'_>,
                bundle: Option<&Bundle<'_>>,
            ) -> Result<Self, StoreError> {
                match config {
                    $( $(#[cfg($cfg)])? StoreConfig::$variant(c) => {
                        Ok(AnyStore::$variant(Box::new(<$store as StoreKind>::open(c, ctx, bundle).await?)))
                    } )*
                }
            }

            /// The config key of the store.
            pub fn kind(&self) -> &'static str {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(_) => <$store as StoreKind>::NAME, )* }
            }

            /// What the store can do.
            pub fn capabilities(&self) -> Capabilities {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => <$store as StoreKind>::capabilities(s), )* }
            }
        }

        impl Store for AnyStore {
            async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.list().await, )* }
            }

            async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.read(path).await, )* }
            }

            async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.write(path, value, owner).await, )* }
            }

            async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.delete(path).await, )* }
            }

            fn batch_size(&self) -> usize {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.batch_size(), )* }
            }

            async fn read_batch(&self, paths: &[SecretPath]) -> Result<Vec<(SecretPath, LiveSecret)>, StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.read_batch(paths).await, )* }
            }

            async fn commit(
                &self,
                writes: &[(SecretPath, SecretValue)],
                deletes: &[SecretPath],
                owner: &str,
            ) -> Result<(), StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.commit(writes, deletes, owner).await, )* }
            }

            fn flattening(&self) -> Option<crate::flatten::FlattenOptions> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.flattening(), )* }
            }

            fn excluded(&self, name: &SecretPath) -> Option<String> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.excluded(name), )* }
            }

            fn name_error(&self, name: &SecretPath) -> Option<String> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.name_error(name), )* }
            }

            fn desired_error(&self, desired: &crate::secret::SecretMap) -> Option<String> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.desired_error(desired), )* }
            }

            fn fingerprints(&self) -> Option<&crate::secret::Fingerprinter> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.fingerprints(), )* }
            }

            fn unverified_hint(&self) -> Option<String> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.unverified_hint(), )* }
            }

            fn quota(&self) -> Option<&std::sync::Arc<quota::QuotaPool>> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.quota(), )* }
            }

            fn calls_for(&self, changes: usize) -> usize {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.calls_for(changes), )* }
            }

            async fn prepare(&self, paths: &[SecretPath], owner: &str) -> Result<(), StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.prepare(paths, owner).await, )* }
            }

            async fn finish(&self) -> Result<(), StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.finish().await, )* }
            }

            async fn recorded_state(&self) -> Result<Option<LiveState>, StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.recorded_state().await, )* }
            }

            async fn complete_state(&self) -> Result<Option<LiveState>, StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.complete_state().await, )* }
            }

            async fn settings(&self) -> Result<Option<crate::diff::SettingsChange>, StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.settings().await, )* }
            }

            async fn apply_settings(&self) -> Result<(), StoreError> {
                match self { $( $(#[cfg($cfg)])? AnyStore::$variant(s) => s.apply_settings().await, )* }
            }
        }
    };
}

stores! {
    /// A YAML/JSON file (one mapping of secret path -> value) or a directory (one file per
    /// secret). The embedded store: no server needed.
    File(file::FileStore), mod file;
    /// HashiCorp Vault / OpenBao KV version 2.
    Vault(vault::VaultStore) if feature = "vault", mod vault;
    /// AWS Secrets Manager, in any account (source and target).
    Aws(aws::secrets_manager::SecretsManagerStore) if feature = "aws";
    /// S3: one JSON object per bundle (merge store only).
    S3(aws::s3::S3BundleStore) if feature = "aws";
    /// GitHub Actions, Dependabot and Codespaces secrets of a repository, an environment
    /// or an organization (target; a source lists names only, and cannot be imported).
    Github(github::GithubStore) if feature = "github", mod github;
    /// Google Cloud Secret Manager, in any project (source and target).
    Gcp(gcp::GcpStore) if feature = "gcp", mod gcp;
    /// Kubernetes Secrets, in any namespace of any cluster (source and target).
    Kubernetes(kubernetes::KubernetesStore) if feature = "kubernetes", mod kubernetes;
    /// Secrets handed to vss in its environment (`${{ toJSON(secrets) }}` in a GitHub
    /// Actions workflow, or variables with a prefix): source only.
    Env(env::EnvStore), mod env;
}

/// A shared, cheaply clonable store.
pub type SharedStore = Arc<AnyStore>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::file::FileStore;

    #[test]
    fn kinds_list_every_variant_of_the_schema() {
        let schema = schemars::schema_for!(StoreConfig).to_value();
        let mut kinds: Vec<String> = schema["oneOf"]
            .as_array()
            .expect("externally tagged enum")
            .iter()
            .flat_map(|v| v["properties"].as_object().expect("one property per variant").keys().cloned())
            .collect();
        kinds.sort();
        let mut registered: Vec<&str> = StoreConfig::KINDS.to_vec();
        registered.sort();
        assert_eq!(kinds, registered);
    }

    #[test]
    fn stores_sharing_a_defaults_key_share_its_type() {
        assert!(StoreDefaults::consistent());
        let defaults = StoreDefaults::default();
        assert_eq!(defaults.blocks.keys().copied().collect::<Vec<_>>(), {
            let mut keys = StoreDefaults::keys();
            keys.sort();
            keys
        });
    }

    #[test]
    fn capabilities_refuse_values_of_the_wrong_shape_or_size() {
        let caps = |value_shape, max_value_bytes| Capabilities {
            roles: Roles { source: true, merge_store: true, target: true },
            reads_values: true,
            value_shape,
            min_value_bytes: 0,
            max_value_bytes,
            exact_numbers: true,
            ownership: true,
            atomic_commit: false,
        };
        let object = SecretValue::new(serde_json::json!({"k": "v"}));
        let string = SecretValue::new(serde_json::json!("0123456789"));
        assert!(caps(ValueShape::Object, None).accepts(&object).is_ok());
        assert!(caps(ValueShape::Object, None).accepts(&string).unwrap_err().contains("not an object"));
        assert!(caps(ValueShape::FlatStrings, None).accepts(&object).unwrap_err().contains("not a string"));
        assert!(caps(ValueShape::Any, Some(10)).accepts(&string).is_ok(), "a string counts its text, not its quotes");
        assert_eq!(
            caps(ValueShape::Any, Some(9)).accepts(&string).unwrap_err(),
            "it is 10 bytes, over the store's limit of 9"
        );
        let at_least_one = Capabilities { min_value_bytes: 1, ..caps(ValueShape::Any, None) };
        let empty = SecretValue::new(serde_json::json!(""));
        assert_eq!(at_least_one.accepts(&empty).unwrap_err(), "it is 0 bytes, under the store's minimum of 1");
    }

    #[test]
    fn stores_that_keep_floats_refuse_numbers_whose_text_would_change_naming_the_key() {
        let caps = Capabilities { exact_numbers: false, value_shape: ValueShape::Object, ..FileStore::CAPABILITIES };
        let accepts = |text: &str| caps.accepts(&SecretValue::new(serde_json::from_str(text).unwrap()));
        for exact in ["9007199254740992", "1.5", "0.1", "1e-7", "1e+21", "100000000000000000000", "-0", "5e-324"] {
            assert!(accepts(&format!(r#"{{"n": {exact}}}"#)).is_ok(), "{exact} survives a 64-bit float");
        }
        for changed in ["9007199254740993", "1.10", "1.0", "1e20", "0.0000001", "1e400", "12345678901234567890123"] {
            assert!(accepts(&format!(r#"{{"n": {changed}}}"#)).is_err(), "{changed} would change");
        }
        let refused = accepts(r#"{"db": {"ids": [1, 9007199254740993]}}"#).unwrap_err();
        assert!(refused.starts_with("key `db.ids.1` holds a number whose text the store would change"), "{refused}");
        assert!(FileStore::CAPABILITIES.accepts(&SecretValue::new(serde_json::json!({"n": u64::MAX}))).is_ok());
    }

    #[test]
    fn object_or_text_stores_hold_scalars_as_their_text() {
        let caps = Capabilities { value_shape: ValueShape::ObjectOrText, ..FileStore::CAPABILITIES };
        let held = |v: serde_json::Value| caps.normalize(&SecretValue::new(v)).expose();
        assert_eq!(held(serde_json::json!(42)), serde_json::json!("42"));
        assert_eq!(held(serde_json::json!([1, "a"])), serde_json::json!("[1,\"a\"]"));
        assert_eq!(held(serde_json::json!("text")), serde_json::json!("text"));
        assert_eq!(
            held(serde_json::json!(" {\"b\": 1, \"a\": 1.10}")),
            serde_json::from_str::<serde_json::Value>(r#"{"a": 1.10, "b": 1}"#).unwrap()
        );
        assert_eq!(held(serde_json::json!("[1]")), serde_json::json!("[1]"));
        assert_eq!(held(serde_json::json!({"k": 1})), serde_json::json!({"k": 1}));
        let any = FileStore::CAPABILITIES;
        assert_eq!(any.normalize(&SecretValue::new(serde_json::json!(42))).expose(), serde_json::json!(42));
    }

    #[test]
    fn text_map_stores_hold_keys_as_text_and_binary_that_is_text_reads_as_text() {
        let caps = Capabilities { value_shape: ValueShape::TextMap, ..FileStore::CAPABILITIES };
        let held = |v: serde_json::Value| caps.normalize(&SecretValue::new(v)).expose();
        assert_eq!(
            held(serde_json::json!({"port": 5432, "on": true, "o": {"a": 1}, "s": "x"})),
            serde_json::json!({"port": "5432", "on": "true", "o": "{\"a\":1}", "s": "x"})
        );
        assert_eq!(held(serde_json::json!({"b": {"$binary": "aGk="}})), serde_json::json!({"b": "hi"}));
        assert_eq!(held(serde_json::json!({"b": {"$binary": "AP8="}})), serde_json::json!({"b": {"$binary": "AP8="}}));
        assert_eq!(held(serde_json::json!({"b": {"$binary": "aGVsbG8="}})), serde_json::json!({"b": "hello"}));
        for not_base64 in ["aGVsbG8", "a=bc"] {
            let kept = serde_json::json!({"b": {"$binary": not_base64}});
            assert_eq!(held(kept.clone()), kept, "not base64: held as it is");
        }
    }

    #[test]
    fn server_text_is_cut_to_one_short_line() {
        assert_eq!(short("1 error occurred:\n\t* permission denied\n\n"), "1 error occurred: * permission denied");
        let long = "x".repeat(SHORT + 50);
        assert_eq!(short(&long).chars().count(), SHORT + 1);
        assert!(short(&long).ends_with('…'));
    }

    #[test]
    fn sessions_are_shared_by_type() {
        #[derive(Default)]
        struct Counter(std::sync::atomic::AtomicUsize);
        let sessions = Sessions::default();
        sessions.get::<Counter>().0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(sessions.get::<Counter>().0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn errors_carry_their_kind_and_hint() {
        let e = StoreError::permission("GET x").with_hint("grant read");
        assert_eq!(
            (e.kind(), e.to_string().as_str(), e.hint()),
            (ErrorKind::Permission, "permission denied: GET x", Some("grant read"))
        );
        let io = StoreError::io("cannot read f", std::io::Error::from(std::io::ErrorKind::Interrupted));
        assert!(io.is_retryable());
        let io = StoreError::io("cannot read f", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(io.kind(), ErrorKind::Io);
    }
}
