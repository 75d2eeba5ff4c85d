//! Presence maintenance: whether this node publishes its presence in a group that bounds the
//! presences it holds (the group property `max_presence`, Windows' Max Presence Records,
//! MS-PPGRH 3.1.7.17; docs/presence-at-scale.md).
//!
//! In a group of [`GroupProperties::ALL_PRESENCE`] every node publishes, as always. Otherwise
//! a node decides once it has synchronised (before, it cannot know what the group holds): it
//! publishes if it holds fewer than the bound `M` of other nodes' online presences. From then
//! on every refresh round looks for an imbalance — a publisher holding more than `M` +
//! [`PRESENCE_SLACK`], a non-publisher fewer than `M` — and, when it first sees one, sets a
//! timer uniform in [`PRESENCE_MAINTENANCE_MIN`]..[`PRESENCE_MAINTENANCE_MAX`]. When the timer
//! fires and the imbalance is still there, the node publishes, or deletes its presence, with a
//! chance that makes about four of the nodes that could act do so for each presence missing
//! (or too many): in a group of 10,000 a lost publisher is not replaced by thousands. The
//! timers spread those few over two and a half minutes, and each looks again when its turn
//! comes, after the earlier ones' floods reached it: the count closes on the bound instead of
//! every node answering the same gap at once. (Windows acts on every timer: in a large group
//! all nodes that saw a gap would publish within the spread of their timers.)
//!
//! Each member's presences count at most [`MAX_COUNTED_PRESENCES_PER_MEMBER`] times, so one
//! member cannot crowd the others' presence out by publishing under many node ids.
//!
//! A node whose application set presence attributes ([`Core::set_presence_attributes`]) is
//! *forced*: it publishes whatever the count, as Windows' Force Publish Presence. Forced
//! presences count toward the bound, so automatic ones make room for them.

use std::time::Duration;

use peergroup_record_db::LocalSigner;
use peergroup_record_db::reserved::{GroupProperties, property_flags};
use peergroup_record_db::store::Store;

use super::Core;
use crate::presence::Presence;
use crate::time::Now;

/// How far over the bound a publisher's count may go before it considers unpublishing
/// (Windows: 10), so that counts a little apart from node to node do not make nodes publish
/// and unpublish in turn.
pub const PRESENCE_SLACK: usize = 10;
/// The most presences of one member that count toward the bound (a member with several
/// devices has several nodes). A member publishing presence under many node ids would
/// otherwise count as many nodes, and the others' maintenance would withdraw theirs until the
/// group's presence was its own.
pub const MAX_COUNTED_PRESENCES_PER_MEMBER: usize = 4;
/// The shortest wait between seeing an imbalance and acting on it (Windows: 30 s).
pub const PRESENCE_MAINTENANCE_MIN: Duration = Duration::from_secs(30);
/// The longest such wait (Windows: 180 s).
pub const PRESENCE_MAINTENANCE_MAX: Duration = Duration::from_secs(180);
/// How many nodes, on average, act in a maintenance round for each presence missing (or too
/// many): more than one so that a round rarely passes with none acting, few enough that two
/// rarely act within the time a flood takes to reach the others.
const PRESENCE_EAGERNESS: f64 = 4.0;

/// What this node does about its presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Publishing {
    /// Not decided yet: the node has not synchronised, so it does not know what the group holds.
    Undecided,
    /// Publishes (its presence counts toward the bound).
    Yes,
    /// Does not.
    No,
}

impl<S: Store> Core<S> {
    /// The group's bound on presences, `None` when every node publishes.
    fn presence_bound(&self) -> Option<usize> {
        let max = self.db.properties().max_presence;
        (max != GroupProperties::ALL_PRESENCE).then_some(max as usize)
    }

    /// Whether this node publishes its presence now, deciding if it has not yet (see the
    /// module docs).
    pub(super) fn presence_wanted(&mut self) -> bool {
        let props = self.db.properties();
        if !self.config.publish_presence
            || props.flags & property_flags::DISABLE_PRESENCE != 0
            || self.closed
        {
            return false;
        }
        let Some(bound) = self.presence_bound() else {
            self.presence.publishing = Publishing::Yes;
            return true;
        };
        if self.presence.forced {
            self.presence.publishing = Publishing::Yes;
            return true;
        }
        if self.presence.publishing == Publishing::Undecided && self.status.ever_synchronized {
            // A node that publishes already (the group bounded presences since) keeps on
            // until maintenance finds too many.
            let held = self.presences_held();
            self.presence.publishing = if held < bound || self.publishes_presence() {
                Publishing::Yes
            } else {
                Publishing::No
            };
        }
        self.presence.publishing == Publishing::Yes
    }

