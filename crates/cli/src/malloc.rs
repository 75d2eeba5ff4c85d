//! The C allocator's settings for a node process.
//!
//! glibc's `malloc` gives a thread that finds the arenas busy an arena of its own, up to eight
//! per core, and keeps what is freed in each. A node's large buffers (frames of up to the
//! mesh's limit, records of up to the group's maximum) are allocated on one thread and freed
//! on another, and `block_in_place` moves the runtime's workers across the blocking pool's
//! threads: under four neighbors pushing frames of the mesh's limit (the hostile suite's
//! oversized-frames attack, debug build) the node's RSS grew by +72 MiB, of which ~30 MiB
//! was live, the rest kept in a dozen arenas; with two arenas it grew by +37 MiB (and by
//! +37 MiB, not +56, under the deferred-record flood).
//!
//! The arenas can only be set before the first allocation, by the `GLIBC_TUNABLES`
//! environment variable, so the process starts itself again, once, with
//! `glibc.malloc.arena_max=2` (same pid, arguments and standard streams). It does not when
//! `GLIBC_TUNABLES` is already set: the user's choice stands. Other platforms and C
//! libraries are left as they are.

/// The tunables a node runs with.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) const TUNABLES: &str = "glibc.malloc.arena_max=2";

/// Starts this process again with [`TUNABLES`] unless `GLIBC_TUNABLES` is set; returns only
/// when it did not (set already, or the executable could not be run: the process goes on
/// with the defaults).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn tune() {
    use std::os::unix::process::CommandExt as _;

    if std::env::var_os("GLIBC_TUNABLES").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        command.arg0(arg0);
    }
    // `exec` returns only on failure; then this process goes on as it is.
    let _ = command.args(args).env("GLIBC_TUNABLES", TUNABLES).exec();
}

/// Elsewhere the allocator is left as it is.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune() {}
