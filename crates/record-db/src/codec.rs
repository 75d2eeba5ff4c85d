//! The canonical encoding of a record: one format-version byte, then postcard.
//!
//! The same bytes travel on the wire, sit in the store and (minus the signature, plus a
//! context string and the group name) are what the modifier signs. Decoding refuses an
//! unknown version byte, anything postcard cannot read, and trailing bytes.

use crate::error::DecodeError;
use crate::record::Record;

/// The current format version.
pub const FORMAT_VERSION: u8 = 1;
/// The largest encoded record accepted (the largest allowed max record size plus headroom).
pub const MAX_ENCODED_LEN: usize = 64 * 1024 * 1024 + 64 * 1024;

/// Encodes a record.
pub fn encode(record: &Record) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.payload.len() + record.attributes.len() + 256);
    out.push(FORMAT_VERSION);
    // Serialising plain data into a Vec cannot fail.
    postcard::to_extend(record, out).unwrap_or_else(|_| vec![FORMAT_VERSION])
}

/// The length of [`encode`]'s output, without encoding.
pub fn encoded_len(record: &Record) -> usize {
    // Serialising plain data cannot fail.
    1 + postcard::experimental::serialized_size(record).unwrap_or(0)
}

/// Decodes a record, refusing anything that is not exactly one canonical record.
pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.len() > MAX_ENCODED_LEN {
        return Err(DecodeError::TooLarge(bytes.len()));
    }
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion(version));
    }
    let (record, rest): (Record, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    // postcard accepts over-long varints; the canonical form is the only one we take, so a
    // record has exactly one encoding.
    if encode(&record) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(record)
}
