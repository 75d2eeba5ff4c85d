//! Presence and peer time: the member's own presence (its attributes, refreshed before the
//! group's presence lifetime runs out, with every other autorefresh record), the view of who
//! is a member and who is present, and the group's shared clock. Its one deadline is the next
//! refresh round. Publishing the presence record is in `local.rs`.

use std::time::Duration;

use super::members::MemberView;
use super::presence_bound::Publishing;
use crate::peer_time::PeerTime;
use crate::rng::Rng;
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

/// The mean time between refresh rounds.
pub(super) const REFRESH_ROUND: Duration = Duration::from_secs(10);

/// The time to the next refresh round: [`REFRESH_ROUND`] ± a quarter, drawn anew each
/// round. Nodes started together (a fleet restarted, the demo, the simulator) would
/// otherwise refresh, sweep and maintain presence in the same instant for as long as they
/// ran, and their presences flood in bursts: in the simulator, 1,000 nodes publishing 128
/// presences without crashes measured presence RMR 0.303 with 10-second rounds, 0.134 with
/// these (refresh margins are a quarter of the presence lifetime, 20 s at least: a round
/// 2.5 s late changes nothing there).
pub(super) fn refresh_round(rng: &mut Rng) -> Duration {
    let quarter = REFRESH_ROUND.as_millis() as u64 / 4;
    REFRESH_ROUND - Duration::from_millis(quarter)
        + Duration::from_millis(rng.below(2 * quarter + 1))
}
