//! The honest member: in-process, through the `peergroup` facade, on a runtime of its own (so
//! the attackers' tasks do not delay it), it opens the group, connects to the node and waits
//! until it holds the node's seeded records.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use peergroup::{Infrastructure, InfrastructureConfig, RecordId, RecordType};

use crate::lab::{PreparedMember, SEED_TYPE};
use crate::waits::{MEMBER_DEADLINE, NODE_STOP_WAIT};

/// How the honest member fared.
#[derive(Clone, Debug)]
pub(crate) struct MemberSync {
    /// From `connect_to` until it held every seeded record; `None` if it did not within
    /// [`MEMBER_DEADLINE`].
    pub(crate) took: Option<Duration>,
    /// Seeded records it held at the end.
    pub(crate) held: usize,
    /// Seeded records.
    pub(crate) wanted: usize,
}

/// Opens `member`'s group, connects to `node` and waits for `wanted`.
pub(crate) async fn sync(
    member: PreparedMember,
    node: SocketAddr,
    wanted: Vec<String>,
) -> Result<MemberSync> {
    let wanted: BTreeSet<RecordId> = wanted
        .iter()
        .map(|id| {
            id.parse()
                .map_err(|e| anyhow::anyhow!("seeded record id {id:?} does not parse: {e}"))
        })
        .collect::<Result<_>>()?;
    let seed_type: RecordType = SEED_TYPE
        .parse()
        .map_err(|e| anyhow::anyhow!("record type {SEED_TYPE}: {e}"))?;
    let mut config = InfrastructureConfig::new(&member.home);
    config.listen = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
    config.discovery = false;
    let infra = Infrastructure::start(config)
        .await
        .context("the honest member's infrastructure did not start")?;
    let result = async {
        let group = infra
            .open_group(&member.identity, &member.group)
            .await
            .context("the honest member could not open the group")?;
        let started = Instant::now();
        let outcome = async {
            group
                .connect_to(vec![node])
                .await
                .context("the honest member's connect_to failed")?;
            loop {
                let held = group
                    .records(seed_type)
                    .await
                    .context("the honest member could not list its records")?
                    .iter()
                    .filter(|r| wanted.contains(&r.id))
                    .count();
                if held == wanted.len() {
                    return Ok(MemberSync {
                        took: Some(started.elapsed()),
                        held,
                        wanted: wanted.len(),
                    });
                }
                if started.elapsed() > MEMBER_DEADLINE {
                    return Ok(MemberSync {
                        took: None,
                        held,
                        wanted: wanted.len(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        .await;
        let _ = tokio::time::timeout(NODE_STOP_WAIT, group.close()).await;
        outcome
    }
    .await;
    let _ = tokio::time::timeout(NODE_STOP_WAIT, infra.shutdown()).await;
    result
}
