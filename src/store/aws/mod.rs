//! AWS: the shared layer of the `aws` (Secrets Manager) and `s3` stores — the top-level
//! `aws:` defaults, credentials and roles per account ([`AwsSessions`]), and the one
//! classifier of AWS errors ([`classify`]) — plus the stores themselves and the discovery
//! of dynamic targets in AWS Organizations.
//!
//! - [`secrets_manager`]: the `aws` store, Secrets Manager as a source and a target.
//! - [`s3`]: the `s3` merge store, one JSON object per bundle.
//! - [`organizations`]: `dynamic_targets`, one target per account of an OU.

pub mod organizations;
pub mod s3;
pub mod secrets_manager;

use std::collections::HashMap;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::ErrorKind;
use crate::secret::Sensitive;
use crate::span::Spanned;
use crate::store::StoreError;

/// The top-level `aws:` block: defaults of every AWS store.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsDefaults {
    /// Region (else `AWS_REGION` or the profile's).
    pub region: Option<String>,
    /// Endpoint of an emulator for every AWS service (else `AWS_ENDPOINT_URL`).
    pub endpoint_url: Option<String>,
    /// Role assumed in each target account, with an `{account_id}` placeholder:
    /// `arn:aws:iam::{account_id}:role/SecretsSync`.
    pub execution_role_pattern: Option<Spanned<String>>,
    /// External id passed when assuming roles.
    pub external_id: Option<Sensitive>,
    /// Session name of assumed roles (default `vss`).
    pub session_name: Option<String>,
    /// Lifetime of assumed-role credentials in seconds (default 3600); they are refreshed
    /// before they expire.
    pub duration: Option<u32>,
}
/// What selects one set of credentials and one region.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The role assumed, if any.
    pub role: Option<String>,
    /// External id of the role.
    pub external_id: Option<Sensitive>,
    /// Session name of the role.
    pub session_name: String,
    /// Credential lifetime.
    pub duration: u32,
    /// Region of the clients.
    pub region: Option<String>,
}

impl Identity {
    /// The identity of an `aws` location.
    pub fn of(config: &secrets_manager::AwsConfig, defaults: &AwsDefaults) -> Self {
        Identity {
            role: config.role(defaults),
            external_id: config.external_id.clone().or_else(|| defaults.external_id.clone()),
            session_name: config
                .session_name
                .clone()
                .or_else(|| defaults.session_name.clone())
                .unwrap_or_else(|| "vss".into()),
            duration: config.duration.or(defaults.duration).unwrap_or(3600),
            region: config.region.clone().or_else(|| defaults.region.clone()),
        }
    }
}

/// The AWS configuration of one run: the default chain loaded once, one SDK config per
/// role (its credentials cached and refreshed by the SDK).
#[derive(Debug, Default)]
pub struct AwsSessions {
    base: tokio::sync::OnceCell<SdkConfig>,
    roles: tokio::sync::Mutex<HashMap<Identity, SdkConfig>>,
    caller: tokio::sync::OnceCell<String>,
}

/// The role assumed in an account when neither `role_arn` nor `execution_role_pattern`
/// says otherwise: the one AWS Organizations creates in every account it creates.
pub const DEFAULT_ROLE: &str = "OrganizationAccountAccessRole";

/// The default role in `account`: `arn:aws:iam::{account}:role/OrganizationAccountAccessRole`.
pub fn default_role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/{DEFAULT_ROLE}")
}

impl AwsSessions {
    async fn base(&self, defaults: &AwsDefaults) -> &SdkConfig {
        self.base
            .get_or_init(|| async {
                let mut loader = aws_config::defaults(BehaviorVersion::latest());
                if let Some(region) = &defaults.region {
                    loader = loader.region(Region::new(region.clone()));
                }
                if let Some(url) = &defaults.endpoint_url {
                    loader = loader.endpoint_url(url);
                }
                let timeouts = crate::store::timeouts();
                loader = loader.timeout_config(
                    aws_config::timeout::TimeoutConfig::builder()
                        .connect_timeout(timeouts.connect)
                        .operation_attempt_timeout(timeouts.request)
                        .build(),
                );
                loader.load().await
            })
            .await
    }

