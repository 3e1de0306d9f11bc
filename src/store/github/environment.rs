//! Environments as code: a `github` target's `environment:` block declares the Actions
//! environment itself (wait timer, required reviewers, who may deploy), not only its
//! secrets. The environment is read and compared before the secrets, created or updated
//! before they are written, and left alone when it already matches.
//!
//! A declared environment is managed whole: a setting not written is GitHub's default
//! (no wait timer, no reviewers, self-review allowed, every branch may deploy), so removing
//! a line from the config removes that protection on the next run.

use std::collections::BTreeSet;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::diagnostic::Diagnostic;
use crate::span::Spanned;
use crate::store::StoreError;
use crate::store::stats::Call;

use super::{GithubClient, Spend, encode};

/// The longest wait timer GitHub accepts, in minutes (30 days).
pub const MAX_WAIT_TIMER: u32 = 43_200;
/// The most reviewers GitHub accepts on one environment.
pub const MAX_REVIEWERS: usize = 6;

/// `environment:` of a `github` target: a name (vss writes the environment's secrets; the
/// environment itself is managed elsewhere) or a block (vss manages it too).
#[derive(Clone, Debug, JsonSchema)]
#[serde(untagged)]
pub enum Environment {
    /// An existing environment, by name.
    Name(String),
    /// An environment vss creates and keeps as declared.
    Managed(ManagedEnvironment),
}

impl Environment {
    /// The environment's name.
    pub fn name(&self) -> &str {
        match self {
            Environment::Name(name) => name,
            Environment::Managed(managed) => &managed.name.value,
        }
    }

    /// The declared settings, when vss manages the environment.
    pub fn managed(&self) -> Option<&ManagedEnvironment> {
        match self {
            Environment::Name(_) => None,
            Environment::Managed(managed) => Some(managed),
        }
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvironmentVisitor;
        impl<'de> Visitor<'de> for EnvironmentVisitor {
            type Value = Environment;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an environment name, or a block with `name:` and its protection rules")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Environment, E> {
                Ok(Environment::Name(name.to_string()))
            }
            fn visit_string<E: de::Error>(self, name: String) -> Result<Environment, E> {
                Ok(Environment::Name(name))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Environment, A::Error> {
                ManagedEnvironment::deserialize(de::value::MapAccessDeserializer::new(map)).map(Environment::Managed)
            }
        }
        deserializer.deserialize_any(EnvironmentVisitor)
    }
}

/// An environment's declared settings.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagedEnvironment {
    /// The environment's name.
    pub name: Spanned<String>,
    /// Minutes a deployment waits before it starts (0 to 43200; default 0).
    pub wait_timer: Option<Spanned<u32>>,
    /// Whether the person who started a deployment may not approve it (default false;
    /// needs `reviewers`).
    pub prevent_self_review: Option<Spanned<bool>>,
    /// Who must approve a deployment (at most 6): `{ user: LOGIN }` or `{ team: SLUG }` (a
    /// team of the repository's organization); resolved to ids when the plan is made.
    #[serde(default)]
    pub reviewers: Vec<Spanned<Reviewer>>,
    /// Which branches may deploy: `all` (default), `protected` (protected branches), or a
    /// list of branch name patterns (`[main, release/*]`).
    #[serde(default)]
    pub deployment_branches: Option<Spanned<DeploymentBranches>>,
}

/// A required reviewer.
#[derive(Clone, Debug, Deserialize, JsonSchema, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Reviewer {
    /// A user, by login.
    User(String),
    /// A team of the repository's organization, by slug.
    Team(String),
}

impl fmt::Display for Reviewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reviewer::User(login) => write!(f, "user `{login}`"),
            Reviewer::Team(slug) => write!(f, "team `{slug}`"),
        }
    }
}

/// Which branches may deploy to an environment.
#[derive(Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(untagged)]
pub enum DeploymentBranches {
    /// `all` or `protected`.
    Rule(BranchRule),
    /// Branch name patterns (GitHub's `fnmatch` syntax, e.g. `release/*`).
    Patterns(Vec<String>),
}

