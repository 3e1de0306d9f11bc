//! The `github` store: the Actions, Dependabot and Codespaces secrets of a repository, an
//! Actions environment or an organization, over GitHub's REST API (target only).
//!
//! - **Names**: GitHub holds one string per upper-cased name, so desired secrets are
//!   flattened first ([`crate::flatten`]; `names: key | path_key | path`, `prefix`), and
//!   names are always upper-cased (GitHub compares them without case). Names GitHub would
//!   refuse (`[A-Za-z0-9_]` only, no leading digit, no `GITHUB_` prefix) and names matching
//!   an exclusion pattern (built in: `GITHUB_TOKEN`, `ACTIONS_*`, `RUNNER_*`, `CI`; plus
//!   `exclude:` at the top-level `github:` block and per target) are found when the plan is
//!   made: the first fail the target before any write, the second are reported as
//!   `excluded` and never written nor deleted.
//! - **Writes**: each value is sealed (libsodium sealed box, X25519) to the location's
//!   public key, fetched once per location per run, and sent with its key id. Organization
//!   secrets get their `visibility` and selected repositories (names resolved to ids); a
//!   change of either is a reported (metadata) change.
//! - **The ledger**: GitHub never returns a value, only names and `updated_at`. vss keeps,
//!   per location, an Actions variable (`VSS_LEDGER_ACTIONS`, `_DEPENDABOT` or
//!   `_CODESPACES` on the repository or organization; `VSS_LEDGER` on an environment)
//!   holding, per name it wrote, the keyed fingerprint of the value (`VSS_FINGERPRINT_KEY`),
//!   the `updated_at` GitHub gave the secret after the write, and the target. A name in
//!   the ledger reads as that fingerprint, or as overwritten (drift) when GitHub's
//!   `updated_at` is newer; a name not in the ledger reads as present with an unknown
//!   value (`unverified`, never written on a guess, never deleted). The ledger never holds
//!   a value, is written once per target after its writes, and records only the writes
//!   that succeeded. Without `VSS_FINGERPRINT_KEY` nothing can be verified: existing
//!   secrets are `unverified`, and the ledger is left as it is.
//! - **Rate limits**: every answer's `x-ratelimit-remaining`/`-reset` is kept; a call that
//!   would leave fewer than `rate_limit_reserve` (default 100) fails with a `quota` error
//!   that is not retried; a secondary limit (403/429 with `retry-after`) is waited out by
//!   the one retry wrapper. Writes with one token are spaced `write_interval_ms` apart
//!   (default 1000, GitHub's guidance for content-creating requests); reads run
//!   concurrently.

pub mod environment;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::error::ErrorKind;
use crate::flatten::{FlattenOptions, Naming};
use crate::secret::{Fingerprinter, LiveSecret, LiveValue, SecretPath, SecretValue, Sensitive};
use crate::span::{Span, Spanned};
use crate::store::quota::QuotaPool;
use crate::store::stats::{Call, CallCounter};
use crate::time::{now, unix_of};
use crate::store::{Bundle, Capabilities, OpenContext, Role, Roles, Store, StoreError, StoreKind, ValueShape};

/// GitHub's API, unless `api_url` or `GITHUB_API_URL` says otherwise.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// The largest secret value GitHub accepts (48 KB).
pub const MAX_VALUE_BYTES: usize = 48 * 1024;
/// The largest Actions variable value GitHub accepts, which bounds the ledger (48 KB).
pub const MAX_LEDGER_BYTES: usize = 48 * 1024;
/// Names that are never written, whatever the config says: GitHub's own.
pub const BUILT_IN_EXCLUSIONS: &[&str] = &["^GITHUB_TOKEN$", "^ACTIONS_", "^RUNNER_", "^CI$"];

/// The top-level `github:` block: how every `github` location is reached.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubDefaults {
    /// The REST API's base URL (default `https://api.github.com`, or `GITHUB_API_URL`);
    /// for GitHub Enterprise Server, `https://HOST/api/v3`.
    pub api_url: Option<String>,
    /// The login; without it, `GITHUB_TOKEN`, then `GH_TOKEN`.
    pub auth: Option<GithubAuth>,
    /// Regular expressions: a name any of them matches is never written nor deleted.
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    /// Milliseconds between two writes with one token (default 1000).
    pub write_interval_ms: Option<u64>,
    /// API calls kept in reserve: a call that would leave fewer fails with a `quota`
    /// error instead (default 100).
    pub rate_limit_reserve: Option<u64>,
}

/// How vss logs in to GitHub.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum GithubAuth {
    /// A token (personal, fine-grained, or a workflow's `GITHUB_TOKEN`).
    Token(#[schemars(with = "String")] Sensitive),
    /// A GitHub App installation: vss signs a JWT (RS256) with the App's private key and
    /// exchanges it for an installation token, renewed before it expires.
    App {
        /// The App's id (its client id works too).
        app_id: String,
        /// The installation's id (in the organization or account that installed it).
        installation_id: u64,
        /// The App's private key (PEM, PKCS#1 or PKCS#8), relative to the config file.
        private_key_file: String,
    },
}

/// Which secrets of a repository or organization.
#[derive(Clone, Copy, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Actions secrets (the default).
    #[default]
    Actions,
    /// Dependabot secrets.
    Dependabot,
    /// Codespaces secrets.
    Codespaces,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Actions => "actions",
            Scope::Dependabot => "dependabot",
            Scope::Codespaces => "codespaces",
        }
    }
}

/// Which repositories of an organization see an organization secret.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Every repository.
    All,
    /// Private and internal repositories.
    Private,
    /// Only `selected_repositories`.
    Selected,
}

impl Visibility {
    fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Private => "private",
            Visibility::Selected => "selected",
        }
    }
}

