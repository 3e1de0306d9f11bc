//! Stores: where secrets are read from and written to. A store does I/O and nothing else:
//! it does not retry, sleep, print, or know about dry runs. [`retry`] wraps every call,
//! [`stats`] counts them, and the engine decides what to call.
//!
//! Adding a store = one file here, one variant of [`StoreConfig`] (plus its name in
//! [`StoreConfig::KINDS`]) and one arm in [`AnyStore`]; the conformance suite
//! ([`conformance`]) then runs against it.

pub mod conformance;
pub mod file;
pub mod retry;
pub mod stats;
#[cfg(feature = "vault")]
pub mod vault;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::diff::LiveSecret;
use crate::secret::{SecretPath, SecretValue};
use crate::store::file::{FileConfig, FileStore};
use crate::store::stats::Stats;
#[cfg(feature = "vault")]
use crate::store::vault::{VaultConfig, VaultDefaults, VaultSessions, VaultStore};

/// Every store vss knows, as written in a config (`file: {...}`). This enum is the one
/// registry: config parsing, the JSON Schema and store construction all come from it.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StoreConfig {
    /// A YAML/JSON file (one mapping of secret path -> value) or a directory (one file per
    /// secret). The embedded store: no server needed.
    File(FileConfig),
    /// HashiCorp Vault / OpenBao KV version 2.
    #[cfg(feature = "vault")]
    Vault(Box<VaultConfig>),
}

impl StoreConfig {
    /// The config key of every variant, in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "file",
        #[cfg(feature = "vault")]
        "vault",
    ];

    /// The config key of this store, also its name in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreConfig::File(_) => "file",
            #[cfg(feature = "vault")]
            StoreConfig::Vault(_) => "vault",
        }
    }

    /// What this store can do.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            StoreConfig::File(_) => FileStore::CAPABILITIES,
            #[cfg(feature = "vault")]
            StoreConfig::Vault(_) => VaultStore::CAPABILITIES,
        }
    }

    /// A short human description of the location, e.g. `file ./out/prod`.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::File(c) => format!("file {}", c.path.value),
            #[cfg(feature = "vault")]
            StoreConfig::Vault(c) => c.describe(),
        }
    }
}

/// Store settings that apply to every store of a kind (the config's top-level blocks).
#[derive(Clone, Debug, Default)]
pub struct StoreDefaults {
    /// The top-level `vault:` block.
    #[cfg(feature = "vault")]
    pub vault: VaultDefaults,
}

/// Connections opened during one run and shared by the stores that use them (one login
/// per distinct connection).
#[derive(Debug, Default)]
pub struct Sessions {
    /// Vault clients.
    #[cfg(feature = "vault")]
    pub vault: VaultSessions,
}

/// What a store can do; validation and the engine read these instead of asking which
/// store it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Can be a source.
    pub source: bool,
    /// Can be the merge store.
    pub merge_store: bool,
    /// Can be a target.
    pub target: bool,
    /// Stores vss's ownership marker, so orphans can be deleted safely.
    pub ownership: bool,
    /// Can hold a secret whose value is not an object (a string, a number, a list).
    pub scalar_values: bool,
}

/// Why a store call failed. Messages name the store, the location and what to do; never a
/// secret value.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The credentials lack a permission.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// The store could not be reached or is temporarily failing (retried).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A conditional write lost a race with another writer (retried from a fresh read).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store holds something vss cannot use, or the config points at something wrong.
    #[error("{0}")]
    Invalid(String),
    /// A local I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and where.
        context: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Io { source, .. } => {
                matches!(
                    source.kind(),
                    std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
                )
            }
            _ => false,
        }
    }
}

/// The operations every store implements, at one location (a directory, a KV prefix…).
pub trait Store: Send + Sync {
    /// The config key of the store (`file`, `vault`, …), used in reports and stats.
    fn kind(&self) -> &'static str;

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
}

/// A store opened at one location: one arm per store, each delegating.
#[derive(Debug)]
pub enum AnyStore {
    /// The `file` store.
    File(FileStore),
    /// The `vault` store.
    #[cfg(feature = "vault")]
    Vault(VaultStore),
}

/// What opening a store needs besides its config.
#[derive(Clone, Copy, Debug)]
pub struct OpenContext<'a> {
    /// Relative paths in the config are relative to this directory (the config file's).
    pub base_dir: &'a Path,
    /// Where the store counts its calls.
    pub stats: &'a Stats,
    /// The config's defaults for each kind of store.
    pub defaults: &'a StoreDefaults,
    /// The run's shared connections.
    pub sessions: &'a Sessions,
}

impl AnyStore {
    /// Opens `config` at its own location (a source or a target).
    pub async fn open(config: &StoreConfig, ctx: &OpenContext<'_>) -> Result<Self, StoreError> {
        Self::open_at(config, ctx, None).await
    }

    /// Opens `config` at the location of one target's bundle in a merge store.
    pub async fn open_bundle(config: &StoreConfig, ctx: &OpenContext<'_>, target: &str) -> Result<Self, StoreError> {
        Self::open_at(config, ctx, Some(target)).await
    }

    async fn open_at(config: &StoreConfig, ctx: &OpenContext<'_>, bundle: Option<&str>) -> Result<Self, StoreError> {
        let calls = ctx.stats.counter(config.kind());
        match config {
            StoreConfig::File(c) => {
                let mut root = c.resolve(ctx.base_dir);
                if let Some(target) = bundle {
                    root.push(target);
                }
                Ok(AnyStore::File(FileStore::new(root, calls)?))
            }
            #[cfg(feature = "vault")]
            StoreConfig::Vault(c) => {
                let client = ctx.sessions.vault.client(c, &ctx.defaults.vault, calls).await?;
                Ok(AnyStore::Vault(VaultStore::open(client, c, bundle).await?))
            }
        }
    }
}

impl AnyStore {
    /// What the opened store can do.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            AnyStore::File(_) => FileStore::CAPABILITIES,
            #[cfg(feature = "vault")]
            AnyStore::Vault(_) => VaultStore::CAPABILITIES,
        }
    }
}

impl Store for AnyStore {
    fn kind(&self) -> &'static str {
        match self {
            AnyStore::File(s) => s.kind(),
            #[cfg(feature = "vault")]
            AnyStore::Vault(s) => s.kind(),
        }
    }

    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        match self {
            AnyStore::File(s) => s.list().await,
            #[cfg(feature = "vault")]
            AnyStore::Vault(s) => s.list().await,
        }
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        match self {
            AnyStore::File(s) => s.read(path).await,
            #[cfg(feature = "vault")]
            AnyStore::Vault(s) => s.read(path).await,
        }
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::File(s) => s.write(path, value, owner).await,
            #[cfg(feature = "vault")]
            AnyStore::Vault(s) => s.write(path, value, owner).await,
        }
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        match self {
            AnyStore::File(s) => s.delete(path).await,
            #[cfg(feature = "vault")]
            AnyStore::Vault(s) => s.delete(path).await,
        }
    }
}

/// A shared, cheaply clonable store.
pub type SharedStore = Arc<AnyStore>;

#[cfg(test)]
mod tests {
    use super::*;

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
}
