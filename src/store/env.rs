//! The `env` source: secrets handed to vss through its environment, as a GitHub Actions
//! workflow hands a step its secrets. This is how Actions secrets become a source (GitHub
//! never returns secret values through its API):
//!
//! - `env: { json: SECRETS }` parses the variable `SECRETS`, set in the workflow to
//!   `${{ toJSON(secrets) }}`: a JSON object of names to strings;
//! - `env: { prefix: APP_ }` reads every variable whose name starts with `APP_`
//!   (`strip_prefix: true` drops the prefix from the secret's name).
//!
//! Each name becomes one secret path whose value is the string. `github_token` (the
//! workflow's own per-run token, which `toJSON(secrets)` includes) is never read.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::diagnostic::Diagnostic;
use crate::secret::{LiveSecret, SecretPath, SecretValue};
use crate::span::{Span, Spanned};
use crate::store::stats::Call;
use crate::store::{Bundle, Capabilities, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// `env:` options: exactly one of `json` and `prefix`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// A variable holding a JSON object of names to strings (`${{ toJSON(secrets) }}`).
    pub json: Option<Spanned<String>>,
    /// Every variable whose name starts with this prefix.
    pub prefix: Option<Spanned<String>>,
    /// With `prefix`: drop it from the secrets' names (default false).
    pub strip_prefix: Option<bool>,
}

/// The `env` source at one location: the secrets read from the environment when opened.
pub struct EnvStore {
    secrets: BTreeMap<SecretPath, SecretValue>,
    calls: std::sync::Arc<crate::store::stats::CallCounter>,
}

impl std::fmt::Debug for EnvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvStore").field("secrets", &self.secrets.len()).finish()
    }
}

/// The workflow token `toJSON(secrets)` includes: never a secret to copy.
const WORKFLOW_TOKEN: &str = "github_token";

/// The secrets `config` names, from `env` (the process environment, in a run).
fn read(config: &EnvConfig, env: &dyn Fn(&str) -> Option<String>, vars: &[(String, String)]) -> Result<BTreeMap<SecretPath, SecretValue>, StoreError> {
    let mut out = BTreeMap::new();
    let mut add = |name: &str, value: String| -> Result<(), StoreError> {
        if name.eq_ignore_ascii_case(WORKFLOW_TOKEN) {
            return Ok(());
        }
        let path = SecretPath::parse(name).map_err(|why| StoreError::invalid(format!("cannot name a secret `{name}`: {why}")))?;
        out.insert(path, SecretValue::new(Value::String(value)));
        Ok(())
    };
    match (&config.json, &config.prefix) {
        (Some(var), _) => {
            let text = env(&var.value).ok_or_else(|| {
                StoreError::not_found(format!("the environment variable {} is not set", var.value))
                    .with_hint(format!("set it in the workflow: `{}: ${{{{ toJSON(secrets) }}}}`", var.value))
            })?;
            let invalid = || StoreError::invalid(format!("the environment variable {} is not a JSON object of strings", var.value));
            let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) else {
                return Err(invalid());
            };
            for (name, value) in map {
                let Value::String(value) = value else { return Err(invalid()) };
                add(&name, value)?;
            }
        }
        (None, Some(prefix)) => {
            for (name, value) in vars.iter().filter(|(n, _)| n.starts_with(&prefix.value)) {
                let name = if config.strip_prefix == Some(true) { &name[prefix.value.len()..] } else { name.as_str() };
                add(name, value.clone())?;
            }
        }
        (None, None) => return Err(StoreError::invalid("an `env` source needs `json:` or `prefix:`")),
    }
    Ok(out)
}

