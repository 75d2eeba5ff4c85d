//! What a simulation run measured.

use std::fmt;

use super::Simulation;

/// The figures of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The scenario's name.
    pub name: String,
    /// Nodes.
    pub nodes: usize,
    /// Records published.
    pub records: usize,
    /// Median time from publishing a record to the last live node having it (ms).
    pub convergence_p50_ms: u64,
    /// 99th percentile of the same (ms).
    pub convergence_p99_ms: u64,
    /// The slowest record (ms).
    pub convergence_max_ms: u64,
    /// Median time from publishing a record to one live node having it, over every (record,
    /// node) pair (ms).
    pub delivery_p50_ms: u64,
    /// 99th percentile of the same (ms).
    pub delivery_p99_ms: u64,
    /// Redundant payload copies per delivery by flooding: (payloads received − first
    /// deliveries by flood) / first deliveries by flood.
    pub rmr: f64,
    /// The RMR of each kind of record flooded ("application", "presence", "group"), counted
    /// by the simulator from the payloads it delivered: (kind, payloads received, first
    /// deliveries by flood, RMR).
    pub rmr_by_kind: Vec<(String, u64, u64, f64)>,
    /// Mean over records of the largest hop count at which a node first got it by flooding.
    pub last_delivery_hops_mean: f64,
    /// The largest such hop count.
    pub last_delivery_hops_max: u32,
    /// (record, live node) pairs where the node never got the record.
    pub missed_deliveries: u64,
    /// Records delivered by synchronisation rather than flooding.
    pub delivered_by_sync: u64,
    /// Records delivered by flooding.
    pub delivered_by_flood: u64,
    /// Pulled records a push of followed (late pushes, the duplicates a longer graft
    /// timeout would have saved), and those none followed (lost pushes).
    pub pulls_late_and_lost: (u64, u64),
    /// All messages sent.
    pub messages: u64,
    /// Announcements (IHave) and payload requests (Graft) sent.
    pub ihave_and_graft: u64,
    /// Messages each node sent per second of the run, on average (all messages: floods,
    /// announcements, maintenance, sync).
    pub messages_per_node_per_sec: f64,
    /// The busiest node's messages per second over the run.
    pub messages_per_node_per_sec_max: f64,
    /// The process's peak resident memory (KiB), where the OS tells it (Linux's
    /// `/proc/self/status`). Process-wide: a figure for this scenario only when the process
    /// ran nothing else (the `simulate` example, `cargo xtask sim`).
    pub peak_rss_kib: Option<u64>,
    /// Neighbor connections lost, by reason.
    pub neighbor_losses: Vec<(String, u64)>,
    /// Crashes (a node going down with `kill -9`), and how many nodes they took down.
    pub crashes: usize,
    /// The nodes that crashed at least once.
    pub crashed_nodes: usize,
    /// With membership churn: the members that joined during the run.
    pub joined: usize,
    /// With membership churn: the members that left for good.
    pub left: usize,
    /// With joiners: how long a joiner took from its start to holding every record published
    /// before it, p50, p99 and the slowest (ms), over the joiners that got them all (one
    /// that missed any counts in `missed_deliveries`).
    pub join_catch_up_ms: Option<(u64, u64, u64)>,
    /// With membership churn: the fewest and most members a live node knows at the end
    /// (every member's chain it can check records by; the joiners' come from the membership
    /// records the creator stored, or from their connections).
    pub members_known: Option<(usize, usize)>,
    /// With presence (a `[presence]` scenario): the live nodes publishing theirs at the end.
    pub presence_publishers: Option<usize>,
    /// With presence: the fewest, mean and most other nodes' presences a live node holds as
    /// online at the end.
    pub presences_held: Option<(usize, f64, usize)>,
    /// A hash (FNV-1a, 64 bits) of the whole trace: every message, connect and close each
    /// node output, every record delivered to it, every timer it asked for, with the node and
    /// the virtual time. Equal only when two runs did exactly the same.
    pub trace_hash: u64,
}

