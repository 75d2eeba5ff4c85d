//! The sans-IO two-party reconciliation session.

use std::collections::VecDeque;

use super::CodedSymbol;
use super::config::{Config, Outcome, Role, Stats};
use super::error::{ReconcileError, Violation, check_version, unexpected};
use super::message::{MAX_MESSAGE_BYTES, MAX_SYMBOLS_PER_MESSAGE, Message, PROTOCOL_VERSION};
use super::parts::{
    IncomingDone, IncomingKeys, check_ascending, done_parts, key_list_parts, symbol_parts,
};
use super::peel::{DecodeStatus, Decoder};
use super::policy::{Situation, Step, next_step};
use super::source::{SymbolSource, sorted_differences};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Initiator after `Start` or the whole answer to a `More`: waiting for `More`,
    /// `SendKeys`, the responder's key list or `Done`.
    AwaitReply,
    /// Waiting for (the rest of) `Done`.
    AwaitDone,
    /// Responder, fresh.
    AwaitStart,
    /// Responder after `More`: the next `Symbols` part starts at `next`; `remaining` symbols
    /// of the request are still to come.
    AwaitSymbols {
        next: u64,
        remaining: u64,
    },
    /// Waiting for (the rest of) the peer's key list.
    AwaitKeys,
    Finished,
    Failed,
}

impl State {
    fn describe(self) -> &'static str {
        match self {
            State::AwaitReply => "awaiting a reply to symbols",
            State::AwaitDone => "awaiting Done",
            State::AwaitStart => "awaiting Start",
            State::AwaitSymbols { .. } => "awaiting Symbols",
            State::AwaitKeys => "awaiting Keys",
            State::Finished => "finished",
            State::Failed => "failed",
        }
    }
}

/// One side of a set reconciliation, sans-IO.
///
/// # Calling contract
///
/// 1. Create with [`Session::initiator`] or [`Session::responder`] over a [`SymbolSource`] that
///    stays unchanged for the session's lifetime.
/// 2. Loop: send every message [`poll_transmit`](Self::poll_transmit) yields (in order, e.g.
///    postcard-encoded with [`Message::encode`] in a length-delimited frame); hand every message
///    the peer sent to [`handle_message`](Self::handle_message) (or raw bytes to
///    [`handle_bytes`](Self::handle_bytes)), in order.
/// 3. Stop when [`outcome`](Self::outcome) is `Some` and `poll_transmit` is empty (the last
///    messages, the parts of `Done`, may still be queued for the peer), or when
///    `handle_message` returns an error.
///
/// Every message this side sends encodes to at most
/// [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES); a longer symbol batch, key list or
/// result goes out as several messages, all queued at once (one *flight*). The peer's
/// messages are held to the same bounds. The initiator queues its first message on creation.
/// Flights strictly alternate: a side queues its next flight only once the peer's flight is
/// complete. Nothing here blocks, reads a clock or draws randomness: the same inputs give the
/// same outputs. No input makes it panic, and every session ends: the number of symbols is
/// capped ([`Config`]) and past the cap the responder switches to the full key list. Timeouts
/// are the caller's business (drop the session).
///
/// Memory: a session holds its peer's symbols of one request (at most
/// [`Config::max_symbols_per_request`]), the peer's key list (at most our own set's size)
/// and the result's list of keys we lack (at most [`Config::max_keys`]).
///
/// Once an error is returned the session is dead and further messages return
/// [`ReconcileError::Closed`]. A message arriving after the outcome is rejected with
/// [`Violation::UnexpectedMessage`] but the outcome stays available.
#[derive(Debug)]
pub struct Session<S> {
    role: Role,
    config: Config,
    source: S,
    state: State,
    outbox: VecDeque<Message>,
    stats: Stats,
    /// Direction of the last message (true: sent), to count flights.
    last_sent: Option<bool>,
    outcome: Option<Outcome>,
    /// Responder: the decoder of the initiator's stream.
    decoder: Decoder,
    /// Responder: the parts of the answer to the current `More` received so far.
    pending: Vec<CodedSymbol>,
    /// The peer's key list, while its parts arrive.
    incoming_keys: Option<IncomingKeys>,
    /// The result, while the parts of `Done` arrive.
    incoming_done: Option<IncomingDone>,
    /// Initiator: index of the next symbol to send.
    next_index: u64,
    /// `More` messages sent (responder) or served (initiator).
    requests: u32,
    /// Responder: the set size the initiator announced (`Start`).
    remote_size: Option<u64>,
}

