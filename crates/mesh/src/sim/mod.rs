//! A deterministic simulator: many members in one process, each a real [`Core`] over a
//! memory store with real signed records, connected by a simulated network with latency,
//! jitter, loss, partitions and churn, on a virtual clock.
//!
//! Every random choice comes from the scenario's seed — keys, certificate serials, record ids,
//! the network's delays and losses, each core's own choices — so a run can be repeated
//! exactly (`same_seed_same_run` in the tests holds it to that).
//! To keep runs of a thousand nodes fast, the simulated group disables membership records
//! (every node starts knowing every member's chain, validated once and shared) and, unless
//! the scenario has a `[presence]` table, presence (every node starts knowing every member's
//! address, or a sample of them, as presence would have told it): what is measured is the
//! mesh, flooding and synchronisation of application records. A `[presence]` scenario bounds
//! the group's presences (`max_presence`) and measures presence maintenance as well; a
//! `[membership]` scenario adds members that join while the group runs — no database knows
//! them before, the creator stores their membership records, which flood and teach every
//! node their chains — and members that leave for good.
//!
//! Records are identical at every node, so the simulator checks each one's signature once
//! for all of them, with every member's key, before a node sees it — as a real node's
//! connection reader checks what arrives ([`Core::handle_checked_floods`]); the node still
//! resolves the signer from what it knows and checks again unless that gives the same key.

mod membership;
mod network;
mod report;
mod scenario;
mod trace;

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use peergroup_credential_roles::{CertChain, GroupRoot, MemberRequest, Role, Roles};
use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
use peergroup_record_db::members::MemberIndex;
use peergroup_record_db::reserved::{GroupProperties, property_flags};
use peergroup_record_db::store::MemoryStore;
use peergroup_record_db::{Database, LocalSigner, NewRecord, Received, RecordType, SignerKeys};

pub use report::Report;
pub use scenario::{Churn, Goals, MembershipChurn, Partition, PresenceScenario, Scenario};

use crate::MeshConfig;
use crate::core::{Core, Event, LocalMember};
use crate::message::NodeId;
use crate::rng::Rng;
use crate::stats::Stats;
use network::Network;

/// The simulation's epoch (virtual time zero).
fn epoch() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

/// In a group of more members than this, each node is told this many random members'
/// addresses (the others' presence, as it were) rather than all.
const SAMPLED_CANDIDATES: usize = 1024;

fn address(i: usize) -> SocketAddr {
    let n = i as u32 + 1;
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8),
        3587,
    ))
}

/// One simulated member.
struct Node {
    key_seed: u64,
    chain: CertChain,
    core: Option<Core<MemoryStore>>,
    /// The database of a crashed node, kept for its restart.
    crashed_db: Option<Database<MemoryStore>>,
    incarnation: u32,
    next_timer: Option<Timestamp>,
    /// The node id of its first start, when its presence is placed before it (see
    /// [`PresenceScenario`]).
    first_node_id: Option<NodeId>,
    /// A member that joins during the run (see [`MembershipChurn`]): when it started, once
    /// it has.
    joiner: Option<Option<Timestamp>>,
    /// It left the group for good.
    left: bool,
}

/// A published record being tracked.
struct Tracked {
    published: Timestamp,
    delivered: HashMap<usize, Timestamp>,
    hops: HashMap<usize, u32>,
}

/// A simulation run.
pub struct Simulation {
    scenario: Scenario,
    rng: Rng,
    nodes: Vec<Node>,
    net: Network,
    root: CertChain,
    /// Knows every member: each node's database adopts its member tables, shared
    /// copy-on-write (each real node holds the list; here it is held once).
    template: Database<MemoryStore>,
    /// Knows every member, the joiners too: the keys the simulator checks signatures with
    /// before a node sees them (see `check`). A signature found good under a key tells a
    /// node nothing it would not check itself: it still resolves the signer from what it
    /// knows, and skips the check only when that gives the same key.
    oracle: SignerKeys,
    /// The group's properties, its signature checked once for every node.
    properties: Received,
    /// The presences every node holds at its first start (see [`PresenceScenario`]), their
    /// signatures checked once for every node.
    presences: Vec<Received>,
    record_type: RecordType,
    tracked: BTreeMap<u64, Tracked>,
    /// The counters of each crashed core, with its node.
    retired_stats: Vec<(usize, Stats)>,
    /// Neighbor losses by reason.
    drops: BTreeMap<String, u64>,
    /// Records whose signatures were checked, by item key: every node receives the same
    /// record, and the simulator checks it once for all (where a real node's connection
    /// reader checks its own, see [`Core::handle_checked_floods`]).
    checked: HashMap<u64, Received>,
    /// Flooded payloads received and first deliveries by flooding, by kind of record
    /// (see [`Report::rmr_by_kind`]).
    floods_by_kind: BTreeMap<&'static str, (u64, u64)>,
    /// Everything the nodes did, hashed (see [`Report::trace_hash`]).
    trace: trace::Trace,
    now: Timestamp,
}

