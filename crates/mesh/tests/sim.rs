//! The simulator: small scenarios run in the test suite (the big ones are `cargo xtask sim`).

use peergroup_mesh::sim::{Scenario, Simulation};

/// Runs a scenario and asserts its goals.
fn run(toml: &str) -> peergroup_mesh::sim::Report {
    let scenario = Scenario::parse(toml).unwrap();
    let goals = scenario.goals.clone();
    let report = Simulation::new(scenario).unwrap().run().unwrap();
    let broken = report.check(&goals);
    assert!(broken.is_empty(), "goals NOT met: {broken:?}\n{report}");
    report
}

const SMALL: &str = include_str!("../scenarios/small.toml");

#[test]
fn small_scenario_delivers_everything() {
    let r = run(SMALL);
    assert_eq!(r.records, 200);
    assert_eq!(r.missed_deliveries, 0, "{r}");
    assert!(r.delivered_by_flood > 0);
    assert!(r.convergence_max_ms < 60_000, "{r}");
}

#[test]
fn a_broken_goal_is_reported() {
    let strict = SMALL.replace("max_rmr = 0.4", "max_rmr = 0.0");
    let scenario = Scenario::parse(&strict).unwrap();
    let goals = scenario.goals.clone();
    let report = Simulation::new(scenario).unwrap().run().unwrap();
    let broken = report.check(&goals);
    assert!(
        broken.len() == 1 && broken[0].starts_with("RMR"),
        "{broken:?}\n{report}"
    );
    assert!(Scenario::parse(&SMALL.replace("[goals]", "[gaols]")).is_err());
}

#[test]
fn messages_and_memory_per_node_are_goals() {
    let scenario = Scenario::parse(SMALL).unwrap();
    let mut goals = scenario.goals.clone();
    let report = Simulation::new(scenario).unwrap().run().unwrap();
    assert!(report.messages_per_node_per_sec > 0.0, "{report}");
    assert!(report.messages_per_node_per_sec_max >= report.messages_per_node_per_sec);
    let kib = report
        .kib_per_node()
        .expect("peak RSS is known on Linux, where CI runs");
    assert!(kib > 0, "{report}");
    // Bounds the run keeps, then bounds it breaks.
    goals.max_messages_per_node_per_sec = Some(report.messages_per_node_per_sec + 0.01);
    goals.max_kib_per_node = Some(kib);
    assert!(
        report.check(&goals).is_empty(),
        "{:?}",
        report.check(&goals)
    );
    goals.max_messages_per_node_per_sec = Some(report.messages_per_node_per_sec / 2.0);
    goals.max_kib_per_node = Some(kib - 1);
    let broken = report.check(&goals);
    assert!(
        broken.len() == 2
            && broken[0].starts_with("messages per node")
            && broken[1].starts_with("memory per node"),
        "{broken:?}"
    );
    // A scenario file states them as goals.
    let stated = SMALL.replace(
        "[goals]",
        "[goals]\nmax_messages_per_node_per_sec = 2.5\nmax_kib_per_node = 300",
    );
    let parsed = Scenario::parse(&stated).unwrap().goals;
    assert_eq!(parsed.max_messages_per_node_per_sec, Some(2.5));
    assert_eq!(parsed.max_kib_per_node, Some(300));
}

#[test]
fn same_seed_same_run() {
    // The report includes the hash of the whole trace: every message, connect, close,
    // delivery and timer of every node, with its virtual time.
    let mut a = run(SMALL);
    let mut b = run(SMALL);
    // The peak RSS is the process's (which ran both), not the run's.
    assert!(
        a.peak_rss_kib.is_some(),
        "no peak RSS where CI runs (Linux)"
    );
    (a.peak_rss_kib, b.peak_rss_kib) = (None, None);
    assert_eq!(a, b, "the simulator is not deterministic");
    assert_eq!(a.trace_hash, b.trace_hash);
    // Another seed is another run (its own figures; the goals are seed 7's).
    let other = Scenario::parse(&SMALL.replace("seed = 7", "seed = 8")).unwrap();
    let c = Simulation::new(other).unwrap().run().unwrap();
    assert_ne!(a.messages, c.messages, "the seed changes nothing");
    assert_ne!(a.trace_hash, c.trace_hash, "the trace hash misses the seed");
}

