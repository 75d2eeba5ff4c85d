//! Writes the seed corpus of the `record_decode` fuzz target into `fuzz/seeds/record_decode/`.
//!
//! ```text
//! cargo run -p peergroup-record-db --example write_seeds -- <repository root>
//! ```

use std::path::Path;

use peergroup_identity::{Classifier, KeyPair, PeerName, Signature, Timestamp};
use peergroup_record_db::{Record, RecordFlags, RecordId, RecordType, SecurityData, codec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::args()
        .nth(1)
        .ok_or("usage: write_seeds <repository root>")?;
    let dir = Path::new(&root).join("fuzz/seeds/record_decode");
    std::fs::create_dir_all(&dir)?;
    let key = KeyPair::from_test_seed(1);
    let creator = PeerName::new(&key.public(), Classifier::new("alice")?);
    let group = PeerName::new(
        &KeyPair::from_test_seed(2).public(),
        Classifier::new("group")?,
    );
    let mut r = Record {
        record_type: "6f1c2a3b-4d5e-4f60-8a9b-0c1d2e3f4a5b".parse()?,
        id: RecordId::derive(&creator, [1; 8]),
        version: 1,
        flags: RecordFlags::default(),
        creator: creator.clone(),
        modified_by: None,
        attributes:
            r#"<attributes><attribute name="Owner" type="string">Alice</attribute></attributes>"#
                .into(),
        created: Timestamp::from_secs(1_800_000_000),
        expires: Timestamp::from_secs(1_800_086_400),
        last_modified: Timestamp::from_secs(1_800_000_000),
        payload: b"hello".to_vec(),
        security: SecurityData {
            creator_serial: vec![1; 16],
            modifier_serial: vec![1; 16],
            signature: Signature::from_bytes([0; 64]),
        },
    };
    r.security.signature = key.sign(&r.signed_bytes(&group));
    std::fs::write(dir.join("valid-record.bin"), codec::encode(&r))?;
    let mut u = r.clone();
    u.version = 2;
    u.modified_by = Some(creator);
    u.flags = RecordFlags::default().with_deleted(true);
    u.payload.clear();
    u.attributes.clear();
    u.record_type = RecordType::PRESENCE;
    std::fs::write(dir.join("valid-tombstone.bin"), codec::encode(&u))?;
    let bytes = codec::encode(&r);
    std::fs::write(dir.join("invalid-truncated.bin"), &bytes[..bytes.len() / 2])?;
    let mut v = bytes.clone();
    v[0] = 9;
    std::fs::write(dir.join("invalid-version.bin"), v)?;
    std::fs::write(dir.join("invalid-empty.bin"), b"")?;
    Ok(())
}
