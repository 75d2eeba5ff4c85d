//! Presence and peer time: the member's own presence (its attributes, refreshed before the
//! group's presence lifetime runs out, with every other autorefresh record), the view of who
//! is a member and who is present, and the group's shared clock. Its one deadline is the next
//! refresh round. Publishing the presence record is in `local.rs`.

use super::members::MemberView;
use super::presence_bound::Publishing;
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
    /// When this node last published its presence again because it was reported lost.
    pub(super) republished: Option<Mono>,
    /// Whether it was reported lost since (and is to publish again when allowed).
    pub(super) reported_lost: bool,
    /// Whether this node publishes its presence where the group bounds presences.
    pub(super) publishing: Publishing,
    /// Whether the application asked for its presence to be published (whatever the bound).
    pub(super) forced: bool,
    /// When presence maintenance acts on the imbalance it saw, if it saw one.
    pub(super) maintenance: Option<Mono>,
}

impl PresenceTime {
    pub(super) fn new(peer_time: PeerTime, now: Mono) -> Self {
        PresenceTime {
            peer_time,
            attributes: String::new(),
            members: MemberView::default(),
            next_refresh: now,
            republished: None,
            reported_lost: false,
            publishing: Publishing::Undecided,
            forced: false,
            maintenance: None,
        }
    }

    /// The next deadline: the refresh round.
    pub(super) fn next_deadline(&self) -> Mono {
        self.next_refresh
    }
}
