//! Query XML: parsing, writing, and malformed queries.

use peergroup_identity::Timestamp;
use peergroup_record_db::search::{
    AttributeName, Clause, ClauseValue, Compare, Document, MAX_QUERY_DEPTH, MAX_QUERY_XML_BYTES,
    Node, PEER_E_INVALID_SEARCH, Pattern, Query, SearchError,
};

use crate::support::{clause, query, query_err};

const WINDOWS_EXAMPLE: &str = r#"<?xml version="1.0" encoding="utf-8" ?>
<peersearch xmlns:xs="https://www.w3.org/2001/XMLSchema">
  <and>
    <clause attrib="peercreatorid" type="string" compare="equal">James Peters</clause>
    <or>
      <clause attrib="peerlastmodificationtime" type="date" compare="greater">2003-01-31</clause>
      <clause attrib="peerlastmodificationtime" type="date" compare="less">2003-09-01</clause>
    </or>
  </and>
</peersearch>"#;

fn name(s: &str) -> AttributeName {
    AttributeName::new(s).unwrap()
}

fn leaf(attrib: &str, compare: Compare, value: ClauseValue) -> Node {
    Node::Clause(Clause::new(name(attrib), compare, value).unwrap())
}

#[test]
fn windows_example_parses_into_the_expected_tree() {
    let q = Query::parse(WINDOWS_EXAMPLE).unwrap();
    let date = |ms| ClauseValue::Date(Timestamp::from_millis(ms));
    let expected = Node::And(vec![
        leaf(
            "peercreatorid",
            Compare::Equal,
            ClauseValue::String(Pattern::literal("James Peters")),
        ),
        Node::Or(vec![
            leaf(
                "peerlastmodificationtime",
                Compare::Greater,
                date(1_043_971_200_000),
            ),
            leaf(
                "peerlastmodificationtime",
                Compare::Less,
                date(1_062_374_400_000),
            ),
        ]),
    ]);
    assert_eq!(q.root(), &expected);
    assert_eq!(Query::new(expected).unwrap(), q);
    assert_eq!(Query::parse(&q.to_xml()).unwrap(), q);
}

#[test]
fn canonical_xml_is_stable() {
    let q = query(r#"<or><clause attrib="A" type="STRING">x\*&lt;</clause></or>"#);
    let xml = q.to_xml();
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><peersearch><or><clause attrib=\"A\" \
         type=\"string\" compare=\"equal\">x\\*&lt;</clause></or></peersearch>"
    );
    assert_eq!(Query::parse(&xml).unwrap().to_xml(), xml);
}