    /// One round of presence maintenance (from the refresh round): sees an imbalance and sets
    /// the timer, or acts on it when the timer is due (see the module docs).
    pub(super) fn maintain_presence(&mut self, now: Now) {
        let Some(bound) = self.presence_bound() else {
            // Every node publishes: one that withdrew its presence while the group bounded
            // them publishes again.
            self.presence.maintenance = None;
            if self.presence_wanted()
                && !self.publishes_presence()
                && let Err(e) = self.publish_presence(now)
            {
                tracing::debug!("presence maintenance: {e}");
            }
            return;
        };
        if !self.presence_wanted() && self.presence.publishing != Publishing::No {
            // Presence is off (by configuration, the group's flags, or undecided).
            self.presence.maintenance = None;
            return;
        }
        let held = self.presences_held();
        let imbalance = match self.presence.publishing {
            Publishing::Yes => !self.presence.forced && held + 1 > bound + PRESENCE_SLACK,
            Publishing::No => held < bound,
            Publishing::Undecided => false,
        };
        if !imbalance {
            self.presence.maintenance = None;
            return;
        }
        let due = match self.presence.maintenance {
            Some(due) => due,
            None => {
                let span = (PRESENCE_MAINTENANCE_MAX - PRESENCE_MAINTENANCE_MIN).as_millis() as u64;
                let wait = PRESENCE_MAINTENANCE_MIN + Duration::from_millis(self.rng.below(span));
                let due = now.mono.saturating_add(wait);
                self.presence.maintenance = Some(due);
                due
            }
        };
        if now.mono < due {
            self.presence.next_refresh = self.presence.next_refresh.min(due);
            return;
        }
        // The timer fired and the imbalance is still there. Every node that saw it has a
        // timer; each acts with a chance that makes about PRESENCE_EAGERNESS of them act for
        // each presence missing or too many, so that the first closes the gap and the others,
        // looking when their turn comes, find nothing to do: few act at the same moment, where
        // all would in a large group. A round where none acted is followed by another.
        self.presence.maintenance = None;
        let members = self.db.members().peer_count();
        let (gap, candidates) = match self.presence.publishing {
            Publishing::No => (bound.saturating_sub(held), members.saturating_sub(held + 1)),
            _ => ((held + 1).saturating_sub(bound + PRESENCE_SLACK), held + 1),
        };
        let chance = (PRESENCE_EAGERNESS * gap as f64 / candidates.max(1) as f64).min(1.0);
        if !self.rng.chance(chance) {
            return;
        }
        let result = match self.presence.publishing {
            Publishing::No => {
                self.presence.publishing = Publishing::Yes;
                self.publish_presence(now)
            }
            _ => {
                self.presence.publishing = Publishing::No;
                self.unpublish_presence(now)
            }
        };
        if let Err(e) = result {
            tracing::debug!("presence maintenance: {e}");
        }
    }

    /// Deletes this node's presence record, if it has one, and floods the deletion.
    fn unpublish_presence(&mut self, now: Now) -> Result<(), crate::Error> {
        let id = Presence::record_id(self.peer(), self.node);
        // (`get` returns live records only.)
        if self.db.get(id)?.is_none() {
            return Ok(());
        }
        let signer = LocalSigner {
            key: &self.me.key,
            chain: &self.me.chain,
        };
        let change = self.db.delete(signer, id, now.wall)?;
        self.commit(change, now);
        Ok(())
    }

    /// Whether this node publishes its presence (for tests, tools and the simulator's report).
    pub fn publishes_presence(&self) -> bool {
        let id = Presence::record_id(self.peer(), self.node);
        matches!(self.db.get(id), Ok(Some(_)))
    }

    /// How many other nodes' presences this node holds as online, as presence maintenance
    /// counts them (at most [`MAX_COUNTED_PRESENCES_PER_MEMBER`] of a member).
    pub fn presences_held(&self) -> usize {
        self.presence
            .members
            .online_nodes_except(self.node, MAX_COUNTED_PRESENCES_PER_MEMBER)
    }
}
