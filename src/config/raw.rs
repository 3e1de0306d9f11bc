//! The config file as written: serde types that mirror the YAML, with spans. Nothing here
//! is checked beyond its type; [`crate::config::validate`] turns it into the
//! [`crate::config::model`].
//!
//! The same types generate `schemas/vss.schema.json` (see [`config_schema`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use schemars::JsonSchema;
use serde::de::{self, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use crate::merge::RawMergeOptions;
use crate::span::Lenient;
use crate::span::Spanned;
use crate::store::{DefaultsBlock, StoreConfig, StoreDefaults};

/// A vss pipeline: sources, an optional merge store, and targets.
///
/// Each store's top-level defaults block (`vault:`, `aws:`) is read too, under the key the
/// store declares.
#[derive(Debug, Default, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "vss pipeline configuration", transform = add_defaults_blocks)]
pub struct RawConfig {
    /// Config format version. Only `1` exists.
    pub version: Option<Spanned<u32>>,
    /// Where MERGE writes one bundle per target. Without it, SYNC computes each target's
    /// desired state straight from the sources.
    pub merge_store: Option<Spanned<Lenient<StoreConfig>>>,
    /// Which phases run and how much runs at once.
    pub pipeline: Option<Lenient<RawPipeline>>,
    /// Where `pipeline`, `ensure` and `status` runs append their audit events.
    pub audit: Option<Spanned<Lenient<crate::audit::AuditConfig>>>,
    /// Where vss remembers the targets it has written, for `vss prune` (default: the merge
    /// store, else beside the audit log file).
    pub registry: Option<Spanned<Lenient<crate::registry::RegistryConfig>>>,
    /// What `vss ensure` may do for others: the repositories a `--repo` may name.
    pub ensure: Option<Lenient<RawEnsure>>,
    /// Default merge semantics of every target (a target's own `merge` overrides them).
    pub merge: Option<Lenient<RawMergeOptions>>,
    /// The default import of every target that declares neither `imports` nor `inherits`.
    pub source: Option<Spanned<Lenient<RawSource>>>,
    /// Named places secrets are read from.
    pub sources: Option<BTreeMap<Spanned<String>, Spanned<Lenient<RawSource>>>>,
    /// Named merge results, each optionally synced to one destination store.
    pub targets: Option<BTreeMap<Spanned<String>, Spanned<Lenient<RawTarget>>>>,
    /// Targets discovered at plan time: one per AWS account of an Organizations OU.
    #[cfg(feature = "aws")]
    pub dynamic_targets:
        Option<BTreeMap<Spanned<String>, Spanned<Lenient<crate::store::aws::organizations::RawDynamicTarget>>>>,
    /// The top-level defaults blocks written, parsed as their stores' `Defaults` types.
    #[schemars(skip)]
    pub defaults: Vec<(&'static str, Arc<dyn DefaultsBlock>)>,
}

#[cfg(not(feature = "aws"))]
const CONFIG_FIELDS: &[&str] =
    &["version", "merge_store", "pipeline", "audit", "registry", "ensure", "merge", "source", "sources", "targets"];
#[cfg(feature = "aws")]
const CONFIG_FIELDS: &[&str] = &[
    "version",
    "merge_store",
    "pipeline",
    "audit",
    "registry",
    "ensure",
    "merge",
    "source",
    "sources",
    "targets",
    "dynamic_targets",
];

/// The keys the top level accepts: its own fields, then each store's defaults block.
static CONFIG_KEYS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [CONFIG_FIELDS, StoreDefaults::keys().as_slice()].concat());

impl<'de> Deserialize<'de> for RawConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ConfigVisitor;
        impl<'de> Visitor<'de> for ConfigVisitor {
            type Value = RawConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a vss config mapping")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawConfig, A::Error> {
                let mut config = RawConfig::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "version" => config.version = Some(map.next_value()?),
                        "merge_store" => config.merge_store = Some(map.next_value()?),
                        "pipeline" => config.pipeline = Some(map.next_value()?),
                        "audit" => config.audit = Some(map.next_value()?),
                        "registry" => config.registry = Some(map.next_value()?),
                        "ensure" => config.ensure = Some(map.next_value()?),
                        "merge" => config.merge = Some(map.next_value()?),
                        "source" => config.source = Some(map.next_value()?),
                        "sources" => config.sources = Some(map.next_value()?),
                        "targets" => config.targets = Some(map.next_value()?),
                        #[cfg(feature = "aws")]
                        "dynamic_targets" => config.dynamic_targets = Some(map.next_value()?),
                        other => match CONFIG_KEYS.iter().find(|k| **k == other) {
                            Some(key) => {
                                if let Some(block) = map.next_value_seed(DefaultsSeed(key))? {
                                    config.defaults.push((key, block));
                                }
                            }
                            None => return Err(de::Error::unknown_field(other, &CONFIG_KEYS)),
                        },
                    }
                }
                Ok(config)
            }
        }
        deserializer.deserialize_struct("RawConfig", &CONFIG_KEYS, ConfigVisitor)
    }
}

