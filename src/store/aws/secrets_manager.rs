//! The `aws` store: AWS Secrets Manager as a source and a target, in any number of
//! accounts (credentials and roles come from the shared [`crate::store::aws`] layer).
//!
//! ```yaml
//! aws:                                   # defaults (every field optional)
//!   region: us-east-1                    # else AWS_REGION / the profile
//!   execution_role_pattern: "arn:aws:iam::{account_id}:role/SecretsSync"
//!   # endpoint_url: http://127.0.0.1:5000  # emulators; AWS_ENDPOINT_URL works too
//! sources:
//!   legacy: { aws: { region: eu-west-1, prefix: legacy/ } }
//! targets:
//!   Staging:
//!     imports: [legacy]
//!     account_id: "111111111111"         # shorthand for aws: { account_id: ... }
//!   Production:
//!     imports: [legacy]
//!     aws:
//!       account_id: "222222222222"
//!       prefix: app/                     # secret name = prefix + path
//!       tags: { team: platform }
//!       kms_key_id: alias/secrets
//!       recovery_window_days: 7
//! ```
//!
//! - **Credentials**: the default chain (environment, profile, web identity, container,
//!   instance metadata). A location with an `account_id` is reached by assuming its own
//!   `role_arn`, or `execution_role_pattern` with the id filled in, or else (the AWS
//!   Organizations convention) no role when the account is the caller's own and
//!   `OrganizationAccountAccessRole` in any other; credentials are cached per role and
//!   refreshed before they expire. A location's calls go only through
//!   its own role, and a role that cannot be assumed fails that location alone.
//! - **Names**: secret name = `prefix + path`; only names that start with the prefix and
//!   map back to the same name are managed (so `/foo` and `foo` never mix).
//! - **Values**: `SecretString` holds the JSON value (a string value is stored as is);
//!   `SecretBinary` is read and written as `{"$binary": "<base64>"}`.
//! - **Reads**: `ListSecrets` (filtered by prefix, paginated) gives the names, tags,
//!   description and KMS key; `BatchGetSecretValue` reads the values, 20 per call.
//! - **Writes**: `CreateSecret` with description, tags (with the ownership tags
//!   `managed-by=vss`, `vss-target=<target>`), KMS key and replica regions. On an existing
//!   secret: `PutSecretValue` only when the parsed JSON differs, `TagResource` and
//!   `UpdateSecret` when tags, description or KMS key drifted (drift on a secret vss owns is
//!   reported as a `modified` secret with `metadata: true`), `RestoreSecret` first when it
//!   is scheduled for deletion.
//! - **Deletes**: `DeleteSecret` with `recovery_window_days` (default 30), or at once with
//!   `force_delete: true`. Only secrets with vss's ownership tags are ever deleted.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, ReplicaRegionType, Tag};
use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::secret::{LiveSecret, LiveValue, SecretPath, SecretValue, Sensitive};
use crate::span::{Span, Spanned};
use crate::store::aws::{Answer, AwsDefaults, AwsSessions, Classified, HttpStatus, Identity, classify, sdk_error};
use crate::store::stats::{Call, CallCounter};
use crate::store::{Bundle, Capabilities, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// `aws:` of a source or a target: AWS Secrets Manager.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// The account, reached through `execution_role_pattern` (or `role_arn`).
    pub account_id: Option<Spanned<String>>,
    /// Region (default: the top-level `aws.region`, then `AWS_REGION`).
    pub region: Option<String>,
    /// Secret name prefix: name = prefix + path (default: none).
    pub prefix: Option<String>,
    /// A role to assume for this location (overrides `execution_role_pattern`).
    pub role_arn: Option<Spanned<String>>,
    /// External id for this location's role.
    pub external_id: Option<Sensitive>,
    /// Session name for this location's role.
    pub session_name: Option<String>,
    /// Credential lifetime in seconds for this location's role.
    pub duration: Option<u32>,
    /// Target only: the description of secrets vss creates (and keeps in line).
    pub description: Option<String>,
    /// Target only: tags of secrets vss creates (and keeps in line), besides the ownership
    /// tags `managed-by=vss` and `vss-target=<target>`.
    pub tags: Option<BTreeMap<String, String>>,
    /// Target only: the KMS key that encrypts secrets vss creates (and keeps in line).
    pub kms_key_id: Option<String>,
    /// Target only: regions new secrets are replicated to.
    pub replica_regions: Option<Vec<String>>,
    /// Target only: days a deleted orphan can be restored (7 to 30, default 30).
    pub recovery_window_days: Option<Spanned<u32>>,
    /// Target only: delete orphans at once, without a recovery window.
    pub force_delete: Option<bool>,
}

