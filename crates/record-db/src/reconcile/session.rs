//! The sans-IO two-party reconciliation session.

use std::collections::VecDeque;

use super::CodedSymbol;
use super::config::{Config, Outcome, Role, Stats};
use super::error::{ReconcileError, Violation, check_version, unexpected};
use super::message::{Message, PROTOCOL_VERSION};
use super::peel::{DecodeStatus, Decoder};
use super::policy::{Situation, Step, next_step};
use super::source::{SymbolSource, sorted_differences};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Initiator after `Start`/`Symbols`: waiting for `More`, `SendKeys`, `Keys` or `Done`.
    AwaitReply,
    /// Waiting for `Done` only.
    AwaitDone,
    /// Responder, fresh.
    AwaitStart,
    /// Responder after `More`.
    AwaitSymbols {
        from: u64,
        count: u64,
    },
    /// Responder after `SendKeys`.
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
///    message, `Done`, may still be queued for the peer), or when `handle_message` returns an
///    error.
///
/// The initiator queues its first message on creation. The protocol strictly alternates, so at
/// most one message is queued at a time. Nothing here blocks, reads a clock or draws randomness:
/// the same inputs give the same outputs. No input makes it panic, and every session ends: the
/// number of symbols is capped ([`Config`]) and past the cap the responder switches to the full
/// key list. Timeouts are the caller's business (drop the session).
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
    outcome: Option<Outcome>,
    /// Responder: the decoder of the initiator's stream.
    decoder: Decoder,
    /// Initiator: index of the next symbol to send.
    next_index: u64,
    /// `More` messages sent (responder) or served (initiator).
    requests: u32,
    /// Responder: the set size the initiator announced (`Start`) or sent (`StartKeys`).
    remote_size: Option<u64>,
}

impl<S: SymbolSource> Session<S> {
    /// The initiating side; its first message is queued at once.
    pub fn initiator(source: S, config: Config) -> Self {
        let mut session = Self::new(Role::Initiator, source, config, State::AwaitReply);
        let size = session.source.key_count();
        let initial = (config.initial_symbols as u64).min(config.max_symbols_per_message);
        if size <= initial {
            let keys = session.source.sorted_keys();
            session.send(Message::StartKeys {
                version: PROTOCOL_VERSION,
                keys,
            });
            session.state = State::AwaitDone;
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
            outcome: None,
            decoder: Decoder::new(),
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
        self.stats.bytes_sent += message.encoded_len() as u64;
        self.stats.messages_sent += 1;
        let (symbols, keys) = message.payload_counts();
        self.stats.symbols_sent += symbols;
        self.stats.keys_sent += keys;
        Some(message)
    }

    /// Decodes `bytes` as one message and handles it. Counts `bytes.len()` as received even if
    /// they are malformed (which fails the session).
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), ReconcileError> {
        let decoded = Message::decode(bytes);
        self.stats.bytes_received += bytes.len() as u64;
        self.stats.messages_received += 1;
        match decoded {
            Ok(message) => self.handle_counted(message),
            Err(e) => self.fail(e),
        }
    }

