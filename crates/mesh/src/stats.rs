//! Counters of what a node sent and received, for the simulator's redundancy figures.

use crate::message::MeshMessage;

/// Message and delivery counters of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Record payloads pushed (flood messages sent).
    pub floods_sent: u64,
    /// Record payloads received.
    pub floods_received: u64,
    /// Received payloads this node already had (redundant copies).
    pub duplicate_floods: u64,
    /// Records first learned from a flood (deliveries by flooding).
    pub delivered_by_flood: u64,
    /// Records first learned by synchronisation.
    pub delivered_by_sync: u64,
    /// Announcements sent.
    pub ihave_sent: u64,
    /// Keys announced.
    pub ihave_keys_sent: u64,
    /// Payload requests sent.
    pub grafts_sent: u64,
    /// Announced payloads given up to anti-entropy: no announcer answered in time, or none
    /// is linked any more.
    pub pulls_given_up: u64,
    /// Pushes of a record this node had pulled, within 3 s of the pull (they were late, not
    /// lost; each pull is judged once, late or lost).
    pub pushes_after_pull: u64,
    /// Pulled records no push followed within 3 s (lost, or no tree
    /// reached this node).
    pub pulls_without_push: u64,
    /// Prunes sent.
    pub prunes_sent: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Syncs abandoned (stalled by a lost message, or failed).
    pub syncs_abandoned: u64,
    /// Every message sent.
    pub messages_sent: u64,
    /// Announced keys not waited for: their link had too many waiting already.
    pub announcements_ignored: u64,
    /// Sync sessions refused: a neighbor started them faster than allowed.
    pub syncs_refused: u64,
    /// Incoming links closed at once: over the per-member or waiting-for-hello bound.
    pub links_refused: u64,
    /// Hole punches dialed (this node's side of an exchange that completed).
    pub punches: u64,
    /// Punch messages forwarded for other members.
    pub punches_relayed: u64,
    /// Punch messages ignored: over a relay's rate or this node's bound on open offers.
    pub punches_refused: u64,
    /// Relayed streams this node opened or was reached through (it is an end of them).
    pub relayed_streams: u64,
    /// Circuits this node relayed for others.
    pub relays_served: u64,
    /// Relay requests and incoming circuits refused (limits, no such member, not serving).
    pub relays_refused: u64,
    /// Relayed circuits cut by a limit (bytes, duration, credit ignored).
    pub relays_cut: u64,
    /// Bytes this node relayed for others.
    pub relayed_bytes: u64,
}

/// How far the syncs running now have got (all links together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncProgress {
    /// Syncs running.
    pub running: usize,
    /// Records received by them so far.
    pub received: u64,
    /// Records they expect to receive, over the classes reconciled so far (grows as each
    /// reconciliation finishes; an upper bound, since a record replaced meanwhile is skipped).
    pub expected: u64,
}

impl Stats {
    pub(crate) fn count_sent(&mut self, m: &MeshMessage) {
        self.messages_sent += 1;
        match m {
            MeshMessage::Flood(_) | MeshMessage::Repush(_) => self.floods_sent += 1,
            MeshMessage::IHave(keys) => {
                self.ihave_sent += 1;
                self.ihave_keys_sent += keys.len() as u64;
            }
            MeshMessage::Graft { .. } => self.grafts_sent += 1,
            MeshMessage::Prune => self.prunes_sent += 1,
            _ => {}
        }
    }
}
