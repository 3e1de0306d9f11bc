//! Desired state: `desired(T) = deep_merge(desired(parent), import_1, import_2, …)`.
//! The one place it is computed, for MERGE, SYNC without a merge store, apply and dry run
//! alike. Each source is read at most once per run.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::{OnceCell, Semaphore};

use crate::config::model::{Import, SourceId, TargetId};
use crate::engine::handle::Handle;
use crate::engine::open_store;
use crate::error::{ErrorKind, Failure};
use crate::merge::merge_all;
use crate::plan::Plan;
use crate::secret::SecretMap;
use crate::store::OpenContext;

/// A computed desired state, or why it could not be computed.
pub type Resolved = Result<Arc<SecretMap>, Failure>;

/// Computes and caches desired states.
pub struct Resolver<'c> {
    plan: &'c Plan<'c>,
    ctx: OpenContext<'c>,
    limiter: Arc<Semaphore>,
    parallel: usize,
    sources: Vec<OnceCell<Resolved>>,
    targets: Mutex<Vec<Option<Resolved>>>,
    /// What the selections of each target said (patterns that matched nothing), by target.
    warnings: Mutex<Vec<Option<Vec<String>>>>,
}

impl<'c> Resolver<'c> {
    /// A resolver whose source reads make at most `parallel` calls at once.
    pub fn new(plan: &'c Plan<'c>, ctx: OpenContext<'c>, parallel: usize) -> Self {
        Self {
            plan,
            ctx,
            limiter: Arc::new(Semaphore::new(parallel.max(1))),
            parallel,
            sources: plan.config.sources.iter().map(|_| OnceCell::new()).collect(),
            targets: Mutex::new(vec![None; plan.targets.len()]),
            warnings: Mutex::new(vec![None; plan.targets.len()]),
        }
    }

