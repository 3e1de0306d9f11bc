//! Dynamic targets: one target per AWS account found in AWS Organizations, expanded at
//! plan time (before `pipeline`, `graph` and `validate` use the config).
//!
//! ```yaml
//! aws:
//!   execution_role_pattern: "arn:aws:iam::{account_id}:role/SecretsSync"   # optional
//! dynamic_targets:
//!   workloads:
//!     inherits: Production              # or imports: [...], like any target
//!     discovery:
//!       organizations:
//!         ou: ou-abcd-12345678          # an OU (or a root, r-...)
//!         recursive: true               # also the OUs below it
//!         tags: { env: prod, tier: [web, api] }   # every tag must match (a list: any value)
//!     exclude: ["111111111111"]
//!     prefix: app/
//!     region: us-east-1
//! ```
//!
//! Every ACTIVE account of the OU (and, with `recursive`, of the OUs below it) whose tags
//! match becomes a target named after the account (`Team A Prod` -> `Team-A-Prod`; a name
//! already taken gets `-<account id>` appended), syncing to Secrets Manager in that account
//! through `execution_role_pattern`, or by default `OrganizationAccountAccessRole` (none in
//! the caller's own account). Dynamic targets can inherit and import the config's targets
//! and sources; nothing can depend on them (their names are known only at run time). This
//! module discovers accounts and makes their destinations; [`crate::plan`] turns them into
//! targets.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::diagnostic::Diagnostic;
use crate::merge::RawMergeOptions;
use crate::span::{Lenient, Spanned};
use crate::store::StoreError;
use crate::store::aws::secrets_manager::AwsConfig;
use crate::store::aws::{AwsDefaults, AwsSessions, Identity, sdk_error};

/// `dynamic_targets.NAME:` — the template of the targets discovered for each account.
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
    pub discovery: Discovery,
    /// Account ids to leave out.
    pub exclude: Option<Vec<String>>,
    /// Secret name prefix in each account.
    pub prefix: Option<String>,
    /// Region in each account (default: the top-level `aws.region`).
    pub region: Option<String>,
}

impl RawDynamicTarget {
    /// The AWS part of the template, checked.
    pub fn spec(&self, out: &mut Vec<Diagnostic>) -> OrganizationsSpec {
        let spec = OrganizationsSpec {
            discovery: self.discovery.clone(),
            exclude: self.exclude.clone().unwrap_or_default(),
            prefix: self.prefix.clone(),
            region: self.region.clone(),
        };
        spec.check(out);
        spec
    }
}

/// `discovery:` of a dynamic target.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Discovery {
    /// Accounts of an AWS Organizations OU.
    pub organizations: OrganizationsDiscovery,
}

/// `discovery.organizations:`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationsDiscovery {
    /// The OU (`ou-...`) or root (`r-...`) whose accounts become targets.
    pub ou: Spanned<String>,
    /// Also the accounts of every OU below it (default false).
    pub recursive: Option<bool>,
    /// Account tags that must all match; a list matches any of its values.
    pub tags: Option<BTreeMap<String, TagFilter>>,
}

/// The accepted value(s) of one tag.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TagFilter {
    /// Exactly this value.
    One(String),
    /// Any of these values.
    Any(Vec<String>),
}

impl TagFilter {
    fn accepts(&self, value: &str) -> bool {
        match self {
            TagFilter::One(v) => v == value,
            TagFilter::Any(values) => values.iter().any(|v| v == value),
        }
    }
}

/// The AWS part of a dynamic target: where its accounts come from, and where each
/// account's target syncs.
#[derive(Clone, Debug)]
pub struct OrganizationsSpec {
    /// Where the accounts come from.
    pub discovery: Discovery,
    /// Account ids left out.
    pub exclude: Vec<String>,
    /// Secret name prefix in each account.
    pub prefix: Option<String>,
    /// Region in each account.
    pub region: Option<String>,
}

impl OrganizationsSpec {
    /// Its own rules.
    fn check(&self, out: &mut Vec<Diagnostic>) {
        let ou = &self.discovery.organizations.ou;
        if ou.value.trim().is_empty() {
            out.push(Diagnostic::at(ou.span, "`ou` is empty"));
        }
    }

