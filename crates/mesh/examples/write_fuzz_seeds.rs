//! Writes the seed corpus of the `mesh_core` fuzz target into `fuzz/seeds/mesh_core/`:
//! sequences of `[op, len_hi, len_lo, bytes…]` items (see `fuzz_targets::mesh_core`).
//!
//! ```text
//! cargo run -p peergroup-mesh --example write_fuzz_seeds -- <repository root>
//! ```

use std::path::Path;

use peergroup_identity::Timestamp;
use peergroup_mesh::{MeshMessage, NodeId, Reason};

fn item(op: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![op, (bytes.len() >> 8) as u8, bytes.len() as u8];
    out.extend_from_slice(bytes);
    out
}

/// `op`: bit 0 = connection (0: dialed, 1: accepted), bits 1–3 = action (0–3 message,
/// 4 flush, 5 timer, 6 disconnect, 7 reconnect), bits 4–7 = time step.
fn msg(accepted: bool, m: &MeshMessage) -> Vec<u8> {
    item(u8::from(accepted), &m.encode())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: write_fuzz_seeds <repository root>")?;
    let dir = Path::new(&root).join("fuzz/seeds/mesh_core");
    std::fs::create_dir_all(&dir)?;
    let flush = item(4 << 1, &[]);
    let timer = item(0xf0 | 5 << 1, &[]);
    let hello = MeshMessage::Hello {
        node: NodeId(2),
        listen: vec!["127.0.0.1:4000".parse()?],
    };
    let welcome = MeshMessage::Welcome {
        node: NodeId(3),
        listen: vec![],
        peer_time: Timestamp::from_secs(1_800_000_100),
        referrals: vec!["127.0.0.1:4001".parse()?],
    };
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "handshakes",
            [msg(true, &hello), msg(false, &welcome), flush.clone()].concat(),
        ),
        (
            "gossip",
            [
                msg(false, &welcome),
                msg(false, &MeshMessage::IHave(vec![1, 2, 3])),
                timer.clone(),
                msg(
                    false,
                    &MeshMessage::Graft {
                        keys: vec![9],
                        eager: true,
                    },
                ),
                msg(false, &MeshMessage::Prune),
                flush.clone(),
            ]
            .concat(),
        ),
        (
            "leaving",
            [
                msg(true, &hello),
                msg(
                    true,
                    &MeshMessage::Disconnect {
                        reason: Reason::Leaving,
                        referrals: vec![],
                    },
                ),
                item(6 << 1, &[]),
            ]
            .concat(),
        ),
        (
            "garbage",
            [item(0, &[0xff, 0, 1]), item(1, &[1, 200, 7]), flush].concat(),
        ),
        (
            "sync-request",
            [
                msg(true, &hello),
                msg(true, &MeshMessage::SyncRequest),
                timer,
            ]
            .concat(),
        ),
    ];
    for (name, bytes) in seeds {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    Ok(())
}
