//! Flattening secrets into flat names and strings, for the stores whose values are one
//! string per name (GitHub secrets, Kubernetes keys, environment variables) and for the
//! commands that hand secrets to a process. Pure, and property-tested: every key of every
//! secret becomes exactly one name, and two that would get the same name are an error
//! naming both, never a silent overwrite.
//!
//! | naming | object secret `app/db` = `{"password": "x"}` | scalar secret `app/token` = `"t"` |
//! |---|---|---|
//! | `key` | `password` | `token` (the last path segment) |
//! | `path_key` | `app_db_password` | `app_token` |
//! | `path` | `app_db` = the object's JSON text | `app_token` |
//!
//! Characters outside `[A-Za-z0-9_]` (and the store's own extra characters: `-` and `.`
//! for Kubernetes keys) become `_`; then `prefix` is prepended and, with
//! `uppercase`, the whole name is upper-cased (`APP_DB_PASSWORD`). A string value is kept as
//! it is; any other JSON value becomes its canonical JSON text.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::secret::{SecretMap, SecretPath, canonical_json};

/// How a secret's names are made (`names:` of the stores that hold flat names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Naming {
    /// Each top-level key is a name; a scalar secret is named by its last path segment
    /// (the default).
    #[default]
    Key,
    /// The path and the key, joined: `app_db_password`; a scalar secret by its path.
    PathKey,
    /// One name per secret, from its path; an object becomes its JSON text.
    Path,
}

/// The options of one flattening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlattenOptions {
    /// How names are made.
    pub naming: Naming,
    /// Prepended to every name.
    pub prefix: String,
    /// Upper-case every name.
    pub uppercase: bool,
    /// Characters kept in names besides `[A-Za-z0-9_]` (`-.` for Kubernetes keys); any
    /// other becomes `_`.
    pub keep: &'static str,
}

/// Where a flat entry comes from: a secret, and the key within it (none for a whole
/// secret).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// The secret.
    pub path: SecretPath,
    /// The top-level key, when the entry is one key of an object.
    pub key: Option<String>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "`{}` key `{key}`", self.path),
            None => write!(f, "`{}`", self.path),
        }
    }
}

/// One flat entry: its string value and where it came from. `Debug` hides the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Flat {
    /// The value, as the store will hold it. Never print it.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
}

impl fmt::Debug for Flat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flat").field("value", &"<redacted>").field("origin", &self.origin).finish()
    }
}

/// Why a set of secrets cannot be flattened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlattenError {
    /// Two entries would get the same name.
    Collision {
        /// The name.
        name: String,
        /// The entry that got it first (in path, then key order).
        first: Origin,
        /// The entry that would overwrite it.
        second: Origin,
    },
    /// An entry would get an empty name (an empty key, with no prefix).
    Empty {
        /// The entry.
        origin: Origin,
    },
}

impl fmt::Display for FlattenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlattenError::Collision { name, first, second } => {
                write!(f, "{first} and {second} would both be named `{name}`")
            }
            FlattenError::Empty { origin } => write!(f, "{origin} would get an empty name"),
        }
    }
}