/// `all` or `protected`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BranchRule {
    /// Every branch (GitHub's default).
    All,
    /// Protected branches only.
    Protected,
}

impl<'de> Deserialize<'de> for DeploymentBranches {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BranchesVisitor;
        impl<'de> Visitor<'de> for BranchesVisitor {
            type Value = DeploymentBranches;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`all`, `protected`, or a list of branch name patterns")
            }
            fn visit_str<E: de::Error>(self, rule: &str) -> Result<DeploymentBranches, E> {
                match rule {
                    "all" => Ok(DeploymentBranches::Rule(BranchRule::All)),
                    "protected" => Ok(DeploymentBranches::Rule(BranchRule::Protected)),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DeploymentBranches, A::Error> {
                let mut patterns = Vec::new();
                while let Some(pattern) = seq.next_element::<String>()? {
                    patterns.push(pattern);
                }
                Ok(DeploymentBranches::Patterns(patterns))
            }
        }
        deserializer.deserialize_any(BranchesVisitor)
    }
}

/// The config rules of a declared environment.
pub fn check(managed: &ManagedEnvironment, out: &mut Vec<Diagnostic>) {
    if managed.name.value.trim().is_empty() {
        out.push(Diagnostic::at(managed.name.span, "`name` is empty"));
    }
    if let Some(wait) = &managed.wait_timer
        && wait.value > MAX_WAIT_TIMER
    {
        out.push(
            Diagnostic::at(wait.span, format!("`wait_timer` is {} minutes, over GitHub's limit", wait.value))
                .with_label(format!("at most {MAX_WAIT_TIMER} (30 days)")),
        );
    }
    if managed.reviewers.len() > MAX_REVIEWERS {
        out.push(
            Diagnostic::at(managed.reviewers[MAX_REVIEWERS].span, "too many reviewers")
                .with_label(format!("GitHub accepts at most {MAX_REVIEWERS}")),
        );
    }
    let mut seen = BTreeSet::new();
    for reviewer in &managed.reviewers {
        let (Reviewer::User(name) | Reviewer::Team(name)) = &reviewer.value;
        if name.trim().is_empty() || name.contains('/') {
            out.push(
                Diagnostic::at(reviewer.span, "a reviewer is a user's login or a team's slug")
                    .with_label("e.g. `{ user: octocat }` or `{ team: platform }`"),
            );
        }
        if !seen.insert(&reviewer.value) {
            out.push(Diagnostic::at(reviewer.span, format!("{} is listed twice", reviewer.value)));
        }
    }
    if let Some(prevent) = &managed.prevent_self_review
        && prevent.value
        && managed.reviewers.is_empty()
    {
        out.push(
            Diagnostic::at(prevent.span, "`prevent_self_review` needs `reviewers`")
                .with_label("without required reviewers nobody approves a deployment"),
        );
    }
    if let Some(Spanned { span: at, value: DeploymentBranches::Patterns(patterns) }) = &managed.deployment_branches {
        if patterns.is_empty() {
            out.push(
                Diagnostic::at(*at, "an empty list of branches lets no branch deploy")
                    .with_label("list branch patterns, or write `all` or `protected`"),
            );
        }
        if patterns.iter().any(|p| p.trim().is_empty()) {
            out.push(Diagnostic::at(*at, "a branch pattern is empty"));
        }
    }
}

/// An environment's settings in GitHub's terms (reviewers as ids): what is declared, or
/// what GitHub holds. The default is GitHub's for a new environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// Minutes.
    pub wait_timer: u32,
    /// Only meaningful with reviewers.
    pub prevent_self_review: bool,
    /// (`User` or `Team`, id), sorted.
    pub reviewers: Vec<(String, u64)>,
    /// `None`: every branch; `Some(None)`: protected branches; `Some(Some(patterns))`:
    /// the patterns, sorted.
    pub branches: Option<Option<BTreeSet<String>>>,
}

