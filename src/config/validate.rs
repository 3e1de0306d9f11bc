//! Raw config -> validated [`Config`]: every check, every error at once, sorted by
//! position. Never touches a store and needs no credentials.

use std::collections::BTreeMap;
use std::path::Path;

use crate::audit::AuditLog;
use crate::config::de::from_node;
use crate::config::model::{Config, Import, MergePhase, Safety, Source, SourceId, SyncPhase, Target, TargetId};
use crate::config::raw::{RawConfig, RawImport, RawSelection, RawSource, RawTarget};
use crate::diagnostic::{Diagnostic, SourceFile, suggest};
use crate::graph::{Dependency, EdgeKind, Graph};
use crate::merge::MergeOptions;
use crate::merge::RawMergeOptions;
use crate::span::Lenient;
use crate::span::Span;
use crate::span::Spanned;
use crate::store::{Role, StoreConfig, StoreDefaults};
use crate::yaml;

/// A config that could not be loaded: the file and every diagnostic.
#[derive(Clone, Debug)]
pub struct ConfigError {
    /// The file (name and text) the diagnostics point into.
    pub file: SourceFile,
    /// Every error, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.file.render_all(&self.diagnostics))
    }
}

impl std::error::Error for ConfigError {}

/// The name of the implicit source made from a top-level `source:` block.
pub const DEFAULT_SOURCE: &str = "source";

/// Reads, parses and validates the config file at `path`; `env` looks up `${VAR}`s.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: SourceFile { name: name.clone(), text: String::new() },
        diagnostics: vec![Diagnostic::global(format!("cannot read config file `{name}`: {e}"))],
    })?;
    let base_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    load_str(&name, text, base_dir, env)
}

/// Parses and validates config `text` named `name`; relative store paths resolve against
/// `base_dir`.
pub fn load_str(
    name: &str,
    text: String,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let file = SourceFile { name: name.to_string(), text };
    let fail = |file: SourceFile, mut diagnostics: Vec<Diagnostic>| {
        diagnostics.sort_by_key(|d| d.span.map(|s| s.start));
        Err(ConfigError { file, diagnostics })
    };
    let node = match yaml::parse(&file.text) {
        Ok(node) => node,
        Err(e) => return fail(file, vec![Diagnostic::at(e.span, e.message)]),
    };
    if node.is_null() {
        return fail(
            file,
            vec![
                Diagnostic::at(Span::new(0, 0), "the config is empty")
                    .with_label("declare at least one target under `targets:`"),
            ],
        );
    }
    let (raw, mut diagnostics) = from_node::<RawConfig>(&node, env);
    let Some(raw) = raw else { return fail(file, diagnostics) };
    let mut checker = Checker { diagnostics: &mut diagnostics, defaults: Default::default(), names_only: Vec::new() };
    let config = checker.check(raw, &file, base_dir);
    match config {
        Some(mut config) if diagnostics.is_empty() => {
            // Each target's block as written, for the registry.
            if let yaml::NodeKind::Map(top) = &node.kind
                && let Some((_, targets)) = top.iter().find(|(k, _)| k.scalar_text() == Some("targets"))
                && let yaml::NodeKind::Map(entries) = &targets.kind
            {
                for target in &mut config.targets {
                    if let Some((_, block)) =
                        entries.iter().find(|(k, _)| k.scalar_text() == Some(target.name.as_str()))
                    {
                        target.block = block.to_json();
                    }
                }
            }
            Ok(config)
        }
        _ => fail(file, diagnostics),
    }
}

/// The names references resolve against.
struct Names<'a> {
    sources: &'a BTreeMap<&'a str, SourceId>,
    targets: &'a BTreeMap<&'a str, TargetId>,
    /// Declared but unparsable: references to them are not reported again.
    broken: &'a [String],
}

