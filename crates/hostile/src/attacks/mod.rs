//! The attacks, and the harness every one of them runs in: a node started on the group's
//! data directory, its memory before, sampled during and right after, an honest member's sync
//! measured while the attack goes on, and the seeded records checked afterwards.

mod burst;
mod deferred;
mod direct;
mod escapes;
mod expiry;
mod frames;
mod ihave;
mod peer_time;
mod slowloris;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::future::try_join_all;

use crate::lab::{Lab, PreparedMember};
use crate::member::{self, MemberSync};
use crate::node::{NodeProc, Sampler, open_fds, rss_kib};
use crate::report::{Outcome, RecordsKept, RssFigures};
use crate::waits::{AFTER_ATTACK, ATTACK_DEADLINE, MEMBER_DEADLINE, SETTLE, STOP_WAIT};

/// Every attack: its name (for `--only`) and what it does.
pub(crate) const ALL: &[(&str, &str)] = &[
    (
        "baseline",
        "no attack: a quiet node's figures, to read the others against",
    ),
    (
        "ihave-flood",
        "IHave messages of 4,096 random keys, as fast as the node reads",
    ),
    (
        "oversized-frames",
        "frames announcing 16 MiB+ and just over the group's limit; 4 links pushing maximal frames",
    ),
    (
        "direct-flood",
        "one member opens direct connections by the thousand (and silent ones)",
    ),
    (
        "slowloris-one",
        "idle TCP sockets held from 127.0.0.2 (10,000; 2,000 short)",
    ),
    (
        "slowloris-many",
        "2,000 idle TCP sockets from 200 loopback addresses",
    ),
    (
        "expired-member",
        "a neighbor whose membership expires during the attack",
    ),
    (
        "malformed-burst",
        "good records and one membership record with a broken chain, in one burst",
    ),
    (
        "deferred-flood",
        "records claiming unknown signer serials, many and large",
    ),
    (
        "peer-time",
        "the node dials attackers who welcome it with extreme peer times",
    ),
    (
        "terminal-escapes",
        "chat records and a friendly name with ESC, CR/LF, BEL, U+202E",
    ),
];

/// What an attack found beyond the common bounds.
pub(crate) struct Verdict {
    /// Whether its own checks passed.
    pub(crate) ok: bool,
    /// One line for the table.
    pub(crate) summary: String,
}

impl Verdict {
    pub(crate) fn new(problems: Vec<String>, ok_summary: String) -> Self {
        if problems.is_empty() {
            Verdict {
                ok: true,
                summary: ok_summary,
            }
        } else {
            Verdict {
                ok: false,
                summary: problems.join("; "),
            }
        }
    }
}

/// The node's state before an attack.
#[derive(Clone, Copy, Debug)]
struct Before {
    rss_kib: u64,
    fds: usize,
    records: usize,
}

