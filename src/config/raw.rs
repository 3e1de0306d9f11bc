//! The config file as written: serde types that mirror the YAML, with spans. Nothing here
//! is checked beyond its type; [`crate::config::validate`] turns it into the
//! [`crate::config::model`].
//!
//! The same types generate `schemas/vss.schema.json` (see [`config_schema`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::de::{self, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use crate::config::de::{Lenient, Spanned};
use crate::merge::{ListMode, NullMode};
use crate::store::StoreConfig;

/// A vss pipeline: sources, an optional merge store, and targets.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "vss pipeline configuration")]
pub struct RawConfig {
    /// Config format version. Only `1` exists.
    pub version: Option<Spanned<u32>>,
    /// The default connection of every `vault` store (each may override `address`,
    /// `namespace` and `auth`).
    #[cfg(feature = "vault")]
    pub vault: Option<Lenient<crate::store::vault::VaultDefaults>>,
    /// Defaults of every AWS store: region, endpoint, the role assumed per account.
    #[cfg(feature = "aws")]
    pub aws: Option<Lenient<crate::store::aws::AwsDefaults>>,
    /// Where MERGE writes one bundle per target. Without it, SYNC computes each target's
    /// desired state straight from the sources.
    pub merge_store: Option<Spanned<Lenient<StoreConfig>>>,
    /// Which phases run and how much runs at once.
    pub pipeline: Option<Lenient<RawPipeline>>,
    /// Default merge semantics of every target (a target's own `merge` overrides them).
    pub merge: Option<Lenient<RawMergeOptions>>,
    /// The default import of every target that declares neither `imports` nor `inherits`.
    pub source: Option<Spanned<Lenient<StoreConfig>>>,
    /// Named places secrets are read from.
    pub sources: Option<BTreeMap<Spanned<String>, Lenient<StoreConfig>>>,
    /// Named merge results, each optionally synced to one destination store.
    pub targets: Option<BTreeMap<Spanned<String>, Spanned<Lenient<RawTarget>>>>,
    /// Targets discovered at plan time: one per AWS account of an Organizations OU.
    #[cfg(feature = "aws")]
    pub dynamic_targets: Option<BTreeMap<Spanned<String>, Spanned<Lenient<RawDynamicTarget>>>>,
}

/// `dynamic_targets.NAME:` — the template of the targets discovered for each account.
#[cfg(feature = "aws")]
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DynamicTarget")]
pub struct RawDynamicTarget {
    /// Sources or targets every discovered target merges, in order.
    pub imports: Option<Spanned<Vec<Spanned<String>>>>,
    /// The target every discovered target starts from.
    pub inherits: Option<Spanned<String>>,
    /// Merge semantics.
    pub merge: Option<Lenient<RawMergeOptions>>,
    /// Where the accounts come from.
    pub discovery: crate::discovery::Discovery,
    /// Account ids to leave out.
    pub exclude: Option<Vec<String>>,
    /// Secret name prefix in each account.
    pub prefix: Option<String>,
    /// Region in each account (default: the top-level `aws.region`).
    pub region: Option<String>,
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
}

/// `merge:` — deep-merge semantics.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MergeOptions")]
pub struct RawMergeOptions {
    /// How two lists merge: `append` (default), `replace` or `union`.
    pub lists: Option<ListMode>,
    /// What a `null` in a later layer means: `keep` (default, null is a value) or `delete`
    /// (removes the key, JSON Merge Patch style).
    pub null: Option<NullMode>,
}

/// One target: what it merges, and at most one destination store.
#[derive(Debug, Default)]
pub struct RawTarget {
    /// Sources or targets merged in order, later wins.
    pub imports: Option<Spanned<Vec<Spanned<String>>>>,
    /// The target whose merged result is this target's starting point.
    pub inherits: Option<Spanned<String>>,
    /// This target's merge semantics.
    pub merge: Option<Lenient<RawMergeOptions>>,
    /// Every destination block written (the key's span, the store); more than one is an
    /// error reported by validation.
    pub destinations: Vec<(Spanned<String>, StoreConfig)>,
    /// Shorthand for `aws: { account_id: ... }`.
    pub account_id: Option<Spanned<String>>,
}

#[cfg(not(feature = "aws"))]
const TARGET_FIELDS: &[&str] = &["imports", "inherits", "merge"];
#[cfg(feature = "aws")]
const TARGET_FIELDS: &[&str] = &["imports", "inherits", "merge", "account_id"];

/// The keys a target accepts: its own fields, then one per store kind.
static TARGET_KEYS: LazyLock<Vec<&'static str>> = LazyLock::new(|| [TARGET_FIELDS, StoreConfig::KINDS].concat());

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
                        "merge" => target.merge = Some(map.next_value()?),
                        "account_id" => target.account_id = Some(map.next_value()?),
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
        properties.insert(
            "imports".into(),
            serde_json::json!({
                "description": "Sources or targets merged in order, later wins.",
                "type": "array", "items": {"type": "string"}
            }),
        );
        properties.insert(
            "inherits".into(),
            serde_json::json!({
                "description": "The target whose merged result is this target's starting point.",
                "type": "string"
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
        if TARGET_FIELDS.contains(&"account_id") {
            properties.insert(
                "account_id".into(),
                serde_json::json!({
                    "description": "Shorthand for `aws: { account_id: ... }`: sync to Secrets Manager in this account.",
                    "type": "string"
                }),
            );
        }
        // One optional property per store kind, taken from the store enum's own schema.
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
        schemars::json_schema!({
            "description": "A target: what it merges (`imports`, `inherits`) and at most one destination store. Without a destination it is a layer that other targets inherit.",
            "type": "object",
            "properties": properties,
            "additionalProperties": false
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
