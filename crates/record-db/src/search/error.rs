//! The error type of the search module.

use std::fmt;

/// Which of the two formats a problem was found in.
///
/// Attribute XML problems correspond to Windows `PEER_E_INVALID_ATTRIBUTES`, search query
/// problems to `PEER_E_INVALID_SEARCH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Document {
    /// Record attribute XML (`<attributes>…</attributes>`), or an attribute list being built.
    Attributes,
    /// Search query XML (`<peersearch>…</peersearch>`), or a query being built.
    Query,
}

impl fmt::Display for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Document::Attributes => "invalid attribute XML",
            Document::Query => "invalid search query",
        })
    }
}

/// Windows `PEER_E_INVALID_ATTRIBUTES`.
pub const PEER_E_INVALID_ATTRIBUTES: u32 = 0x8063_0602;
/// Windows `PEER_E_INVALID_SEARCH`.
pub const PEER_E_INVALID_SEARCH: u32 = 0x8063_0601;
/// Windows `PEER_E_TOO_MANY_ATTRIBUTES`.
pub const PEER_E_TOO_MANY_ATTRIBUTES: u32 = 0x8063_0017;
/// Windows `E_INVALIDARG`, which Windows returns for a bad backslash escape in a query.
pub const E_INVALIDARG: u32 = 0x8007_0057;

/// Why attribute XML or a search query was refused.
///
/// Every problem comes from outside (a record received from a peer, a query typed by a user)
/// or from a caller building a value that the format cannot carry. `line` fields are 1-based
/// line numbers in the XML text; `0` means the value was built in code, not parsed. Untrusted
/// text quoted in a message is shortened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The XML text is longer than the limit, or its canonical form would be.
    #[error("{doc}: {size} bytes, the limit is {limit}")]
    TooLarge {
        /// The format.
        doc: Document,
        /// The size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The text is not well-formed XML, or uses an XML feature we refuse (DOCTYPE, entities
    /// other than the five predefined ones, processing instructions, content after the root).
    #[error("{doc}{}: malformed XML: {reason}", at_line(*line))]
    Syntax {
        /// The format.
        doc: Document,
        /// Line of the problem (1-based).
        line: usize,
        /// What was wrong.
        reason: String,
    },
    /// Well-formed XML that does not follow the format: wrong root, unknown element or
    /// attribute, missing attribute, wrong number of children, unknown type or compare.
    #[error("{doc}{}: {reason}", at_line(*line))]
    Schema {
        /// The format.
        doc: Document,
        /// Line of the offending element (1-based; 0 when built in code).
        line: usize,
        /// What was wrong, naming the element or attribute.
        reason: String,
    },
    /// An attribute name that is not 1 to 40 ASCII letters and digits.
    #[error(
        "{doc}{}: bad attribute name {name:?}: names are 1 to 40 ASCII letters and digits",
        at_line(*line)
    )]
    BadName {
        /// The format.
        doc: Document,
        /// Line (1-based; 0 when built in code).
        line: usize,
        /// The name (shortened).
        name: String,
    },
    /// An application attribute uses one of the reserved `peer*` names, which describe the
    /// record itself: they may be searched but not set.
    #[error(
        "invalid attribute XML{}: attribute name {name:?} is reserved for the record's own \
         fields; it can be searched but not set",
        at_line(*line)
    )]
    ReservedName {
        /// Line (1-based; 0 when built in code).
        line: usize,
        /// The name as written.
        name: String,
    },
    /// An `int` value that is not an optional `-` and decimal digits fitting in an `i64`.
    #[error("{doc}{}: bad int {text:?}: {reason}", at_line(*line))]
    BadInt {
        /// The format.
        doc: Document,
        /// Line (1-based).
        line: usize,
        /// The text (shortened).
        text: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// A `date` value that is not a supported W3C date-time, or outside 1970..=9999.
    #[error("{doc}{}: bad date {text:?}: {reason}", at_line(*line))]
    BadDate {
        /// The format.
        doc: Document,
        /// Line (1-based; 0 when built in code).
        line: usize,
        /// The text (shortened), or the timestamp in milliseconds when built in code.
        text: String,
        /// What was wrong.
        reason: &'static str,
    },
    /// A character XML 1.0 cannot carry (not even as a character reference), e.g. U+0000.
    #[error("{doc}{}: character U+{code:04X} cannot appear in XML", at_line(*line))]
    IllegalCharacter {
        /// The format.
        doc: Document,
        /// Line (1-based; 0 when built in code).
        line: usize,
        /// The code point.
        code: u32,
    },
    /// More attributes than [`crate::search::MAX_ATTRIBUTES`].
    #[error("invalid attribute XML: more than {limit} attributes")]
    TooManyAttributes {
        /// The limit.
        limit: usize,
    },
    /// `and`/`or` groups nested deeper than [`crate::search::MAX_QUERY_DEPTH`].
    #[error("invalid search query: and/or groups nest deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A backslash in a string clause value not followed by `*`, `?` or `\`.
    #[error(
        "invalid search query{}: bad escape `{sequence}` at character {position} of clause \
         value {value:?}: only \\*, \\? and \\\\ are allowed",
        at_line(*line)
    )]
    BadEscape {
        /// Line (1-based; 0 when built in code).
        line: usize,
        /// Position of the backslash, counted in characters from 1.
        position: usize,
        /// The offending sequence (a lone `\` at the end of the value).
        sequence: String,
        /// The clause value (shortened).
        value: String,
    },
}

