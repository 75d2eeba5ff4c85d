//! The verdicts and the table.

use std::time::Duration;

use crate::member::MemberSync;
use crate::waits::MEMBER_GOAL;

/// How much the node's resident memory may grow over its figure before an attack, in KiB.
pub(crate) const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

/// The node's memory and files around an attack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RssFigures {
    pub(crate) before_kib: u64,
    pub(crate) peak_kib: u64,
    pub(crate) fds_before: usize,
    pub(crate) peak_fds: usize,
    /// Resident memory at the last sample, 2 s after the attack.
    pub(crate) after_kib: u64,
}

impl RssFigures {
    fn growth_kib(&self) -> u64 {
        self.peak_kib.saturating_sub(self.before_kib)
    }
}

/// The seeded records after an attack.
#[derive(Clone, Debug)]
pub(crate) struct RecordsKept {
    pub(crate) kept: usize,
    pub(crate) total: usize,
    pub(crate) count_before: usize,
    pub(crate) count_after: usize,
    pub(crate) missing: Vec<String>,
}

/// One attack's results.
pub(crate) struct Outcome {
    pub(crate) index: usize,
    pub(crate) name: &'static str,
    pub(crate) rss: Option<RssFigures>,
    pub(crate) member: Option<Result<MemberSync, String>>,
    pub(crate) records: Option<Result<RecordsKept, String>>,
    pub(crate) check: Result<String, String>,
    pub(crate) details: Vec<String>,
    pub(crate) took: Duration,
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Outcome {
    fn rss_verdict(&self) -> Result<String, String> {
        match &self.rss {
            Some(r) if r.growth_kib() <= RSS_GROWTH_BOUND_KIB => Ok("ok".into()),
            Some(r) => Err(format!(
                "+{} over the bound of +{}",
                mib(r.growth_kib()),
                mib(RSS_GROWTH_BOUND_KIB)
            )),
            None => Err("not measured (the attack did not start)".into()),
        }
    }

    fn member_verdict(&self) -> Result<String, String> {
        match &self.member {
            Some(Ok(MemberSync {
                took: Some(t),
                wanted,
                ..
            })) if *t <= MEMBER_GOAL => Ok(format!("{:.2} s ({wanted} records)", t.as_secs_f64())),
            Some(Ok(MemberSync { took: Some(t), .. })) => Err(format!(
                "{:.2} s, over the goal of {} s",
                t.as_secs_f64(),
                MEMBER_GOAL.as_secs()
            )),
            Some(Ok(MemberSync {
                took: None,
                held,
                wanted,
            })) => Err(format!(
                "held {held}/{wanted} seeded records after {} s",
                crate::waits::MEMBER_DEADLINE.as_secs()
            )),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not measured".into()),
        }
    }

    fn records_verdict(&self) -> Result<String, String> {
        match &self.records {
            Some(Ok(r)) if r.kept == r.total && r.count_after >= r.count_before => Ok(format!(
                "{}/{}, count {} -> {}",
                r.kept, r.total, r.count_before, r.count_after
            )),
            Some(Ok(r)) => Err(format!(
                "{}/{} kept (missing {}), count {} -> {}",
                r.kept,
                r.total,
                r.missing
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" "),
                r.count_before,
                r.count_after
            )),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not checked (the attack did not start)".into()),
        }
    }

    /// Whether every column is met.
    pub(crate) fn passed(&self) -> bool {
        self.rss_verdict().is_ok()
            && self.member_verdict().is_ok()
            && self.records_verdict().is_ok()
            && self.check.is_ok()
    }
}

fn cell(v: &Result<String, String>) -> String {
    match v {
        Ok(s) if s == "ok" => "ok".into(),
        Ok(s) => format!("{s} ok"),
        Err(e) => format!("NOT met: {e}"),
    }
}

/// Cuts a cell to `width` characters for the table (the details hold the whole text).
fn fit(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        format!("{s:<width$}")
    } else {
        let cut: String = s.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Prints the table and the details; whether everything was met.
pub(crate) fn print(outcomes: &[Outcome], short: bool, took: Duration) -> bool {
    println!();
    println!(
        "hostile-peer suite{}: {} attack(s) in {:.0} s; bounds: RSS growth <= +{}, an honest \
         member holds the seeded records within {} s, nothing stored lost",
        if short { " (--short)" } else { "" },
        outcomes.len(),
        took.as_secs_f64(),
        mib(RSS_GROWTH_BOUND_KIB),
        MEMBER_GOAL.as_secs()
    );
    println!();
    println!(
        "{:<20} {:>10} {:>10} {:>10} {:<14} {:<24} {:<28} attack check",
        "attack", "RSS before", "peak", "growth", "memory", "member sync", "records kept"
    );
    for o in outcomes {
        let (before, peak, growth) = match &o.rss {
            Some(r) => (
                mib(r.before_kib),
                mib(r.peak_kib),
                format!("+{}", mib(r.growth_kib())),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{:<20} {:>10} {:>10} {:>10} {} {} {} {}",
            fit(&format!("{} {}", o.index, o.name), 20),
            before,
            peak,
            growth,
            fit(&cell(&o.rss_verdict()), 14),
            fit(&cell(&o.member_verdict()), 24),
            fit(&cell(&o.records_verdict()), 28),
            fit(&cell(&o.check.clone().map(|_| "ok".into())), 40),
        );
    }
    println!();
    println!("details:");
    for o in outcomes {
        println!("  {} {} ({:.0} s):", o.index, o.name, o.took.as_secs_f64());
        if let Some(r) = &o.rss {
            println!(
                "    memory: {}; {} two seconds after the attack; open files {} before, {} at \
                 most",
                cell(&o.rss_verdict()),
                mib(r.after_kib),
                r.fds_before,
                r.peak_fds
            );
        }
        println!("    member sync: {}", cell(&o.member_verdict()));
        println!("    records: {}", cell(&o.records_verdict()));
        println!("    attack check: {}", cell(&o.check));
        for d in &o.details {
            println!("    - {d}");
        }
    }
    let all = outcomes.iter().all(Outcome::passed);
    println!();
    if all {
        println!("hostile: every bound met");
    } else {
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.passed())
            .map(|o| format!("{} {}", o.index, o.name))
            .collect();
        println!("hostile: NOT met in {}", failed.join(", "));
    }
    all
}
