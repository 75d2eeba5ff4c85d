//! Runs a simulation scenario and prints its report.
//!
//! ```text
//! cargo run --release -p peergroup-membership --example simulate -- crates/membership/scenarios/small.toml
//! ```

use peergroup_membership::sim::{Scenario, Simulation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: simulate <scenario.toml>")?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let scenario = Scenario::parse(&text).map_err(|e| format!("{path}: {e}"))?;
    let started = std::time::Instant::now();
    let report = Simulation::new(scenario)?.run()?;
    println!("{report}");
    println!(
        "wall time:           {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