/// Deserializes a top-level defaults block as the type its stores declare.
struct DefaultsSeed(&'static str);

impl<'de> de::DeserializeSeed<'de> for DefaultsSeed {
    type Value = Option<Arc<dyn DefaultsBlock>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        StoreDefaults::parse_block(self.0, deserializer)
    }
}

/// Adds one property per store defaults block to the config's schema.
fn add_defaults_blocks(schema: &mut schemars::Schema) {
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let blocks = StoreDefaults::schemas(&mut generator);
    let definitions = generator.take_definitions(true);
    if let Some(properties) = schema.get_mut("properties").and_then(|p| p.as_object_mut()) {
        for (key, block) in blocks {
            properties.insert(key.to_string(), serde_json::json!({"anyOf": [block.to_value(), {"type": "null"}]}));
        }
    }
    if let Some(defs) = schema.ensure_object().entry("$defs").or_insert_with(|| serde_json::json!({})).as_object_mut() {
        for (name, definition) in definitions {
            defs.entry(name).or_insert(definition);
        }
    }
}

/// `ensure:` — what `vss ensure` may do when another repository asks for secrets.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ensure")]
pub struct RawEnsure {
    /// The repositories `vss ensure --repo` may write to (`owner/name`, or `owner/*` for
    /// every repository of an owner). Without it, `--repo` is refused.
    #[serde(default)]
    pub repositories: Vec<Spanned<String>>,
}

/// `pipeline:` — the two phases.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Pipeline")]
pub struct RawPipeline {
    /// The MERGE phase.
    pub merge: Option<RawMergePhase>,
    /// The SYNC phase.
    pub sync: Option<RawSyncPhase>,
    /// How long store calls may take.
    pub timeouts: Option<Spanned<Lenient<RawTimeouts>>>,
}

/// `pipeline.timeouts:` — in seconds.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Timeouts")]
pub struct RawTimeouts {
    /// Connecting to a store's server (default 5).
    pub connect: Option<u32>,
    /// One request's answer, each attempt (default 30; failed attempts are retried up to 5
    /// times with backoff).
    pub request: Option<u32>,
}

/// `pipeline.merge:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MergePhase")]
pub struct RawMergePhase {
    /// Whether MERGE runs (default `true`; it needs a `merge_store`).
    pub enabled: Option<bool>,
    /// How many store calls MERGE makes at once (default 4).
    pub parallel: Option<Spanned<u32>>,
}

/// `pipeline.sync:`
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SyncPhase")]
pub struct RawSyncPhase {
    /// Whether SYNC runs (default `true`).
    pub enabled: Option<bool>,
    /// How many store calls SYNC makes at once (default 8).
    pub parallel: Option<Spanned<u32>>,
    /// Delete secrets that vss created in a target and that are no longer desired
    /// (default `false`). Secrets without vss's ownership marker are never deleted.
    pub delete_orphans: Option<bool>,
    /// The most deletions one run may make in one target, unless `--allow-mass-delete`
    /// (default: 10 secrets and 25 % of the secrets vss owns there). A target's own
    /// `max_deletes` overrides it.
    pub max_deletes: Option<Spanned<Lenient<MaxDeletes>>>,
}

/// `max_deletes:` — a run may delete at most `count` secrets of a target, and at most
/// `percent` of the secrets vss owns there; the one not written keeps its default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MaxDeletes {
    /// Most secrets deleted in one run (default 10).
    pub count: Option<u32>,
    /// Most deleted in one run, as a percentage of the secrets vss owns in the target
    /// (default 25; 100 = no limit by share).
    pub percent: Option<u32>,
}

/// One source: one store block, and whether it may hold nothing.
#[derive(Debug, Default)]
pub struct RawSource {
    /// Every store block written (the key's span, the store); anything but exactly one is an
    /// error reported by validation.
    pub stores: Vec<(Spanned<String>, StoreConfig)>,
    /// A source that does not exist or holds no secret is an error unless this is true
    /// (an empty source with `delete_orphans` would delete a target's secrets).
    pub allow_empty: Option<bool>,
}

