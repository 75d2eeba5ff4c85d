//! Synchronising two replicas: reconcile item keys class by class (security records first),
//! then each side sends the records the other lacks.
//!
//! ```text
//! for class in [Security, Data]:
//!   initiator ⇄ responder   Reconcile { class, message }   (a reconcile::Session each)
//!   both know Outcome { local_only, remote_only }
//!   each side → Records { class, records = local_only } … then ClassDone { class }
//! ```
//!
//! Security records (group properties, memberships, revocations) are synchronised and
//! applied before any other record, because validating the others needs them. The session is
//! sans-IO: it never touches the database itself except to read key snapshots and records,
//! and hands received records to the caller ([`SyncSession::take_received`]) to apply with
//! [`Database::apply`](crate::Database::apply) — before polling for the next message, so the
//! security class is applied before the data class starts.
//!
//! Every message is bounded, so the mesh's frame limit need not exceed
//! `max(max_record_size, 1 MiB) + 64 KiB`: a message encodes to at most
//! [`MAX_SYNC_MESSAGE_BYTES`] (1 MiB + 1 KiB), except a `Records` message carrying one larger
//! record alone. Reconciliation splits symbol batches, key lists and its result across several
//! messages ([`reconcile::MAX_MESSAGE_BYTES`]); `Records` holds at most
//! [`RECORDS_PER_MESSAGE`] records and [`BYTES_PER_MESSAGE`] of them. A peer's message over
//! these bounds fails the session.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::db::{Database, Received};
use crate::error::Error;
use crate::reconcile::{self, Config, Message, ReconcileError, Session, SetSnapshot, Stats};
use crate::record::Record;
use crate::store::Store;

/// The two synchronisation classes, in the order they are synchronised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncClass {
    /// Group properties, memberships, revocations.
    Security,
    /// Every other record.
    Data,
}

impl SyncClass {
    fn is_security(self) -> bool {
        self == SyncClass::Security
    }

    fn next(self) -> Option<SyncClass> {
        match self {
            SyncClass::Security => Some(SyncClass::Data),
            SyncClass::Data => None,
        }
    }
}

/// A message of the sync protocol.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncMessage {
    /// A set-reconciliation message for one class.
    Reconcile {
        /// The class.
        class: SyncClass,
        /// The reconciliation message.
        message: Message,
    },
    /// Records the receiver lacks.
    Records {
        /// The class.
        class: SyncClass,
        /// The records.
        records: Vec<Record>,
    },
    /// The sender has sent every record of the class the receiver lacked.
    ClassDone {
        /// The class.
        class: SyncClass,
    },
}

/// Most records in one [`SyncMessage::Records`].
pub const RECORDS_PER_MESSAGE: usize = 256;
/// Most bytes of record encodings ([`crate::codec::encoded_len`]) in one
/// [`SyncMessage::Records`] of several records; a record larger than this travels alone. A
/// record a group accepts has at most [`crate::reserved::MAX_RECORD_SIZE_LIMIT`] bytes of
/// data and under 1 KiB of other fields; records with more (stored under an older, larger
/// limit: no replica accepts them now) are not sent. A peer's message of several records over
/// this is refused ([`SyncError::TooLarge`]).
pub const BYTES_PER_MESSAGE: usize = 1024 * 1024;

/// Most bytes of one encoded [`SyncMessage`] (postcard), except a [`SyncMessage::Records`]
/// carrying one record alone, which is as large as that record (its data, at most the group's
/// maximum record size, and under 1 KiB of other fields): 1 MiB + 1 KiB.
///
/// The largest are a reconciliation message (at most [`reconcile::MAX_MESSAGE_BYTES`], that is
/// 1 MiB and 64 bytes, plus 2 bytes of tag and class: 1,048,642 bytes) and a message of
/// several records (at most [`BYTES_PER_MESSAGE`] of encodings, plus 4 bytes). So a transport
/// frame of `max(max_record_size, 1 MiB) + 64 KiB` carries every message of a sync with room
/// for an envelope.
pub const MAX_SYNC_MESSAGE_BYTES: usize = BYTES_PER_MESSAGE + 1024;

