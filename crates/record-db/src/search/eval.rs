//! Evaluating a query against one record.

use peergroup_identity::Timestamp;

use super::attributes::Attributes;
use super::query::{Clause, ClauseValue, Compare, Node, Query};
use super::value::{ReservedName, Value};

/// What a query can see of one record: its application attributes and the fields the
/// reserved `peer*` names stand for.
#[derive(Clone, Copy, Debug)]
pub struct SearchFields<'a> {
    /// The application attributes.
    pub attributes: &'a Attributes,
    /// `peercreatorid`: the creator's peer name.
    pub creator_id: &'a str,
    /// `peerlastmodifiedby`: the last modifier's peer name, `""` when never modified (a
    /// clause `equal` to the empty string finds never-modified records).
    pub last_modified_by: &'a str,
    /// `peerrecordid`: braced lower-case GUID text, `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`.
    pub record_id: &'a str,
    /// `peerrecordtype`: same format as `record_id`.
    pub record_type: &'a str,
    /// `peercreationtime`.
    pub creation_time: Timestamp,
    /// `peerlastmodificationtime` (equal to the creation time when never modified).
    pub last_modification_time: Timestamp,
}

impl Query {
    /// Whether the record described by `fields` matches the query.
    pub fn matches(&self, fields: &SearchFields<'_>) -> bool {
        self.root().matches(fields)
    }
}

impl Node {
    /// Whether the record matches this node: a clause, all children of an `and`, or some
    /// child of an `or`.
    pub fn matches(&self, fields: &SearchFields<'_>) -> bool {
        match self {
            Node::Clause(c) => c.matches(fields),
            Node::And(children) => children.iter().all(|c| c.matches(fields)),
            Node::Or(children) => children.iter().any(|c| c.matches(fields)),
        }
    }
}

impl Clause {
    /// Whether the record matches this clause.
    ///
    /// A reserved name is compared with its record field (GUID fields ASCII
    /// case-insensitively, since GUID text is case-insensitive). Otherwise the clause matches
    /// when *any* attribute of that name (ASCII case-insensitive) and of the clause's type
    /// satisfies it; attributes of another type never match, and a record without the
    /// attribute never matches, not even `notequal`.
    pub fn matches(&self, fields: &SearchFields<'_>) -> bool {
        let Some(reserved) = self.attrib().reserved() else {
            return fields
                .attributes
                .get(self.attrib().as_str())
                .any(|v| match v {
                    Value::String(s) => self.test_string(s, false),
                    Value::Int(i) => self.test_int(*i),
                    Value::Date(t) => self.test_date(*t),
                });
        };
        match reserved {
            ReservedName::CreatorId => self.test_string(fields.creator_id, false),
            ReservedName::LastModifiedBy => self.test_string(fields.last_modified_by, false),
            ReservedName::RecordId => self.test_string(fields.record_id, true),
            ReservedName::RecordType => self.test_string(fields.record_type, true),
            ReservedName::CreationTime => self.test_date(fields.creation_time),
            ReservedName::LastModificationTime => self.test_date(fields.last_modification_time),
        }
    }

    /// A string value against the clause: `equal`/`notequal` use the wildcard pattern;
    /// ordering compares use the pattern's unescaped literal text, by Unicode scalar value.
    fn test_string(&self, s: &str, fold_case: bool) -> bool {
        let ClauseValue::String(p) = self.value() else {
            return false;
        };
        match self.compare() {
            Compare::Equal => p.matches_with(s, fold_case),
            Compare::NotEqual => !p.matches_with(s, fold_case),
            compare => compare.holds(p.compare_literal(s, fold_case)),
        }
    }

    fn test_int(&self, i: i64) -> bool {
        match self.value() {
            ClauseValue::Int(b) => self.compare().holds(i.cmp(b)),
            _ => false,
        }
    }

    fn test_date(&self, t: Timestamp) -> bool {
        match self.value() {
            ClauseValue::Date(b) => self.compare().holds(t.cmp(b)),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(attributes: &Attributes) -> SearchFields<'_> {
        SearchFields {
            attributes,
            creator_id: "James Peters",
            last_modified_by: "",
            record_id: "{0b1c2d3e-0000-4000-8000-00000000000a}",
            record_type: "{f00dcafe-0000-4000-8000-000000000001}",
            creation_time: Timestamp::from_secs(1_000_000_000),
            last_modification_time: Timestamp::from_secs(1_100_000_000),
        }
    }

    fn q(body: &str) -> Query {
        Query::parse(&format!("<peersearch>{body}</peersearch>")).unwrap()
    }

    #[test]
    fn reserved_fields() {
        let a = Attributes::new();
        let f = fields(&a);
        let yes = [
            r#"<clause attrib="peercreatorid" type="string">James Peters</clause>"#,
            r#"<clause attrib="PeerCreatorId" type="string">James*</clause>"#,
            r#"<clause attrib="peerlastmodifiedby" type="string"></clause>"#,
            r#"<clause attrib="peerrecordid" type="string">{0B1C2D3E-*}</clause>"#,
            r#"<clause attrib="peerrecordtype" type="string" compare="greater">{F00C}</clause>"#,
            r#"<clause attrib="peercreationtime" type="date" compare="less">2001-09-10</clause>"#,
            r#"<clause attrib="peerlastmodificationtime" type="date" compare="greaterorequal">2004-11-09T11:33:20Z</clause>"#,
        ];
        for body in yes {
            assert!(q(body).matches(&f), "{body}");
        }
        let no = [
            r#"<clause attrib="peercreatorid" type="string">james peters</clause>"#,
            r#"<clause attrib="peerlastmodifiedby" type="string" compare="notequal"></clause>"#,
            r#"<clause attrib="peercreationtime" type="string">*</clause>"#,
            r#"<clause attrib="peercreatorid" type="int">1</clause>"#,
            r#"<clause attrib="peerlastmodificationtime" type="date" compare="greater">2004-11-09T11:33:20Z</clause>"#,
        ];
        for body in no {
            assert!(!q(body).matches(&f), "{body}");
        }
    }

    #[test]
    fn any_attribute_of_the_name_and_type() {
        let a = Attributes::new()
            .with_string("Tag", "red")
            .and_then(|a| a.with_string("tag", "blue"))
            .and_then(|a| a.with_int("Tag", 7))
            .unwrap();
        let f = fields(&a);
        assert!(q(r#"<clause attrib="TAG" type="string">blue</clause>"#).matches(&f));
        assert!(q(r#"<clause attrib="tag" type="string">red</clause>"#).matches(&f));
        assert!(q(r#"<clause attrib="tag" type="int" compare="greater">6</clause>"#).matches(&f));
        assert!(!q(r#"<clause attrib="tag" type="date">1999</clause>"#).matches(&f));
        // notequal: some value differs.
        assert!(
            q(r#"<clause attrib="tag" type="string" compare="notequal">red</clause>"#).matches(&f)
        );
        // A missing attribute matches nothing, not even notequal.
        assert!(
            !q(r#"<clause attrib="missing" type="string" compare="notequal">x</clause>"#)
                .matches(&f)
        );
    }
}