/// The keys a source accepts: `allow_empty`, then one per store.
static SOURCE_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| [&["allow_empty"][..], StoreConfig::KINDS].concat());

impl<'de> Deserialize<'de> for RawSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;
        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = RawSource;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a source mapping with one store")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawSource, A::Error> {
                let mut source = RawSource::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "allow_empty" => source.allow_empty = Some(map.next_value()?),
                        other => match StoreConfig::KINDS.iter().find(|k| **k == other) {
                            Some(kind) => {
                                let store = map.next_value_seed(StoreSeed(kind))?;
                                source.stores.push((key, store));
                            }
                            None => return Err(de::Error::unknown_field(other, &SOURCE_KEYS)),
                        },
                    }
                }
                Ok(source)
            }
        }
        deserializer.deserialize_struct("RawSource", &SOURCE_KEYS, SourceVisitor)
    }
}

impl JsonSchema for RawSource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Source".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut properties = store_properties(generator);
        properties.insert(
            "allow_empty".into(),
            serde_json::json!({
                "description": "Allow this source to be missing or to hold no secret (default false: that fails its targets, since syncing nothing could delete everything).",
                "type": "boolean"
            }),
        );
        schemars::json_schema!({
            "description": "A source: one store block (`file`, `vault`, `aws`…) and `allow_empty`.",
            "type": "object",
            "properties": properties,
            "additionalProperties": false,
            "minProperties": 1
        })
    }
}

/// One optional property per store kind, taken from the store enum's own schema.
fn store_properties(generator: &mut schemars::SchemaGenerator) -> serde_json::Map<String, serde_json::Value> {
    let mut properties = serde_json::Map::new();
    let stores = StoreConfig::json_schema(generator).to_value();
    for variant in stores.get("oneOf").and_then(|v| v.as_array()).into_iter().flatten() {
        if let Some(props) = variant.get("properties").and_then(|p| p.as_object()) {
            for (kind, schema) in props {
                let mut schema = schema.clone();
                if let (Some(object), Some(description)) = (schema.as_object_mut(), variant.get("description")) {
                    object.insert("description".into(), description.clone());
                }
                properties.insert(kind.clone(), schema);
            }
        }
    }
    properties
}

/// One target: what it merges, and at most one destination store.
#[derive(Debug, Default)]
pub struct RawTarget {
    /// Sources or targets merged in order, later wins: each a name, or a block that
    /// selects and renames what it takes.
    pub imports: Option<Spanned<Vec<Spanned<RawImport>>>>,
    /// The target whose merged result is this target's starting point: a name, or a
    /// block that selects what it takes.
    pub inherits: Option<Spanned<RawImport>>,
    /// Paths (globs) this target accepts at all, of its final desired state.
    pub include: Option<Vec<Spanned<String>>>,
    /// Paths (globs) this target never takes.
    pub exclude: Option<Vec<Spanned<String>>>,
    /// Whether owned secrets no longer desired are deleted here (overrides
    /// `pipeline.sync.delete_orphans`).
    pub delete_orphans: Option<Spanned<bool>>,
    /// This target's merge semantics.
    pub merge: Option<Lenient<RawMergeOptions>>,
    /// Every destination block written (the key's span, the store); more than one is an
    /// error reported by validation.
    pub destinations: Vec<(Spanned<String>, StoreConfig)>,
    /// Target-level shorthands of a destination store (`account_id: "…"`), key and value.
    pub shorthands: Vec<(Spanned<String>, Spanned<String>)>,
    /// This target's deletion limit (overrides `pipeline.sync.max_deletes`).
    pub max_deletes: Option<Spanned<Lenient<MaxDeletes>>>,
    /// Paths (or store names) vss never overwrites or deletes in this target.
    pub protect: Option<Spanned<Vec<Spanned<String>>>>,
    /// Whether an empty desired state may delete every secret vss owns here.
    pub allow_emptying: Option<bool>,
}

const TARGET_FIELDS: &[&str] = &[
    "imports",
    "inherits",
    "include",
    "exclude",
    "delete_orphans",
    "merge",
    "max_deletes",
    "protect",
    "allow_emptying",
];

/// The keys a target accepts: its own fields, each store's shorthands, then one per store.
static TARGET_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let shorthands: Vec<&'static str> = StoreConfig::shorthands().into_iter().map(|(key, _)| key).collect();
    [TARGET_FIELDS, shorthands.as_slice(), StoreConfig::KINDS].concat()
});