    /// The account of the base credentials (STS `GetCallerIdentity`, asked once per run).
    pub async fn caller_account(&self, defaults: &AwsDefaults) -> Result<String, StoreError> {
        let base = self.base(defaults).await;
        self.caller
            .get_or_try_init(|| async {
                let client = aws_sdk_sts::Client::new(base);
                let out = client.get_caller_identity().send().await.map_err(|e| {
                    sdk_error(&e, "GetCallerIdentity", "the caller", None).into_error("GetCallerIdentity", "the caller")
                })?;
                out.account()
                    .map(str::to_string)
                    .ok_or_else(|| StoreError::invalid("GetCallerIdentity named no account"))
            })
            .await
            .cloned()
    }

    /// The SDK config for `identity`: its region, and the assumed role's credentials.
    pub async fn config(&self, identity: &Identity, defaults: &AwsDefaults) -> SdkConfig {
        let base = self.base(defaults).await;
        let mut roles = self.roles.lock().await;
        if let Some(config) = roles.get(identity) {
            return config.clone();
        }
        let mut builder = base.to_builder();
        if let Some(region) = &identity.region {
            builder = builder.region(Region::new(region.clone()));
        }
        if let Some(role) = &identity.role {
            let mut provider = aws_config::sts::AssumeRoleProvider::builder(role)
                .session_name(&identity.session_name)
                .session_length(Duration::from_secs(u64::from(identity.duration)));
            if let Some(external_id) = &identity.external_id {
                provider = provider.external_id(&external_id.0);
            }
            let provider = provider.configure(base).build().await;
            builder =
                builder.credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(provider));
        }
        let config = builder.build();
        roles.insert(identity.clone(), config.clone());
        config
    }
}

/// An AWS answer that is not a success, as the classifier sees it.
#[derive(Clone, Copy, Debug)]
pub enum Answer<'a> {
    /// The service answered with an error.
    Service {
        /// The HTTP status.
        status: Option<u16>,
        /// The error code (`AccessDeniedException`).
        code: Option<&'a str>,
        /// The service's message.
        message: &'a str,
    },
    /// No answer: the request timed out, could not be sent, or the response was unreadable
    /// (`text` is the error and its causes).
    Transport {
        /// Whether it timed out.
        timeout: bool,
        /// The error and its causes.
        text: &'a str,
    },
    /// The SDK failed before sending (credentials, a bad parameter).
    Local {
        /// The error and its causes.
        text: &'a str,
    },
}

/// What an AWS error means to vss.
#[derive(Debug)]
pub enum Classified {
    /// The resource does not exist ("not there", not a failure, for reads and deletes).
    NotFound,
    /// Secrets Manager: the secret is already scheduled for deletion.
    MarkedDeleted,
    /// Secrets Manager: the secret has replicas, which must go before it can be deleted.
    Replicated,
    /// A failure.
    Error(StoreError),
}

impl Classified {
    /// The failure; "not found" and the Secrets Manager states become an `invalid` error
    /// that says what `action` met.
    pub fn into_error(self, action: &str, resource: &str) -> StoreError {
        match self {
            Classified::Error(error) => error,
            Classified::NotFound => StoreError::not_found(format!("{action} on {resource}: it does not exist")),
            Classified::MarkedDeleted => {
                StoreError::invalid(format!("{action} on {resource}: it is scheduled for deletion"))
            }
            Classified::Replicated => StoreError::invalid(format!("{action} on {resource}: it has replica regions")),
        }
    }
}

