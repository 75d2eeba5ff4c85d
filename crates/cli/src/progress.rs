//! Progress display on standard error for long work (indicatif draws nothing when standard
//! error is not a terminal, so scripts see clean output).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use peergroup::Group;

use crate::terminal::inert;

/// Syncs expecting fewer records than this finish too fast to be worth a bar.
const SHOW_FROM: u64 = 1_000;

/// A spinner with a message and the time spent, for work of unknown length. The message
/// (which may name a file) is made [`inert`].
pub(crate) fn spinner(message: &str) -> ProgressBar {
    if crate::control::serving() {
        // The terminal is the running node's, not the client's.
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(inert(message).into_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Shows a bar while this member syncs a large difference with its neighbors (records
/// received out of those expected), until the group closes.
pub(crate) fn watch_sync(group: Group) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut bar: Option<ProgressBar> = None;
        loop {
            let Ok(p) = group.sync_progress().await else {
                break;
            };
            match (&bar, p.running > 0 && p.expected >= SHOW_FROM) {
                (None, true) => {
                    let b = ProgressBar::new(p.expected);
                    b.set_style(
                        ProgressStyle::with_template(
                            "syncing {bar:30} {pos}/{len} records ({per_sec}, {eta} left)",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar = Some(b);
                }
                (Some(b), false) => {
                    b.finish_and_clear();
                    bar = None;
                }
                _ => {}
            }
            if let Some(b) = &bar {
                b.set_length(p.expected);
                b.set_position(p.received);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    })
}