impl SyncMessage {
    /// Length of the postcard encoding, without allocating it.
    pub fn encoded_len(&self) -> usize {
        postcard::serialize_with_flavor(self, postcard::ser_flavors::Size::default()).unwrap_or(0)
    }
}

/// A sync protocol violation or failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The reconciliation failed.
    #[error("set reconciliation: {0}")]
    Reconcile(#[from] ReconcileError),
    /// A message out of place (the peer broke the protocol).
    #[error("protocol violation: {0}")]
    Protocol(SyncViolation),
    /// A message over the protocol's bounds (a peer breaking the protocol): several records
    /// with more than [`BYTES_PER_MESSAGE`] of encodings. (A reconciliation message over its
    /// bounds is a [`SyncError::Reconcile`] violation.)
    #[error("{what} of {bytes} bytes, limit {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The local database failed.
    #[error(transparent)]
    Database(#[from] Error),
}

/// How a peer broke the sync protocol's order or bounds (see [`SyncError::Protocol`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncViolation {
    /// A message after the sync finished.
    #[error("message after the sync finished")]
    AfterFinish,
    /// A message for another class than the current one.
    #[error("{got:?} message during the {current:?} class")]
    WrongClass {
        /// The message's class.
        got: SyncClass,
        /// The class being synchronised.
        current: SyncClass,
    },
    /// The responder started a reconciliation (only the initiator does).
    #[error("the responder started a reconciliation")]
    ResponderStarted,
    /// More records in one message than [`RECORDS_PER_MESSAGE`].
    #[error("{count} records in one message (at most {RECORDS_PER_MESSAGE})")]
    TooManyRecords {
        /// How many came.
        count: usize,
    },
    /// A record of the other class (a data record while security records sync, or the
    /// reverse).
    #[error("a record of the wrong class")]
    RecordOfWrongClass,
    /// A second `ClassDone` for one class.
    #[error("ClassDone twice")]
    DoneTwice,
}

/// Where in the class this side is.
#[derive(Debug)]
struct ClassState {
    class: SyncClass,
    session: Option<Session<SetSnapshot>>,
    /// Keys of records still to push to the peer.
    to_push: VecDeque<u64>,
    /// A record read for the last message that did not fit in it: the next one's first.
    carry: Option<Record>,
    outcome_seen: bool,
    sent_done: bool,
    got_done: bool,
}

impl ClassState {
    fn new(class: SyncClass) -> Self {
        ClassState {
            class,
            session: None,
            to_push: VecDeque::new(),
            carry: None,
            outcome_seen: false,
            sent_done: false,
            got_done: false,
        }
    }
}

/// One synchronisation with one peer.
///
/// Calling contract: the initiator is created with [`SyncSession::initiator`], the peer with
/// [`SyncSession::responder`]. Loop: send every message [`poll_transmit`](Self::poll_transmit)
/// returns; give every message from the peer to [`handle`](Self::handle); after each `handle`,
/// apply [`take_received`](Self::take_received) to the database. Stop when
/// [`is_done`](Self::is_done). Errors end the session.
#[derive(Debug)]
pub struct SyncSession {
    initiator: bool,
    config: Config,
    state: Option<ClassState>,
    outbox: VecDeque<SyncMessage>,
    received: Vec<Received>,
    reconcile_stats: Stats,
    records_sent: u64,
    records_received: u64,
    records_expected: u64,
}

impl SyncSession {
    /// The side that starts.
    pub fn initiator() -> Self {
        SyncSession::new(true)
    }

    /// The side that answers.
    pub fn responder() -> Self {
        SyncSession::new(false)
    }

    fn new(initiator: bool) -> Self {
        SyncSession {
            initiator,
            config: Config::default(),
            state: Some(ClassState::new(SyncClass::Security)),
            outbox: VecDeque::new(),
            received: Vec::new(),
            reconcile_stats: Stats::default(),
            records_sent: 0,
            records_received: 0,
            records_expected: 0,
        }
    }