impl Settings {
    /// The names of the fields that differ between `self` and `other`, in a fixed order.
    pub fn differences(&self, other: &Settings) -> Vec<String> {
        let mut fields = Vec::new();
        if self.wait_timer != other.wait_timer {
            fields.push("wait_timer");
        }
        if self.prevent_self_review != other.prevent_self_review {
            fields.push("prevent_self_review");
        }
        if self.reviewers != other.reviewers {
            fields.push("reviewers");
        }
        if self.branches != other.branches {
            fields.push("deployment_branches");
        }
        fields.into_iter().map(str::to_string).collect()
    }

    /// The fields of a new environment that are not GitHub's defaults.
    pub fn declared(&self) -> Vec<String> {
        Settings::default().differences(self)
    }

    /// The body of `PUT /repos/{owner}/{repo}/environments/{environment_name}`.
    fn body(&self) -> Value {
        let policy = match &self.branches {
            None => Value::Null,
            Some(None) => json!({"protected_branches": true, "custom_branch_policies": false}),
            Some(Some(_)) => json!({"protected_branches": false, "custom_branch_policies": true}),
        };
        let reviewers: Vec<Value> = self.reviewers.iter().map(|(kind, id)| json!({"type": kind, "id": id})).collect();
        json!({
            "wait_timer": self.wait_timer,
            "prevent_self_review": self.prevent_self_review,
            "reviewers": reviewers,
            "deployment_branch_policy": policy,
        })
    }
}

/// What GitHub holds for an environment, read from `GET …/environments/{name}` and its
/// branch policies; `None` when the environment does not exist.
pub async fn read(client: &GithubClient, repo: &str, name: &str) -> Result<Option<Settings>, StoreError> {
    let path = format!("/repos/{repo}/environments/{}", encode(name));
    let Some(answer) =
        client.send_allow_404(reqwest::Method::GET, &path, None, Call::Read, Spend::AboveReserve).await?
    else {
        return Ok(None);
    };
    let mut settings = Settings::default();
    for rule in answer.json["protection_rules"].as_array().into_iter().flatten() {
        match rule["type"].as_str() {
            Some("wait_timer") => {
                settings.wait_timer = rule["wait_timer"].as_u64().and_then(|m| u32::try_from(m).ok()).unwrap_or(0);
            }
            Some("required_reviewers") => {
                settings.prevent_self_review = rule["prevent_self_review"].as_bool().unwrap_or(false);
                for reviewer in rule["reviewers"].as_array().into_iter().flatten() {
                    if let (Some(kind), Some(id)) = (reviewer["type"].as_str(), reviewer["reviewer"]["id"].as_u64()) {
                        settings.reviewers.push((kind.to_string(), id));
                    }
                }
            }
            _ => {}
        }
    }
    settings.reviewers.sort();
    let policy = &answer.json["deployment_branch_policy"];
    settings.branches = match (policy["protected_branches"].as_bool(), policy["custom_branch_policies"].as_bool()) {
        (Some(true), _) => Some(None),
        (_, Some(true)) => Some(Some(branch_policies(client, &path).await?.into_keys().collect())),
        _ => None,
    };
    Ok(Some(settings))
}

/// The environment's branch policies: pattern -> id.
async fn branch_policies(
    client: &GithubClient,
    environment: &str,
) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    let mut found = std::collections::BTreeMap::new();
    let mut next = Some(format!("{environment}/deployment-branch-policies?per_page=100"));
    while let Some(path) = next {
        let answer = client.call(reqwest::Method::GET, &path, None, Call::List).await?;
        for policy in answer.json["branch_policies"].as_array().into_iter().flatten() {
            if policy["type"].as_str().unwrap_or("branch") != "branch" {
                continue;
            }
            if let (Some(name), Some(id)) = (policy["name"].as_str(), policy["id"].as_u64()) {
                found.insert(name.to_string(), id);
            }
        }
        next = answer.next.map(|url| client.relative(&url));
    }
    Ok(found)
}