/// `github:` options of a target.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// A repository, `owner/name` (exactly one of `repo` and `org`).
    pub repo: Option<Spanned<String>>,
    /// An organization.
    pub org: Option<Spanned<String>>,
    /// An Actions environment of `repo` (scope `actions` only): its name, or a block that
    /// declares the environment too (`name`, `wait_timer`, `prevent_self_review`,
    /// `reviewers`, `deployment_branches`), which vss then creates and keeps as declared.
    pub environment: Option<Spanned<environment::Environment>>,
    /// `actions` (default), `dependabot` or `codespaces`.
    #[serde(default)]
    pub scope: Scope,
    /// Organization secrets: which repositories see them (default `private`).
    pub visibility: Option<Visibility>,
    /// Organization secrets with `visibility: selected`: repository names.
    pub selected_repositories: Option<Vec<Spanned<String>>>,
    /// How names are made: `key` (default), `path_key` or `path`.
    #[serde(default)]
    pub names: Naming,
    /// Prepended to every name.
    #[serde(default)]
    pub prefix: String,
    /// Upper-case every name: GitHub does, so names always are (`false` is an error).
    pub uppercase: Option<bool>,
    /// Regular expressions: a name any of them matches is never written nor deleted
    /// (added to the top-level `exclude`).
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
}

impl GithubConfig {
    /// The API path of the location (`/repos/o/r`, `/repos/o/r/environments/e`, `/orgs/o`).
    fn base(&self) -> String {
        match (&self.repo, &self.org, &self.environment) {
            (Some(repo), _, Some(env)) => format!("/repos/{}/environments/{}", repo.value, encode(env.value.name())),
            (Some(repo), _, None) => format!("/repos/{}", repo.value),
            (None, Some(org), _) => format!("/orgs/{}", org.value),
            (None, None, _) => String::new(),
        }
    }

    /// Where its secrets are.
    fn secrets_path(&self) -> String {
        match &self.environment {
            Some(_) => format!("{}/secrets", self.base()),
            None => format!("{}/{}/secrets", self.base(), self.scope.as_str()),
        }
    }

    /// Where its ledger variable is, and its name.
    fn ledger(&self) -> (String, String) {
        match (&self.environment, &self.repo, &self.org) {
            (Some(_), _, _) => (format!("{}/variables", self.base()), "VSS_LEDGER".into()),
            (None, Some(repo), _) => (
                format!("/repos/{}/actions/variables", repo.value),
                format!("VSS_LEDGER_{}", self.scope.as_str().to_uppercase()),
            ),
            (None, None, Some(org)) => (
                format!("/orgs/{}/actions/variables", org.value),
                format!("VSS_LEDGER_{}", self.scope.as_str().to_uppercase()),
            ),
            (None, None, None) => (String::new(), String::new()),
        }
    }

    fn flattening(&self) -> FlattenOptions {
        FlattenOptions { naming: self.names, prefix: self.prefix.clone(), uppercase: true, keep: "" }
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Why GitHub would refuse a secret name, if it would (its documented naming rules).
pub fn name_rule(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a name cannot be empty")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Some("GitHub allows only letters, digits and `_` in names")
    } else if name.as_bytes()[0].is_ascii_digit() {
        Some("GitHub names cannot start with a digit")
    } else if name.to_ascii_uppercase().starts_with("GITHUB_") {
        Some("GitHub reserves names starting with `GITHUB_`")
    } else {
        None
    }
}

/// One entry of the ledger: what vss wrote under a name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
struct Entry {
    /// The keyed fingerprint of the value written.
    fp: String,
    /// GitHub's `updated_at` of the secret after the write.
    at: String,
    /// The target that wrote it.
    target: String,
}

/// The ledger variable's value.
#[derive(Debug, Default, serde::Serialize, Deserialize)]
struct Ledger {
    /// Its format's version.
    vss: u32,
    /// Name -> entry.
    secrets: BTreeMap<String, Entry>,
}

/// A listed secret.
#[derive(Clone, Debug)]
struct Listed {
    updated_at: String,
    visibility: Option<String>,
}

/// What one location knows during a run.
#[derive(Debug, Default)]
struct State {
    /// Secrets as last listed.
    listed: BTreeMap<String, Listed>,
    /// The ledger as read (`None` until read; an empty one when the variable is missing).
    ledger: Option<Ledger>,
    /// Names written in this run, with their fingerprint and target.
    written: BTreeMap<String, (String, String)>,
    /// Names deleted in this run.
    deleted: BTreeSet<String>,
    /// A declared environment: its settings as declared (reviewers resolved), and whether
    /// it exists (`None` until checked).
    environment: Option<(environment::Settings, bool)>,
}

/// The `github` store at one location.
pub struct GithubStore {
    client: Arc<GithubClient>,
    config: GithubConfig,
    exclude: Vec<(String, regex::Regex)>,
    fingerprints: Option<Fingerprinter>,
    selected_ids: Option<Vec<u64>>,
    key: tokio::sync::OnceCell<(String, crypto_box::PublicKey)>,
    state: Mutex<State>,
}

impl std::fmt::Debug for GithubStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubStore").field("location", &GithubStore::describe(&self.config)).finish_non_exhaustive()
    }
}

/// Every exclusion pattern of a location: the built-in ones, the top-level ones, its own.
fn exclusions(config: &GithubConfig, defaults: &GithubDefaults) -> Result<Vec<(String, regex::Regex)>, String> {
    let written = defaults.exclude.iter().chain(&config.exclude).map(|p| p.value.as_str());
    BUILT_IN_EXCLUSIONS
        .iter()
        .copied()
        .chain(written)
        .map(|pattern| {
            regex::Regex::new(pattern)
                .map(|re| (pattern.to_string(), re))
                .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))
        })
        .collect()
}

fn check_patterns(patterns: &[Spanned<String>], out: &mut Vec<Diagnostic>) {
    for pattern in patterns {
        if let Err(e) = regex::Regex::new(&pattern.value) {
            let first = e.to_string().lines().last().unwrap_or_default().trim().trim_start_matches("error: ").to_string();
            out.push(Diagnostic::at(pattern.span, "not a regular expression").with_label(first));
        }
    }
}

impl StoreKind for GithubStore {
    const NAME: &'static str = "github";
    const CAPABILITIES: Capabilities = Capabilities {
        // As a source it lists names only: `validate` checks it, nothing can import it.
        roles: Roles { source: true, merge_store: false, target: true },
        reads_values: false,
        value_shape: ValueShape::FlatStrings,
        min_value_bytes: 1,
        max_value_bytes: Some(MAX_VALUE_BYTES),
        exact_numbers: true,
        ownership: true,
        atomic_commit: false,
    };
    const DEFAULTS_KEY: Option<&'static str> = Some("github");