    /// Whether both classes are finished in both directions.
    pub fn is_done(&self) -> bool {
        self.state.is_none() && self.outbox.is_empty()
    }

    /// Records received since the last call; apply them before polling again.
    pub fn take_received(&mut self) -> Vec<Record> {
        self.take_received_checked()
            .into_iter()
            .map(Received::into_record)
            .collect()
    }

    /// [`take_received`](Self::take_received), each record with what a check of its
    /// signature found when it came with [`handle_records`](Self::handle_records) (for
    /// [`Database::apply_received`](crate::Database::apply_received)).
    pub fn take_received_checked(&mut self) -> Vec<Received> {
        std::mem::take(&mut self.received)
    }

    /// Reconciliation traffic of finished classes (bytes, round trips, symbols).
    pub fn reconcile_stats(&self) -> Stats {
        self.reconcile_stats
    }

    /// Records sent and received so far.
    pub fn record_counts(&self) -> (u64, u64) {
        (self.records_sent, self.records_received)
    }

    /// Records the peer is known to hold and we lack, over the classes reconciled so far (an
    /// upper bound on what it sends: a record replaced meanwhile is skipped). Grows as each
    /// class's reconciliation finishes, so `received / expected` is a progress estimate.
    pub fn records_expected(&self) -> u64 {
        self.records_expected
    }

    /// Handles a message from the peer.
    pub fn handle<S: Store>(
        &mut self,
        msg: SyncMessage,
        db: &Database<S>,
    ) -> Result<(), SyncError> {
        let class = match &msg {
            SyncMessage::Reconcile { class, .. }
            | SyncMessage::Records { class, .. }
            | SyncMessage::ClassDone { class } => *class,
        };
        let initiator = self.initiator;
        let config = self.config;
        let state = self.current(class)?;
        match msg {
            SyncMessage::Reconcile { message, .. } => {
                if state.session.is_none() {
                    if initiator {
                        return Err(SyncError::Protocol(SyncViolation::ResponderStarted));
                    }
                    state.session = Some(Session::responder(
                        db.key_snapshot(class.is_security()),
                        config,
                    ));
                }
                if let Some(session) = state.session.as_mut() {
                    session.handle_message(message)?;
                }
            }
            SyncMessage::Records { records, .. } => {
                let records = records.into_iter().map(Received::unchecked).collect();
                self.take_records(records)?;
            }
            SyncMessage::ClassDone { .. } => {
                if state.got_done {
                    return Err(SyncError::Protocol(SyncViolation::DoneTwice));
                }
                state.got_done = true;
            }
        }
        Ok(())
    }

    /// A `Records` message of `class` whose records' signatures the caller checked already
    /// ([`SignerKeys::check`](crate::SignerKeys::check), on another thread): handled as
    /// [`handle`](Self::handle) handles it, each record keeping what the check found.
    pub fn handle_records(
        &mut self,
        class: SyncClass,
        records: Vec<Received>,
    ) -> Result<(), SyncError> {
        self.current(class)?;
        self.take_records(records)
    }

    /// The class being synchronised, when a message of `class` may come now.
    fn current(&mut self, class: SyncClass) -> Result<&mut ClassState, SyncError> {
        self.try_advance();
        let Some(state) = self.state.as_mut() else {
            return Err(SyncError::Protocol(SyncViolation::AfterFinish));
        };
        if class != state.class {
            return Err(SyncError::Protocol(SyncViolation::WrongClass {
                got: class,
                current: state.class,
            }));
        }
        Ok(state)
    }

