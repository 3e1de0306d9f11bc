//! A store as the engine uses it: every call bounded by the phase's concurrency limit and
//! wrapped in the one retry policy.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::secret::{LiveSecret, LiveState, SecretPath, SecretValue};
use crate::store::retry::RetryPolicy;
use crate::store::{AnyStore, Capabilities, Store, StoreError};

/// A store with a concurrency limit and retries.
#[derive(Debug)]
pub struct Handle {
    store: AnyStore,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
    parallel: usize,
}

impl Handle {
    /// Wraps `store`; `limiter` is shared by every store call of the phase.
    pub fn new(store: AnyStore, limiter: Arc<Semaphore>, parallel: usize) -> Self {
        Self { store, limiter, retry: RetryPolicy::default(), parallel }
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, StoreError> {
        self.limiter
            .acquire()
            .await
            .map_err(|_| StoreError::new(crate::error::ErrorKind::Internal, "the run is shutting down"))
    }

    /// What the store can do.
    pub fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }

    /// Applies writes and deletes as one change (stores with `atomic_commit`).
    pub async fn commit(
        &self,
        writes: &[(SecretPath, SecretValue)],
        deletes: &[SecretPath],
        owner: &str,
    ) -> Result<(), StoreError> {
        let _permit = self.permit().await?;
        tracing::debug!(store = self.store.kind(), writes = writes.len(), deletes = deletes.len(), owner, "commit");
        self.retry.run("commit", || self.store.commit(writes, deletes, owner)).await
    }

    /// Reads a batch of secrets (as many as the store reads per call).
    pub async fn read_batch(&self, paths: &[SecretPath]) -> Result<Vec<(SecretPath, LiveSecret)>, StoreError> {
        let _permit = self.permit().await?;
        tracing::trace!(store = self.store.kind(), secrets = paths.len(), "read");
        self.retry.run("read", || self.store.read_batch(paths)).await
    }

    /// How desired secrets become the store's flat names, when it holds one string per name.
    pub fn flattening(&self) -> Option<crate::flatten::FlattenOptions> {
        self.store.flattening()
    }

    /// The exclusion pattern `name` matches, if any.
    pub fn excluded(&self, name: &SecretPath) -> Option<String> {
        self.store.excluded(name)
    }

    /// Why the store would refuse `name`, if it would.
    pub fn name_error(&self, name: &SecretPath) -> Option<String> {
        self.store.name_error(name)
    }

    /// Why the store would refuse the desired state, if it would ([`crate::store::Store::desired_error`]).
    pub fn desired_error(&self, desired: &crate::secret::SecretMap) -> Option<String> {
        self.store.desired_error(desired)
    }

    /// The key of the fingerprints the store's reads return, if it returns any.
    pub fn fingerprints(&self) -> Option<&crate::secret::Fingerprinter> {
        self.store.fingerprints()
    }

    /// What to say of the secrets the store reports as unverified.
    pub fn unverified_hint(&self) -> Option<String> {
        self.store.unverified_hint()
    }

    /// The API quota the store draws from, if it has one ([`Store::quota`]).
    pub fn quota(&self) -> Option<&Arc<crate::store::quota::QuotaPool>> {
        self.store.quota()
    }

    /// The API calls applying `changes` changes takes ([`Store::calls_for`]).
    pub fn calls_for(&self, changes: usize) -> usize {
        self.store.calls_for(changes)
    }

    /// The location's declared settings that differ from the store's ([`Store::settings`]).
    pub async fn settings(&self) -> Result<Option<crate::diff::SettingsChange>, StoreError> {
        let _permit = self.permit().await?;
        self.retry.run("settings", || self.store.settings()).await
    }

    /// Applies the location's declared settings ([`Store::apply_settings`]).
    pub async fn apply_settings(&self) -> Result<(), StoreError> {
        let _permit = self.permit().await?;
        tracing::debug!(store = self.store.kind(), "settings");
        self.retry.run("apply settings", || self.store.apply_settings()).await
    }

    /// Lets the store record the ownership of what is about to be written ([`Store::prepare`]).
    pub async fn prepare(&self, paths: &[SecretPath], owner: &str) -> Result<(), StoreError> {
        let _permit = self.permit().await?;
        self.retry.run("prepare", || self.store.prepare(paths, owner)).await
    }

    /// Lets the store record what was applied ([`Store::finish`]).
    pub async fn finish(&self) -> Result<(), StoreError> {
        let _permit = self.permit().await?;
        self.retry.run("finish", || self.store.finish()).await
    }

    /// How many calls this handle queues at once.
    pub fn parallel(&self) -> usize {
        self.parallel.max(1)
    }

    /// Lists every secret path.
    pub async fn list(&self) -> Result<Vec<SecretPath>, StoreError> {
        let _permit = self.permit().await?;
        self.retry.run("list", || self.store.list()).await
    }

    /// Writes one secret with its ownership marker.
    pub async fn write(&self, path: &SecretPath, value: &SecretValue, owner: &str) -> Result<(), StoreError> {
        let _permit = self.permit().await?;
        tracing::debug!(store = self.store.kind(), %path, owner, "write");
        self.retry.run("write", || self.store.write(path, value, owner)).await
    }

    /// Deletes one secret.
    pub async fn delete(&self, path: &SecretPath) -> Result<(), StoreError> {
        let _permit = self.permit().await?;
        tracing::debug!(store = self.store.kind(), %path, "delete");
        self.retry.run("delete", || self.store.delete(path)).await
    }

    /// Everything below the store's location: one list, then the reads, concurrently, in
    /// batches where the store has a batch read. A secret deleted between the list and the
    /// read is simply not there.
    pub async fn read_state(&self) -> Result<LiveState, StoreError> {
        let recorded = {
            let _permit = self.permit().await?;
            self.retry.run("read the record", || self.store.recorded_state()).await?
        };
        if let Some(state) = recorded {
            return Ok(state);
        }
        self.list_and_read().await
    }

    /// A merge bundle as its last complete MERGE left it ([`Store::complete_state`]), or,
    /// from a store that keeps no record of complete bundles, everything it holds.
    pub async fn read_bundle(&self) -> Result<LiveState, StoreError> {
        let complete = {
            let _permit = self.permit().await?;
            self.retry.run("read the bundle", || self.store.complete_state()).await?
        };
        match complete {
            Some(state) => {
                state.values().filter_map(LiveSecret::value).for_each(crate::scrub::remember);
                Ok(state)
            }
            None => self.list_and_read().await,
        }
    }

    async fn list_and_read(&self) -> Result<LiveState, StoreError> {
        let paths = self.list().await?;
        self.read_paths(&paths).await
    }

    /// Reads `paths`, concurrently, in batches where the store has a batch read. A secret
    /// that does not exist is simply not there.
    pub async fn read_paths(&self, paths: &[SecretPath]) -> Result<LiveState, StoreError> {
        let batch = self.store.batch_size().max(1);
        let reads = futures::stream::iter(paths.chunks(batch))
            .map(|chunk| self.read_batch(chunk))
            .buffer_unordered(self.parallel.max(1));
        let results: Vec<Result<Vec<(SecretPath, LiveSecret)>, StoreError>> = reads.collect().await;
        let mut state = LiveState::new();
        for result in results {
            for (path, secret) in result? {
                // Whatever a server echoes later, these values never reach an output.
                if let Some(value) = secret.value() {
                    crate::scrub::remember(value);
                }
                state.insert(path, secret);
            }
        }
        Ok(state)
    }
}