    /// The warnings of the targets resolved so far, by target name: selection patterns
    /// that matched nothing (likely typos). Sorted by target.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let warnings = self.warnings.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<(String, String)> = warnings
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                let name = self.plan.targets[i].name.clone();
                w.iter().flatten().map(move |m| (name.clone(), m.clone()))
            })
            .collect();
        out.sort();
        out
    }

    /// A source's secrets, read on first use.
    pub async fn source(&self, id: SourceId) -> Resolved {
        self.sources[id.0]
            .get_or_init(|| async {
                let source = self.plan.source(id);
                let read = async {
                    let store = open_store(&source.store, &self.ctx, None).await?;
                    Handle::new(store, self.limiter.clone(), self.parallel).read_state().await
                };
                let location = source.store.describe();
                let context = format!("cannot read source `{}` ({location})", source.name);
                match read.await {
                    // A typo'd path reads as nothing: syncing nothing could delete everything.
                    Ok(live) if live.is_empty() && !source.allow_empty => Err(Failure {
                        kind: ErrorKind::NotFound,
                        store: Some(source.store.kind()),
                        location: Some(location.clone()),
                        message: format!("{context}: it does not exist or holds no secret"),
                        hint: Some("check its location, or set `allow_empty: true` on the source".into()),
                    }),
                    Ok(live) => values_of(live).map(Arc::new).map_err(|path| {
                        Failure::new(
                            ErrorKind::Invalid,
                            format!("{context}: the store does not return the value of `{path}`"),
                        )
                    }),
                    Err(e) => Err(e.into_failure(&context, source.store.kind(), &location)),
                }
            })
            .await
            .clone()
    }

    /// Resolves `targets` and everything they need, level by level, each level
    /// concurrently.
    pub async fn resolve_all(&self, targets: &[TargetId]) {
        let closure = self.plan.graph.closure(targets);
        let mut levels: Vec<Vec<TargetId>> = Vec::new();
        for t in closure {
            let level = self.plan.graph.levels[t.0];
            if levels.len() <= level {
                levels.resize_with(level + 1, Vec::new);
            }
            levels[level].push(t);
        }
        for level in levels {
            futures::stream::iter(level)
                .map(|t| self.resolve(t))
                .buffer_unordered(self.parallel.max(1))
                .for_each(|_| async {})
                .await;
        }
    }

    /// The desired state of `target`. Every target it needs must be resolved already (the
    /// graph's level order guarantees it; [`Resolver::resolve_all`] does it for you).
    pub async fn resolve(&self, target: TargetId) -> Resolved {
        if let Some(done) = self.cached(target) {
            return done;
        }
        let result = self.compute(target).await;
        self.lock()[target.0] = Some(result.clone());
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Resolved>>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cached(&self, target: TargetId) -> Option<Resolved> {
        self.lock()[target.0].clone()
    }

    fn dependency(&self, target: TargetId) -> Resolved {
        let name = &self.plan.target(target).name;
        match self.cached(target) {
            Some(Ok(map)) => Ok(map),
            Some(Err(_)) => {
                Err(Failure::new(ErrorKind::Dependency, format!("not merged: target `{name}` it depends on failed")))
            }
            None => Err(Failure::new(
                ErrorKind::Internal,
                format!("internal: target `{name}` was not resolved before its dependents"),
            )),
        }
    }

    async fn compute(&self, id: TargetId) -> Resolved {
        let target = self.plan.target(id);
        let mut warnings = Vec::new();
        let base = match target.inherits {
            Some(parent) => {
                let what = format!("`inherits: {}`", self.plan.target(parent).name);
                let selected = select(&target.inherit_selection, &self.dependency(parent)?, &what, &mut warnings)?;
                (*selected).clone()
            }
            None => SecretMap::new(),
        };
        let mut layers = Vec::with_capacity(target.imports.len());
        let mut failures = Vec::new();
        for (i, import) in target.imports.iter().enumerate() {
            let layer = match *import {
                Import::Source(s) => self.source(s).await,
                Import::Target(t) => self.dependency(t),
            };
            let selection = target.selections.get(i).cloned().unwrap_or_default();
            let what = format!("import `{}`", self.import_name(*import));
            match layer.and_then(|map| select(&selection, &map, &what, &mut warnings)) {
                Ok(map) => layers.push(map),
                Err(e) => failures.push(e),
            }
        }
        if let Some(first) = failures.first() {
            let message = failures.iter().map(|f| f.message.as_str()).collect::<Vec<_>>().join("; ");
            return Err(Failure { message, ..first.clone() });
        }
        let merged = Arc::new(merge_all(base, layers.iter().map(|m| m.as_ref()), target.merge));
        let accepted = select(&target.accepts, &merged, "its `include`/`exclude`", &mut warnings)?;
        self.warnings.lock().unwrap_or_else(|e| e.into_inner())[id.0] = Some(warnings);
        Ok(accepted)
    }

    /// The name an import refers to.
    fn import_name(&self, import: Import) -> &str {
        match import {
            Import::Source(s) => &self.plan.source(s).name,
            Import::Target(t) => &self.plan.target(t).name,
        }
    }
}

