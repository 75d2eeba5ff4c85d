//! Membership churn in the simulator: members joining (invited by the creator, which stores
//! their membership records) and leaving for good, while records flow (see
//! [`MembershipChurn`](super::MembershipChurn)).

use std::collections::BTreeSet;
use std::time::Duration;

use peergroup_record_db::Database;
use peergroup_record_db::store::MemoryStore;

use super::{Simulation, epoch, network};

impl Simulation {
    /// Schedules the joins and leaves: one join and one leave every `every_ms` from the
    /// warmup (a leave half an interval after its join), the leavers drawn among the nodes
    /// present from the start, neither the creator nor one in `crashing`.
    pub(super) fn schedule_membership(&mut self, crashing: &BTreeSet<usize>) {
        let Some(m) = self.scenario.membership.clone() else {
            return;
        };
        let at = |k: usize, offset: u64| {
            epoch().saturating_add(Duration::from_millis(
                self.scenario.warmup_secs * 1000 + k as u64 * m.every_ms + offset,
            ))
        };
        let joins: Vec<_> = (0..m.joins).map(|k| at(k, 0)).collect();
        let leaves: Vec<_> = (0..m.leaves).map(|k| at(k, m.every_ms / 2)).collect();
        for (k, when) in joins.into_iter().enumerate() {
            self.net
                .schedule(when, network::Ev::Join(self.scenario.nodes + k));
        }
        // `Scenario::check` leaves enough nodes to draw from.
        let candidates = self.scenario.nodes as u64 - 1;
        let mut drawn = BTreeSet::new();
        for when in leaves {
            let node = loop {
                let node = 1 + self.rng.below(candidates) as usize;
                if !crashing.contains(&node) && drawn.insert(node) {
                    break node;
                }
            };
            self.net.schedule(when, network::Ev::Leave(node));
        }
    }

    /// A member joins: the creator stores its membership record (an invitation with
    /// `--store`), and the joiner starts with an empty database.
    pub(super) fn join(&mut self, i: usize) -> Result<(), crate::Error> {
        let chain = self.nodes[i].chain.clone();
        if let Some(creator) = self.nodes[0].core.as_mut() {
            creator.publish_credentials(&chain, self.now.into())?;
            self.pump(0);
        }
        self.nodes[i].joiner = Some(Some(self.now));
        self.start_node(i, Database::open(MemoryStore::new(), &self.root)?)
    }

    /// A member leaves for good: it says goodbye, withdraws its presence and closes its
    /// links; its counters are kept for the report.
    pub(super) fn leave(&mut self, i: usize) -> Result<(), crate::Error> {
        let Some(core) = self.nodes[i].core.as_mut() else {
            return Ok(());
        };
        core.close(self.now.into())?;
        self.pump(i);
        if let Some(core) = self.nodes[i].core.take() {
            self.retired_stats.push((i, core.stats().clone()));
        }
        let node = &mut self.nodes[i];
        node.left = true;
        node.incarnation += 1;
        node.next_timer = None;
        Ok(())
    }
}
