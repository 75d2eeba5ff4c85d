//! `peergroup chat`: the group chat (the Windows GroupChat sample, done properly).
//!
//! - A chat message is a record of [`CHAT_TYPE`]: the text as payload, the sender's friendly
//!   name in its attributes; it lives for `--lifetime` (history survives restarts until then).
//! - The participants are the members present, kept current from member events.
//! - `/w <name> <text>` whispers over a direct connection: only the two see it.
//! - `/invite <identity-info-file> [role]` writes an invitation file; `/members`; `/quit`.
//!
//! With a terminal it is a full-screen UI ([`tui`]); without one (stdin not a TTY) it reads
//! lines and prints one line per message or event ([`line`]), so scripts and tests drive it.
//!
//! Everything shown comes from other members (messages, whispers, names, refusal reasons)
//! or quotes them, and any of them may be hostile: [`Line::render`] makes every piece
//! [`inert`], so a message cannot set the window title, clear the screen, move the cursor,
//! reverse text or invent a line, in either mode.

mod line;
mod tui;

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::Args;
use peergroup::{
    ChangeKind, DataType, EventFilter, Group, GroupEvent, Infrastructure, MemberChange, PeerName,
    Record, RecordType, Role,
};

use crate::input;
use crate::terminal::inert;
use crate::util::{self, Home};

/// The record type of chat messages.
pub(crate) const CHAT_TYPE: &str = "4c8e2f10-7d3b-4a61-9b5e-2a6c0d9e1f37";
/// The data type of whispers.
pub(crate) const WHISPER_TYPE: &str = "9a1d4e7c-2b5f-4c83-8e0a-6f3d1c2b5a94";

pub(crate) fn chat_type() -> RecordType {
    CHAT_TYPE.parse().unwrap_or(RecordType(Default::default()))
}

pub(crate) fn whisper_type() -> DataType {
    WHISPER_TYPE.parse().unwrap_or(DataType(Default::default()))
}

#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    /// The group (peer name or friendly-name prefix).
    #[arg(long)]
    group: String,
    /// The member identity, when several of yours belong to the group.
    #[arg(long)]
    identity: Option<String>,
    /// Members to dial at start, besides those the group knows.
    #[arg(long = "connect", value_name = "ADDR")]
    connect: Vec<SocketAddr>,
    /// Addresses to listen on (default: every interface, port 3587, or any free port).
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// How long messages live.
    #[arg(long, default_value = "24h", value_parser = util::parse_duration)]
    lifetime: Duration,
    /// Do not use the local network's services: mDNS discovery, and the router's UPnP
    /// port mapping.
    #[arg(long)]
    no_discovery: bool,
    /// Dial QUIC first, TCP after 500 ms: what members behind NATs need to punch holes to
    /// each other (docs/operations.md, "Behind a NAT").
    #[arg(long)]
    quic_first: bool,
    /// Line mode even on a terminal.
    #[arg(long)]
    lines: bool,
}

/// Something to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A chat message.
    Message {
        time: String,
        from: String,
        text: String,
    },
    /// A whisper received or sent.
    Whisper {
        time: String,
        from: String,
        to: String,
        text: String,
        incoming: bool,
    },
    /// A notice (members, connections, errors).
    Notice(String),
}

impl Line {
    /// The line as shown: one line of inert text (each piece goes through [`inert`]).
    pub(crate) fn render(&self) -> String {
        match self {
            Line::Message { time, from, text } => {
                format!("[{}] {}: {}", inert(time), inert(from), inert(text))
            }
            Line::Whisper {
                time,
                from,
                text,
                incoming: true,
                ..
            } => format!(
                "[{}] (whisper from {}) {}",
                inert(time),
                inert(from),
                inert(text)
            ),
            Line::Whisper { time, to, text, .. } => format!(
                "[{}] (whisper to {}) {}",
                inert(time),
                inert(to),
                inert(text)
            ),
            Line::Notice(n) => format!("* {}", inert(n)),
        }
    }
}

fn clock(t: peergroup::Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..19).unwrap_or(&s).to_owned()
}

