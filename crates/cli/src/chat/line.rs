//! Line mode: lines read are sent, messages and events are printed one per line (each one
//! line of inert text: see [`Line::render`]). A line read longer than
//! [`input::INPUT_LINE_BYTES`] is not sent.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Result;
use peergroup::EventStream;

use super::{Chat, Line};
use crate::input::{self, InputLine, LineReader};

fn print(line: &Line) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", line.render());
    let _ = out.flush();
}

pub(crate) async fn run(mut chat: Chat, mut events: EventStream) -> Result<()> {
    print(&Line::Notice(format!(
        "{} in {} ({})",
        chat.me,
        chat.group.peer_name(),
        listen_line(&chat)
    )));
    // Messages typed before the group is synchronised would be refused: wait a little.
    if chat
        .group
        .wait_ready(Duration::from_secs(30))
        .await
        .is_err()
    {
        print(&Line::Notice(
            "no member reachable yet; messages will fail until one is".into(),
        ));
    }
    // Who is who and who is here, now that we are in sync (at start we knew only ourselves).
    chat.refresh_members().await?;
    for line in chat.history().await? {
        print(&line);
    }
    print(&Line::Notice(format!(
        "present: {}",
        chat.participants.join(", ")
    )));
    let mut lines = LineReader::new(tokio::io::BufReader::new(tokio::io::stdin()));
    let stop = crate::stop::requested();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            client = chat.control.next() => if let Some(c) = client { chat.control.serve(c).await },
            e = events.next() => {
                let Some(e) = e else { break };
                if let Some(line) = chat.on_event(e).await {
                    print(&line);
                }
            }
            input = lines.next_line() => match input {
                Ok(Some(InputLine::TooLong)) => print(&Line::Notice(format!(
                    "error: a line longer than {} was not sent",
                    input::size(input::INPUT_LINE_BYTES as u64)
                ))),
                Ok(Some(InputLine::Text(text))) => {
                    let (out, quit) = chat.input(&text).await;
                    for l in &out {
                        print(l);
                    }
                    if quit {
                        break;
                    }
                }
                // End of input: a script that closes its input is done.
                _ => break,
            },
        }
    }
    chat.close().await
}

fn listen_line(chat: &Chat) -> String {
    let addrs: Vec<String> = chat
        .infra
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    format!("listening on {}", addrs.join(" "))
}