/// What an attack works with.
pub(crate) struct Ctx<'a> {
    pub(crate) lab: &'a Lab,
    /// This attack's copy of the node's data directory.
    pub(crate) home: std::path::PathBuf,
    member_rt: tokio::runtime::Handle,
    honest: Option<PreparedMember>,
    /// The node under attack.
    node: Option<NodeProc>,
    /// Other nodes the attack needs (not measured).
    aux: Vec<NodeProc>,
    sampler: Option<Sampler>,
    before: Option<Before>,
    member: Option<Result<MemberSync, String>>,
    /// Figures and observations, printed under the table.
    pub(crate) details: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// How long an attack keeps going (at least until the honest member is done).
    pub(crate) fn window(&self) -> Duration {
        if self.lab.short {
            Duration::from_secs(6)
        } else {
            Duration::from_secs(15)
        }
    }

    /// Notes a figure for the details.
    pub(crate) fn note(&mut self, line: impl Into<String>) {
        let line = line.into();
        eprintln!("    {line}");
        self.details.push(line);
    }

    /// An attacking member invited by this attack's node (which must not run yet).
    pub(crate) fn attacker(
        &self,
        label: &str,
        friendly: &str,
        expires: Option<&str>,
    ) -> Result<crate::mesh::Attacker> {
        self.lab.attacker(&self.home, label, friendly, expires)
    }

    /// A member made and joined with the CLI, invited by this attack's node (which must not
    /// run yet).
    pub(crate) fn cli_member(&self, label: &str, friendly: &str) -> Result<PreparedMember> {
        self.lab.cli_member(&self.home, label, friendly)
    }

    /// Starts the node under attack on this attack's copy of the node's data directory (the
    /// node must not run yet: invitations are written while it is stopped).
    pub(crate) fn start_node(
        &mut self,
        extra: &[String],
        markers: &[String],
    ) -> Result<SocketAddr> {
        let home = self.home.clone();
        self.start_node_on("the node", &home, extra, markers)
    }

    /// Starts the node under attack on `home`.
    pub(crate) fn start_node_on(
        &mut self,
        name: &str,
        home: &Path,
        extra: &[String],
        markers: &[String],
    ) -> Result<SocketAddr> {
        if self.node.is_some() {
            bail!("the suite started a second node under attack");
        }
        let node = self.lab.start_node(name, home, extra, markers)?;
        let addr = node.addr;
        self.node = Some(node);
        Ok(addr)
    }

    /// Starts a helper node (not measured) listening on `port`, stopped with the attack.
    pub(crate) fn start_aux_at(
        &mut self,
        name: &str,
        home: &Path,
        port: u16,
        extra: &[String],
    ) -> Result<SocketAddr> {
        let node = self.lab.start_node_at(name, home, port, extra, &[])?;
        let addr = node.addr;
        self.aux.push(node);
        Ok(addr)
    }

    /// The node under attack.
    pub(crate) fn node(&mut self) -> Result<&mut NodeProc> {
        self.node
            .as_mut()
            .context("the attack used the node before starting it")
    }

    /// The node's address.
    pub(crate) fn addr(&self) -> Result<SocketAddr> {
        self.node
            .as_ref()
            .map(|n| n.addr)
            .context("the attack used the node before starting it")
    }

    /// The node's process id.
    pub(crate) fn pid(&self) -> Result<u32> {
        self.node
            .as_ref()
            .map(NodeProc::pid)
            .context("the attack used the node before starting it")
    }

    /// Lets the started node settle, reads its memory, files and record count, and starts
    /// sampling: the attack begins now.
    pub(crate) fn begin(&mut self) -> Result<()> {
        std::thread::sleep(SETTLE);
        let node = self.node()?;
        let records = node.record_count()?;
        let pid = node.pid();
        let rss_kib = rss_kib(pid).context("the node's VmRSS cannot be read")?;
        let fds = open_fds(pid).unwrap_or(0);
        self.before = Some(Before {
            rss_kib,
            fds,
            records,
        });
        self.sampler = Some(Sampler::start(pid));
        eprintln!(
            "    before: pid {pid}, RSS {:.1} MiB, {fds} open files, {records} records",
            rss_kib as f64 / 1024.0
        );
        Ok(())
    }

    /// Open files of the node before the attack.
    pub(crate) fn fds_before(&self) -> usize {
        self.before.map_or(0, |b| b.fds)
    }

    /// The most open files of the node seen so far.
    pub(crate) fn peak_fds(&self) -> usize {
        self.sampler.as_ref().map_or(0, |s| s.samples().peak_fds)
    }

    /// The honest member connects to the node and syncs; its time is kept for the table.
    pub(crate) async fn member_sync(&mut self) {
        let outcome = match (self.honest.take(), self.addr()) {
            (Some(member), Ok(addr)) => {
                let wanted = self.lab.seeded.clone();
                let task = self.member_rt.spawn(member::sync(member, addr, wanted));
                match tokio::time::timeout(MEMBER_DEADLINE * 2, task).await {
                    Ok(Ok(Ok(sync))) => Ok(sync),
                    Ok(Ok(Err(e))) => Err(format!("{e:#}")),
                    Ok(Err(e)) => Err(format!("the member's task failed: {e}")),
                    Err(_) => Err(format!(
                        "the member did not finish within {:?}",
                        MEMBER_DEADLINE * 2
                    )),
                }
            }
            (None, _) => Err("the honest member was already used".into()),
            (_, Err(e)) => Err(format!("{e:#}")),
        };
        match &outcome {
            Ok(s) => eprintln!(
                "    honest member: {} ({}/{} seeded records)",
                s.took
                    .map(|t| format!("synced in {:.2} s", t.as_secs_f64()))
                    .unwrap_or_else(|| "not synced".into()),
                s.held,
                s.wanted
            ),
            Err(e) => eprintln!("    honest member: {e}"),
        }
        self.member = Some(outcome);
    }
}

/// Tells an attack's tasks to stop: when [`Stop::stop`] is called, or when it is dropped
/// (an attack that fails half-way does not leave its tasks attacking the next node).
pub(crate) struct Stop(tokio::sync::watch::Sender<bool>);

impl Stop {
    /// A stop signal and what the tasks watch.
    pub(crate) fn new() -> (Stop, tokio::sync::watch::Receiver<bool>) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (Stop(tx), rx)
    }

    /// Tells the tasks to stop.
    pub(crate) fn stop(&self) {
        self.0.send_replace(true);
    }
}

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.send_replace(true);
    }
}

/// Waits for spawned attack tasks to end (they were told to stop), bounded by [`STOP_WAIT`];
/// the results come back in the tasks' order, and an error names the task that failed.
pub(crate) async fn join_all<T>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Result<Vec<T>> {
    let n = tasks.len();
    let tasks = tasks.into_iter().enumerate().map(|(i, t)| async move {
        t.await
            .map_err(|e| anyhow!("attack task {} of {n} failed: {e}", i + 1))
    });
    match tokio::time::timeout(STOP_WAIT, try_join_all(tasks)).await {
        Ok(out) => out,
        Err(_) => bail!("the attack tasks did not stop within {STOP_WAIT:?}"),
    }
}

