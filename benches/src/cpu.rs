//! CPU time (Linux): a whole process's from `/proc`, the threads it has ended included, and
//! the calling thread's from its CPU-time clock.

use std::time::Duration;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture;
/// `getconf CLK_TCK` prints it).
const TICKS_PER_SEC: u64 = 100;

/// CPU time (user and system) process `pid` has used so far, its ended threads included, to
/// the tick (10 ms): fields 14 and 15 of `/proc/<pid>/stat`.
pub fn process(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // The name (field 2) is in parentheses and may hold spaces: count from the last ')', where
    // field 3 starts; utime is field 14, stime field 15.
    let (_, after) = stat
        .rsplit_once(')')
        .expect("a process name in /proc/<pid>/stat");
    let fields: Vec<u64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .map(|f| f.parse().expect("a number of ticks"))
        .collect();
    assert_eq!(fields.len(), 2, "utime and stime in /proc/<pid>/stat");
    Duration::from_millis((fields[0] + fields[1]) * 1000 / TICKS_PER_SEC)
}

/// CPU time the calling thread has used so far, to the nanosecond:
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which brings the running thread's count up to
/// date (`/proc/thread-self/schedstat` may lag by a scheduler tick, a few milliseconds).
pub fn thread() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let secs = u64::try_from(t.tv_sec).expect("a CPU time after zero");
    let nanos = u32::try_from(t.tv_nsec).expect("nanoseconds under a second");
    Duration::new(secs, nanos)
}