impl StoreKind for EnvStore {
    const NAME: &'static str = "env";
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: true, merge_store: false, target: false },
        reads_values: true,
        value_shape: ValueShape::FlatStrings,
        min_value_bytes: 0,
        max_value_bytes: None,
        exact_numbers: true,
        ownership: false,
        atomic_commit: false,
    };

    type Config = EnvConfig;
    type Defaults = ();
    type Session = ();

    fn describe(config: &EnvConfig) -> String {
        match (&config.json, &config.prefix) {
            (Some(var), _) => format!("env {} (JSON)", var.value),
            (None, Some(prefix)) => format!("env {}*", prefix.value),
            (None, None) => "env".into(),
        }
    }

    fn check(config: &EnvConfig, _: Role, _: &(), span: Span, out: &mut Vec<Diagnostic>) {
        match (&config.json, &config.prefix) {
            (Some(_), Some(prefix)) => {
                out.push(Diagnostic::at(prefix.span, "`json` and `prefix` exclude each other"));
            }
            (None, None) => out.push(
                Diagnostic::at(span, "an `env` source needs `json: VARIABLE` or `prefix: PREFIX`")
                    .with_label("`json` reads `${{ toJSON(secrets) }}`; `prefix` reads matching variables"),
            ),
            (Some(var), None) if var.value.is_empty() => out.push(Diagnostic::at(var.span, "`json` is empty")),
            (None, Some(prefix)) if prefix.value.is_empty() => {
                out.push(Diagnostic::at(prefix.span, "`prefix` is empty").with_label("it would read every variable"))
            }
            _ => {}
        }
        if config.strip_prefix.is_some() && config.prefix.is_none() {
            out.push(Diagnostic::at(span, "`strip_prefix` goes with `prefix`"));
        }
    }

    async fn open(config: &EnvConfig, ctx: &OpenContext<'_>, _: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        let env = |name: &str| std::env::var(name).ok();
        let calls = ctx.calls::<Self>();
        calls.count(Call::Read);
        Ok(EnvStore { secrets: read(config, &env, &vars)?, calls })
    }
}

impl Store for EnvStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        self.calls.count(Call::List);
        Ok(self.secrets.keys().cloned().collect())
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        Ok(self.secrets.get(path).map(|value| LiveSecret::with_value(value.clone(), None)))
    }

    async fn write(&self, _: &SecretPath, _: &SecretValue, _: &str) -> Result<(), StoreError> {
        Err(StoreError::invalid("an `env` source is read only"))
    }

    async fn delete(&self, _: &SecretPath) -> Result<(), StoreError> {
        Err(StoreError::invalid("an `env` source is read only"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> EnvConfig {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn json_reads_an_object_of_strings_without_the_workflow_token() {
        let env = |name: &str| (name == "SECRETS").then(|| r#"{"github_token": "t", "DB_PASSWORD": "p", "API": "a b"}"#.to_string());
        let secrets = read(&config(r#"{"json": "SECRETS"}"#), &env, &[]).unwrap();
        let names: Vec<&str> = secrets.keys().map(SecretPath::as_str).collect();
        assert_eq!(names, ["API", "DB_PASSWORD"]);
        assert_eq!(secrets[&SecretPath::parse("API").unwrap()].expose(), Value::String("a b".into()));
        let missing = read(&config(r#"{"json": "OTHER"}"#), &env, &[]).unwrap_err();
        assert!(missing.to_string().contains("OTHER is not set"), "{missing}");
        let env = |_: &str| Some(r#"{"A": 1, "B": "secret-value"}"#.to_string());
        let invalid = read(&config(r#"{"json": "SECRETS"}"#), &env, &[]).unwrap_err();
        assert!(invalid.to_string().ends_with("is not a JSON object of strings"), "{invalid}");
    }

    #[test]
    fn prefix_reads_matching_variables() {
        let vars = [("APP_DB".to_string(), "d".to_string()), ("OTHER".into(), "o".into()), ("APP_X".into(), "x".into())];
        let none = |_: &str| None;
        let kept = read(&config(r#"{"prefix": "APP_"}"#), &none, &vars).unwrap();
        assert_eq!(kept.keys().map(SecretPath::as_str).collect::<Vec<_>>(), ["APP_DB", "APP_X"]);
        let stripped = read(&config(r#"{"prefix": "APP_", "strip_prefix": true}"#), &none, &vars).unwrap();
        assert_eq!(stripped.keys().map(SecretPath::as_str).collect::<Vec<_>>(), ["DB", "X"]);
    }
}