    type Config = GithubConfig;
    type Defaults = GithubDefaults;
    type Session = GithubSessions;

    fn describe(config: &GithubConfig) -> String {
        match (&config.repo, &config.org, &config.environment) {
            (Some(repo), _, Some(env)) => format!("github {} environment {}", repo.value, env.value.name()),
            (Some(repo), _, None) => format!("github {} ({})", repo.value, config.scope.as_str()),
            (None, Some(org), _) => format!("github org {} ({})", org.value, config.scope.as_str()),
            (None, None, _) => "github (no location)".into(),
        }
    }

    fn retarget(config: &GithubConfig, repository: &str) -> Option<GithubConfig> {
        let repo = config.repo.as_ref()?;
        Some(GithubConfig { repo: Some(Spanned { span: repo.span, value: repository.to_string() }), ..config.clone() })
    }

    fn locus(config: &GithubConfig, defaults: &GithubDefaults, _: &std::path::Path) -> Option<crate::store::Locus> {
        // One scope of one place holds one ledger: two targets there would each record
        // (and delete by) their own, so any two overlap, whatever their name prefixes.
        let scope = Self::scope(config)?;
        let api = defaults.api_url.as_deref().unwrap_or("https://api.github.com");
        Some(crate::store::Locus::prefix(format!("{} {} at {api}", scope.place.to_ascii_lowercase(), scope.name), ""))
    }

    fn scope(config: &GithubConfig) -> Option<crate::store::Scope> {
        let place = match (&config.repo, &config.org) {
            (Some(repo), _) => format!("github {}", repo.value),
            (None, Some(org)) => format!("github org {}", org.value),
            (None, None) => return None,
        };
        let name = match &config.environment {
            Some(env) => format!("environment {}", env.value.name()),
            None => config.scope.as_str().to_string(),
        };
        Some(crate::store::Scope { place, name })
    }

    fn check(config: &GithubConfig, _: Role, _: &GithubDefaults, span: Span, out: &mut Vec<Diagnostic>) {
        match (&config.repo, &config.org) {
            (Some(_), Some(org)) => out.push(
                Diagnostic::at(org.span, "`repo` and `org` exclude each other")
                    .with_label("a `github` destination is one repository or one organization"),
            ),
            (None, None) => out.push(
                Diagnostic::at(span, "a `github` destination needs `repo: owner/name` or `org: name`")
                    .with_label("write `repo:` or `org:`"),
            ),
            (Some(repo), None) => {
                if !crate::store::is_repository(&repo.value) {
                    out.push(Diagnostic::at(repo.span, "`repo` is `owner/name`").with_label("e.g. `acme/app`"));
                }
                if let Some(visibility) = &config.selected_repositories {
                    let at = visibility.first().map_or(span, |r| r.span);
                    out.push(Diagnostic::at(at, "`selected_repositories` is for organization secrets (`org:`)"));
                } else if config.visibility.is_some() {
                    out.push(Diagnostic::at(span, "`visibility` is for organization secrets (`org:`)"));
                }
            }
            (None, Some(org)) => {
                if org.value.is_empty() || !org.value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    out.push(Diagnostic::at(org.span, "`org` is an organization's login, e.g. `acme`"));
                }
                if let Some(env) = &config.environment {
                    out.push(Diagnostic::at(env.span, "`environment` needs `repo:`: environments belong to repositories"));
                }
                match (config.visibility, &config.selected_repositories) {
                    (Some(Visibility::Selected), None) => out.push(
                        Diagnostic::at(span, "`visibility: selected` needs `selected_repositories`")
                            .with_label("list the repositories that see these secrets"),
                    ),
                    (Some(Visibility::All | Visibility::Private) | None, Some(repos)) => out.push(
                        Diagnostic::at(repos.first().map_or(span, |r| r.span), "`selected_repositories` needs `visibility: selected`"),
                    ),
                    _ => {}
                }
                for repo in config.selected_repositories.iter().flatten() {
                    if repo.value.is_empty() || repo.value.contains('/') {
                        out.push(
                            Diagnostic::at(repo.span, "a selected repository is a name in the organization")
                                .with_label("write `app`, not `acme/app`"),
                        );
                    }
                }
            }
        }
        if let (Some(env), true) = (&config.environment, config.scope != Scope::Actions) {
            out.push(
                Diagnostic::at(env.span, "`environment` is for Actions secrets")
                    .with_label(format!("environments have no {} secrets", config.scope.as_str())),
            );
        }
        match config.environment.as_ref().map(|e| (e.span, &e.value)) {
            Some((at, environment::Environment::Name(name))) if name.trim().is_empty() => {
                out.push(Diagnostic::at(at, "`environment` is empty"));
            }
            Some((_, environment::Environment::Managed(managed))) => environment::check(managed, out),
            _ => {}
        }
        if !config.prefix.is_empty() && name_rule(&config.prefix.to_ascii_uppercase()).is_some() {
            let why = if config.prefix.as_bytes()[0].is_ascii_digit() {
                "GitHub names cannot start with a digit"
            } else {
                name_rule(&format!("A{}", config.prefix.to_ascii_uppercase())).unwrap_or("GitHub reserves `GITHUB_`")
            };
            out.push(Diagnostic::at(span, format!("`prefix` `{}` cannot start a GitHub name: {why}", config.prefix)));
        }
        if config.uppercase == Some(false) {
            out.push(
                Diagnostic::at(span, "`uppercase: false` cannot be honoured: GitHub upper-cases secret names")
                    .with_label("remove it: names are always upper-cased"),
            );
        }
        check_patterns(&config.exclude, out);
    }

    fn check_defaults(defaults: &GithubDefaults, out: &mut Vec<Diagnostic>) {
        check_patterns(&defaults.exclude, out);
    }

    async fn open(config: &GithubConfig, ctx: &OpenContext<'_>, _: Option<&Bundle<'_>>) -> Result<Self, StoreError> {
        let defaults = ctx.defaults::<Self>();
        let client = ctx.session::<Self>().client(defaults, ctx.base_dir, ctx.calls::<Self>())?;
        let exclude = exclusions(config, defaults).map_err(StoreError::invalid)?;
        let selected_ids = match (&config.org, &config.selected_repositories) {
            (Some(org), Some(repos)) => {
                let mut ids = Vec::with_capacity(repos.len());
                for repo in repos {
                    let answer = client.call(reqwest::Method::GET, &format!("/repos/{}/{}", org.value, repo.value), None, Call::Read).await?;
                    let id = answer.json.get("id").and_then(Value::as_u64).ok_or_else(|| {
                        StoreError::invalid(format!("GitHub returned no id for repository {}/{}", org.value, repo.value))
                    })?;
                    ids.push(id);
                }
                ids.sort_unstable();
                Some(ids)
            }
            _ => None,
        };
        Ok(GithubStore {
            client,
            config: config.clone(),
            exclude,
            fingerprints: ctx.fingerprints.cloned(),
            selected_ids,
            key: tokio::sync::OnceCell::new(),
            state: Mutex::new(State::default()),
        })
    }
}