impl Simulation {
    /// Sets up the group, its members and the network.
    pub fn new(scenario: Scenario) -> Result<Self, crate::Error> {
        let mut rng = Rng::new(scenario.seed);
        let t0 = epoch();
        let not_after = t0.saturating_add(Duration::from_secs(3650 * 86_400));
        let creator_key = KeyPair::from_test_seed(scenario.seed.wrapping_mul(1_000_003));
        let creator_peer = PeerName::new(&creator_key.public(), classifier("node0")?);
        // Every certificate serial from the seed too, so records sign the same bytes (and
        // have the same item keys) in every run of one seed.
        let mut serial = || {
            let mut s = [0u8; 16];
            s[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
            s[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
            s
        };
        let root = GroupRoot::with_key_and_serial(
            KeyPair::from_test_seed(scenario.seed ^ 0x5eed),
            "Simulated group",
            classifier("sim")?,
            &creator_peer,
            t0,
            serial(),
        )
        .map_err(|e| crate::Error::Invalid(e.to_string()))?;
        let request = |key: &KeyPair, name: &str, role| -> Result<MemberRequest, crate::Error> {
            Ok(MemberRequest {
                subject_key: key.public(),
                subject_peer: PeerName::new(&key.public(), classifier(name)?),
                subject_friendly_name: name.to_owned(),
                roles: Roles::one(role),
                classifiers: vec![],
                not_before: t0,
                not_after,
            })
        };
        let creator_chain = root
            .chain()
            .issue_with_serial(
                root.key(),
                &request(&creator_key, "node0", Role::Admin)?,
                serial(),
            )
            .map_err(|e| crate::Error::Invalid(e.to_string()))?;
        let mut members = MemberIndex::default();
        let joins = scenario.membership.as_ref().map_or(0, |m| m.joins);
        let mut nodes = Vec::with_capacity(scenario.nodes + joins);
        for i in 0..scenario.nodes + joins {
            let seed = scenario.seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            let key = KeyPair::from_test_seed(seed);
            let chain = if i == 0 {
                creator_chain.clone()
            } else {
                creator_chain
                    .issue_with_serial(
                        &creator_key,
                        &request(&key, &format!("node{i}"), Role::Member)?,
                        serial(),
                    )
                    .map_err(|e| crate::Error::Invalid(e.to_string()))?
            };
            // The joiners are new: no database knows them before they join.
            let joiner = i >= scenario.nodes;
            if !joiner {
                members
                    .insert(root.group(), &chain)
                    .map_err(|e| crate::Error::Invalid(e.to_string()))?;
            }
            nodes.push(Node {
                key_seed: seed,
                chain,
                core: None,
                crashed_db: None,
                incarnation: 0,
                next_timer: None,
                first_node_id: None,
                joiner: joiner.then_some(None),
                left: false,
            });
        }
        // The creator's properties: no membership records, and no presence unless the
        // scenario asks for it (see the module docs).
        let mut props = GroupProperties::new("Simulated group", creator_peer);
        props.flags = property_flags::MEMBER_DATA_OPTIONAL;
        match &scenario.presence {
            Some(p) => props.max_presence = p.max,
            None => {
                props.flags |= property_flags::DISABLE_PRESENCE;
                props.max_presence = GroupProperties::ALL_PRESENCE;
            }
        }
        let mut template = Database::open(MemoryStore::new(), root.chain())?;
        template.adopt_members(&members);
        let properties = template
            .set_properties(
                LocalSigner {
                    key: &creator_key,
                    chain: &creator_chain,
                },
                &props,
                t0,
            )?
            .record;
        let placed = scenario.presence.as_ref().map_or(0, |p| p.max as usize);
        let mut presences = Vec::with_capacity(placed);
        let lifetime = Duration::from_secs(u64::from(props.presence_lifetime_secs));
        for (i, node) in nodes.iter_mut().enumerate().take(placed) {
            let id = NodeId(rng.next_u64());
            node.first_node_id = Some(id);
            let spread = Duration::from_millis(rng.below(lifetime.as_millis() as u64 / 2));
            // (`lifetime` is the group's, at least 300 s: `lifetime / 4` is below it.)
            let key = KeyPair::from_test_seed(node.key_seed);
            let signer = LocalSigner {
                key: &key,
                chain: &node.chain,
            };
            let presence = crate::presence::Presence {
                node: id,
                addresses: vec![address(i)],
                attributes: String::new(),
            };
            let change = template.create_with_id(
                signer,
                crate::presence::Presence::record_id(node.chain.leaf().subject_peer(), id),
                NewRecord {
                    record_type: RecordType::PRESENCE,
                    attributes: String::new(),
                    payload: presence.to_payload(),
                    // Refreshed at different times, as in a group whose nodes came at
                    // different times (not all in the same second), and as often on
                    // average as in a group that ran before: lifetimes of 225 to 375 s,
                    // refreshed 75 s before they end, every 225 s on average.
                    expires: t0.saturating_add(lifetime - lifetime / 4 + spread),
                    autorefresh: true,
                },
                t0,
            )?;
            presences.push(change.record);
        }
        // Checked once here, not again by each node that starts with them.
        let properties = template
            .signer_keys()
            .check(vec![properties])
            .pop()
            .ok_or_else(|| crate::Error::Invalid("properties".into()))?;
        let presences = template.signer_keys().check(presences);
        let mut everyone = Database::open(MemoryStore::new(), root.chain())?;
        everyone.adopt_members_of(&template);
        for node in nodes.iter().filter(|n| n.joiner.is_some()) {
            everyone.learn_member(&node.chain)?;
        }
        let oracle = everyone.signer_keys();
        let peers = nodes
            .iter()
            .map(|n| n.chain.leaf().subject_peer().clone())
            .collect();
        let chains = nodes
            .iter()
            .map(|n| n.joiner.is_some().then(|| n.chain.clone()))
            .collect();
        let net = Network::new(&scenario, rng.next_u64(), peers, chains);
        let mut sim = Simulation {
            record_type: "51a7e5e1-0000-4000-8000-000000000001"
                .parse()
                .map_err(|_| crate::Error::Invalid("record type".into()))?,
            scenario,
            rng,
            nodes,
            net,
            root: root.chain().clone(),
            template,
            oracle,
            properties,
            presences,
            tracked: BTreeMap::new(),
            retired_stats: Vec::new(),
            drops: BTreeMap::new(),
            floods_by_kind: BTreeMap::new(),
            checked: HashMap::new(),
            trace: trace::Trace::default(),
            now: t0,
        };
        for i in 0..sim.scenario.nodes {
            sim.start_node(i, Database::open(MemoryStore::new(), &sim.root)?)?;
        }
        Ok(sim)
    }

    fn start_node(&mut self, i: usize, mut db: Database<MemoryStore>) -> Result<(), crate::Error> {
        // The members every node knows from the start; a joiner too, as the membership
        // records of its first sync would teach it in a group that publishes them.
        db.adopt_members_of(&self.template);
        let joining = self.nodes[i].joiner.is_some() && self.nodes[i].incarnation == 0;
        if !joining {
            db.apply_received(vec![self.properties.clone()], self.now)?;
        }
        if self.nodes[i].incarnation == 0 && !joining && !self.presences.is_empty() {
            db.apply_received(self.presences.clone(), self.now)?;
        }
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        let me = LocalMember {
            key: KeyPair::from_test_seed(node.key_seed),
            chain: node.chain.clone(),
        };
        let config = MeshConfig {
            publish_presence: self.scenario.presence.is_some(),
            ..MeshConfig::default()
        };
        let node_id = match node.first_node_id.take() {
            Some(id) => id,
            None => NodeId(self.rng.next_u64()),
        };
        let mut core = Core::new(
            db,
            me,
            node_id,
            config,
            crate::rng::Seed::from_u64(self.rng.next_u64()),
            self.now.into(),
        )?;
        core.set_listen_addrs(vec![address(i)], self.now.into())?;
        // As if presence had told it the members' addresses, and it had a database before:
        // every other member's, or in a group too big for the candidate table a random
        // sample (the first MAX_CANDIDATES alone would point every node at the same few).
        // A joiner knows its invitation's address, the creator's.
        let n = self.scenario.nodes;
        let all: Vec<SocketAddr> = if joining {
            vec![address(0)]
        } else if n > SAMPLED_CANDIDATES {
            let mut picked = std::collections::BTreeSet::new();
            while picked.len() < SAMPLED_CANDIDATES {
                let j = self.rng.below(n as u64) as usize;
                if j != i {
                    picked.insert(j);
                }
            }
            picked.into_iter().map(address).collect()
        } else {
            (0..n).filter(|j| *j != i).map(address).collect()
        };
        core.add_candidates(&all);
        core.start_listening();
        self.nodes[i].core = Some(core);
        self.nodes[i].next_timer = None;
        self.pump(i);
        Ok(())
    }

    /// Runs the scenario to the end and reports.
    pub fn run(mut self) -> Result<Report, crate::Error> {
        let end = epoch().saturating_add(Duration::from_millis(self.scenario.end_ms()));
        self.schedule_script();
        while let Some((at, ev)) = self.net.pop() {
            if at > end {
                break;
            }
            self.now = at;
            self.handle(ev)?;
        }
        self.now = end;
        Ok(report::build(&self))
    }

    fn schedule_script(&mut self) {
        let s = self.scenario.clone();
        let ms = |v: u64| epoch().saturating_add(Duration::from_millis(v));
        for k in 0..s.records {
            self.net.schedule(
                ms(s.warmup_secs * 1000 + k as u64 * s.publish_every_ms),
                network::Ev::Publish,
            );
        }
        if let Some(p) = &s.partition {
            self.net
                .schedule(ms(p.start_secs * 1000), network::Ev::PartitionStart);
            self.net
                .schedule(ms(p.end_secs * 1000), network::Ev::PartitionEnd);
        }
        let mut crashing = std::collections::BTreeSet::new();
        if let Some(c) = &s.churn {
            // Node 0 (the creator) never goes down.
            let count = (((s.nodes as f64) * c.fraction) as usize).min(s.nodes.saturating_sub(1));
            let span = s
                .publishing_ends_ms()
                .saturating_sub(s.warmup_secs * 1000)
                .max(1);
            // Each of them once, as the scenario says (drawn with replacement, some went down
            // twice and the run's slowest deliveries waited for two downtimes).
            let mut drawn = std::collections::BTreeSet::new();
            while drawn.len() < count {
                let node = 1 + self.rng.below(s.nodes as u64 - 1) as usize;
                if !drawn.insert(node) {
                    continue;
                }
                let at = s.warmup_secs * 1000 + self.rng.below(span);
                crashing.insert(node);
                self.net.schedule(ms(at), network::Ev::Crash(node));
                self.net
                    .schedule(ms(at + c.downtime_secs * 1000), network::Ev::Restart(node));
            }
        }
        self.schedule_membership(&crashing);
    }

    fn handle(&mut self, ev: network::Ev) -> Result<(), crate::Error> {
        use network::Ev;
        match ev {
            Ev::Publish => self.publish()?,
            Ev::Crash(i) => self.crash(i),
            Ev::Restart(i) => {
                if let Some(db) = self.nodes[i].crashed_db.take() {
                    self.start_node(i, db)?;
                }
            }
            Ev::Join(i) => self.join(i)?,
            Ev::Leave(i) => self.leave(i)?,
            Ev::PartitionStart => {
                let cut = ((self.nodes.len() as f64)
                    * self.scenario.partition.as_ref().map_or(0.5, |p| p.fraction))
                    as usize;
                for (a, b) in self.net.partition(cut) {
                    self.net.disconnect_later(a, b, self.now);
                }
            }
            Ev::PartitionEnd => self.net.heal(),
            Ev::Timer { node, incarnation } => {
                let n = &mut self.nodes[node];
                if n.incarnation == incarnation && n.next_timer == Some(self.now) {
                    n.next_timer = None;
                    if let Some(core) = n.core.as_mut() {
                        core.handle_timeout(self.now.into())?;
                    }
                    self.pump(node);
                }
            }
            Ev::Connected {
                node,
                incarnation,
                conn,
                info,
            } => {
                if self.nodes[node].incarnation == incarnation {
                    if let Some(core) = self.nodes[node].core.as_mut() {
                        core.handle_connected(conn, info, self.now.into());
                    }
                    self.pump(node);
                }
            }
            Ev::ConnectFailed {
                node,
                incarnation,
                addr,
            } => {
                if self.nodes[node].incarnation == incarnation {
                    if let Some(core) = self.nodes[node].core.as_mut() {
                        core.handle_connect_failed(addr, "unreachable", self.now.into());
                    }
                    self.pump(node);
                }
            }
            Ev::Disconnected {
                node,
                incarnation,
                conn,
            } => {
                if self.nodes[node].incarnation == incarnation {
                    if let Some(core) = self.nodes[node].core.as_mut() {
                        core.handle_disconnected(conn, self.now.into());
                    }
                    self.pump(node);
                }
            }
            Ev::Deliver {
                node,
                incarnation,
                conn,
                from,
                message,
            } => {
                if self.nodes[node].incarnation != incarnation {
                    return Ok(());
                }

                let (flood_key, kind) = match &message {
                    crate::message::MeshMessage::Flood(r)
                    | crate::message::MeshMessage::Repush(r) => {
                        (Some(r.item_key()), record_kind(r.record_type))
                    }
                    _ => (None, ""),
                };
                let had = flood_key.map(|k| {
                    self.nodes[node]
                        .core
                        .as_ref()
                        .is_some_and(|c| c.db().contains_key(k))
                });
                // Signatures checked before the core sees them, as a real node's connection
                // reader does (and once for all nodes, see `check`).
                use crate::message::{MeshMessage, Push};
                use peergroup_record_db::sync::SyncMessage;
                let checked = match message {
                    MeshMessage::Flood(record) => Checked::Flood(self.check(record), Push::Tree),
                    MeshMessage::Repush(record) => Checked::Flood(self.check(record), Push::Repair),
                    MeshMessage::Sync {
                        session,
                        message: SyncMessage::Records { class, records },
                    } => Checked::Sync {
                        session,
                        class,
                        records: records.into_iter().map(|r| self.check(r)).collect(),
                    },
                    other => Checked::Other(other),
                };
                if let Some(core) = self.nodes[node].core.as_mut() {
                    let now = self.now.into();
                    match checked {
                        Checked::Flood(received, push) => {
                            core.handle_checked_floods(conn, vec![received], push, now)
                        }
                        Checked::Sync {
                            session,
                            class,
                            records,
                        } => core.handle_checked_sync(conn, session, class, records, now),
                        Checked::Other(message) => core.handle_decoded(conn, message, now),
                    }
                    core.flush(now)?;
                }
                if flood_key.is_some() {
                    self.floods_by_kind.entry(kind).or_default().0 += 1;
                }
                if let (Some(k), Some(false)) = (flood_key, had) {
                    let now_has = self.nodes[node]
                        .core
                        .as_ref()
                        .is_some_and(|c| c.db().contains_key(k));
                    if now_has {
                        self.floods_by_kind.entry(kind).or_default().1 += 1;
                    }
                    if now_has && let Some(t) = self.tracked.get_mut(&k) {
                        let h = t.hops.get(&from).copied().unwrap_or(0) + 1;
                        t.hops.entry(node).or_insert(h);
                    }
                }
                self.pump(node);
            }
        }
        Ok(())
    }

    /// A record with its signature checked, once for every node that receives it
    /// (a record that differs from the one checked under its item key is checked alone).
    fn check(&mut self, record: peergroup_record_db::Record) -> Received {
        let key = record.item_key();
        if let Some(known) = self.checked.get(&key)
            && *known.record() == record
        {
            return known.clone();
        }
        let Some(received) = self.oracle.check(vec![record.clone()]).pop() else {
            return Received::unchecked(record);
        };
        self.checked.entry(key).or_insert_with(|| received.clone());
        received
    }

    fn publish(&mut self) -> Result<(), crate::Error> {
        let alive: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].core.is_some())
            .collect();
        if alive.is_empty() {
            return Ok(());
        }
        let i = alive[self.rng.below(alive.len() as u64) as usize];
        let mut payload = vec![0u8; self.scenario.payload_bytes.max(8)];
        payload[..8].copy_from_slice(&self.rng.next_u64().to_le_bytes());
        let new = NewRecord {
            record_type: self.record_type,
            attributes: String::new(),
            payload,
            expires: epoch().saturating_add(Duration::from_secs(30 * 86_400)),
            autorefresh: false,
        };
        let now = self.now;
        let Some(core) = self.nodes[i].core.as_mut() else {
            return Ok(());
        };
        // The id from the seed too: ids order the reconciliation sets, so OS-random ids
        // made runs of one seed differ (loss-500's p99 spread 41–62 s).
        let nonce = self.rng.next_u64().to_le_bytes();
        let record = core.create_record_with_nonce(new, nonce, now.into())?;
        let mut t = Tracked {
            published: now,
            delivered: HashMap::new(),
            hops: HashMap::new(),
        };
        t.delivered.insert(i, now);
        t.hops.insert(i, 0);
        self.tracked.insert(record.item_key(), t);
        self.pump(i);
        Ok(())
    }

