//! Stores: where secrets are read from and written to. A store does I/O and nothing else:
//! it does not retry, sleep, print, or know about dry runs. [`retry`] wraps every call,
//! [`stats`] counts them, and the engine decides what to call.
//!
//! Adding a store = one file here (its config struct, its `Store` impl, its `CAPABILITIES`),
//! one variant of [`StoreConfig`] (and its name in [`StoreConfig::KINDS`], which a test
//! checks against the schema) with its arms in `kind`, `capabilities`, `describe` and
//! `AnyStore::open`, one variant of [`AnyStore`] with one arm in `dispatch!`, and a cargo
//! feature; the conformance suite ([`conformance`]) then runs against it.

#[cfg(feature = "aws")]
pub mod aws;
pub mod conformance;
pub mod file;
pub mod retry;
#[cfg(feature = "aws")]
pub mod s3;
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
#[cfg(feature = "aws")]
use crate::store::aws::{AwsConfig, AwsDefaults, AwsSessions, SecretsManagerStore};
use crate::store::file::{FileConfig, FileStore};
#[cfg(feature = "aws")]
use crate::store::s3::{S3BundleStore, S3Config};
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
    /// AWS Secrets Manager, in any account (source and target).
    #[cfg(feature = "aws")]
    Aws(Box<AwsConfig>),
    /// S3: one JSON object per bundle (merge store only).
    #[cfg(feature = "aws")]
    S3(Box<S3Config>),
}

impl StoreConfig {
    /// The config key of every variant, in declaration order.
    pub const KINDS: &'static [&'static str] = &[
        "file",
        #[cfg(feature = "vault")]
        "vault",
        #[cfg(feature = "aws")]
        "aws",
        #[cfg(feature = "aws")]
        "s3",
    ];

    /// The config key of this store, also its name in reports.
    pub fn kind(&self) -> &'static str {
        match self {
            StoreConfig::File(_) => "file",
            #[cfg(feature = "vault")]
            StoreConfig::Vault(_) => "vault",
            #[cfg(feature = "aws")]
            StoreConfig::Aws(_) => "aws",
            #[cfg(feature = "aws")]
            StoreConfig::S3(_) => "s3",
        }
    }

    /// What this store can do.
    pub fn capabilities(&self) -> Capabilities {
        match self {
            StoreConfig::File(_) => FileStore::CAPABILITIES,
            #[cfg(feature = "vault")]
            StoreConfig::Vault(_) => VaultStore::CAPABILITIES,
            #[cfg(feature = "aws")]
            StoreConfig::Aws(_) => SecretsManagerStore::CAPABILITIES,
            #[cfg(feature = "aws")]
            StoreConfig::S3(_) => S3BundleStore::CAPABILITIES,
        }
    }

    /// A short human description of the location, e.g. `file ./out/prod`.
    pub fn describe(&self) -> String {
        match self {
            StoreConfig::File(c) => format!("file {}", c.path.value),
            #[cfg(feature = "vault")]
            StoreConfig::Vault(c) => c.describe(),
            #[cfg(feature = "aws")]
            StoreConfig::Aws(c) => c.describe(),
            #[cfg(feature = "aws")]
            StoreConfig::S3(c) => c.describe(),
        }
    }
}

/// Store settings that apply to every store of a kind (the config's top-level blocks).
#[derive(Clone, Debug, Default)]
pub struct StoreDefaults {
    /// The top-level `vault:` block.
    #[cfg(feature = "vault")]
    pub vault: VaultDefaults,
    /// The top-level `aws:` block.
    #[cfg(feature = "aws")]
    pub aws: AwsDefaults,
}

/// Connections opened during one run and shared by the stores that use them (one login
/// per distinct connection).
#[derive(Debug, Default)]
pub struct Sessions {
    /// Vault clients.
    #[cfg(feature = "vault")]
    pub vault: VaultSessions,
    /// AWS configuration and assumed roles.
    #[cfg(feature = "aws")]
    pub aws: AwsSessions,
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
    /// Applies all of a location's writes and deletes as one change ([`Store::commit`]),
    /// rather than secret by secret.
    pub atomic_commit: bool,
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

