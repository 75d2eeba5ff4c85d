//! How a running node is asked to stop: Ctrl-C (SIGINT) or, on Unix, SIGTERM (what `kill`,
//! systemd and container runtimes send). Both end it the same clean way — presence withdrawn,
//! a goodbye to every neighbor, the database closed — so the other members see it leave at
//! once instead of when its presence expires.
//!
//! Make the future once, before the loop that waits on it: a signal that arrives between two
//! waits is then still seen (a listener made anew in each turn of the loop could miss it, and
//! once a listener exists the signal no longer ends the process by itself).

/// Completes when the process is asked to stop.
pub(crate) async fn requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops cleanly");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