    fn crash(&mut self, i: usize) {
        let Some(core) = self.nodes[i].core.take() else {
            return;
        };
        self.retired_stats.push((i, core.stats().clone()));
        self.nodes[i].crashed_db = Some(core.into_database());
        self.nodes[i].incarnation += 1;
        self.nodes[i].next_timer = None;
        self.net.crash(i, self.now);
    }

    /// Drains a node's outputs into the network, its events into the tracking, and
    /// schedules its next timer.
    fn pump(&mut self, i: usize) {
        let now = self.now;
        let incarnation = self.nodes[i].incarnation;
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        let mut outputs = Vec::new();
        while let Some(o) = core.poll_output() {
            outputs.push(o);
        }
        let mut delivered = Vec::new();
        while let Some(e) = core.poll_event() {
            match e {
                Event::Record(change) => delivered.push(change.record.item_key()),
                Event::Neighbor {
                    change: crate::core::NeighborChange::Disconnected(end),
                    ..
                } => {
                    *self.drops.entry(end.label().to_owned()).or_default() += 1;
                }
                _ => {}
            }
        }
        let timer = core.poll_timeout();

        self.trace
            .node(now, i, incarnation, &outputs, &delivered, timer);
        let nodes = &self.nodes;
        let listening = |j: usize| nodes[j].core.as_ref().is_some_and(|c| c.status().listening);
        let incarnation_of = |j: usize| nodes[j].incarnation;
        for o in outputs {
            self.net
                .output(i, incarnation, o, now, &listening, &incarnation_of);
        }
        for k in delivered {
            if let Some(t) = self.tracked.get_mut(&k) {
                t.delivered.entry(i).or_insert(now);
            }
        }
        if let Some(t) = timer {
            // The simulated clocks never step: its monotonic instants are the wall time's
            // milliseconds (see `Now::from`).
            let t = Timestamp::from_millis(t.as_millis()).max(now);
            let n = &mut self.nodes[i];
            if n.next_timer.is_none_or(|cur| t < cur) {
                n.next_timer = Some(t);
                self.net.schedule(
                    t,
                    network::Ev::Timer {
                        node: i,
                        incarnation,
                    },
                );
            }
        }
    }
}

/// A message delivered, with the signatures of the records it carries checked.
enum Checked {
    Flood(Received, crate::message::Push),
    Sync {
        session: u32,
        class: peergroup_record_db::sync::SyncClass,
        records: Vec<Received>,
    },
    Other(crate::message::MeshMessage),
}

/// The kind of a flooded record, for [`Report::rmr_by_kind`]: its reserved type's name, or
/// "application".
fn record_kind(t: RecordType) -> &'static str {
    t.reserved_name().unwrap_or("application")
}

fn classifier(s: &str) -> Result<Classifier, crate::Error> {
    Classifier::new(s).map_err(|e| crate::Error::Invalid(e.to_string()))
}