/// The one classifier of AWS errors, for every AWS store and for discovery. `action` is the
/// API action (`PutSecretValue`), `resource` what it acted on, `role` the role it ran as.
pub fn classify(answer: Answer<'_>, action: &str, resource: &str, role: Option<&str>) -> Classified {
    let who = role.map(|r| format!(" as {r}")).unwrap_or_default();
    let credentials_hint = "set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role";
    let (status, code, message) = match answer {
        Answer::Service { status, code, message } => (status, code, message),
        Answer::Transport { timeout, text } => {
            let detail = format!("{action} on {resource}{who}: {text}");
            return Classified::Error(if text.contains("AccessDenied") || text.contains("not authorized") {
                StoreError::permission(format!("{action} on {resource}{who}: cannot get credentials: {text}"))
            } else if text.contains("loading credentials") || text.contains("no credentials found in chain") {
                StoreError::permission(format!("{detail} (no usable AWS credentials)")).with_hint(credentials_hint)
            } else if timeout {
                StoreError::new(ErrorKind::Timeout, detail)
            } else {
                StoreError::unavailable(detail)
            });
        }
        Answer::Local { text } => {
            let detail = format!("{action} on {resource}{who}: {text}");
            return Classified::Error(
                if text.contains("loading credentials") || text.contains("no credentials found in chain") {
                    StoreError::permission(format!("{detail} (no usable AWS credentials)")).with_hint(credentials_hint)
                } else if text.contains("AccessDenied") || text.contains("assume") || text.contains("credentials") {
                    StoreError::permission(detail)
                } else {
                    StoreError::invalid(detail)
                },
            );
        }
    };
    if matches!(code, Some("ResourceNotFoundException" | "NoSuchKey" | "NotFound")) || status == Some(404) {
        return Classified::NotFound;
    }
    if code == Some("InvalidRequestException") && message.contains("marked deleted") {
        return Classified::MarkedDeleted;
    }
    if matches!(code, Some("InvalidParameterException" | "InvalidRequestException"))
        && message.contains("replica regions")
    {
        return Classified::Replicated;
    }
    let code_text = code.unwrap_or("error");
    let detail = format!("{action} on {resource}{who}: {code_text}: {}", crate::store::short(message));
    let throttled = matches!(
        code,
        Some(
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "SlowDown"
                | "RequestThrottled"
                | "LimitExceededException"
        )
    );
    let failing =
        matches!(code, Some("ServiceUnavailable" | "InternalServiceError" | "InternalFailure" | "InternalError"));
    let denied = matches!(
        code,
        Some(
            "AccessDenied"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredToken"
                | "ExpiredTokenException"
                | "SignatureDoesNotMatch"
                | "AuthFailure"
        )
    );
    Classified::Error(match (status, code) {
        (_, Some("PreconditionFailed" | "ResourceExistsException")) | (Some(412), _) => {
            StoreError::conflict(format!("{detail} (changed since it was read)"))
        }
        (_, Some("NoSuchBucket")) => StoreError::not_found(detail).with_hint("create the bucket, or fix `bucket`"),
        _ if throttled => StoreError::new(ErrorKind::Quota, detail),
        _ if failing => StoreError::unavailable(detail),
        _ if denied => StoreError::permission(detail),
        (Some(403), _) => StoreError::permission(detail),
        (Some(429), _) => StoreError::new(ErrorKind::Quota, detail),
        (Some(s), _) if s >= 500 => StoreError::unavailable(detail),
        _ => StoreError::invalid(detail),
    })
}

/// Classifies an SDK error with [`classify`].
pub fn sdk_error<E, R>(error: &SdkError<E, R>, action: &str, resource: &str, role: Option<&str>) -> Classified
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let answer = Answer::Service {
                status: service.raw().status_code(),
                code: service.err().code(),
                message: service.err().message().unwrap_or("no message"),
            };
            classify(answer, action, resource, role)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            let text = crate::store::causes(error);
            let timeout = matches!(error, SdkError::TimeoutError(_));
            classify(Answer::Transport { timeout, text: &text }, action, resource, role)
        }
        _ => classify(Answer::Local { text: &crate::store::causes(error) }, action, resource, role),
    }
}

/// The HTTP status of a raw SDK response.
pub trait HttpStatus {
    /// The status code, if there is a response.
    fn status_code(&self) -> Option<u16>;
}

