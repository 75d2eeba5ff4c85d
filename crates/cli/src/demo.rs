//! `peergroup demo`: a real local group of several peers, start to finish.
//!
//! Each peer is a full infrastructure with its own data directory and its own TLS endpoint on
//! loopback, in this process. Alice creates a group and invites the others by their identity;
//! they join and connect; everybody chats; a record is published and searched; presence is
//! checked; Alice whispers to Bob over a direct connection; one member is revoked. Every step
//! is checked; the exit status says whether all checks passed.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::Args;
use peergroup::{
    EventFilter, EventKind, Group, GroupEvent, GroupSpec, IdentityInfo, Infrastructure,
    InfrastructureConfig, MemberChange, PeerName, RevocationTarget, Role,
};

use crate::chat::{chat_type, whisper_type};

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Number of peers (at least 3).
    #[arg(long, default_value_t = 4)]
    peers: usize,
    /// Chat messages each peer sends.
    #[arg(long, default_value_t = 25)]
    messages: usize,
    /// Keep the peers' data in this directory (default: a temporary one, removed after).
    #[arg(long)]
    home: Option<PathBuf>,
}

const NAMES: [&str; 10] = [
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
];
const WAIT: Duration = Duration::from_secs(60);

struct Peer {
    name: String,
    infra: Infrastructure,
    identity: PeerName,
    group: Option<Group>,
}

impl Peer {
    fn group(&self) -> Result<&Group> {
        self.group.as_ref().context("not in the group")
    }
}

struct Checks {
    passed: usize,
    failed: Vec<String>,
}

impl Checks {
    fn check(&mut self, ok: bool, what: &str) {
        self.check_saw(ok, what, String::new);
    }

    /// As [`Checks::check`]; a failure also prints what was seen instead.
    fn check_saw(&mut self, ok: bool, what: &str, saw: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
            println!("  ✓ {what}");
        } else {
            let saw = saw();
            let failed = if saw.is_empty() {
                what.to_owned()
            } else {
                format!("{what} ({saw})")
            };
            println!("  ✗ {failed}");
            self.failed.push(failed);
        }
    }
}