impl Report {
    /// The goals this run broke, each as "what: measured, goal" (empty when all are met).
    pub fn check(&self, goals: &super::Goals) -> Vec<String> {
        let mut broken = Vec::new();
        if self.rmr > goals.max_rmr {
            broken.push(format!("RMR {:.3} > {}", self.rmr, goals.max_rmr));
        }
        if self.missed_deliveries > goals.max_missed {
            broken.push(format!(
                "missed deliveries {} > {}",
                self.missed_deliveries, goals.max_missed
            ));
        }
        if self.convergence_p99_ms > goals.max_convergence_p99_ms {
            broken.push(format!(
                "convergence p99 {} ms > {} ms",
                self.convergence_p99_ms, goals.max_convergence_p99_ms
            ));
        }
        if let Some(max) = goals.max_messages_per_node_per_sec
            && self.messages_per_node_per_sec > max
        {
            broken.push(format!(
                "messages per node per second {:.2} > {max}",
                self.messages_per_node_per_sec
            ));
        }
        if let Some(max) = goals.max_kib_per_node {
            match self.kib_per_node() {
                Some(kib) if kib > max => {
                    broken.push(format!("memory per node {kib} KiB > {max} KiB"));
                }
                Some(_) => {}
                None => broken.push(format!(
                    "memory per node not measured (no peak RSS on this OS), goal {max} KiB"
                )),
            }
        }
        if let Some(max) = goals.max_join_catch_up_p99_ms {
            match self.join_catch_up_ms {
                Some((_, p99, _)) if p99 > max => {
                    broken.push(format!("join catch-up p99 {p99} ms > {max} ms"))
                }
                Some(_) => {}
                None => broken.push("join catch-up: no joiner got every record".into()),
            }
        }
        if let Some([lo, hi]) = goals.presences_held {
            match self.presences_held {
                Some((min, _, max)) if min < lo || max > hi => {
                    broken.push(format!("presences held {min}..{max}, outside {lo}..{hi}"))
                }
                Some(_) => {}
                None => broken.push("presences held: the run had no presence".into()),
            }
        }
        broken
    }

    /// The process's peak resident memory divided by the nodes (KiB): each node's share,
    /// what they share (the member list, the simulator) included.
    pub fn kib_per_node(&self) -> Option<u64> {
        self.peak_rss_kib
            .map(|kib| kib / u64::try_from(self.nodes.max(1)).unwrap_or(u64::MAX))
    }
}

