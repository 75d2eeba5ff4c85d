//! Member relays: when two members cannot punch a hole to each other (a symmetric NAT
//! against a port-dependent one), a member both are connected to carries a byte stream
//! between them over its two links, and the two run a member TLS handshake inside it
//! (`peergroup_transport::relayed`), so the relay carries ciphertext only and cannot pass
//! for either. The stream then becomes an ordinary mesh link, marked relayed
//! ([`PeerInfo::relayed`](super::PeerInfo::relayed)): a direct link to the same member,
//! when a later punch makes one, replaces it (see `conn.rs`).
//!
//! ```text
//! A (initiator)              R (relay)                     C (target)
//! RelayOpen{a, to C} ─►
//!                            RelayIncoming{r, from A} ─►
//! RelayData{a, ..} ─►        RelayData{r, ..} ─►            (TLS ClientHello …)
//!                        ◄─  RelayData{a, ..}          ◄─  RelayData{r, ..}
//!                        ◄─  RelayAck{a, n}            ◄─  RelayAck{r, n}   (credit)
//! RelayClose{a} ─►           RelayClose{r} ─►               (either side, or R)
//! ```
//!
//! A circuit is named on each link by the side that opened that hop. Flow control is by
//! credit: an end sends at most [`RELAY_WINDOW`] bytes the other end has not acknowledged
//! (it acknowledges what its application took), so a relay holds at most that much per
//! direction of a circuit, and a sender that ignores it loses the circuit. A relay serves at
//! most [`RelayLimits::max_circuits`] circuits, [`RelayLimits::max_circuits_per_member`]
//! opened by one member, each for at most [`RelayLimits::max_bytes`] and
//! [`RelayLimits::max_duration`]; a node is an end of at most [`MAX_RELAYED_ENDS`]
//! circuits. Circuits ride on direct links only (no relay through a relayed link).

use std::collections::BTreeMap;
use std::time::Duration;

use peergroup_identity::PeerName;
use peergroup_record_db::store::Store;

use super::{ConnId, Core, Output};
use crate::message::MeshMessage;
use crate::time::{Mono, Now};

/// Most bytes of one direction of a circuit sent and not yet acknowledged by the receiving
/// end: what a relay may hold per direction of a circuit.
pub const RELAY_WINDOW: u32 = 256 * 1024;
/// Most bytes in one `RelayData` message.
pub const MAX_RELAY_CHUNK: usize = 16 * 1024;
/// Circuits this node is an end of at once (asked for, or reached through).
pub const MAX_RELAYED_ENDS: usize = 8;

/// What this node does for others as a relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayLimits {
    /// Whether to relay for other members at all.
    pub serve: bool,
    /// Circuits relayed at once.
    pub max_circuits: usize,
    /// Circuits one member may have opened through us at once.
    pub max_circuits_per_member: usize,
    /// Bytes one circuit may carry (both directions); then it is closed.
    pub max_bytes: u64,
    /// How long one circuit may live; then it is closed.
    pub max_duration: Duration,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            serve: true,
            max_circuits: 16,
            max_circuits_per_member: 4,
            max_bytes: 64 * 1024 * 1024,
            max_duration: Duration::from_secs(3600),
        }
    }
}

/// A circuit as one of its ends knows it: the link to the relay and the circuit's number
/// on that link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CircuitId {
    /// The link to the relay.
    pub conn: ConnId,
    /// The circuit's number on it.
    pub id: u64,
}

/// A circuit this node is an end of.
#[derive(Debug)]
struct End {
    /// The member at the other end.
    peer: PeerName,
    /// Bytes we may still send.
    credit: u32,
    /// Bytes received and not yet acknowledged.
    unacked: u32,
    /// Whether we asked for it.
    initiator: bool,
}

/// One side of a circuit this node relays.
#[derive(Debug)]
struct Hop {
    /// The other side: its link and the circuit's number there.
    other: (ConnId, u64),
    /// The member that opened the circuit.
    opener: PeerName,
    opened: Mono,
    /// Bytes forwarded from this side, not yet acknowledged by the other.
    in_flight: u32,
    /// Bytes forwarded from this side in all.
    carried: u64,
}

/// The relay state of a node.
#[derive(Debug, Default)]
pub(super) struct Relays {
    ends: BTreeMap<(ConnId, u64), End>,
    hops: BTreeMap<(ConnId, u64), Hop>,
}

