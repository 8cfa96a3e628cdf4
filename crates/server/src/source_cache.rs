//! Recently read sources with their secrets opened, so that an ingest request costs no database
//! read and no decryption. An entry lives [`TTL`]; this node's own changes drop it at once, and
//! another node's changes (several nodes on PostgreSQL) take effect within [`TTL`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::model::SourceRecord;
use switchyard_marketplaces::SourceSecret;

use crate::AppState;
use crate::error::AppResult;
use switchyard_core::model::SourceId;

/// How long a source read from the store is used without reading it again.
pub const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most; past it the cache starts over (sources are few, ids in URLs are not).
const MAX_ENTRIES: usize = 10_000;

/// A source and its opened secrets.
pub type CachedSource = (Arc<SourceRecord>, Arc<Vec<SourceSecret>>);

#[derive(Default, Clone)]
pub struct SourceCache {
    entries: Arc<Mutex<HashMap<SourceId, (CachedSource, Instant)>>>,
}

impl SourceCache {
    /// The source `id` with its secrets opened, from the cache or the store; `None` if there is
    /// no such source (never cached: a source created on another node is seen at once).
    pub async fn get(&self, state: &AppState, id: SourceId) -> AppResult<Option<CachedSource>> {
        if let Some((cached, read_at)) = self.lock().get(&id)
            && read_at.elapsed() < TTL
        {
            return Ok(Some(cached.clone()));
        }
        let Some(source) = crate::services::scope::inbound(state)
            .get_source(id)
            .await?
        else {
            self.forget(id);
            return Ok(None);
        };
        let secrets = crate::services::sources::open_secrets(state, &source)?;
        let cached = (Arc::new(source), Arc::new(secrets));
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(id, (cached.clone(), Instant::now()));
        Ok(Some(cached))
    }

    /// Drops a source changed or deleted on this node.
    pub fn forget(&self, id: SourceId) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceId, (CachedSource, Instant)>> {
        // A panic while holding the lock leaves a map that is still a valid cache.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}
