//! `peergroup run`: keeps a member online until interrupted.
//!
//! It listens, syncs, publishes presence and prints what happens, one line per event. With
//! `--control` it also reads commands on standard input (one per line) and answers each with
//! one line, so scripts and the soak test can drive it:
//!
//! ```text
//! add <record type> <text>      → > ok <record id>
//! update <record id> <text>     → > ok <record id>
//! delete <record id>            → > ok <record id>
//! get <record id>               → > found <record id> v<version> | > missing <record id>
//! digest                        → > digest <hex> <records>
//! members                       → > members <present>/<all>
//! connections                   → > connections <count>
//! ```
//!
//! Answers start with `> ` so they cannot be mistaken for event lines; an error is
//! `> error <reason>`. A command longer than [`input::INPUT_LINE_BYTES`] is skipped and
//! answered with an error. Every line printed is made [`inert`]: events quote peers.
//!
//! Ctrl-C (or end of standard input in control mode) closes the group cleanly: presence
//! deleted, neighbors told, database and peer time persisted.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use peergroup::{EventFilter, Group, GroupEvent, RecordUpdate};

use crate::input::{self, InputLine, LineReader};
use crate::terminal::inert;
use crate::util::{self, Home};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The group (peer name or friendly-name prefix).
    #[arg(long)]
    group: String,
    /// The member identity, when several of yours belong to the group.
    #[arg(long)]
    identity: Option<String>,
    /// Addresses to listen on (default: every interface, port 3587, or any free port).
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// Members to dial at start, besides those the group knows.
    #[arg(long = "connect", value_name = "ADDR")]
    connect: Vec<SocketAddr>,
    /// Do not use the local network's services: mDNS discovery, and the router's UPnP
    /// port mapping.
    #[arg(long)]
    no_discovery: bool,
    /// Dial QUIC first, TCP after 500 ms: what members behind NATs need to punch holes to
    /// each other (docs/operations.md, "Behind a NAT").
    #[arg(long)]
    quic_first: bool,
    /// Read commands on standard input, one a line, each answered by a line starting with
    /// "> ": add TYPE TEXT, update ID TEXT, delete ID, get ID, digest, members, connections.
    #[arg(long)]
    control: bool,
    /// Print events (and the listening and closed lines) as JSON objects, one a line.
    #[arg(long)]
    json: bool,
    /// Serve the node's counters and gauges in the OpenMetrics text format at
    /// http://ADDR/metrics (off by default; use a loopback or private address: it asks for
    /// no credentials). Port 0 picks a free port; the line "metrics URL" says which.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
}

pub(crate) async fn run(home: &Home, a: RunArgs) -> Result<()> {
    let infra = home
        .online(&a.listen, !a.no_discovery, a.quic_first)
        .await?;
    let found = util::group(&infra, &a.group, a.identity.as_deref()).await?;
    let group = infra.open_group(&found.identity, &found.group).await?;
    let mut events = group.events(EventFilter::all());
    group.connect_to(a.connect.clone()).await?;
    let progress = crate::progress::watch_sync(group.clone());
    let addrs: Vec<String> = infra
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    let endpoint = crate::util::control_endpoint(home, &infra, &found.identity, &group);
    let json = a.json;
    if json {
        say_json(&serde_json::json!({ "event": "listening", "addresses": addrs }));
    } else {
        say(&format!("listening {}", addrs.join(" ")));
    }
    if let Some(at) = a.metrics {
        let bound = crate::metrics::serve(at, infra.clone(), group.clone()).await?;
        let url = format!("http://{bound}/metrics");
        if json {
            say_json(&serde_json::json!({ "event": "metrics", "url": url }));
        } else {
            say(&format!("metrics {url}"));
        }
    }
    let mut lines = LineReader::new(tokio::io::BufReader::new(tokio::io::stdin()));
    let control_mode = a.control;
    let stop = crate::stop::requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            client = endpoint.next() => if let Some(c) = client { endpoint.serve(c).await },
            e = events.next() => {
                let Some(e) = e else { break };
                if json {
                    say_json(&event_json(&e));
                } else {
                    say(&describe(&e));
                }
            }
            line = lines.next_line(), if control_mode => match line {
                Ok(Some(InputLine::Text(line))) => {
                    say(&format!("> {}", control(&group, line.trim()).await));
                }
                Ok(Some(InputLine::TooLong)) => say(&format!(
                    "> error the command is longer than {}",
                    input::size(input::INPUT_LINE_BYTES as u64)
                )),
                _ => break,
            },
        }
    }
    group.close().await?;
    let _ = progress.await;
    infra.shutdown().await;
    if json {
        say_json(&serde_json::json!({ "event": "closed" }));
    } else {
        say("closed");
    }
    Ok(())
}

