//! What a group buffers for its event streams is bounded, whatever the members do: direct
//! data waits for a slow reader (the sending member's `send_data` waits) and never piles up;
//! group events past the ring's bounds are dropped, oldest first, and a lagging stream is told
//! exactly how many of its events it missed; direct connections per member are capped.

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::Bytes;
use peergroup::{
    ConnectionChange, DataType, ErrorKind, EventFilter, EventKind, EventStream, GroupEvent,
    NewRecord, Timestamp,
};

use crate::support::*;

/// A send that makes no progress for this long, through at least [`STALL_LOOKS`] looks, is
/// waiting for the receiver (a send merely slowed by load completes well within it).
const STALL: Duration = Duration::from_secs(2);
/// Looks 50 ms apart a stall needs on top of [`STALL`], so that a process paused as a whole
/// does not pass for a stall.
const STALL_LOOKS: u32 = 20;
/// Messages Bob may send into a stream that is not read before one must wait: the bounds on
/// the way (the stream's queue, the direct connections' queue, the transport's queues, the
/// sockets) hold a few dozen of them; without backpressure he would send them all.
const MAX_UNREAD_MESSAGES: usize = 300;
/// The size of each of them.
const MESSAGE: usize = 1024 * 1024;

fn file_chunk() -> DataType {
    "{0c9a8b7d-6e5f-4a3b-8c2d-1e0f9a8b7c6d}".parse().unwrap()
}

/// Waits for `fut` unless it stalls ([`STALL`], [`STALL_LOOKS`]): `None` then.
async fn unless_stalled<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    let started = Instant::now();
    let mut looks = 0;
    loop {
        if let Ok(out) = tokio::time::timeout(Duration::from_millis(50), &mut *fut).await {
            return Some(out);
        }
        looks += 1;
        if looks >= STALL_LOOKS && started.elapsed() >= STALL {
            return None;
        }
    }
}

/// The resident set of this process, when the system says (Linux).
fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_is_not_read_slows_direct_data_down() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let alice = &net.peers[0];
        // Alice has a stream of everything she does not read for now, and one of records
        // only she never reads: the second must not hold anything up.
        let mut sleepy = a.events(EventFilter::all());
        let records_only = a.events(EventFilter::kinds([EventKind::RecordChanged]));
        let at_bob = b.open_direct_wait(&alice.id).await.unwrap();
        let before = rss();

        // Bob sends 1 MiB messages until one waits.
        let mut sent = 0usize;
        let mut pending = None;
        while sent < MAX_UNREAD_MESSAGES {
            let mut m = vec![0u8; MESSAGE];
            m[..4].copy_from_slice(&(sent as u32).to_be_bytes());
            let mut send = Box::pin(b.send_data(at_bob, file_chunk(), Bytes::from(m)));
            match unless_stalled(&mut send).await {
                Some(r) => {
                    r.unwrap();
                    sent += 1;
                }
                None => {
                    pending = Some(send);
                    break;
                }
            }
        }
        let Some(pending) = pending else {
            panic!(
                "Bob sent {sent} messages of {MESSAGE} bytes into a stream nobody reads and \
                 none waited"
            );
        };
        let queued = sleepy.queued_direct_bytes();
        let buffered = a.buffered_event_bytes();
        // For the record only: the allocator keeps what it freed, so the process's size
        // says little about what is held.
        let grown = before.zip(rss()).map(|(b, n)| n.saturating_sub(b));
        eprintln!(
            "backpressure: Bob's send #{sent} waits; Alice's stream holds {queued} bytes \
             (bound {}), her group buffers {buffered} bytes; the process grew by {grown:?} \
             bytes",
            EventStream::DIRECT_BYTES
        );
        assert!(
            queued <= EventStream::DIRECT_BYTES,
            "the stream holds {queued} bytes, over its bound of {}",
            EventStream::DIRECT_BYTES
        );
        assert!(
            buffered <= EventStream::DIRECT_BYTES + EventStream::BUFFER_BYTES,
            "the group buffers {buffered} bytes for its streams"
        );

        // Alice reads: everything arrives in order, and the waiting send completes.
        let reader = async {
            let mut next = 0u32;
            while next as usize <= sent {
                let data = expect(&mut sleepy, &format!("message {next}"), |e| match e {
                    GroupEvent::IncomingData { data, .. } => Some(data.clone()),
                    _ => None,
                })
                .await;
                assert_eq!(data.len(), MESSAGE);
                assert_eq!(data[..4], next.to_be_bytes(), "message {next} out of order");
                next += 1;
            }
        };
        let (done, ()) = tokio::join!(
            async {
                tokio::time::timeout(WAIT, pending)
                    .await
                    .unwrap_or_else(|_| {
                        panic!("waited {WAIT:?} for Bob's waiting send once Alice reads")
                    })
            },
            reader
        );
        done.unwrap();
        // A stream dropped unread releases what it held at once.
        drop(sleepy);
        drop(records_only);
        assert_eq!(a.buffered_event_bytes(), 0);
    })
    .await;
}

/// Publishes `n` notes of `size` bytes at Alice, in batches of `batch`.
async fn publish_notes(group: &peergroup::Group, n: usize, size: usize, batch: usize) {
    let expires = Timestamp::now().saturating_add(HOUR);
    let mut done = 0;
    while done < n {
        let records: Vec<NewRecord> = (done..n.min(done + batch))
            .map(|i| NewRecord {
                record_type: note_type(),
                attributes: String::new(),
                payload: {
                    let mut p = vec![0u8; size.max(4)];
                    p[..4].copy_from_slice(&(i as u32).to_be_bytes());
                    p
                },
                expires,
                autorefresh: false,
            })
            .collect();
        done += group.add_records(records).await.unwrap().len();
    }
}