/// The declared settings with reviewers resolved to ids (users by login, teams by slug in
/// `owner`'s organization). A reviewer GitHub does not know is an error naming it.
pub async fn resolve(client: &GithubClient, owner: &str, managed: &ManagedEnvironment) -> Result<Settings, StoreError> {
    let mut reviewers = Vec::with_capacity(managed.reviewers.len());
    for reviewer in &managed.reviewers {
        let (kind, path) = match &reviewer.value {
            Reviewer::User(login) => ("User", format!("/users/{}", encode(login))),
            Reviewer::Team(slug) => ("Team", format!("/orgs/{}/teams/{}", encode(owner), encode(slug))),
        };
        let answer = client.send_allow_404(reqwest::Method::GET, &path, None, Call::Read, Spend::AboveReserve).await?;
        let id = answer.and_then(|a| a.json["id"].as_u64()).ok_or_else(|| {
            let whose = match &reviewer.value {
                Reviewer::User(_) => "GitHub has no such user".to_string(),
                Reviewer::Team(_) => format!("the organization `{owner}` has no such team"),
            };
            StoreError::not_found(format!(
                "reviewer {} of environment `{}`: {whose}, or the token cannot see it",
                reviewer.value, managed.name.value
            ))
            .with_hint("check the login or team slug (teams need a token that can read the organization's teams)")
        })?;
        reviewers.push((kind.to_string(), id));
    }
    reviewers.sort();
    let branches = match managed.deployment_branches.as_ref().map(|b| &b.value) {
        None | Some(DeploymentBranches::Rule(BranchRule::All)) => None,
        Some(DeploymentBranches::Rule(BranchRule::Protected)) => Some(None),
        Some(DeploymentBranches::Patterns(patterns)) => Some(Some(patterns.iter().cloned().collect())),
    };
    Ok(Settings {
        wait_timer: managed.wait_timer.as_ref().map_or(0, |w| w.value),
        prevent_self_review: managed.prevent_self_review.as_ref().is_some_and(|p| p.value),
        reviewers,
        branches,
    })
}

/// Creates or updates the environment to `settings`: one `PUT`, then the branch patterns
/// added and removed one by one.
pub async fn apply(client: &GithubClient, repo: &str, name: &str, settings: &Settings) -> Result<(), StoreError> {
    let path = format!("/repos/{repo}/environments/{}", encode(name));
    client.call(reqwest::Method::PUT, &path, Some(&settings.body()), Call::Write).await?;
    let Some(Some(patterns)) = &settings.branches else {
        return Ok(());
    };
    let live = branch_policies(client, &path).await?;
    for pattern in patterns.iter().filter(|p| !live.contains_key(*p)) {
        let body = json!({"name": pattern, "type": "branch"});
        client.call(reqwest::Method::POST, &format!("{path}/deployment-branch-policies"), Some(&body), Call::Write).await?;
    }
    for (pattern, id) in live.iter().filter(|(p, _)| !patterns.contains(*p)) {
        let policy = format!("{path}/deployment-branch-policies/{id}");
        client.send_allow_404(reqwest::Method::DELETE, &policy, None, Call::Delete, Spend::AboveReserve).await.map_err(
            |e| StoreError::new(e.kind(), format!("cannot remove the branch pattern `{pattern}`: {e}")),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_the_fields_that_change() {
        let live = Settings::default();
        let wanted = Settings {
            wait_timer: 10,
            prevent_self_review: true,
            reviewers: vec![("User".into(), 1)],
            branches: Some(None),
        };
        assert_eq!(live.differences(&wanted), ["wait_timer", "prevent_self_review", "reviewers", "deployment_branches"]);
        assert_eq!(wanted.declared(), live.differences(&wanted));
        assert!(wanted.differences(&wanted.clone()).is_empty());
        let patterns = Settings { branches: Some(Some(BTreeSet::from(["main".to_string()]))), ..wanted.clone() };
        assert_eq!(wanted.differences(&patterns), ["deployment_branches"]);
    }

    #[test]
    fn bodies_follow_githubs_branch_policy_rules() {
        let protected = Settings { branches: Some(None), ..Settings::default() }.body();
        assert_eq!(protected["deployment_branch_policy"], json!({"protected_branches": true, "custom_branch_policies": false}));
        assert_eq!(Settings::default().body()["deployment_branch_policy"], Value::Null);
        let custom = Settings { branches: Some(Some(BTreeSet::new())), ..Settings::default() }.body();
        assert_eq!(custom["deployment_branch_policy"]["custom_branch_policies"], json!(true));
    }
}
