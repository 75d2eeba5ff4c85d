//! Attribute XML: parsing, writing, limits and errors.

use peergroup_identity::Timestamp;
use peergroup_record_db::search::{
    Attribute, AttributeName, Attributes, MAX_ATTRIBUTES, MAX_ATTRIBUTES_XML_BYTES, MAX_DATE,
    PEER_E_INVALID_ATTRIBUTES, ReservedName, SearchError, Value,
};

use crate::support::{attributes_err, one_attribute};

fn date(ms: u64) -> Value {
    Value::Date(Timestamp::from_millis(ms))
}

fn only_value(xml: &str) -> Value {
    let a = Attributes::parse(xml).unwrap_or_else(|e| panic!("{xml}: {e}"));
    assert_eq!(a.len(), 1);
    a.iter().next().map(|a| a.value.clone()).unwrap()
}

#[test]
fn windows_example_with_declaration_comments_and_whitespace() {
    let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- record attributes -->\n\
        <attributes>\n  <attribute name=\"Owner\" type=\"string\">Scott</attribute>\n  \
        <attribute name=\"Birthday\" type=\"date\">1972-04-04</attribute>\n  \
        <attribute name=\"Priority\" type=\"int\">1</attribute>\n</attributes>\n";
    let a = Attributes::parse(xml).unwrap();
    let got: Vec<_> = a
        .iter()
        .map(|a| (a.name.as_str(), a.value.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("Owner", Value::String("Scott".into())),
            ("Birthday", date(71_193_600_000)),
            ("Priority", Value::Int(1)),
        ]
    );
    assert_eq!(Attributes::parse(&a.to_xml()).unwrap(), a);
}

#[test]
fn names_need_not_be_unique_and_lookup_ignores_case() {
    let a = Attributes::new()
        .with_string("Tag", "a")
        .and_then(|a| a.with_string("TAG", "b"))
        .and_then(|a| a.with_int("tag", 3))
        .unwrap();
    let values: Vec<_> = a.get("tag").cloned().collect();
    assert_eq!(
        values,
        [
            Value::String("a".into()),
            Value::String("b".into()),
            Value::Int(3)
        ]
    );
    // Names keep their case in XML.
    assert!(a.to_xml().contains("name=\"TAG\""));
    assert_eq!(Attributes::parse(&a.to_xml()).unwrap(), a);
}

#[test]
fn reserved_names_are_refused_in_any_case() {
    for r in ReservedName::ALL {
        for name in [r.as_str().to_owned(), r.as_str().to_ascii_uppercase()] {
            let e = attributes_err(&one_attribute(&name, "string", "x"));
            assert_eq!(
                e,
                SearchError::ReservedName {
                    line: 1,
                    name: name.clone()
                }
            );
            assert!(e.to_string().contains("reserved"), "{e}");
            assert!(matches!(
                Attributes::new().with_string(&name, "x"),
                Err(SearchError::ReservedName { line: 0, .. })
            ));
        }
    }
    // Only the exact names: prefixes and extensions are ordinary names.
    assert!(Attributes::new().with_string("peer", "x").is_ok());
    assert!(Attributes::new().with_string("peercreatorid2", "x").is_ok());
}

#[test]
fn bad_names() {
    for name in ["", "a-b", "a_b", "a b", "ü", &"n".repeat(41)] {
        let e = attributes_err(&one_attribute(name, "string", "x"));
        assert!(
            matches!(e, SearchError::BadName { line: 1, .. }),
            "{name:?}: {e:?}"
        );
    }
    assert!(Attributes::parse(&one_attribute(&"n".repeat(40), "int", "1")).is_ok());
    assert!(matches!(
        AttributeName::new("x y"),
        Err(SearchError::BadName { .. })
    ));
}