/// Flattens `secrets` into names and strings, or reports every collision and empty name.
pub fn flatten(secrets: &SecretMap, options: &FlattenOptions) -> Result<BTreeMap<String, Flat>, Vec<FlattenError>> {
    let mut out: BTreeMap<String, Flat> = BTreeMap::new();
    let mut errors = Vec::new();
    for (path, value) in secrets {
        let value = value.expose();
        let entries: Vec<(String, Option<String>, &Value)> = match (&value, options.naming) {
            (Value::Object(map), Naming::Key) => {
                map.iter().map(|(k, v)| (sanitize(k, options.keep), Some(k.clone()), v)).collect()
            }
            (Value::Object(map), Naming::PathKey) => map
                .iter()
                .map(|(k, v)| {
                    (
                        format!("{}_{}", sanitize(path.as_str(), options.keep), sanitize(k, options.keep)),
                        Some(k.clone()),
                        v,
                    )
                })
                .collect(),
            (_, Naming::Key) => {
                let last = path.as_str().rsplit('/').next().unwrap_or(path.as_str());
                vec![(sanitize(last, options.keep), None, &value)]
            }
            (_, Naming::PathKey | Naming::Path) => vec![(sanitize(path.as_str(), options.keep), None, &value)],
        };
        for (name, key, item) in entries {
            let origin = Origin { path: path.clone(), key };
            let mut name = format!("{}{name}", options.prefix);
            if options.uppercase {
                name = name.to_uppercase();
            }
            if name.is_empty() {
                errors.push(FlattenError::Empty { origin });
                continue;
            }
            let text = match item {
                Value::String(text) => text.clone(),
                other => {
                    let mut text = String::new();
                    canonical_json(other, &mut text);
                    text
                }
            };
            match out.get(&name) {
                Some(existing) => errors.push(FlattenError::Collision {
                    name: name.clone(),
                    first: existing.origin.clone(),
                    second: origin,
                }),
                None => {
                    out.insert(name, Flat { value: text, origin });
                }
            }
        }
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A name component: characters outside `[A-Za-z0-9_]` and `keep` become `_`.
fn sanitize(text: &str, keep: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || keep.contains(c) { c } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretValue;
    use serde_json::json;

    fn secrets(entries: &[(&str, Value)]) -> SecretMap {
        entries.iter().map(|(p, v)| (SecretPath::parse(p).unwrap(), SecretValue::new(v.clone()))).collect()
    }

    fn names(map: &BTreeMap<String, Flat>) -> Vec<(&str, &str)> {
        map.iter().map(|(k, v)| (k.as_str(), v.value.as_str())).collect()
    }

    #[test]
    fn each_naming_as_documented() {
        let s = secrets(&[("app/db", json!({"password": "x", "port": 5432})), ("app/token", json!("t"))]);
        let opts =
            |naming, prefix: &str, uppercase| FlattenOptions { naming, prefix: prefix.into(), uppercase, keep: "" };
        let key = flatten(&s, &opts(Naming::Key, "", false)).unwrap();
        assert_eq!(names(&key), [("password", "x"), ("port", "5432"), ("token", "t")]);
        let path_key = flatten(&s, &opts(Naming::PathKey, "", true)).unwrap();
        assert_eq!(names(&path_key), [("APP_DB_PASSWORD", "x"), ("APP_DB_PORT", "5432"), ("APP_TOKEN", "t")]);
        let path = flatten(&s, &opts(Naming::Path, "ci_", false)).unwrap();
        assert_eq!(names(&path), [("ci_app_db", r#"{"password":"x","port":5432}"#), ("ci_app_token", "t")]);
        assert_eq!(path["ci_app_db"].origin.to_string(), "`app/db`");
    }

    #[test]
    fn collisions_name_both_origins() {
        let s = secrets(&[("a", json!({"db-url": 1})), ("b", json!({"db_url": 2}))]);
        let opts = FlattenOptions { naming: Naming::Key, prefix: String::new(), uppercase: false, keep: "" };
        let errors = flatten(&s, &opts).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].to_string(), "`a` key `db-url` and `b` key `db_url` would both be named `db_url`");
        let empty = flatten(&secrets(&[("a", json!({"": 1}))]), &opts).unwrap_err();
        assert_eq!(empty[0].to_string(), "`a` key `` would get an empty name");
    }

    #[test]
    fn debug_hides_values() {
        let s = secrets(&[("a", json!({"k": "hunter2"}))]);
        let flat =
            flatten(&s, &FlattenOptions { naming: Naming::Key, prefix: String::new(), uppercase: false, keep: "" });
        assert!(!format!("{flat:?}").contains("hunter2"));
    }
}