impl Relays {
    /// When the oldest relayed circuit reaches `max_duration`.
    pub(super) fn next_deadline(&self, max_duration: Duration) -> Option<Mono> {
        self.hops
            .values()
            .map(|h| h.opened.saturating_add(max_duration))
            .min()
    }

    /// Circuits relayed now.
    pub(super) fn relayed(&self) -> usize {
        self.hops.len() / 2
    }

    /// Circuits this node is an end of now.
    #[cfg(test)]
    pub(super) fn ends(&self) -> usize {
        self.ends.len()
    }

    /// Whether a circuit to or from `peer` is open here.
    pub(super) fn has_end_with(&self, peer: &PeerName) -> bool {
        self.ends.values().any(|e| &e.peer == peer)
    }

    fn in_use(&self, key: (ConnId, u64)) -> bool {
        self.ends.contains_key(&key) || self.hops.contains_key(&key)
    }
}

impl<S: Store> Core<S> {
    /// Opens a relayed stream to member `target` through `via` (an established direct
    /// link to a member connected to it), or through the first such neighbor when `via` is
    /// `None`. The driver gets [`Output::RelayStream`] at once and runs the TLS client over
    /// it. Refused when this node is an end of [`MAX_RELAYED_ENDS`] circuits, already has
    /// one with `target`, or has no neighbor to ask.
    pub fn relay(
        &mut self,
        target: &PeerName,
        via: Option<ConnId>,
    ) -> Result<CircuitId, crate::Error> {
        let refuse = |why: &str| Err(crate::Error::Invalid(why.to_owned()));
        if target == self.peer() {
            return refuse("a member cannot relay to itself");
        }
        if self.relays.ends.len() >= MAX_RELAYED_ENDS {
            return refuse("too many relayed streams");
        }
        if self.relays.has_end_with(target) {
            return refuse("a relayed stream to that member is open already");
        }
        let usable = |c: ConnId, core: &Self| {
            core.neighbors.is_established(c)
                && core
                    .neighbors
                    .get(c)
                    .is_some_and(|l| !l.info.relayed && &l.info.peer != target)
        };
        let via = match via {
            Some(v) if usable(v, self) => v,
            Some(_) => return refuse("that link cannot carry a relayed stream"),
            None => match self
                .neighbors
                .conns()
                .into_iter()
                .find(|c| usable(*c, self))
            {
                Some(v) => v,
                None => return refuse("no neighbor to relay for us"),
            },
        };
        let mut id = self.rng.next_u64();
        while self.relays.in_use((via, id)) {
            id = self.rng.next_u64();
        }
        self.relays.ends.insert(
            (via, id),
            End {
                peer: target.clone(),
                credit: RELAY_WINDOW,
                unacked: 0,
                initiator: true,
            },
        );
        self.stats.relayed_streams += 1;
        self.send(
            via,
            MeshMessage::RelayOpen {
                circuit: id,
                to: target.clone(),
            },
        );
        let circuit = CircuitId { conn: via, id };
        self.outputs.push_back(Output::RelayStream {
            circuit,
            peer: target.clone(),
            initiator: true,
        });
        Ok(circuit)
    }

    /// The driver's side of a circuit sends `data` (at most [`MAX_RELAY_CHUNK`] bytes, within
    /// the credit it was given: [`RELAY_WINDOW`] at first, then what
    /// [`Output::RelayCredit`] adds). Anything else is refused and changes nothing.
    pub fn relay_send(&mut self, circuit: CircuitId, data: Vec<u8>) -> Result<(), crate::Error> {
        let key = (circuit.conn, circuit.id);
        let Some(end) = self.relays.ends.get_mut(&key) else {
            return Err(crate::Error::Invalid("no such relayed stream".into()));
        };
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if data.len() > MAX_RELAY_CHUNK || len > end.credit {
            return Err(crate::Error::Invalid(format!(
                "{} bytes exceed the relayed stream's chunk or credit ({} left)",
                data.len(),
                end.credit
            )));
        }
        end.credit -= len;
        self.send(
            circuit.conn,
            MeshMessage::RelayData {
                circuit: circuit.id,
                data,
            },
        );
        Ok(())
    }

    /// The driver's side of a circuit took `bytes` of what arrived: the other end may send
    /// that much more.
    pub fn relay_consumed(&mut self, circuit: CircuitId, bytes: u32) {
        let key = (circuit.conn, circuit.id);
        if let Some(end) = self.relays.ends.get_mut(&key) {
            let bytes = bytes.min(end.unacked);
            end.unacked -= bytes;
            if bytes > 0 {
                self.send(
                    circuit.conn,
                    MeshMessage::RelayAck {
                        circuit: circuit.id,
                        bytes,
                    },
                );
            }
        }
    }