#[test]
fn int_edge_cases() {
    let int = |text: &str| Attributes::parse(&one_attribute("n", "int", text));
    assert_eq!(only_value(&one_attribute("n", "int", "-0")), Value::Int(0));
    assert_eq!(
        only_value(&one_attribute("n", "int", "00042")),
        Value::Int(42)
    );
    assert_eq!(
        only_value(&one_attribute("n", "int", "9223372036854775807")),
        Value::Int(i64::MAX)
    );
    assert_eq!(
        only_value(&one_attribute("n", "int", "-9223372036854775808")),
        Value::Int(i64::MIN)
    );
    for bad in [
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
    ] {
        let e = int(bad).unwrap_err();
        assert!(e.to_string().contains("out of range"), "{bad}: {e}");
    }
    for bad in [
        "",
        "-",
        "+1",
        " 1",
        "1 ",
        "1.0",
        "1e3",
        "0x1F",
        "one",
        "&#x31;&#x2B;",
    ] {
        assert!(
            matches!(int(bad), Err(SearchError::BadInt { line: 1, .. })),
            "{bad:?}"
        );
    }
    // Character references are text like any other.
    assert_eq!(
        only_value(&one_attribute("n", "int", "&#x31;2")),
        Value::Int(12)
    );
}

#[test]
fn date_formats_and_offsets() {
    let d = |text: &str| only_value(&one_attribute("d", "date", text));
    let base = 869_077_230_000; // 1997-07-16T18:20:30Z
    assert_eq!(d("1997"), date(852_076_800_000));
    assert_eq!(d("1997-07"), date(867_715_200_000));
    assert_eq!(d("1997-07-16"), date(869_011_200_000));
    assert_eq!(d("1997-07-16T18:20Z"), date(base - 30_000));
    assert_eq!(d("1997-07-16T19:20+01:00"), date(base - 30_000));
    assert_eq!(d("1997-07-16T18:20:30Z"), date(base));
    assert_eq!(d("1997-07-16T13:20:30-05:00"), date(base));
    assert_eq!(d("1997-07-16T18:20:30.45Z"), date(base + 450));
    assert_eq!(d("1997-07-16T18:20:30.450Z"), date(base + 450));
    assert_eq!(d("1997-07-16T23:50:30.123+05:30"), date(base + 123));
    assert_eq!(d("1970-01-01"), date(0));
    assert_eq!(d("9999-12-31T23:59:59.999Z"), Value::Date(MAX_DATE));
    for bad in [
        "1969-12-31",
        "1970-01-01T00:00+01:00",
        "1997-7-16",
        "1997-02-29",
        "1997-07-16T18:20",
        "1997-07-16T18:20:30",
        "1997-07-16 18:20Z",
        "1997-07-16T25:00Z",
        "1997-07-16T18:20+1:00",
        "16/07/1997",
        "",
    ] {
        let e = Attributes::parse(&one_attribute("d", "date", bad)).unwrap_err();
        assert!(
            matches!(e, SearchError::BadDate { line: 1, .. }),
            "{bad:?}: {e:?}"
        );
    }
    let e = Attributes::parse(&one_attribute("d", "date", "1960-01-01")).unwrap_err();
    assert!(e.to_string().contains("before 1970"), "{e}");
    // Canonical dates: midnight UTC as a plain date, otherwise full UTC time.
    let a = Attributes::parse(&one_attribute("d", "date", "1997-07-16T19:20:30.45+01:00")).unwrap();
    assert!(
        a.to_xml().contains(">1997-07-16T18:20:30.450Z<"),
        "{}",
        a.to_xml()
    );
    let a = Attributes::parse(&one_attribute("d", "date", "1997")).unwrap();
    assert!(a.to_xml().contains(">1997-01-01<"), "{}", a.to_xml());
}

#[test]
fn awkward_strings_round_trip_exactly() {
    for s in [
        "",
        " ",
        "  leading and trailing  ",
        "\t\n tabs and newlines \n",
        "\r\n windows line ends \r",
        "<tag attr=\"v\" other='w'> & </tag>",
        "]]> &amp; &#38;",
        "* ? \\ \\* wildcards are just text in attributes",
        "Ünïcødé — 漢字 — 🎉",
        "\u{fffd}\u{10ffff}",
    ] {
        let a = Attributes::new().with_string("s", s).unwrap();
        let again = Attributes::parse(&a.to_xml()).unwrap();
        assert_eq!(again, a, "{s:?} via {}", a.to_xml());
    }
}

