//! Attack 10: Terminal escapes: a member whose friendly name holds a bidi override publishes chat
//! records full of what a terminal obeys (ESC sequences that set the title or clear the
//! screen, CR/LF that invent a line, BEL, U+202E, U+2028, a C1 CSI). Neither the node's `run`
//! output (stdout and stderr) nor a line-mode `peergroup chat` of another member may contain
//! any of them raw; the chat must show the messages (made visible), and no printed line may
//! start with the text a raw line break would have put at the start of one.
//! (ESC, CR, LF and BEL cannot even enter a friendly name: identities refuse control
//! characters; that refusal is checked too.)

use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use peergroup_identity::{Classifier, Identity, Timestamp};
use peergroup_membership::MeshMessage;
use peergroup_record_db::RecordType;
use peergroup_record_db::reserved::MembershipPayload;

use super::{Ctx, Verdict};
use crate::lab::GROUP;
use crate::mesh::encode;
use crate::node::{NodeProc, SharedOutput, kill_child, lock, register_child, spawn_reader};
use crate::waits::{NODE_STOP_WAIT, STORE_WAIT};

/// The chat's record type (`peergroup-cli`'s `chat::CHAT_TYPE`).
const CHAT_TYPE: &str = "4c8e2f10-7d3b-4a61-9b5e-2a6c0d9e1f37";
/// Text a raw line break in a message would put at the start of a printed line.
const INJECTED: &str = "INJECTED";
/// In every hostile message, to find it in the output.
const TAG: &str = "HOSTILE-CHAT";

/// The messages: each with a raw hazard a terminal would obey.
fn messages() -> Vec<String> {
    [
        "\u{1b}]0;pwned-title\u{7} sets the window title",
        "\u{1b}[2J\u{1b}[H clears the screen",
        "fake end\r\nINJECTED Alice: please send me your password",
        "bells \u{7}\u{7}\u{7}",
        "\u{202e}txt.exe reversed",
        "\u{2028}INJECTED after a line separator",
        "\u{9b}31m a C1 control sequence",
        "tab\tand backspace\u{8} and delete\u{7f}",
    ]
    .iter()
    .enumerate()
    .map(|(i, m)| format!("{TAG}-{i} {m}"))
    .collect()
}

/// A line-mode `peergroup chat`, killed when dropped.
struct ChatProc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: SharedOutput,
    stderr: SharedOutput,
}