impl<'de> Deserialize<'de> for RawTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetVisitor;
        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = RawTarget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a target mapping")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<RawTarget, A::Error> {
                let mut target = RawTarget::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "imports" => target.imports = Some(map.next_value()?),
                        "inherits" => target.inherits = Some(map.next_value()?),
                        "include" => target.include = Some(map.next_value()?),
                        "exclude" => target.exclude = Some(map.next_value()?),
                        "delete_orphans" => target.delete_orphans = Some(map.next_value()?),
                        "merge" => target.merge = Some(map.next_value()?),
                        "max_deletes" => target.max_deletes = Some(map.next_value()?),
                        "protect" => target.protect = Some(map.next_value()?),
                        "allow_emptying" => target.allow_emptying = Some(map.next_value()?),
                        other if StoreConfig::shorthands().iter().any(|(key, _)| *key == other) => {
                            let value = map.next_value()?;
                            target.shorthands.push((key, value));
                        }
                        other => match StoreConfig::KINDS.iter().find(|k| **k == other) {
                            Some(kind) => {
                                let store = map.next_value_seed(StoreSeed(kind))?;
                                target.destinations.push((key, store));
                            }
                            None => return Err(de::Error::unknown_field(other, &TARGET_KEYS)),
                        },
                    }
                }
                Ok(target)
            }
        }
        deserializer.deserialize_struct("RawTarget", &TARGET_KEYS, TargetVisitor)
    }
}

/// Deserializes the value under a store key (`file: {...}`) as the [`StoreConfig`]
/// variant of that kind, through the enum itself, so the registry stays in one place.
struct StoreSeed(&'static str);

impl<'de> de::DeserializeSeed<'de> for StoreSeed {
    type Value = StoreConfig;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<StoreConfig, D::Error> {
        struct OneEntry<D> {
            key: Option<&'static str>,
            value: Option<D>,
        }
        impl<'de, D: Deserializer<'de>> de::MapAccess<'de> for OneEntry<D> {
            type Error = D::Error;
            fn next_key_seed<K: de::DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, D::Error> {
                self.key.take().map(|k| seed.deserialize(k.into_deserializer())).transpose()
            }
            fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, D::Error> {
                seed.deserialize(self.value.take().ok_or_else(|| de::Error::custom("store value read twice"))?)
            }
        }
        StoreConfig::deserialize(de::value::MapAccessDeserializer::new(OneEntry {
            key: Some(self.0),
            value: Some(deserializer),
        }))
    }
}

impl JsonSchema for RawTarget {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Target".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let mut properties = serde_json::Map::new();
        let import = generator.subschema_for::<RawImport>().to_value();
        properties.insert(
            "imports".into(),
            serde_json::json!({
                "description": "Sources or targets merged in order, later wins: each a name, or a block (`source:` or `target:`) that selects and renames what it takes.",
                "type": "array", "items": import
            }),
        );
        properties.insert(
            "inherits".into(),
            serde_json::json!({
                "description": "The target whose merged result is this target's starting point: its name, or a block (`target:`) that selects what it takes.",
                "anyOf": [import]
            }),
        );
        properties.insert(
            "include".into(),
            serde_json::json!({
                "description": "Path globs this target accepts at all, of its final desired state (default: every path).",
                "type": "array", "items": {"type": "string"}
            }),
        );
        properties.insert(
            "exclude".into(),
            serde_json::json!({
                "description": "Path globs this target never takes, of its final desired state.",
                "type": "array", "items": {"type": "string"}
            }),
        );
        properties.insert(
            "delete_orphans".into(),
            serde_json::json!({
                "description": "Delete secrets vss owns here that are no longer desired (overrides `pipeline.sync.delete_orphans`).",
                "type": "boolean"
            }),
        );
        let mut merge = generator.subschema_for::<RawMergeOptions>().to_value();
        if let Some(object) = merge.as_object_mut() {
            object.insert(
                "description".into(),
                "This target's merge semantics (overrides the top-level `merge`).".into(),
            );
        }
        properties.insert("merge".into(), merge);
        let mut max_deletes = generator.subschema_for::<MaxDeletes>().to_value();
        if let Some(object) = max_deletes.as_object_mut() {
            object.insert(
                "description".into(),
                "This target's deletion limit (overrides `pipeline.sync.max_deletes`).".into(),
            );
        }
        properties.insert("max_deletes".into(), max_deletes);
        properties.insert(
            "protect".into(),
            serde_json::json!({
                "description": "Globs of paths (or, for stores of flat names, names) that vss never overwrites or deletes in this target (`*` within a segment, `**` across segments).",
                "type": "array", "items": {"type": "string"}
            }),
        );
        properties.insert(
            "allow_emptying".into(),
            serde_json::json!({
                "description": "Let an empty desired state delete every secret vss owns in this target (default false: refused).",
                "type": "boolean"
            }),
        );
        for (key, store) in StoreConfig::shorthands() {
            properties.insert(
                key.into(),
                serde_json::json!({
                    "description": format!("Shorthand for `{store}: {{ {key}: ... }}` as the destination."),
                    "type": "string"
                }),
            );
        }
        properties.extend(store_properties(generator));
        schemars::json_schema!({
            "description": "A target: what it merges (`imports`, `inherits`) and at most one destination store. Without a destination it is a layer that other targets inherit.",
            "type": "object",
            "properties": properties,
            "additionalProperties": false
        })
    }
}