/// No attack: the node and the honest member alone.
async fn baseline(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    ctx.start_node(&[], &[])?;
    ctx.begin()?;
    ctx.member_sync().await;
    Ok(Verdict::new(Vec::new(), "no attack".into()))
}

async fn dispatch(name: &str, ctx: &mut Ctx<'_>) -> Result<Verdict> {
    match name {
        "baseline" => baseline(ctx).await,
        "ihave-flood" => ihave::run(ctx).await,
        "oversized-frames" => frames::run(ctx).await,
        "direct-flood" => direct::run(ctx).await,
        "slowloris-one" => slowloris::run_one(ctx).await,
        "slowloris-many" => slowloris::run_many(ctx).await,
        "expired-member" => expiry::run(ctx).await,
        "malformed-burst" => burst::run(ctx).await,
        "deferred-flood" => deferred::run(ctx).await,
        "peer-time" => peer_time::run(ctx).await,
        "terminal-escapes" => escapes::run(ctx).await,
        other => bail!("no attack is called {other:?}"),
    }
}

/// Runs one attack in its harness; every outcome is reported, none is an error.
pub(crate) fn run(
    lab: &Lab,
    attack_rt: &tokio::runtime::Runtime,
    member_rt: tokio::runtime::Handle,
    index: usize,
    name: &'static str,
) -> Outcome {
    let started = Instant::now();
    let home = match lab.fresh_node_home(name) {
        Ok(h) => h,
        Err(e) => {
            return Outcome {
                index,
                name,
                rss: None,
                member: None,
                records: None,
                check: Err(format!("{e:#}")),
                details: Vec::new(),
                took: started.elapsed(),
            };
        }
    };
    let mut ctx = Ctx {
        lab,
        home,
        member_rt,
        honest: None,
        node: None,
        aux: Vec::new(),
        sampler: None,
        before: None,
        member: None,
        details: Vec::new(),
    };
    let check = match ctx.cli_member("honest", "Honest member") {
        Ok(m) => {
            ctx.honest = Some(m);
            attack_rt.block_on(async {
                match tokio::time::timeout(ATTACK_DEADLINE, dispatch(name, &mut ctx)).await {
                    Ok(Ok(v)) if v.ok => Ok(v.summary),
                    Ok(Ok(v)) => Err(v.summary),
                    Ok(Err(e)) => Err(format!("{e:#}")),
                    Err(_) => Err(format!(
                        "the attack did not finish within {ATTACK_DEADLINE:?}"
                    )),
                }
            })
        }
        Err(e) => Err(format!("preparing the honest member: {e:#}")),
    };
    // Right after: memory is still sampled, then the records are checked.
    if ctx.sampler.is_some() {
        std::thread::sleep(AFTER_ATTACK);
    }
    let records = match (&mut ctx.node, ctx.before) {
        (Some(node), Some(before)) => Some(check_records(node, &lab.seeded, before.records)),
        _ => None,
    };
    let samples = ctx.sampler.take().map(Sampler::finish);
    let rss = match (ctx.before, samples) {
        (Some(b), Some(s)) if s.count > 0 => Some(RssFigures {
            before_kib: b.rss_kib,
            peak_kib: s.peak_rss_kib.max(b.rss_kib),
            peak_fds: s.peak_fds,
            fds_before: b.fds,
            after_kib: s.last_rss_kib,
        }),
        _ => None,
    };
    let mut check = check;
    if let Some(node) = ctx.node.take()
        && let Some(complaint) = node.stop()
    {
        check = match check {
            Ok(_) => Err(complaint),
            Err(e) => Err(format!("{e}; {complaint}")),
        };
    }
    for aux in ctx.aux.drain(..) {
        drop(aux.stop());
    }
    Outcome {
        index,
        name,
        rss,
        member: ctx.member.take(),
        records,
        check,
        details: std::mem::take(&mut ctx.details),
        took: started.elapsed(),
    }
}

/// Every seeded record is still held, and the node counts no fewer records than before.
fn check_records(
    node: &mut NodeProc,
    seeded: &[String],
    before: usize,
) -> Result<RecordsKept, String> {
    let mut kept = 0;
    let mut missing = Vec::new();
    for id in seeded {
        match node.has(id) {
            Ok(true) => kept += 1,
            Ok(false) => missing.push(id.clone()),
            Err(e) => return Err(format!("{e:#}")),
        }
    }
    let after = node.record_count().map_err(|e| format!("{e:#}"))?;
    Ok(RecordsKept {
        kept,
        total: seeded.len(),
        count_before: before,
        count_after: after,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn join_all_keeps_order_and_names_the_failed_task() {
        let tasks: Vec<_> = (0..3u64)
            .map(|i| {
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(30 - 10 * i)).await;
                    i
                })
            })
            .collect();
        assert_eq!(join_all(tasks).await.unwrap(), [0, 1, 2]);
        let tasks = vec![
            tokio::spawn(async {}),
            tokio::spawn(async { panic!("boom") }),
        ];
        let err = join_all(tasks).await.unwrap_err().to_string();
        assert!(
            err.contains("attack task 2 of 2 failed") && err.contains("boom"),
            "{err}"
        );
    }
}
