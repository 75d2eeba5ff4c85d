//! Attack 7: A burst with one malformed record: a member floods good signed records and, among them
//! in the same burst, a membership record whose certificate chain is broken (the leaf's
//! signature tampered with). Every good record must be stored at the node, the bad one
//! refused — one bad record must not cost the burst.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use peergroup_credential_roles::{CertChain, RevocationSet};
use peergroup_identity::Timestamp;
use peergroup_membership::MeshMessage;
use peergroup_record_db::reserved::MembershipPayload;
use peergroup_record_db::{Record, RecordType};

use super::{Ctx, Verdict};
use crate::mesh::{Attacker, encode};
use crate::waits::STORE_WAIT;

/// The good records' type.
const BURST_TYPE: &str = "5ca1ab1e-0000-4000-8000-0000000b0257";
/// Good records per burst.
const GOOD: usize = 20;

/// The member's chain with its leaf's signature tampered with: it parses, and no group
/// accepts it.
fn broken_chain(attacker: &Attacker) -> Result<CertChain> {
    let mut ders: Vec<Vec<u8>> = attacker
        .chain
        .certificates()
        .iter()
        .map(|c| c.der().to_vec())
        .collect();
    let leaf = ders.last_mut().context("an empty chain")?;
    let last = leaf.len() - 1;
    leaf[last] ^= 0x55;
    let broken = CertChain::from_ders(&ders)
        .map_err(|e| anyhow::anyhow!("the tampered chain does not parse: {e}"))?;
    if broken
        .validate(
            &attacker.group,
            Timestamp::now(),
            &RevocationSet::new(),
            None,
        )
        .is_ok()
    {
        bail!("tampering with the leaf's signature did not break the chain");
    }
    Ok(broken)
}

/// A membership record for `broken`, signed by `attacker` (a known member): only its chain
/// is wrong.
fn bad_membership(attacker: &Attacker, broken: &CertChain) -> Result<Record> {
    let mut record = attacker
        .records(
            RecordType::MEMBERSHIP,
            Duration::from_secs(3600),
            "",
            [MembershipPayload::new(broken).to_payload()],
        )?
        .pop()
        .context("no record signed")?;
    record.id = MembershipPayload::record_id(attacker.peer(), broken.leaf().serial());
    Ok(attacker.resign(record))
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    let attacker = ctx.attacker("burst", "Burst sender", None)?;
    let bursts = if ctx.lab.short { 4 } else { 10 };
    let record_type: RecordType = BURST_TYPE
        .parse()
        .map_err(|e| anyhow::anyhow!("record type: {e}"))?;
    let broken = broken_chain(&attacker)?;
    let addr = ctx.start_node(&[], &[])?;
    ctx.begin()?;
    let started = Instant::now();
    let neighbor = attacker.neighbor(addr).await?;
    let (sender, mut receiver) = neighbor.conn.split();
    let drain = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
    let mut good_ids = Vec::new();
    let mut bad_ids = Vec::new();
    for b in 0..bursts {
        let goods = attacker.records(
            record_type,
            Duration::from_secs(3600),
            "",
            (0..GOOD).map(|i| format!("good record {i} of burst {b}").into_bytes()),
        )?;
        let bad = bad_membership(&attacker, &broken)?;
        // The bad record moves through the burst: first, in the middle, last.
        let at = (b * 7) % (GOOD + 1);
        let mut burst: Vec<Record> = goods;
        good_ids.extend(burst.iter().map(|r| r.id.to_string()));
        bad_ids.push(bad.id.to_string());
        burst.insert(at, bad);
        for r in burst {
            sender
                .send(encode(&MeshMessage::Flood(r)))
                .await
                .with_context(|| format!("burst {b}: the node closed the link"))?;
        }
        if b == 0 {
            ctx.member_sync().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let window = ctx.window();
    if let Some(left) = window.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let link_open = sender.close_reason().is_none();
    sender.close("done");
    drain.abort();

    // Every good record stored (they may take a moment), every bad one refused.
    let wait_started = Instant::now();
    let mut missing: Vec<String> = good_ids.clone();
    while !missing.is_empty() && wait_started.elapsed() < STORE_WAIT {
        let node = ctx.node()?;
        let mut still = Vec::new();
        for id in missing {
            if !node.has(&id)? {
                still.push(id);
            }
        }
        missing = still;
        if !missing.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let mut stored_bad = Vec::new();
    for id in &bad_ids {
        if ctx.node()?.has(id)? {
            stored_bad.push(id.clone());
        }
    }
    ctx.note(format!(
        "{bursts} bursts of {GOOD} good records and 1 membership record with a tampered chain: \
         {}/{} good stored, {}/{} bad stored; the link {} after the bursts",
        good_ids.len() - missing.len(),
        good_ids.len(),
        stored_bad.len(),
        bad_ids.len(),
        if link_open {
            "stayed open"
        } else {
            "was closed"
        }
    ));
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!(
            "{} good record(s) of the bursts not stored after {STORE_WAIT:?} (e.g. {})",
            missing.len(),
            missing[0]
        ));
    }
    if !stored_bad.is_empty() {
        problems.push(format!(
            "{} membership record(s) with a broken chain stored (e.g. {})",
            stored_bad.len(),
            stored_bad[0]
        ));
    }
    Ok(Verdict::new(
        problems,
        format!(
            "{} good stored, {} bad refused",
            good_ids.len(),
            bad_ids.len()
        ),
    ))
}