impl GithubStore {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every secret of the location, page by page (100 a page, following `Link`); none
    /// in a declared environment that does not exist yet.
    async fn list_all(&self, spend: Spend) -> Result<BTreeMap<String, Listed>, StoreError> {
        let mut found = BTreeMap::new();
        if matches!(self.state().environment, Some((_, false))) {
            return Ok(found);
        }
        let mut next = Some(format!("{}?per_page=100", self.config.secrets_path()));
        while let Some(path) = next {
            let answer = self.client.send(reqwest::Method::GET, &path, None, Call::List, spend).await?;
            let secrets = answer.json.get("secrets").and_then(Value::as_array).ok_or_else(|| {
                StoreError::invalid(format!("GitHub's list of secrets at {} has no `secrets`", self.config.secrets_path()))
            })?;
            for secret in secrets {
                let (Some(name), Some(updated_at)) =
                    (secret.get("name").and_then(Value::as_str), secret.get("updated_at").and_then(Value::as_str))
                else {
                    continue;
                };
                let visibility = secret.get("visibility").and_then(Value::as_str).map(str::to_string);
                found.insert(name.to_ascii_uppercase(), Listed { updated_at: updated_at.to_string(), visibility });
            }
            next = answer.next.map(|url| self.client.relative(&url));
        }
        Ok(found)
    }

    /// The ledger variable, or an empty ledger when there is none.
    async fn read_ledger(&self, spend: Spend) -> Result<(Ledger, bool), StoreError> {
        let (variables, name) = self.config.ledger();
        let path = format!("{variables}/{name}");
        let answer = self.client.send_allow_404(reqwest::Method::GET, &path, None, Call::Read, spend).await?;
        let Some(answer) = answer else {
            return Ok((Ledger { vss: 1, ..Ledger::default() }, false));
        };
        let text = answer.json.get("value").and_then(Value::as_str).unwrap_or_default();
        let ledger = serde_json::from_str::<Ledger>(text).map_err(|_| {
            StoreError::invalid(format!("the ledger variable {name} at {variables} is not vss's"))
                .with_hint(format!("delete the variable {name}, or rename it if it is not vss's"))
        })?;
        Ok((ledger, true))
    }

    /// The selected repository ids of an organization secret.
    async fn selected_of(&self, name: &str) -> Result<Vec<u64>, StoreError> {
        let mut ids = Vec::new();
        let mut next = Some(format!("{}/{name}/repositories?per_page=100", self.config.secrets_path()));
        while let Some(path) = next {
            let answer = self.client.call(reqwest::Method::GET, &path, None, Call::Read).await?;
            for repo in answer.json.get("repositories").and_then(Value::as_array).into_iter().flatten() {
                ids.extend(repo.get("id").and_then(Value::as_u64));
            }
            next = answer.next.map(|url| self.client.relative(&url));
        }
        ids.sort_unstable();
        Ok(ids)
    }

    /// The location's public key, fetched once.
    async fn public_key(&self) -> Result<&(String, crypto_box::PublicKey), StoreError> {
        self.key
            .get_or_try_init(|| async {
                let path = format!("{}/public-key", self.config.secrets_path());
                let answer = self.client.call(reqwest::Method::GET, &path, None, Call::Read).await?;
                let bad = || StoreError::invalid(format!("GitHub's public key at {path} is not an X25519 key"));
                let key_id = answer.json.get("key_id").and_then(Value::as_str).ok_or_else(bad)?.to_string();
                let key = answer.json.get("key").and_then(Value::as_str).ok_or_else(bad)?;
                let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
                    .decode(key)
                    .ok()
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(bad)?;
                Ok((key_id, crypto_box::PublicKey::from(bytes)))
            })
            .await
    }

    /// The `owner` recorded for a name, and what its value reads as.
    fn live(&self, name: &str, listed: &Listed, ledger: &Ledger) -> (Option<String>, LiveValue) {
        let Some(entry) = ledger.secrets.get(name) else {
            return (None, LiveValue::Unreadable { version: Some(listed.updated_at.clone()) });
        };
        let owner = Some(entry.target.clone());
        if self.fingerprints.is_none() {
            return (owner, LiveValue::Unreadable { version: Some(listed.updated_at.clone()) });
        }
        // Both are GitHub's ISO 8601 UTC timestamps, which order as text.
        if listed.updated_at > entry.at {
            (owner, LiveValue::Overwritten)
        } else {
            (owner, LiveValue::Fingerprint(entry.fp.clone()))
        }
    }
}

impl GithubStore {
    /// The names of the location's secrets, freshly listed.
    pub async fn names(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(self.list_all(Spend::AboveReserve).await?.into_keys().collect())
    }

