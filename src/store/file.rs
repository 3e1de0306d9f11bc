//! The `file` store: secrets in local YAML/JSON files. Embedded, needs no server, and can
//! be a source, the merge store and a target.
//!
//! ```yaml
//! sources:
//!   common: { file: { path: ../fixtures/sources/common.yaml } }  # one file: secret path -> value
//!   team:   { file: { path: ../fixtures/sources/team } }         # a directory: one file per secret
//! merge_store:
//!   file: { path: ../target/merged }          # bundles at ../target/merged/<target>/<path>.json
//! targets:
//!   Production:
//!     imports: [common, team]
//!     file: { path: ../target/production }    # secrets at ../target/production/<path>.json
//! ```
//!
//! Layouts:
//! - a path ending in `.yaml`, `.yml` or `.json` is **one file** mapping secret path ->
//!   value; it is rewritten whole on each write;
//! - any other path is a **directory** with one file per secret,
//!   `DIR/<secret path>.json` (or `.yaml`/`.yml`); new secrets are written as `.json`, an
//!   existing file keeps its format. Hidden entries (starting with `.`) and files with
//!   other extensions are ignored.
//!
//! Every write is atomic (a temporary file in the same directory, then a rename) and
//! creates files readable by their owner only. Ownership markers live in a sidecar
//! manifest, so secret files hold nothing but their values: `DIR/.vss-managed.json` for
//! a directory, `.<name>.vss-managed.json` beside a single file, holding
//! `{"managed-by": "vss", "secrets": {"<path>": {"vss-target": "<target>"}}}`. It is
//! written twice per target and run: the markers before the values ([`Store::prepare`]),
//! then the deletions ([`Store::finish`]), each time from a fresh read under a lock file,
//! so concurrent runs keep each other's markers.
//! A merge bundle is written as generations behind a link (Unix: `DIR/<target>` links to
//! the generation `DIR/.<target>.gen/<id>`): a SYNC never reads a half-written bundle.
//! Relative paths are relative to the config file's directory.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::secret::{LiveSecret, SecretPath, SecretValue};
use crate::span::{Span, Spanned};
use crate::store::stats::{Call, CallCounter};
use crate::store::{Bundle, Capabilities, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};
use crate::yaml;

/// `file:` options.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// A directory (one file per secret) or a `.yaml`/`.yml`/`.json` file (one mapping of
    /// secret path -> value). Relative to the config file's directory.
    pub path: Spanned<String>,
}

impl FileConfig {
    /// The path, resolved against the config file's directory.
    pub fn resolve(&self, base_dir: &Path) -> PathBuf {
        base_dir.join(&self.path.value)
    }

    /// Whether the path names one file rather than a directory.
    pub fn is_single_file(&self) -> bool {
        Format::of(Path::new(&self.path.value)).is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Json,
    Yaml,
}

impl Format {
    fn of(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()? {
            "json" => Some(Format::Json),
            "yaml" | "yml" => Some(Format::Yaml),
            _ => None,
        }
    }

    fn parse(self, bytes: &[u8], file: &Path) -> Result<Value, StoreError> {
        let invalid = |why: String| StoreError::invalid(format!("cannot parse {}: {why}", file.display()));
        match self {
            Format::Json => serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string())),
            Format::Yaml => {
                let text = std::str::from_utf8(bytes).map_err(|_| invalid("not UTF-8".into()))?;
                let node = yaml::parse(text).map_err(|e| invalid(e.message))?;
                Ok(node.to_json())
            }
        }
    }

    fn render(self, value: &Value) -> String {
        match self {
            Format::Json => {
                let mut text = serde_json::to_string_pretty(value).expect("JSON values serialize");
                text.push('\n');
                text
            }
            Format::Yaml => emit_yaml(value),
        }
    }
}

/// The `file` store at one location.
pub struct FileStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for FileStore {
    /// The location only: the cached state holds secret values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore").field("root", &self.inner.root()).finish_non_exhaustive()
    }
}

struct Inner {
    /// Where the secrets are: the location, or for a merge bundle, its current generation
    /// (and, between `prepare` and `finish`, the one being written).
    root: std::sync::RwLock<PathBuf>,
    /// A merge bundle written as generations ([`Generations`]).
    generations: Option<Generations>,
    single: Option<Format>,
    calls: Arc<CallCounter>,
    /// Serialises manifest updates and whole-file rewrites; caches what was loaded.
    state: Mutex<State>,
}

