//! # vss — a declarative secrets pipeline engine
//!
//! A YAML file declares **sources** (where secrets live), an optional **merge store** and
//! **targets** (where secrets must end up, inheriting from each other). `vss pipeline`
//! resolves it into a graph and runs two phases: **MERGE** writes each target's deep-merged
//! bundle to the merge store; **SYNC** diffs each target's live state against its desired
//! state and applies only the difference. A dry run computes the same diff and writes
//! nothing.
//!
//! ## Where to start reading
//!
//! Data flows one way:
//!
//! ```text
//! cli ─▶ run ─▶ config::load ─▶ graph ─▶ engine (merge phase, sync phase) ─▶ report
//!              (yaml ─▶ raw ─▶ model)        │                │
//!                                        merge, diff       store::* (I/O only)
//! ```
//!
//! - [`run`] turns arguments into a config, runs the engine, renders the report and returns
//!   the exit code ([`error::Exit`]); `main.rs` only calls it.
//! - [`config`] parses YAML with spans ([`yaml`], [`config::de`]), validates it
//!   into typed ids ([`config::validate`]) and reports every error at once with
//!   `file:line:col` and a caret ([`diagnostic`]).
//! - [`graph`] orders targets by dependency level and reports cycles as full chains.
//! - [`merge`] and [`diff`] are pure functions over [`secret::SecretMap`]s.
//! - [`engine`] is where side effects start: [`engine::desired`] computes desired state
//!   (one code path for apply and dry run), [`engine::merge_phase`] and
//!   [`engine::sync_phase`] reconcile stores through [`engine::handle::Handle`] (bounded
//!   concurrency + the one retry wrapper).
//! - [`store`] holds the one registering enum ([`store::StoreConfig`]), the [`store::Store`]
//!   trait, and the stores themselves; [`store::conformance`] is the suite every store passes.
//! - [`report`] renders human, JSON, GitHub Actions and compact output.
//! - `discovery` (with the `aws` feature) expands `dynamic_targets` from AWS Organizations
//!   at plan time, before the engine sees the config.
//!
//! Secret values never reach a log, an error or a report: [`secret::SecretValue`] has no
//! `Display` and its `Debug` prints `<redacted>`; reports carry keyed fingerprints.

pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod diff;
pub mod engine;
pub mod error;
pub mod flatten;
pub mod graph;
pub mod merge;
pub mod plan;
pub mod report;
pub mod run;
pub mod secret;
pub mod span;
pub mod store;
pub mod yaml;

pub use run::run;
