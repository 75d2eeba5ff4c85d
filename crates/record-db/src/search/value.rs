//! Attribute names, value types and values.

use std::fmt;
use std::str::FromStr;

use peergroup_identity::Timestamp;

use super::error::{Document, SearchError, shorten};

/// The longest attribute name, in characters.
pub const MAX_NAME_LEN: usize = 40;

/// An attribute name: 1 to [`MAX_NAME_LEN`] ASCII letters and digits (`[0-9a-zA-Z]`).
///
/// The name keeps the case it was written in (so XML round-trips exactly), but names are
/// *compared* ASCII-case-insensitively when looking attributes up or matching a query clause
/// (see [`AttributeName::matches`]): Windows treats the reserved names case-insensitively, and
/// one rule for all names is easier to reason about than two.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttributeName(String);

impl AttributeName {
    /// Checks the syntax of `name`. Reserved names are accepted here (a query may search
    /// them); [`crate::search::Attributes`] refuses them. Errors are reported as attribute
    /// problems; query parsing reports the same problem as a search problem.
    pub fn new(name: &str) -> Result<Self, SearchError> {
        Self::parse_in(name, Document::Attributes, 0)
    }

    pub(crate) fn parse_in(name: &str, doc: Document, line: usize) -> Result<Self, SearchError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_alphanumeric());
        if ok {
            Ok(AttributeName(name.to_owned()))
        } else {
            Err(SearchError::BadName {
                doc,
                line,
                name: shorten(name),
            })
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this names the same attribute as `other` (ASCII case-insensitive).
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }

    /// The record field this name stands for, if it is one of the reserved `peer*` names.
    pub fn reserved(&self) -> Option<ReservedName> {
        ReservedName::ALL
            .into_iter()
            .find(|r| self.matches(r.as_str()))
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for AttributeName {
    type Err = SearchError;

    fn from_str(s: &str) -> Result<Self, SearchError> {
        AttributeName::new(s)
    }
}

impl AsRef<str> for AttributeName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The reserved attribute names: the record's own fields. They cannot be set as application
/// attributes but can be searched (matched case-insensitively).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReservedName {
    /// `peerlastmodifiedby`: the peer name of the last modifier (a string; empty when the
    /// record was never modified).
    LastModifiedBy,
    /// `peercreatorid`: the creator's peer name (a string).
    CreatorId,
    /// `peerlastmodificationtime`: when the record was last modified (a date).
    LastModificationTime,
    /// `peerrecordid`: the record id, braced lower-case GUID text (a string).
    RecordId,
    /// `peerrecordtype`: the record type, braced lower-case GUID text (a string).
    RecordType,
    /// `peercreationtime`: when the record was created (a date).
    CreationTime,
}

impl ReservedName {
    /// Every reserved name.
    pub const ALL: [ReservedName; 6] = [
        ReservedName::LastModifiedBy,
        ReservedName::CreatorId,
        ReservedName::LastModificationTime,
        ReservedName::RecordId,
        ReservedName::RecordType,
        ReservedName::CreationTime,
    ];

    /// The name in its documented (lower-case) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservedName::LastModifiedBy => "peerlastmodifiedby",
            ReservedName::CreatorId => "peercreatorid",
            ReservedName::LastModificationTime => "peerlastmodificationtime",
            ReservedName::RecordId => "peerrecordid",
            ReservedName::RecordType => "peerrecordtype",
            ReservedName::CreationTime => "peercreationtime",
        }
    }

    /// The type of the field: dates for the two times, strings for the rest.
    pub fn value_type(self) -> ValueType {
        match self {
            ReservedName::LastModificationTime | ReservedName::CreationTime => ValueType::Date,
            _ => ValueType::String,
        }
    }
}

/// The type of an attribute value or of a clause: the XML `type="…"` attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// `string`: any text.
    String,
    /// `int`: a signed 64-bit integer.
    Int,
    /// `date`: a W3C date-time.
    Date,
}

impl ValueType {
    /// The XML keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::Date => "date",
        }
    }

    /// Reads the XML keyword (ASCII case-insensitive).
    pub(crate) fn from_keyword(s: &str) -> Option<Self> {
        [ValueType::String, ValueType::Int, ValueType::Date]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    /// A `string` value, kept exactly (white space included).
    String(String),
    /// An `int` value.
    Int(i64),
    /// A `date` value, at most [`crate::search::MAX_DATE`].
    Date(Timestamp),
}

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::String(_) => ValueType::String,
            Value::Int(_) => ValueType::Int,
            Value::Date(_) => ValueType::Date,
        }
    }
}

/// Parses an `int`: an optional `-` then one or more ASCII digits (leading zeros allowed,
/// `-0` is 0), fitting in an `i64`. No `+`, no white space.
pub(crate) fn parse_int(text: &str) -> Result<i64, &'static str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() {
        return Err("expected decimal digits");
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an int is an optional '-' followed by decimal digits only");
    }
    text.parse::<i64>()
        .map_err(|_| "out of range for a 64-bit signed integer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(AttributeName::new("Owner").is_ok());
        assert!(AttributeName::new("a1").is_ok());
        assert!(AttributeName::new(&"x".repeat(40)).is_ok());
        for bad in ["", "a-b", "a_b", "a b", "é", "a.b", &"x".repeat(41)] {
            assert!(
                matches!(AttributeName::new(bad), Err(SearchError::BadName { .. })),
                "{bad:?}"
            );
        }
        let n: AttributeName = "PeerCreatorID".parse().unwrap();
        assert_eq!(n.reserved(), Some(ReservedName::CreatorId));
        assert_eq!(n.to_string(), "PeerCreatorID");
        assert!(n.matches("peercreatorid"));
        assert_eq!(AttributeName::new("peer").unwrap().reserved(), None);
        for r in ReservedName::ALL {
            assert_eq!(AttributeName::new(r.as_str()).unwrap().reserved(), Some(r));
        }
    }

    #[test]
    fn ints() {
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("-0"), Ok(0));
        assert_eq!(parse_int("007"), Ok(7));
        assert_eq!(parse_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert!(
            parse_int("9223372036854775808")
                .unwrap_err()
                .contains("out of range")
        );
        assert!(
            parse_int("-9223372036854775809")
                .unwrap_err()
                .contains("out of range")
        );
        for bad in ["", "-", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "--1", "١"] {
            assert!(parse_int(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn type_keywords() {
        assert_eq!(ValueType::from_keyword("INT"), Some(ValueType::Int));
        assert_eq!(ValueType::from_keyword("Date"), Some(ValueType::Date));
        assert_eq!(ValueType::from_keyword("integer"), None);
    }
}
