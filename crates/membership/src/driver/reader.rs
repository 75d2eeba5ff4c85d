//! A connection's reader task: takes frames in bursts, checks the signatures of the flooded
//! records among them in one batch (and those of each sync message's records), and hands the
//! driver its inputs in order.
//!
//! Checking here, not in the driver, lets a receiving node check the signatures of one burst
//! while its driver (which validates and stores everything of the group in one task) stores
//! the previous one. Bursts are gathered for a moment while records stream in, because a
//! batch check costs less per signature the bigger the batch (ed25519-zebra, ZIP-215, with
//! 1 KiB records, `cargo bench -p peergroup-benches --bench record_db -- verify_batch`: ~12 µs
//! per signature in batches of 16, ~10.5 µs at 64 and 256, ~9.3 µs at 512, on a shared
//! machine), and the transport's incoming queue holds only 64 frames.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use peergroup_record_db::sync::SyncMessage;
use peergroup_record_db::{Record, SignerKeys};
use peergroup_transport::ConnectionReceiver;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::{Input, heavy};
use crate::core::{ConnId, PeerFault};
use crate::message::{MeshMessage, Push};

/// Most frames taken into one burst.
const READ_BURST: usize = 512;
/// A burst stops gathering once it holds this many bytes (512 frames of a group's largest
/// records would be hundreds of MiB).
pub(crate) const READ_BURST_BYTES: usize = 1024 * 1024;
/// Bytes one connection's reader may have handed the driver that it has not taken yet: the
/// reader waits beyond it (the transport's queue fills, the socket stops being read, TCP
/// pushes back on the sender).
pub const READ_BYTES_PER_CONN: usize = 2 * 1024 * 1024;
/// Bytes all of a group's readers together may have handed the driver and it has not taken.
pub const READ_BYTES_PER_NODE: usize = 64 * 1024 * 1024;
/// Inputs (messages, or runs of flooded records) one connection's reader may have handed the
/// driver that it has not taken yet: the group's task serves connections in the order their
/// inputs came, so this bounds how much of one neighbor's traffic (a flood of announcements,
/// say) can stand before another's.
pub const READ_INPUTS_PER_CONN: usize = 32;

/// Room for what readers hand the driver, in KiB: one budget per connection, one per node.
#[derive(Clone)]
pub(super) struct Budget {
    conn: Arc<Semaphore>,
    node: Arc<Semaphore>,
    inputs: Arc<Semaphore>,
}

/// Room taken by an input until the driver takes it.
pub(super) struct Held {
    _conn: Option<OwnedSemaphorePermit>,
    _node: Option<OwnedSemaphorePermit>,
    _input: Option<OwnedSemaphorePermit>,
}

impl Held {
    pub(super) fn none() -> Self {
        Held {
            _conn: None,
            _node: None,
            _input: None,
        }
    }
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024).max(1)
}

impl Budget {
    /// A connection's budget within the node's.
    pub(super) fn new(node: Arc<Semaphore>) -> Self {
        Budget {
            conn: Arc::new(Semaphore::new(kib(READ_BYTES_PER_CONN))),
            node,
            inputs: Arc::new(Semaphore::new(READ_INPUTS_PER_CONN)),
        }
    }

    /// The node's budget, shared by its readers.
    pub(super) fn node() -> Arc<Semaphore> {
        Arc::new(Semaphore::new(kib(READ_BYTES_PER_NODE)))
    }

    /// Waits for room for `bytes` (an input larger than a whole budget takes all of it).
    async fn take(&self, bytes: usize) -> Held {
        let input = self.inputs.clone().acquire_owned().await.ok();
        let take = |total: usize| kib(bytes).min(total) as u32;
        let conn = self
            .conn
            .clone()
            .acquire_many_owned(take(kib(READ_BYTES_PER_CONN)))
            .await
            .ok();
        let node = self
            .node
            .clone()
            .acquire_many_owned(take(kib(READ_BYTES_PER_NODE)))
            .await
            .ok();
        Held {
            _conn: conn,
            _node: node,
            _input: input,
        }
    }
}
/// A burst that finds at least this many frames already waiting is part of a stream: the
/// reader waits for more (see [`GATHER_GAP`], [`GATHER_MAX`]). Fewer go on at once, so a
/// lone message (a chat line, a presence refresh) is never held back.
const STREAM: usize = 32;
/// While gathering, the longest wait for the next frame (tokio's timers tick in
/// milliseconds: one tick would often end the wait at once).
const GATHER_GAP: Duration = Duration::from_millis(2);
/// While gathering, the longest a burst's first frame is held back.
const GATHER_MAX: Duration = Duration::from_millis(10);