#[test]
fn a_partition_heals_by_itself() {
    let r = run(r#"name = "partition"
seed = 11
nodes = 40
records = 30
warmup_secs = 40
publish_every_ms = 2000
settle_secs = 120
latency_ms = 20
[partition]
start_secs = 50
end_secs = 90
fraction = 0.5
[goals]
max_rmr = 0.4
max_convergence_p99_ms = 120000
"#);
    assert_eq!(r.missed_deliveries, 0, "{r}");
}

#[test]
fn churned_nodes_catch_up() {
    let r = run(r#"name = "churn"
seed = 12
nodes = 40
records = 30
warmup_secs = 40
publish_every_ms = 1000
settle_secs = 90
latency_ms = 20
[churn]
fraction = 0.25
downtime_secs = 15
[goals]
max_rmr = 0.3
max_convergence_p99_ms = 60000
"#);
    assert_eq!(r.missed_deliveries, 0, "{r}");
    assert!(
        r.delivered_by_sync > 0,
        "restarted nodes should catch up by sync: {r}"
    );
    // A quarter of the 40 nodes, each once (drawn with replacement, 10 draws among 39 nodes
    // nearly always picked one twice).
    assert_eq!((r.crashes, r.crashed_nodes), (10, 10), "{r}");
}

/// Churn takes down the scenario's fraction of the nodes, each of them once, even when the
/// fraction is most of the group.
#[test]
fn churn_takes_each_drawn_node_down_once() {
    let r = run(r#"name = "heavy churn"
seed = 13
nodes = 20
records = 10
warmup_secs = 30
publish_every_ms = 1000
settle_secs = 60
latency_ms = 20
[churn]
fraction = 0.9
downtime_secs = 5
[goals]
max_rmr = 1.0
max_convergence_p99_ms = 60000
"#);
    assert_eq!((r.crashes, r.crashed_nodes), (18, 18), "{r}");
    assert_eq!(r.missed_deliveries, 0, "{r}");
}

/// Under message loss, duplicates stay rare: a node that receives a payload twice prunes the
/// link from both ends, whatever its own side of the link said (pruning only links eager on
/// the receiver's side left one direction of each pruned pair pushing for good: RMR 0.49
/// here, 0.37 in the 500-node scenario with 10% loss; now 0.29 here; the goal is ≤ 0.3).
#[test]
fn duplicates_stay_rare_under_loss() {
    let r = run(r#"name = "loss"
seed = 5
nodes = 150
records = 150
warmup_secs = 60
publish_every_ms = 500
settle_secs = 120
latency_ms = 40
jitter_ms = 30
loss = 0.10
[goals]
max_rmr = 0.3
max_convergence_p99_ms = 60000
"#);
    assert_eq!(r.missed_deliveries, 0, "{r}");
    assert!(r.rmr <= 0.3, "{r}");
}

/// A group bounded to 8 presences among 60 nodes, 20% of them crashing: presence maintenance
/// replaces the publishers that crashed, and every live node ends holding about the bound.
/// A goal on what is held is checked both ways.
#[test]
fn bounded_presence_is_kept_through_churn() {
    let toml = SMALL
        .replace("nodes = 50", "nodes = 60")
        .replace(
            "max_convergence_p99_ms = 10000",
            "max_convergence_p99_ms = 60000",
        )
        .replace(
            "[goals]",
            "[presence]\nmax = 8\n\n[churn]\nfraction = 0.2\ndowntime_secs = 20\n\n\
             [goals]\npresences_held = [6, 18]",
        );
    let scenario = Scenario::parse(&toml).unwrap();
    let mut goals = scenario.goals.clone();
    let report = Simulation::new(scenario).unwrap().run().unwrap();
    assert!(report.crashes >= 10, "{report}");
    let (min, _, max) = report.presences_held.expect("a presence run");
    let publishers = report.presence_publishers.expect("a presence run");
    assert!((8..=8 + 10).contains(&publishers), "{report}");
    // The RMR by kind of record adds up to the whole: the simulator's counts of payloads
    // received and first deliveries by flood agree with the cores' own counters.
    let kinds: Vec<&str> = report.rmr_by_kind.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(kinds, ["application", "presence"], "{report}");
    let first: u64 = report.rmr_by_kind.iter().map(|k| k.2).sum();
    assert_eq!(first, report.delivered_by_flood, "{report}");
    assert!(
        report.check(&goals).is_empty(),
        "{:?}\n{report}",
        report.check(&goals)
    );
    goals.presences_held = Some([max + 1, max + 2]);
    let broken = report.check(&goals);
    assert!(
        broken.len() == 1 && broken[0].starts_with("presences held"),
        "{broken:?} ({min}..{max})"
    );
}

#[test]
fn members_join_and_leave_while_records_flow() {
    // 60 nodes; 12 join (one a second, while records flow, the creator storing each one's
    // membership record) and 6 leave for good; every live node ends with every record, and
    // knows every member.
    let toml = SMALL.replace("nodes = 50", "nodes = 60").replace(
        "[goals]",
        "[membership]\njoins = 12\nleaves = 6\nevery_ms = 1000\n\n\
             [goals]\nmax_join_catch_up_p99_ms = 10000",
    );
    let r = run(&toml);
    assert_eq!((r.joined, r.left), (12, 6), "{r}");
    assert_eq!(r.nodes, 72, "{r}");
    assert_eq!(r.missed_deliveries, 0, "{r}");
    let (p50, p99, max) = r.join_catch_up_ms.expect("joiners caught up");
    assert!(p50 > 0 && p50 <= p99 && p99 <= max, "{r}");
    assert_eq!(r.members_known, Some((72, 72)), "{r}");
    assert_eq!(r.crashes, 0, "leaving is not crashing: {r}");
    // A catch-up goal the run cannot meet is reported broken.
    let scenario = Scenario::parse(&toml).unwrap();
    let mut goals = scenario.goals.clone();
    goals.max_join_catch_up_p99_ms = Some(p99 - 1);
    let broken = r.check(&goals);
    assert!(
        broken.len() == 1 && broken[0].starts_with("join catch-up"),
        "{broken:?}"
    );
}
