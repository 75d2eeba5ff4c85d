//! Running a search query over stored records.

use crate::record::Record;
use crate::search::{Attributes, Query, SearchFields};

/// Whether `record` matches `query` (its attributes plus the reserved `peer*` fields).
/// A record whose attributes do not parse (impossible for validated records) does not match.
pub(crate) fn matches(query: &Query, record: &Record) -> bool {
    let Ok(attributes) = Attributes::parse(&record.attributes) else {
        return false;
    };
    let modifier = record
        .modified_by
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let fields = SearchFields {
        attributes: &attributes,
        creator_id: &record.creator.to_string(),
        last_modified_by: &modifier,
        record_id: &record.id.to_string(),
        record_type: &record.record_type.to_string(),
        creation_time: record.created,
        last_modification_time: record.last_modified,
    };
    query.matches(&fields)
}
