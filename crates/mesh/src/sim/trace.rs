//! The simulator's trace hash: everything every node did, folded into 64 bits, so a test can
//! tell that two runs of one seed were the same run, not only alike in their figures.

use peergroup_identity::Timestamp;

use crate::core::Output;
use crate::time::Mono;

/// FNV-1a over the trace (stable across Rust releases, unlike the standard hasher).
#[derive(Debug)]
pub(super) struct Trace(u64);

impl Default for Trace {
    fn default() -> Self {
        Trace(0xcbf2_9ce4_8422_2325)
    }
}

impl Trace {
    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn u64(&mut self, n: u64) {
        self.bytes(&n.to_le_bytes());
    }

    /// One pump of node `node`: at `now`, what it output, the records delivered to it (item
    /// keys) and the timer it asked for.
    pub(super) fn node(
        &mut self,
        now: Timestamp,
        node: usize,
        incarnation: u32,
        outputs: &[Output],
        delivered: &[u64],
        timer: Option<Mono>,
    ) {
        self.u64(now.as_millis());
        self.u64(node as u64);
        self.u64(u64::from(incarnation));
        for o in outputs {
            match o {
                Output::Send { conn, message } => {
                    self.u64(1);
                    self.u64(conn.0);
                    // Messages are plain data: their encoding cannot fail; a failure would
                    // still change the hash.
                    match postcard::to_allocvec(message) {
                        Ok(bytes) => self.bytes(&bytes),
                        Err(_) => self.u64(u64::MAX),
                    }
                }
                Output::Connect { addr } => {
                    self.u64(2);
                    self.bytes(addr.to_string().as_bytes());
                }
                Output::Close { conn } => {
                    self.u64(3);
                    self.u64(conn.0);
                }
                Output::Punch { addr, .. } => {
                    self.u64(5);
                    self.bytes(addr.to_string().as_bytes());
                }
                Output::RelayStream { circuit, .. }
                | Output::RelayData { circuit, .. }
                | Output::RelayCredit { circuit, .. }
                | Output::RelayClosed { circuit } => {
                    self.u64(6);
                    self.u64(circuit.id);
                }
            }
        }
        for key in delivered {
            self.u64(4);
            self.u64(*key);
        }
        self.u64(timer.map_or(u64::MAX, |t| t.as_millis()));
    }

    pub(super) fn finish(&self) -> u64 {
        self.0
    }
}