    /// What the store can do.
    fn capabilities(&self) -> Capabilities;

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

/// Which bundle of the merge store to open: the target, and the names it merges.
#[derive(Clone, Copy, Debug)]
pub struct Bundle<'a> {
    /// The target whose bundle it is.
    pub target: &'a str,
    /// The names of its imports (and parent), recorded in the bundle where the store can.
    pub sources: &'a [String],
}

/// A store opened at one location: one arm per store, each delegating.
#[derive(Debug)]
pub enum AnyStore {
    /// The `file` store.
    File(FileStore),
    /// The `vault` store.
    #[cfg(feature = "vault")]
    Vault(VaultStore),
    /// The `aws` store (Secrets Manager).
    #[cfg(feature = "aws")]
    Aws(Box<SecretsManagerStore>),
    /// The `s3` merge store.
    #[cfg(feature = "aws")]
    S3(S3BundleStore),
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
    pub async fn open_bundle(
        config: &StoreConfig,
        ctx: &OpenContext<'_>,
        bundle: &Bundle<'_>,
    ) -> Result<Self, StoreError> {
        Self::open_at(config, ctx, Some(bundle)).await
    }

    async fn open_at(
        config: &StoreConfig,
        ctx: &OpenContext<'_>,
        bundle: Option<&Bundle<'_>>,
    ) -> Result<Self, StoreError> {
        let calls = ctx.stats.counter(config.kind());
        match config {
            StoreConfig::File(c) => {
                let mut root = c.resolve(ctx.base_dir);
                if let Some(bundle) = bundle {
                    root.push(bundle.target);
                }
                Ok(AnyStore::File(FileStore::new(root, calls)?))
            }
            #[cfg(feature = "vault")]
            StoreConfig::Vault(c) => {
                let client = ctx.sessions.vault.client(c, &ctx.defaults.vault, calls).await?;
                Ok(AnyStore::Vault(VaultStore::open(client, c, bundle.map(|b| b.target)).await?))
            }
            #[cfg(feature = "aws")]
            StoreConfig::Aws(c) => Ok(AnyStore::Aws(Box::new(
                SecretsManagerStore::open(c, &ctx.defaults.aws, &ctx.sessions.aws, calls).await?,
            ))),
            #[cfg(feature = "aws")]
            StoreConfig::S3(c) => {
                let bundle =
                    bundle.ok_or_else(|| StoreError::Invalid("the `s3` store only holds merge bundles".into()))?;
                let store =
                    S3BundleStore::open(c, &ctx.defaults.aws, &ctx.sessions.aws, calls, bundle.target, bundle.sources)
                        .await?;
                Ok(AnyStore::S3(store))
            }
        }
    }
}

/// Runs `$body` with `$s` bound to the store inside any [`AnyStore`] variant: the one place
/// the variants are listed for delegation.
macro_rules! dispatch {
    ($store:expr, $s:ident => $body:expr) => {
        match $store {
            AnyStore::File($s) => $body,
            #[cfg(feature = "vault")]
            AnyStore::Vault($s) => $body,
            #[cfg(feature = "aws")]
            AnyStore::Aws($s) => $body,
            #[cfg(feature = "aws")]
            AnyStore::S3($s) => $body,
        }
    };
}

impl Store for AnyStore {
    fn kind(&self) -> &'static str {
        dispatch!(self, s => s.kind())
    }

    fn capabilities(&self) -> Capabilities {
        dispatch!(self, s => s.capabilities())
    }

    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        dispatch!(self, s => s.list().await)
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        dispatch!(self, s => s.read(path).await)
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        dispatch!(self, s => s.write(path, value, owner).await)
    }

    fn batch_size(&self) -> usize {
        dispatch!(self, s => s.batch_size())
    }

    async fn read_batch(&self, paths: &[SecretPath]) -> Result<Vec<(SecretPath, LiveSecret)>, StoreError> {
        dispatch!(self, s => s.read_batch(paths).await)
    }

    async fn commit(
        &self,
        writes: &[(SecretPath, SecretValue)],
        deletes: &[SecretPath],
        owner: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.commit(writes, deletes, owner).await)
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        dispatch!(self, s => s.delete(path).await)
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