#[test]
fn compare_defaults_to_equal_and_keywords_ignore_case() {
    let Node::Clause(c) = query(r#"<clause attrib="a" type="int">5</clause>"#)
        .root()
        .clone()
    else {
        panic!("not a clause");
    };
    assert_eq!(c.compare(), Compare::Equal);
    assert_eq!(c.value(), &ClauseValue::Int(5));
    for (keyword, compare) in [
        ("equal", Compare::Equal),
        ("notequal", Compare::NotEqual),
        ("less", Compare::Less),
        ("greater", Compare::Greater),
        ("lessorequal", Compare::LessOrEqual),
        ("greaterorequal", Compare::GreaterOrEqual),
        ("GreaterOrEqual", Compare::GreaterOrEqual),
    ] {
        let q = query(&clause("a", "int", keyword, "1"));
        let Node::Clause(c) = q.root() else { panic!() };
        assert_eq!(c.compare(), compare, "{keyword}");
    }
}

#[test]
fn groups_take_one_or_more_children() {
    let q = query(r#"<and><clause attrib="a" type="int">1</clause></and>"#);
    assert!(matches!(q.root(), Node::And(c) if c.len() == 1));
    let q = query(
        r#"<or><and><or><clause attrib="a" type="int">1</clause></or></and><clause attrib="b" type="int">2</clause></or>"#,
    );
    assert!(matches!(q.root(), Node::Or(c) if c.len() == 2));
}

#[test]
fn reserved_names_are_valid_clause_attributes() {
    for attrib in [
        "peerrecordid",
        "PEERRECORDTYPE",
        "peerCreatorId",
        "peerlastmodifiedby",
    ] {
        query(&clause(attrib, "string", "equal", "*"));
    }
    query(&clause("peercreationtime", "date", "less", "2000"));
}

#[test]
fn depth_limit() {
    let nest = |levels: usize| {
        format!(
            "<peersearch>{}<clause attrib=\"a\" type=\"int\">1</clause>{}</peersearch>",
            "<and>".repeat(levels),
            "</and>".repeat(levels)
        )
    };
    assert!(Query::parse(&nest(MAX_QUERY_DEPTH)).is_ok());
    let e = query_err(&nest(MAX_QUERY_DEPTH + 1));
    assert_eq!(
        e,
        SearchError::TooDeep {
            limit: MAX_QUERY_DEPTH
        }
    );
    assert!(e.to_string().contains("deeper than 32"), "{e}");
    // An empty innermost group, just past the limit, is still "too deep".
    let xml = format!(
        "<peersearch>{}<or/>{}</peersearch>",
        "<and>".repeat(MAX_QUERY_DEPTH),
        "</and>".repeat(MAX_QUERY_DEPTH)
    );
    assert_eq!(
        query_err(&xml),
        SearchError::TooDeep {
            limit: MAX_QUERY_DEPTH
        }
    );
    // Very deep input stops at the limit instead of recursing.
    assert_eq!(
        query_err(&nest(5_000)),
        SearchError::TooDeep {
            limit: MAX_QUERY_DEPTH
        }
    );
    // Built trees obey the same limit.
    let mut node = leaf("a", Compare::Equal, ClauseValue::Int(1));
    for _ in 0..MAX_QUERY_DEPTH {
        node = Node::Or(vec![node]);
    }
    assert!(Query::new(node.clone()).is_ok());
    assert_eq!(
        Query::new(Node::And(vec![node])),
        Err(SearchError::TooDeep {
            limit: MAX_QUERY_DEPTH
        })
    );
}

#[test]
fn malformed_queries() {
    let c = r#"<clause attrib="a" type="int">1</clause>"#;
    let schema: Vec<(String, &str)> = vec![
        (
            format!("<search>{c}</search>"),
            "root element must be <peersearch>",
        ),
        (
            format!("<PeerSearch>{c}</PeerSearch>"),
            "root element must be <peersearch>",
        ),
        (c.to_owned(), "root element must be <peersearch>"),
        (
            format!("<peersearch>{c}{c}</peersearch>"),
            "exactly one child",
        ),
        (
            "<peersearch/>".into(),
            "one child (clause, and or or), found 0",
        ),
        (
            "<peersearch>  </peersearch>".into(),
            "one child (clause, and or or), found 0",
        ),
        (
            "<peersearch><and/></peersearch>".into(),
            "<and> must have at least one child",
        ),
        (
            "<peersearch><or></or></peersearch>".into(),
            "<or> must have at least one child",
        ),
        (
            format!("<peersearch><not>{c}</not></peersearch>"),
            "unknown element <not>",
        ),
        (
            format!("<peersearch><and>{c}<xs:clause/></and></peersearch>"),
            "unknown element <xs:clause>",
        ),
        (
            format!("<peersearch><and>{c}text</and></peersearch>"),
            "holds elements only",
        ),
        (
            format!("<peersearch>text{c}</peersearch>"),
            "holds elements only",
        ),
        (
            format!("<peersearch><and x=\"1\">{c}</and></peersearch>"),
            "unknown attribute x on <and>",
        ),
        (
            format!("<peersearch lang=\"en\">{c}</peersearch>"),
            "unknown attribute lang on <peersearch>",
        ),
        (
            r#"<peersearch><clause attrib="a" type="int" xmlns="x">1</clause></peersearch>"#.into(),
            "unknown attribute xmlns on <clause>",
        ),
        (
            r#"<peersearch><clause type="int">1</clause></peersearch>"#.into(),
            "no attrib attribute",
        ),
        (
            r#"<peersearch><clause attrib="a">1</clause></peersearch>"#.into(),
            "no type attribute",
        ),
        (
            r#"<peersearch><clause attrib="a" type="int" compare="like">1</clause></peersearch>"#
                .into(),
            "unknown compare \"like\"",
        ),
        (
            r#"<peersearch><clause attrib="a" type="bool">1</clause></peersearch>"#.into(),
            "unknown type \"bool\"",
        ),
        (
            r#"<peersearch><clause attrib="a" type="int"><and/></clause></peersearch>"#.into(),
            "holds text only",
        ),
    ];
    for (xml, needle) in &schema {
        let e = query_err(xml);
        assert!(matches!(e, SearchError::Schema { .. }), "{xml}: {e:?}");
        assert!(
            e.to_string().contains(needle),
            "{xml}: {e} lacks {needle:?}"
        );
        assert_eq!(e.windows_code(), PEER_E_INVALID_SEARCH);
    }
    let syntax: Vec<(String, &str)> = vec![
        (format!("<peersearch>{c}"), "<peersearch> is never closed"),
        ("<peersearch><and><clause attrib=\"a\" type=\"int\">1</and></peersearch>".into(), "clause"),
        (format!("<!DOCTYPE peersearch><peersearch>{c}</peersearch>"), "DOCTYPE"),
        (
            "<!DOCTYPE p [<!ENTITY x \"James\">]><peersearch><clause attrib=\"a\" type=\"string\">&x;</clause></peersearch>".into(),
            "DOCTYPE",
        ),
        (
            "<peersearch><clause attrib=\"a\" type=\"string\">&x;</clause></peersearch>".into(),
            "entity reference &x; is not allowed",
        ),
        (format!("<peersearch>{c}</peersearch>garbage"), "outside the root"),
        (format!("<peersearch>{c}</peersearch><peersearch/>"), "after the root"),
        (format!("<peersearch>{c}</peersearch><?pi?>"), "processing instruction"),
        ("".into(), "no root"),
        (format!("<?xml version=\"2.0\"?><peersearch>{c}</peersearch>"), "2.0"),
        (format!("<peersearch>{c}</peersearch>\n<?xml version=\"1.0\"?>"), "declaration"),
    ];
    for (xml, needle) in &syntax {
        let e = query_err(xml);
        assert!(matches!(e, SearchError::Syntax { .. }), "{xml}: {e:?}");
        assert!(
            e.to_string().contains(needle),
            "{xml}: {e} lacks {needle:?}"
        );
    }
}

#[test]
fn bad_clause_values() {
    let e = query_err(&format!(
        "<peersearch>{}</peersearch>",
        clause("a", "string", "equal", "ab\\c")
    ));
    assert_eq!(
        e,
        SearchError::BadEscape {
            line: 1,
            position: 3,
            sequence: "\\c".into(),
            value: "ab\\c".into()
        }
    );
    assert!(
        e.to_string().contains("bad escape `\\c` at character 3"),
        "{e}"
    );
    assert_eq!(e.windows_code(), peergroup_record_db::search::E_INVALIDARG);
    let e = query_err(&format!(
        "<peersearch>{}</peersearch>",
        clause("a", "string", "equal", "trailing\\")
    ));
    assert!(
        matches!(e, SearchError::BadEscape { position: 9, .. }),
        "{e:?}"
    );
    let e = query_err(&format!(
        "<peersearch>\n{}</peersearch>",
        clause("a", "int", "equal", "1.5")
    ));
    assert!(
        matches!(
            e,
            SearchError::BadInt {
                doc: Document::Query,
                line: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let e = query_err(&format!(
        "<peersearch>{}</peersearch>",
        clause("a", "int", "equal", "")
    ));
    assert!(matches!(e, SearchError::BadInt { .. }), "{e:?}");
    let e = query_err(&format!(
        "<peersearch>{}</peersearch>",
        clause("a", "date", "less", "yesterday")
    ));
    assert!(
        matches!(
            e,
            SearchError::BadDate {
                doc: Document::Query,
                ..
            }
        ),
        "{e:?}"
    );
    let e = query_err(&format!(
        "<peersearch>{}</peersearch>",
        clause("a-b", "int", "equal", "1")
    ));
    assert!(
        matches!(
            e,
            SearchError::BadName {
                doc: Document::Query,
                ..
            }
        ),
        "{e:?}"
    );
    // Escapes are backslashes in the text, after XML unescaping.
    let q = query(&clause("a", "string", "equal", "&#92;*"));
    let Node::Clause(c) = q.root() else { panic!() };
    assert_eq!(c.value(), &ClauseValue::String(Pattern::literal("*")));
}

#[test]
fn size_limits() {
    let e = query_err(&" ".repeat(MAX_QUERY_XML_BYTES + 1));
    assert!(
        matches!(
            e,
            SearchError::TooLarge {
                doc: Document::Query,
                ..
            }
        ),
        "{e:?}"
    );
    // Under the limit as written, over it in canonical form: refused, so round trips hold.
    let one = r#"<clause attrib="a" type="int">1</clause>"#;
    let many = one.repeat((MAX_QUERY_XML_BYTES - 100) / one.len());
    let e = query_err(&format!("<peersearch><or>{many}</or></peersearch>"));
    assert!(matches!(e, SearchError::TooLarge { .. }), "{e:?}");
}

#[test]
fn built_queries_are_validated() {
    assert!(matches!(
        Query::new(Node::And(vec![])),
        Err(SearchError::Schema { .. })
    ));
    assert!(matches!(
        Query::new(Node::Or(vec![Node::And(vec![])])),
        Err(SearchError::Schema { .. })
    ));
    let e = Clause::new(
        name("a"),
        Compare::Equal,
        ClauseValue::String(Pattern::literal("\u{0}")),
    )
    .unwrap_err();
    assert!(matches!(
        e,
        SearchError::IllegalCharacter {
            doc: Document::Query,
            ..
        }
    ));
    let e = Clause::new(
        name("a"),
        Compare::Less,
        ClauseValue::Date(Timestamp::from_millis(u64::MAX)),
    )
    .unwrap_err();
    assert!(matches!(e, SearchError::BadDate { .. }));
    assert!(e.is_invalid_search());
}