impl HttpStatus for aws_sdk_secretsmanager::config::http::HttpResponse {
    fn status_code(&self) -> Option<u16> {
        Some(self.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Classifies a recorded service answer, expecting a failure.
    fn service(
        status: Option<u16>,
        code: Option<&str>,
        message: &str,
        action: &str,
        resource: &str,
        role: Option<&str>,
    ) -> StoreError {
        match classify(Answer::Service { status, code, message }, action, resource, role) {
            Classified::Error(e) => e,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn throttling_is_retryable_and_denials_name_action_resource_and_role() {
        let e = service(
            Some(400),
            Some("ThrottlingException"),
            "Rate exceeded",
            "ListSecrets",
            "secrets named app/*",
            None,
        );
        assert!(e.is_retryable(), "{e}");
        assert_eq!(e.kind(), ErrorKind::Quota);
        let e = service(
            Some(400),
            Some("AccessDeniedException"),
            "User is not authorized to perform: secretsmanager:PutSecretValue",
            "PutSecretValue",
            "app/db",
            Some("arn:aws:iam::111111111111:role/SecretsSync"),
        );
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert_eq!(
            e.to_string(),
            "permission denied: PutSecretValue on app/db as arn:aws:iam::111111111111:role/SecretsSync: AccessDeniedException: User is not authorized to perform: secretsmanager:PutSecretValue"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn server_errors_are_retryable_and_bad_requests_are_not() {
        assert!(service(Some(500), Some("InternalServiceError"), "x", "A", "r", None).is_retryable());
        assert!(service(Some(503), None, "x", "A", "r", None).is_retryable());
        assert!(service(Some(429), None, "x", "A", "r", None).is_retryable());
        let e = service(Some(400), Some("InvalidParameterException"), "bad name", "CreateSecret", "x", None);
        assert!(e.kind() == ErrorKind::Invalid && !e.is_retryable());
        let e = service(
            Some(412),
            Some("PreconditionFailed"),
            "At least one of the pre-conditions you specified did not hold",
            "PutObject",
            "b/k",
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Conflict);
    }

    // Answers as recorded from moto 5.2 (Secrets Manager and S3).
    #[test]
    fn not_found_deleted_and_replicated_secrets_are_states_not_failures() {
        let answer = |status, code, message| Answer::Service { status: Some(status), code: Some(code), message };
        let not_found = answer(400, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
        assert!(matches!(classify(not_found, "GetSecretValue", "app/db", None), Classified::NotFound));
        assert!(matches!(
            classify(answer(404, "NoSuchKey", "The specified key does not exist."), "GetObject", "s3://b/k", None),
            Classified::NotFound
        ));
        let deleted = answer(
            400,
            "InvalidRequestException",
            "An error occurred (InvalidRequestException) when calling the DeleteSecret operation: You tried to perform the operation on a secret that's currently marked deleted.",
        );
        assert!(matches!(classify(deleted, "DeleteSecret", "app/db", None), Classified::MarkedDeleted));
        let replicated = answer(
            400,
            "InvalidParameterException",
            "You can't delete secret app/db that still has replica regions [us-west-2]",
        );
        assert!(matches!(classify(replicated, "DeleteSecret", "app/db", None), Classified::Replicated));
        let bucket =
            classify(answer(404, "NoSuchBucket", "The specified bucket does not exist"), "PutObject", "s3://b/k", None);
        assert!(matches!(bucket, Classified::NotFound));
    }

    #[test]
    fn missing_credentials_are_a_permission_error_with_a_hint_and_timeouts_are_retried() {
        let text = "dispatch failure: other: no credentials found in chain";
        let Classified::Error(e) = classify(Answer::Local { text }, "ListSecrets", "secrets named app/*", None) else {
            panic!("a failure")
        };
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(e.hint().is_some_and(|h| h.contains("AWS_ACCESS_KEY_ID")), "{e:?}");
        let Classified::Error(e) =
            classify(Answer::Transport { timeout: true, text: "timeout" }, "ListSecrets", "x", None)
        else {
            panic!("a failure")
        };
        assert!(e.kind() == ErrorKind::Timeout && e.is_retryable());
    }
}
