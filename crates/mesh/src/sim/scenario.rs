//! Simulation scenarios, read from TOML files.
//!
//! ```toml
//! name = "1,000 nodes, random senders"
//! seed = 1
//! nodes = 1000
//! records = 100            # records published by random live nodes
//! warmup_secs = 60         # mesh forms before the first record
//! publish_every_ms = 200   # one record every …
//! settle_secs = 120        # time after the last record before the final check
//! latency_ms = 40          # one-way delay
//! jitter_ms = 20           # plus uniform 0..jitter
//! loss = 0.0               # chance that any message is lost
//!
//! [partition]              # optional: cut the network in two for a while
//! start_secs = 80
//! end_secs = 200
//! fraction = 0.5
//!
//! [churn]                  # optional: nodes crash (kill -9) and restart
//! fraction = 0.2           # of the nodes, each once, spread over the run
//! downtime_secs = 30
//!
//! [presence]               # optional: nodes publish presence, the group holding about
//! max = 128                # `max` of them (max_presence); nodes 0..max start published
//!
//! [membership]             # optional: members join and leave while records flow
//! joins = 100              # new members, invited by the creator (node 0), which stores
//!                          # their membership records; each dials the creator first
//! leaves = 100             # members that leave for good (goodbye, links closed)
//! every_ms = 500           # one join and one leave every …, from the warmup
//!
//! [goals]                  # what the run must show (`Report::check`)
//! max_rmr = 0.3            # redundant payload copies per delivery
//! max_missed = 0           # (record, live node) pairs never delivered (the default)
//! max_convergence_p99_ms = 10000
//! max_messages_per_node_per_sec = 5.0   # optional
//! max_kib_per_node = 512   # optional: the process's peak RSS / nodes
//! presences_held = [118, 148]  # optional: what every live node holds at the end
//! max_join_catch_up_p99_ms = 5000  # optional: a joiner's start to its holding every
//!                                  # record published before it
//! ```

use serde::Deserialize;

/// A network cut between the first `fraction` of the nodes and the rest.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    /// When the cut starts (seconds from the start).
    pub start_secs: u64,
    /// When it heals.
    pub end_secs: u64,
    /// Share of nodes on the first side.
    pub fraction: f64,
}

/// Nodes crashing and restarting.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Churn {
    /// Share of the nodes that crash (each once), at random times during the publishing phase.
    pub fraction: f64,
    /// How long a crashed node stays down.
    pub downtime_secs: u64,
}

/// Presence in the simulated group (without it, nodes publish none: see the module docs of
/// [`super`]).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PresenceScenario {
    /// The group's `max_presence`: the presences it holds, about. The first `max` nodes
    /// start with their presence published and held by every node (as in a group that ran
    /// before: 10,000 nodes starting at once and each flooding its presence would cost the
    /// simulator more than the rest of the run); presence maintenance keeps the count from
    /// there as nodes crash and come back.
    pub max: u32,
}

/// Members joining and leaving the group while it runs (membership churn).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MembershipChurn {
    /// New members, beyond `nodes`. Each is invited by the creator (node 0), which stores
    /// its membership record (`Core::publish_credentials`, as `peergroup invite --store`)
    /// when it joins; the joiner starts with an empty database and its invitation's
    /// address, the creator's, and learns the rest from the creator's referrals and syncs.
    #[serde(default)]
    pub joins: usize,
    /// Members (never the creator, nor one that crashes) that leave for good: they say
    /// goodbye, withdraw their presence and close their links (`Core::close`).
    #[serde(default)]
    pub leaves: usize,
    /// The interval between joins, and between leaves, from the end of the warmup.
    pub every_ms: u64,
}

impl MembershipChurn {
    /// When the last join or leave happens (ms after the warmup).
    pub fn span_ms(&self) -> u64 {
        self.joins.max(self.leaves) as u64 * self.every_ms
    }
}

/// What a run must show; [`Report::check`](super::Report::check) says which are broken.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Goals {
    /// Most redundant payload copies per delivery by flooding.
    pub max_rmr: f64,
    /// Most (record, live node) pairs never delivered (default 0).
    #[serde(default)]
    pub max_missed: u64,
    /// Slowest 99th-percentile convergence time (ms).
    pub max_convergence_p99_ms: u64,
    /// Most messages a node sends per second, on average over the nodes and the run.
    #[serde(default)]
    pub max_messages_per_node_per_sec: Option<f64>,
    /// Most peak resident memory per node (KiB): the process's peak divided by the nodes. A
    /// run where the OS does not tell the peak breaks this goal.
    #[serde(default)]
    pub max_kib_per_node: Option<u64>,
    /// The fewest and most other nodes' presences every live node may hold at the end.
    #[serde(default)]
    pub presences_held: Option<[usize; 2]>,
    /// The slowest 99th percentile of a joiner's catch-up: from its start to its holding
    /// every record published before it (ms).
    #[serde(default)]
    pub max_join_catch_up_p99_ms: Option<u64>,
}