impl Resolver<'_> {
    /// The layers `target`'s desired state was merged from, in merge order (its parent's
    /// first), each as its import's selection took it (and as every `inherits` selection
    /// and target filter on the way took it), with that desired state. The target must be
    /// resolved already.
    pub async fn lineage(&self, target: TargetId) -> Result<crate::provenance::Lineage, Failure> {
        use crate::provenance::{Layer, LayerKind, LayerOrigin, Lineage};
        let desired = self.dependency(target)?;
        let mut chain = vec![target];
        while let Some(parent) = self.plan.target(*chain.last().expect("not empty")).inherits {
            chain.push(parent);
        }
        let mut layers: Vec<Layer> = Vec::new();
        for id in chain.into_iter().rev() {
            let t = self.plan.target(id);
            if t.inherits.is_some() {
                for layer in &mut layers {
                    reselect(layer, &t.inherit_selection)?;
                }
            }
            for (i, import) in t.imports.iter().enumerate() {
                let span = t.spans.imports.get(i).copied().unwrap_or(t.spans.name);
                let (kind, name, secrets) = match *import {
                    Import::Source(s) => (LayerKind::Source, self.plan.source(s).name.clone(), self.source(s).await?),
                    Import::Target(other) => {
                        (LayerKind::Target, self.plan.target(other).name.clone(), self.dependency(other)?)
                    }
                };
                let selection = t.selections.get(i).cloned().unwrap_or_default();
                let options = (!selection.is_identity()).then(|| selection.describe());
                let origin = LayerOrigin {
                    kind,
                    name,
                    imported_by: t.name.clone(),
                    at: self.plan.config.file.position(span.start),
                    options,
                };
                let mut layer = Layer { origin, secrets, nulls: t.merge.nulls, moved: Default::default() };
                reselect(&mut layer, &selection)?;
                layers.push(layer);
            }
            for layer in &mut layers {
                reselect(layer, &t.accepts)?;
            }
        }
        Ok(Lineage { layers, desired })
    }
}

/// A layer as `selection` takes it, remembering where moved secrets and keys came from.
fn reselect(layer: &mut crate::provenance::Layer, selection: &crate::select::Selection) -> Result<(), Failure> {
    if selection.is_identity() {
        return Ok(());
    }
    let selected = selection.apply(&layer.secrets).map_err(|errors| refused(&layer.origin.to_string(), &errors))?;
    let mut moved = std::collections::BTreeMap::new();
    for (at, from) in selected.moved {
        // Through earlier moves, back to where the layer's source holds it.
        let earlier = layer
            .moved
            .get(&(from.path.clone(), from.key.clone()))
            .or_else(|| layer.moved.get(&(from.path.clone(), None)));
        let origin = match earlier {
            Some(e) => crate::select::Moved { path: e.path.clone(), key: from.key.clone().or_else(|| e.key.clone()) },
            None => from,
        };
        moved.insert(at, origin);
    }
    for (at, from) in &layer.moved {
        if selected.secrets.contains_key(&at.0) && !moved.contains_key(at) {
            moved.insert(at.clone(), from.clone());
        }
    }
    layer.secrets = Arc::new(selected.secrets);
    layer.moved = moved;
    Ok(())
}

/// `secrets` as `selection` takes them (the same map when it takes everything as it is);
/// patterns that matched nothing are added to `warnings`, naming `what` holds them.
fn select(
    selection: &crate::select::Selection,
    secrets: &Arc<SecretMap>,
    what: &str,
    warnings: &mut Vec<String>,
) -> Resolved {
    if selection.is_identity() {
        return Ok(secrets.clone());
    }
    match selection.apply(secrets) {
        Ok(selected) => {
            warnings.extend(selected.unmatched.iter().map(|p| format!("{what}: {p} matches nothing")));
            Ok(Arc::new(selected.secrets))
        }
        Err(errors) => Err(refused(what, &errors)),
    }
}

/// The failure of a selection that `what` declares: every collision and bad path, named.
fn refused(what: &str, errors: &[crate::select::SelectError]) -> Failure {
    let list = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let failure = Failure::new(ErrorKind::Invalid, format!("{what}: {list}"));
    let collision = errors.iter().any(|e| !matches!(e, crate::select::SelectError::BadPath { .. }));
    if collision { failure.with_hint("rename one of them, or select only one") } else { failure }
}

/// The values of a live state read from a source or a bundle; the path of a secret whose
/// value the store did not return, if any (such a store cannot be read from).
pub fn values_of(live: crate::secret::LiveState) -> Result<SecretMap, crate::secret::SecretPath> {
    live.into_iter()
        .map(|(path, secret)| match secret.into_value() {
            Some(value) => Ok((path, value)),
            None => Err(path),
        })
        .collect()
}
