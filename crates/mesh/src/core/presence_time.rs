//! Presence and peer time: the member's own presence (its attributes, refreshed before the
//! group's presence lifetime runs out, with every other autorefresh record), the view of who
//! is a member and who is present, and the group's shared clock. Its one deadline is the next
//! refresh round. Publishing the presence record is in `local.rs`.

use super::members::MemberView;
use crate::peer_time::PeerTime;
use crate::time::Mono;

/// Presence and peer time (see the module docs).
#[derive(Debug)]
pub(super) struct PresenceTime {
    pub(super) peer_time: PeerTime,
    /// The application attributes published in this node's presence.
    pub(super) attributes: String,
    /// Members and who of them is present.
    pub(super) members: MemberView,
    pub(super) next_refresh: Mono,
}

impl PresenceTime {
    pub(super) fn new(peer_time: PeerTime, now: Mono) -> Self {
        PresenceTime {
            peer_time,
            attributes: String::new(),
            members: MemberView::default(),
            next_refresh: now,
        }
    }

    /// The next deadline: the refresh round.
    pub(super) fn next_deadline(&self) -> Mono {
        self.next_refresh
    }
}