/// The chat session: the group, names of members, participants.
pub(crate) struct Chat {
    pub(crate) infra: Infrastructure,
    pub(crate) group: Group,
    pub(crate) me: String,
    lifetime: Duration,
    names: BTreeMap<PeerName, String>,
    /// The local member.
    me_peer: PeerName,
    /// Messages shown from the history whose events may still be waiting in the stream:
    /// each is shown once (bounded by the history, which the group bounds).
    shown: std::collections::BTreeSet<peergroup::RecordId>,
    pub(crate) participants: Vec<String>,
    /// The control endpoint while the chat runs (see `control.rs`).
    pub(crate) control: crate::control::Endpoint,
}

/// Whom `/w name` means among the present `members`: the one whose name is `name` (any
/// case), else the one whose name starts with it, else the one with that peer name. Several
/// is an error naming them (a whisper must not go to the wrong person), and so is oneself.
pub(crate) fn whisper_target(members: &[peergroup::Member], name: &str) -> Result<PeerName> {
    let lower = name.to_lowercase();
    let present = || members.iter().filter(|m| m.present && !m.revoked);
    let by = |exact: bool| -> Vec<&peergroup::Member> {
        present()
            .filter(|m| {
                let n = m.friendly_name.to_lowercase();
                if exact {
                    n == lower
                } else {
                    n.starts_with(&lower)
                }
            })
            .collect()
    };
    let mut found = by(true);
    if found.is_empty() {
        found = by(false);
    }
    if found.is_empty() {
        found = present().filter(|m| m.peer.to_string() == name).collect();
    }
    let others: Vec<&peergroup::Member> = found.iter().copied().filter(|m| !m.local).collect();
    match (others.as_slice(), found.len()) {
        ([one], _) => Ok(one.peer.clone()),
        ([], 0) => bail!("nobody called {name:?} is here"),
        ([], _) => bail!("{name:?} is you"),
        (several, _) => {
            let names: Vec<String> = several
                .iter()
                .map(|m| format!("{} ({})", m.friendly_name, m.peer))
                .collect();
            bail!(
                "{name:?} could be {}: type more of the name, or the peer name",
                names.join(" or ")
            )
        }
    }
}

impl Chat {
    async fn start(home: &Home, a: &ChatArgs) -> Result<Self> {
        let infra = home
            .online(&a.listen, !a.no_discovery, a.quic_first)
            .await?;
        let found = util::group(&infra, &a.group, a.identity.as_deref()).await?;
        let group = infra.open_group(&found.identity, &found.group).await?;
        let me = infra
            .identities()
            .get(&found.identity)
            .await?
            .friendly_name()
            .to_owned();
        group.connect_to(a.connect.clone()).await?;
        let control = util::control_endpoint(home, &infra, &found.identity, &group);
        let mut chat = Chat {
            control,
            me_peer: found.identity.clone(),
            shown: std::collections::BTreeSet::new(),
            infra,
            group,
            me,
            lifetime: a.lifetime,
            names: BTreeMap::new(),
            participants: Vec::new(),
        };
        chat.refresh_members().await?;
        Ok(chat)
    }

    /// Refreshes names and the participants list.
    pub(crate) async fn refresh_members(&mut self) -> Result<()> {
        let members = self.group.members(false).await?;
        for m in &members {
            self.names.insert(m.peer.clone(), m.friendly_name.clone());
        }
        self.participants = members
            .iter()
            .filter(|m| m.present && !m.revoked)
            .map(|m| m.friendly_name.clone())
            .collect();
        Ok(())
    }

    fn name(&self, peer: &PeerName) -> String {
        self.names
            .get(peer)
            .cloned()
            .unwrap_or_else(|| peer.to_string())
    }

    /// The messages still alive, oldest first.
    pub(crate) async fn history(&mut self) -> Result<Vec<Line>> {
        let mut records = self.group.records(chat_type()).await?;
        records.sort_by_key(|r| r.created);
        self.shown = records.iter().map(|r| r.id).collect();
        Ok(records.iter().map(|r| self.message(r)).collect())
    }

    fn message(&self, r: &Record) -> Line {
        Line::Message {
            time: clock(r.created),
            from: self.name(&r.creator),
            text: String::from_utf8_lossy(&r.payload).into_owned(),
        }
    }