/// What was loaded: holds secret values, so it has no `Debug`.
#[derive(Default)]
struct State {
    owners: Option<BTreeMap<String, String>>,
    single: Option<BTreeMap<SecretPath, Value>>,
    /// Between [`Store::prepare`] and [`Store::finish`]: markers were recorded first, and
    /// deletions are recorded at the end, so the manifest is written twice per target.
    prepared: bool,
    /// Paths `prepare` claimed that were not this owner's before.
    claimed: Vec<String>,
    /// Paths written since `prepare`.
    done: std::collections::BTreeSet<String>,
    /// Paths deleted since `prepare`.
    removed: Vec<String>,
    /// Temporary files a killed run left behind, found by the last listing: removed
    /// before this store's writes.
    stale: Vec<PathBuf>,
    /// A write or delete failed since `prepare`.
    failed: bool,
    /// A merge bundle: the generation being written, since `prepare`.
    writing: Option<PathBuf>,
}

/// A merge bundle written as generations (Unix): `DIR/<target>` is a link to
/// `DIR/.<target>.gen/<generation>`. A MERGE writes a new generation (a copy of the
/// current one, by hard links, then its changes) and, when every change succeeded,
/// points the link at it in one rename; a SYNC reads the generation the link named when
/// it started. So a reader never sees part of one MERGE and part of another, and a MERGE
/// that fails or is killed leaves the link where it was. The previous generation is kept
/// for readers still on it; older ones go.
#[derive(Clone, Debug)]
struct Generations {
    /// `DIR/<target>`.
    link: PathBuf,
    /// `DIR/.<target>.gen`.
    folder: PathBuf,
}

impl Generations {
    /// The generations of the bundle at `link`, where links exist (Unix).
    fn of(link: &Path) -> Option<Self> {
        if !cfg!(unix) {
            return None;
        }
        let name = link.file_name()?.to_string_lossy().into_owned();
        Some(Generations { link: link.to_path_buf(), folder: link.with_file_name(format!(".{name}.gen")) })
    }

    /// The generation the link names, when it is a link.
    fn current(&self) -> Option<PathBuf> {
        let target = std::fs::read_link(&self.link).ok()?;
        Some(self.link.parent().map_or(target.clone(), |dir| dir.join(target)))
    }

    /// A new generation, holding what `from` holds (hard links; copies where links fail).
    fn start(&self, from: &Path) -> Result<PathBuf, StoreError> {
        let name = format!(
            "{}-{}-{:08x}",
            crate::time::timestamp(crate::time::now()).replace([':', '-'], ""),
            std::process::id(),
            rand::random::<u32>()
        );
        let next = self.folder.join(name);
        std::fs::create_dir_all(&next).map_err(io_error(format!("cannot create {}", next.display())))?;
        if from.is_dir() {
            link_tree(from, &next)?;
        }
        Ok(next)
    }