impl AwsConfig {
    /// A short description of the location, for reports: `aws 111111111111 us-east-1 app/`.
    pub fn describe(&self) -> String {
        let mut parts = vec!["aws".to_string()];
        if let Some(account) = &self.account_id {
            parts.push(account.value.clone());
        }
        if let Some(region) = &self.region {
            parts.push(region.clone());
        }
        parts.push(self.prefix.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "(no prefix)".into()));
        parts.join(" ")
    }

    /// The role this location assumes by its config (`role_arn`, or the pattern with its
    /// account filled in), if any. An account with neither gets [`super::default_role`]
    /// unless it is the caller's own (decided when the store opens).
    pub fn role(&self, defaults: &AwsDefaults) -> Option<String> {
        if let Some(role) = &self.role_arn {
            return Some(role.value.clone());
        }
        let account = self.account_id.as_ref()?;
        let pattern = defaults.execution_role_pattern.as_ref()?;
        Some(pattern.value.replace("{account_id}", &account.value))
    }
}
/// What `ListSecrets` told about one secret.
#[derive(Clone, Debug, Default)]
struct Listed {
    name: String,
    tags: BTreeMap<String, String>,
    description: Option<String>,
    kms_key_id: Option<String>,
    deleted: bool,
}

/// Secrets Manager at one account, region and prefix.
#[derive(Debug)]
pub struct SecretsManagerStore {
    client: aws_sdk_secretsmanager::Client,
    prefix: String,
    role: Option<String>,
    settings: AwsConfig,
    calls: Arc<CallCounter>,
    listed: Mutex<HashMap<SecretPath, Listed>>,
    /// Whether `listed` holds a whole listing: a path missing from it does not exist (a
    /// concurrent creation then fails with a conflict, and the target starts over).
    listed_all: std::sync::atomic::AtomicBool,
    /// The values the last reads returned (shared, not copied), to skip an unchanged put.
    values: Mutex<HashMap<SecretPath, SecretValue>>,
}

/// `BatchGetSecretValue` reads at most this many secrets per call.
const BATCH: usize = 20;

/// The largest `SecretString` or `SecretBinary` Secrets Manager accepts (64 KiB).
const MAX_VALUE_BYTES: usize = 65_536;

impl SecretsManagerStore {
    /// Opens the location of `config`.
    async fn at(
        config: &AwsConfig,
        identity: Identity,
        defaults: &AwsDefaults,
        sessions: &AwsSessions,
        calls: Arc<CallCounter>,
    ) -> Result<Self, StoreError> {
        let sdk = sessions.config(&identity, defaults).await;
        Ok(Self {
            client: aws_sdk_secretsmanager::Client::new(&sdk),
            prefix: config.prefix.clone().unwrap_or_default(),
            role: identity.role,
            settings: config.clone(),
            calls,
            listed: Mutex::new(HashMap::new()),
            listed_all: std::sync::atomic::AtomicBool::new(false),
            values: Mutex::new(HashMap::new()),
        })
    }

    fn name(&self, path: &SecretPath) -> String {
        name_of(&self.prefix, path)
    }

    fn path_of(&self, name: &str) -> Option<SecretPath> {
        path_of(&self.prefix, name)
    }

    fn classify<E, R>(&self, error: &SdkError<E, R>, action: &str, resource: &str) -> Classified
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus + 'static,
    {
        sdk_error(error, action, resource, self.role.as_deref())
    }

    /// Whether a secret's metadata differs from what the config asks for.
    fn drifted(&self, listed: &Listed) -> bool {
        let tags = self.settings.tags.iter().flatten().any(|(k, v)| listed.tags.get(k) != Some(v));
        let description = self.settings.description.as_ref().is_some_and(|d| listed.description.as_ref() != Some(d));
        let kms = self.settings.kms_key_id.as_ref().is_some_and(|k| listed.kms_key_id.as_ref() != Some(k));
        tags || description || kms
    }