/// The process's peak resident set (VmHWM) in KiB, on Linux.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "scenario:            {}", self.name)?;
        writeln!(f, "nodes, records:      {}, {}", self.nodes, self.records)?;
        writeln!(
            f,
            "convergence time:    p50 {} ms, p99 {} ms, max {} ms",
            self.convergence_p50_ms, self.convergence_p99_ms, self.convergence_max_ms
        )?;
        writeln!(
            f,
            "each delivery:       p50 {} ms, p99 {} ms",
            self.delivery_p50_ms, self.delivery_p99_ms
        )?;
        writeln!(
            f,
            "RMR:                 {:.3} redundant payload copies per delivery",
            self.rmr
        )?;
        if self.rmr_by_kind.len() > 1 {
            let each: Vec<String> = self
                .rmr_by_kind
                .iter()
                .map(|(kind, received, first, rmr)| {
                    format!("{kind} {rmr:.3} ({received} received, {first} first)")
                })
                .collect();
            writeln!(f, "RMR by record kind:  {}", each.join("; "))?;
        }
        writeln!(
            f,
            "last-delivery hops:  mean {:.1}, max {}",
            self.last_delivery_hops_mean, self.last_delivery_hops_max
        )?;
        writeln!(f, "missed deliveries:   {}", self.missed_deliveries)?;
        writeln!(
            f,
            "delivered by:        flooding {}, sync {}",
            self.delivered_by_flood, self.delivered_by_sync
        )?;
        writeln!(
            f,
            "pulls judged:        {} a push followed (late), {} none followed (lost)",
            self.pulls_late_and_lost.0, self.pulls_late_and_lost.1
        )?;
        writeln!(
            f,
            "messages:            {} ({} ihave/graft)",
            self.messages, self.ihave_and_graft
        )?;
        writeln!(
            f,
            "messages per node:   {:.2}/s mean, {:.2}/s busiest",
            self.messages_per_node_per_sec, self.messages_per_node_per_sec_max
        )?;
        match (self.peak_rss_kib, self.kib_per_node()) {
            (Some(rss), Some(each)) => writeln!(
                f,
                "memory:              peak RSS {} MiB, {each} KiB per node",
                rss / 1024
            )?,
            _ => writeln!(f, "memory:              not measured here")?,
        }
        let losses: Vec<String> = self
            .neighbor_losses
            .iter()
            .map(|(w, n)| format!("{w}: {n}"))
            .collect();
        if let (Some(publishers), Some((min, mean, max))) =
            (self.presence_publishers, self.presences_held)
        {
            writeln!(
                f,
                "presence:            {publishers} nodes publish; each holds {min}..{max} \
                 (mean {mean:.1})"
            )?;
        }
        if self.joined > 0 || self.left > 0 {
            let catch_up = match self.join_catch_up_ms {
                Some((p50, p99, max)) => {
                    format!(" (catch-up p50 {p50} ms, p99 {p99} ms, max {max} ms)")
                }
                None => String::new(),
            };
            writeln!(
                f,
                "membership:          {} joined{catch_up}, {} left",
                self.joined, self.left
            )?;
            if let Some((min, max)) = self.members_known {
                writeln!(f, "members known:       {min}..{max} per live node")?;
            }
        }
        if self.crashes > 0 {
            writeln!(
                f,
                "crashes:             {} ({} nodes)",
                self.crashes, self.crashed_nodes
            )?;
        }
        writeln!(
            f,
            "neighbor losses:     {}",
            if losses.is_empty() {
                "none".to_owned()
            } else {
                losses.join(", ")
            }
        )?;
        write!(f, "trace hash:          {:016x}", self.trace_hash)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(super) fn build(sim: &Simulation) -> Report {
    let alive: Vec<usize> = (0..sim.nodes.len())
        .filter(|i| sim.nodes[*i].core.is_some())
        .collect();
    let mut convergence = Vec::new();
    let mut missed = 0u64;
    let mut hops_max_sum = 0u64;
    let mut hops_max = 0u32;
    let mut each = Vec::new();
    // Each joiner's catch-up: the records published before it joined count there, not in
    // the records' convergence.
    let mut catch_up: std::collections::BTreeMap<usize, u64> = alive
        .iter()
        .filter_map(|i| Some((*i, sim.nodes[*i].joiner.flatten()?)))
        .map(|(i, _)| (i, 0))
        .collect();
    for (key, t) in &sim.tracked {
        let mut last = 0u64;
        for i in &alive {
            let has = sim.nodes[*i]
                .core
                .as_ref()
                .is_some_and(|c| c.db().contains_key(*key));
            let joined = sim.nodes[*i].joiner.flatten().filter(|j| *j > t.published);
            match (has, t.delivered.get(i)) {
                (true, Some(at)) if joined.is_some() => {
                    let started = joined.map_or(0, |j| j.as_millis());
                    let took = at.as_millis().saturating_sub(started);
                    if let Some(c) = catch_up.get_mut(i) {
                        *c = (*c).max(took);
                    }
                }
                (true, Some(at)) => {
                    let took = at.as_millis().saturating_sub(t.published.as_millis());
                    each.push(took);
                    last = last.max(took);
                }
                (true, None) => {}
                (false, _) => {
                    missed += 1;
                    catch_up.remove(i);
                }
            }
        }
        convergence.push(last);
        let h = t.hops.values().copied().max().unwrap_or(0);
        hops_max_sum += u64::from(h);
        hops_max = hops_max.max(h);
    }
    convergence.sort_unstable();
    each.sort_unstable();
    let mut catch_up: Vec<u64> = catch_up.into_values().collect();
    catch_up.sort_unstable();
    // Every core's counters with its node: the crashed ones, then the running ones.
    let mut by_node = sim.retired_stats.clone();
    by_node.extend(
        sim.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.core.as_ref().map(|c| (i, c.stats().clone()))),
    );
    let stats: Vec<_> = by_node.iter().map(|(_, s)| s).collect();
    let received: u64 = stats.iter().map(|s| s.floods_received).sum();
    let by_flood: u64 = stats.iter().map(|s| s.delivered_by_flood).sum();
    let by_sync: u64 = stats.iter().map(|s| s.delivered_by_sync).sum();
    // Per node, over its incarnations.
    let mut sent = vec![0u64; sim.nodes.len()];
    for (i, s) in &by_node {
        if let Some(n) = sent.get_mut(*i) {
            *n += s.messages_sent;
        }
    }
    let nodes = sim.nodes.len().max(1) as f64;
    let secs = (sim.scenario.end_ms() as f64 / 1000.0).max(1.0);
    let per_sec = |messages: f64| messages / secs;
    let rmr = if by_flood == 0 {
        0.0
    } else {
        received.saturating_sub(by_flood) as f64 / by_flood as f64
    };
    let (presence_publishers, presences_held) = match &sim.scenario.presence {
        Some(_) => {
            let cores: Vec<_> = alive
                .iter()
                .filter_map(|i| sim.nodes[*i].core.as_ref())
                .collect();
            let held: Vec<usize> = cores.iter().map(|c| c.presences_held()).collect();
            let mean = held.iter().sum::<usize>() as f64 / held.len().max(1) as f64;
            (
                Some(cores.iter().filter(|c| c.publishes_presence()).count()),
                Some((
                    held.iter().copied().min().unwrap_or(0),
                    mean,
                    held.iter().copied().max().unwrap_or(0),
                )),
            )
        }
        None => (None, None),
    };
    Report {
        name: sim.scenario.name.clone(),
        nodes: sim.nodes.len(),
        records: sim.tracked.len(),
        convergence_p50_ms: percentile(&convergence, 0.5),
        convergence_p99_ms: percentile(&convergence, 0.99),
        convergence_max_ms: convergence.last().copied().unwrap_or(0),
        delivery_p50_ms: percentile(&each, 0.5),
        delivery_p99_ms: percentile(&each, 0.99),
        rmr,
        rmr_by_kind: sim
            .floods_by_kind
            .iter()
            .map(|(kind, (received, first))| {
                let rmr = if *first == 0 {
                    0.0
                } else {
                    received.saturating_sub(*first) as f64 / *first as f64
                };
                ((*kind).to_owned(), *received, *first, rmr)
            })
            .collect(),
        last_delivery_hops_mean: if sim.tracked.is_empty() {
            0.0
        } else {
            hops_max_sum as f64 / sim.tracked.len() as f64
        },
        last_delivery_hops_max: hops_max,
        missed_deliveries: missed,
        delivered_by_sync: by_sync,
        delivered_by_flood: by_flood,
        pulls_late_and_lost: (
            stats.iter().map(|s| s.pushes_after_pull).sum(),
            stats.iter().map(|s| s.pulls_without_push).sum(),
        ),
        messages: stats.iter().map(|s| s.messages_sent).sum(),
        ihave_and_graft: stats.iter().map(|s| s.ihave_sent + s.grafts_sent).sum(),
        neighbor_losses: sim.drops.iter().map(|(w, n)| (w.clone(), *n)).collect(),
        crashes: sim
            .retired_stats
            .iter()
            .filter(|(i, _)| !sim.nodes[*i].left)
            .count(),
        crashed_nodes: sim
            .retired_stats
            .iter()
            .filter(|(i, _)| !sim.nodes[*i].left)
            .map(|(i, _)| *i)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        messages_per_node_per_sec: per_sec(sent.iter().sum::<u64>() as f64 / nodes),
        messages_per_node_per_sec_max: per_sec(sent.iter().copied().max().unwrap_or(0) as f64),
        peak_rss_kib: peak_rss_kib(),
        joined: sim
            .nodes
            .iter()
            .filter(|n| n.joiner.flatten().is_some())
            .count(),
        left: sim.nodes.iter().filter(|n| n.left).count(),
        members_known: sim.scenario.membership.as_ref().map(|_| {
            let known = alive
                .iter()
                .filter_map(|i| Some(sim.nodes[*i].core.as_ref()?.db().members().peer_count()));
            (known.clone().min().unwrap_or(0), known.max().unwrap_or(0))
        }),
        join_catch_up_ms: (!catch_up.is_empty()).then(|| {
            (
                percentile(&catch_up, 0.5),
                percentile(&catch_up, 0.99),
                catch_up.last().copied().unwrap_or(0),
            )
        }),
        presence_publishers,
        presences_held,
        trace_hash: sim.trace.finish(),
    }
}