    /// Points the link at `next` (one rename), then removes the generations older than
    /// the one it named before.
    #[cfg(unix)]
    fn publish(&self, next: &Path) -> Result<(), StoreError> {
        let mut previous = self.current();
        let dir = self.link.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let relative = next.strip_prefix(&dir).unwrap_or(next).to_path_buf();
        let temporary = dir.join(format!("{TEMPORARY}{}-{:08x}", std::process::id(), rand::random::<u32>()));
        std::os::unix::fs::symlink(&relative, &temporary)
            .map_err(io_error(format!("cannot create the link {}", temporary.display())))?;
        // A bundle written before generations is a folder: it becomes the first one.
        if let Ok(meta) = std::fs::symlink_metadata(&self.link)
            && meta.is_dir()
        {
            let legacy = self.folder.join("0-before-generations");
            std::fs::rename(&self.link, &legacy).map_err(io_error(format!("cannot move {}", self.link.display())))?;
            previous = Some(legacy);
        }
        std::fs::rename(&temporary, &self.link).map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            io_error(format!("cannot point {} at the new generation", self.link.display()))(e)
        })?;
        let keep: Vec<PathBuf> = [Some(next.to_path_buf()), previous].into_iter().flatten().collect();
        if let Ok(entries) = std::fs::read_dir(&self.folder) {
            for entry in entries.flatten() {
                if !keep.iter().any(|k| k == &entry.path()) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(())
    }

    #[cfg(not(unix))]
    fn publish(&self, _next: &Path) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Mirrors the files below `from` into `to` by hard links (copies where a link fails),
/// leaving out temporary and lock files.
fn link_tree(from: &Path, to: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(from).map_err(io_error(format!("cannot list {}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(io_error(format!("cannot list {}", from.display())))?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if text.starts_with(TEMPORARY) || text.ends_with(".lock") {
            continue;
        }
        let (source, target) = (entry.path(), to.join(&name));
        let kind = entry.file_type().map_err(io_error(format!("cannot read {}", source.display())))?;
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(io_error(format!("cannot create {}", target.display())))?;
            link_tree(&source, &target)?;
        } else if kind.is_file() && std::fs::hard_link(&source, &target).is_err() {
            std::fs::copy(&source, &target).map_err(io_error(format!("cannot copy {}", source.display())))?;
        }
    }
    Ok(())
}

impl FileStore {
    /// A store at `root` (a directory, or a single file when it ends in `.json`/`.yaml`).
    pub fn new(root: PathBuf, calls: Arc<CallCounter>) -> Result<Self, StoreError> {
        let single = Format::of(&root);
        Ok(Self {
            inner: Arc::new(Inner {
                root: std::sync::RwLock::new(root),
                generations: None,
                single,
                calls,
                state: Mutex::new(State::default()),
            }),
        })
    }

    /// The merge bundle at `link` (`DIR/<target>`), written as generations: reads come
    /// from the generation the link names when the store is opened.
    fn bundle(link: PathBuf, calls: Arc<CallCounter>) -> Result<Self, StoreError> {
        let generations = Generations::of(&link);
        let root = generations.as_ref().and_then(Generations::current).unwrap_or_else(|| link.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                root: std::sync::RwLock::new(root),
                generations,
                single: None,
                calls,
                state: Mutex::new(State::default()),
            }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| StoreError::new(crate::error::ErrorKind::Internal, format!("file store task failed: {e}")))?
    }
}

impl StoreKind for FileStore {
    const NAME: &'static str = "file";
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: true, merge_store: true, target: true },
        reads_values: true,
        value_shape: ValueShape::Any,
        min_value_bytes: 0,
        max_value_bytes: None,
        exact_numbers: true,
        ownership: true,
        atomic_commit: false,
    };
    type Config = FileConfig;
    type Defaults = ();
    type Session = ();

    fn locus(config: &FileConfig, _: &(), base_dir: &Path) -> Option<crate::store::Locus> {
        let mut absolute = config.resolve(base_dir);
        if absolute.is_relative() {
            absolute = std::env::current_dir().ok()?.join(absolute);
        }
        // Lexically: `..` goes up a segment (links are checked when written).
        let mut segments: Vec<String> = Vec::new();
        for part in absolute.components() {
            match part {
                std::path::Component::ParentDir => {
                    segments.pop();
                }
                std::path::Component::Normal(name) => segments.push(name.to_string_lossy().into_owned()),
                _ => {}
            }
        }
        Some(crate::store::Locus::segments("the file system", &segments.join("/")))
    }

    fn describe(config: &FileConfig) -> String {
        format!("file {}", config.path.value)
    }

    fn check(config: &FileConfig, role: Role, _: &(), _: Span, out: &mut Vec<Diagnostic>) {
        if config.path.value.trim().is_empty() {
            out.push(Diagnostic::at(config.path.span, "`path` is empty"));
        } else if role == Role::MergeStore && config.is_single_file() {
            out.push(
                Diagnostic::at(config.path.span, "a `file` merge store must be a directory")
                    .with_label("bundles are written to <dir>/<target>/<secret path>.json"),
            );
        }
    }

    async fn open(config: &FileConfig, ctx: &OpenContext<'_>, bundle: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let mut root = config.resolve(ctx.base_dir);
        match bundle {
            Some(bundle) => {
                root.push(bundle.target);
                FileStore::bundle(root, ctx.calls::<Self>())
            }
            None => FileStore::new(root, ctx.calls::<Self>()),
        }
    }
}