#[test]
fn string_text_is_kept_exactly_when_parsing() {
    let v = only_value(&one_attribute(
        "s",
        "string",
        "  a &lt;&amp;&gt; &quot;&apos; &#x1F389; <![CDATA[<x>]]> ",
    ));
    assert_eq!(v, Value::String("  a <&> \"' 🎉 <x> ".into()));
    let v = only_value("<attributes><attribute name=\"s\" type=\"string\"/></attributes>");
    assert_eq!(v, Value::String(String::new()));
    // XML normalises line ends in text; a CR must be written as a reference.
    let v = only_value(&one_attribute("s", "string", "a\r\nb\rc&#13;"));
    assert_eq!(v, Value::String("a\nb\nc\r".into()));
}

#[test]
fn type_keywords_ignore_case() {
    assert_eq!(only_value(&one_attribute("n", "INT", "5")), Value::Int(5));
    assert_eq!(
        only_value(&one_attribute("n", "String", "5")),
        Value::String("5".into())
    );
}

#[test]
fn malformed_attribute_xml() {
    let cases: &[(&str, &str)] = &[
        ("<attributes>", "never closed"),
        (
            "<attributes><attribute name=\"a\" type=\"int\">1</attributes>",
            "attribute",
        ),
        ("<attributes></attribute>", "attribute"),
        ("<attributes/>trailing", "outside the root"),
        ("<attributes/><attributes/>", "after the root"),
        ("<attributes/><!-- late -->", "comment after"),
        ("<!DOCTYPE attributes><attributes/>", "DOCTYPE"),
        ("<!DOCTYPE a [<!ENTITY e \"x\">]><attributes/>", "DOCTYPE"),
        (
            "<attributes><attribute name=\"a\" type=\"string\">&e;</attribute></attributes>",
            "&e;",
        ),
        (
            "<attributes><attribute name=\"a\" type=\"string\">&nbsp;</attribute></attributes>",
            "&nbsp;",
        ),
        (
            "<?xml-stylesheet href=\"x\"?><attributes/>",
            "processing instruction",
        ),
        (
            "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><attributes/>",
            "iso-8859-1",
        ),
        (
            "<attributes><attribute name=\"a\" name=\"b\" type=\"int\">1</attribute></attributes>",
            "attribute",
        ),
        (
            "<attributes><attribute name=a type=\"int\">1</attribute></attributes>",
            "attribute",
        ),
        ("no xml at all", "outside the root"),
        ("<?xml version=\"1.0\"?>", "no root"),
    ];
    for (xml, needle) in cases {
        let e = attributes_err(xml);
        assert!(matches!(e, SearchError::Syntax { .. }), "{xml:?}: {e:?}");
        assert!(
            e.to_string().contains(needle),
            "{xml:?}: {e} lacks {needle:?}"
        );
    }
}

