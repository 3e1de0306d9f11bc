//! The `s3` merge store: one JSON object per target bundle.
//!
//! ```yaml
//! merge_store:
//!   s3:
//!     bucket: acme-secrets-bundles
//!     prefix: merged/                # the bundle of target T is merged/T.json
//!     kms_key_id: alias/bundles      # SSE-KMS; without it SSE-S3 (AES256)
//!     # region: eu-west-1            # default: the top-level aws.region
//! ```
//!
//! The object is `{"target", "sources", "generated_at", "secrets": {path: value}}`. A run
//! reads it once (its ETag with it) and writes it once, with a conditional PUT: `If-Match`
//! on the ETag read, or `If-None-Match: *` for a new bundle. When another run wrote in
//! between, the PUT fails with `PreconditionFailed` and the engine starts that target over
//! from a fresh read, so two concurrent runs cannot lose an update. An unchanged bundle is
//! not rewritten. Credentials, region and endpoint come from the `aws` session (the
//! top-level `aws:` block); S3 is addressed path-style when an endpoint is set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::secret::{LiveSecret, SecretPath, SecretValue};
use crate::span::{Span, Spanned};
use crate::store::aws::{AwsDefaults, AwsSessions, Classified, Identity, sdk_error};
use crate::store::stats::{Call, CallCounter};
use crate::store::{Bundle, Capabilities, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// `s3:` options of the merge store.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// The bucket.
    pub bucket: Spanned<String>,
    /// Key prefix: the bundle of target `T` is `<prefix>T.json` (default: none).
    pub prefix: Option<String>,
    /// SSE-KMS with this key; without it objects use SSE-S3 (AES256).
    pub kms_key_id: Option<String>,
    /// The bucket's region (default: the top-level `aws.region`, then `AWS_REGION`).
    pub region: Option<String>,
}

impl S3Config {
    /// A short description, for reports: `s3 bucket/prefix`.
    pub fn describe(&self) -> String {
        format!("s3 {}/{}", self.bucket.value, self.prefix.as_deref().unwrap_or(""))
    }
}

/// What the bundle object held when it was read.
#[derive(Clone, Debug, Default)]
struct Loaded {
    etag: Option<String>,
    secrets: BTreeMap<SecretPath, SecretValue>,
}

/// One target's bundle object.
#[derive(Debug)]
pub struct S3BundleStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    target: String,
    sources: Vec<String>,
    kms_key_id: Option<String>,
    calls: Arc<CallCounter>,
    loaded: Mutex<Option<Loaded>>,
}

impl S3BundleStore {
    /// Opens the bundle of `target` (merged from `sources`).
    async fn at(
        config: &S3Config,
        defaults: &AwsDefaults,
        sessions: &AwsSessions,
        calls: Arc<CallCounter>,
        target: &str,
        sources: &[String],
    ) -> Result<Self, StoreError> {
        let identity = Identity {
            role: None,
            external_id: None,
            session_name: "vss".into(),
            duration: 3600,
            region: config.region.clone().or_else(|| defaults.region.clone()),
        };
        let sdk = sessions.config(&identity, defaults).await;
        let mut builder = aws_sdk_s3::config::Builder::from(&sdk);
        if sdk.endpoint_url().is_some() {
            builder = builder.force_path_style(true);
        }
        Ok(Self {
            client: aws_sdk_s3::Client::from_conf(builder.build()),
            bucket: config.bucket.value.clone(),
            key: format!("{}{target}.json", config.prefix.as_deref().unwrap_or("")),
            target: target.to_string(),
            sources: sources.to_vec(),
            kms_key_id: config.kms_key_id.clone(),
            calls,
            loaded: Mutex::new(None),
        })
    }