    /// Sends a `repository_dispatch` of `event_type` with `payload` to `repo` (`owner/name`).
    pub async fn dispatch(&self, repo: &str, event_type: &str, payload: Value) -> Result<(), StoreError> {
        let body = json!({"event_type": event_type, "client_payload": payload});
        self.client.call(reqwest::Method::POST, &format!("/repos/{repo}/dispatches"), Some(&body), Call::Write).await?;
        Ok(())
    }
}

impl Store for GithubStore {
    async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        let listed = self.list_all(Spend::AboveReserve).await?;
        let (ledger, _) = self.read_ledger(Spend::AboveReserve).await?;
        let paths = listed.keys().filter_map(|name| SecretPath::parse(name).ok()).collect();
        let mut state = self.state();
        state.listed = listed;
        state.ledger = Some(ledger);
        Ok(paths)
    }

    async fn read(&self, path: &SecretPath) -> Result<Option<LiveSecret>, StoreError> {
        if self.state().ledger.is_none() {
            self.list().await?;
        }
        let name = path.as_str().to_ascii_uppercase();
        let (listed, owner, value) = {
            let state = self.state();
            let Some(listed) = state.listed.get(&name).cloned() else {
                return Ok(None);
            };
            let (owner, value) = self.live(&name, &listed, state.ledger.as_ref().expect("read after list"));
            (listed, owner, value)
        };
        // An organization secret vss owns: are its visibility and repositories as asked?
        let mut drift = false;
        if self.config.org.is_some() && owner.is_some() {
            let wanted = self.config.visibility.unwrap_or(Visibility::Private).as_str();
            drift = listed.visibility.as_deref() != Some(wanted);
            if !drift && let Some(ids) = &self.selected_ids {
                drift = self.selected_of(&name).await? != *ids;
            }
        }
        Ok(Some(LiveSecret { value, owner, drift, version: Some(listed.updated_at) }))
    }

    async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        let name = path.as_str().to_ascii_uppercase();
        let Value::String(text) = value.expose() else {
            return Err(StoreError::invalid(format!("`{name}` is not a string (GitHub holds one string per name)")));
        };
        let (key_id, key) = self.public_key().await?;
        let sealed = key
            .seal(&mut crypto_box::aead::OsRng, text.as_bytes())
            .map_err(|_| StoreError::new(ErrorKind::Internal, "cannot seal a value to GitHub's public key"))?;
        let mut body = json!({
            "encrypted_value": base64::engine::general_purpose::STANDARD.encode(sealed),
            "key_id": key_id,
        });
        if self.config.org.is_some() {
            body["visibility"] = json!(self.config.visibility.unwrap_or(Visibility::Private).as_str());
            if let Some(ids) = &self.selected_ids {
                body["selected_repository_ids"] = json!(ids);
            }
        }
        let path = format!("{}/{name}", self.config.secrets_path());
        self.client.call(reqwest::Method::PUT, &path, Some(&body), Call::Write).await?;
        let fingerprint = self.fingerprints.as_ref().map(|f| f.fingerprint_secret(value)).unwrap_or_default();
        let mut state = self.state();
        state.deleted.remove(&name);
        state.written.insert(name, (fingerprint, owner.to_string()));
        Ok(())
    }

    async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        let name = path.as_str().to_ascii_uppercase();
        let api = format!("{}/{name}", self.config.secrets_path());
        self.client.send_allow_404(reqwest::Method::DELETE, &api, None, Call::Delete, Spend::AboveReserve).await?;
        let mut state = self.state();
        state.written.remove(&name);
        state.listed.remove(&name);
        state.deleted.insert(name);
        Ok(())
    }

    fn flattening(&self) -> Option<FlattenOptions> {
        Some(self.config.flattening())
    }

    async fn settings(&self) -> Result<Option<crate::diff::SettingsChange>, StoreError> {
        let (Some(repo), Some(managed)) =
            (&self.config.repo, self.config.environment.as_ref().and_then(|e| e.value.managed()))
        else {
            return Ok(None);
        };
        let owner = repo.value.split('/').next().unwrap_or_default();
        let wanted = environment::resolve(&self.client, owner, managed).await?;
        let live = environment::read(&self.client, &repo.value, &managed.name.value).await?;
        let (kind, fields) = match &live {
            None => (crate::diff::ChangeKind::Added, wanted.declared()),
            Some(live) => (crate::diff::ChangeKind::Modified, live.differences(&wanted)),
        };
        let exists = live.is_some();
        self.state().environment = Some((wanted, exists));
        Ok((!exists || !fields.is_empty()).then(|| crate::diff::SettingsChange {
            subject: format!("environment {}", managed.name.value),
            kind,
            fields,
            status: crate::diff::ChangeStatus::Planned,
            error: None,
        }))
    }

    async fn apply_settings(&self) -> Result<(), StoreError> {
        let (Some(repo), Some(name)) = (&self.config.repo, &self.config.environment) else {
            return Ok(());
        };
        let Some((wanted, _)) = self.state().environment.clone() else {
            return Ok(());
        };
        environment::apply(&self.client, &repo.value, name.value.name(), &wanted).await?;
        self.state().environment = Some((wanted, true));
        Ok(())
    }

    fn excluded(&self, name: &SecretPath) -> Option<String> {
        let name = name.as_str().to_ascii_uppercase();
        self.exclude.iter().find(|(_, re)| re.is_match(&name)).map(|(pattern, _)| pattern.clone())
    }

    fn name_error(&self, name: &SecretPath) -> Option<String> {
        name_rule(name.as_str()).map(str::to_string)
    }

    fn fingerprints(&self) -> Option<&Fingerprinter> {
        self.fingerprints.as_ref()
    }

    fn unverified_hint(&self) -> Option<String> {
        Some(match self.fingerprints {
            None => "GitHub returns no values, and without VSS_FINGERPRINT_KEY vss cannot verify them: set it \
                     (the same secret in every run) so that the ledger of what vss wrote can be checked"
                .to_string(),
            Some(_) => "GitHub returns no values, and vss's ledger does not list these secrets (vss did not \
                        write them): they are left alone"
                .to_string(),
        })
    }

    fn quota(&self) -> Option<&Arc<QuotaPool>> {
        Some(&self.client.quota)
    }

    fn calls_for(&self, changes: usize) -> usize {
        // The writes, the public key, and recording them (a list and the ledger's write).
        changes.saturating_add(4)
    }

    async fn finish(&self) -> Result<(), StoreError> {
        let (written, deleted) = {
            let state = self.state();
            (state.written.clone(), state.deleted.clone())
        };
        if written.is_empty() && deleted.is_empty() {
            return Ok(());
        }
        if self.fingerprints.is_none() {
            tracing::warn!(
                location = %GithubStore::describe(&self.config),
                "VSS_FINGERPRINT_KEY is not set: the writes are not recorded, and the next run cannot verify them"
            );
            return Ok(());
        }
        // GitHub's `updated_at` after our writes, and the ledger as it is now.
        let listed = self.list_all(Spend::Reserve).await?;
        let (mut ledger, exists) = self.read_ledger(Spend::Reserve).await?;
        for name in &deleted {
            ledger.secrets.remove(name);
        }
        for (name, (fp, target)) in written {
            if let Some(listed) = listed.get(&name) {
                ledger.secrets.insert(name, Entry { fp, at: listed.updated_at.clone(), target });
            }
        }
        ledger.vss = 1;
        let value = serde_json::to_string(&ledger).expect("the ledger serializes");
        let (variables, name) = self.config.ledger();
        if value.len() > MAX_LEDGER_BYTES {
            return Err(StoreError::invalid(format!(
                "the ledger of {} would be {} bytes, over GitHub's limit of {MAX_LEDGER_BYTES} for a variable",
                GithubStore::describe(&self.config),
                value.len()
            ))
            .with_hint("split the secrets over several targets, or use a shorter `prefix`"));
        }
        let mut body = json!({"name": name, "value": value});
        if self.config.org.is_some() {
            body["visibility"] = json!("selected");
        }
        if exists {
            let path = format!("{variables}/{name}");
            self.client.send(reqwest::Method::PATCH, &path, Some(&body), Call::Write, Spend::Reserve).await?;
        } else {
            self.client.send(reqwest::Method::POST, &variables, Some(&body), Call::Write, Spend::Reserve).await?;
        }
        let mut state = self.state();
        state.written.clear();
        state.deleted.clear();
        state.listed = listed;
        state.ledger = Some(ledger);
        Ok(())
    }
}

