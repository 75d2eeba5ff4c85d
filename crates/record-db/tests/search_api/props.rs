//! Property tests: round trips, no panics, and wildcard matching against a reference.

use peergroup_identity::Timestamp;
use peergroup_record_db::search::{
    Attribute, AttributeName, Attributes, Clause, ClauseValue, Compare, MAX_DATE, Node, Pattern,
    PatternToken, Query, Value,
};
use proptest::prelude::*;

use crate::support::fields;

fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}')
}

/// Characters that stress escaping, plus any XML character.
fn awkward_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            ' ', '\t', '\n', '\r', '<', '>', '&', '"', '\'', '*', '?', '\\', ']', ';', '#', 'a',
            'Z', 'é', '€', '漢', '🎉', '\u{fffd}', '\u{feff}',
        ]),
        1 => any::<char>().prop_filter("XML character", |c| is_xml_char(*c)),
    ]
}

fn awkward_string() -> impl Strategy<Value = String> {
    prop::collection::vec(awkward_char(), 0..24).prop_map(|v| v.into_iter().collect())
}

fn name() -> impl Strategy<Value = AttributeName> {
    prop_oneof![
        4 => "[0-9a-zA-Z]{1,40}",
        1 => prop::sample::select(vec![
            "peercreatorid", "PeerRecordId", "PEERRECORDTYPE", "peerlastmodifiedby",
            "peercreationtime", "peerlastmodificationtime", "Owner", "owner",
        ]).prop_map(str::to_owned),
    ]
    .prop_map(|s| AttributeName::new(&s).unwrap())
}

fn date() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (0..=MAX_DATE.as_millis()).prop_map(Timestamp::from_millis),
        // Whole days and whole seconds take the shorter canonical forms.
        (0..=MAX_DATE.as_millis() / 86_400_000)
            .prop_map(|d| Timestamp::from_millis(d * 86_400_000)),
        (0..=MAX_DATE.as_millis() / 1000).prop_map(Timestamp::from_secs),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        awkward_string().prop_map(Value::String),
        any::<i64>().prop_map(Value::Int),
        date().prop_map(Value::Date),
    ]
}

fn attributes() -> impl Strategy<Value = Attributes> {
    let attribute =
        (name(), value()).prop_filter_map("reserved names are refused", |(name, value)| {
            name.reserved()
                .is_none()
                .then_some(Attribute { name, value })
        });
    prop::collection::vec(attribute, 0..12).prop_map(|list| {
        let mut a = Attributes::new();
        for attribute in list {
            a.push(attribute).unwrap();
        }
        a
    })
}

fn pattern_token() -> impl Strategy<Value = PatternToken> {
    prop_oneof![
        4 => awkward_char().prop_map(PatternToken::Char),
        1 => Just(PatternToken::AnyChar),
        1 => Just(PatternToken::AnyString),
    ]
}

fn clause() -> impl Strategy<Value = Node> {
    let compare = prop::sample::select(vec![
        Compare::Equal,
        Compare::NotEqual,
        Compare::Less,
        Compare::Greater,
        Compare::LessOrEqual,
        Compare::GreaterOrEqual,
    ]);
    let value = prop_oneof![
        prop::collection::vec(pattern_token(), 0..12)
            .prop_map(|t| ClauseValue::String(Pattern::from_tokens(t))),
        any::<i64>().prop_map(ClauseValue::Int),
        date().prop_map(ClauseValue::Date),
    ];
    (name(), compare, value).prop_map(|(n, c, v)| Node::Clause(Clause::new(n, c, v).unwrap()))
}

fn node() -> impl Strategy<Value = Node> {
    clause().prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Node::And),
            prop::collection::vec(inner, 1..4).prop_map(Node::Or),
        ]
    })
}

