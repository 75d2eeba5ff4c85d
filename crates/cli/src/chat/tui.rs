//! The terminal UI: messages, participants, an input line and a status line.
//!
//! ```text
//! ┌ Friends ─────────────────────────────┐┌ Here (2) ─┐
//! │[10:02:11] Alice: hello                ││Alice      │
//! │[10:02:15] (whisper from Bob) psst     ││Bob        │
//! └───────────────────────────────────────┘└───────────┘
//! ┌ Alice ────────────────────────────────────────────┐
//! │> typing…                                           │
//! └────────────────────────────────────────────────────┘
//!  synchronized · 2 neighbors · /w name text · /invite file · /members · /quit
//! ```
//!
//! Every text drawn is made [`inert`] first: the messages ([`Line::render`]), the group's
//! name in the title, the participants' names, the own name and what is typed. ratatui drops
//! control characters and zero-width clusters on its own, but passes a format character on
//! when it joins a visible one (a ZWJ, tag characters), and dropping hides what a hostile
//! member sent; escaped, it shows.

use std::time::Duration;

use anyhow::Result;
use crossterm::event::{Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use peergroup::{EventStream, GroupEvent};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line as TextLine;
use ratatui::widgets::{Block, Borders, List, ListItem, Paragraph, Wrap};
use tokio::sync::mpsc;

use super::{Chat, Line};
use crate::terminal::inert;

struct Screen {
    lines: Vec<Line>,
    input: String,
    status: String,
}

fn status_text(s: peergroup::Status, neighbors: usize, sync: peergroup::SyncProgress) -> String {
    let syncing;
    let state = if sync.running > 0 && sync.expected > 0 {
        syncing = format!("syncing {}/{} records", sync.received, sync.expected);
        syncing.as_str()
    } else if s.synchronized {
        "synchronized"
    } else if s.has_connections {
        "synchronizing"
    } else {
        "looking for members"
    };
    format!(
        " {state} · {neighbors} neighbor(s) · /w name text · /invite file [role] · /members · /quit"
    )
}

/// Who is drawn: this member's name and the participants'.
struct People<'a> {
    me: &'a str,
    participants: &'a [String],
}

fn draw(frame: &mut ratatui::Frame<'_>, people: &People<'_>, screen: &Screen, title: &str) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Min(3),
            Constraint::Length(3),
            Constraint::Length(1),
        ])
        .split(frame.area());
    let top = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Min(20), Constraint::Length(24)])
        .split(rows[0]);
    let height = top[0].height.saturating_sub(2) as usize;
    let shown: Vec<TextLine<'_>> = screen
        .lines
        .iter()
        .rev()
        .take(height.max(1))
        .rev()
        .map(|l| TextLine::from(l.render()))
        .collect();
    frame.render_widget(
        Paragraph::new(shown).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", inert(title))),
        ),
        top[0],
    );
    let here: Vec<ListItem<'_>> = people
        .participants
        .iter()
        .map(|p| ListItem::new(inert(p).into_owned()))
        .collect();
    frame.render_widget(
        List::new(here).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" Here ({}) ", people.participants.len())),
        ),
        top[1],
    );
    frame.render_widget(
        Paragraph::new(format!("> {}", inert(&screen.input))).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", inert(people.me))),
        ),
        rows[1],
    );
    frame.render_widget(
        Paragraph::new(screen.status.clone()).style(Style::default().add_modifier(Modifier::DIM)),
        rows[2],
    );
}

