//! The API's blocking work, off the async threads.

/// Runs `f` on tokio's blocking threads: the API's disk work (SQLite, identity files) and
/// password stretching, kept off the threads that run the groups.
pub(crate) async fn run<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(e) => Err(crate::Error::new(
            crate::ErrorKind::Io,
            format!("a blocking task of the API failed: {e}"),
        )),
    }
}
