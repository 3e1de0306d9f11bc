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
//! cli ─▶ run ─▶ config::load ─▶ plan ─▶ engine (merge phase, sync phase) ─▶ report
//!              (yaml ─▶ raw ─▶ model)   │        │               │
//!                                     graph   merge, diff     store::* (I/O only)
//! ```
//!
//! - [`mod@run`] turns arguments into a config and a plan, runs the engine, renders the report
//!   and returns the exit code ([`error::Exit`]); `main.rs` only calls it. It names no
//!   store: everything it prints comes from [`report`].
//! - [`config`] parses YAML with spans ([`yaml`], [`config::de`]), validates it into typed
//!   ids ([`config::validate`]) and reports every error at once with `file:line:col` and a
//!   caret ([`diagnostic`]). The result is an immutable [`config::Config`].
//! - [`plan`] adds the targets discovered at plan time (AWS Organizations) and builds the
//!   [`graph`] over every target; the engine only ever runs a [`plan::Plan`].
//! - [`merge`], [`diff`] and [`flatten`] are pure functions over [`secret::SecretMap`]s;
//!   what a store reads is a [`secret::LiveSecret`]: a value, a keyed fingerprint (a
//!   write-only store's record of what vss wrote), "overwritten since", or "present, value
//!   unreadable". Stores of one string per name (GitHub) get desired secrets flattened
//!   ([`flatten`]) by the engine, which learns everything else it needs (exclusions, name
//!   rules, the fingerprint key, the API budget) through the [`store::Store`] contract.
//! - [`engine`] is where side effects start: [`engine::desired`] computes desired state
//!   (one code path for apply and dry run), [`engine::merge_phase`] and
//!   [`engine::sync_phase`] reconcile stores through [`engine::handle::Handle`] (bounded
//!   concurrency + the one retry wrapper). Every target of a run is planned
//!   ([`engine::Prepared`]) before any is applied, so a run whose writes cannot all be made
//!   (an API quota, [`store::quota`]) is refused before its first write.
//! - [`select`] is the pure selection and renaming of each import (`include`, `exclude`,
//!   `keys`, `rename`, `rename_keys`, `prefix`), applied by [`engine::desired`].
//! - [`provenance`] says, for every key of a desired secret, which layer set it, which it
//!   replaced and which rename moved it (`vss explain`, `pipeline --provenance`).
//! - [`registry`] remembers the targets runs wrote; [`prune`] (`vss prune`) cleans up
//!   after the ones deleted from the config.
//! - [`plan_file`] saves a dry run as a plan file (`vss plan -o`) and checks a run planned
//!   again against it (`vss apply`): the engine writes only when nothing went stale.
//! - [`store`] holds the one list of stores (the `stores!` table generating
//!   [`store::StoreConfig`], [`store::AnyStore`], the defaults blocks and the sessions), the
//!   [`store::Store`] (I/O) and [`store::StoreKind`] (everything else) traits, the
//!   [`store::Capabilities`] the engine reads instead of asking which store it is, and the
//!   stores themselves (`file`, `vault`, `aws`, `s3`, `github`, `gcp`, `kubernetes`, `env`). The conformance
//!   suite every store passes is in `tests/it/`.
//! - [`error`] has the exit codes and the [`error::ErrorKind`] every failure carries.
//! - [`report`] renders human, JSON, GitHub Actions and compact output, `validate` and
//!   `graph`.
//! - [`status`] (`vss status`) and [`ensure`] (`vss ensure`) run the same engine with other
//!   options (a dry run from the sources turned into findings; only missing names
//!   written); [`audit`] appends every run's events to the audit log and reads them back;
//!   [`time`] formats and parses the UTC timestamps they use.
//! - [`span`], [`diagnostic`] and [`yaml`] are leaf modules: stores use them for their
//!   config types without depending on `config/`.
//!
//! Secret values never reach a log, an error or a report: [`secret::SecretValue`] has no
//! `Display` and no `Serialize`, its `Debug` prints `<redacted>`, and reports carry keyed
//! fingerprints.

pub mod audit;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod diff;
pub mod engine;
pub mod ensure;
pub mod error;
pub mod flatten;
pub mod graph;
pub mod merge;
pub mod plan;
pub mod plan_file;
pub mod provenance;
pub mod prune;
pub mod registry;
pub mod report;
pub mod run;
pub mod scrub;
pub mod secret;
pub mod select;
pub mod span;
pub mod status;
pub mod store;
pub mod time;
pub mod yaml;

pub use run::run;