    /// Handles one message from the peer.
    pub fn handle_message(&mut self, message: Message) -> Result<(), ReconcileError> {
        self.stats.bytes_received += message.encoded_len() as u64;
        self.stats.messages_received += 1;
        self.handle_counted(message)
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
        }
        Err(error)
    }

    fn initiator_handle(&mut self, message: Message) -> Result<(), ReconcileError> {
        match (self.state, message) {
            (State::AwaitReply, Message::More { from, count }) => {
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
                let limit = self.config.max_symbols_per_message;
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
                self.send(Message::Symbols { from, symbols });
                Ok(())
            }
            (State::AwaitReply, Message::SendKeys) => {
                let keys = self.source.sorted_keys();
                self.send(Message::Keys { keys });
                self.state = State::AwaitDone;
                Ok(())
            }
            (State::AwaitReply, Message::Keys { keys }) => self.answer_key_list(keys, None),
            (
                State::AwaitReply | State::AwaitDone,
                Message::Done {
                    initiator_lacks,
                    responder_lacks,
                    sender_set,
                },
            ) => self.accept_done(responder_lacks, initiator_lacks, sender_set),
            (state, message) => Err(unexpected(&message, state.describe())),
        }
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
                self.check_batch_len(symbols.len())?;
                self.remote_size = Some(set_size);
                if self.source.key_count() == 0 {
                    // Nothing to encode: our (empty) list is the cheapest answer.
                    self.send(Message::Keys { keys: Vec::new() });
                    self.state = State::AwaitDone;
                    return Ok(());
                }
                self.absorb(&symbols)
            }
            (State::AwaitStart, Message::StartKeys { version, keys }) => {
                check_version(version)?;
                self.answer_key_list(keys, None)
            }
            (State::AwaitSymbols { from, count }, Message::Symbols { from: got, symbols }) => {
                if got != from {
                    return Err(Violation::OutOfOrder {
                        expected: from,
                        got,
                    }
                    .into());
                }
                if symbols.len() as u64 != count {
                    return Err(Violation::WrongSymbolCount {
                        expected: count,
                        got: symbols.len() as u64,
                    }
                    .into());
                }
                self.absorb(&symbols)
            }
            (State::AwaitKeys, Message::Keys { keys }) => {
                let announced = self.remote_size;
                self.answer_key_list(keys, announced)
            }
            (
                State::AwaitDone,
                Message::Done {
                    initiator_lacks,
                    responder_lacks,
                    sender_set,
                },
            ) => self.accept_done(initiator_lacks, responder_lacks, sender_set),
            (state, message) => Err(unexpected(&message, state.describe())),
        }
    }

    fn check_batch_len(&self, len: usize) -> Result<(), ReconcileError> {
        let limit = self.config.max_symbols_per_message;
        if len as u64 > limit {
            return Err(Violation::SymbolLimit {
                requested: len as u64,
                limit,
            }
            .into());
        }
        Ok(())
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
                self.send(Message::Done {
                    initiator_lacks: outcome.local_only.clone(),
                    responder_lacks: outcome.remote_only.clone(),
                    sender_set: self.own_set(),
                });
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
        let step = next_step(&Situation {
            estimate: self.decoder.estimate(),
            received,
            own_size: own,
            remote_size: self.remote_size.unwrap_or(0),
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
                    from: received,
                    count,
                };
            }
            Step::SendOwnKeys => {
                let keys = self.source.sorted_keys();
                self.send(Message::Keys { keys });
                self.state = State::AwaitDone;
            }
            Step::AskForKeys => {
                self.send(Message::SendKeys);
                self.state = State::AwaitKeys;
            }
        }
    }

    /// Computes the result from the peer's whole key list and answers `Done`.
    fn answer_key_list(
        &mut self,
        keys: Vec<u64>,
        announced: Option<u64>,
    ) -> Result<(), ReconcileError> {
        if let Some(announced) = announced
            && keys.len() as u64 != announced
        {
            return Err(Violation::SetSizeMismatch {
                announced,
                got: keys.len() as u64,
            }
            .into());
        }
        let theirs = self.sorted_unique(keys)?;
        let ours = self.source.sorted_keys();
        let (local_only, remote_only) = sorted_differences(&ours, &theirs);
        let (initiator_lacks, responder_lacks) = match self.role {
            Role::Initiator => (remote_only.clone(), local_only.clone()),
            Role::Responder => (local_only.clone(), remote_only.clone()),
        };
        self.send(Message::Done {
            initiator_lacks,
            responder_lacks,
            sender_set: self.own_set(),
        });
        self.finish(Outcome {
            local_only,
            remote_only,
        });
        Ok(())
    }

    /// Checks a `Done` against our own set and finishes.
    fn accept_done(
        &mut self,
        local_only: Vec<u64>,
        remote_only: Vec<u64>,
        sender_set: CodedSymbol,
    ) -> Result<(), ReconcileError> {
        let outcome = Outcome {
            local_only: self.sorted_unique(local_only)?,
            remote_only: self.sorted_unique(remote_only)?,
        };
        self.check_outcome(&outcome)?;
        // Our set, minus what the sender lacks, plus what we lack, is the sender's set.
        let mut implied = self.own_set();
        for &k in &outcome.local_only {
            implied.remove_key(k);
        }
        for &k in &outcome.remote_only {
            implied.add_key(k);
        }
        if implied != sender_set {
            return Err(Violation::SetMismatch.into());
        }
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

    /// Local-only keys must be ours, remote-only keys must not; a responder also checks the
    /// sizes against the initiator's announced set size.
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

    fn sorted_unique(&self, mut keys: Vec<u64>) -> Result<Vec<u64>, ReconcileError> {
        if keys.len() as u64 > self.config.max_keys {
            return Err(Violation::KeyLimit {
                got: keys.len() as u64,
                limit: self.config.max_keys,
            }
            .into());
        }
        keys.sort_unstable();
        if let Some(pair) = keys.windows(2).find(|w| w[0] == w[1]) {
            return Err(Violation::DuplicateKey(pair[0]).into());
        }
        Ok(keys)
    }

    fn send(&mut self, message: Message) {
        self.outbox.push_back(message);
    }

    fn finish(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.state = State::Finished;
    }
}
