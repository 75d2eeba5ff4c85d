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

fn draw(frame: &mut ratatui::Frame<'_>, chat: &Chat, screen: &Screen, title: &str) {
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
                .title(format!(" {title} ")),
        ),
        top[0],
    );
    let people: Vec<ListItem<'_>> = chat
        .participants
        .iter()
        .map(|p| ListItem::new(p.clone()))
        .collect();
    frame.render_widget(
        List::new(people).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" Here ({}) ", chat.participants.len())),
        ),
        top[1],
    );
    frame.render_widget(
        Paragraph::new(format!("> {}", screen.input)).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} ", chat.me)),
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
    let mut screen = Screen {
        lines: chat.history().await?,
        input: String::new(),
        status: String::new(),
    };
    let mut terminal = ratatui::init();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let result: Result<()> = async {
        loop {
            let neighbors = chat.group.neighbor_connections().await.map(|n| n.len()).unwrap_or(0);
            let sync = chat.group.sync_progress().await.unwrap_or_default();
            screen.status = status_text(chat.group.status(), neighbors, sync);
            terminal.draw(|f| draw(f, &chat, &screen, &title))?;
            tokio::select! {
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