/// The notes filter.
fn notes() -> EventFilter {
    EventFilter::kinds([EventKind::RecordChanged]).record_types([note_type()])
}

/// Publishes `n` notes as [`publish_notes`] does and returns once they have all reached the
/// group's streams (a stream that keeps up has accounted for them): what it read and missed.
async fn publish_and_follow(
    group: &peergroup::Group,
    n: usize,
    size: usize,
    batch: usize,
) -> (u64, usize) {
    let mut awake = group.events(notes());
    let follower = tokio::spawn(async move { account_for(&mut awake, n).await });
    publish_notes(group, n, size, batch).await;
    let (missed, read) = tokio::time::timeout(WAIT, follower)
        .await
        .unwrap_or_else(|_| panic!("waited {WAIT:?} for the stream that keeps up"))
        .unwrap();
    (missed, read.len())
}

/// Reads `stream` until it has accounted for `n` notes, read or missed: returns how many
/// were missed (from the one `Lagged`) and the numbers of those read.
async fn account_for(stream: &mut EventStream, n: usize) -> (u64, Vec<u32>) {
    let mut missed = 0u64;
    let mut read = Vec::new();
    while missed as usize + read.len() < n {
        let what = format!(
            "a note or a lag notice ({} read and {missed} missed of {n} so far)",
            read.len()
        );
        match expect(stream, &what, |e| Some(e.clone())).await {
            GroupEvent::Lagged { missed: m } => missed += m,
            GroupEvent::RecordChanged { record, .. } => {
                read.push(u32::from_be_bytes(record.payload[..4].try_into().unwrap()));
            }
            other => panic!("only notes pass the filter: {}", summary(&other)),
        }
    }
    (missed, read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_stream_is_told_how_many_events_it_missed() {
    bounded(async {
        let (_alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let mut sleepy = a.events(notes());
        // More notes than the ring keeps, small ones: the count bound.
        let n = EventStream::BUFFER_EVENTS + 904;
        let (awake_missed, awake_read) = publish_and_follow(&a, n, 16, 500).await;
        assert!(a.buffered_event_bytes() <= EventStream::BUFFER_BYTES);
        let (missed, read) = account_for(&mut sleepy, n).await;
        eprintln!(
            "records: {n} notes; the stream that keeps up read {awake_read} and missed \
             {awake_missed}, the one that waited read {} and missed {missed}",
            read.len()
        );
        assert_eq!(
            missed as usize,
            n - EventStream::BUFFER_EVENTS,
            "missed {missed} and read {} of {n}",
            read.len()
        );
        // It goes on with the newest, in order.
        let expected: Vec<u32> = (n - EventStream::BUFFER_EVENTS..n)
            .map(|i| i as u32)
            .collect();
        assert!(
            read == expected,
            "read notes {:?}…",
            &read[..read.len().min(5)]
        );
        expect_none(&mut sleepy, "another event", |_| true).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_records_lag_a_stream_by_bytes() {
    bounded(async {
        let (_alice, a) = creator("Alice", &peergroup::GroupSpec::new("Friends")).await;
        let mut sleepy = a.events(notes());
        // 40 notes of ~1 MB: far fewer than the ring's count, far more than its bytes.
        let n = 40;
        let size = 1_000_000;
        publish_and_follow(&a, n, size, 10).await;
        let buffered = a.buffered_event_bytes();
        assert!(
            buffered <= EventStream::BUFFER_BYTES,
            "{buffered} bytes buffered for a stream that does not read, over the bound of {}",
            EventStream::BUFFER_BYTES
        );
        let (missed, read) = account_for(&mut sleepy, n).await;
        assert!(missed > 0, "40 MB of records and no lag");
        assert!(
            read.len() * size <= EventStream::BUFFER_BYTES,
            "{} notes of {size} bytes were kept",
            read.len()
        );
        let expected: Vec<u32> = (n - read.len()..n).map(|i| i as u32).collect();
        assert_eq!(read, expected, "the newest are kept, in order");
        eprintln!(
            "records: {n} of {size} bytes, {buffered} bytes buffered; missed {missed}, read {}",
            read.len()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_connections_to_one_member_are_capped() {
    bounded(async {
        let net = Net::members(&["Alice", "Bob"]).await;
        let (a, b) = (&net.groups[0], &net.groups[1]);
        let bob = &net.peers[1];
        let mut ups = b.events(EventFilter::kinds([EventKind::DirectConnection]));
        let cap = peergroup_direct_conn::DEFAULT_MAX_PER_MEMBER;
        for _ in 0..cap {
            a.open_direct_wait(&bob.id).await.unwrap();
        }
        let err = a
            .open_direct_wait(&bob.id)
            .await
            .expect_err("a direct connection over the per-member cap");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert!(
            err.to_string().contains("too many direct connections"),
            "{err}"
        );
        assert_eq!(a.direct_connections().len(), cap);
        // Bob saw exactly the ones that were allowed.
        for i in 0..cap {
            expect(&mut ups, &format!("Bob's connection {i}"), |e| match e {
                GroupEvent::DirectConnection {
                    change: ConnectionChange::Connected,
                    ..
                } => Some(()),
                _ => None,
            })
            .await;
        }
        expect_none(&mut ups, "a connection over the cap", |_| true).await;
        assert_eq!(b.direct_connections().len(), cap);
    })
    .await;
}