impl<S: SymbolSource> Session<S> {
    /// The initiating side; its first message is queued at once.
    pub fn initiator(source: S, config: Config) -> Self {
        let mut session = Self::new(Role::Initiator, source, config, State::AwaitReply);
        let size = session.source.key_count();
        let initial = (config.initial_symbols.min(MAX_SYMBOLS_PER_MESSAGE) as u64)
            .min(config.max_symbols_per_request);
        if size <= initial {
            let keys = session.source.sorted_keys();
            session.send(Message::StartKeys {
                version: PROTOCOL_VERSION,
                keys,
            });
            session.await_done();
        } else {
            let symbols = session.source.symbols(0, initial as usize);
            session.next_index = initial;
            session.send(Message::Start {
                version: PROTOCOL_VERSION,
                set_size: size,
                symbols,
            });
        }
        session
    }

    /// The responding side; it speaks only when spoken to.
    pub fn responder(source: S, config: Config) -> Self {
        Self::new(Role::Responder, source, config, State::AwaitStart)
    }

    fn new(role: Role, source: S, config: Config, state: State) -> Self {
        Session {
            role,
            config,
            source,
            state,
            outbox: VecDeque::new(),
            stats: Stats::default(),
            last_sent: None,
            outcome: None,
            decoder: Decoder::new(),
            pending: Vec::new(),
            incoming_keys: None,
            incoming_done: None,
            next_index: 0,
            remote_size: None,
            requests: 0,
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Traffic so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The result, once known.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// Consumes the session, returning the result if known.
    pub fn into_outcome(self) -> Option<Outcome> {
        self.outcome
    }

    /// Whether the session failed (an error was returned).
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// The next message to send to the peer, if any.
    pub fn poll_transmit(&mut self) -> Option<Message> {
        let message = self.outbox.pop_front()?;
        self.count_flight(true);
        self.stats.bytes_sent += message.encoded_len() as u64;
        self.stats.messages_sent += 1;
        let (symbols, keys) = message.payload_counts();
        self.stats.symbols_sent += symbols;
        self.stats.keys_sent += keys;
        Some(message)
    }

    /// Decodes `bytes` as one message and handles it. Counts `bytes.len()` as received even if
    /// they are malformed or over the bounds (which fails the session; more than
    /// [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES) are not decoded at all).
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), ReconcileError> {
        self.count_flight(false);
        self.stats.bytes_received += bytes.len() as u64;
        self.stats.messages_received += 1;
        if self.state == State::Failed {
            return Err(ReconcileError::Closed);
        }
        match Message::decode(bytes) {
            Ok(message) => self.handle_counted(message),
            Err(e) => self.fail(e),
        }
    }

    /// Handles one message from the peer. A message over the bounds
    /// ([`Message::check_bounds`], [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES)) is a
    /// protocol violation.
    pub fn handle_message(&mut self, message: Message) -> Result<(), ReconcileError> {
        self.count_flight(false);
        let bytes = message.encoded_len();
        self.stats.bytes_received += bytes as u64;
        self.stats.messages_received += 1;
        if self.state != State::Failed && bytes > MAX_MESSAGE_BYTES {
            return self.fail(
                Violation::MessageTooLarge {
                    bytes: bytes as u64,
                    limit: MAX_MESSAGE_BYTES as u64,
                }
                .into(),
            );
        }
        self.handle_counted(message)
    }

    fn count_flight(&mut self, sent: bool) {
        if self.last_sent != Some(sent) {
            self.last_sent = Some(sent);
            self.stats.flights += 1;
        }
    }

    fn handle_counted(&mut self, message: Message) -> Result<(), ReconcileError> {
        let (symbols, keys) = message.payload_counts();
        self.stats.symbols_received += symbols;
        self.stats.keys_received += keys;
        match self.state {
            State::Failed => return Err(ReconcileError::Closed),
            State::Finished => return Err(unexpected(&message, self.state.describe())),
            _ => {}
        }
        if let Err(violation) = message.check_bounds() {
            return self.fail(violation.into());
        }
        let result = match self.role {
            Role::Initiator => self.initiator_handle(message),
            Role::Responder => self.responder_handle(message),
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    fn fail(&mut self, error: ReconcileError) -> Result<(), ReconcileError> {
        if self.state != State::Finished {
            self.state = State::Failed;
            self.outbox.clear();
            self.pending = Vec::new();
            self.incoming_keys = None;
            self.incoming_done = None;
        }
        Err(error)
    }

    fn initiator_handle(&mut self, message: Message) -> Result<(), ReconcileError> {
        match (self.state, message) {
            (State::AwaitReply, Message::More { from, count }) => self.serve_request(from, count),
            (State::AwaitReply, Message::SendKeys) => {
                let keys = self.source.sorted_keys();
                self.send_key_list(&keys);
                self.await_done();
                Ok(())
            }
            (State::AwaitReply, message @ (Message::KeysPart { .. } | Message::Keys { .. })) => {
                // The responder sends its own list only when its set is no larger than ours.
                let limit = self.source.key_count().min(self.config.max_keys);
                self.incoming_keys = Some(IncomingKeys::at_most(limit));
                self.state = State::AwaitKeys;
                self.receive_keys(message)
            }
            (State::AwaitKeys, message @ (Message::KeysPart { .. } | Message::Keys { .. })) => {
                self.receive_keys(message)
            }
            (State::AwaitReply, message @ (Message::DonePart { .. } | Message::Done { .. })) => {
                self.await_done();
                self.receive_done(message)
            }
            (State::AwaitDone, message @ (Message::DonePart { .. } | Message::Done { .. })) => {
                self.receive_done(message)
            }
            (state, message) => Err(unexpected(&message, state.describe())),
        }
    }

    /// Initiator: answers `More { from, count }` with the symbols, in parts.
    fn serve_request(&mut self, from: u64, count: u64) -> Result<(), ReconcileError> {
        if self.requests >= self.config.max_requests {
            return Err(Violation::TooManyRequests {
                limit: self.config.max_requests,
            }
            .into());
        }
        self.requests += 1;
        if from != self.next_index {
            return Err(Violation::OutOfOrder {
                expected: self.next_index,
                got: from,
            }
            .into());
        }
        let limit = self.config.max_symbols_per_request;
        if count == 0 || count > limit {
            return Err(Violation::SymbolLimit {
                requested: count,
                limit,
            }
            .into());
        }
        let end = from.saturating_add(count);
        if end > self.config.max_total_symbols {
            return Err(Violation::SymbolLimit {
                requested: end,
                limit: self.config.max_total_symbols,
            }
            .into());
        }
        let count = usize::try_from(count).map_err(|_| Violation::SymbolLimit {
            requested: count,
            limit,
        })?;
        let symbols = self.source.symbols(from, count);
        self.next_index = end;
        self.outbox
            .extend(symbol_parts(from, &symbols, self.config.symbols_chunk()));
        Ok(())
    }

    fn responder_handle(&mut self, message: Message) -> Result<(), ReconcileError> {
        match (self.state, message) {
            (
                State::AwaitStart,
                Message::Start {
                    version,
                    set_size,
                    symbols,
                },
            ) => {
                check_version(version)?;
                if set_size > self.config.max_keys {
                    return Err(Violation::KeyLimit {
                        got: set_size,
                        limit: self.config.max_keys,
                    }
                    .into());
                }
                let limit = self.config.max_symbols_per_request;
                if symbols.len() as u64 > limit {
                    return Err(Violation::SymbolLimit {
                        requested: symbols.len() as u64,
                        limit,
                    }
                    .into());
                }
                self.remote_size = Some(set_size);
                if self.source.key_count() == 0 {
                    // Nothing to encode: our (empty) list is the cheapest answer.
                    self.send_key_list(&[]);
                    self.await_done();
                    return Ok(());
                }
                self.absorb(&symbols)
            }
            (State::AwaitStart, Message::StartKeys { version, keys }) => {
                check_version(version)?;
                check_ascending(None, &keys)?;
                self.answer_key_list(&keys)
            }
            (State::AwaitSymbols { next, remaining }, Message::SymbolsPart { from, symbols }) => {
                // A part that more follow leaves some of the request to them.
                self.receive_symbols(next, remaining, from, &symbols, false)
            }
            (State::AwaitSymbols { next, remaining }, Message::Symbols { from, symbols }) => {
                self.receive_symbols(next, remaining, from, &symbols, true)
            }
            (State::AwaitKeys, message @ (Message::KeysPart { .. } | Message::Keys { .. })) => {
                self.receive_keys(message)
            }
            (State::AwaitDone, message @ (Message::DonePart { .. } | Message::Done { .. })) => {
                self.receive_done(message)
            }
            (state, message) => Err(unexpected(&message, state.describe())),
        }
    }

    /// Responder: adds a part of the answer to our `More` (the last if `last`); decodes once
    /// the answer is complete.
    fn receive_symbols(
        &mut self,
        next: u64,
        remaining: u64,
        from: u64,
        symbols: &[CodedSymbol],
        last: bool,
    ) -> Result<(), ReconcileError> {
        if from != next {
            return Err(Violation::OutOfOrder {
                expected: next,
                got: from,
            }
            .into());
        }
        let len = symbols.len() as u64;
        let fits = if last {
            len == remaining
        } else {
            len > 0 && len < remaining
        };
        if !fits {
            return Err(Violation::WrongSymbolCount {
                expected: remaining,
                got: len,
            }
            .into());
        }
        self.pending.extend_from_slice(symbols);
        if !last {
            self.state = State::AwaitSymbols {
                next: next.saturating_add(len),
                remaining: remaining - len,
            };
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.absorb(&batch)
    }

    /// Responder: decodes a batch of the initiator's symbols, then answers `Done`, `More` or
    /// falls back to key lists.
    fn absorb(&mut self, symbols: &[CodedSymbol]) -> Result<(), ReconcileError> {
        let local = self
            .source
            .symbols(self.decoder.len() as u64, symbols.len());
        let status = self
            .decoder
            .add_symbols(symbols, &local)
            .map_err(Violation::InconsistentSymbols)?;
        match status {
            DecodeStatus::Decoded => {
                let outcome = Outcome {
                    local_only: self.decoder.local_only(),
                    remote_only: self.decoder.remote_only(),
                };
                self.check_outcome(&outcome)?;
                self.send_done(&outcome.local_only, &outcome.remote_only);
                self.finish(outcome);
                Ok(())
            }
            DecodeStatus::NeedMore => {
                self.request_more();
                Ok(())
            }
        }
    }

    /// Responder after a failed decode: asks for more symbols or falls back to key lists
    /// ([`next_step`]).
    fn request_more(&mut self) {
        let received = self.decoder.len() as u64;
        let own = self.source.key_count();
        let remote = self.remote_size.unwrap_or(0);
        let step = next_step(&Situation {
            estimate: self.decoder.estimate(),
            received,
            own_size: own,
            remote_size: remote,
            requests: self.requests,
            config: &self.config,
        });
        match step {
            Step::More(count) => {
                self.requests += 1;
                self.send(Message::More {
                    from: received,
                    count,
                });
                self.state = State::AwaitSymbols {
                    next: received,
                    remaining: count,
                };
            }
            Step::SendOwnKeys => {
                let keys = self.source.sorted_keys();
                self.send_key_list(&keys);
                self.await_done();
            }
            Step::AskForKeys => {
                self.send(Message::SendKeys);
                self.incoming_keys = Some(IncomingKeys::exactly(remote));
                self.state = State::AwaitKeys;
            }
        }
    }

    /// Adds a part of the peer's key list; after the last, answers `Done`.
    fn receive_keys(&mut self, message: Message) -> Result<(), ReconcileError> {
        let (keys, last) = match message {
            Message::KeysPart { keys } => (keys, false),
            Message::Keys { keys } => (keys, true),
            other => return Err(unexpected(&other, self.state.describe())),
        };
        let Some(incoming) = self.incoming_keys.as_mut() else {
            return Err(unexpected(&Message::Keys { keys }, self.state.describe()));
        };
        incoming.add(&keys)?;
        if !last {
            return Ok(());
        }
        let theirs = match self.incoming_keys.take() {
            Some(incoming) => incoming.finish()?,
            None => Vec::new(),
        };
        self.answer_key_list(&theirs)
    }

    /// Computes the result from the peer's whole key list (ascending, distinct) and answers
    /// `Done`.
    fn answer_key_list(&mut self, theirs: &[u64]) -> Result<(), ReconcileError> {
        if theirs.len() as u64 > self.config.max_keys {
            return Err(Violation::KeyLimit {
                got: theirs.len() as u64,
                limit: self.config.max_keys,
            }
            .into());
        }
        let ours = self.source.sorted_keys();
        let (local_only, remote_only) = sorted_differences(&ours, theirs);
        self.send_done(&local_only, &remote_only);
        self.finish(Outcome {
            local_only,
            remote_only,
        });
        Ok(())
    }

    /// Waits for `Done`, ready to check its parts.
    fn await_done(&mut self) {
        // The keys we lack: at most what the initiator announced (a responder), at most the
        // largest set a peer may have (an initiator, which never learns the responder's size).
        let remote_limit = match self.role {
            Role::Initiator => self.config.max_keys,
            Role::Responder => self.remote_size.unwrap_or(0).min(self.config.max_keys),
        };
        self.incoming_done = Some(IncomingDone::new(self.own_set(), remote_limit));
        self.state = State::AwaitDone;
    }

    /// Adds a part of `Done`, checked against our set; after the last, checks the whole and
    /// finishes.
    fn receive_done(&mut self, message: Message) -> Result<(), ReconcileError> {
        let (initiator_lacks, responder_lacks, sender_set) = match message {
            Message::DonePart {
                initiator_lacks,
                responder_lacks,
            } => (initiator_lacks, responder_lacks, None),
            Message::Done {
                initiator_lacks,
                responder_lacks,
                sender_set,
            } => (initiator_lacks, responder_lacks, Some(sender_set)),
            other => return Err(unexpected(&other, self.state.describe())),
        };
        let (local, remote) = match self.role {
            Role::Initiator => (responder_lacks, initiator_lacks),
            Role::Responder => (initiator_lacks, responder_lacks),
        };
        let Some(incoming) = self.incoming_done.as_mut() else {
            return Err(Violation::UnexpectedMessage {
                got: "Done",
                state: self.state.describe(),
            }
            .into());
        };
        incoming.add(&local, &remote, &self.source)?;
        let Some(sender_set) = sender_set else {
            return Ok(());
        };
        let Some(incoming) = self.incoming_done.take() else {
            return Ok(());
        };
        let outcome = incoming.finish(sender_set)?;
        self.check_sizes(&outcome)?;
        self.finish(outcome);
        Ok(())
    }

    /// Our whole set as one coded symbol: symbol 0 of the stream, which every key maps to.
    fn own_set(&self) -> CodedSymbol {
        self.source
            .symbols(0, 1)
            .first()
            .copied()
            .unwrap_or(CodedSymbol::ZERO)
    }

    /// Local-only keys must be ours, remote-only keys must not; then [`Self::check_sizes`].
    fn check_outcome(&self, outcome: &Outcome) -> Result<(), ReconcileError> {
        if let Some(&key) = outcome
            .local_only
            .iter()
            .find(|&&k| !self.source.contains(k))
        {
            return Err(Violation::InconsistentResult(key).into());
        }
        if let Some(&key) = outcome
            .remote_only
            .iter()
            .find(|&&k| self.source.contains(k))
        {
            return Err(Violation::InconsistentResult(key).into());
        }
        self.check_sizes(outcome)
    }

    /// A responder checks the result's sizes against the initiator's announced set size.
    fn check_sizes(&self, outcome: &Outcome) -> Result<(), ReconcileError> {
        if let (Role::Responder, Some(announced)) = (self.role, self.remote_size) {
            let common = self
                .source
                .key_count()
                .checked_sub(outcome.local_only.len() as u64);
            let implied = common.and_then(|c| c.checked_add(outcome.remote_only.len() as u64));
            if implied != Some(announced) {
                return Err(Violation::InconsistentSizes.into());
            }
        }
        Ok(())
    }

    /// Queues our whole key list, in parts.
    fn send_key_list(&mut self, keys: &[u64]) {
        self.outbox
            .extend(key_list_parts(keys, self.config.keys_chunk()));
    }

    /// Queues the result, in parts: `local_only`/`remote_only` from this side's view.
    fn send_done(&mut self, local_only: &[u64], remote_only: &[u64]) {
        let (initiator_lacks, responder_lacks) = match self.role {
            Role::Initiator => (remote_only, local_only),
            Role::Responder => (local_only, remote_only),
        };
        let parts = done_parts(
            initiator_lacks,
            responder_lacks,
            self.own_set(),
            self.config.keys_chunk(),
        );
        self.outbox.extend(parts);
    }

    fn send(&mut self, message: Message) {
        self.outbox.push_back(message);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.state = State::Finished;
    }
}