impl ChatProc {
    fn start(ctx: &Ctx<'_>, home: &std::path::Path, node: std::net::SocketAddr) -> Result<Self> {
        let mut child = Command::new(&ctx.lab.exe)
            .arg("--home")
            .arg(home)
            .args(["chat", "--group", GROUP, "--no-discovery", "--lines"])
            .arg("--connect")
            .arg(node.to_string())
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting peergroup chat")?;
        register_child(child.id());
        let markers = [INJECTED.to_owned(), TAG.to_owned(), "Mallory".to_owned()];
        let stdout = std::sync::Arc::new(std::sync::Mutex::new(crate::node::Output::watching(
            &markers,
        )));
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(crate::node::Output::watching(
            &markers,
        )));
        if let Some(s) = child.stdout.take() {
            spawn_reader(s, stdout.clone(), None, None);
        }
        if let Some(s) = child.stderr.take() {
            spawn_reader(s, stderr.clone(), None, None);
        }
        let stdin = child.stdin.take();
        Ok(ChatProc {
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    /// Closes its input (line mode leaves) and waits, then kills it.
    fn stop(&mut self) {
        drop(self.stdin.take());
        let started = Instant::now();
        while started.elapsed() < NODE_STOP_WAIT {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        kill_child(&mut self.child);
    }
}

impl Drop for ChatProc {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// Raw hazards and injected lines in one process's output; `what` names it.
fn inspect(what: &str, out: &SharedOutput, problems: &mut Vec<String>) -> (usize, usize) {
    let out = lock(out);
    if out.hazards.lines > 0 {
        problems.push(format!(
            "{what}: {} line(s) with raw control or format characters, e.g. {}",
            out.hazards.lines,
            out.hazards.example.clone().unwrap_or_default()
        ));
    }
    let (_, injected) = out.marker(INJECTED);
    if injected > 0 {
        problems.push(format!(
            "{what}: {injected} line(s) start with text a message put after a line break"
        ));
    }
    (out.lines, out.marker(TAG).0)
}

pub(crate) async fn run(ctx: &mut Ctx<'_>) -> Result<Verdict> {
    // Control characters cannot enter a friendly name.
    let refused = Identity::generate(
        "Mallory\u{1b}]0;x\u{7}\r\nroot",
        Classifier::new("mallory").map_err(|e| anyhow::anyhow!("{e}"))?,
        Timestamp::now(),
    );
    let mut problems = Vec::new();
    match refused {
        Err(e) => ctx.note(format!(
            "a friendly name with ESC, BEL, CR, LF is refused at identity creation: {e}"
        )),
        Ok(_) => problems.push(
            "an identity with ESC, BEL, CR and LF in its friendly name was created".to_owned(),
        ),
    }
    let attacker = ctx.attacker("mallory", "Mallory\u{202e}gnp.exe\u{2066}", None)?;
    let watcher = ctx.cli_member("watcher", "Watcher")?;
    let chat_type: RecordType = CHAT_TYPE
        .parse()
        .map_err(|e| anyhow::anyhow!("record type: {e}"))?;
    let markers = [INJECTED.to_owned(), CHAT_TYPE.to_owned()];
    let addr = ctx.start_node(&[], &markers)?;
    ctx.begin()?;
    let started = Instant::now();
    let mut chat = ChatProc::start(ctx, &watcher.home, addr)?;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let neighbor = attacker.neighbor(addr).await?;
    let (sender, mut receiver) = neighbor.conn.split();
    let drain = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
    // Its membership record (so every member lists its friendly name), then the messages.
    let mut membership = attacker
        .records(
            RecordType::MEMBERSHIP,
            Duration::from_secs(3600),
            "",
            [MembershipPayload::new(&attacker.chain).to_payload()],
        )?
        .pop()
        .context("no membership record signed")?;
    membership.id = MembershipPayload::record_id(attacker.peer(), attacker.chain.leaf().serial());
    let membership = attacker.resign(membership);
    let from = "<attributes><attribute name=\"From\" type=\"string\">Mallory\u{202e}gnp.exe</attribute></attributes>";
    let chats = attacker.records(
        chat_type,
        Duration::from_secs(3600),
        from,
        messages().into_iter().map(String::into_bytes),
    )?;
    let ids: Vec<String> = chats.iter().map(|r| r.id.to_string()).collect();
    for r in std::iter::once(membership).chain(chats) {
        sender
            .send(encode(&MeshMessage::Flood(r)))
            .await
            .context("the node closed the link while the messages were sent")?;
    }
    ctx.member_sync().await;
    // The node stores them; the chat shows them.
    let wait = Instant::now();
    loop {
        let node = ctx.node()?;
        let mut stored = 0;
        for id in &ids {
            if node.has(id)? {
                stored += 1;
            }
        }
        let shown = lock(&chat.stdout).marker(TAG).0;
        if (stored == ids.len() && shown >= ids.len()) || wait.elapsed() > STORE_WAIT {
            ctx.note(format!(
                "{stored}/{} hostile chat records stored at the node; the chat showed {shown} \
                 line(s) of them",
                ids.len()
            ));
            if stored < ids.len() {
                problems.push(format!(
                    "only {stored}/{} chat records stored at the node: the output check is \
                     incomplete",
                    ids.len()
                ));
            }
            if shown == 0 {
                problems
                    .push("the chat showed none of the messages: its output proves nothing".into());
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if let Some(left) = ctx.window().checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    sender.close("done");
    drain.abort();
    chat.stop();

    let node: &NodeProc = ctx.node()?;
    let (out, err) = (node.stdout.clone(), node.stderr.clone());
    let (node_lines, _) = inspect("the node's stdout", &out, &mut problems);
    inspect("the node's stderr", &err, &mut problems);
    let (chat_lines, _) = inspect("the chat's stdout", &chat.stdout, &mut problems);
    inspect("the chat's stderr", &chat.stderr, &mut problems);
    let record_lines = lock(&out).marker(CHAT_TYPE).0;
    let named = lock(&chat.stdout).marker("Mallory").0;
    ctx.note(format!(
        "node stdout: {node_lines} lines ({record_lines} about chat records); chat stdout: \
         {chat_lines} lines ({named} naming Mallory); scanned for C0/C1 controls, DEL, bidi \
         controls, line separators, zero-width characters"
    ));
    if record_lines == 0 {
        problems.push("the node's output never mentioned the chat records".into());
    }
    if let Some(example) = lock(&chat.stdout)
        .tail
        .iter()
        .find(|l| l.contains(&format!("{TAG}-0")))
    {
        ctx.note(format!("the chat showed: {example}"));
    }
    Ok(Verdict::new(
        problems,
        "no raw control or format character reached either terminal".into(),
    ))
}
