//! The protocol of one direct connection as a sans-IO machine: no socket, task or clock. The
//! async code in `open` and `session` moves frames between the transport and this machine,
//! so the rules of the protocol live in one place and can be fuzzed as a machine
//! (`fuzz/fuzz_targets/direct_handshake.rs`).
//!
//! ```text
//! opener:   dial ─ sends Hello ─▶ AwaitWelcome ── Welcome ──▶ Established ── Data* ──▶
//! acceptor: accept(first frame = Hello for us) ─ sends Welcome ─▶ Established ── Data* ──▶
//! ```
//!
//! Any other frame, in any state, is a [`ProtocolError`]: the machine fails, and every frame
//! after that is refused too (the connection is being closed with the first error's reason).

use bytes::Bytes;
use peergroup_identity::PeerName;

use crate::types::DataType;
use crate::wire::{self, DirectFrame, DirectHello, DirectWelcome, ProtocolError};

/// Where a connection is in its protocol.
#[derive(Clone, Debug, PartialEq, Eq)]
enum State {
    /// The opener sent its hello and waits for the welcome.
    AwaitWelcome,
    /// Both sides know each other's limit; data flows.
    Established {
        /// The largest data the peer takes (the smaller of both limits).
        max_send: usize,
    },
    /// The peer broke the protocol; nothing more is taken.
    Failed,
}

/// What a received frame meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// The welcome: the connection is established, and data up to `max_send` bytes may be
    /// sent.
    Established {
        /// The largest data the peer takes in one frame.
        max_send: usize,
    },
    /// Data for the owner.
    Data {
        /// The application's data type.
        data_type: DataType,
        /// The bytes (a slice of the frame).
        data: Bytes,
    },
}

/// One direct connection's protocol state (see the module docs).
#[derive(Clone, Debug)]
pub struct DirectProtocol {
    state: State,
    /// The largest data we announced we take in one frame.
    recv_max: usize,
}

impl DirectProtocol {
    /// The opener's side, asking for `target` and taking data up to `recv_max` bytes: the
    /// machine, and the hello to send first.
    pub fn dial(target: &PeerName, recv_max: usize) -> (Self, Bytes) {
        let hello = wire::encode_hello(&DirectHello {
            target: target.clone(),
            max_data: recv_max as u64,
        });
        (
            DirectProtocol {
                state: State::AwaitWelcome,
                recv_max,
            },
            hello,
        )
    }

    /// The acceptor's side, given the connection's first frame: it must be a hello for
    /// `local`. Returns the machine (established) and the welcome to send, announcing
    /// `recv_max`.
    pub fn accept(
        local: &PeerName,
        recv_max: usize,
        first_frame: &Bytes,
    ) -> Result<(Self, Bytes), ProtocolError> {
        let hello = match wire::decode(first_frame)? {
            DirectFrame::Hello(hello) if &hello.target == local => hello,
            DirectFrame::Hello(hello) => return Err(ProtocolError::WrongTarget(hello.target)),
            _ => {
                return Err(ProtocolError::Unexpected(
                    "a first frame other than a hello",
                ));
            }
        };
        let welcome = wire::encode_welcome(&DirectWelcome {
            max_data: recv_max as u64,
        });
        let machine = DirectProtocol {
            state: State::Established {
                max_send: smaller(recv_max, hello.max_data),
            },
            recv_max,
        };
        Ok((machine, welcome))
    }

    /// Takes one received frame. An error fails the machine: the connection must close with
    /// that error as its reason.
    pub fn on_frame(&mut self, frame: &Bytes) -> Result<Received, ProtocolError> {
        let result = self.step(frame);
        if result.is_err() {
            self.state = State::Failed;
        }
        result
    }

    fn step(&mut self, frame: &Bytes) -> Result<Received, ProtocolError> {
        match self.state {
            State::Failed => Err(ProtocolError::Unexpected(
                "a frame after the connection failed",
            )),
            State::AwaitWelcome => match wire::decode(frame)? {
                DirectFrame::Welcome(DirectWelcome { max_data }) => {
                    let max_send = smaller(self.recv_max, max_data);
                    self.state = State::Established { max_send };
                    Ok(Received::Established { max_send })
                }
                _ => Err(ProtocolError::Unexpected("a frame other than a welcome")),
            },
            State::Established { .. } => match wire::decode(frame)? {
                DirectFrame::Data { data_type, data } if data.len() <= self.recv_max => {
                    Ok(Received::Data { data_type, data })
                }
                DirectFrame::Data { data, .. } => Err(ProtocolError::DataTooLarge {
                    len: data.len(),
                    max: self.recv_max,
                }),
                DirectFrame::Hello(_) => Err(ProtocolError::Unexpected("a second hello")),
                DirectFrame::Welcome(_) => Err(ProtocolError::Unexpected(
                    "a welcome on an established connection",
                )),
            },
        }
    }

