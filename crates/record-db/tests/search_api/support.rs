//! Shared helpers.

use peergroup_identity::Timestamp;
use peergroup_record_db::search::{Attributes, Query, SearchError, SearchFields};

/// A record with fixed reserved fields and the given attributes.
pub(crate) fn fields(attributes: &Attributes) -> SearchFields<'_> {
    SearchFields {
        attributes,
        creator_id: "James Peters",
        last_modified_by: "Alice",
        record_id: "{0b1c2d3e-0000-4000-8000-00000000000a}",
        record_type: "{f00dcafe-0000-4000-8000-000000000001}",
        // 2001-09-09T01:46:40Z and 2004-11-09T11:33:20Z.
        creation_time: Timestamp::from_secs(1_000_000_000),
        last_modification_time: Timestamp::from_secs(1_100_000_000),
    }
}

/// A query around one body.
pub(crate) fn query(body: &str) -> Query {
    let xml = format!("<peersearch>{body}</peersearch>");
    Query::parse(&xml).unwrap_or_else(|e| panic!("{xml}: {e}"))
}

/// Query parse error for a body inside `<peersearch>`.
pub(crate) fn query_err(xml: &str) -> SearchError {
    match Query::parse(xml) {
        Ok(q) => panic!("{xml:?} parsed as {q:?}"),
        Err(e) => {
            assert!(e.is_invalid_search(), "{xml:?}: {e} is not a search error");
            assert!(!e.is_invalid_attributes());
            e
        }
    }
}

/// Attribute parse error.
pub(crate) fn attributes_err(xml: &str) -> SearchError {
    match Attributes::parse(xml) {
        Ok(a) => panic!("{xml:?} parsed as {a:?}"),
        Err(e) => {
            assert!(
                e.is_invalid_attributes(),
                "{xml:?}: {e} is not an attribute error"
            );
            assert!(!e.is_invalid_search());
            e
        }
    }
}

/// `<attributes>` with one attribute.
pub(crate) fn one_attribute(name: &str, ty: &str, value: &str) -> String {
    format!("<attributes><attribute name=\"{name}\" type=\"{ty}\">{value}</attribute></attributes>")
}

/// A clause element.
pub(crate) fn clause(attrib: &str, ty: &str, compare: &str, value: &str) -> String {
    format!("<clause attrib=\"{attrib}\" type=\"{ty}\" compare=\"{compare}\">{value}</clause>")
}