    /// The driver's side of a circuit is done with it.
    pub fn relay_close(&mut self, circuit: CircuitId) {
        let key = (circuit.conn, circuit.id);
        if self.relays.ends.remove(&key).is_some() {
            self.send(
                circuit.conn,
                MeshMessage::RelayClose {
                    circuit: circuit.id,
                },
            );
        }
    }

    /// A neighbor asks us to relay a stream to member `to`.
    pub(super) fn on_relay_open(&mut self, conn: ConnId, circuit: u64, to: PeerName, now: Now) {
        let refuse = |core: &mut Self| {
            core.stats.relays_refused += 1;
            core.send(conn, MeshMessage::RelayClose { circuit });
        };
        let Some(opener) = self
            .neighbors
            .get(conn)
            .filter(|l| !l.info.relayed)
            .map(|l| l.info.peer.clone())
        else {
            return refuse(self);
        };
        let limits = &self.config.relay;
        let by_opener = self
            .relays
            .hops
            .iter()
            .filter(|((c, _), h)| *c == conn && h.opener == opener)
            .count();
        if !limits.serve
            || self.relays.in_use((conn, circuit))
            || self.relays.relayed() >= limits.max_circuits
            || by_opener >= limits.max_circuits_per_member
            || to == opener
        {
            return refuse(self);
        }
        let target = self.neighbors.conns().into_iter().find(|c| {
            self.neighbors
                .get(*c)
                .is_some_and(|l| l.info.peer == to && !l.info.relayed)
        });
        let Some(target) = target else {
            return refuse(self);
        };
        let mut id = self.rng.next_u64();
        while self.relays.in_use((target, id)) {
            id = self.rng.next_u64();
        }
        let hop = |other, opener: &PeerName| Hop {
            other,
            opener: opener.clone(),
            opened: now.mono,
            in_flight: 0,
            carried: 0,
        };
        self.relays
            .hops
            .insert((conn, circuit), hop((target, id), &opener));
        self.relays
            .hops
            .insert((target, id), hop((conn, circuit), &opener));
        self.stats.relays_served += 1;
        self.send(
            target,
            MeshMessage::RelayIncoming {
                circuit: id,
                from: opener,
            },
        );
    }

    /// A relay tells us member `from` opened a stream to us.
    pub(super) fn on_relay_incoming(&mut self, conn: ConnId, circuit: u64, from: PeerName) {
        let direct = self.neighbors.conns().into_iter().any(|c| {
            self.neighbors
                .get(c)
                .is_some_and(|l| l.info.peer == from && !l.info.relayed)
        });
        let relayed_link = self.neighbors.get(conn).is_none_or(|l| l.info.relayed);
        // Both asked at once (each punched to the other, and both punches failed): the
        // stream the smaller member asked for stays, which both ends decide alike.
        let crossing: Vec<(ConnId, u64)> = self
            .relays
            .ends
            .iter()
            .filter(|(_, e)| e.peer == from && e.initiator && *self.peer() > from)
            .map(|(k, _)| *k)
            .collect();
        for key in crossing {
            self.end_circuit(key, true);
        }
        if relayed_link
            || direct
            || self.relays.in_use((conn, circuit))
            || self.relays.ends.len() >= MAX_RELAYED_ENDS
            || self.relays.has_end_with(&from)
            || &from == self.peer()
        {
            self.stats.relays_refused += 1;
            self.send(conn, MeshMessage::RelayClose { circuit });
            return;
        }
        self.relays.ends.insert(
            (conn, circuit),
            End {
                peer: from.clone(),
                credit: RELAY_WINDOW,
                unacked: 0,
                initiator: false,
            },
        );
        self.stats.relayed_streams += 1;
        self.outputs.push_back(Output::RelayStream {
            circuit: CircuitId { conn, id: circuit },
            peer: from,
            initiator: false,
        });
    }