/// The run's GitHub connections, one per API URL and login: writes with one token are
/// paced, and its rate limit is tracked, across every location that uses it.
#[derive(Default)]
pub struct GithubSessions {
    /// (API URL, login identity: it holds the token) -> client.
    clients: Mutex<HashMap<(String, String), Arc<GithubClient>>>,
}

impl std::fmt::Debug for GithubSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.clients.lock().map(|c| c.len()).unwrap_or(0);
        write!(f, "GithubSessions({n} logins)")
    }
}

impl GithubSessions {
    /// The client of the API URL and login the defaults (or the environment) name;
    /// `base_dir` resolves an App's key file.
    pub fn client(
        &self,
        defaults: &GithubDefaults,
        base_dir: &std::path::Path,
        calls: Arc<CallCounter>,
    ) -> Result<Arc<GithubClient>, StoreError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let api_url = defaults
            .api_url
            .clone()
            .or_else(|| env("GITHUB_API_URL"))
            .unwrap_or_else(|| DEFAULT_API_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        let (identity, login) = match &defaults.auth {
            Some(GithubAuth::Token(token)) => (format!("token:{}", token.0), Login::Token(token.clone())),
            Some(GithubAuth::App { app_id, installation_id, private_key_file }) => {
                let path = base_dir.join(private_key_file);
                let key = app_key(&path)?;
                let login = Login::App { app_id: app_id.clone(), installation_id: *installation_id, key: Arc::new(key) };
                (format!("app:{app_id}:{installation_id}:{}", path.display()), login)
            }
            None => {
                let token = env("GITHUB_TOKEN").or_else(|| env("GH_TOKEN")).ok_or_else(|| {
                    StoreError::permission(format!("no GitHub token for {api_url}"))
                        .with_hint("set `github.auth`, GITHUB_TOKEN or GH_TOKEN")
                })?;
                (format!("token:{token}"), Login::Token(Sensitive(token)))
            }
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let key = (api_url.clone(), identity);
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(crate::store::timeouts().connect)
            .timeout(crate::store::timeouts().request)
            .user_agent(concat!("vss/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| StoreError::invalid(format!("cannot set up HTTPS for GitHub at {api_url}: {e}")))?;
        let client = Arc::new(GithubClient {
            http,
            api_url,
            login,
            installation_token: tokio::sync::Mutex::new(None),
            calls,
            write_interval: Duration::from_millis(defaults.write_interval_ms.unwrap_or(1000)),
            last_write: tokio::sync::Mutex::new(None),
            quota: Arc::new(QuotaPool::new(
                format!("GitHub API rate limit at {}", key.0),
                i64::try_from(defaults.rate_limit_reserve.unwrap_or(100)).unwrap_or(i64::MAX),
                "run again after the reset, or lower `github.rate_limit_reserve`",
            )),
        });
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// Reads a GitHub App's private key (PEM: PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`).
fn app_key(path: &std::path::Path) -> Result<aws_lc_rs::signature::RsaKeyPair, StoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StoreError::io(format!("cannot read the GitHub App key {}", path.display()), e))?;
    let invalid = || StoreError::invalid(format!("{} is not an RSA private key in PEM", path.display()));
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).map_err(|_| invalid())?;
    aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
        .or_else(|_| aws_lc_rs::signature::RsaKeyPair::from_der(&der))
        .map_err(|_| invalid())
}

/// How a client logs in.
enum Login {
    /// A token, as given.
    Token(Sensitive),
    /// A GitHub App installation.
    App { app_id: String, installation_id: u64, key: Arc<aws_lc_rs::signature::RsaKeyPair> },
}

/// A GitHub App JWT: RS256, issued a minute in the past (clock drift), valid 9 minutes.
fn app_jwt(app_id: &str, key: &aws_lc_rs::signature::RsaKeyPair, now: i64) -> Result<String, StoreError> {
    let url = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let header = url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = url(json!({"iat": now - 60, "exp": now + 540, "iss": app_id}).to_string().as_bytes());
    let signing_input = format!("{header}.{claims}");
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| StoreError::new(ErrorKind::Internal, "cannot sign the GitHub App JWT"))?;
    Ok(format!("{signing_input}.{}", url(&signature)))
}

/// One GitHub login: the HTTP client, the write pace and the rate limit seen so far.
pub struct GithubClient {
    http: reqwest::Client,
    api_url: String,
    login: Login,
    /// An App's installation token and when it expires (Unix seconds).
    installation_token: tokio::sync::Mutex<Option<(Sensitive, i64)>>,
    calls: Arc<CallCounter>,
    write_interval: Duration,
    last_write: tokio::sync::Mutex<Option<tokio::time::Instant>>,
    /// The primary rate limit as the last answer gave it, and the reserve.
    quota: Arc<QuotaPool>,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient").field("api_url", &self.api_url).finish_non_exhaustive()
    }
}

