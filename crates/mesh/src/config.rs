//! Tuning of the mesh.

use std::time::Duration;

/// How many neighbors to keep, how often to look after the mesh, and the flooding timers.
#[derive(Clone, Debug, PartialEq)]
pub struct MeshConfig {
    /// Below this many neighbors the node connects at once (Windows: 2).
    pub min_neighbors: usize,
    /// The number of neighbors maintenance aims for (Windows: 3).
    pub ideal_neighbors: usize,
    /// Above this many, new neighbors are refused with referrals (Windows: 7).
    pub max_neighbors: usize,
    /// Period of mesh maintenance while connected.
    pub maintenance_interval: Duration,
    /// Period of mesh maintenance while alone (Windows: 30 s).
    pub lonely_maintenance_interval: Duration,
    /// Chance, per maintenance round at the ideal size, of adding one random neighbor so the
    /// mesh keeps mixing (and heals partitions); the least useful one is dropped later.
    pub shuffle_probability: f64,
    /// The longest wait for a payload announced by a lazy neighbor before asking for it, and
    /// the wait until a node has measured how late pushes come after announcements; from
    /// then on it waits the smoothed lag plus five deviations, down to
    /// [`MIN_GRAFT_TIMEOUT`](crate::limits::MIN_GRAFT_TIMEOUT) (default 500 ms: well above a
    /// push's one-way delay; a push slower than this only costs a duplicate). While most of
    /// a node's pulls turn out late (their push came after all), this ceiling rises, up to
    /// [`MAX_GRAFT_CEILING_FACTOR`](crate::limits::MAX_GRAFT_CEILING_FACTOR) times.
    pub graft_timeout: Duration,
    /// Period of anti-entropy: a sync with one random neighbor, which repairs anything
    /// flooding lost.
    pub anti_entropy_interval: Duration,
    /// Time allowed for the hello/welcome exchange.
    pub handshake_timeout: Duration,
    /// A sync making no progress for this long is abandoned (and retried later).
    pub sync_stall_timeout: Duration,
    /// Retry delay after a failed connection attempt to an address (doubles per failure).
    pub retry_backoff: Duration,
    /// Whether to publish a presence record.
    pub publish_presence: bool,
    /// Referrals sent with a refusal or a disconnect (Windows: up to 10).
    pub max_referrals: usize,
    /// Most sync messages queued on a link per call; the driver asks for more with
    /// [`Core::continue_sync`](crate::Core::continue_sync) when the connection has room, so a
    /// large sync never floods a send queue.
    pub sync_burst: usize,
    /// Whether to punch holes to present members by ourselves while short of neighbors
    /// (with [`Core::punch`](crate::Core::punch)); an application can always ask for one.
    pub auto_punch: bool,
    /// What this node does as a relay for members that cannot connect directly.
    pub relay: crate::core::RelayLimits,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            min_neighbors: 2,
            ideal_neighbors: 3,
            max_neighbors: 7,
            maintenance_interval: Duration::from_secs(30),
            lonely_maintenance_interval: Duration::from_secs(5),
            shuffle_probability: 0.1,
            graft_timeout: Duration::from_millis(500),
            anti_entropy_interval: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
            sync_stall_timeout: Duration::from_secs(10),
            retry_backoff: Duration::from_secs(2),
            publish_presence: true,
            max_referrals: 10,
            sync_burst: 16,
            auto_punch: true,
            relay: crate::core::RelayLimits::default(),
        }
    }
}

impl MeshConfig {
    /// Checks `min ≤ ideal ≤ max` and `max ≥ 1`.
    pub fn check(&self) -> Result<(), String> {
        if !(1 <= self.min_neighbors
            && self.min_neighbors <= self.ideal_neighbors
            && self.ideal_neighbors <= self.max_neighbors)
        {
            return Err(format!(
                "neighbor counts must satisfy 1 ≤ min ≤ ideal ≤ max (got {}/{}/{})",
                self.min_neighbors, self.ideal_neighbors, self.max_neighbors
            ));
        }
        if self.sync_burst == 0 {
            return Err("sync burst must be at least 1".into());
        }
        if !(0.0..=1.0).contains(&self.shuffle_probability) {
            return Err("shuffle probability must be between 0 and 1".into());
        }
        Ok(())
    }
}