    /// What an event shows, if anything (and keeps the participants current).
    pub(crate) async fn on_event(&mut self, e: GroupEvent) -> Option<Line> {
        match e {
            GroupEvent::RecordChanged {
                change: ChangeKind::Added,
                record,
            } if record.record_type == chat_type() => {
                if self.shown.remove(&record.id) {
                    // Already shown with the history.
                    return None;
                }
                if !self.names.contains_key(&record.creator) {
                    let _ = self.refresh_members().await;
                }
                Some(self.message(&record))
            }
            GroupEvent::IncomingData {
                peer,
                data_type,
                data,
                ..
            } if data_type == whisper_type() => {
                if !self.names.contains_key(&peer) {
                    let _ = self.refresh_members().await;
                }
                Some(Line::Whisper {
                    time: clock(peergroup::Timestamp::now()),
                    from: self.name(&peer),
                    to: self.me.clone(),
                    text: String::from_utf8_lossy(&data).into_owned(),
                    incoming: true,
                })
            }
            GroupEvent::MemberChanged { peer, change } => {
                let _ = self.refresh_members().await;
                if peer == self.me_peer {
                    // Our own joining and presence are no news to us.
                    return None;
                }
                let what = match change {
                    MemberChange::Connected => "is here",
                    MemberChange::Disconnected => "left the chat",
                    MemberChange::Joined => "joined the group",
                    MemberChange::Left => "is no longer a member",
                    MemberChange::Updated => return None,
                };
                Some(Line::Notice(format!("{} {what}", self.name(&peer))))
            }
            GroupEvent::AuthenticationFailed { addr, reason } => Some(Line::Notice(format!(
                "refused {}: {reason}",
                addr.map(|a| a.to_string()).unwrap_or_default()
            ))),
            GroupEvent::Lagged { missed } => Some(Line::Notice(format!("missed {missed} events"))),
            _ => None,
        }
    }

    /// Handles one line typed by the user. Returns what to show, and whether to quit.
    pub(crate) async fn input(&mut self, text: &str) -> (Vec<Line>, bool) {
        let text = text.trim();
        if text.is_empty() {
            return (Vec::new(), false);
        }
        let result: Result<(Vec<Line>, bool)> = async {
            if text == "/w" || text == "/whisper" {
                bail!("usage: /w <name> <text>");
            }
            if let Some(rest) = text
                .strip_prefix("/w ")
                .or_else(|| text.strip_prefix("/whisper "))
            {
                let (name, msg) = rest
                    .trim_start()
                    .split_once(' ')
                    .filter(|(_, msg)| !msg.trim().is_empty())
                    .ok_or_else(|| anyhow::anyhow!("usage: /w <name> <text>"))?;
                return Ok((vec![self.whisper(name, msg).await?], false));
            }
            if let Some(rest) = text.strip_prefix("/invite ") {
                return Ok((vec![self.invite(rest).await?], false));
            }
            match text {
                "/quit" | "/exit" => return Ok((Vec::new(), true)),
                "/members" => {
                    self.refresh_members().await?;
                    return Ok((
                        vec![Line::Notice(format!(
                            "members present: {}",
                            self.participants.join(", ")
                        ))],
                        false,
                    ));
                }
                t if t.starts_with('/') => {
                    bail!("unknown command {t:?} (try /w, /invite, /members, /quit)")
                }
                _ => {}
            }
            let attrs = format!(
                "<attributes><attribute name=\"From\" type=\"string\">{}</attribute></attributes>",
                xml_escape(&self.me)
            );
            self.group
                .add_record(chat_type(), &attrs, text.as_bytes().to_vec(), self.lifetime)
                .await?;
            // Our own message comes back as a record event and is shown then.
            Ok((Vec::new(), false))
        }
        .await;
        result.unwrap_or_else(|e| {
            (
                vec![Line::Notice(format!("error: {}", util::one_line(&e)))],
                false,
            )
        })
    }

    async fn whisper(&mut self, name: &str, text: &str) -> Result<Line> {
        self.refresh_members().await?;
        let members = self.group.members(true).await?;
        let target = whisper_target(&members, name)?;
        let existing = self
            .group
            .direct_connections()
            .into_iter()
            .find(|c| c.peer == target)
            .map(|c| c.id);
        let id = match existing {
            Some(id) => id,
            None => self.group.open_direct_wait(&target).await?,
        };
        self.group
            .send_data(id, whisper_type(), Bytes::from(text.as_bytes().to_vec()))
            .await?;
        Ok(Line::Whisper {
            time: clock(peergroup::Timestamp::now()),
            from: self.me.clone(),
            to: self.name(&target),
            text: text.to_owned(),
            incoming: false,
        })
    }