    /// Bytes of a circuit: ours to deliver, or to forward.
    pub(super) fn on_relay_data(&mut self, conn: ConnId, circuit: u64, data: Vec<u8>) {
        let key = (conn, circuit);
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        if let Some(end) = self.relays.ends.get_mut(&key) {
            end.unacked = end.unacked.saturating_add(len);
            if end.unacked > RELAY_WINDOW {
                // The sender ignored its credit.
                self.end_circuit(key, true);
                return;
            }
            self.outputs.push_back(Output::RelayData {
                circuit: CircuitId { conn, id: circuit },
                data,
            });
            return;
        }
        let max_bytes = self.config.relay.max_bytes;
        let Some(other) = self.relays.hops.get(&key).map(|h| h.other) else {
            return;
        };
        let other_carried = self.relays.hops.get(&other).map_or(0, |h| h.carried);
        let Some(hop) = self.relays.hops.get_mut(&key) else {
            return;
        };
        hop.in_flight = hop.in_flight.saturating_add(len);
        hop.carried = hop.carried.saturating_add(u64::from(len));
        if hop.in_flight > RELAY_WINDOW || hop.carried.saturating_add(other_carried) > max_bytes {
            // Past its credit (the sender ignored flow control) or its byte limit.
            self.stats.relays_cut += 1;
            self.end_relayed(key);
            return;
        }
        self.stats.relayed_bytes += u64::from(len);
        self.send(
            other.0,
            MeshMessage::RelayData {
                circuit: other.1,
                data,
            },
        );
    }

    /// The receiving end took `bytes` more: credit for the sender.
    pub(super) fn on_relay_ack(&mut self, conn: ConnId, circuit: u64, bytes: u32) {
        let key = (conn, circuit);
        if let Some(end) = self.relays.ends.get_mut(&key) {
            let added = bytes.min(RELAY_WINDOW - end.credit);
            end.credit += added;
            if added > 0 {
                self.outputs.push_back(Output::RelayCredit {
                    circuit: CircuitId { conn, id: circuit },
                    bytes: added,
                });
            }
            return;
        }
        // The ack is for what the other side sent.
        let Some(&Hop { other, .. }) = self.relays.hops.get(&key) else {
            return;
        };
        if let Some(from) = self.relays.hops.get_mut(&other) {
            from.in_flight = from.in_flight.saturating_sub(bytes);
            self.send(
                other.0,
                MeshMessage::RelayAck {
                    circuit: other.1,
                    bytes,
                },
            );
        }
    }

    /// One side closed a circuit.
    pub(super) fn on_relay_close(&mut self, conn: ConnId, circuit: u64) {
        let key = (conn, circuit);
        if self.relays.hops.contains_key(&key) {
            self.end_relayed(key);
        } else {
            self.end_circuit(key, false);
        }
    }

    /// Ends a circuit this node is an end of (telling the relay when `tell`), and tells the
    /// driver.
    fn end_circuit(&mut self, key: (ConnId, u64), tell: bool) {
        if self.relays.ends.remove(&key).is_none() {
            return;
        }
        if tell {
            self.send(key.0, MeshMessage::RelayClose { circuit: key.1 });
        }
        self.outputs.push_back(Output::RelayClosed {
            circuit: CircuitId {
                conn: key.0,
                id: key.1,
            },
        });
    }

    /// Ends a circuit this node relays: both sides are told.
    fn end_relayed(&mut self, key: (ConnId, u64)) {
        let Some(hop) = self.relays.hops.remove(&key) else {
            return;
        };
        self.relays.hops.remove(&hop.other);
        for (conn, circuit) in [key, hop.other] {
            self.send(conn, MeshMessage::RelayClose { circuit });
        }
    }

    /// A link closed: the circuits on it end (the other sides of relayed ones are told).
    pub(super) fn relay_link_closed(&mut self, conn: ConnId) {
        let hops: Vec<(ConnId, u64)> = self
            .relays
            .hops
            .keys()
            .filter(|(c, _)| *c == conn)
            .copied()
            .collect();
        for key in hops {
            if let Some(hop) = self.relays.hops.remove(&key) {
                self.relays.hops.remove(&hop.other);
                let (other, circuit) = hop.other;
                self.send(other, MeshMessage::RelayClose { circuit });
            }
        }
        let ends: Vec<(ConnId, u64)> = self
            .relays
            .ends
            .keys()
            .filter(|(c, _)| *c == conn)
            .copied()
            .collect();
        for key in ends {
            self.end_circuit(key, false);
        }
    }

    /// Closes relayed circuits that reached their time limit.
    pub(super) fn expire_relays(&mut self, now: Now) {
        let max = self.config.relay.max_duration;
        let old: Vec<(ConnId, u64)> = self
            .relays
            .hops
            .iter()
            .filter(|(_, h)| h.opened.saturating_add(max) <= now.mono)
            .map(|(k, _)| *k)
            .collect();
        for key in old {
            if self.relays.hops.contains_key(&key) {
                self.stats.relays_cut += 1;
                self.end_relayed(key);
            }
        }
    }
}