    /// The records of a `Records` message of the current class, within its bounds.
    fn take_records(&mut self, records: Vec<Received>) -> Result<(), SyncError> {
        if records.len() > RECORDS_PER_MESSAGE {
            return Err(SyncError::Protocol(SyncViolation::TooManyRecords {
                count: records.len(),
            }));
        }
        if records.len() > 1 {
            let bytes: usize = records
                .iter()
                .map(|r| crate::codec::encoded_len(r.record()))
                .sum();
            if bytes > BYTES_PER_MESSAGE {
                return Err(SyncError::TooLarge {
                    what: "a message of several records",
                    bytes,
                    limit: BYTES_PER_MESSAGE,
                });
            }
        }
        let security = self.state.as_ref().is_some_and(|s| s.class.is_security());
        if records
            .iter()
            .any(|r| r.record().record_type.is_security() != security)
        {
            return Err(SyncError::Protocol(SyncViolation::RecordOfWrongClass));
        }
        self.records_received += records.len() as u64;
        self.received.extend(records);
        Ok(())
    }

    /// The next message to send, if any.
    pub fn poll_transmit<S: Store>(
        &mut self,
        db: &Database<S>,
    ) -> Result<Option<SyncMessage>, SyncError> {
        loop {
            if let Some(m) = self.outbox.pop_front() {
                return Ok(Some(m));
            }
            let Some(state) = self.state.as_mut() else {
                return Ok(None);
            };
            let class = state.class;
            if state.session.is_none() && self.initiator {
                state.session = Some(Session::initiator(
                    db.key_snapshot(class.is_security()),
                    self.config,
                ));
            }
            if let Some(session) = state.session.as_mut() {
                if let Some(message) = session.poll_transmit() {
                    return Ok(Some(SyncMessage::Reconcile { class, message }));
                }
                if !state.outcome_seen
                    && let Some(outcome) = session.outcome()
                {
                    state.outcome_seen = true;
                    state.to_push = outcome.local_only.iter().copied().collect();
                    self.records_expected += outcome.remote_only.len() as u64;
                }
            }
            if state.outcome_seen && (state.carry.is_some() || !state.to_push.is_empty()) {
                let mut records = Vec::new();
                let mut bytes = 0;
                while records.len() < RECORDS_PER_MESSAGE {
                    let r = match state.carry.take() {
                        Some(r) => r,
                        None => {
                            let Some(key) = state.to_push.pop_front() else {
                                break;
                            };
                            // A record replaced or expired since the snapshot is simply
                            // skipped: the newer version travels by flooding or the next sync.
                            // So is one larger than any group may now allow, which would not
                            // fit in a frame and which no replica accepts.
                            match db.record_by_key(key)? {
                                Some(r)
                                    if r.data_size()
                                        <= crate::reserved::MAX_RECORD_SIZE_LIMIT as usize =>
                                {
                                    r
                                }
                                _ => continue,
                            }
                        }
                    };
                    let size = crate::codec::encoded_len(&r);
                    if !records.is_empty() && bytes + size > BYTES_PER_MESSAGE {
                        state.carry = Some(r);
                        break;
                    }
                    bytes += size;
                    records.push(r);
                }
                if !records.is_empty() {
                    self.records_sent += records.len() as u64;
                    return Ok(Some(SyncMessage::Records { class, records }));
                }
                continue;
            }
            if state.outcome_seen && !state.sent_done {
                state.sent_done = true;
                return Ok(Some(SyncMessage::ClassDone { class }));
            }
            if state.sent_done && state.got_done {
                self.try_advance();
                continue;
            }
            return Ok(None);
        }
    }

    /// Moves to the next class once both sides finished the current one.
    fn try_advance(&mut self) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if state.sent_done && state.got_done {
            if let Some(session) = state.session.take() {
                add_stats(&mut self.reconcile_stats, session.stats());
            }
            self.state = state.class.next().map(ClassState::new);
        }
    }
}

fn add_stats(total: &mut Stats, s: reconcile::Stats) {
    total.bytes_sent += s.bytes_sent;
    total.bytes_received += s.bytes_received;
    total.messages_sent += s.messages_sent;
    total.messages_received += s.messages_received;
    total.symbols_sent += s.symbols_sent;
    total.symbols_received += s.symbols_received;
    total.keys_sent += s.keys_sent;
    total.keys_received += s.keys_received;
    total.flights += s.flights;
}