struct Checker<'d> {
    diagnostics: &'d mut Vec<Diagnostic>,
    /// The config's store defaults, once read (store checks depend on them).
    defaults: StoreDefaults,
    /// Sources whose store lists names but never returns values (GitHub), with its kind:
    /// nothing can import them.
    names_only: Vec<(String, &'static str)>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl Checker<'_> {
    fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// A `percent` of `max_deletes`: at most 100 (`span`, where written, for the error).
    fn percent(&mut self, percent: Option<u32>, default: u32, span: Span) -> u32 {
        match percent {
            Some(p) if p > 100 => {
                self.error(Diagnostic::at(
                    span,
                    format!("`max_deletes.percent` is {p}: a share of the secrets is at most 100"),
                ));
                default
            }
            Some(p) => p,
            None => default,
        }
    }

    /// A target's guards: its own `max_deletes` over the phase's, its `protect` globs
    /// (each checked), `allow_emptying`.
    fn safety(&mut self, raw: &RawTarget, phase: &Safety, synced: bool, name: &Spanned<String>) -> Safety {
        let mut safety = phase.clone();
        if let Some(Spanned { value: Lenient(Some(limit)), span }) = &raw.max_deletes {
            safety.max_count = limit.count.unwrap_or(phase.max_count);
            safety.max_percent = self.percent(limit.percent, phase.max_percent, *span);
        }
        for pattern in raw.protect.iter().flat_map(|p| &p.value) {
            match globset::GlobBuilder::new(&pattern.value).literal_separator(true).build() {
                Ok(glob) => safety.protect.push((pattern.value.clone(), glob.compile_matcher())),
                Err(e) => self.error(
                    Diagnostic::at(pattern.span, format!("`{}` is not a glob: {}", pattern.value, e.kind()))
                        .with_label("`*` matches within a path segment, `**` across segments, `?` one character"),
                ),
            }
        }
        safety.allow_emptying = raw.allow_emptying.unwrap_or(false);
        let declared = raw.max_deletes.is_some() || raw.protect.is_some() || raw.allow_emptying.is_some();
        if declared && !synced {
            self.error(
                Diagnostic::at(
                    name.span,
                    format!("target `{}` has no destination: its guards guard nothing", name.value),
                )
                .with_label("`max_deletes`, `protect` and `allow_emptying` apply where a target is synced"),
            );
        }
        safety
    }

    /// Two locations that overlap where one of them writes: targets and the merge store
    /// among themselves, and each against the sources. Sorted per system, a location
    /// follows every location that contains it, so one pass with a stack of the enclosing
    /// ones finds every overlap in O(n log n) (configs have tens of thousands of targets).
    fn overlaps(
        &mut self,
        writers: &[(String, Span, StoreConfig)],
        readers: &[(String, Span, StoreConfig)],
        base_dir: &Path,
    ) {
        struct Entry<'e> {
            who: &'e str,
            span: Span,
            store: &'e StoreConfig,
            locus: crate::store::Locus,
            writes: bool,
        }
        let mut entries: Vec<Entry<'_>> = writers
            .iter()
            .map(|w| (w, true))
            .chain(readers.iter().map(|r| (r, false)))
            .filter_map(|((who, span, store), writes)| {
                let locus = store.locus(&self.defaults, base_dir)?;
                Some(Entry { who, span: *span, store, locus, writes })
            })
            .collect();
        // Enclosing first, writers before readers at one place.
        entries.sort_by(|a, b| a.locus.cmp(&b.locus).then(b.writes.cmp(&a.writes)));
        let mut found = Vec::new();
        let mut enclosing: Vec<usize> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            while enclosing.last().is_some_and(|&top| !entries[top].locus.overlaps(&entry.locus)) {
                enclosing.pop();
            }
            if let Some(&other) = enclosing.iter().rev().find(|&&o| entries[o].writes || entry.writes) {
                // The writer first; of two writers, the one written first.
                let other = &entries[other];
                let entry_first = entry.writes && (!other.writes || entry.span.start < other.span.start);
                let (a, b) = if entry_first { (entry, other) } else { (other, entry) };
                found.push((
                    a.span,
                    Diagnostic::at(
                        a.span,
                        format!(
                            "{} and {} overlap: `{}` and `{}`",
                            a.who,
                            b.who,
                            a.store.describe(),
                            b.store.describe()
                        ),
                    )
                    .with_label("one would overwrite or delete what the other holds: give each its own location")
                    .with_note(b.span, format!("{} is here", b.who)),
                ));
            }
            enclosing.push(i);
        }
        found.sort_by_key(|(span, _)| span.start);
        self.diagnostics.extend(found.into_iter().map(|(_, d)| d));
    }

    /// `audit:`: a file (resolved against `base_dir`) or a name in the merge store.
    fn audit(
        &mut self,
        span: Span,
        audit: crate::audit::AuditConfig,
        has_merge_store: bool,
        base_dir: &Path,
    ) -> Option<AuditLog> {
        match (audit.file, audit.merge_store) {
            (Some(file), None) if file.value.trim().is_empty() => {
                self.error(Diagnostic::at(file.span, "`audit.file` is empty"));
                None
            }
            (Some(file), None) => Some(AuditLog::File(base_dir.join(&file.value))),
            (None, Some(name)) if !valid_name(&name.value) => {
                self.error(
                    Diagnostic::at(name.span, format!("invalid audit log name `{}`", name.value))
                        .with_label("names use only letters, digits, `_`, `.` and `-`"),
                );
                None
            }
            (None, Some(name)) if !has_merge_store => {
                self.error(
                    Diagnostic::at(name.span, "`audit.merge_store` needs a `merge_store`").with_label(
                        "add a `merge_store`, or write the log to a file: `audit: { file: vss-audit.jsonl }`",
                    ),
                );
                None
            }
            (None, Some(name)) => Some(AuditLog::MergeStore { name: name.value, span: name.span }),
            (Some(file), Some(_)) => {
                self.error(
                    Diagnostic::at(file.span, "`audit` has both `file` and `merge_store`")
                        .with_label("the log is in one place: keep one of them"),
                );
                None
            }
            (None, None) => {
                self.error(
                    Diagnostic::at(span, "`audit` names no log")
                        .with_label("write `file: vss-audit.jsonl` or `merge_store: vss-audit`"),
                );
                None
            }
        }
    }

    fn check(&mut self, raw: RawConfig, file: &SourceFile, base_dir: &Path) -> Option<Config> {
        if let Some(version) = &raw.version
            && version.value != 1
        {
            self.error(
                Diagnostic::at(version.span, format!("unsupported config version {}", version.value))
                    .with_label("this vss reads `version: 1`"),
            );
        }

        let mut store_defaults = StoreDefaults::default();
        for (key, block) in raw.defaults {
            store_defaults.set(key, block);
        }
        store_defaults.check(self.diagnostics);
        self.defaults = store_defaults.clone();
        let pipeline = raw.pipeline.and_then(|p| p.0).unwrap_or_default();
        let timeouts = match &pipeline.timeouts {
            Some(Spanned { value: Lenient(Some(raw)), span }) => {
                let defaults = crate::store::Timeouts::default();
                let mut seconds = |value: Option<u32>, default: std::time::Duration, key: &str| match value {
                    Some(0) => {
                        self.diagnostics.push(
                            Diagnostic::at(*span, format!("`pipeline.timeouts.{key}` is 0"))
                                .with_label("a timeout is at least 1 second"),
                        );
                        default
                    }
                    Some(s) => std::time::Duration::from_secs(u64::from(s)),
                    None => default,
                };
                crate::store::Timeouts {
                    connect: seconds(raw.connect, defaults.connect, "connect"),
                    request: seconds(raw.request, defaults.request, "request"),
                }
            }
            _ => crate::store::Timeouts::default(),
        };
        let merge_phase = pipeline.merge.unwrap_or_default();
        let sync_phase = pipeline.sync.unwrap_or_default();
        let merge_parallel = self.parallel(merge_phase.parallel.as_ref(), 4);
        let sync_parallel = self.parallel(sync_phase.parallel.as_ref(), 8);

        let audit_block = raw.audit.and_then(|a| Some((a.span, a.value.0?)));
        let mut ensure_repositories = Vec::new();
        for repo in raw.ensure.and_then(|e| e.0).map(|e| e.repositories).unwrap_or_default() {
            // `owner/*` is every repository of the owner.
            let pattern = repo.value.strip_suffix("/*").map(|owner| format!("{owner}/x"));
            if !crate::store::is_repository(pattern.as_deref().unwrap_or(&repo.value)) {
                self.diagnostics.push(
                    Diagnostic::at(repo.span, "a repository is `owner/name` or `owner/*`")
                        .with_label("e.g. `acme/app`"),
                );
            }
            ensure_repositories.push(repo.value);
        }
        let merge_store_written = raw.merge_store.is_some();
        let mut merge_store_span = None;
        let merge_store = match raw.merge_store {
            Some(Spanned { value: Lenient(Some(store)), span }) => {
                self.check_store(&store, span, Role::MergeStore);
                merge_store_span = Some(span);
                Some(store)
            }
            _ => None,
        };
        let audit = audit_block.and_then(|(span, audit)| self.audit(span, audit, merge_store_written, base_dir));
        let registry = match raw.registry.and_then(|r| r.value.0) {
            Some(block) if block.file.value.trim().is_empty() => {
                self.error(Diagnostic::at(block.file.span, "`registry.file` is empty"));
                None
            }
            Some(block) => Some(crate::registry::Place::File(base_dir.join(&block.file.value))),
            None if merge_store_written => Some(crate::registry::Place::MergeStore),
            None => match &audit {
                Some(AuditLog::File(path)) => {
                    Some(crate::registry::Place::File(path.parent().unwrap_or(base_dir).join("vss-registry.json")))
                }
                _ => None,
            },
        };
        if merge_phase.enabled == Some(true) && !merge_store_written {
            self.error(
                Diagnostic::global("`pipeline.merge.enabled` is true but there is no `merge_store`")
                    .with_label("add a `merge_store`, or remove `pipeline.merge.enabled`"),
            );
        }

        let defaults = merge_options(raw.merge.and_then(|m| m.0).as_ref(), MergeOptions::default());

        // Sources, including the implicit default source.
        let mut sources: Vec<(Span, Source)> = Vec::new();
        // Names declared but unparsable: their errors are reported; references to them are
        // not reported again as unknown.
        let mut broken: Vec<String> = Vec::new();
        let parse_errors: Vec<Span> = self.diagnostics.iter().filter_map(|d| d.span).collect();
        for (name, entry) in raw.sources.unwrap_or_default() {
            if !valid_name(&name.value) {
                self.error(
                    Diagnostic::at(name.span, format!("invalid source name `{}`", name.value))
                        .with_label("names use only letters, digits, `_`, `.` and `-`"),
                );
            }
            match entry.value {
                Lenient(Some(raw)) => match self.source(&name.value, name.span, entry.span, raw, &parse_errors) {
                    Some(source) => sources.push((name.span, source)),
                    None => broken.push(name.value),
                },
                Lenient(None) => broken.push(name.value),
            }
        }
        let mut has_default_source = false;
        if let Some(Spanned { value: Lenient(None), .. }) = raw.source {
            broken.push(DEFAULT_SOURCE.into());
            has_default_source = true;
        }
        if let Some(Spanned { value: Lenient(Some(raw)), span }) = raw.source {
            if let Some((taken, _)) = sources.iter().find(|(_, s)| s.name == DEFAULT_SOURCE) {
                self.error(
                    Diagnostic::at(
                        *taken,
                        format!("a source may not be named `{DEFAULT_SOURCE}` when a top-level `source:` block exists"),
                    )
                    .with_note(span, "the top-level source is here"),
                );
            } else {
                match self.source(DEFAULT_SOURCE, span, span, raw, &parse_errors) {
                    Some(source) => {
                        sources.push((span, source));
                        sources.sort_by(|a, b| a.1.name.cmp(&b.1.name));
                    }
                    None => broken.push(DEFAULT_SOURCE.into()),
                }
                has_default_source = true;
            }
        }

        // Targets: names, destinations, options.
        let raw_targets: Vec<(Spanned<String>, Span, Option<RawTarget>)> =
            raw.targets.unwrap_or_default().into_iter().map(|(name, t)| (name, t.span, t.value.0)).collect();
        if raw_targets.is_empty() {
            self.error(Diagnostic::global("the config declares no targets").with_label("add a `targets:` mapping"));
        }
        let target_names: Vec<String> = raw_targets.iter().map(|(n, _, _)| n.value.clone()).collect();
        if registry == Some(crate::registry::Place::MergeStore)
            && let Some((taken, _, _)) = raw_targets.iter().find(|(n, _, _)| n.value == crate::registry::BUNDLE)
        {
            self.error(
                Diagnostic::at(
                    taken.span,
                    format!("`{}` is the name of vss's registry in the merge store", taken.value),
                )
                .with_label(
                    "rename the target, or keep the registry in a file: `registry: { file: vss-registry.json }`",
                ),
            );
        }
        if let Some(AuditLog::MergeStore { name, span }) = &audit
            && let Some((taken, _, _)) = raw_targets.iter().find(|(n, _, _)| n.value == *name)
        {
            self.error(
                Diagnostic::at(*span, format!("the audit log `{name}` has the name of a target"))
                    .with_label("the target's bundle would be written in the same place of the merge store")
                    .with_note(taken.span, "the target is here"),
            );
        }
        let source_index: BTreeMap<&str, SourceId> =
            sources.iter().enumerate().map(|(i, (_, s))| (s.name.as_str(), SourceId(i))).collect();
        let target_index: BTreeMap<&str, TargetId> =
            target_names.iter().enumerate().map(|(i, n)| (n.as_str(), TargetId(i))).collect();

        let sync_safety = {
            let defaults = Safety::default();
            match &sync_phase.max_deletes {
                Some(Spanned { value: Lenient(Some(limit)), span }) => Safety {
                    max_count: limit.count.unwrap_or(defaults.max_count),
                    max_percent: self.percent(limit.percent, defaults.max_percent, *span),
                    ..defaults
                },
                _ => defaults,
            }
        };
        let mut targets = Vec::new();
        let mut destination_spans = Vec::new();
        let mut dependencies = Vec::new();
        let mut complete = true;
        let parse_errors: Vec<Span> = self.diagnostics.iter().filter_map(|d| d.span).collect();
        for (index, (name, body, raw_target)) in raw_targets.iter().enumerate() {
            // A target with a parse error inside gets no follow-up errors that it may cause.
            let had_errors =
                parse_errors.iter().any(|s| s.start >= body.start && s.end <= body.end.max(body.start + 1));
            if !valid_name(&name.value) {
                self.error(
                    Diagnostic::at(name.span, format!("invalid target name `{}`", name.value))
                        .with_label("names use only letters, digits, `_`, `.` and `-`"),
                );
            }
            if source_index.contains_key(name.value.as_str()) {
                self.error(
                    Diagnostic::at(name.span, format!("`{}` is both a source and a target", name.value))
                        .with_label("imports would be ambiguous: rename one"),
                );
            }
            let Some(raw_target) = raw_target else {
                complete = false;
                continue;
            };
            let this = TargetId(index);
            let names = Names { sources: &source_index, targets: &target_index, broken: &broken };
            let (inherits, inherit_selection) = match &raw_target.inherits {
                Some(raw) => {
                    let parent = self.inherited(raw);
                    (self.resolve_parent(parent.as_ref(), &names), self.selection_of(&raw.value))
                }
                None => (None, crate::select::Selection::default()),
            };
            let resolved = self.resolve_target_imports(raw_target.imports.as_ref(), &names);
            if let Some((parent, span)) = inherits {
                dependencies.push(Dependency { from: this, to: parent, kind: EdgeKind::Inherits, span });
            }
            for (import, span, _) in &resolved {
                if let Import::Target(to) = *import {
                    dependencies.push(Dependency { from: this, to, kind: EdgeKind::Imports, span: *span });
                }
            }
            let mut spans = crate::config::model::TargetSpans {
                name: name.span,
                inherits: inherits.map(|(_, span)| span),
                imports: resolved.iter().map(|(_, span, _)| *span).collect(),
            };
            let inherits = inherits.map(|(id, _)| id);
            let (mut imports, mut selections): (Vec<Import>, Vec<crate::select::Selection>) =
                resolved.into_iter().map(|(import, _, selection)| (import, selection)).unzip();
            let accepts = crate::select::Selection {
                include: self.globs(raw_target.include.as_deref().unwrap_or_default()),
                exclude: self.globs(raw_target.exclude.as_deref().unwrap_or_default()),
                ..crate::select::Selection::default()
            };
            if raw_target.imports.is_none() && raw_target.inherits.is_none() {
                if let Some(&id) = source_index.get(DEFAULT_SOURCE).filter(|_| has_default_source) {
                    self.readable(DEFAULT_SOURCE, name.span);
                    imports.push(Import::Source(id));
                    selections.push(crate::select::Selection::default());
                    spans.imports.push(name.span);
                } else if !has_default_source && !had_errors {
                    self.error(
                        Diagnostic::at(name.span, format!("target `{}` has nothing to merge", name.value))
                            .with_label("add `imports`, `inherits`, or a top-level `source:`"),
                    );
                }
            }
            let mut destinations = raw_target.destinations.clone();
            for (key, value) in &raw_target.shorthands {
                if let Err(diagnostic) = StoreConfig::apply_shorthand(&name.value, key, value, &mut destinations) {
                    self.error(diagnostic);
                }
            }
            let mut destination = None;
            for (i, (key, store)) in destinations.iter().enumerate() {
                if i == 0 {
                    self.check_store(store, key.span, Role::Target);
                    let deletes = raw_target.delete_orphans.as_ref().map(|d| d.value).or(sync_phase.delete_orphans);
                    if deletes == Some(true) && !store.capabilities().ownership {
                        self.error(
                            Diagnostic::at(key.span, format!("the `{}` store keeps no ownership markers, so `delete_orphans` cannot be used with it", store.kind()))
                                .with_label("vss deletes only secrets it can prove it created"),
                        );
                    }
                    destination = Some(store.clone());
                    destination_spans.push((format!("target `{}`", name.value), key.span, store.clone()));
                } else {
                    self.error(
                        Diagnostic::at(
                            key.span,
                            format!(
                                "target `{}` has two destinations, `{}` and `{}`",
                                name.value, destinations[0].0.value, key.value
                            ),
                        )
                        .with_label("a target syncs to at most one store: split it into two targets")
                        .with_note(destinations[0].0.span, "the first destination is here"),
                    );
                }
            }
            let merge = merge_options(raw_target.merge.as_ref().and_then(|m| m.0.as_ref()), defaults);
            let safety = self.safety(raw_target, &sync_safety, destination.is_some(), name);
            if let Some(flag) = &raw_target.delete_orphans
                && destination.is_none()
            {
                self.error(
                    Diagnostic::at(
                        flag.span,
                        format!("target `{}` has no destination: `delete_orphans` deletes nothing", name.value),
                    )
                    .with_label("it applies where a target is synced"),
                );
            }
            targets.push(Target {
                name: name.value.clone(),
                inherits,
                imports,
                selections,
                inherit_selection,
                accepts,
                delete_orphans: raw_target.delete_orphans.as_ref().map(|d| d.value),
                block: serde_json::Value::Null,
                destination,
                merge,
                safety,
                spans,
            });
        }

        let mut writers = destination_spans;
        if let (Some(store), Some(span)) = (&merge_store, merge_store_span) {
            writers.push(("the merge store".to_string(), span, store.clone()));
        }
        let readers: Vec<(String, Span, StoreConfig)> =
            sources.iter().map(|(span, s)| (format!("source `{}`", s.name), *span, s.store.clone())).collect();
        // Checked once everything else holds: a store block with mistakes has no reliable
        // location to compare.
        if self.diagnostics.is_empty() {
            self.overlaps(&writers, &readers, base_dir);
        }

        #[cfg(not(feature = "aws"))]
        let dynamic = Vec::new();
        #[cfg(feature = "aws")]
        let dynamic = self.dynamic_targets(
            raw.dynamic_targets.unwrap_or_default(),
            &source_index,
            &target_index,
            &broken,
            defaults,
        );
        let graph = match Graph::build(&target_names, dependencies) {
            Ok(graph) => Some(graph),
            Err(cycles) => {
                self.diagnostics.extend(cycles);
                None
            }
        };
        if !complete || !self.diagnostics.is_empty() {
            return None;
        }
        Some(Config {
            file: file.clone(),
            audit,
            registry,
            timeouts,
            ensure_repositories,
            base_dir: base_dir.to_path_buf(),
            merge_store,
            defaults: store_defaults,
            merge: MergePhase { enabled: merge_phase.enabled.unwrap_or(true), parallel: merge_parallel },
            sync: SyncPhase {
                enabled: sync_phase.enabled.unwrap_or(true),
                parallel: sync_parallel,
                delete_orphans: sync_phase.delete_orphans.unwrap_or(false),
                safety: sync_safety,
            },
            sources: sources.into_iter().map(|(_, s)| s).collect(),
            targets,
            graph: graph?,
            dynamic,
        })
    }

    /// The target named by `inherits`, or an error (none for a name whose own definition
    /// failed to parse: that error is reported already).
    fn resolve_parent(&mut self, parent: Option<&Spanned<String>>, names: &Names<'_>) -> Option<(TargetId, Span)> {
        let parent = parent?;
        if let Some(&id) = names.targets.get(parent.value.as_str()) {
            return Some((id, parent.span));
        }
        if !names.broken.contains(&parent.value) {
            let is_source = names.sources.contains_key(parent.value.as_str());
            self.unknown(parent, "target", names.targets.keys().copied(), is_source);
        }
        None
    }

    /// The sources and targets named by `imports`, in order, each with where it is written.
    fn resolve_imports(
        &mut self,
        imports: Option<&Spanned<Vec<Spanned<String>>>>,
        names: &Names<'_>,
    ) -> Vec<(Import, Span)> {
        let mut resolved = Vec::new();
        for import in imports.map(|i| i.value.as_slice()).unwrap_or_default() {
            if let Some(&id) = names.sources.get(import.value.as_str()) {
                self.readable(&import.value, import.span);
                resolved.push((Import::Source(id), import.span));
            } else if let Some(&id) = names.targets.get(import.value.as_str()) {
                resolved.push((Import::Target(id), import.span));
            } else if !names.broken.contains(&import.value) {
                let known: Vec<&str> = names.sources.keys().chain(names.targets.keys()).copied().collect();
                self.unknown(import, "source or target", known.into_iter(), false);
            }
        }
        resolved
    }

    /// A target's imports, each with where it is written and what it takes; names that do
    /// not resolve are reported and left out.
    fn resolve_target_imports(
        &mut self,
        imports: Option<&Spanned<Vec<Spanned<RawImport>>>>,
        names: &Names<'_>,
    ) -> Vec<(Import, Span, crate::select::Selection)> {
        let mut resolved = Vec::new();
        for import in imports.map(|i| i.value.as_slice()).unwrap_or_default() {
            if let RawImport::Block(block) = &import.value
                && block.source.is_some()
                && block.target.is_some()
            {
                self.error(
                    Diagnostic::at(import.span, "an import block names `source:` or `target:`, not both")
                        .with_label("split it into two imports"),
                );
                continue;
            }
            let Some(name) = import.value.name(import.span) else {
                self.error(
                    Diagnostic::at(import.span, "this import block names nothing to import")
                        .with_label("add `source: NAME` (or `target: NAME`)"),
                );
                continue;
            };
            let selection = self.selection_of(&import.value);
            let wrapped = Spanned { span: name.span, value: vec![name.clone()] };
            if let Some((found, span)) = self.resolve_imports(Some(&wrapped), names).pop() {
                resolved.push((found, span, selection));
            }
        }
        resolved
    }

    /// The target an `inherits` names (a block names it with `target:`).
    fn inherited(&mut self, raw: &Spanned<RawImport>) -> Option<Spanned<String>> {
        if let RawImport::Block(block) = &raw.value
            && let Some(source) = &block.source
        {
            self.error(
                Diagnostic::at(source.span, "`inherits` names a target: write `target:`")
                    .with_label("to take a source's secrets, import it"),
            );
            return None;
        }
        let name = raw.value.name(raw.span);
        if name.is_none() {
            self.error(
                Diagnostic::at(raw.span, "this `inherits` block names no target").with_label("add `target: NAME`"),
            );
        }
        name
    }

    /// The selection an import (or `inherits`) block declares, each pattern checked.
    fn selection_of(&mut self, raw: &RawImport) -> crate::select::Selection {
        let RawImport::Block(block) = raw else { return crate::select::Selection::default() };
        self.selection(block)
    }

    fn selection(&mut self, raw: &RawSelection) -> crate::select::Selection {
        let keys = raw.keys.clone().unwrap_or_default();
        let mut selection = crate::select::Selection {
            include: self.globs(raw.include.as_deref().unwrap_or_default()),
            exclude: self.globs(raw.exclude.as_deref().unwrap_or_default()),
            keys_include: self.globs(keys.include.as_deref().unwrap_or_default()),
            keys_exclude: self.globs(keys.exclude.as_deref().unwrap_or_default()),
            ..crate::select::Selection::default()
        };
        for (from, to) in raw.rename.iter().flat_map(|r| &r.0) {
            if to.value.trim_matches('/').is_empty() {
                self.error(Diagnostic::at(to.span, format!("`{}` is renamed to nothing", from.value)));
                continue;
            }
            match crate::select::Rename::new(&from.value, &to.value) {
                Ok(rename) => selection.rename.push(rename),
                Err(why) => self.error(Diagnostic::at(from.span, format!("rename `{}`: {why}", from.value))),
            }
        }
        for (from, to) in raw.rename_keys.iter().flat_map(|r| &r.0) {
            if from.value.is_empty() || to.value.is_empty() {
                self.error(Diagnostic::at(from.span, "`rename_keys` renames a key to a key: neither may be empty"));
                continue;
            }
            if selection.rename_keys.iter().any(|(f, _)| *f == from.value) {
                self.error(Diagnostic::at(from.span, format!("key `{}` is renamed twice", from.value)));
                continue;
            }
            selection.rename_keys.push((from.value.clone(), to.value.clone()));
        }
        if let Some(prefix) = &raw.prefix {
            match crate::secret::SecretPath::parse(prefix.value.trim_matches('/')) {
                Ok(_) => selection.prefix = Some(prefix.value.clone()),
                Err(why) => self.error(Diagnostic::at(prefix.span, format!("`prefix`: {why}"))),
            }
        }
        selection
    }

    /// Path or key globs, each checked (one dialect: `*` within a segment, `**` across).
    fn globs(&mut self, patterns: &[Spanned<String>]) -> Vec<crate::select::Glob> {
        let mut out = Vec::new();
        for pattern in patterns {
            match crate::select::Glob::new(&pattern.value) {
                Ok(glob) => out.push(glob),
                Err(why) => self.error(
                    Diagnostic::at(pattern.span, format!("`{}` is not a glob: {why}", pattern.value))
                        .with_label("`*` matches within a path segment, `**` across segments, `?` one character"),
                ),
            }
        }
        out
    }

    fn parallel(&mut self, value: Option<&Spanned<u32>>, default: usize) -> usize {
        match value {
            Some(p) if p.value == 0 => {
                self.error(Diagnostic::at(p.span, "`parallel` must be at least 1"));
                default
            }
            Some(p) => p.value as usize,
            None => default,
        }
    }

    fn unknown<'a>(
        &mut self,
        name: &Spanned<String>,
        what: &str,
        known: impl Iterator<Item = &'a str>,
        is_source: bool,
    ) {
        let known: Vec<&str> = known.collect();
        let label = if is_source {
            format!("`{}` is a source; `inherits` names a target (import the source instead)", name.value)
        } else {
            match suggest(&name.value, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None if known.is_empty() => format!("no {what} is declared"),
                None => format!("known: {}", known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")),
            }
        };
        self.error(Diagnostic::at(name.span, format!("unknown {what} `{}`", name.value)).with_label(label));
    }

    /// A source from its raw form: exactly one store block. `None` (with an error, unless one
    /// inside it was reported already) when it has none or several.
    fn source(&mut self, name: &str, at: Span, body: Span, raw: RawSource, parse_errors: &[Span]) -> Option<Source> {
        let mut stores = raw.stores.into_iter();
        let Some((key, store)) = stores.next() else {
            if !parse_errors.iter().any(|s| s.start >= body.start && s.end <= body.end.max(body.start + 1)) {
                self.error(
                    Diagnostic::at(at, format!("source `{name}` names no store"))
                        .with_label(format!("add one of: {}", StoreConfig::KINDS.join(", "))),
                );
            }
            return None;
        };
        if let Some((other, _)) = stores.next() {
            self.error(
                Diagnostic::at(
                    other.span,
                    format!("source `{name}` has two stores, `{}` and `{}`", key.value, other.value),
                )
                .with_label("a source reads one store: split it into two sources")
                .with_note(key.span, "the first store is here"),
            );
            return None;
        }
        self.check_store(&store, key.span, Role::Source);
        if !store.capabilities().reads_values {
            self.names_only.push((name.to_string(), store.kind()));
        }
        Some(Source { name: name.to_string(), store, allow_empty: raw.allow_empty.unwrap_or(false) })
    }

    /// Reports an import (at `span`) of a source whose store never returns values.
    fn readable(&mut self, source: &str, span: Span) {
        if let Some((_, kind)) = self.names_only.iter().find(|(name, _)| name == source) {
            self.error(
                Diagnostic::at(
                    span,
                    format!(
                        "source `{source}` cannot be imported: the `{kind}` store lists names but never returns values"
                    ),
                )
                .with_label("there is nothing to merge; in a workflow, an `env` source reads the secrets it is handed"),
            );
        }
    }

    fn check_store(&mut self, store: &StoreConfig, span: Span, role: Role) {
        let roles = store.capabilities().roles;
        let (allowed, what) = match role {
            Role::Source => (roles.source, "a source"),
            Role::MergeStore => (roles.merge_store, "the merge store"),
            Role::Target => (roles.target, "a target"),
        };
        if !allowed {
            self.error(Diagnostic::at(span, format!("the `{}` store cannot be {what}", store.kind())));
        }
        store.check(role, &self.defaults, span, self.diagnostics);
    }
}

