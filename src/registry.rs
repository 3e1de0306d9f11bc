//! The registry: every target vss has written (its bundle or its destination), with the
//! target's block as written in the config, so that once a target is deleted from the
//! config, `vss prune` can still find its location and delete what vss owns there. It
//! holds names, store kinds, locations and config text (uninterpolated: `${VAR}` stays as
//! written), never a value.
//!
//! Where it is kept, the first that applies:
//!
//! 1. `registry: { file: PATH }` in the config (relative to the config file);
//! 2. the merge store, as the bundle `vss-registry` (one entry per target), so that CI
//!    runs on fresh machines share it;
//! 3. `vss-registry.json` beside the audit log file;
//! 4. nowhere: runs record nothing, and `vss prune` says how to keep one.
//!
//! A file registry is one JSON document, rewritten whole under an exclusive lock (a run
//! writing at the same time waits) and replaced atomically.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::model::Config;
use crate::secret::{SecretPath, SecretValue};
use crate::store::retry::RetryPolicy;
use crate::store::{Store, StoreError};

/// The bundle name of the registry in the merge store (no target may have it).
pub const BUNDLE: &str = "vss-registry";

/// `registry:` in the config.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// The JSON file the registry is kept in, relative to the config file (created when
    /// missing). Without it: the merge store, else beside the audit log file.
    pub file: crate::span::Spanned<String>,
}

/// Where the registry is kept (the validated `registry:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// A JSON file.
    File(PathBuf),
    /// The merge store, as the bundle [`BUNDLE`].
    MergeStore,
}

/// What the registry knows of one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// The target's name.
    pub target: String,
    /// Its block as written in the config (JSON of the YAML, uninterpolated): where its
    /// destination is, to find it again once the config no longer has it.
    pub block: serde_json::Value,
    /// The kind of its destination store, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// Its destination, as reports name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Whether MERGE wrote its bundle to the merge store.
    #[serde(default)]
    pub bundle: bool,
    /// When a run first wrote it (UTC).
    pub first_written: String,
    /// When its record last changed (UTC). Runs that change nothing of it leave the
    /// record as it is (no write).
    pub updated: String,
}

impl Entry {
    /// Whether the two say the same of the target (times aside).
    fn same(&self, other: &Entry) -> bool {
        (&self.target, &self.block, &self.store, &self.location, self.bundle)
            == (&other.target, &other.block, &other.store, &other.location, other.bundle)
    }
}

/// The registry file's document.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Document {
    format: u32,
    targets: BTreeMap<String, Entry>,
}

/// Every entry of the registry, by target name (none when it is kept nowhere or empty).
pub fn read(config: &Config) -> Result<BTreeMap<String, Entry>, String> {
    match &config.registry {
        None => Ok(BTreeMap::new()),
        Some(Place::File(path)) => {
            read_file(path).map(|d| d.targets).map_err(|e| format!("cannot read the registry {}: {e}", path.display()))
        }
        Some(Place::MergeStore) => crate::audit::block_on(async {
            let store = crate::audit::open(config, BUNDLE).await?;
            let limiter = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
            let live = crate::engine::handle::Handle::new(store, limiter, 4).read_state().await?;
            Ok(live
                .into_values()
                .filter_map(|s| s.into_value().and_then(|v| serde_json::from_value::<Entry>(v.into_inner()).ok()))
                .map(|entry| (entry.target.clone(), entry))
                .collect())
        })
        .map_err(|e| format!("cannot read the registry in the merge store: {e}")),
    }
}

/// Records `written` (targets a run wrote: name, whether to its destination, whether its
/// bundle) with the time `now`. Only records that change are written: a run that writes
/// the same targets again writes nothing here.
pub fn record(config: &Config, written: &[(String, bool, bool)], now: &str) -> Result<(), String> {
    let Some(place) = &config.registry else { return Ok(()) };
    let known = read(config)?;
    let mut changed: Vec<Entry> = Vec::new();
    for (name, synced, bundle) in written {
        let Some(target) = config.targets.iter().find(|t| &t.name == name) else { continue };
        let destination = target.destination.as_ref().filter(|_| *synced);
        let mut entry = Entry {
            target: name.clone(),
            block: target.block.clone(),
            store: destination.map(|d| d.kind().to_string()),
            location: destination.map(|d| d.describe()),
            bundle: *bundle,
            first_written: now.to_string(),
            updated: now.to_string(),
        };
        if let Some(old) = known.get(name) {
            entry.first_written = old.first_written.clone();
            entry.bundle |= old.bundle;
            if entry.store.is_none() {
                (entry.store, entry.location) = (old.store.clone(), old.location.clone());
            }
            if entry.same(old) {
                continue;
            }
        }
        changed.push(entry);
    }
    if changed.is_empty() {
        return Ok(());
    }
    match place {
        Place::File(path) => update_file(path, |doc| {
            for entry in changed {
                doc.targets.insert(entry.target.clone(), entry);
            }
        })
        .map_err(|e| format!("cannot write the registry {}: {e}", path.display())),
        Place::MergeStore => crate::audit::block_on(async {
            let store = crate::audit::open(config, BUNDLE).await?;
            for entry in changed {
                let path = SecretPath::parse(&entry.target).map_err(StoreError::invalid)?;
                let value =
                    SecretValue::new(serde_json::to_value(&entry).map_err(|e| StoreError::invalid(e.to_string()))?);
                crate::audit::write_entry(&store, &path, &value, BUNDLE, "update the registry").await?;
            }
            Ok(())
        })
        .map_err(|e| format!("cannot write the registry in the merge store: {e}")),
    }
}

/// Drops `targets` from the registry.
pub fn forget(config: &Config, targets: &[String]) -> Result<(), String> {
    match &config.registry {
        None => Ok(()),
        Some(Place::File(path)) => update_file(path, |doc| {
            for target in targets {
                doc.targets.remove(target);
            }
        })
        .map_err(|e| format!("cannot write the registry {}: {e}", path.display())),
        Some(Place::MergeStore) => crate::audit::block_on(async {
            let store = crate::audit::open(config, BUNDLE).await?;
            for target in targets {
                let path = SecretPath::parse(target).map_err(StoreError::invalid)?;
                RetryPolicy::default().run("update the registry", || store.delete(&path)).await?;
            }
            Ok(())
        })
        .map_err(|e| format!("cannot write the registry in the merge store: {e}")),
    }
}

fn read_file(path: &Path) -> std::io::Result<Document> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("it is not a registry: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Document { format: 1, ..Document::default() }),
        Err(e) => Err(e),
    }
}

/// Reads, changes and rewrites the file registry under an exclusive lock (on a `.lock`
/// file beside it), replacing it atomically.
fn update_file(path: &Path, change: impl FnOnce(&mut Document)) -> std::io::Result<()> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.lock()?;
    let mut doc = match std::fs::File::open(path) {
        Ok(mut file) => {
            let mut text = String::new();
            file.read_to_string(&mut text)?;
            serde_json::from_str(&text).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("it is not a registry: {e}"))
            })?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Document::default(),
        Err(e) => return Err(e),
    };
    doc.format = 1;
    change(&mut doc);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    let mut text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
    text.push('\n');
    temp.write_all(text.as_bytes())?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    lock.unlock()
}