/// One simulation run.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A title.
    pub name: String,
    /// The random seed: the same seed gives the same run.
    #[serde(default = "one")]
    pub seed: u64,
    /// Number of members (the creator among them).
    pub nodes: usize,
    /// Records to publish.
    pub records: usize,
    /// Payload bytes per record.
    #[serde(default = "hundred")]
    pub payload_bytes: usize,
    /// Time for the mesh to form before publishing.
    #[serde(default = "sixty")]
    pub warmup_secs: u64,
    /// Interval between records.
    #[serde(default = "two_hundred")]
    pub publish_every_ms: u64,
    /// Time after the last record (and after a partition heals) before the final check.
    #[serde(default = "sixty")]
    pub settle_secs: u64,
    /// One-way latency.
    #[serde(default = "forty")]
    pub latency_ms: u64,
    /// Extra random delay.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Message loss probability.
    #[serde(default)]
    pub loss: f64,
    /// An optional partition.
    #[serde(default)]
    pub partition: Option<Partition>,
    /// Optional churn.
    #[serde(default)]
    pub churn: Option<Churn>,
    /// Optional presence.
    #[serde(default)]
    pub presence: Option<PresenceScenario>,
    /// Optional membership churn.
    #[serde(default)]
    pub membership: Option<MembershipChurn>,
    /// What the run must show. Every scenario states its goals: a run without them would
    /// pass whatever it measured.
    pub goals: Goals,
}

fn one() -> u64 {
    1
}
fn hundred() -> usize {
    100
}
fn sixty() -> u64 {
    60
}
fn two_hundred() -> u64 {
    200
}
fn forty() -> u64 {
    40
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        if self.nodes < 2 || self.nodes > 20_000 {
            return Err("nodes must be between 2 and 20000".into());
        }
        if !(0.0..1.0).contains(&self.loss) {
            return Err("loss must be in [0, 1)".into());
        }
        if let Some(p) = &self.partition
            && (p.end_secs <= p.start_secs || !(0.0..=1.0).contains(&p.fraction))
        {
            return Err("partition needs start < end and a fraction in [0, 1]".into());
        }
        if let Some(c) = &self.churn
            && !(0.0..=1.0).contains(&c.fraction)
        {
            return Err("churn fraction must be in [0, 1]".into());
        }
        if let Some(p) = &self.presence
            && p.max as usize > self.nodes
        {
            return Err("presence.max must be at most the number of nodes".into());
        }
        if self.goals.presences_held.is_some() && self.presence.is_none() {
            return Err("goals.presences_held needs a [presence] table".into());
        }
        if let Some(m) = &self.membership {
            let churned = self.churn.as_ref().map_or(0, |c| {
                (((self.nodes as f64) * c.fraction) as usize).min(self.nodes.saturating_sub(1))
            });
            if self.nodes + m.joins > 20_000 {
                return Err("nodes plus membership.joins must be at most 20000".into());
            }
            if m.leaves + churned >= self.nodes {
                return Err(
                    "membership.leaves must leave the creator and the nodes that crash".into(),
                );
            }
            if m.every_ms == 0 && (m.joins > 0 || m.leaves > 0) {
                return Err("membership.every_ms must be at least 1".into());
            }
        }
        if self.goals.max_join_catch_up_p99_ms.is_some()
            && self.membership.as_ref().is_none_or(|m| m.joins == 0)
        {
            return Err("goals.max_join_catch_up_p99_ms needs membership.joins".into());
        }
        if self.goals.max_rmr.is_nan() || self.goals.max_rmr < 0.0 {
            return Err("goals.max_rmr must be a number ≥ 0".into());
        }
        Ok(())
    }

    /// When the last record is published (ms from the start).
    pub fn publishing_ends_ms(&self) -> u64 {
        self.warmup_secs * 1000 + self.records as u64 * self.publish_every_ms
    }

    /// When the run ends (ms from the start).
    pub fn end_ms(&self) -> u64 {
        let heal = self.partition.as_ref().map_or(0, |p| p.end_secs * 1000);
        let churn = self
            .churn
            .as_ref()
            .map_or(0, |c| self.publishing_ends_ms() + c.downtime_secs * 1000);
        let membership = self
            .membership
            .as_ref()
            .map_or(0, |m| self.warmup_secs * 1000 + m.span_ms());
        self.publishing_ends_ms()
            .max(heal)
            .max(churn)
            .max(membership)
            + self.settle_secs * 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let goals = "[goals]\nmax_rmr = 0.3\nmax_convergence_p99_ms = 1000\n";
        let s = Scenario::parse(&format!("name = \"x\"\nnodes = 10\nrecords = 5\n[partition]\nstart_secs = 1\nend_secs = 2\nfraction = 0.5\n{goals}")).unwrap();
        assert_eq!(s.nodes, 10);
        assert!(s.partition.is_some());
        assert_eq!(s.goals.max_missed, 0);
        assert!(
            Scenario::parse(&format!("name = \"x\"\nnodes = 1\nrecords = 5\n{goals}")).is_err()
        );
        assert!(
            Scenario::parse(&format!(
                "name = \"x\"\nnodes = 5\nrecords = 5\nbogus = 1\n{goals}"
            ))
            .is_err()
        );
        let membership = |m: &str| {
            Scenario::parse(&format!(
                "name = \"x\"\nnodes = 10\nrecords = 5\n[membership]\n{m}\n{goals}"
            ))
        };
        let m = membership("joins = 3\nleaves = 2\nevery_ms = 100").unwrap();
        assert_eq!(m.membership.as_ref().map(|m| m.span_ms()), Some(300));
        assert!(m.end_ms() >= 60_000 + 300 + 60_000);
        // Leaving would take the creator: 10 nodes, 10 leaves.
        assert!(membership("leaves = 10\nevery_ms = 100").is_err());
        assert!(membership("joins = 20000\nevery_ms = 100").is_err());
        assert!(membership("joins = 2\nevery_ms = 0").is_err());
        assert!(
            Scenario::parse(&format!(
                "name = \"x\"\nnodes = 10\nrecords = 5\n{goals}max_join_catch_up_p99_ms = 9\n"
            ))
            .is_err(),
            "a catch-up goal without joins"
        );
        // A scenario without goals would pass whatever it measured.
        assert!(Scenario::parse("name = \"x\"\nnodes = 5\nrecords = 5").is_err());
    }
}