    fn live(&self, path: &SecretPath, value: Value, version: Option<&str>, listed: &Listed) -> LiveSecret {
        let value = SecretValue::new(value);
        self.values.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), value.clone());
        let owner = (listed.tags.get("managed-by").map(String::as_str) == Some("vss"))
            .then(|| listed.tags.get("vss-target").cloned())
            .flatten();
        LiveSecret {
            value: LiveValue::Value(value),
            owner,
            drift: self.drifted(listed),
            version: version.map(str::to_string),
        }
    }

    /// A failed call as a store error; "not found" here means the secret vanished mid-call.
    fn fail<E, R>(&self, error: &SdkError<E, R>, action: &str, resource: &str) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus + 'static,
    {
        self.classify(error, action, resource).into_error(action, resource)
    }

    /// What is known of a secret: from the last listing, else `DescribeSecret`.
    async fn describe(&self, path: &SecretPath) -> Result<Option<Listed>, StoreError> {
        if let Some(listed) = self.listed.lock().unwrap_or_else(|e| e.into_inner()).get(path) {
            return Ok(Some(listed.clone()));
        }
        if self.listed_all.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(None);
        }
        let name = self.name(path);
        self.calls.count(Call::Read);
        let described = match self.client.describe_secret().secret_id(&name).send().await {
            Ok(out) => out,
            Err(e) => {
                return match self.classify(&e, "DescribeSecret", &name) {
                    Classified::NotFound => Ok(None),
                    other => Err(other.into_error("DescribeSecret", &name)),
                };
            }
        };
        let listed = Listed {
            name,
            tags: described
                .tags()
                .iter()
                .map(|t| (t.key().unwrap_or("").to_string(), t.value().unwrap_or("").to_string()))
                .collect(),
            description: described.description().map(str::to_string),
            kms_key_id: described.kms_key_id().map(str::to_string),
            deleted: described.deleted_date().is_some(),
        };
        self.listed.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), listed.clone());
        Ok(Some(listed))
    }
}

/// The secret name of `path`: `prefix + path`.
fn name_of(prefix: &str, path: &SecretPath) -> String {
    format!("{prefix}{}", path.as_str())
}

/// The path of a secret name, when the name is ours: it starts with the prefix and maps
/// back to exactly the same name.
fn path_of(prefix: &str, name: &str) -> Option<SecretPath> {
    let relative = name.strip_prefix(prefix)?;
    let path = SecretPath::parse(relative).ok()?;
    (name_of(prefix, &path) == name).then_some(path)
}

/// A Secrets Manager value as JSON: a `SecretString` holding a JSON object is that object;
/// any other `SecretString` stays exactly the string it is (`"quoted"`, `1.10` and
/// `98765432109876543210` are strings, never parsed); `SecretBinary` is
/// `{"$binary": "<base64>"}`.
fn decode(string: Option<&str>, binary: Option<&Blob>) -> Value {
    match (string, binary) {
        (Some(text), _) => match serde_json::from_str::<Value>(text) {
            Ok(object @ Value::Object(_)) => object,
            _ => Value::String(text.to_string()),
        },
        (None, Some(blob)) => json!({"$binary": base64::engine::general_purpose::STANDARD.encode(blob.as_ref())}),
        (None, None) => Value::Null,
    }
}

/// The inverse of [`decode`]: `(SecretString, SecretBinary)`.
fn encode(value: &Value) -> Result<(Option<String>, Option<Blob>), StoreError> {
    if let Some(map) = value.as_object()
        && map.len() == 1
        && let Some(Value::String(b64)) = map.get("$binary")
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| StoreError::invalid("a `$binary` value is not valid base64"))?;
        return Ok((None, Some(Blob::new(bytes))));
    }
    Ok(match value {
        Value::String(text) => (Some(text.clone()), None),
        other => (Some(other.to_string()), None),
    })
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build()
}