/// One import (or `inherits`): a name, or a block naming it with what to take and how to
/// rename it ([`crate::select`]).
#[derive(Clone, Debug)]
pub enum RawImport {
    /// A source's or a target's name.
    Name(String),
    /// A block.
    Block(Box<RawSelection>),
}

impl RawImport {
    /// The name it imports, and where that name is written (the block's `source:` or
    /// `target:`), when it names one.
    pub fn name(&self, at: crate::span::Span) -> Option<Spanned<String>> {
        match self {
            RawImport::Name(name) => Some(Spanned { span: at, value: name.clone() }),
            RawImport::Block(block) => block.source.clone().or_else(|| block.target.clone()),
        }
    }
}

impl<'de> Deserialize<'de> for RawImport {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ImportVisitor;
        impl<'de> Visitor<'de> for ImportVisitor {
            type Value = RawImport;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a source or target name, or a block with `source:` (or `target:`) and what to take")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<RawImport, E> {
                Ok(RawImport::Name(name.to_string()))
            }
            fn visit_string<E: de::Error>(self, name: String) -> Result<RawImport, E> {
                Ok(RawImport::Name(name))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawImport, A::Error> {
                RawSelection::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|block| RawImport::Block(Box::new(block)))
            }
        }
        deserializer.deserialize_any(ImportVisitor)
    }
}

impl JsonSchema for RawImport {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Import".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let block = generator.subschema_for::<RawSelection>().to_value();
        schemars::json_schema!({
            "description": "A source or target name, or a block that names one (`source:` or `target:`) with what to take and how to rename it.",
            "anyOf": [{"type": "string"}, block]
        })
    }
}

/// An import block: what it names, what it takes, how it renames it.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSelection {
    /// The source (or, in `imports`, a target) to import.
    pub source: Option<Spanned<String>>,
    /// The target to import or inherit.
    pub target: Option<Spanned<String>>,
    /// Path globs to take (default: every path).
    pub include: Option<Vec<Spanned<String>>>,
    /// Path globs never to take.
    pub exclude: Option<Vec<Spanned<String>>>,
    /// Globs of the top-level keys of object secrets to take, or never to take.
    pub keys: Option<RawKeys>,
    /// Mount every path under this one (`third-party/`).
    pub prefix: Option<Spanned<String>>,
    /// Path renames, the first that matches wins: an exact path, or a glob whose
    /// wildcards the new path refers to as `{1}`, `{2}`… (`"payments/*": "pay/{1}"`).
    pub rename: Option<Pairs>,
    /// Top-level key renames of object secrets (`secret_key: STRIPE_SECRET_KEY`).
    pub rename_keys: Option<Pairs>,
}

/// `keys:` of an import block.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    /// Key globs to take (default: every key).
    pub include: Option<Vec<Spanned<String>>>,
    /// Key globs never to take.
    pub exclude: Option<Vec<Spanned<String>>>,
}

/// A mapping of strings to strings, in the order written.
#[derive(Clone, Debug, Default)]
pub struct Pairs(pub Vec<(Spanned<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to new names")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(entry) = map.next_entry::<Spanned<String>, Spanned<String>>()? {
                    pairs.push(entry);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}

impl JsonSchema for Pairs {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Renames".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Names and their new names, in order.",
            "type": "object",
            "additionalProperties": {"type": "string"}
        })
    }
}

/// The JSON Schema of the config file, as committed in `schemas/vss.schema.json`.
pub fn config_schema() -> String {
    let schema = schemars::schema_for!(RawConfig);
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}
