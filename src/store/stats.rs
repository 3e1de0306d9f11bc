//! API call counters per store kind, reported as `stats.calls` so a no-op run can be seen
//! to write nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// The four kinds of store call.
#[derive(Clone, Copy, Debug)]
pub enum Call {
    /// Listing secrets (one call per page or directory walk).
    List,
    /// Reading a secret (or a whole file / bundle).
    Read,
    /// Writing a secret.
    Write,
    /// Deleting a secret.
    Delete,
}

/// Counters of one store kind; stores increment them once per real API call.
#[derive(Debug, Default)]
pub struct CallCounter {
    list: AtomicU64,
    read: AtomicU64,
    write: AtomicU64,
    delete: AtomicU64,
    quota: Mutex<Option<Quota>>,
}

/// An API's rate limit, as the server last reported it (GitHub's `x-ratelimit-*`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Quota {
    /// Calls allowed in the window.
    pub limit: u64,
    /// Calls left in the window.
    pub remaining: u64,
    /// Calls used in the window (by every client of the login).
    pub used: u64,
    /// When the window resets, in Unix seconds.
    pub reset: i64,
}

impl CallCounter {
    /// Counts one call.
    pub fn count(&self, call: Call) {
        let counter = match call {
            Call::List => &self.list,
            Call::Read => &self.read,
            Call::Write => &self.write,
            Call::Delete => &self.delete,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the rate limit the server reported in its last answer.
    pub fn set_quota(&self, quota: Quota) {
        *self.quota.lock().unwrap_or_else(|e| e.into_inner()) = Some(quota);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> CallCounts {
        CallCounts {
            list: self.list.load(Ordering::Relaxed),
            read: self.read.load(Ordering::Relaxed),
            write: self.write.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            quota: *self.quota.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

/// A snapshot of one store kind's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CallCounts {
    /// List calls.
    pub list: u64,
    /// Read calls.
    pub read: u64,
    /// Write calls.
    pub write: u64,
    /// Delete calls.
    pub delete: u64,
    /// The API's rate limit as last reported, for stores whose API has one (GitHub).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<Quota>,
}

/// All counters of one run, by store kind.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    counters: Arc<Mutex<BTreeMap<&'static str, Arc<CallCounter>>>>,
}

impl Stats {
    /// The counter of a store kind, created on first use.
    pub fn counter(&self, kind: &'static str) -> Arc<CallCounter> {
        let mut map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(kind).or_default().clone()
    }

    /// The counts of every kind used so far.
    pub fn snapshot(&self) -> BTreeMap<String, CallCounts> {
        let map = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (k.to_string(), v.snapshot())).collect()
    }
}
