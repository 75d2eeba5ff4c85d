//! Bodies of the `attributes_xml` and `search_xml` fuzz targets in `fuzz/`, public so the
//! seed corpus in `fuzz/seeds/<target>/` also runs as a test.

use peergroup_identity::Timestamp;

use super::{Attributes, Query, SearchFields};

/// Attribute XML from arbitrary bytes (lossy UTF-8): whatever parses is written canonically
/// and must read back equal, and write the same text again.
pub fn attributes_xml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(attributes) = Attributes::parse(&text) else {
        return;
    };
    let xml = attributes.to_xml();
    let again = Attributes::parse(&xml);
    assert_eq!(
        again.as_ref().ok(),
        Some(&attributes),
        "canonical attribute XML did not read back equal: {xml:?} gave {again:?}"
    );
    assert_eq!(attributes.to_xml(), xml, "to_xml is not deterministic");
    for a in &attributes {
        assert!(attributes.get(a.name.as_str()).next().is_some());
    }
}

/// Search query XML from arbitrary bytes (lossy UTF-8): whatever parses is written
/// canonically and must read back equal, and both must give the same answers against a few
/// fixed records.
pub fn search_xml(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(query) = Query::parse(&text) else {
        return;
    };
    let xml = query.to_xml();
    let again = Query::parse(&xml);
    assert_eq!(
        again.as_ref().ok(),
        Some(&query),
        "canonical query XML did not read back equal: {xml:?} gave {again:?}"
    );
    let empty = Attributes::new();
    let rich = Attributes::new()
        .with_string("Owner", "Scott")
        .and_then(|a| a.with_string("Name", " a*b?c\\ <&> é "))
        .and_then(|a| a.with_int("Priority", 1))
        .and_then(|a| a.with_int("Priority", -42))
        .and_then(|a| a.with_date("Birthday", Timestamp::from_millis(71_193_600_000)))
        .unwrap_or_default();
    for attributes in [&empty, &rich] {
        let fields = SearchFields {
            attributes,
            creator_id: "James Peters",
            last_modified_by: "",
            record_id: "{0b1c2d3e-0000-4000-8000-00000000000a}",
            record_type: "{f00dcafe-0000-4000-8000-000000000001}",
            creation_time: Timestamp::from_secs(1_000_000_000),
            last_modification_time: Timestamp::from_secs(1_100_000_000),
        };
        if let Ok(again) = &again {
            assert_eq!(query.matches(&fields), again.matches(&fields));
        }
    }
}
