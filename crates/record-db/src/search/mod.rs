//! Record attribute XML and search queries, following the Windows Peer-to-Peer Grouping
//! formats (`PeerGroupSearchRecords`).
//!
//! # Attribute XML
//!
//! A record carries application attributes as XML:
//!
//! ```xml
//! <attributes>
//!   <attribute name="Owner" type="string">Scott</attribute>
//!   <attribute name="Birthday" type="date">1972-04-04</attribute>
//!   <attribute name="Priority" type="int">1</attribute>
//! </attributes>
//! ```
//!
//! - `name` is 1–40 ASCII letters and digits; names need not be unique. The reserved names
//!   `peerlastmodifiedby`, `peercreatorid`, `peerlastmodificationtime`, `peerrecordid`,
//!   `peerrecordtype` and `peercreationtime` (any case) describe the record itself: they are
//!   refused in attributes ([`SearchError::ReservedName`]) but can be searched.
//! - `type` is `string` (text kept exactly, white space included), `int` (an optional `-`
//!   and decimal digits fitting an `i64`; no `+`, no white space) or `date` (the W3C
//!   date-time profile of ISO 8601: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
//!   `YYYY-MM-DDThh:mm[:ss[.s]]` + `Z`/`±hh:mm`), held as a [`Timestamp`] in UTC. A
//!   `Timestamp` has no sign, so dates before 1970-01-01T00:00:00Z are refused
//!   ([`SearchError::BadDate`]); the latest is [`MAX_DATE`].
//! - Empty text means no attributes. At most [`MAX_ATTRIBUTES`] attributes and
//!   [`MAX_ATTRIBUTES_XML_BYTES`] of XML.
//!
//! # Search queries
//!
//! ```xml
//! <?xml version="1.0" encoding="utf-8" ?>
//! <peersearch xmlns:xs="https://www.w3.org/2001/XMLSchema">
//!   <and>
//!     <clause attrib="peercreatorid" type="string" compare="equal">James Peters</clause>
//!     <or>
//!       <clause attrib="peerlastmodificationtime" type="date" compare="greater">2003-01-31</clause>
//!       <clause attrib="Priority" type="int" compare="lessorequal">2</clause>
//!     </or>
//!   </and>
//! </peersearch>
//! ```
//!
//! - `<peersearch>` (whose `xmlns` attributes are ignored) has exactly one child: `clause`,
//!   `and` or `or`. `and`/`or` have at least one child and nest at most
//!   [`MAX_QUERY_DEPTH`] deep. At most [`MAX_QUERY_XML_BYTES`] of XML.
//! - `clause` has `attrib` (any attribute name, reserved ones included), `type` and an
//!   optional `compare`: `equal` (the default), `notequal`, `less`, `greater`,
//!   `lessorequal`, `greaterorequal`. Keywords are matched case-insensitively.
//! - String values are [`Pattern`]s: `*` matches any run of characters, `?` exactly one,
//!   `\*`, `\?` and `\\` are the characters themselves, and any other backslash is an error
//!   ([`SearchError::BadEscape`]). Wildcards apply to `equal`/`notequal`; the ordering
//!   compares compare the attribute with the unescaped literal text (a `*` or `?` in it is
//!   just that character), by Unicode scalar value (byte order of UTF-8).
//! - Ints compare numerically, dates chronologically (`2003-01-31` is midnight UTC).
//!
//! # Matching ([`Query::matches`])
//!
//! A clause matches a record when *any* attribute with the clause's name and type satisfies
//! it; an attribute of another type, or a record without the attribute, never matches (not
//! even `notequal`). Attribute names are compared ASCII-case-insensitively everywhere (in
//! [`Attributes::get`] too), as Windows does for the reserved names; names keep their written
//! case in XML. String values compare case-sensitively, except the GUID fields
//! `peerrecordid` and `peerrecordtype`, whose ASCII letters compare case-insensitively. The
//! reserved names read the [`SearchFields`] of the record: `peerlastmodifiedby` is `""` for
//! a never-modified record, so `equal` to an empty value finds those.
//!
//! # Strictness
//!
//! Both formats are read by one strict XML reader: no DTD, no entities except the five
//! predefined ones and numeric character references, no processing instructions, no unknown
//! elements or attributes, nothing but white space after the root. Parsing never panics.
//! Parsed and built values always write canonical XML ([`Attributes::to_xml`],
//! [`Query::to_xml`]) that reads back equal. Errors say which format, line, element or
//! attribute was wrong and map to Windows codes ([`SearchError::windows_code`]).
//!
//! ```
//! use peergroup_identity::Timestamp;
//! use peergroup_record_db::search::{Attributes, Query, SearchFields};
//!
//! let attributes = Attributes::parse(
//!     r#"<attributes><attribute name="Owner" type="string">Scott</attribute></attributes>"#,
//! )?;
//! let query = Query::parse(
//!     r#"<peersearch><clause attrib="owner" type="string">Sc*</clause></peersearch>"#,
//! )?;
//! let record = SearchFields {
//!     attributes: &attributes,
//!     creator_id: "James Peters",
//!     last_modified_by: "",
//!     record_id: "{0b1c2d3e-0000-4000-8000-00000000000a}",
//!     record_type: "{f00dcafe-0000-4000-8000-000000000001}",
//!     creation_time: Timestamp::from_secs(1_000_000_000),
//!     last_modification_time: Timestamp::from_secs(1_000_000_000),
//! };
//! assert!(query.matches(&record));
//! assert_eq!(Query::parse(&query.to_xml())?, query);
//! # Ok::<(), peergroup_record_db::search::SearchError>(())
//! ```
//!
//! [`Timestamp`]: peergroup_identity::Timestamp

mod attributes;
mod date;
mod error;
mod eval;
mod glob;
mod query;
mod value;
mod xml;

#[doc(hidden)]
pub mod fuzz;

pub use attributes::{Attribute, Attributes, MAX_ATTRIBUTES, MAX_ATTRIBUTES_XML_BYTES};
pub use date::MAX_DATE;
pub use error::{
    Document, E_INVALIDARG, PEER_E_INVALID_ATTRIBUTES, PEER_E_INVALID_SEARCH,
    PEER_E_TOO_MANY_ATTRIBUTES, SearchError,
};
pub use eval::SearchFields;
pub use glob::{Pattern, PatternToken};
pub use query::{Clause, ClauseValue, Compare, MAX_QUERY_DEPTH, MAX_QUERY_XML_BYTES, Node, Query};
pub use value::{AttributeName, MAX_NAME_LEN, ReservedName, Value, ValueType};