/// Reads `receiver` until the connection closes, sending the driver its inputs.
pub(super) async fn run(
    id: ConnId,
    mut receiver: ConnectionReceiver,
    keys: SignerKeys,
    budget: Budget,
    max_flood: Arc<AtomicUsize>,
    tx: mpsc::Sender<Input>,
) {
    while let Some(first) = receiver.recv().await {
        let frames = gather(first, &mut receiver).await;
        let (inputs, violated) = to_inputs(id, frames, &keys, max_flood.load(Ordering::Relaxed));
        for (input, bytes) in inputs {
            let held = budget.take(bytes).await;
            if tx.send(input.holding(held)).await.is_err() {
                return;
            }
        }
        if violated {
            // The group's task closes the connection; nothing more is read from it.
            return;
        }
    }
    let _ = tx.send(Input::Closed(id)).await;
}

/// Where a reader takes frames from: a connection, or a channel in the tests.
trait Frames {
    /// The next frame if one is already here.
    fn try_next(&mut self) -> Option<Bytes>;
    /// Waits for the next frame; `None` once the connection is closed.
    async fn next(&mut self) -> Option<Bytes>;
}

impl Frames for ConnectionReceiver {
    fn try_next(&mut self) -> Option<Bytes> {
        self.try_recv()
    }

    async fn next(&mut self) -> Option<Bytes> {
        self.recv().await
    }
}

/// `first` and whatever else has arrived, up to [`READ_BURST`] frames or
/// [`READ_BURST_BYTES`]; when that is a stream, also what arrives while frames keep coming
/// (gaps under [`GATHER_GAP`], for at most [`GATHER_MAX`] after `first`).
async fn gather(first: Bytes, receiver: &mut impl Frames) -> Vec<Bytes> {
    let deadline = Instant::now() + GATHER_MAX;
    let mut frames = vec![first];
    drain(&mut frames, receiver);
    if frames.len() < STREAM {
        return frames;
    }
    while !full(&frames) {
        let wait = deadline.min(Instant::now() + GATHER_GAP);
        match tokio::time::timeout_at(wait, receiver.next()).await {
            Ok(Some(b)) => {
                frames.push(b);
                drain(&mut frames, receiver);
            }
            // Closed (the caller's next `recv` sees it) or a pause in the stream.
            Ok(None) | Err(_) => break,
        }
    }
    frames
}

/// Whether a burst holds as many frames or bytes as it may.
fn full(frames: &[Bytes]) -> bool {
    frames.len() >= READ_BURST || frames.iter().map(Bytes::len).sum::<usize>() >= READ_BURST_BYTES
}

/// Moves frames already waiting into `frames`, up to [`READ_BURST`] frames or
/// [`READ_BURST_BYTES`].
fn drain(frames: &mut Vec<Bytes>, receiver: &mut impl Frames) {
    let mut bytes: usize = frames.iter().map(Bytes::len).sum();
    while frames.len() < READ_BURST && bytes < READ_BURST_BYTES {
        match receiver.try_next() {
            Some(b) => {
                bytes += b.len();
                frames.push(b);
            }
            None => break,
        }
    }
}