    /// Where the target of `account` syncs: Secrets Manager in that account.
    pub fn destination(&self, account: &Account) -> AwsConfig {
        AwsConfig {
            account_id: Some(Spanned { span: self.discovery.organizations.ou.span, value: account.id.clone() }),
            prefix: self.prefix.clone(),
            region: self.region.clone(),
            ..AwsConfig::default()
        }
    }

    /// A short description, for `vss graph`: `one per account of ou-x and below`.
    pub fn describe(&self) -> String {
        let org = &self.discovery.organizations;
        let scope = if org.recursive == Some(true) { " and below" } else { "" };
        format!("one per account of {}{scope}", org.ou.value)
    }
}

/// An account found by discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The 12-digit id.
    pub id: String,
    /// The account's name.
    pub name: String,
}

/// A target name made from an account name: characters outside `[A-Za-z0-9_.-]` become
/// `-`, runs of `-` collapse, and `-` is trimmed at both ends.
pub fn sanitize(name: &str) -> String {
    let mapped: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect();
    let mut out = String::with_capacity(mapped.len());
    for c in mapped.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

/// Lists the ACTIVE accounts of a dynamic target's OU that match its tags and are not
/// excluded, sorted by name (then id).
pub async fn discover(
    spec: &OrganizationsSpec,
    defaults: &AwsDefaults,
    sessions: &AwsSessions,
) -> Result<Vec<Account>, StoreError> {
    let identity = Identity {
        role: None,
        external_id: None,
        session_name: "vss".into(),
        duration: 3600,
        region: defaults.region.clone(),
    };
    let sdk = sessions.config(&identity, defaults).await;
    let client = aws_sdk_organizations::Client::new(&sdk);

    let org = &spec.discovery.organizations;
    let mut parents = vec![org.ou.value.clone()];
    if org.recursive == Some(true) {
        let mut queue = vec![org.ou.value.clone()];
        while let Some(parent) = queue.pop() {
            let mut pages = client.list_organizational_units_for_parent().parent_id(&parent).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    sdk_error(&e, "ListOrganizationalUnitsForParent", &parent, None)
                        .into_error("ListOrganizationalUnitsForParent", &parent)
                })?;
                for unit in page.organizational_units() {
                    if let Some(id) = unit.id() {
                        parents.push(id.to_string());
                        queue.push(id.to_string());
                    }
                }
            }
        }
    }
    let mut accounts = Vec::new();
    for parent in &parents {
        let mut pages = client.list_accounts_for_parent().parent_id(parent).into_paginator().send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| {
                sdk_error(&e, "ListAccountsForParent", parent, None).into_error("ListAccountsForParent", parent)
            })?;
            #[allow(deprecated)]
            for account in page.accounts() {
                let active = account.status().is_some_and(|s| s.as_str() == "ACTIVE");
                let (Some(id), Some(name)) = (account.id(), account.name()) else { continue };
                if active && !spec.exclude.iter().any(|e| e == id) {
                    accounts.push(Account { id: id.to_string(), name: name.to_string() });
                }
            }
        }
    }
    let mut matching = Vec::new();
    for account in accounts {
        if let Some(filters) = org.tags.as_ref().filter(|t| !t.is_empty()) {
            let mut tags = BTreeMap::new();
            let mut pages = client.list_tags_for_resource().resource_id(&account.id).into_paginator().send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    sdk_error(&e, "ListTagsForResource", &account.id, None)
                        .into_error("ListTagsForResource", &account.id)
                })?;
                for tag in page.tags() {
                    tags.insert(tag.key().to_string(), tag.value().to_string());
                }
            }
            if !filters.iter().all(|(k, filter)| tags.get(k).is_some_and(|v| filter.accepts(v))) {
                continue;
            }
        }
        matching.push(account);
    }
    matching.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    matching.dedup();
    Ok(matching)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_names_become_target_names() {
        assert_eq!(sanitize("Team A Prod"), "Team-A-Prod");
        assert_eq!(sanitize("  payments / EU (prod)  "), "payments-EU-prod");
        assert_eq!(sanitize("ok_name-1.2"), "ok_name-1.2");
        assert_eq!(sanitize("日本"), "");
    }

    #[test]
    fn tag_filters_accept_one_or_any() {
        assert!(TagFilter::One("prod".into()).accepts("prod"));
        assert!(!TagFilter::One("prod".into()).accepts("dev"));
        assert!(TagFilter::Any(vec!["web".into(), "api".into()]).accepts("api"));
    }
}