/// The obvious recursive matcher, exponential in the worst case: fine for short inputs.
fn reference_match(p: &[PatternToken], s: &[char]) -> bool {
    match (p.first(), s.first()) {
        (None, _) => s.is_empty(),
        (Some(PatternToken::AnyString), _) => {
            reference_match(&p[1..], s) || (!s.is_empty() && reference_match(p, &s[1..]))
        }
        (Some(_), None) => false,
        (Some(PatternToken::AnyChar), Some(_)) => reference_match(&p[1..], &s[1..]),
        (Some(PatternToken::Char(c)), Some(d)) => c == d && reference_match(&p[1..], &s[1..]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn attributes_round_trip(a in attributes()) {
        let xml = a.to_xml();
        prop_assert_eq!(Attributes::parse(&xml), Ok(a.clone()));
        // Pretty-printing between elements does not change the meaning.
        let pretty = xml.replace("<attribute ", "\n  <attribute ").replace("</attributes>", "\n</attributes>\n");
        prop_assert_eq!(Attributes::parse(&pretty), Ok(a));
    }

    #[test]
    fn queries_round_trip(root in node()) {
        let q = Query::new(root).unwrap();
        let xml = q.to_xml();
        prop_assert_eq!(Query::parse(&xml), Ok(q));
    }

    #[test]
    fn round_tripped_queries_give_the_same_answers(root in node(), a in attributes()) {
        let q = Query::new(root).unwrap();
        let again = Query::parse(&q.to_xml()).unwrap();
        let f = fields(&a);
        prop_assert_eq!(q.matches(&f), again.matches(&f));
    }

    #[test]
    fn parsers_never_panic_on_arbitrary_text(s in any::<String>()) {
        let _ = Attributes::parse(&s);
        let _ = Query::parse(&s);
        let _ = Pattern::parse(&s);
    }

    #[test]
    fn parsers_never_panic_on_xmlish_text(
        s in prop::collection::vec(prop_oneof![
            Just("<".to_owned()), Just(">".to_owned()), Just("/".to_owned()), Just("=".to_owned()),
            Just("\"".to_owned()), Just("&".to_owned()), Just(";".to_owned()), Just("#".to_owned()),
            Just("peersearch".to_owned()), Just("and".to_owned()), Just("or".to_owned()),
            Just("clause".to_owned()), Just("attributes".to_owned()), Just("attribute".to_owned()),
            Just(" attrib=\"a\"".to_owned()), Just(" type=\"int\"".to_owned()),
            Just(" type=\"date\"".to_owned()), Just(" type=\"string\"".to_owned()),
            Just(" name=\"n\"".to_owned()), Just(" compare=\"less\"".to_owned()),
            Just("<!DOCTYPE".to_owned()), Just("<![CDATA[".to_owned()), Just("]]>".to_owned()),
            Just("<!--".to_owned()), Just("-->".to_owned()), Just("<?xml".to_owned()),
            Just("?>".to_owned()), Just("1".to_owned()), Just("-".to_owned()),
            Just("1972-04-04".to_owned()), Just("\\".to_owned()), Just("*".to_owned()),
            "[ -~]{0,3}",
        ], 0..40)
    ) {
        let s: String = s.concat();
        if let Ok(a) = Attributes::parse(&s) {
            prop_assert_eq!(Attributes::parse(&a.to_xml()), Ok(a));
        }
        if let Ok(q) = Query::parse(&s) {
            prop_assert_eq!(Query::parse(&q.to_xml()), Ok(q));
        }
    }

    #[test]
    fn wildcards_agree_with_the_reference(
        p in prop::collection::vec(prop_oneof![
            3 => prop::sample::select(vec!['a', 'b', 'é']).prop_map(PatternToken::Char),
            1 => Just(PatternToken::AnyChar),
            2 => Just(PatternToken::AnyString),
        ], 0..10),
        s in "[abé]{0,12}",
    ) {
        let chars: Vec<char> = s.chars().collect();
        let pattern = Pattern::from_tokens(p.clone());
        prop_assert_eq!(pattern.matches(&s), reference_match(&p, &chars));
        // And through the text form.
        let reparsed = Pattern::parse(&pattern.to_query_text()).unwrap();
        prop_assert_eq!(reparsed, pattern);
    }

    #[test]
    fn literal_patterns_match_exactly_themselves(a in awkward_string(), b in awkward_string()) {
        let p = Pattern::literal(&a);
        prop_assert!(p.matches(&a));
        prop_assert_eq!(p.matches(&b), a == b);
    }

    #[test]
    fn string_ordering_agrees_with_str_ordering(a in awkward_string(), b in awkward_string()) {
        let attrs = Attributes::new().with_string("s", a.clone()).unwrap();
        let f = fields(&attrs);
        let pattern = ClauseValue::String(Pattern::literal(&b));
        for (compare, expected) in [
            (Compare::Less, a < b),
            (Compare::Greater, a > b),
            (Compare::LessOrEqual, a <= b),
            (Compare::GreaterOrEqual, a >= b),
        ] {
            let c = Clause::new(AttributeName::new("s").unwrap(), compare, pattern.clone()).unwrap();
            prop_assert_eq!(c.matches(&f), expected);
        }
    }
}