/// Whether a call may use the reserve of the rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Spend {
    /// Ordinary calls stop at the reserve.
    AboveReserve,
    /// Recording what was written (the ledger) may use it: a write that happened must be
    /// recorded, or the next run could not verify it.
    Reserve,
}

/// A successful answer: its JSON body (`null` when empty) and the `Link` header's next page.
struct Answer {
    json: Value,
    next: Option<String>,
}

impl GithubClient {
    /// The API path of a full URL from a `Link` header.
    fn relative(&self, url: &str) -> String {
        url.strip_prefix(&self.api_url).unwrap_or(url).to_string()
    }

    /// The token to send: the configured one, or an App installation token, exchanged
    /// for a fresh one when it has less than five minutes left.
    async fn bearer(&self) -> Result<String, StoreError> {
        let (app_id, installation_id, key) = match &self.login {
            Login::Token(token) => return Ok(token.0.clone()),
            Login::App { app_id, installation_id, key } => (app_id, installation_id, key),
        };
        let mut cached = self.installation_token.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && expires - now() > 300
        {
            return Ok(token.0.clone());
        }
        let jwt = app_jwt(app_id, key, now())?;
        let path = format!("/app/installations/{installation_id}/access_tokens");
        let what = format!("POST {path}");
        self.calls.count(Call::Read);
        let response = self
            .http
            .post(format!("{}{path}", self.api_url))
            .bearer_auth(&jwt)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .await
            .map_err(|e| StoreError::unavailable(format!("cannot reach GitHub at {}: {}", self.api_url, e.without_url())))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        if status != 201 {
            let error = classify(status, &text, &RateHeaders::default(), &what, &self.api_url, &self.quota);
            return Err(if status == 401 || status == 404 {
                StoreError::permission(format!("GitHub App {app_id} cannot log in to installation {installation_id}: {error}"))
                    .with_hint("check `app_id`, `installation_id` and that the key is the App's current private key")
            } else {
                error
            });
        }
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let token = answer.get("token").and_then(Value::as_str).ok_or_else(|| {
            StoreError::invalid(format!("GitHub's answer to {what} has no token"))
        })?;
        // An hour, unless GitHub says otherwise.
        let expires = answer.get("expires_at").and_then(Value::as_str).and_then(unix_of).unwrap_or(now() + 3600);
        *cached = Some((Sensitive(token.to_string()), expires));
        Ok(token.to_string())
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        call: Call,
    ) -> Result<Answer, StoreError> {
        self.send(method, path, body, call, Spend::AboveReserve).await
    }

    /// One call, `Spend` deciding whether the reserve may be used; 404 is an error.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        call: Call,
        spend: Spend,
    ) -> Result<Answer, StoreError> {
        match self.send_allow_404(method, path, body, call, spend).await? {
            Some(answer) => Ok(answer),
            None => Err(StoreError::not_found(format!("{path} at {}: not found, or the token cannot see it", self.api_url))
                .with_hint("check the name, and that the token has access to it")),
        }
    }

    /// One call, `Spend` deciding whether the reserve may be used; `None` on 404.
    async fn send_allow_404(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        call: Call,
        spend: Spend,
    ) -> Result<Option<Answer>, StoreError> {
        if spend == Spend::AboveReserve {
            self.quota.allows_a_call()?;
        }
        let writes = matches!(call, Call::Write | Call::Delete);
        let mut pace = if writes { Some(self.last_write.lock().await) } else { None };
        if let Some(Some(last)) = pace.as_deref() {
            tokio::time::sleep_until(*last + self.write_interval).await;
        }
        let what = format!("{method} {path}");
        let bearer = self.bearer().await?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.api_url))
            .bearer_auth(&bearer)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(body) = body {
            request = request.json(body);
        }
        self.calls.count(call);
        let sent = request.send().await;
        if let Some(last) = pace.as_deref_mut() {
            *last = Some(tokio::time::Instant::now());
        }
        let response = sent.map_err(|e| {
            let e = e.without_url();
            if e.is_timeout() {
                return crate::store::timed_out(&what, &format!("GitHub at {}", self.api_url), &e.to_string());
            }
            StoreError::unavailable(format!("cannot reach GitHub at {} ({what}): {e}", self.api_url))
        })?;
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let limits = RateHeaders {
            remaining: header("x-ratelimit-remaining").and_then(|v| v.parse().ok()),
            reset: header("x-ratelimit-reset").and_then(|v| v.parse().ok()),
            retry_after: header("retry-after").and_then(|v| v.parse().ok()),
        };
        self.quota.observe(limits.remaining, limits.reset);
        let number = |name: &str| header(name).and_then(|v| v.parse::<u64>().ok());
        if let (Some(limit), Some(remaining), Some(reset)) =
            (number("x-ratelimit-limit"), number("x-ratelimit-remaining"), limits.reset)
        {
            let used = number("x-ratelimit-used").unwrap_or(limit.saturating_sub(remaining));
            self.calls.set_quota(crate::store::stats::Quota { limit, remaining, used, reset });
        }
        let status = response.status().as_u16();
        let next = header("link").and_then(|link| next_link(&link));
        let text = response.text().await.unwrap_or_default();
        match status {
            200..=299 => Ok(Some(Answer { json: serde_json::from_str(&text).unwrap_or(Value::Null), next })),
            404 => Ok(None),
            _ => Err(classify(status, &text, &limits, &what, &self.api_url, &self.quota)),
        }
    }
}

