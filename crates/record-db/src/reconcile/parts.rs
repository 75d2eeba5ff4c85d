//! Symbol batches and key lists in bounded parts: what we send is split into messages of at
//! most [`MAX_SYMBOLS_PER_MESSAGE`] symbols or [`MAX_KEYS_PER_MESSAGE`] keys; what the peer
//! sends is reassembled part by part, each part checked as it arrives (ascending keys, the
//! list's bound, keys against our own set), so a list too long or wrong fails the session at
//! the first bad part instead of after all of it.

use super::config::Outcome;
use super::error::Violation;
use super::message::Message;
#[cfg(doc)]
use super::message::{MAX_KEYS_PER_MESSAGE, MAX_SYMBOLS_PER_MESSAGE};
use super::source::SymbolSource;
use super::symbol::CodedSymbol;

/// The symbols `from..from + symbols.len()` as consecutive `SymbolsPart` messages of `chunk`
/// symbols, ending with one `Symbols` (the only message of a short batch).
pub(crate) fn symbol_parts(from: u64, symbols: &[CodedSymbol], chunk: usize) -> Vec<Message> {
    let chunk = chunk.max(1);
    let parts = symbols.len().div_ceil(chunk).max(1);
    let mut out = Vec::with_capacity(parts);
    let (mut index, mut rest) = (from, symbols);
    for _ in 1..parts {
        let (part, after) = rest.split_at(chunk.min(rest.len()));
        out.push(Message::SymbolsPart {
            from: index,
            symbols: part.to_vec(),
        });
        index = index.saturating_add(part.len() as u64);
        rest = after;
    }
    out.push(Message::Symbols {
        from: index,
        symbols: rest.to_vec(),
    });
    out
}

/// A whole key list as `KeysPart` messages of `chunk` keys, ending with one `Keys` (the only
/// message of a short or empty list).
pub(crate) fn key_list_parts(keys: &[u64], chunk: usize) -> Vec<Message> {
    let chunk = chunk.max(1);
    let parts = keys.len().div_ceil(chunk).max(1);
    let mut out = Vec::with_capacity(parts);
    let mut rest = keys;
    for _ in 1..parts {
        let (part, after) = rest.split_at(chunk.min(rest.len()));
        out.push(Message::KeysPart {
            keys: part.to_vec(),
        });
        rest = after;
    }
    out.push(Message::Keys {
        keys: rest.to_vec(),
    });
    out
}

/// A result as `DonePart` messages of `chunk` keys (both lists together: the initiator's
/// first, then the responder's), ending with one `Done` carrying `sender_set`.
pub(crate) fn done_parts(
    initiator_lacks: &[u64],
    responder_lacks: &[u64],
    sender_set: CodedSymbol,
    chunk: usize,
) -> Vec<Message> {
    let chunk = chunk.max(1);
    let (mut initiator, mut responder) = (initiator_lacks, responder_lacks);
    let mut out = Vec::new();
    loop {
        let (i_part, i_rest) = initiator.split_at(chunk.min(initiator.len()));
        let room = chunk - i_part.len();
        let (r_part, r_rest) = responder.split_at(room.min(responder.len()));
        (initiator, responder) = (i_rest, r_rest);
        let (initiator_lacks, responder_lacks) = (i_part.to_vec(), r_part.to_vec());
        if initiator.is_empty() && responder.is_empty() {
            out.push(Message::Done {
                initiator_lacks,
                responder_lacks,
                sender_set,
            });
            return out;
        }
        out.push(Message::DonePart {
            initiator_lacks,
            responder_lacks,
        });
    }
}

/// Checks that `part` is strictly ascending and continues above `last` (the previous part's
/// last key).
pub(crate) fn check_ascending(mut last: Option<u64>, part: &[u64]) -> Result<(), Violation> {
    for &key in part {
        match last {
            Some(previous) if key == previous => return Err(Violation::DuplicateKey(key)),
            Some(previous) if key < previous => return Err(Violation::KeysNotAscending(key)),
            _ => {}
        }
        last = Some(key);
    }
    Ok(())
}

