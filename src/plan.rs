//! The plan stage: a validated [`Config`] (immutable) plus the targets that exist only once
//! they are discovered (`dynamic_targets`, from AWS Organizations today), with the graph
//! over all of them. The engine runs a [`Plan`], so it can never be handed a config whose
//! dynamic targets were not expanded.
//!
//! `validate --offline` and `graph --offline` use [`Plan::offline`], which discovers
//! nothing; `pipeline`, `graph` and `validate` use [`Plan::build`], which calls the stores'
//! discovery (through the one retry policy) when the config has dynamic targets, and
//! contacts nothing otherwise.

use crate::config::Config;
use crate::config::model::{Discovery, DynamicTarget, Import, Source, SourceId, Target, TargetId};
use crate::error::{ErrorKind, Failure};
use crate::graph::{Dependency, EdgeKind, Graph};
use crate::store::{Sessions, StoreConfig};

/// What a run executes: the config, every target (the config's, then the discovered ones)
/// and the graph over them.
#[derive(Clone, Debug)]
pub struct Plan<'c> {
    /// The validated config.
    pub config: &'c Config,
    /// Every target, by id: the config's targets first, then the discovered ones.
    pub targets: Vec<Target>,
    /// Dependencies, levels and execution order of every target.
    pub graph: Graph,
    /// Whether the dynamic targets were discovered (false for an offline plan).
    pub discovered: bool,
}

impl<'c> Plan<'c> {
    /// The plan of the config's own targets, discovering nothing.
    pub fn offline(config: &'c Config) -> Self {
        Plan { config, targets: config.targets.clone(), graph: config.graph.clone(), discovered: false }
    }

    /// The plan of a config that has nothing to discover (no dynamic targets), else `None`.
    pub fn complete(config: &'c Config) -> Option<Self> {
        config.dynamic.is_empty().then(|| Plan { discovered: true, ..Self::offline(config) })
    }

    /// The plan with every dynamic target discovered. Contacts nothing when the config has
    /// none.
    pub async fn build(config: &'c Config, sessions: &Sessions) -> Result<Self, Failure> {
        let mut plan = Self::offline(config);
        let mut dependencies = config.graph.dependencies.clone();
        for template in &config.dynamic {
            for (name, destination) in discover(config, template, sessions).await? {
                let name = plan.free_name(&name, &template.name)?;
                let id = TargetId(plan.targets.len());
                if let Some(parent) = template.inherits {
                    dependencies.push(Dependency {
                        from: id,
                        to: parent,
                        kind: EdgeKind::Inherits,
                        span: template.span,
                    });
                }
                for import in &template.imports {
                    if let Import::Target(to) = *import {
                        dependencies.push(Dependency { from: id, to, kind: EdgeKind::Imports, span: template.span });
                    }
                }
                plan.targets.push(Target {
                    name,
                    inherits: template.inherits,
                    imports: template.imports.clone(),
                    selections: template.imports.iter().map(|_| crate::select::Selection::default()).collect(),
                    inherit_selection: crate::select::Selection::default(),
                    accepts: crate::select::Selection::default(),
                    delete_orphans: None,
                    block: serde_json::Value::Null,
                    destination: Some(destination),
                    merge: template.merge,
                    safety: config.sync.safety.clone(),
                    spans: crate::config::model::TargetSpans {
                        name: template.span,
                        inherits: template.inherits.map(|_| template.span),
                        imports: template.imports.iter().map(|_| template.span).collect(),
                    },
                });
            }
        }
        let names: Vec<String> = plan.targets.iter().map(|t| t.name.clone()).collect();
        // Nothing depends on a discovered target, so no cycle can appear.
        plan.graph = Graph::build(&names, dependencies)
            .map_err(|_| Failure::new(ErrorKind::Internal, "dynamic targets formed a cycle"))?;
        plan.discovered = true;
        Ok(plan)
    }