impl Store for FileStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        self.blocking(Inner::list).await
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        let path = path.clone();
        self.blocking(move |inner| inner.read(&path)).await
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        let (path, value, owner) = (path.clone(), value.clone(), owner.to_string());
        let written = self.blocking(move |inner| inner.write(&path, &value.expose(), &owner)).await;
        self.inner.lock().failed |= written.is_err();
        written
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        let path = path.clone();
        let deleted = self.blocking(move |inner| inner.delete(&path)).await;
        self.inner.lock().failed |= deleted.is_err();
        deleted
    }

    async fn prepare(&self, paths: &[SecretPath], owner: &str) -> Result<(), StoreError> {
        let (paths, owner) = (paths.to_vec(), owner.to_string());
        self.blocking(move |inner| inner.prepare(&paths, &owner)).await
    }

    async fn finish(&self) -> Result<(), StoreError> {
        self.blocking(Inner::finish).await
    }
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |source| StoreError::io(context, source)
}

impl Inner {
    fn root(&self) -> PathBuf {
        self.root.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn manifest_path(&self) -> PathBuf {
        match self.single {
            None => self.root().join(".vss-managed.json"),
            Some(_) => {
                let name = self.root().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                self.root().with_file_name(format!(".{name}.vss-managed.json"))
            }
        }
    }

    fn owners<'s>(&self, state: &'s mut State) -> Result<&'s mut BTreeMap<String, String>, StoreError> {
        if state.owners.is_none() {
            let path = self.manifest_path();
            let owners = match std::fs::read(&path) {
                Ok(bytes) => {
                    self.calls.count(Call::Read);
                    parse_manifest(&bytes, &path)?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(io_error(format!("cannot read {}", path.display()))(e)),
            };
            state.owners = Some(owners);
        }
        Ok(state.owners.get_or_insert_with(BTreeMap::new))
    }