    /// The largest data the peer takes, once established.
    pub fn max_send(&self) -> Option<usize> {
        match self.state {
            State::Established { max_send } => Some(max_send),
            _ => None,
        }
    }

    /// The largest data we take in one frame (what we announced).
    pub fn recv_max(&self) -> usize {
        self.recv_max
    }

    /// Whether the peer broke the protocol.
    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }
}

/// The smaller of our limit and the one the peer announced (which may not fit a `usize`).
fn smaller(ours: usize, theirs: u64) -> usize {
    ours.min(usize::try_from(theirs).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use peergroup_identity::{Classifier, KeyPair};

    fn peer(seed: u64) -> PeerName {
        PeerName::new(
            &KeyPair::from_test_seed(seed).public(),
            Classifier::new("m").unwrap(),
        )
    }

    fn data_type() -> DataType {
        "{6f1d2c3b-0a4e-4b5c-9d8e-7f6a5b4c3d2e}".parse().unwrap()
    }

    #[test]
    fn a_dial_and_an_accept_agree_on_the_smaller_limit() {
        let bob = peer(2);
        let (mut opener, hello) = DirectProtocol::dial(&bob, 1000);
        assert_eq!(opener.max_send(), None);
        let (mut acceptor, welcome) = DirectProtocol::accept(&bob, 600, &hello).unwrap();
        assert_eq!(acceptor.max_send(), Some(600));
        assert_eq!(
            opener.on_frame(&welcome),
            Ok(Received::Established { max_send: 600 })
        );
        let frame = wire::encode_data(data_type(), &[7; 600]);
        match acceptor.on_frame(&frame) {
            Ok(Received::Data { data, .. }) => assert_eq!(data.len(), 600),
            other => panic!("{other:?}"),
        }
        // The opener announced 1000: 601 bytes are within it.
        let frame = wire::encode_data(data_type(), &[7; 601]);
        assert!(matches!(opener.on_frame(&frame), Ok(Received::Data { .. })));
        // The acceptor announced 600.
        assert_eq!(
            acceptor.on_frame(&frame),
            Err(ProtocolError::DataTooLarge { len: 601, max: 600 })
        );
        assert!(acceptor.has_failed());
    }

    #[test]
    fn frames_out_of_place_fail_the_machine_for_good() {
        let bob = peer(2);
        let (_, hello) = DirectProtocol::dial(&bob, 100);
        let data = wire::encode_data(data_type(), b"x");
        // The acceptor: a hello for someone else, or anything else first.
        assert_eq!(
            DirectProtocol::accept(&peer(3), 100, &hello).err(),
            Some(ProtocolError::WrongTarget(bob.clone()))
        );
        assert!(matches!(
            DirectProtocol::accept(&bob, 100, &data),
            Err(ProtocolError::Unexpected(_))
        ));
        assert_eq!(
            DirectProtocol::accept(&bob, 100, &Bytes::new()).err(),
            Some(ProtocolError::Empty)
        );
        // The opener: data before the welcome, then even a good welcome is refused.
        let (mut opener, _) = DirectProtocol::dial(&bob, 100);
        assert!(opener.on_frame(&data).is_err());
        let welcome = wire::encode_welcome(&DirectWelcome { max_data: 50 });
        assert!(opener.on_frame(&welcome).is_err());
        assert_eq!(opener.max_send(), None);
        // Established: a second hello or welcome.
        let (mut acceptor, _) = DirectProtocol::accept(&bob, 100, &hello).unwrap();
        assert!(matches!(
            acceptor.on_frame(&hello),
            Err(ProtocolError::Unexpected("a second hello"))
        ));
        assert!(acceptor.on_frame(&data).is_err());
    }

    #[test]
    fn a_limit_beyond_usize_is_ours() {
        let bob = peer(2);
        let (mut opener, _) = DirectProtocol::dial(&bob, 100);
        let welcome = wire::encode_welcome(&DirectWelcome { max_data: u64::MAX });
        assert_eq!(
            opener.on_frame(&welcome),
            Ok(Received::Established { max_send: 100 })
        );
    }
}