#[test]
fn schema_errors_name_the_element_and_line() {
    let xml = "<attributes>\n<attribute name=\"a\" type=\"int\">1</attribute>\n\
        <attribute name=\"b\" type=\"int\" extra=\"1\">2</attribute>\n</attributes>";
    let e = attributes_err(xml);
    assert_eq!(e.windows_code(), PEER_E_INVALID_ATTRIBUTES);
    match &e {
        SearchError::Schema { line, reason, .. } => {
            assert_eq!(*line, 3);
            assert!(
                reason.contains("unknown attribute extra on <attribute>"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        e.to_string()
            .starts_with("invalid attribute XML at line 3:"),
        "{e}"
    );
    let e = attributes_err("<attributes><item name=\"a\" type=\"int\">1</item></attributes>");
    assert!(e.to_string().contains("unknown element <item>"), "{e}");
    let e = attributes_err("<Attributes/>");
    assert!(
        e.to_string().contains("root element must be <attributes>"),
        "{e}"
    );
}

#[test]
fn limits_are_enforced_on_parse_and_build() {
    let e = attributes_err(&" ".repeat(MAX_ATTRIBUTES_XML_BYTES + 1));
    assert_eq!(
        e,
        SearchError::TooLarge {
            doc: peergroup_record_db::search::Document::Attributes,
            size: MAX_ATTRIBUTES_XML_BYTES + 1,
            limit: MAX_ATTRIBUTES_XML_BYTES
        }
    );
    let many: String = (0..=MAX_ATTRIBUTES)
        .map(|i| format!("<attribute name=\"a{i}\" type=\"int\">{i}</attribute>"))
        .collect();
    let e = attributes_err(&format!("<attributes>{many}</attributes>"));
    assert_eq!(
        e,
        SearchError::TooManyAttributes {
            limit: MAX_ATTRIBUTES
        }
    );
    assert_eq!(
        e.windows_code(),
        peergroup_record_db::search::PEER_E_TOO_MANY_ATTRIBUTES
    );
    // The builder stops before the canonical XML would be too large to read back.
    let big = "x".repeat(MAX_ATTRIBUTES_XML_BYTES / 2);
    let a = Attributes::new().with_string("a", big.clone()).unwrap();
    let e = a.clone().with_string("b", big).unwrap_err();
    assert!(matches!(e, SearchError::TooLarge { .. }), "{e:?}");
    assert_eq!(Attributes::parse(&a.to_xml()).unwrap(), a);
}

#[test]
fn push_checks_like_the_builders() {
    let mut a = Attributes::new();
    let name = AttributeName::new("PeerRecordType").unwrap();
    let e = a
        .push(Attribute {
            name,
            value: Value::Int(1),
        })
        .unwrap_err();
    assert!(matches!(e, SearchError::ReservedName { .. }));
    let e = a
        .push(Attribute {
            name: AttributeName::new("s").unwrap(),
            value: Value::String("bell \u{7}".into()),
        })
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid attribute XML: character U+0007 cannot appear in XML"
    );
    assert!(a.is_empty());
}

#[test]
fn nothing_panics_on_nasty_inputs() {
    for xml in [
        "<",
        "<<<<",
        "<attributes",
        "<attributes><attribute",
        "<attributes><attribute name=\"",
        "&",
        "&#xFFFFFFFF;",
        "<attributes><attribute name=\"a\" type=\"string\">&#xD800;</attribute></attributes>",
        "<attributes><attribute name=\"a\" type=\"string\">&#;</attribute></attributes>",
        "\u{feff}",
        "\u{feff}<attributes/>",
        "<attributes><!-- -- --></attributes>",
        "<attributes><![CDATA[</attributes>",
    ] {
        let _ = Attributes::parse(xml);
    }
    assert_eq!(
        Attributes::parse("\u{feff}<attributes/>").unwrap(),
        Attributes::new()
    );
}

#[test]
fn many_lines_near_the_size_limit_parse_quickly() {
    let one = "<attribute name=\"a\" type=\"int\">1</attribute>\n";
    let body = one.repeat(MAX_ATTRIBUTES);
    let padding = "<!-- padding -->\n".repeat((MAX_ATTRIBUTES_XML_BYTES - body.len() - 100) / 17);
    let xml = format!("<attributes>\n{padding}{body}</attributes>");
    assert!(xml.len() <= MAX_ATTRIBUTES_XML_BYTES);
    let start = std::time::Instant::now();
    assert_eq!(Attributes::parse(&xml).unwrap().len(), MAX_ATTRIBUTES);
    // A late error still reports the right line.
    let fewer = one.repeat(MAX_ATTRIBUTES - 1);
    let bad = format!("<attributes>\n{padding}{fewer}<bogus/></attributes>");
    match Attributes::parse(&bad) {
        Err(SearchError::Schema { line, .. }) => assert_eq!(line, bad.lines().count()),
        other => panic!("{other:?}"),
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
