//! Bodies of the fuzz targets in `fuzz/`, public so the seed corpus also runs as a test.

pub use crate::reconcile::fuzz::reconcile_messages;
pub use crate::search::fuzz::{attributes_xml, search_xml};

/// Record decoding: arbitrary bytes either fail to decode or decode to a record whose
/// canonical encoding is exactly the input, and whose signed bytes can be computed.
pub fn record_decode(data: &[u8]) {
    if let Ok(record) = crate::codec::decode(data) {
        assert_eq!(
            crate::codec::encode(&record),
            data,
            "decoding is not canonical"
        );
        let _ = record.signed_bytes(&record.creator);
        let _ = record.item_key();
    }
}