/// Prints one JSON object on a line (its strings escaped by JSON, so inert already).
fn say_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// An event as a JSON object: `event` names it, the other fields are its own.
pub(crate) fn event_json(e: &GroupEvent) -> serde_json::Value {
    use serde_json::json;
    let opt = |v: Option<String>| v.map_or(serde_json::Value::Null, serde_json::Value::String);
    match e {
        GroupEvent::StatusChanged(s) => json!({
            "event": "status",
            "listening": s.listening,
            "has_connections": s.has_connections,
            "synchronized": s.synchronized,
        }),
        GroupEvent::PropertyChanged(p) => json!({
            "event": "properties",
            "friendly_name": p.friendly_name,
            "comment": p.comment,
        }),
        GroupEvent::RecordChanged { change, record } => json!({
            "event": "record",
            "change": format!("{change:?}"),
            "id": record.id.to_string(),
            "record_type": record.record_type.to_string(),
            "version": record.version,
            "by": record.signer().to_string(),
        }),
        GroupEvent::MemberChanged { peer, change } => json!({
            "event": "member",
            "change": format!("{change:?}"),
            "peer": peer.to_string(),
        }),
        GroupEvent::NeighborConnection {
            peer, addr, change, ..
        } => json!({
            "event": "neighbor",
            "change": format!("{change:?}"),
            "peer": opt(peer.as_ref().map(ToString::to_string)),
            "addr": opt(addr.map(|a| a.to_string())),
        }),
        GroupEvent::DirectConnection { peer, change, .. } => json!({
            "event": "direct",
            "change": format!("{change:?}"),
            "peer": opt(peer.as_ref().map(ToString::to_string)),
        }),
        GroupEvent::IncomingData {
            peer,
            data_type,
            data,
            ..
        } => json!({
            "event": "data",
            "data_type": data_type.to_string(),
            "bytes": data.len(),
            "peer": peer.to_string(),
        }),
        GroupEvent::ConnectionFailed { addr, reason } => json!({
            "event": "connection-failed",
            "addr": opt(addr.map(|a| a.to_string())),
            "reason": reason.to_string(),
        }),
        GroupEvent::AuthenticationFailed { addr, reason } => json!({
            "event": "authentication-failed",
            "addr": opt(addr.map(|a| a.to_string())),
            "reason": reason.to_string(),
        }),
        GroupEvent::Lagged { missed } => json!({ "event": "lagged", "missed": missed }),
        other => json!({ "event": "other", "debug": format!("{other:?}") }),
    }
}

/// Prints one line, made [`inert`]: events and answers quote peers (names, reasons) and
/// the commands read.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", inert(line));
    let _ = out.flush();
}

/// One line describing an event.
pub(crate) fn describe(e: &GroupEvent) -> String {
    match e {
        GroupEvent::StatusChanged(s) => format!(
            "status listening={} connections={} synchronized={}",
            s.listening, s.has_connections, s.synchronized
        ),
        GroupEvent::PropertyChanged(p) => format!("properties {:?}", p.friendly_name),
        GroupEvent::RecordChanged { change, record } => {
            format!(
                "record {change:?} {} {} v{} by {}",
                record.id,
                record.record_type,
                record.version,
                record.signer()
            )
        }
        GroupEvent::MemberChanged { peer, change } => format!("member {change:?} {peer}"),
        GroupEvent::NeighborConnection {
            peer, addr, change, ..
        } => format!(
            "neighbor {change:?} {} {}",
            peer.as_ref().map(ToString::to_string).unwrap_or_default(),
            addr.map(|a| a.to_string()).unwrap_or_default()
        ),
        GroupEvent::DirectConnection { peer, change, .. } => {
            format!(
                "direct {change:?} {}",
                peer.as_ref().map(ToString::to_string).unwrap_or_default()
            )
        }
        GroupEvent::IncomingData {
            peer,
            data_type,
            data,
            ..
        } => format!("data {data_type} {} bytes from {peer}", data.len()),
        GroupEvent::ConnectionFailed { addr, reason } => {
            format!(
                "connection-failed {} {reason}",
                addr.map(|a| a.to_string()).unwrap_or_default()
            )
        }
        GroupEvent::AuthenticationFailed { addr, reason } => {
            format!(
                "authentication-failed {} {reason}",
                addr.map(|a| a.to_string()).unwrap_or_default()
            )
        }
        GroupEvent::Lagged { missed } => format!("lagged {missed}"),
        other => format!("{other:?}"),
    }
}

async fn control(group: &Group, line: &str) -> String {
    let mut parts = line.splitn(3, ' ');
    let cmd = parts.next().unwrap_or_default();
    let result: Result<String> = async {
        match cmd {
            "add" => {
                let t = parts.next().unwrap_or_default().parse()?;
                let text = parts.next().unwrap_or_default();
                let r = group
                    .add_record(t, "", text.as_bytes().to_vec(), Duration::from_secs(3600))
                    .await?;
                Ok(format!("ok {}", r.id))
            }
            "update" => {
                let id = parts.next().unwrap_or_default().parse()?;
                let text = parts.next().unwrap_or_default();
                let u = RecordUpdate {
                    payload: Some(text.as_bytes().to_vec()),
                    ..RecordUpdate::default()
                };
                let r = group.update_record(id, u).await?;
                Ok(format!("ok {}", r.id))
            }
            "delete" => {
                let id = parts.next().unwrap_or_default().parse()?;
                let r = group.delete_record(id).await?;
                Ok(format!("ok {}", r.id))
            }
            "get" => {
                let id: peergroup::RecordId = parts.next().unwrap_or_default().parse()?;
                Ok(match group.record(id).await {
                    Ok(r) => format!("found {} v{}", r.id, r.version),
                    Err(e) if e.kind() == peergroup::ErrorKind::RecordNotFound => {
                        format!("missing {id}")
                    }
                    Err(e) => return Err(e.into()),
                })
            }
            "digest" => {
                let (d, n) = group.digest().await?;
                Ok(format!(
                    "digest {} {n}",
                    d.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ))
            }
            "members" => {
                let all = group.members(false).await?.len();
                let present = group.members(true).await?.len();
                Ok(format!("members {present}/{all}"))
            }
            "connections" => Ok(format!("connections {}", group.connections().await?.len())),
            "" => Ok("ok".into()),
            other => anyhow::bail!("unknown command {other:?}"),
        }
    }
    .await;
    result.unwrap_or_else(|e| format!("error {}", util::one_line(&e)))
}
