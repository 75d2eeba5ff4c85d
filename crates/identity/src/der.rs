//! A small DER writer and reader for the parts of X.509 we write ourselves.
//!
//! rcgen and x509-cert store OID arcs as `u64`/`u32`, so neither can express our extension
//! OIDs under a UUID arc (`2.25.<128-bit integer>`, ITU-T X.667). The writer here encodes
//! arcs of any size; parsing of whole certificates is left to `x509-parser`, whose OIDs are
//! raw bytes. The reader is for the contents of our own extensions.

use crate::error::Error;
use crate::time::Timestamp;

/// ASN.1 universal tags used here.
pub mod tag {
    /// BOOLEAN
    pub const BOOLEAN: u8 = 0x01;
    /// INTEGER
    pub const INTEGER: u8 = 0x02;
    /// BIT STRING
    pub const BIT_STRING: u8 = 0x03;
    /// OCTET STRING
    pub const OCTET_STRING: u8 = 0x04;
    /// OBJECT IDENTIFIER
    pub const OID: u8 = 0x06;
    /// ENUMERATED
    pub const ENUMERATED: u8 = 0x0a;
    /// UTF8String
    pub const UTF8_STRING: u8 = 0x0c;
    /// UTCTime
    pub const UTC_TIME: u8 = 0x17;
    /// GeneralizedTime
    pub const GENERALIZED_TIME: u8 = 0x18;
    /// SEQUENCE (constructed)
    pub const SEQUENCE: u8 = 0x30;
    /// SET (constructed)
    pub const SET: u8 = 0x31;
}

/// One TLV: `tag`, definite length, `content`.
pub fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A SEQUENCE of already-encoded parts.
pub fn sequence(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SEQUENCE, &parts.concat())
}

/// A SET of already-encoded parts, in the order given.
pub fn set(parts: &[&[u8]]) -> Vec<u8> {
    tlv(tag::SET, &parts.concat())
}

/// A context-specific constructed (EXPLICIT) tag `[n]` around `content`.
pub fn explicit(n: u8, content: &[u8]) -> Vec<u8> {
    tlv(0xa0 | n, content)
}

/// A non-negative INTEGER from big-endian magnitude bytes.
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: &[u8] = {
        let skip = magnitude.iter().take_while(|b| **b == 0).count();
        &magnitude[skip..]
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    tlv(tag::INTEGER, &content)
}

/// A small INTEGER.
pub fn integer(n: u64) -> Vec<u8> {
    unsigned_integer(&n.to_be_bytes())
}

/// The content octets of an OID with arcs of any size (up to 128 bits).
pub fn oid_content(arcs: &[u128]) -> Vec<u8> {
    let mut out = Vec::new();
    let (first, second) = (
        arcs.first().copied().unwrap_or(0),
        arcs.get(1).copied().unwrap_or(0),
    );
    push_base128(&mut out, first * 40 + second);
    for &arc in arcs.iter().skip(2) {
        push_base128(&mut out, arc);
    }
    out
}

fn push_base128(out: &mut Vec<u8>, mut v: u128) {
    let mut tmp = [0u8; 19];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            break;
        }
    }
    let last = tmp.len() - 1;
    for (j, b) in tmp.iter().enumerate().skip(i) {
        out.push(if j == last { *b } else { b | 0x80 });
    }
}

/// An OBJECT IDENTIFIER TLV from content octets.
pub fn oid(content: &[u8]) -> Vec<u8> {
    tlv(tag::OID, content)
}

/// A UTF8String.
pub fn utf8(s: &str) -> Vec<u8> {
    tlv(tag::UTF8_STRING, s.as_bytes())
}

/// An OCTET STRING.
pub fn octet_string(b: &[u8]) -> Vec<u8> {
    tlv(tag::OCTET_STRING, b)
}

/// A BIT STRING with no unused bits.
pub fn bit_string(b: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(b.len() + 1);
    content.push(0);
    content.extend_from_slice(b);
    tlv(tag::BIT_STRING, &content)
}

/// A BOOLEAN.
pub fn boolean(v: bool) -> Vec<u8> {
    tlv(tag::BOOLEAN, &[if v { 0xff } else { 0 }])
}