/// The peer's whole key list, arriving in parts (`KeysPart`… `Keys`).
#[derive(Debug)]
pub(crate) struct IncomingKeys {
    keys: Vec<u64>,
    /// Most keys the whole list may have.
    limit: u64,
    /// The exact size the peer announced, if it did.
    announced: Option<u64>,
}

impl IncomingKeys {
    /// A list of at most `limit` keys.
    pub(crate) fn at_most(limit: u64) -> Self {
        IncomingKeys {
            keys: Vec::new(),
            limit,
            announced: None,
        }
    }

    /// A list of exactly `announced` keys.
    pub(crate) fn exactly(announced: u64) -> Self {
        IncomingKeys {
            keys: Vec::new(),
            limit: announced,
            announced: Some(announced),
        }
    }

    /// Adds the next part.
    pub(crate) fn add(&mut self, part: &[u64]) -> Result<(), Violation> {
        let got = (self.keys.len() as u64).saturating_add(part.len() as u64);
        if got > self.limit {
            return Err(match self.announced {
                Some(announced) => Violation::SetSizeMismatch { announced, got },
                None => Violation::KeyLimit {
                    got,
                    limit: self.limit,
                },
            });
        }
        check_ascending(self.keys.last().copied(), part)?;
        self.keys.extend_from_slice(part);
        Ok(())
    }

    /// The whole list (ascending, distinct), after its last part.
    pub(crate) fn finish(self) -> Result<Vec<u64>, Violation> {
        let got = self.keys.len() as u64;
        match self.announced {
            Some(announced) if got != announced => {
                Err(Violation::SetSizeMismatch { announced, got })
            }
            _ => Ok(self.keys),
        }
    }
}

/// A result arriving in parts (`DonePart`… `Done`), from this side's point of view, checked
/// against our own set as it arrives.
#[derive(Debug)]
pub(crate) struct IncomingDone {
    local_only: Vec<u64>,
    remote_only: Vec<u64>,
    /// Our set's symbol, minus the keys we hold and the sender lacks, plus the keys we lack:
    /// once complete, the sender's set.
    implied: CodedSymbol,
    /// Most keys we may be told we lack.
    remote_limit: u64,
}

impl IncomingDone {
    /// Nothing received yet; `own_set` is our set as one coded symbol.
    pub(crate) fn new(own_set: CodedSymbol, remote_limit: u64) -> Self {
        IncomingDone {
            local_only: Vec::new(),
            remote_only: Vec::new(),
            implied: own_set,
            remote_limit,
        }
    }

    /// Adds the next part: `local` are keys the sender says we hold and it lacks, `remote`
    /// keys it says we lack. Each list must continue ascending; local keys must be ours,
    /// remote keys must not.
    pub(crate) fn add<S: SymbolSource>(
        &mut self,
        local: &[u64],
        remote: &[u64],
        source: &S,
    ) -> Result<(), Violation> {
        let got = (self.remote_only.len() as u64).saturating_add(remote.len() as u64);
        if got > self.remote_limit {
            return Err(Violation::KeyLimit {
                got,
                limit: self.remote_limit,
            });
        }
        check_ascending(self.local_only.last().copied(), local)?;
        check_ascending(self.remote_only.last().copied(), remote)?;
        if let Some(&key) = local.iter().find(|&&k| !source.contains(k)) {
            return Err(Violation::InconsistentResult(key));
        }
        if let Some(&key) = remote.iter().find(|&&k| source.contains(k)) {
            return Err(Violation::InconsistentResult(key));
        }
        for &key in local {
            self.implied.remove_key(key);
        }
        for &key in remote {
            self.implied.add_key(key);
        }
        self.local_only.extend_from_slice(local);
        self.remote_only.extend_from_slice(remote);
        Ok(())
    }

    /// The outcome, after the last part, if the differences turn our set into the sender's.
    pub(crate) fn finish(self, sender_set: CodedSymbol) -> Result<Outcome, Violation> {
        if self.implied != sender_set {
            return Err(Violation::SetMismatch);
        }
        Ok(Outcome {
            local_only: self.local_only,
            remote_only: self.remote_only,
        })
    }
}