impl SearchError {
    /// The format the problem was found in.
    pub fn document(&self) -> Document {
        match self {
            SearchError::TooLarge { doc, .. }
            | SearchError::Syntax { doc, .. }
            | SearchError::Schema { doc, .. }
            | SearchError::BadName { doc, .. }
            | SearchError::BadInt { doc, .. }
            | SearchError::BadDate { doc, .. }
            | SearchError::IllegalCharacter { doc, .. } => *doc,
            SearchError::ReservedName { .. } | SearchError::TooManyAttributes { .. } => {
                Document::Attributes
            }
            SearchError::TooDeep { .. } | SearchError::BadEscape { .. } => Document::Query,
        }
    }

    /// Whether this is an attribute problem (Windows `PEER_E_INVALID_ATTRIBUTES`).
    pub fn is_invalid_attributes(&self) -> bool {
        self.document() == Document::Attributes
    }

    /// Whether this is a query problem (Windows `PEER_E_INVALID_SEARCH`).
    pub fn is_invalid_search(&self) -> bool {
        self.document() == Document::Query
    }

    /// The Windows HRESULT for this problem: [`PEER_E_INVALID_ATTRIBUTES`] or
    /// [`PEER_E_INVALID_SEARCH`], except [`PEER_E_TOO_MANY_ATTRIBUTES`] for too many
    /// attributes and [`E_INVALIDARG`] for a bad escape, as Windows does.
    pub fn windows_code(&self) -> u32 {
        match self {
            SearchError::TooManyAttributes { .. } => PEER_E_TOO_MANY_ATTRIBUTES,
            SearchError::BadEscape { .. } => E_INVALIDARG,
            other => match other.document() {
                Document::Attributes => PEER_E_INVALID_ATTRIBUTES,
                Document::Query => PEER_E_INVALID_SEARCH,
            },
        }
    }
}

fn at_line(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" at line {line}")
    }
}

/// Untrusted text for an error message: at most 64 characters.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 64;
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_place_and_the_format() {
        let e = SearchError::BadInt {
            doc: Document::Attributes,
            line: 3,
            text: "x".into(),
            reason: "not digits",
        };
        assert_eq!(
            e.to_string(),
            "invalid attribute XML at line 3: bad int \"x\": not digits"
        );
        assert!(e.is_invalid_attributes() && !e.is_invalid_search());
        assert_eq!(e.windows_code(), PEER_E_INVALID_ATTRIBUTES);
        let e = SearchError::BadEscape {
            line: 0,
            position: 2,
            sequence: "\\x".into(),
            value: "a\\x".into(),
        };
        assert!(
            e.to_string()
                .starts_with("invalid search query: bad escape `\\x` at character 2")
        );
        assert!(e.is_invalid_search());
        assert_eq!(e.windows_code(), E_INVALIDARG);
        assert_eq!(
            SearchError::TooManyAttributes { limit: 1 }.windows_code(),
            PEER_E_TOO_MANY_ATTRIBUTES
        );
        assert_eq!(
            SearchError::TooDeep { limit: 1 }.windows_code(),
            PEER_E_INVALID_SEARCH
        );
    }

    #[test]
    fn shorten_cuts_on_a_char_boundary() {
        let long = "é".repeat(100);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), 65);
        assert!(s.ends_with('…'));
        assert_eq!(shorten("abc"), "abc");
    }
}
