//! The crate's error type.

/// Why a blob could not be read or a value could not be built.
///
/// Variants are grouped by who is at fault: input that breaks a limit, input that is not
/// well-formed or uses forbidden XML features, input whose structure or values break the
/// format (all of these come from outside: a file, a peer, a user pasting text), and the
/// caller's own mistakes when building a value to write. Untrusted text quoted in a message
/// is shortened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // --- Limits (bad input) --------------------------------------------------------------
    /// The input is larger than [`crate::MAX_INPUT_BYTES`].
    #[error("input is {size} bytes, the limit is {limit}")]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Elements are nested deeper than [`crate::MAX_DEPTH`].
    #[error("element {element} is nested too deep: at most {limit} levels are allowed")]
    TooDeep {
        /// The element that went too deep.
        element: String,
        /// The limit.
        limit: usize,
    },
    /// More elements than [`crate::MAX_ELEMENTS`].
    #[error("the document has more than {limit} elements")]
    TooManyElements {
        /// The limit.
        limit: usize,
    },
    /// More attributes on one element than [`crate::MAX_ATTRIBUTES`].
    #[error("element {element} has more than {limit} attributes")]
    TooManyAttributes {
        /// The element.
        element: String,
        /// The limit.
        limit: usize,
    },
    /// The text of one element is longer than allowed ([`crate::MAX_TEXT_BYTES`], or the
    /// input limit for base64 elements).
    #[error("the text of element {element} is longer than {limit} bytes")]
    TextTooLong {
        /// The element.
        element: String,
        /// The limit.
        limit: usize,
    },
    /// More bootstrap addresses than [`crate::MAX_ADDRESSES`].
    #[error("{count} bootstrap addresses, at most {limit} are allowed")]
    TooManyAddresses {
        /// How many there were (or at least how many were seen).
        count: usize,
        /// The limit.
        limit: usize,
    },

    // --- Not well-formed, or forbidden XML features (bad input) --------------------------
    /// The bytes are not text in a supported encoding.
    #[error("the input is not valid {encoding}")]
    Encoding {
        /// The encoding that was tried (UTF-8 or UTF-16).
        encoding: &'static str,
    },
    /// The XML is not well-formed.
    #[error("malformed XML at byte {position}: {reason}")]
    Syntax {
        /// Byte offset in the (UTF-8) text.
        position: u64,
        /// What the XML reader found.
        reason: String,
    },
    /// The input ends while an element is still open.
    #[error("the XML ends before element {element} is closed (truncated input?)")]
    Truncated {
        /// The innermost open element.
        element: String,
    },
    /// The input holds no element at all.
    #[error("the input holds no XML element")]
    NoRoot,
    /// A document type declaration (`<!DOCTYPE …>`), which could declare entities.
    #[error("document type declarations (<!DOCTYPE …>) are not allowed")]
    DocType,
    /// A processing instruction other than the XML declaration.
    #[error("processing instruction <?{target} …?> is not allowed")]
    ProcessingInstruction {
        /// The instruction's target name.
        target: String,
    },
    /// An entity reference other than the five predefined ones or a character reference.
    #[error(
        "entity reference &{name}; is not allowed: only &lt; &gt; &amp; &apos; &quot; and \
         numeric character references are"
    )]
    EntityReference {
        /// The entity name.
        name: String,
    },
    /// An XML declaration that is not at the very start, not version 1.0, or names an
    /// encoding the text is not in.
    #[error("bad XML declaration: {0}")]
    Declaration(String),
    /// A character XML 1.0 does not allow (control characters, U+FFFE, U+FFFF).
    #[error("character U+{code:04X} is not allowed in XML (in {context})")]
    IllegalCharacter {
        /// The code point.
        code: u32,
        /// Where it was.
        context: String,
    },
    /// Text outside the root element, or anything after it but whitespace.
    #[error("unexpected content outside the root element at byte {position}")]
    ContentOutsideRoot {
        /// Byte offset in the (UTF-8) text.
        position: u64,
    },

    // --- Structure (bad input) -----------------------------------------------------------
    /// The root element is not the one expected.
    #[error("expected root element {expected}, found {found}")]
    WrongRoot {
        /// The expected name.
        expected: &'static str,
        /// The name found.
        found: String,
    },
    /// An element the format does not define at that place.
    #[error("unknown element {element} in {parent}")]
    UnknownElement {
        /// The element found.
        element: String,
        /// Its parent.
        parent: String,
    },
    /// An element that may appear once appears again.
    #[error("duplicate element {element} in {parent}")]
    DuplicateElement {
        /// The element.
        element: String,
        /// Its parent.
        parent: String,
    },
    /// Elements in another order than the format's.
    #[error("element {element} in {parent} must come before {before}")]
    OutOfOrder {
        /// The element that came too late.
        element: String,
        /// Its parent.
        parent: String,
        /// The element it must precede.
        before: String,
    },
    /// A required element is absent.
    #[error("missing element {element} in {parent}")]
    MissingElement {
        /// The element.
        element: &'static str,
        /// Its parent.
        parent: &'static str,
    },
    /// An attribute the format does not define on that element.
    #[error("unknown attribute {attribute} on element {element}")]
    UnknownAttribute {
        /// The attribute name as written.
        attribute: String,
        /// The element.
        element: String,
    },
    /// A required attribute is absent.
    #[error("missing attribute {attribute} on element {element}")]
    MissingAttribute {
        /// The attribute.
        attribute: &'static str,
        /// The element.
        element: String,
    },
    /// An attribute with a fixed value has another one.
    #[error("attribute {attribute} on element {element} must be {expected:?}, found {found:?}")]
    WrongAttribute {
        /// The attribute.
        attribute: &'static str,
        /// The element.
        element: String,
        /// The value it must have.
        expected: &'static str,
        /// The value found.
        found: String,
    },
    /// A `VERSION` this crate does not read.
    #[error("{element} VERSION {found:?} is not supported: expected {expected}")]
    UnsupportedVersion {
        /// The root element.
        element: &'static str,
        /// The version found.
        found: String,
        /// What is supported.
        expected: &'static str,
    },
    /// Text inside an element that holds only elements.
    #[error("element {element} holds only elements, but has text {text:?}")]
    UnexpectedText {
        /// The element.
        element: String,
        /// The text (shortened).
        text: String,
    },
    /// A child element inside an element that holds only text.
    #[error("element {element} holds only text, but has child element {child}")]
    UnexpectedChild {
        /// The element.
        element: String,
        /// The child.
        child: String,
    },
    /// A PEERINVITATION that mixes the certificate and password kinds.
    #[error(
        "PEERINVITATION holds both GMC (a certificate invitation) and {element} (a password \
         invitation)"
    )]
    MixedInvitation {
        /// The password-kind element found beside GMC.
        element: &'static str,
    },

    // --- Values (bad input) --------------------------------------------------------------
    /// Text in a base64 element that is not canonical, padded standard base64.
    #[error("invalid base64 in element {element}: {reason}")]
    Base64 {
        /// The element.
        element: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// Text that is not a secure peer name.
    #[error("invalid peer name in element {element}: {source}")]
    PeerName {
        /// The element.
        element: &'static str,
        /// Why.
        #[source]
        source: peergroup_identity::Error,
    },
    /// A SCOPE other than GLOBAL, SITELOCAL or LINKLOCAL.
    #[error("invalid SCOPE {found:?}: expected GLOBAL, SITELOCAL or LINKLOCAL")]
    Scope {
        /// The text found (shortened).
        found: String,
    },
    /// A value that does not fit its element (cloud flags, cloud name, friendly name,
    /// address).
    #[error("invalid {element} {found:?}: {reason}")]
    Value {
        /// The element.
        element: &'static str,
        /// The text found (shortened).
        found: String,
        /// What it should be.
        reason: &'static str,
    },
    /// An identity certificate that does not parse or is not self-consistent.
    #[error("invalid identity certificate in element {element}: {source}")]
    Certificate {
        /// The element.
        element: &'static str,
        /// Why.
        #[source]
        source: peergroup_identity::Error,
    },
    /// A certificate chain that does not parse or whose structure is broken (bad signature,
    /// wrong group, roles its issuer may not grant, …). Validity in time is not checked here.
    #[error("invalid certificate chain in element {element}: {source}")]
    Chain {
        /// The element.
        element: &'static str,
        /// Why.
        #[source]
        source: peergroup_credential_roles::Error,
    },
    /// An element that contradicts the certificate chain beside it.
    #[error("{element} {found} does not match the certificate chain, which names {expected}")]
    ChainMismatch {
        /// The element.
        element: &'static str,
        /// What the element says.
        found: String,
        /// What the chain says.
        expected: String,
    },

    // --- The caller's mistakes -----------------------------------------------------------
    /// A cloud name that cannot be written.
    #[error("invalid cloud name {0:?}: use at most 255 characters without control characters")]
    InvalidCloudName(String),
    /// A friendly name that cannot be written.
    #[error("invalid friendly name {0:?}: use 1 to 255 characters without control characters")]
    InvalidFriendlyName(String),
}

/// Shortens untrusted text before it goes into an error message.
pub(crate) fn shorten(s: &str) -> String {
    const MAX: usize = 120;
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

    #[test]
    fn is_a_well_behaved_error() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<Error>();
    }

    #[test]
    fn shortens_on_a_char_boundary() {
        let long = "é".repeat(100);
        let short = shorten(&long);
        assert!(short.ends_with('…'));
        assert!(short.len() <= 120 + '…'.len_utf8());
        assert_eq!(shorten("abc"), "abc");
    }

    #[test]
    fn messages_name_what_is_wrong() {
        let e = Error::MissingElement {
            element: "GMC",
            parent: "PEERINVITATION",
        };
        assert_eq!(e.to_string(), "missing element GMC in PEERINVITATION");
        let e = Error::TooLarge {
            size: 600_000,
            limit: 524_288,
        };
        assert_eq!(e.to_string(), "input is 600000 bytes, the limit is 524288");
    }
}