/// Polls `f` until it holds or `within` has passed; says whether it held. The waits are
/// generous (see [`WAIT`]): on a loaded machine a step may take many times longer than on a
/// quiet one, and a check fails only when the step did not happen at all.
async fn until<F: AsyncFnMut() -> Result<bool>>(within: Duration, mut f: F) -> Result<bool> {
    let start = Instant::now();
    loop {
        if f().await? {
            return Ok(true);
        }
        if start.elapsed() > within {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn run(a: DemoArgs) -> Result<()> {
    if !(3..=NAMES.len()).contains(&a.peers) {
        bail!("--peers must be between 3 and {}", NAMES.len());
    }
    let temp = tempfile::tempdir()?;
    let root = a.home.clone().unwrap_or_else(|| temp.path().to_path_buf());
    println!(
        "peergroup demo: {} peers on loopback TLS, data in {}",
        a.peers,
        root.display()
    );
    let mut checks = Checks {
        passed: 0,
        failed: Vec::new(),
    };
    let started = Instant::now();

    // Identities and infrastructures.
    let mut peers = Vec::new();
    for name in NAMES.iter().take(a.peers) {
        let mut config = InfrastructureConfig::new(root.join(name.to_lowercase()));
        config.listen = vec!["127.0.0.1:0".parse()?];
        config.discovery = false;
        let infra = Infrastructure::start(config).await?;
        let identity = match infra.identities().find(name).await {
            Ok(i) => i,
            Err(_) => {
                infra
                    .identities()
                    .create(name, Some(&name.to_lowercase()))
                    .await?
            }
        };
        println!(
            "{name}: identity {}, listening on {}",
            identity.peer_name(),
            infra.local_addrs()[0]
        );
        peers.push(Peer {
            name: (*name).to_owned(),
            infra,
            identity: identity.peer_name().clone(),
            group: None,
        });
    }

    // Alice creates the group and goes online.
    let form = Instant::now();
    let group_name = peers[0]
        .infra
        .create_group(&peers[0].identity, &GroupSpec::new("Demo group"))
        .await?;
    let alice_group = peers[0]
        .infra
        .open_group(&peers[0].identity, &group_name)
        .await?;
    alice_group.connect().await?;
    let alice_addr = peers[0].infra.local_addrs()[0];
    println!("Alice created {group_name}");
    peers[0].group = Some(alice_group);

    // Alice invites each of the others by their identity info; they join and connect.
    for i in 1..peers.len() {
        let info = IdentityInfo::new(
            peers[i]
                .infra
                .identities()
                .get(&peers[i].identity)
                .await?
                .certificate()
                .clone(),
        )
        .to_xml();
        let role = if i == 1 {
            Role::InvitingMember
        } else {
            Role::Member
        };
        let invitation = peers[0]
            .group()?
            .create_invitation(&info, role, Duration::from_secs(86_400))
            .await?;
        let joined = peers[i].infra.join(&peers[i].identity, &invitation).await?;
        let g = peers[i]
            .infra
            .open_group(&peers[i].identity, &joined)
            .await?;
        g.connect_to(vec![alice_addr]).await?;
        g.wait_ready(WAIT).await?;
        println!("{} joined as {role} and synchronised", peers[i].name);
        peers[i].group = Some(g);
    }
    let n = peers.len();
    let all_present = until(WAIT, async || {
        for p in &peers {
            if p.group()?.members(true).await?.len() < n {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let form_time = form.elapsed();
    println!("\nThe group formed in {form_time:.2?}");
    let mut present = Vec::new();
    for p in &peers {
        present.push(format!(
            "{} sees {}",
            p.name,
            p.group()?.members(true).await?.len()
        ));
    }
    checks.check_saw(
        all_present,
        &format!("every peer sees all {n} members present"),
        || format!("after {WAIT:?}: {}", present.join(", ")),
    );
    let members = peers[1].group()?.members(false).await?;
    checks.check(
        members
            .first()
            .is_some_and(|m| m.local && m.friendly_name == "Bob"),
        "Bob's member list starts with Bob",
    );

    // Chat: every peer sends messages at once.
    println!("\nChat: {} messages from each of {n} peers", a.messages);
    let mut watch = peers[n - 1]
        .group()?
        .events(EventFilter::kinds([EventKind::RecordChanged]).record_types([chat_type()]));
    let chat_start = Instant::now();
    let mut sends = Vec::new();
    for p in &peers {
        let g = p.group()?.clone();
        let name = p.name.clone();
        let count = a.messages;
        sends.push(tokio::spawn(async move {
            for k in 0..count {
                let text = format!("hello #{k} from {name}");
                g.add_record(
                    chat_type(),
                    "",
                    text.into_bytes(),
                    Duration::from_secs(3600),
                )
                .await?;
            }
            Ok::<_, peergroup::Error>(())
        }));
    }
    for s in sends {
        s.await??;
    }
    let expected = n * a.messages;
    let converged = until(WAIT, async || {
        for p in &peers {
            if p.group()?.records(chat_type()).await?.len() < expected {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let converge_time = chat_start.elapsed();
    let rate = expected as f64 / converge_time.as_secs_f64();
    let mut counts = Vec::new();
    for p in &peers {
        counts.push(format!(
            "{} has {}",
            p.name,
            p.group()?.records(chat_type()).await?.len()
        ));
    }
    checks.check_saw(
        converged,
        &format!("all {expected} messages reached every peer"),
        || format!("after {WAIT:?}: {}", counts.join(", ")),
    );
    // Presence refreshes may still be on their way: the replicas agree once they arrive.
    let same = until(WAIT, async || {
        let first = peers[0].group()?.digest().await?;
        for p in &peers[1..] {
            if p.group()?.digest().await? != first {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    checks.check_saw(same, "every replica has the same database digest", || {
        format!("they still differed after {WAIT:?}")
    });
    if let Ok(Some(GroupEvent::RecordChanged { record, .. })) =
        tokio::time::timeout(Duration::from_secs(1), watch.next()).await
    {
        println!(
            "  {} saw, for example: {:?}",
            peers[n - 1].name,
            String::from_utf8_lossy(&record.payload)
        );
    }
    println!("  converged in {converge_time:.2?}: {rate:.0} messages/s delivered to everyone");

    // Records and search.
    println!("\nRecords");
    let notes: peergroup::RecordType = "b7a5c6d1-2e3f-4a5b-8c9d-0e1f2a3b4c5d".parse()?;
    let attrs = r#"<attributes><attribute name="Topic" type="string">demo plans</attribute><attribute name="Priority" type="int">2</attribute></attributes>"#;
    let note = peers[1]
        .group()?
        .add_record(
            notes,
            attrs,
            b"Bob's note".to_vec(),
            Duration::from_secs(3600),
        )
        .await?;
    let query = r#"<peersearch><and><clause attrib="Topic" type="string">demo*</clause><clause attrib="Priority" type="int" compare="greaterorequal">2</clause></and></peersearch>"#;
    let found = until(WAIT, async || {
        Ok(peers[2]
            .group()?
            .search(query)
            .await?
            .iter()
            .any(|r| r.id == note.id))
    })
    .await?;
    checks.check(found, "Carol finds Bob's note by searching its attributes");
    let update = peergroup::RecordUpdate {
        payload: Some(b"Carol was here".to_vec()),
        ..Default::default()
    };
    let refused = peers[2].group()?.update_record(note.id, update).await;
    checks.check(
        matches!(&refused, Err(e) if e.kind() == peergroup::ErrorKind::NotAuthorized),
        "Carol may not change Bob's record",
    );

    // A whisper over a direct connection.
    println!("\nWhisper");
    let mut bob_data = peers[1]
        .group()?
        .events(EventFilter::kinds([EventKind::IncomingData]));
    let mut carol_data = peers[2]
        .group()?
        .events(EventFilter::kinds([EventKind::IncomingData]));
    let direct = peers[0]
        .group()?
        .open_direct_wait(&peers[1].identity)
        .await?;
    peers[0]
        .group()?
        .send_data(direct, whisper_type(), Bytes::from_static(b"psst, Bob"))
        .await?;
    let got = tokio::time::timeout(WAIT, bob_data.next()).await;
    let heard = matches!(&got, Ok(Some(GroupEvent::IncomingData { data, .. })) if &data[..] == b"psst, Bob");
    checks.check_saw(
        heard,
        "Bob receives Alice's whisper over a direct connection",
        || match &got {
            Err(_) => format!("nothing within {WAIT:?}"),
            Ok(other) => format!("got {other:?}"),
        },
    );
    // Nothing must come: a short window is enough (a loaded machine only makes it pass
    // more easily), and Bob has already heard the whisper.
    let overheard = tokio::time::timeout(Duration::from_millis(500), carol_data.next()).await;
    checks.check_saw(overheard.is_err(), "Carol does not", || {
        format!("Carol got {overheard:?}")
    });
    peers[0].group()?.close_direct(direct).await?;

    // Revocation.
    let victim = n - 1;
    println!("\nRevocation of {}", peers[victim].name);
    let mut bob_members = peers[1]
        .group()?
        .events(EventFilter::kinds([EventKind::MemberChanged]));
    let mut victim_conns = peers[victim]
        .group()?
        .events(EventFilter::kinds([EventKind::NeighborConnection]));
    peers[0]
        .group()?
        .revoke(
            RevocationTarget::Peer(peers[victim].identity.clone()),
            "demo",
        )
        .await?;
    let victim_id = peers[victim].identity.clone();
    let left = tokio::time::timeout(WAIT, async {
        while let Some(e) = bob_members.next().await {
            if let GroupEvent::MemberChanged {
                peer,
                change: MemberChange::Left,
            } = e
                && peer == victim_id
            {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    checks.check_saw(
        left,
        &format!("Bob sees {} leave", peers[victim].name),
        || format!("no MemberChanged Left within {WAIT:?}"),
    );
    // Its neighbors close their connections to it as the revocation reaches them: wait until
    // it has none (its status says so), whatever order the events come in.
    let cut = until(WAIT, async || {
        Ok(!peers[victim].group()?.status().has_connections)
    })
    .await?;
    let mut cut_events = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::ZERO, victim_conns.next()).await {
        if let GroupEvent::NeighborConnection { peer, change, .. } = e {
            cut_events.push(format!("{peer:?}: {change:?}"));
        }
    }
    checks.check_saw(
        cut,
        &format!("{}'s connections are closed", peers[victim].name),
        || {
            format!(
                "after {WAIT:?} it still had connections; its neighbor events: {}",
                cut_events.join("; ")
            )
        },
    );
    let old_messages = peers[1].group()?.records(chat_type()).await?.len();
    let _ = peers[victim]
        .group()?
        .add_record(
            chat_type(),
            "",
            b"am I still here?".to_vec(),
            Duration::from_secs(3600),
        )
        .await;
    // Nothing must arrive: a second is ample for a record that could travel at all (it has
    // no connection left to travel on), and load only makes this pass more easily.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = peers[1].group()?.records(chat_type()).await?;
    checks.check_saw(
        after.len() == old_messages,
        "its new messages do not reach the others; its old ones stay",
        || format!("Bob had {old_messages} messages, then {}", after.len()),
    );

    // Close everyone cleanly.
    for p in &mut peers {
        if let Some(g) = p.group.take() {
            g.close().await?;
        }
        p.infra.clone().shutdown().await;
    }

    println!("\nSummary");
    println!("  peers:                 {n}");
    println!("  group formed in:       {form_time:.2?}");
    println!(
        "  chat converged in:     {converge_time:.2?} ({expected} messages, {rate:.0} messages/s)"
    );
    println!("  total:                 {:.2?}", started.elapsed());
    println!(
        "  checks:                {} passed, {} failed",
        checks.passed,
        checks.failed.len()
    );
    if checks.failed.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} check(s) failed: {}",
            checks.failed.len(),
            checks.failed.join("; ")
        )
    }
}