/// The rate-limit headers of one answer.
#[derive(Clone, Copy, Debug, Default)]
pub struct RateHeaders {
    /// `x-ratelimit-remaining`.
    pub remaining: Option<i64>,
    /// `x-ratelimit-reset` (Unix seconds).
    pub reset: Option<i64>,
    /// `retry-after` (seconds).
    pub retry_after: Option<u64>,
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

/// Classifies an answer that is neither a success nor a 404. Only GitHub's `message` field
/// is kept from the body (shortened): server text is untrusted.
pub fn classify(
    status: u16,
    body: &str,
    limits: &RateHeaders,
    what: &str,
    api_url: &str,
    quota: &QuotaPool,
) -> StoreError {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(crate::store::short))
        .unwrap_or_default();
    let detail = if message.is_empty() { format!("HTTP {status}") } else { format!("{message} (HTTP {status})") };
    let at = format!("{what} at {api_url}");
    let secondary = message.to_ascii_lowercase().contains("secondary rate limit");
    match status {
        401 => StoreError::permission(format!("{at}: the token was refused ({detail})"))
            .with_hint("check the token: it may be wrong, expired or revoked"),
        403 | 429 if limits.retry_after.is_some() || secondary => {
            let wait = Duration::from_secs(limits.retry_after.unwrap_or(60));
            StoreError::new(ErrorKind::Quota, format!("{at}: secondary rate limit ({detail})")).retry_after(wait)
        }
        403 | 429 if limits.remaining == Some(0) => quota.exhausted(0),
        403 => StoreError::permission(format!("{at}: {detail}"))
            .with_hint("the token needs write access to the secrets (and read access to variables) of this location"),
        409 => StoreError::conflict(format!("{at}: {detail}")),
        422 | 400 => StoreError::invalid(format!("{at}: {detail}")),
        500..=599 => StoreError::unavailable(format!("{at}: {detail}")),
        _ => StoreError::invalid(format!("{at}: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_githubs_rules() {
        assert_eq!(name_rule("DB_PASSWORD"), None);
        assert_eq!(name_rule("_X1"), None);
        assert!(name_rule("1X").unwrap().contains("digit"));
        assert!(name_rule("A-B").unwrap().contains("only letters"));
        assert!(name_rule("GITHUB_X").unwrap().contains("GITHUB_"));
        assert!(name_rule("github_x").unwrap().contains("GITHUB_"));
    }

    #[test]
    fn link_headers_give_the_next_page() {
        let link = r#"<https://api.github.com/repos/a/b/actions/secrets?per_page=100&page=2>; rel="next", <https://api.github.com/repos/a/b/actions/secrets?per_page=100&page=3>; rel="last""#;
        assert_eq!(next_link(link).as_deref(), Some("https://api.github.com/repos/a/b/actions/secrets?per_page=100&page=2"));
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn answers_are_classified_keeping_only_githubs_message() {
        let none = RateHeaders::default();
        let pool = QuotaPool::new("GitHub API rate limit at http://gh", 100, "wait");
        let e = classify(401, r#"{"message":"Bad credentials","documentation_url":"https://docs"}"#, &none, "GET /x", "http://gh", &pool);
        assert_eq!(e.kind(), ErrorKind::Permission);
        assert!(e.to_string().contains("Bad credentials (HTTP 401)"), "{e}");
        let secondary = RateHeaders { retry_after: Some(3), ..none };
        let e = classify(403, r#"{"message":"You have exceeded a secondary rate limit."}"#, &secondary, "PUT /x", "http://gh", &pool);
        assert_eq!((e.kind(), e.wait()), (ErrorKind::Quota, Some(Duration::from_secs(3))));
        assert!(e.is_retryable());
        let spent = RateHeaders { remaining: Some(0), reset: Some(0), ..none };
        let e = classify(403, r#"{"message":"API rate limit exceeded"}"#, &spent, "GET /x", "http://gh", &pool);
        assert_eq!(e.kind(), ErrorKind::Quota);
        assert!(!e.is_retryable(), "a spent quota is not retried");
        let e = classify(422, r#"{"message":"Bad key id", "echo": "CANARY"}"#, &none, "PUT /x", "http://gh", &pool);
        assert!(!e.to_string().contains("CANARY"), "only the message is kept: {e}");
        assert!(classify(502, "<html>bad gateway CANARY</html>", &none, "GET /x", "http://gh", &pool).is_retryable());
        assert!(!classify(502, "<html>CANARY</html>", &none, "GET /x", "http://gh", &pool).to_string().contains("CANARY"));
    }

    #[test]
    fn locations_and_ledgers() {
        let config = |text: &str| -> GithubConfig { serde_json::from_str(text).unwrap() };
        let repo = config(r#"{"repo": "acme/app"}"#);
        assert_eq!(repo.secrets_path(), "/repos/acme/app/actions/secrets");
        assert_eq!(repo.ledger(), ("/repos/acme/app/actions/variables".into(), "VSS_LEDGER_ACTIONS".into()));
        let env = config(r#"{"repo": "acme/app", "environment": "prod eu"}"#);
        assert_eq!(env.secrets_path(), "/repos/acme/app/environments/prod%20eu/secrets");
        assert_eq!(env.ledger().1, "VSS_LEDGER");
        let bots = config(r#"{"repo": "acme/app", "scope": "dependabot"}"#);
        assert_eq!(bots.secrets_path(), "/repos/acme/app/dependabot/secrets");
        assert_eq!(bots.ledger().1, "VSS_LEDGER_DEPENDABOT");
        let org = config(r#"{"org": "acme", "scope": "codespaces"}"#);
        assert_eq!(org.secrets_path(), "/orgs/acme/codespaces/secrets");
        assert_eq!(org.ledger(), ("/orgs/acme/actions/variables".into(), "VSS_LEDGER_CODESPACES".into()));
    }
}