    async fn invite(&self, rest: &str) -> Result<Line> {
        let mut parts = rest.split_whitespace();
        let file = PathBuf::from(
            parts
                .next()
                .ok_or_else(|| anyhow::anyhow!("usage: /invite <identity-info-file> [role]"))?,
        );
        let role: Role = match parts.next() {
            Some(r) => r.parse()?,
            None => Role::Member,
        };
        let info = input::read_text(&file, input::IDENTITY_INFO)?;
        let invitation = match self
            .group
            .create_invitation(&info, role, Duration::from_secs(30 * 86_400))
            .await
        {
            Ok(xml) => xml,
            Err(e) if e.kind() == peergroup::ErrorKind::NotAuthorized => bail!(
                "only admins and members with the invite role can invite to {role} (the group \
                 said: {e})"
            ),
            Err(e) => return Err(e.into()),
        };
        let parsed = peergroup::IdentityInfo::parse(&info)?;
        // Beside the identity info it answers, by its full name: the chat's working directory
        // is nothing the user chose.
        let dir = std::path::absolute(&file)
            .ok()
            .and_then(|f| f.parent().map(PathBuf::from))
            .unwrap_or_default();
        let out = dir.join(format!(
            "{}.invitation.xml",
            sanitize(parsed.friendly_name())
        ));
        std::fs::write(&out, invitation).with_context(|| format!("writing {}", out.display()))?;
        Ok(Line::Notice(format!(
            "invitation for {} written to {}",
            parsed.friendly_name(),
            out.display()
        )))
    }

    pub(crate) async fn close(self) -> Result<()> {
        self.group.close().await?;
        self.infra.shutdown().await;
        Ok(())
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) async fn run(home: &Home, a: ChatArgs, verbose: u8) -> Result<()> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && !a.lines;
    if terminal {
        // The screen belongs to the UI: logs go to a file in the data directory.
        // Bounded: other members can cause warnings (see `logfile`).
        let log = home.dir.join("chat.log");
        if let Ok(file) = crate::logfile::BoundedLog::open(&log) {
            let level = ["warn", "info", "debug", "trace"][usize::from(verbose.min(3))];
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                // Inert like every log: someone will `cat` it to a terminal.
                .with_writer(std::sync::Mutex::new(crate::terminal::InertWriter(file)))
                .with_ansi(false)
                .try_init();
        }
    } else {
        util::init_tracing(verbose);
    }
    let chat = Chat::start(home, &a).await?;
    let events = chat.group.events(EventFilter::all());
    if terminal {
        tui::run(chat, events).await
    } else {
        line::run(chat, events).await
    }
}

#[cfg(test)]
mod tests {
    use peergroup::{Member, PeerName, Roles};

    use super::whisper_target;

    fn member(i: u8, name: &str, local: bool) -> Member {
        let peer: PeerName = format!("{}.{}", format!("{i:02x}").repeat(20), "test")
            .parse()
            .unwrap();
        Member {
            peer,
            friendly_name: name.into(),
            roles: Roles::default(),
            present: true,
            nodes: Vec::new(),
            attributes: String::new(),
            local,
            revoked: false,
        }
    }

    fn err(members: &[Member], name: &str) -> String {
        whisper_target(members, name).unwrap_err().to_string()
    }

    #[test]
    fn a_whisper_goes_to_the_one_meant_or_nowhere() {
        let all = [
            member(1, "Carol", true),
            member(2, "Alfred", false),
            member(3, "Alice", false),
        ];
        // An exact name wins over a longer one it begins.
        assert_eq!(whisper_target(&all, "alice").unwrap(), all[2].peer);
        assert_eq!(whisper_target(&all, "Alf").unwrap(), all[1].peer);
        // A prefix of two names goes to neither.
        let e = err(&all, "Al");
        assert!(e.contains("Alfred") && e.contains("Alice"), "{e}");
        assert!(err(&all, "Carol").contains("is you"));
        assert!(err(&all, "Zed").contains("nobody called"));
        // Two of one name: by peer name.
        let twins = [member(4, "Bob", false), member(5, "Bob", false)];
        assert!(err(&twins, "Bob").contains(&twins[0].peer.to_string()));
        let by_peer = twins[1].peer.to_string();
        assert_eq!(whisper_target(&twins, &by_peer).unwrap(), twins[1].peer);
    }
}
