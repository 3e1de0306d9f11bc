//! The integration tests, as one test binary: each file is a module, so the SDKs are
//! linked once rather than once per file.
//!
//! - [`vault`]: the Vault store against real OpenBao servers, checked with plain HTTP calls;
//! - [`aws`]: Secrets Manager and S3 against moto, checked with raw SDK calls;
//! - [`conformance`]: the suite every store passes (here against `file` in each layout;
//!   `vault` and `aws` run it against their servers);
//! - [`pipeline_file`]: end-to-end pipelines through the binary;
//! - [`plan_apply`]: `vss plan -o` and `vss apply`, applied exactly or refused as stale;
//! - [`config_errors`]: one bad config per file in `fixtures/config/invalid/`, each
//!   rendered error locked by a snapshot;
//! - [`byte_exact`]: arbitrary strings and numbers through every store, exactly or refused;
//! - [`properties`]: merge and diff laws, the flattening, config parsing never panics;
//! - [`no_leak`]: canary values through every output format, log and `Debug`;
//! - [`github`]: the GitHub store end to end, against [`github_server`], the loopback
//!   GitHub test server (real sealed boxes, decrypted on arrival);
//! - [`gcp`]: the GCP Secret Manager store end to end, against [`gcp_server`], the loopback
//!   Secret Manager test server held to Google's discovery document;
//! - [`github_workflows`]: environments as code, `vss ensure` (also by dispatch), `vss
//!   status` and the audit log, against the same server;
//! - [`explain`]: `vss explain` and `pipeline --provenance`;
//! - [`fidelity`]: random pipelines on every store: what the dry run says is what applying
//!   does, read back through the servers;
//! - [`cli`], [`schemas`], [`examples`], [`quickstart`], [`bench_smoke`].

pub mod aws;
mod bench_smoke;
mod byte_exact;
mod cli;
mod common;
mod config_errors;
mod conformance;
mod echo;
mod examples;
mod explain;
mod fidelity;
mod fuzz_config;
mod gcp;
mod gcp_server;
mod github;
mod github_server;
mod github_workflows;
mod kube_server;
mod kubernetes;
mod loopback;
pub mod no_leak;
mod pipeline_file;
mod plan_apply;
mod properties;
mod quickstart;
pub mod schemas;
mod select;
pub mod vault;