    /// Changes the manifest under an exclusive lock on its lock file, from a fresh read:
    /// runs writing to one folder at once never lose each other's markers. `change` says
    /// whether it changed anything (only then is the manifest written).
    fn update_manifest(
        &self,
        state: &mut State,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
    ) -> Result<(), StoreError> {
        let manifest = self.manifest_path();
        let mut lock_path = manifest.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        if let Some(dir) = lock_path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_error(format!("cannot open {}", lock_path.display())))?;
        lock.lock().map_err(io_error(format!("cannot lock {}", lock_path.display())))?;
        state.owners = None;
        let owners = self.owners(state)?;
        if change(owners) {
            let snapshot = owners.clone();
            self.save_owners(&snapshot)?;
        }
        lock.unlock().map_err(io_error(format!("cannot unlock {}", lock_path.display())))
    }

    /// Records `owner` for `paths` before they are written.
    fn prepare(&self, paths: &[SecretPath], owner: &str) -> Result<(), StoreError> {
        let mut state = self.lock();
        // What a killed run left: temporary files holding values, never renamed.
        let mut stale = std::mem::take(&mut state.stale);
        if self.single.is_some()
            && let Some(dir) = self.root().parent().filter(|d| !d.as_os_str().is_empty()).map(Path::to_path_buf)
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for entry in entries.flatten() {
                if is_stale_temporary(&entry.file_name().to_string_lossy(), &entry.path()) {
                    stale.push(entry.path());
                }
            }
        }
        remove_stale(&stale);
        if let Some(generations) = &self.generations {
            let next = generations.start(&self.root())?;
            *self.root.write().unwrap_or_else(|e| e.into_inner()) = next.clone();
            state.writing = Some(next);
            state.owners = None;
        }
        state.failed = false;
        let mut claimed = Vec::new();
        self.update_manifest(&mut state, |owners| {
            for path in paths {
                if owners.get(path.as_str()).map(String::as_str) != Some(owner) {
                    owners.insert(path.to_string(), owner.to_string());
                    claimed.push(path.to_string());
                }
            }
            !claimed.is_empty()
        })?;
        state.prepared = true;
        state.claimed = claimed;
        state.done.clear();
        state.removed.clear();
        Ok(())
    }

    /// Drops the markers of what was deleted, and of claimed paths whose write failed.
    fn finish(&self) -> Result<(), StoreError> {
        let mut state = self.lock();
        if !state.prepared {
            return Ok(());
        }
        state.prepared = false;
        let claimed = std::mem::take(&mut state.claimed);
        let done = std::mem::take(&mut state.done);
        let mut dropped = std::mem::take(&mut state.removed);
        dropped.extend(claimed.into_iter().filter(|p| !done.contains(p)));
        if !dropped.is_empty() {
            self.update_manifest(&mut state, |owners| {
                let before = owners.len();
                for path in &dropped {
                    owners.remove(path);
                }
                owners.len() != before
            })?;
        }
        // A merge bundle: the new generation is published only when every change of it
        // was made; otherwise it goes, and the link keeps naming the last whole one.
        if let (Some(generations), Some(next)) = (&self.generations, state.writing.take()) {
            if state.failed {
                let _ = std::fs::remove_dir_all(&next);
                if let Some(current) = generations.current() {
                    *self.root.write().unwrap_or_else(|e| e.into_inner()) = current;
                }
                state.owners = None;
            } else {
                generations.publish(&next)?;
            }
        }
        Ok(())
    }

    fn save_owners(&self, owners: &BTreeMap<String, String>) -> Result<(), StoreError> {
        let secrets: serde_json::Map<String, Value> =
            owners.iter().map(|(path, target)| (path.clone(), serde_json::json!({"vss-target": target}))).collect();
        let manifest = serde_json::json!({"managed-by": "vss", "secrets": secrets});
        atomic_write(&self.manifest_path(), Format::Json.render(&manifest).as_bytes())
    }

    fn single_map<'s>(
        &self,
        state: &'s mut State,
        format: Format,
    ) -> Result<&'s mut BTreeMap<SecretPath, Value>, StoreError> {
        if state.single.is_none() {
            let root = self.root();
            let map = match std::fs::read(&root) {
                Ok(bytes) => {
                    self.calls.count(Call::Read);
                    parse_mapping(format.parse(&bytes, &root)?, &root)?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
                Err(e) => return Err(io_error(format!("cannot read {}", root.display()))(e)),
            };
            state.single = Some(map);
        }
        Ok(state.single.get_or_insert_with(BTreeMap::new))
    }

    fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        if let Some(format) = self.single {
            let mut state = self.lock();
            return Ok(self.single_map(&mut state, format)?.keys().cloned().collect());
        }
        self.calls.count(Call::List);
        let mut found: BTreeMap<SecretPath, PathBuf> = BTreeMap::new();
        let root = self.root();
        if !root.exists() {
            return Ok(Vec::new());
        }
        let mut stale = Vec::new();
        walk(&root, &root, &mut found, &mut stale)?;
        self.lock().stale = stale;
        Ok(found.into_keys().collect())
    }

    /// The file holding `path` in a directory store, if one exists.
    fn existing_file(&self, path: &SecretPath) -> Result<Option<(PathBuf, Format)>, StoreError> {
        let base = self.root().join(path.as_str());
        let mut hits = Vec::new();
        for (ext, format) in [("json", Format::Json), ("yaml", Format::Yaml), ("yml", Format::Yaml)] {
            let candidate = with_extension(&base, ext);
            if candidate.is_file() {
                hits.push((candidate, format));
            }
        }
        if hits.len() > 1 {
            return Err(StoreError::invalid(format!(
                "secret `{path}` is stored twice: {} and {}; keep one",
                hits[0].0.display(),
                hits[1].0.display()
            )));
        }
        Ok(hits.pop())
    }

    fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        let mut state = self.lock();
        let value = match self.single {
            Some(format) => self.single_map(&mut state, format)?.get(path).cloned(),
            None => match self.existing_file(path)? {
                None => None,
                Some((file, format)) => {
                    let bytes = std::fs::read(&file).map_err(io_error(format!("cannot read {}", file.display())))?;
                    self.calls.count(Call::Read);
                    Some(format.parse(&bytes, &file)?)
                }
            },
        };
        let Some(value) = value else { return Ok(None) };
        let owner = self.owners(&mut state)?.get(path.as_str()).cloned();
        Ok(Some(LiveSecret::with_value(SecretValue::new(value), owner)))
    }

    /// Fails when a folder on the way from the root to `path` is a link that leads out of
    /// the root: nothing is written or deleted through it.
    fn inside(&self, path: &SecretPath) -> Result<(), StoreError> {
        let segments: Vec<&str> = path.as_str().split('/').collect();
        let store_root = self.root();
        let mut dir = store_root.clone();
        let mut root = None;
        for segment in &segments[..segments.len() - 1] {
            dir.push(segment);
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    let root = match &root {
                        Some(root) => root,
                        None => root.insert(std::fs::canonicalize(&store_root).map_err(io_error(format!(
                            "cannot resolve {}",
                            store_root.display()
                        )))?),
                    };
                    let target = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
                    if !target.starts_with(root) {
                        return Err(StoreError::invalid(format!(
                            "{} is a link to {}, outside the store's folder {}: vss does not write through it",
                            dir.display(),
                            target.display(),
                            store_root.display()
                        ))
                        .with_hint("remove the link, or point the store at the folder it leads to"));
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn write(&self, path: &SecretPath, value: &Value, owner: &str) -> Result<(), StoreError> {
        match self.single {
            Some(format) => {
                let mut state = self.lock();
                let map = self.single_map(&mut state, format)?;
                map.insert(path.clone(), value.clone());
                let whole = Value::Object(map.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
                atomic_write(&self.root(), format.render(&whole).as_bytes())?;
            }
            None => {
                self.inside(path)?;
                let (file, format) = match self.existing_file(path)? {
                    Some(hit) => hit,
                    None => (with_extension(&self.root().join(path.as_str()), "json"), Format::Json),
                };
                atomic_write(&file, format.render(value).as_bytes())?;
            }
        }
        self.calls.count(Call::Write);
        let mut state = self.lock();
        if self.owners(&mut state)?.get(path.as_str()).map(String::as_str) == Some(owner) {
            // Recorded first by `prepare` (or already this owner's).
            state.done.insert(path.to_string());
            return Ok(());
        }
        self.update_manifest(&mut state, |owners| {
            owners.insert(path.to_string(), owner.to_string()).as_deref() != Some(owner)
        })
    }

    fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        match self.single {
            Some(format) => {
                let mut state = self.lock();
                let map = self.single_map(&mut state, format)?;
                if map.remove(path).is_some() {
                    let whole = Value::Object(map.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
                    atomic_write(&self.root(), format.render(&whole).as_bytes())?;
                    self.calls.count(Call::Delete);
                }
            }
            None => {
                self.inside(path)?;
                if let Some((file, _)) = self.existing_file(path)? {
                    std::fs::remove_file(&file).map_err(io_error(format!("cannot delete {}", file.display())))?;
                    self.calls.count(Call::Delete);
                    remove_empty_parents(&file, &self.root());
                }
            }
        }
        let mut state = self.lock();
        if state.prepared {
            state.removed.push(path.to_string());
            return Ok(());
        }
        if !self.owners(&mut state)?.contains_key(path.as_str()) {
            return Ok(());
        }
        self.update_manifest(&mut state, |owners| owners.remove(path.as_str()).is_some())
    }
}

fn with_extension(base: &Path, ext: &str) -> PathBuf {
    let mut name = base.as_os_str().to_os_string();
    name.push(".");
    name.push(ext);
    PathBuf::from(name)
}

fn walk(
    root: &Path,
    dir: &Path,
    found: &mut BTreeMap<SecretPath, PathBuf>,
    stale: &mut Vec<PathBuf>,
) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir).map_err(io_error(format!("cannot list {}", dir.display())))?;
    for entry in entries {
        let entry = entry.map_err(io_error(format!("cannot list {}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            if is_stale_temporary(&name.to_string_lossy(), &path) {
                stale.push(path);
            }
            continue;
        }
        if path.is_dir() {
            walk(root, &path, found, stale)?;
            continue;
        }
        if Format::of(&path).is_none() {
            tracing::debug!(file = %path.display(), "ignored: not .json, .yaml or .yml");
            continue;
        }
        let relative = path.strip_prefix(root).unwrap_or(&path).with_extension("");
        let Some(text) = relative.to_str() else {
            return Err(StoreError::invalid(format!("{} is not a UTF-8 path", path.display())));
        };
        let secret = SecretPath::parse(&text.replace(std::path::MAIN_SEPARATOR, "/")).map_err(StoreError::invalid)?;
        if let Some(previous) = found.insert(secret.clone(), path.clone()) {
            return Err(StoreError::invalid(format!(
                "secret `{secret}` is stored twice: {} and {}; keep one",
                previous.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

fn parse_mapping(value: Value, file: &Path) -> Result<BTreeMap<SecretPath, Value>, StoreError> {
    match value {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(map) => {
            // Keys that normalise to one path (`ok//two/` and `ok/two`) would overwrite each
            // other silently: refused, naming both.
            let mut written: BTreeMap<SecretPath, String> = BTreeMap::new();
            let mut out = BTreeMap::new();
            for (key, v) in map {
                let path = SecretPath::parse(&key)
                    .map_err(|why| StoreError::invalid(format!("{}: {why}", file.display())))?;
                if let Some(first) = written.insert(path.clone(), key.clone()) {
                    return Err(StoreError::invalid(format!(
                        "{}: `{first}` and `{key}` are the same secret `{path}`; keep one",
                        file.display()
                    )));
                }
                out.insert(path, v);
            }
            Ok(out)
        }
        _ => Err(StoreError::invalid(format!("{} must hold a mapping of secret path -> value", file.display()))),
    }
}

fn parse_manifest(bytes: &[u8], file: &Path) -> Result<BTreeMap<String, String>, StoreError> {
    let invalid = || StoreError::invalid(format!("{} is not a vss ownership manifest", file.display()));
    let value: Value = serde_json::from_slice(bytes).map_err(|_| invalid())?;
    let secrets = value.get("secrets").and_then(Value::as_object).ok_or_else(invalid)?;
    secrets
        .iter()
        .map(|(path, marker)| {
            let target = marker.get("vss-target").and_then(Value::as_str).ok_or_else(invalid)?;
            Ok((path.clone(), target.to_string()))
        })
        .collect()
}

/// The name of the temporary files this process writes: `.vss-tmp-<pid>-` and a random
/// part, so that a later run can tell one a killed run left behind.
fn temporary_prefix() -> String {
    format!("{TEMPORARY}{}-", std::process::id())
}

/// How every temporary file of the file store starts.
const TEMPORARY: &str = ".vss-tmp-";

/// Whether `name` (at `path`) is a temporary file a run that no longer exists left behind
/// (killed between writing it and renaming it). Where the system says which processes
/// exist (Linux), the process that wrote it is gone; elsewhere it is over an hour old.
fn is_stale_temporary(name: &str, path: &Path) -> bool {
    let Some(pid) = name.strip_prefix(TEMPORARY).and_then(|rest| rest.split('-').next()?.parse::<u32>().ok()) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    let age = path.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
    age.is_some_and(|age| age > std::time::Duration::from_secs(3600))
}

/// Removes `stale` temporary files; one that cannot be removed is logged, not an error.
fn remove_stale(stale: &[PathBuf]) {
    for path in stale {
        match std::fs::remove_file(path) {
            Ok(()) => tracing::info!(file = %path.display(), "removed a temporary file a killed run left behind"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot remove a stale temporary file"),
        }
    }
}

/// Writes `bytes` to `file` atomically: a temporary file in the same directory, synced,
/// then renamed over the target. Parent directories are created.
fn atomic_write(file: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&temporary_prefix())
        .tempfile_in(dir)
        .map_err(io_error(format!("cannot write in {}", dir.display())))?;
    tmp.write_all(bytes).map_err(io_error(format!("cannot write {}", file.display())))?;
    tmp.as_file().sync_all().map_err(io_error(format!("cannot write {}", file.display())))?;
    tmp.persist(file).map_err(|e| StoreError::io(format!("cannot replace {}", file.display()), e.error))?;
    Ok(())
}

fn remove_empty_parents(file: &Path, root: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// Renders a JSON value as block-style YAML; strings are double-quoted (JSON escapes are
/// valid YAML), so every value reads back exactly.
pub fn emit_yaml(value: &Value) -> String {
    let mut out = String::new();
    emit(value, &mut out);
    out
}

fn emit(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                out.push_str(&yaml_key(key));
                out.push(':');
                emit_child(item, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push('-');
                emit_child(item, out);
            }
        }
        scalar => {
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

fn emit_child(item: &Value, out: &mut String) {
    let nested = matches!(item, Value::Object(m) if !m.is_empty()) || matches!(item, Value::Array(a) if !a.is_empty());
    if !nested {
        out.push(' ');
        out.push_str(&yaml_scalar(item));
        out.push('\n');
        return;
    }
    let mut inner = String::new();
    emit(item, &mut inner);
    out.push('\n');
    for line in inner.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

fn yaml_key(key: &str) -> String {
    let plain = key.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && yaml::resolve_plain(key) == yaml::Plain::Str;
    if plain { key.to_string() } else { Value::String(key.to_string()).to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_output_reads_back_exactly() {
        let value = json!({
            "app/db": {"host": "db", "port": 5432, "ratio": 0.5, "on": true, "none": null,
                        "list": [1, "two", {"three": [3]}, [], {}], "weird key: x": "multi\nline \"quoted\"", "true": "yes"},
            "empty": {}, "n": -1
        });
        let text = emit_yaml(&value);
        assert_eq!(yaml::parse(&text).unwrap().to_json(), value, "{text}");
    }
}
