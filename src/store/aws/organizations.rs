//! Dynamic targets: one target per AWS account found in AWS Organizations, expanded at
//! plan time (before `pipeline`, `graph` and `validate` use the config).
//!
//! ```yaml
//! aws:
//!   execution_role_pattern: "arn:aws:iam::{account_id}:role/SecretsSync"
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
//! through `execution_role_pattern`. Dynamic targets can inherit and import the config's
//! targets and sources; nothing can depend on them (their names are known only at run time).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::Config;
use crate::config::model::{Import, Target, TargetId};
use crate::graph::{Dependency, EdgeKind, Graph};
use crate::merge::MergeOptions;
use crate::span::Spanned;
use crate::store::StoreConfig;
use crate::store::StoreError;
use crate::store::aws::secrets_manager::AwsConfig;
use crate::store::aws::{AwsDefaults, AwsSessions, Identity, sdk_error};

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

/// A validated dynamic target: the template every discovered account's target follows.
#[derive(Clone, Debug)]
pub struct DynamicTarget {
    /// The `dynamic_targets` key.
    pub name: String,
    /// The parent of every discovered target.
    pub inherits: Option<TargetId>,
    /// What every discovered target imports.
    pub imports: Vec<Import>,
    /// Merge semantics.
    pub merge: MergeOptions,
    /// Where the accounts come from.
    pub discovery: Discovery,
    /// Account ids left out.
    pub exclude: Vec<String>,
    /// Secret name prefix in each account.
    pub prefix: Option<String>,
    /// Region in each account.
    pub region: Option<String>,
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
    spec: &DynamicTarget,
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

/// Adds one target per discovered account of every dynamic target, and rebuilds the graph.
pub async fn expand(config: &mut Config, sessions: &AwsSessions) -> Result<(), String> {
    let aws = config.defaults.get::<crate::store::aws::secrets_manager::SecretsManagerStore>().clone();
    let dynamic = std::mem::take(&mut config.dynamic);
    let mut dependencies = config.graph.dependencies.clone();
    for spec in &dynamic {
        let accounts = discover(spec, &aws, sessions).await.map_err(|e| {
            format!("discovery of dynamic targets `{}` in {}: {e}", spec.name, spec.discovery.organizations.ou.value)
        })?;
        for account in accounts {
            let mut name = sanitize(&account.name);
            let taken =
                |n: &str| config.targets.iter().any(|t| t.name == n) || config.sources.iter().any(|s| s.name == n);
            if name.is_empty() || taken(&name) {
                name = if name.is_empty() { account.id.clone() } else { format!("{name}-{}", account.id) };
            }
            if taken(&name) {
                return Err(format!("dynamic targets `{}`: two accounts would both be named `{name}`", spec.name));
            }
            let id = TargetId(config.targets.len());
            let span = spec.discovery.organizations.ou.span;
            if let Some(parent) = spec.inherits {
                dependencies.push(Dependency { from: id, to: parent, kind: EdgeKind::Inherits, span });
            }
            for import in &spec.imports {
                if let Import::Target(t) = import {
                    dependencies.push(Dependency { from: id, to: *t, kind: EdgeKind::Imports, span });
                }
            }
            let destination = AwsConfig {
                account_id: Some(Spanned { span, value: account.id.clone() }),
                prefix: spec.prefix.clone(),
                region: spec.region.clone(),
                ..AwsConfig::default()
            };
            config.targets.push(Target {
                name,
                inherits: spec.inherits,
                imports: spec.imports.clone(),
                destination: Some(StoreConfig::Aws(Box::new(destination))),
                merge: spec.merge,
            });
        }
    }
    let names: Vec<String> = config.targets.iter().map(|t| t.name.clone()).collect();
    config.graph = Graph::build(&names, dependencies).map_err(|_| "dynamic targets cannot form a cycle".to_string())?;
    Ok(())
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
