//! Runs a simulation scenario and prints its report.
//!
//! ```text
//! cargo run --release -p peergroup-mesh --example simulate -- crates/mesh/scenarios/small.toml
//! ```

use peergroup_mesh::sim::{Scenario, Simulation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: simulate <scenario.toml>")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let scenario = Scenario::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    let goals = scenario.goals.clone();
    let started = std::time::Instant::now();
    let report = Simulation::new(scenario)?.run()?;
    println!("{report}");
    println!(
        "wall time:           {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut stated = format!(
        "RMR ≤ {}, missed ≤ {}, convergence p99 ≤ {} ms",
        goals.max_rmr, goals.max_missed, goals.max_convergence_p99_ms
    );
    if let Some(m) = goals.max_messages_per_node_per_sec {
        stated.push_str(&format!(", messages per node ≤ {m}/s"));
    }
    if let Some(k) = goals.max_kib_per_node {
        stated.push_str(&format!(", memory per node ≤ {k} KiB"));
    }
    println!("goals:               {stated}");
    let broken = report.check(&goals);
    if broken.is_empty() {
        println!("goals met");
        Ok(())
    } else {
        for b in &broken {
            println!("goal NOT met: {b}");
        }
        Err(format!(
            "{path}: {} goal(s) NOT met: {}",
            broken.len(),
            broken.join("; ")
        )
        .into())
    }
}