/// An X.509 Time: UTCTime for 1950–2049, GeneralizedTime otherwise (RFC 5280 §4.1.2.5).
pub fn x509_time(t: Timestamp) -> Vec<u8> {
    let secs = i64::try_from(t.as_secs()).unwrap_or(i64::MAX);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs)
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC));
    let (y, mo, d) = (dt.year(), u8::from(dt.month()), dt.day());
    let (h, mi, s) = (dt.hour(), dt.minute(), dt.second());
    if (1950..2050).contains(&y) {
        let text = format!("{:02}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z", y % 100);
        tlv(tag::UTC_TIME, text.as_bytes())
    } else {
        let text = format!("{y:04}{mo:02}{d:02}{h:02}{mi:02}{s:02}Z");
        tlv(tag::GENERALIZED_TIME, text.as_bytes())
    }
}

/// Reads DER TLVs from a byte slice, refusing anything malformed.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// Whether everything has been read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The tag of the next TLV, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.first().copied()
    }

    /// Reads one TLV, which must carry `expected` as its tag, and returns its content.
    pub fn read(&mut self, expected: u8) -> Result<&'a [u8], Error> {
        self.read_content(expected)
    }

    /// Reads one TLV with tag `expected` and returns the whole encoding (tag, length, content).
    pub fn read_tlv(&mut self, expected: u8) -> Result<&'a [u8], Error> {
        let start = self.data;
        self.read_content(expected)?;
        Ok(&start[..start.len() - self.data.len()])
    }

    fn read_content(&mut self, expected: u8) -> Result<&'a [u8], Error> {
        let bad = |why: &str| Error::MalformedDer(why.to_owned());
        let (&tag, rest) = self
            .data
            .split_first()
            .ok_or_else(|| bad("unexpected end"))?;
        if tag != expected {
            return Err(bad(&format!(
                "expected tag {expected:#04x}, found {tag:#04x}"
            )));
        }
        let (&first, rest) = rest.split_first().ok_or_else(|| bad("missing length"))?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return Err(bad("bad length"));
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            if len < 0x80 || rest[0] == 0 {
                return Err(bad("non-minimal length"));
            }
            (len, &rest[n..])
        };
        if rest.len() < len {
            return Err(bad("content runs past the end"));
        }
        let (content, rest) = rest.split_at(len);
        self.data = rest;
        Ok(content)
    }

    /// Fails unless everything has been read.
    pub fn finish(self) -> Result<(), Error> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(Error::MalformedDer("trailing bytes".to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_encoding_matches_known_values() {
        // 1.3.101.112 (Ed25519) = 06 03 2b 65 70
        assert_eq!(
            oid(&oid_content(&[1, 3, 101, 112])),
            [0x06, 0x03, 0x2b, 0x65, 0x70]
        );
        // 2.25 UUID arcs: 2.25.0 and a 128-bit value keep the base-128 continuation bits.
        assert_eq!(oid_content(&[2, 25]), [0x69]);
        let big = oid_content(&[2, 25, u128::MAX]);
        assert_eq!(big.len(), 1 + 19);
        assert_eq!(big[1], 0x83);
        assert_eq!(*big.last().unwrap(), 0x7f);
    }

    #[test]
    fn lengths_and_reader() {
        let long = vec![7u8; 300];
        let enc = octet_string(&long);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut r = Reader::new(&enc);
        assert_eq!(r.read(tag::OCTET_STRING).unwrap(), &long[..]);
        r.finish().unwrap();
        let mut r = Reader::new(&enc[..10]);
        assert!(r.read(tag::OCTET_STRING).is_err());
        let mut r = Reader::new(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]);
        assert!(
            r.read(tag::OCTET_STRING).is_err(),
            "non-minimal length accepted"
        );
    }

    #[test]
    fn integers_are_positive_and_minimal() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(0x80), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0, 1]), [0x02, 0x01, 0x01]);
    }

    #[test]
    fn times() {
        assert_eq!(
            x509_time(Timestamp::from_secs(0)),
            tlv(tag::UTC_TIME, b"700101000000Z")
        );
        assert_eq!(
            x509_time(Timestamp::MAX_X509),
            tlv(tag::GENERALIZED_TIME, b"99991231235959Z")
        );
    }
}