impl StoreKind for SecretsManagerStore {
    const NAME: &'static str = "aws";
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: true, merge_store: false, target: true },
        reads_values: true,
        value_shape: ValueShape::ObjectOrText,
        min_value_bytes: 1,
        max_value_bytes: Some(MAX_VALUE_BYTES),
        exact_numbers: true,
        ownership: true,
        atomic_commit: false,
    };
    const DEFAULTS_KEY: Option<&'static str> = Some("aws");
    const SHORTHANDS: &'static [&'static str] = &["account_id"];
    type Config = AwsConfig;
    type Defaults = AwsDefaults;
    type Session = AwsSessions;

    fn locus(config: &AwsConfig, defaults: &AwsDefaults, _: &std::path::Path) -> Option<crate::store::Locus> {
        let account = match (&config.account_id, &config.role_arn) {
            (Some(account), _) => format!("account {}", account.value),
            (None, Some(role)) => format!("the account of {}", role.value),
            (None, None) => "the caller's account".to_string(),
        };
        let region = config.region.as_deref().or(defaults.region.as_deref()).unwrap_or("(AWS_REGION)");
        let system = format!("AWS Secrets Manager in {account}, {region}");
        Some(crate::store::Locus::prefix(system, config.prefix.as_deref().unwrap_or("")))
    }

    fn describe(config: &AwsConfig) -> String {
        config.describe()
    }

    fn check(config: &AwsConfig, role: Role, _: &AwsDefaults, span: Span, out: &mut Vec<Diagnostic>) {
        if let Some(account) = &config.account_id
            && (account.value.len() != 12 || !account.value.bytes().all(|b| b.is_ascii_digit()))
        {
            out.push(
                Diagnostic::at(account.span, format!("`{}` is not an AWS account id", account.value))
                    .with_label("12 digits, quoted"),
            );
        }
        if let Some(days) = &config.recovery_window_days {
            if !(7..=30).contains(&days.value) {
                out.push(Diagnostic::at(days.span, "`recovery_window_days` must be between 7 and 30"));
            }
            if config.force_delete == Some(true) {
                out.push(Diagnostic::at(
                    days.span,
                    "`recovery_window_days` and `force_delete: true` exclude each other",
                ));
            }
        }
        let target_only = config.description.is_some()
            || config.tags.is_some()
            || config.kms_key_id.is_some()
            || config.replica_regions.is_some()
            || config.recovery_window_days.is_some()
            || config.force_delete.is_some();
        if role == Role::Source && target_only {
            out.push(
                Diagnostic::at(span, "a source does not write secrets")
                    .with_label("`description`, `tags`, `kms_key_id`, `replica_regions`, `recovery_window_days` and `force_delete` are for targets"),
            );
        }
    }

    fn check_defaults(defaults: &AwsDefaults, out: &mut Vec<Diagnostic>) {
        if let Some(pattern) = &defaults.execution_role_pattern
            && !pattern.value.contains("{account_id}")
        {
            out.push(
                Diagnostic::at(pattern.span, "`execution_role_pattern` has no `{account_id}` placeholder")
                    .with_label("for example arn:aws:iam::{account_id}:role/SecretsSync"),
            );
        }
    }

    fn shorthand(
        target: &str,
        _key: &Spanned<String>,
        account: &Spanned<String>,
        existing: Option<&mut AwsConfig>,
    ) -> Result<Option<AwsConfig>, Diagnostic> {
        let Some(config) = existing else {
            return Ok(Some(AwsConfig { account_id: Some(account.clone()), ..Default::default() }));
        };
        match &config.account_id {
            None => config.account_id = Some(account.clone()),
            Some(other) if other.value == account.value => {}
            Some(other) => {
                return Err(Diagnostic::at(
                    account.span,
                    format!("target `{target}` names two accounts, {} and {}", account.value, other.value),
                )
                .with_note(other.span, "the `aws` block names the other one here"));
            }
        }
        Ok(None)
    }

    async fn open(config: &AwsConfig, ctx: &OpenContext<'_>, _: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let (defaults, session) = (ctx.defaults::<Self>(), ctx.session::<Self>());
        let mut identity = Identity::of(config, defaults);
        // An account with no role configured: the Organizations convention.
        if identity.role.is_none()
            && let Some(account) = &config.account_id
            && session.caller_account(defaults).await? != account.value
        {
            identity.role = Some(super::default_role(&account.value));
        }
        Self::at(config, identity, defaults, &session, ctx.calls::<Self>()).await
    }

    fn route(config: &AwsConfig, defaults: &AwsDefaults) -> Option<String> {
        match (config.role(defaults), &config.account_id) {
            (Some(role), _) => Some(format!("as {role}")),
            (None, Some(account)) => Some(format!(
                "as {} (none if {} is the caller's own account)",
                super::default_role(&account.value),
                account.value
            )),
            (None, None) => None,
        }
    }
}