    fn resource(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn cached(&self) -> Option<Loaded> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    async fn load(&self) -> Result<Loaded, StoreError> {
        if let Some(loaded) = self.cached() {
            return Ok(loaded);
        }
        self.calls.count(Call::Read);
        let loaded = match self.client.get_object().bucket(&self.bucket).key(&self.key).send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let bytes = out.body.collect().await.map_err(|e| {
                    StoreError::unavailable(format!(
                        "GetObject on {}: the body could not be read: {e}",
                        self.resource()
                    ))
                })?;
                let bundle: Value = serde_json::from_slice(&bytes.into_bytes())
                    .map_err(|e| StoreError::invalid(format!("{} is not a vss bundle: {e}", self.resource())))?;
                let secrets = bundle.get("secrets").and_then(Value::as_object).ok_or_else(|| {
                    StoreError::invalid(format!("{} is not a vss bundle: no `secrets`", self.resource()))
                })?;
                let mut parsed = BTreeMap::new();
                for (path, value) in secrets {
                    parsed
                        .insert(SecretPath::parse(path).map_err(StoreError::invalid)?, SecretValue::new(value.clone()));
                }
                Loaded { etag, secrets: parsed }
            }
            Err(e) => match sdk_error(&e, "GetObject", &self.resource(), None) {
                Classified::NotFound => Loaded::default(),
                other => return Err(other.into_error("GetObject", &self.resource())),
            },
        };
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = Some(loaded.clone());
        Ok(loaded)
    }

    /// Writes the whole bundle with a conditional PUT.
    async fn put(&self, secrets: BTreeMap<SecretPath, SecretValue>, etag: Option<String>) -> Result<(), StoreError> {
        let now = aws_smithy_types::DateTime::from(std::time::SystemTime::now());
        let generated_at = now.fmt(aws_smithy_types::date_time::Format::DateTime).unwrap_or_default();
        let body = json!({
            "target": self.target,
            "sources": self.sources,
            "generated_at": generated_at,
            "secrets": secrets.iter().map(|(k, v)| (k.to_string(), v.expose())).collect::<serde_json::Map<_, _>>(),
        });
        let bytes = serde_json::to_vec_pretty(&body).expect("JSON serializes");
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .body(ByteStream::from(bytes));
        request = match &self.kms_key_id {
            Some(key) => request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(key),
            None => request.server_side_encryption(ServerSideEncryption::Aes256),
        };
        request = match &etag {
            Some(etag) => request.if_match(etag),
            None => request.if_none_match("*"),
        };
        self.calls.count(Call::Write);
        match request.send().await {
            Ok(out) => {
                *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(Loaded { etag: out.e_tag().map(str::to_string), secrets });
                Ok(())
            }
            Err(e) => {
                // Whatever happened, the next attempt starts from a fresh read.
                *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = None;
                Err(match sdk_error(&e, "PutObject", &self.resource(), None) {
                    Classified::NotFound => {
                        StoreError::not_found(format!("PutObject on {}: the bucket does not exist", self.resource()))
                            .with_hint("create the bucket, or fix `bucket`")
                    }
                    other => other.into_error("PutObject", &self.resource()),
                })
            }
        }
    }
}

impl StoreKind for S3BundleStore {
    const NAME: &'static str = "s3";
    /// Only holds bundles, written whole.
    const CAPABILITIES: Capabilities = Capabilities {
        roles: Roles { source: false, merge_store: true, target: false },
        reads_values: true,
        value_shape: ValueShape::Any,
        min_value_bytes: 0,
        max_value_bytes: None,
        exact_numbers: true,
        ownership: true,
        atomic_commit: true,
    };
    const DEFAULTS_KEY: Option<&'static str> = Some("aws");
    type Config = S3Config;
    type Defaults = AwsDefaults;
    type Session = AwsSessions;

    fn describe(config: &S3Config) -> String {
        config.describe()
    }

    fn check(config: &S3Config, _: Role, _: &AwsDefaults, _: Span, out: &mut Vec<Diagnostic>) {
        if config.bucket.value.trim().is_empty() {
            out.push(Diagnostic::at(config.bucket.span, "`bucket` is empty"));
        }
    }

    async fn open(config: &S3Config, ctx: &OpenContext<'_>, bundle: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let bundle = bundle.ok_or_else(|| StoreError::invalid("the `s3` store only holds merge bundles"))?;
        let session = ctx.session::<Self>();
        Self::at(config, ctx.defaults::<Self>(), &session, ctx.calls::<Self>(), bundle.target, bundle.sources).await
    }
}

impl Store for S3BundleStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        Ok(self.load().await?.secrets.into_keys().collect())
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        let loaded = self.load().await?;
        Ok(loaded.secrets.get(path).map(|value| LiveSecret::with_value(value.clone(), Some(self.target.clone()))))
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        self.commit(&[(path.clone(), value.clone())], &[], owner).await
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        self.commit(&[], std::slice::from_ref(path), &self.target).await
    }

    async fn commit(
        &self,
        writes: &[(SecretPath, SecretValue)],
        deletes: &[SecretPath],
        _owner: &str,
    ) -> Result<(), StoreError> {
        let loaded = self.load().await?;
        let mut secrets = loaded.secrets.clone();
        for (path, value) in writes {
            secrets.insert(path.clone(), value.clone());
        }
        for path in deletes {
            secrets.remove(path);
        }
        if secrets == loaded.secrets && loaded.etag.is_some() {
            return Ok(());
        }
        self.put(secrets, loaded.etag).await
    }
}