    /// `wanted`, or `wanted-<suffix>` when a source or target already has that name.
    fn free_name(&self, wanted: &str, template: &str) -> Result<String, Failure> {
        let taken =
            |n: &str| self.targets.iter().any(|t| t.name == n) || self.config.sources.iter().any(|s| s.name == n);
        if !taken(wanted) {
            return Ok(wanted.to_string());
        }
        Err(Failure::new(
            ErrorKind::Invalid,
            format!("dynamic targets `{template}`: two targets would both be named `{wanted}`"),
        ))
    }

    /// The target with this name.
    pub fn target_named(&self, name: &str) -> Option<TargetId> {
        self.targets.iter().position(|t| t.name == name).map(TargetId)
    }

    /// The target of an id.
    pub fn target(&self, id: TargetId) -> &Target {
        &self.targets[id.0]
    }

    /// The source of an id.
    pub fn source(&self, id: SourceId) -> &Source {
        self.config.source(id)
    }

    /// What a target merges, by name, in order: its parent, then its imports.
    pub fn merged_names(&self, id: TargetId) -> Vec<String> {
        let target = self.target(id);
        let parent = target.inherits.map(|p| self.target(p).name.clone());
        let imports = target.imports.iter().map(|i| match *i {
            Import::Source(s) => self.source(s).name.clone(),
            Import::Target(t) => self.target(t).name.clone(),
        });
        parent.into_iter().chain(imports).collect()
    }

    /// The dynamic targets not discovered in this plan, each with a short description.
    pub fn undiscovered(&self) -> Vec<(&str, String)> {
        if self.discovered {
            return Vec::new();
        }
        self.config.dynamic.iter().map(|d| (d.name.as_str(), describe(&d.discovery))).collect()
    }
}

/// The targets one template discovers: a name for each, and its destination.
async fn discover(
    config: &Config,
    template: &DynamicTarget,
    sessions: &Sessions,
) -> Result<Vec<(String, StoreConfig)>, Failure> {
    match &template.discovery {
        #[cfg(feature = "aws")]
        Discovery::Organizations(spec) => {
            use crate::store::aws::organizations::{discover, sanitize};
            use crate::store::aws::secrets_manager::SecretsManagerStore;
            let defaults = config.defaults.get::<SecretsManagerStore>();
            let session = sessions.get::<crate::store::aws::AwsSessions>();
            let accounts = crate::store::retry::RetryPolicy::default()
                .run("discover", || discover(spec, defaults, &session))
                .await
                .map_err(|e| {
                    let ou = &spec.discovery.organizations.ou.value;
                    let context = format!("discovery of dynamic targets `{}` in {ou}", template.name);
                    e.into_failure(&context, "aws", &spec.describe())
                })?;
            let mut out = Vec::new();
            for account in accounts {
                let name = sanitize(&account.name);
                let taken = |n: &str| {
                    n.is_empty()
                        || config.targets.iter().any(|t| t.name == n)
                        || config.sources.iter().any(|s| s.name == n)
                        || matches!(&config.audit, Some(crate::audit::AuditLog::MergeStore { name, .. }) if name == n)
                        || out.iter().any(|(o, _): &(String, StoreConfig)| o == n)
                };
                let name = if taken(&name) {
                    if name.is_empty() { account.id.clone() } else { format!("{name}-{}", account.id) }
                } else {
                    name
                };
                out.push((name, StoreConfig::Aws(Box::new(spec.destination(&account)))));
            }
            Ok(out)
        }
        #[allow(unreachable_patterns)]
        _ => {
            let _ = (config, sessions);
            Ok(Vec::new())
        }
    }
}

fn describe(discovery: &Discovery) -> String {
    match discovery {
        #[cfg(feature = "aws")]
        Discovery::Organizations(spec) => spec.describe(),
        #[allow(unreachable_patterns)]
        _ => String::new(),
    }
}