impl Store for SecretsManagerStore {
    fn batch_size(&self) -> usize {
        BATCH
    }

    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        let mut request = self.client.list_secrets().include_planned_deletion(true).max_results(100);
        if !self.prefix.is_empty() {
            request =
                request.filters(Filter::builder().key(FilterNameStringType::Name).values(self.prefix.clone()).build());
        }
        let mut pages = request.into_paginator().send();
        let mut listed = HashMap::new();
        loop {
            let page = match pages.next().await {
                None => break,
                Some(Ok(page)) => {
                    self.calls.count(Call::List);
                    page
                }
                Some(Err(e)) => {
                    let resource = format!("secrets named {}*", self.prefix);
                    return Err(self.fail(&e, "ListSecrets", &resource));
                }
            };
            for entry in page.secret_list() {
                let Some(name) = entry.name() else { continue };
                let Some(path) = self.path_of(name) else { continue };
                let tags = entry
                    .tags()
                    .iter()
                    .map(|t| (t.key().unwrap_or("").to_string(), t.value().unwrap_or("").to_string()))
                    .collect();
                listed.insert(
                    path,
                    Listed {
                        name: name.to_string(),
                        tags,
                        description: entry.description().map(str::to_string),
                        kms_key_id: entry.kms_key_id().map(str::to_string),
                        deleted: entry.deleted_date().is_some(),
                    },
                );
            }
        }
        let mut paths: Vec<SecretPath> = listed.iter().filter(|(_, l)| !l.deleted).map(|(p, _)| p.clone()).collect();
        paths.sort();
        *self.listed.lock().unwrap_or_else(|e| e.into_inner()) = listed;
        self.listed_all.store(true, std::sync::atomic::Ordering::Release);
        Ok(paths)
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        let Some(listed) = self.describe(path).await? else { return Ok(None) };
        if listed.deleted {
            return Ok(None);
        }
        self.calls.count(Call::Read);
        match self.client.get_secret_value().secret_id(&listed.name).send().await {
            Ok(out) => {
                Ok(Some(self.live(path, decode(out.secret_string(), out.secret_binary()), out.version_id(), &listed)))
            }
            Err(e) => match self.classify(&e, "GetSecretValue", &listed.name) {
                Classified::NotFound => Ok(None),
                other => Err(other.into_error("GetSecretValue", &listed.name)),
            },
        }
    }

    async fn read_batch(&self, paths: &[SecretPath]) -> Result<Vec<(SecretPath, LiveSecret)>, StoreError> {
        let known: Vec<(SecretPath, Listed)> = {
            let listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
            paths.iter().filter_map(|p| listed.get(p).map(|l| (p.clone(), l.clone()))).collect()
        };
        let mut out = Vec::new();
        // Paths the listing did not see are read one by one.
        for path in paths.iter().filter(|p| !known.iter().any(|(k, _)| k == *p)) {
            if let Some(secret) = self.read(path).await? {
                out.push((path.clone(), secret));
            }
        }
        let wanted: Vec<&(SecretPath, Listed)> = known.iter().filter(|(_, l)| !l.deleted).collect();
        for chunk in wanted.chunks(BATCH) {
            let ids: Vec<String> = chunk.iter().map(|(_, l)| l.name.clone()).collect();
            self.calls.count(Call::Read);
            let answer = self.client.batch_get_secret_value().set_secret_id_list(Some(ids)).send().await;
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    let resource = format!("{} secrets named {}*", chunk.len(), self.prefix);
                    return Err(self.fail(&e, "BatchGetSecretValue", &resource));
                }
            };
            for error in answer.errors() {
                let secret = error.secret_id().unwrap_or("?");
                let answer =
                    Answer::Service { status: None, code: error.error_code(), message: error.message().unwrap_or("") };
                match classify(answer, "BatchGetSecretValue", secret, self.role.as_deref()) {
                    Classified::NotFound => {}
                    other => return Err(other.into_error("BatchGetSecretValue", secret)),
                }
            }
            for value in answer.secret_values() {
                let Some((path, listed)) = chunk.iter().find(|(_, l)| Some(l.name.as_str()) == value.name()) else {
                    continue;
                };
                out.push((
                    path.clone(),
                    self.live(path, decode(value.secret_string(), value.secret_binary()), value.version_id(), listed),
                ));
            }
        }
        Ok(out)
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        let name = self.name(path);
        let (string, binary) = encode(&value.expose())?;
        let mut tags: BTreeMap<String, String> = self.settings.tags.clone().unwrap_or_default();
        tags.insert("managed-by".into(), "vss".into());
        tags.insert("vss-target".into(), owner.into());
        let Some(listed) = self.describe(path).await? else {
            let mut create = self
                .client
                .create_secret()
                .name(&name)
                .set_secret_string(string)
                .set_secret_binary(binary)
                .set_description(self.settings.description.clone())
                .set_kms_key_id(self.settings.kms_key_id.clone())
                .set_tags(Some(tags.iter().map(|(k, v)| tag(k, v)).collect()));
            for region in self.settings.replica_regions.iter().flatten() {
                create = create.add_replica_regions(ReplicaRegionType::builder().region(region).build());
            }
            self.calls.count(Call::Write);
            create.send().await.map_err(|e| self.fail(&e, "CreateSecret", &name))?;
            let created = Listed {
                name,
                tags,
                description: self.settings.description.clone(),
                kms_key_id: self.settings.kms_key_id.clone(),
                deleted: false,
            };
            self.listed.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), created);
            self.values.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), value.clone());
            return Ok(());
        };
        let mut listed = listed;
        if listed.deleted {
            self.calls.count(Call::Write);
            self.client
                .restore_secret()
                .secret_id(&name)
                .send()
                .await
                .map_err(|e| self.fail(&e, "RestoreSecret", &name))?;
            listed.deleted = false;
        }
        let current = self.values.lock().unwrap_or_else(|e| e.into_inner()).get(path).cloned();
        let current = match current {
            Some(current) => Some(current),
            None => self.read(path).await?.and_then(LiveSecret::into_value),
        };
        if current.as_ref() != Some(value) {
            self.calls.count(Call::Write);
            self.client
                .put_secret_value()
                .secret_id(&name)
                .set_secret_string(string)
                .set_secret_binary(binary)
                .send()
                .await
                .map_err(|e| self.fail(&e, "PutSecretValue", &name))?;
        }
        let missing: Vec<Tag> =
            tags.iter().filter(|(k, v)| listed.tags.get(*k) != Some(*v)).map(|(k, v)| tag(k, v)).collect();
        if !missing.is_empty() {
            self.calls.count(Call::Write);
            self.client
                .tag_resource()
                .secret_id(&name)
                .set_tags(Some(missing))
                .send()
                .await
                .map_err(|e| self.fail(&e, "TagResource", &name))?;
            listed.tags.extend(tags.clone());
        }
        let description = self.settings.description.clone().filter(|d| listed.description.as_ref() != Some(d));
        let kms = self.settings.kms_key_id.clone().filter(|k| listed.kms_key_id.as_ref() != Some(k));
        if description.is_some() || kms.is_some() {
            self.calls.count(Call::Write);
            self.client
                .update_secret()
                .secret_id(&name)
                .set_description(description.clone())
                .set_kms_key_id(kms.clone())
                .send()
                .await
                .map_err(|e| self.fail(&e, "UpdateSecret", &name))?;
            listed.description = description.or(listed.description);
            listed.kms_key_id = kms.or(listed.kms_key_id);
        }
        self.listed.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), listed);
        self.values.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), value.clone());
        Ok(())
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        let name = self.name(path);
        match self.delete_once(path, &name).await {
            // A replicated secret cannot be deleted: remove its replicas, then delete.
            Err(Classified::Replicated) => {
                self.calls.count(Call::Read);
                let described = self
                    .client
                    .describe_secret()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, "DescribeSecret", &name))?;
                let regions: Vec<String> =
                    described.replication_status().iter().filter_map(|r| r.region().map(str::to_string)).collect();
                self.calls.count(Call::Write);
                self.client
                    .remove_regions_from_replication()
                    .secret_id(&name)
                    .set_remove_replica_regions(Some(regions))
                    .send()
                    .await
                    .map_err(|e| self.fail(&e, "RemoveRegionsFromReplication", &name))?;
                self.delete_once(path, &name).await.map_err(|c| c.into_error("DeleteSecret", &name))
            }
            other => other.map_err(|c| c.into_error("DeleteSecret", &name)),
        }
    }
}

