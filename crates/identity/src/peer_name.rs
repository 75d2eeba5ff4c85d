//! Secure peer names: `<authority>.<classifier>`.
//!
//! The authority is the first 20 bytes of the SHA-256 of the key's DER
//! SubjectPublicKeyInfo, as 40 lowercase hex digits: whoever holds the key owns every name
//! under that authority, and anyone can check the claim against a certificate. (Windows used
//! SHA-1 over the same bytes; the shape is kept, the hash is modern.)
//!
//! The classifier tells names of the same key apart (an identity, a group). It is 1 to
//! [`Classifier::MAX_LEN`] characters from the alphabet `A–Z a–z 0–9 - _`. Names are
//! case-sensitive in the classifier; the authority is always lowercase.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::key::{PublicKey, sha256};

/// The hash part of a secure peer name: 20 bytes derived from a public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Authority([u8; 20]);

impl Authority {
    /// The authority that `key` owns.
    pub fn of(key: &PublicKey) -> Self {
        let digest = sha256(&key.spki_der());
        let mut a = [0u8; 20];
        a.copy_from_slice(&digest[..20]);
        Authority(a)
    }

    /// The raw 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }
}

impl fmt::Display for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 40];
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Authority({self})")
    }
}

/// The classifier part of a peer name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Classifier(String);

impl Classifier {
    /// Longest classifier, in characters (Windows allowed 149 plus a terminator).
    pub const MAX_LEN: usize = 149;

    /// Checks and wraps a classifier.
    pub fn new(s: &str) -> Result<Self, Error> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if s.is_empty() || s.len() > Self::MAX_LEN || !s.chars().all(ok_char) {
            return Err(Error::InvalidClassifier(truncate_for_message(s)));
        }
        Ok(Classifier(s.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Classifier({:?})", self.0)
    }
}

impl FromStr for Classifier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Classifier::new(s)
    }
}

/// A secure peer name such as `3f1c…9a2b.alice`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerName {
    authority: Authority,
    classifier: Classifier,
}

impl PeerName {
    /// Longest text form: 40 hex digits, a dot, the classifier.
    pub const MAX_LEN: usize = 41 + Classifier::MAX_LEN;

    /// The name `key` owns under `classifier`.
    pub fn new(key: &PublicKey, classifier: Classifier) -> Self {
        PeerName {
            authority: Authority::of(key),
            classifier,
        }
    }

    /// Builds a name from its parts.
    pub fn from_parts(authority: Authority, classifier: Classifier) -> Self {
        PeerName {
            authority,
            classifier,
        }
    }

    /// The hash part.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The classifier part.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// Whether `key` owns this name.
    pub fn is_owned_by(&self, key: &PublicKey) -> bool {
        self.authority == Authority::of(key)
    }
}

impl fmt::Display for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.authority, self.classifier)
    }
}

impl fmt::Debug for PeerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerName({self})")
    }
}

impl FromStr for PeerName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::InvalidPeerName(truncate_for_message(s));
        let (hash, classifier) = s.split_once('.').ok_or_else(bad)?;
        if hash.len() != 40 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut a = [0u8; 20];
        hex::decode_to_slice(hash, &mut a).map_err(|_| bad())?;
        let classifier = Classifier::new(classifier).map_err(|_| bad())?;
        Ok(PeerName {
            authority: Authority(a),
            classifier,
        })
    }
}

impl Serialize for PeerName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Shortens untrusted text before it goes into an error message.
pub(crate) fn truncate_for_message(s: &str) -> String {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyPair;
    use proptest::prelude::*;

    #[test]
    fn name_of_key() {
        let kp = KeyPair::from_test_seed(1);
        let name = PeerName::new(&kp.public(), Classifier::new("alice").unwrap());
        let text = name.to_string();
        assert_eq!(text.len(), 40 + 1 + 5);
        assert!(text.ends_with(".alice"));
        assert!(name.is_owned_by(&kp.public()));
        assert!(!name.is_owned_by(&KeyPair::from_test_seed(2).public()));
        assert_eq!(text.parse::<PeerName>().unwrap(), name);
    }

    #[test]
    fn rejects_bad_names() {
        let good = "0123456789abcdef0123456789abcdef01234567";
        for bad in [
            "",
            "nodot",
            &format!("{good}."),
            &format!("{}.x", &good[..39]),
            &format!("{}A.x", &good[..39]),
            &format!("{good}.has space"),
            &format!("{good}.dot.ted"),
            &format!("{good}.{}", "c".repeat(150)),
            &format!("{good}.é"),
        ] {
            assert!(bad.parse::<PeerName>().is_err(), "{bad:?} parsed");
        }
        assert!(
            format!("{good}.{}", "c".repeat(149))
                .parse::<PeerName>()
                .is_ok()
        );
        // The HomeGroup classifier from a real Windows invitation.
        assert!(
            "2bcba40abd09492eb706b74f8f8932a6efb10979.HomeGroupPeerGroupClassifier"
                .parse::<PeerName>()
                .is_ok()
        );
    }

    proptest! {
        #[test]
        fn text_round_trip(a in proptest::array::uniform20(any::<u8>()),
                           c in "[A-Za-z0-9_-]{1,149}") {
            let name = PeerName::from_parts(Authority(a), Classifier::new(&c).unwrap());
            let parsed: PeerName = name.to_string().parse().unwrap();
            prop_assert_eq!(&parsed, &name);
            prop_assert_eq!(parsed.to_string(), name.to_string());
        }

        #[test]
        fn parse_never_panics(s in ".{0,300}") {
            let _ = s.parse::<PeerName>();
        }
    }
}