#[cfg(feature = "aws")]
impl Checker<'_> {
    fn dynamic_targets(
        &mut self,
        raw: BTreeMap<Spanned<String>, Spanned<Lenient<crate::store::aws::organizations::RawDynamicTarget>>>,
        sources: &BTreeMap<&str, SourceId>,
        targets: &BTreeMap<&str, TargetId>,
        broken: &[String],
        defaults: MergeOptions,
    ) -> Vec<crate::config::model::DynamicTarget> {
        let mut out = Vec::new();
        for (name, spec) in raw {
            if !valid_name(&name.value) {
                self.error(
                    Diagnostic::at(name.span, format!("invalid dynamic target name `{}`", name.value))
                        .with_label("names use only letters, digits, `_`, `.` and `-`"),
                );
            }
            if targets.contains_key(name.value.as_str()) || sources.contains_key(name.value.as_str()) {
                self.error(Diagnostic::at(
                    name.span,
                    format!("`{}` is already the name of a source or target", name.value),
                ));
            }
            let span = spec.span;
            let Lenient(Some(spec)) = spec.value else { continue };
            let names = Names { sources, targets, broken };
            let inherits = self.resolve_parent(spec.inherits.as_ref(), &names).map(|(id, _)| id);
            let imports =
                self.resolve_imports(spec.imports.as_ref(), &names).into_iter().map(|(import, _)| import).collect();
            if spec.imports.is_none() && spec.inherits.is_none() {
                self.error(
                    Diagnostic::at(name.span, format!("dynamic targets `{}` have nothing to merge", name.value))
                        .with_label("add `imports` or `inherits`"),
                );
            }
            let organizations = spec.spec(self.diagnostics);
            out.push(crate::config::model::DynamicTarget {
                name: name.value,
                inherits,
                imports,
                merge: merge_options(spec.merge.as_ref().and_then(|m| m.0.as_ref()), defaults),
                span,
                discovery: crate::config::model::Discovery::Organizations(organizations),
            });
        }
        out
    }
}

fn merge_options(raw: Option<&RawMergeOptions>, defaults: MergeOptions) -> MergeOptions {
    raw.map_or(defaults, |raw| raw.over(defaults))
}