impl SecretsManagerStore {
    /// One `DeleteSecret`: done when the secret is gone or already scheduled for deletion;
    /// a replicated secret comes back as [`Classified::Replicated`].
    async fn delete_once(&self, path: &SecretPath, name: &str) -> Result<(), Classified> {
        let mut request = self.client.delete_secret().secret_id(name);
        request = if self.settings.force_delete == Some(true) {
            request.force_delete_without_recovery(true)
        } else {
            request
                .recovery_window_in_days(i64::from(self.settings.recovery_window_days.as_ref().map_or(30, |d| d.value)))
        };
        self.calls.count(Call::Delete);
        let result = request.send().await;
        // A recovery window leaves the secret scheduled for deletion (restorable, and its
        // name taken); a forced delete frees the name.
        {
            let mut listed = self.listed.lock().unwrap_or_else(|e| e.into_inner());
            if self.settings.force_delete == Some(true) {
                listed.remove(path);
            } else if let Some(entry) = listed.get_mut(path) {
                entry.deleted = true;
            } else {
                listed.insert(path.clone(), Listed { name: name.to_string(), deleted: true, ..Listed::default() });
            }
        }
        self.values.lock().unwrap_or_else(|e| e.into_inner()).remove(path);
        match result {
            Ok(_) => Ok(()),
            Err(e) => match self.classify(&e, "DeleteSecret", name) {
                // Gone, or already scheduled for deletion: as for a missing secret, a no-op.
                Classified::NotFound | Classified::MarkedDeleted => Ok(()),
                other => Err(other),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_including_binary_and_plain_strings() {
        for value in [json!({"a": 1, "b": [true]}), json!("plain text"), json!({"$binary": "AAEC/w=="}), json!("42")] {
            let (string, binary) = encode(&value).unwrap();
            assert_eq!(decode(string.as_deref(), binary.as_ref()), value);
        }
        // Only an object is structured: any other SecretString stays the string it is.
        for text in ["98765432109876543210", "\"quoted\"", "1.10", "[1, 2]", "true", "null", "{not json"] {
            assert_eq!(decode(Some(text), None), json!(text), "{text}");
            assert_eq!(encode(&json!(text)).unwrap().0.as_deref(), Some(text));
        }
        let (string, binary) = encode(&json!({"$binary": "AAEC/w=="})).unwrap();
        assert!(string.is_none() && binary.unwrap().as_ref() == [0, 1, 2, 255]);
        assert!(encode(&json!({"$binary": "%%%"})).is_err());
    }

    #[test]
    fn names_map_to_paths_only_when_they_round_trip() {
        let store_prefix = path_of;
        assert_eq!(store_prefix("app/", "app/db").map(|p| p.to_string()), Some("db".into()));
        assert_eq!(store_prefix("", "/foo"), None, "`/foo` is not the secret `foo`");
        assert_eq!(store_prefix("/app/", "/app/db").map(|p| p.to_string()), Some("db".into()));
        assert_eq!(store_prefix("app/", "app//db"), None);
    }

    #[test]
    fn roles_come_from_role_arn_or_the_pattern() {
        let defaults = AwsDefaults {
            execution_role_pattern: Some(Spanned {
                span: Default::default(),
                value: "arn:aws:iam::{account_id}:role/Sync".into(),
            }),
            ..Default::default()
        };
        let mut config = AwsConfig {
            account_id: Some(Spanned { span: Default::default(), value: "111".into() }),
            ..Default::default()
        };
        assert_eq!(config.role(&defaults).as_deref(), Some("arn:aws:iam::111:role/Sync"));
        config.role_arn = Some(Spanned { span: Default::default(), value: "arn:aws:iam::111:role/Own".into() });
        assert_eq!(config.role(&defaults).as_deref(), Some("arn:aws:iam::111:role/Own"));
        assert_eq!(AwsConfig::default().role(&defaults), None);
    }
}