/// Turns a burst into the driver's inputs, in order, each with the bytes it came in: each run
/// of consecutive floods becomes one input whose signatures were checked in one batch;
/// anything else goes as it came. A flood larger than `max_flood` bytes (the group's largest
/// record and its envelope: no member floods more) ends the burst with a violation, before it
/// is decoded or its signature checked; the flag says so.
fn to_inputs(
    id: ConnId,
    frames: Vec<Bytes>,
    keys: &SignerKeys,
    max_flood: usize,
) -> (Vec<(Input, usize)>, bool) {
    let mut inputs = Vec::new();
    let mut run: Vec<Record> = Vec::new();
    let mut run_bytes = 0;
    // How the run's records were pushed (a run holds one kind: floods or repushes).
    let mut run_push = Push::Tree;
    let end_run = |run: &mut Vec<Record>,
                   run_bytes: &mut usize,
                   push: Push,
                   inputs: &mut Vec<(Input, usize)>| {
        if !run.is_empty() {
            let checked = heavy(|| keys.check(std::mem::take(run)));
            inputs.push((
                Input::Floods(id, checked, push, Held::none()),
                std::mem::take(run_bytes),
            ));
        }
    };
    for bytes in frames {
        if bytes.len() > max_flood && MeshMessage::is_flood(&bytes) {
            end_run(&mut run, &mut run_bytes, run_push, &mut inputs);
            let fault = PeerFault::FloodTooLarge {
                len: bytes.len(),
                max: max_flood,
            };
            inputs.push((Input::Violation(id, fault), 0));
            return (inputs, true);
        }
        match MeshMessage::decode(&bytes) {
            Ok(message @ (MeshMessage::Flood(_) | MeshMessage::Repush(_))) => {
                let (push, record) = match message {
                    MeshMessage::Repush(record) => (Push::Repair, record),
                    MeshMessage::Flood(record) => (Push::Tree, record),
                    // Not reached: the arm takes floods and repushes only.
                    _ => continue,
                };
                if push != run_push {
                    end_run(&mut run, &mut run_bytes, run_push, &mut inputs);
                    run_push = push;
                }
                run_bytes += bytes.len();
                run.push(record);
            }
            // A sync's records: checked here too, so that a fresh member's sync checks one
            // message's signatures while its group's task stores the previous one.
            Ok(MeshMessage::Sync {
                session,
                message: SyncMessage::Records { class, records },
            }) => {
                end_run(&mut run, &mut run_bytes, run_push, &mut inputs);
                let checked = heavy(|| keys.check(records));
                let len = bytes.len();
                inputs.push((
                    Input::CheckedSync {
                        conn: id,
                        session,
                        class,
                        records: checked,
                        len,
                        held: Held::none(),
                    },
                    len,
                ));
            }
            // Decoded once, here, not again by the group's task.
            Ok(message) => {
                end_run(&mut run, &mut run_bytes, run_push, &mut inputs);
                let len = bytes.len();
                inputs.push((
                    Input::Decoded(id, Box::new(message), len, Held::none()),
                    len,
                ));
            }
            Err(_) => {
                end_run(&mut run, &mut run_bytes, run_push, &mut inputs);
                let len = bytes.len();
                inputs.push((Input::Message(id, bytes, Held::none()), len));
            }
        }
    }
    end_run(&mut run, &mut run_bytes, run_push, &mut inputs);
    (inputs, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Frames for mpsc::Receiver<Bytes> {
        fn try_next(&mut self) -> Option<Bytes> {
            self.try_recv().ok()
        }

        async fn next(&mut self) -> Option<Bytes> {
            self.recv().await
        }
    }

    fn frame(i: usize) -> Bytes {
        Bytes::from(i.to_be_bytes().to_vec())
    }

    /// A channel holding `waiting` frames, then `per_tick` more every `every`, `ticks`
    /// times. Frames are numbered in the order they are sent.
    fn stream(
        waiting: usize,
        ticks: usize,
        per_tick: usize,
        every: Duration,
    ) -> mpsc::Receiver<Bytes> {
        let (tx, rx) = mpsc::channel(65536);
        for i in 0..waiting {
            tx.try_send(frame(i)).expect("room");
        }
        tokio::spawn(async move {
            let mut i = waiting;
            for _ in 0..ticks {
                tokio::time::sleep(every).await;
                for _ in 0..per_tick {
                    if tx.send(frame(i)).await.is_err() {
                        return;
                    }
                    i += 1;
                }
            }
        });
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_frame_is_not_held_back() {
        let mut rx = stream(0, 10, 1, Duration::from_millis(1));
        let start = Instant::now();
        let burst = gather(frame(99), &mut rx).await;
        assert_eq!(burst, vec![frame(99)]);
        assert_eq!(start.elapsed(), Duration::ZERO);
        // A few waiting frames are taken, but nothing is waited for.
        let mut rx = stream(STREAM - 2, 10, 1, Duration::from_millis(1));
        let burst = gather(frame(99), &mut rx).await;
        assert_eq!(burst.len(), STREAM - 1);
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_is_gathered_up_to_a_full_burst_in_order() {
        let mut rx = stream(63, 20, 64, Duration::from_millis(1));
        let burst = gather(frame(usize::MAX), &mut rx).await;
        assert_eq!(burst.len(), READ_BURST);
        assert_eq!(burst[0], frame(usize::MAX));
        for (i, f) in burst[1..].iter().enumerate() {
            assert_eq!(f, &frame(i), "frame {i} out of order");
        }
        // The rest is still there for the next burst.
        assert_eq!(rx.next().await, Some(frame(READ_BURST - 1)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_ends_the_burst() {
        let mut rx = stream(40, 0, 0, Duration::ZERO);
        let start = Instant::now();
        let burst = gather(frame(99), &mut rx).await;
        assert_eq!(burst.len(), 41);
        assert!(start.elapsed() <= GATHER_GAP, "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_stream_is_held_back_at_most_gather_max() {
        // Frames keep coming within the gap, for far longer than GATHER_MAX.
        let mut rx = stream(40, 1000, 1, GATHER_GAP / 2);
        let start = Instant::now();
        let burst = gather(frame(99), &mut rx).await;
        let held = start.elapsed();
        assert!(held <= GATHER_MAX, "held {held:?}");
        assert!(
            burst.len() > 41 && burst.len() < READ_BURST,
            "{}",
            burst.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_big_frames_stops_at_its_byte_bound() {
        let (tx, mut rx) = mpsc::channel(4096);
        let big = Bytes::from(vec![7u8; 1024 * 1024]);
        for _ in 0..100 {
            tx.try_send(big.clone()).expect("room");
        }
        let burst = gather(big.clone(), &mut rx).await;
        let bytes: usize = burst.iter().map(Bytes::len).sum();
        assert!(
            bytes >= READ_BURST_BYTES && bytes < READ_BURST_BYTES + big.len(),
            "{} frames, {bytes} bytes",
            burst.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_waits_when_its_byte_budget_is_used() {
        let budget = Budget::new(Budget::node());
        // The whole connection budget in inputs the driver has not taken yet.
        let mut held = Vec::new();
        for _ in 0..READ_BYTES_PER_CONN / (1024 * 1024) {
            held.push(budget.take(1024 * 1024).await);
        }
        const { assert!(READ_BYTES_PER_CONN / (1024 * 1024) < READ_INPUTS_PER_CONN) };
        let more = tokio::time::timeout(Duration::from_secs(60), budget.take(1)).await;
        assert!(more.is_err(), "took more than its budget");
        // The driver takes one input: there is room again.
        held.pop();
        let more = tokio::time::timeout(Duration::from_secs(60), budget.take(1024 * 1024)).await;
        assert!(more.is_ok(), "no room after the driver took an input");
        // Another connection of the same node has its own budget, within the node's.
        let other = Budget::new(budget.node.clone());
        let theirs = tokio::time::timeout(Duration::from_secs(60), other.take(1024)).await;
        assert!(theirs.is_ok());
        // An input bigger than a whole budget takes all of it, and passes alone.
        drop((held, more, theirs));
        let huge = tokio::time::timeout(Duration::from_secs(60), budget.take(usize::MAX / 2)).await;
        assert!(huge.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_waits_when_its_inputs_are_many() {
        let budget = Budget::new(Budget::node());
        let mut held = Vec::new();
        for _ in 0..READ_INPUTS_PER_CONN {
            held.push(budget.take(40).await);
        }
        let more = tokio::time::timeout(Duration::from_secs(60), budget.take(40)).await;
        assert!(more.is_err(), "took more inputs than allowed");
        held.pop();
        let more = tokio::time::timeout(Duration::from_secs(60), budget.take(40)).await;
        assert!(more.is_ok(), "no room after the driver took an input");
    }

    #[test]
    fn a_flood_over_the_groups_records_ends_the_burst_undecoded() {
        let keys = signer_keys();
        let ok = Bytes::from(MeshMessage::Prune.encode());
        // The first bytes of a flood, and a megabyte of what no one decodes.
        let mut big = vec![0u8; 1024 * 1024];
        big[..2].copy_from_slice(&MeshMessage::FLOOD_PREFIX);
        let frames = vec![ok.clone(), Bytes::from(big), ok];
        let (inputs, violated) = to_inputs(ConnId(3), frames, &keys, 64 * 1024);
        assert!(violated);
        assert_eq!(inputs.len(), 2, "what came before, then the violation");
        assert!(
            matches!(&inputs[0].0, Input::Decoded(ConnId(3), m, ..) if **m == MeshMessage::Prune)
        );
        assert!(matches!(
            &inputs[1].0,
            Input::Violation(
                ConnId(3),
                PeerFault::FloodTooLarge {
                    len: 1_048_576,
                    max: 65_536
                }
            )
        ));
        // Under the limit, the same frame is decoded (and found malformed: the task refuses it).
        let mut big = vec![0u8; 1024];
        big[..2].copy_from_slice(&MeshMessage::FLOOD_PREFIX);
        let (inputs, violated) = to_inputs(ConnId(3), vec![Bytes::from(big)], &keys, 64 * 1024);
        assert!(!violated);
        assert!(matches!(&inputs[0].0, Input::Message(..)));
    }

    #[test]
    fn a_sync_messages_records_are_checked_by_the_reader() {
        use peergroup_credential_roles::{GroupRoot, MemberRequest, Role, Roles};
        use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
        use peergroup_record_db::sync::SyncClass;
        use peergroup_record_db::{Database, LocalSigner, NewRecord, RecordType, store};
        let t = Timestamp::from_millis(1_700_000_000_000);
        let key = KeyPair::from_test_seed(2);
        let peer = PeerName::new(&key.public(), Classifier::new("m").unwrap());
        let root = GroupRoot::with_key(
            KeyPair::from_test_seed(1),
            "reader test",
            Classifier::new("g").unwrap(),
            &peer,
            t,
        )
        .unwrap();
        let chain = root
            .issue(&MemberRequest {
                subject_key: key.public(),
                subject_peer: peer.clone(),
                subject_friendly_name: "m".into(),
                roles: Roles::one(Role::Admin),
                classifiers: vec![],
                not_before: t,
                not_after: t.saturating_add(Duration::from_secs(86_400)),
            })
            .unwrap();
        let mut db = Database::open(store::MemoryStore::new(), &chain).unwrap();
        let signer = LocalSigner {
            key: &key,
            chain: &chain,
        };
        let mut made = || {
            let new = NewRecord {
                record_type: "51a7e5e1-0000-4000-8000-000000000001"
                    .parse::<RecordType>()
                    .unwrap(),
                attributes: String::new(),
                payload: b"synced".to_vec(),
                expires: t.saturating_add(Duration::from_secs(3600)),
                autorefresh: false,
            };
            db.create(signer, new, t).unwrap().record
        };
        let good = made();
        let mut altered = made();
        altered.payload = b"altered on the way".to_vec();
        let [a, b, c, d] = [made(), made(), made(), made()];
        let message = MeshMessage::Sync {
            session: 7,
            message: SyncMessage::Records {
                class: SyncClass::Data,
                records: vec![good, altered],
            },
        };
        let frames = vec![Bytes::from(message.encode())];
        let (inputs, violated) = to_inputs(ConnId(3), frames, &db.signer_keys(), usize::MAX);
        assert!(!violated);
        let [(input, _)] = inputs.as_slice() else {
            panic!("one input expected");
        };
        let Input::CheckedSync {
            conn,
            session,
            class,
            records,
            ..
        } = input
        else {
            panic!("not a checked sync message");
        };
        assert_eq!((*conn, *session, *class), (ConnId(3), 7, SyncClass::Data));
        let verdicts: Vec<bool> = records
            .iter()
            .map(|r| r.checked_with(&key.public()))
            .collect();
        assert_eq!(
            verdicts,
            [true, false],
            "the altered record passed the check"
        );

        // Floods and repushes: each run of one kind is one input, which says the kind.
        let frames: Vec<Bytes> = [
            MeshMessage::Flood(a),
            MeshMessage::Flood(b),
            MeshMessage::Repush(c),
            MeshMessage::Flood(d),
        ]
        .iter()
        .map(|m| Bytes::from(m.encode()))
        .collect();
        let (inputs, violated) = to_inputs(ConnId(3), frames, &db.signer_keys(), usize::MAX);
        assert!(!violated);
        let runs: Vec<(Push, usize)> = inputs
            .iter()
            .map(|(input, _)| match input {
                Input::Floods(ConnId(3), records, push, _) => (*push, records.len()),
                _ => panic!("not a run of floods"),
            })
            .collect();
        assert_eq!(runs, [(Push::Tree, 2), (Push::Repair, 1), (Push::Tree, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_connection_ends_the_burst() {
        let (tx, mut rx) = mpsc::channel(4096);
        for i in 0..40 {
            tx.try_send(frame(i)).expect("room");
        }
        drop(tx);
        let burst = gather(frame(99), &mut rx).await;
        assert_eq!(burst.len(), 41);
        assert_eq!(rx.next().await, None);
    }

    /// The (empty) signer keys of a fresh group's database: the frames here are refused
    /// before any signature is looked at.
    fn signer_keys() -> SignerKeys {
        use peergroup_credential_roles::GroupRoot;
        use peergroup_identity::{Classifier, KeyPair, PeerName, Timestamp};
        let key = KeyPair::from_test_seed(1);
        let creator = PeerName::new(&key.public(), Classifier::new("c").unwrap());
        let root = GroupRoot::with_key(
            key,
            "reader test",
            Classifier::new("g").unwrap(),
            &creator,
            Timestamp::from_millis(1_700_000_000_000),
        )
        .unwrap();
        let db = peergroup_record_db::Database::open(
            peergroup_record_db::store::MemoryStore::new(),
            root.chain(),
        )
        .unwrap();
        db.signer_keys()
    }
}