pub(crate) async fn run(mut chat: Chat, mut events: EventStream) -> Result<()> {
    let (keys_tx, mut keys) = mpsc::channel::<TermEvent>(64);
    std::thread::spawn(move || {
        while let Ok(e) = crossterm::event::read() {
            if keys_tx.blocking_send(e).is_err() {
                return;
            }
        }
    });
    let title = chat
        .group
        .properties()
        .await
        .map(|p| p.friendly_name)
        .unwrap_or_else(|_| chat.group.peer_name().to_string());
    chat.refresh_members().await?;
    let mut screen = Screen {
        lines: chat.history().await?,
        input: String::new(),
        status: String::new(),
    };
    let mut terminal = ratatui::init();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let stop = crate::stop::requested();
    tokio::pin!(stop);
    let result: Result<()> = async {
        loop {
            let neighbors = chat.group.neighbor_connections().await.map(|n| n.len()).unwrap_or(0);
            let sync = chat.group.sync_progress().await.unwrap_or_default();
            screen.status = status_text(chat.group.status(), neighbors, sync);
            let people = People {
                me: &chat.me,
                participants: &chat.participants,
            };
            terminal.draw(|f| draw(f, &people, &screen, &title))?;
            tokio::select! {
                () = &mut stop => return Ok(()),
                client = chat.control.next() => if let Some(c) = client { chat.control.serve(c).await },
                _ = tick.tick() => {}
                e = events.next() => {
                    let Some(e) = e else { return Ok(()) };
                    if let GroupEvent::StatusChanged(_) = e {
                        continue;
                    }
                    if let Some(line) = chat.on_event(e).await {
                        screen.lines.push(line);
                    }
                }
                key = keys.recv() => {
                    let Some(TermEvent::Key(k)) = key else { continue };
                    if k.kind != KeyEventKind::Press {
                        continue;
                    }
                    match k.code {
                        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
                        KeyCode::Char(c) => screen.input.push(c),
                        KeyCode::Backspace => {
                            screen.input.pop();
                        }
                        KeyCode::Esc => screen.input.clear(),
                        KeyCode::Enter => {
                            let text = std::mem::take(&mut screen.input);
                            let (out, quit) = chat.input(&text).await;
                            screen.lines.extend(out);
                            if quit {
                                return Ok(());
                            }
                        }
                        _ => {}
                    }
                }
            }
            if screen.lines.len() > 10_000 {
                screen.lines.drain(..5_000);
            }
        }
    }
    .await;
    ratatui::restore();
    chat.close().await?;
    result
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;

    /// What a hostile member controls, all drawn at once: nothing of it reaches a cell as a
    /// character a terminal acts on, and each shows escaped.
    #[test]
    fn hostile_text_is_drawn_inert() {
        let hostile = "\u{1b}]0;pwned\u{7}\u{1b}[2J\rAlice: fake\nline\u{202e}dcba\u{200b}\u{9b}H";
        let name = "Mal\u{202e}\u{200d}lory\u{1b}[5m";
        let screen = Screen {
            lines: vec![
                Line::Message {
                    time: "10:00:00".into(),
                    from: name.into(),
                    text: hostile.into(),
                },
                Line::Whisper {
                    time: "10:00:01".into(),
                    from: name.into(),
                    to: "me".into(),
                    text: hostile.into(),
                    incoming: true,
                },
                Line::Notice(format!("refused 10.0.0.1:3587: {hostile}")),
            ],
            input: "typed\u{1b}[A".into(),
            status: String::new(),
        };
        let participants = vec![name.to_owned(), "Bob".to_owned()];
        let people = People {
            me: "me\u{202e}",
            participants: &participants,
        };
        let mut terminal = Terminal::new(TestBackend::new(200, 12)).unwrap();
        terminal
            .draw(|f| draw(f, &people, &screen, "Friends\u{1b}]0;x\u{7}"))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let mut rows = Vec::new();
        for y in 0..buffer.area.height {
            let mut row = String::new();
            for x in 0..buffer.area.width {
                let symbol = buffer[(x, y)].symbol();
                assert!(
                    !symbol.chars().any(|c| c.is_control()
                        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}')),
                    "cell ({x}, {y}) holds {symbol:?}"
                );
                row.push_str(symbol);
            }
            rows.push(row);
        }
        let all = rows.join("\n");
        for shown in [
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J\\rAlice: fake\\nline\\u{202e}dcba\\u{200b}\\u{9b}H",
            "Mal\\u{202e}\\u{200d}lory\\u{1b}[5m",
            "Friends\\u{1b}]0;x\\u{7}",
            "typed\\u{1b}[A",
            "me\\u{202e}",
        ] {
            assert!(
                all.contains(shown),
                "{shown:?} not drawn; the screen:\n{all}"
            );
        }
        // Each message stays on its own row: nothing the sender wrote started a new one.
        let fake = rows.iter().filter(|r| r.contains("Alice: fake")).count();
        assert_eq!(fake, 3, "the screen:\n{all}");
    }
}
