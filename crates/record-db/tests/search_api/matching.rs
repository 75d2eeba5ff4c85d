//! Evaluating queries against records.

use std::time::{Duration, Instant};

use peergroup_identity::Timestamp;
use peergroup_record_db::search::{Attributes, Pattern, SearchFields};

use crate::support::{clause, fields, query};

fn record() -> Attributes {
    Attributes::new()
        .with_string("Owner", "Scott")
        .and_then(|a| a.with_string("Title", "a*b?c\\d"))
        .and_then(|a| a.with_string("Empty", ""))
        .and_then(|a| a.with_int("Priority", 5))
        .and_then(|a| a.with_int("Offset", -3))
        // 1972-04-04T00:00:00Z
        .and_then(|a| a.with_date("Birthday", Timestamp::from_millis(71_193_600_000)))
        .unwrap()
}

fn check(f: &SearchFields<'_>, attrib: &str, ty: &str, cases: &[(&str, &str, bool)]) {
    for (compare, value, expected) in cases {
        let body = clause(attrib, ty, compare, value);
        assert_eq!(query(&body).matches(f), *expected, "{body}");
    }
}

#[test]
fn every_compare_on_ints() {
    let a = record();
    let f = fields(&a);
    check(
        &f,
        "Priority",
        "int",
        &[
            ("equal", "5", true),
            ("equal", "005", true),
            ("equal", "6", false),
            ("notequal", "6", true),
            ("notequal", "5", false),
            ("less", "6", true),
            ("less", "5", false),
            ("greater", "4", true),
            ("greater", "5", false),
            ("lessorequal", "5", true),
            ("lessorequal", "4", false),
            ("greaterorequal", "5", true),
            ("greaterorequal", "6", false),
        ],
    );
    check(
        &f,
        "Offset",
        "int",
        &[
            ("less", "0", true),
            ("greater", "-4", true),
            ("equal", "-3", true),
            ("greater", "-9223372036854775808", true),
            ("less", "9223372036854775807", true),
        ],
    );
}

#[test]
fn every_compare_on_dates() {
    let a = record();
    let f = fields(&a);
    check(
        &f,
        "Birthday",
        "date",
        &[
            ("equal", "1972-04-04", true),
            ("equal", "1972-04-04T00:00:00.000Z", true),
            ("equal", "1972-04-04T01:00+01:00", true),
            ("equal", "1972-04-04T00:00:00.001Z", false),
            ("notequal", "1972", true),
            ("notequal", "1972-04-04", false),
            ("less", "1972-04-05", true),
            ("less", "1972-04-04", false),
            ("greater", "1972", true),
            ("greater", "1972-04-04", false),
            ("lessorequal", "1972-04-04", true),
            ("lessorequal", "1972-04-03T23:59:59.999Z", false),
            ("greaterorequal", "1972-04-04", true),
            ("greaterorequal", "1972-04-04T00:00:00.001Z", false),
        ],
    );
}

#[test]
fn every_compare_on_strings() {
    let a = record();
    let f = fields(&a);
    check(
        &f,
        "Owner",
        "string",
        &[
            ("equal", "Scott", true),
            ("equal", "scott", false),
            ("equal", "Scott ", false),
            ("notequal", "Bob", true),
            ("notequal", "Scott", false),
            ("less", "Scotty", true),
            ("less", "Scott", false),
            ("greater", "Scot", true),
            ("greater", "Scott", false),
            // Upper case sorts before lower case (Unicode order).
            ("greater", "SCOTT", true),
            ("lessorequal", "Scott", true),
            ("lessorequal", "Scots", false),
            ("greaterorequal", "Scott", true),
            ("greaterorequal", "Scottie", false),
        ],
    );
    check(
        &f,
        "Empty",
        "string",
        &[
            ("equal", "", true),
            ("equal", "*", true),
            ("equal", "?", false),
            ("less", "a", true),
        ],
    );
}

#[test]
fn wildcards_and_escapes() {
    let a = record();
    let f = fields(&a);
    check(
        &f,
        "Owner",
        "string",
        &[
            ("equal", "S*", true),
            ("equal", "*t", true),
            ("equal", "*", true),
            ("equal", "S?ott", true),
            ("equal", "S??tt", true),
            ("equal", "S?tt", false),
            ("equal", "?????", true),
            ("equal", "??????", false),
            ("equal", "*c*", true),
            ("equal", "*x*", false),
            ("notequal", "S*", false),
            ("notequal", "B*", true),
            // Ordering compares take wildcard characters literally.
            ("less", "S*", false),
            ("greater", "S*", true),
        ],
    );
    // Title is `a*b?c\d`: escapes match the characters themselves.
    check(
        &f,
        "Title",
        "string",
        &[
            ("equal", "a\\*b\\?c\\\\d", true),
            ("equal", "a\\*b?c\\\\d", true),
            ("equal", "a*\\\\d", true),
            ("equal", "a\\**", true),
            ("equal", "ax\\*", false),
            ("equal", "a\\?*", false),
            ("lessorequal", "a\\*b\\?c\\\\d", true),
            ("greaterorequal", "a*b?c\\\\d", true),
        ],
    );
}

#[test]
fn nested_and_or() {
    let a = record();
    let f = fields(&a);
    let yes = clause("Owner", "string", "equal", "Scott");
    let no = clause("Owner", "string", "equal", "Bob");
    let cases = [
        (format!("<and>{yes}{yes}</and>"), true),
        (format!("<and>{yes}{no}</and>"), false),
        (format!("<or>{no}{yes}</or>"), true),
        (format!("<or>{no}{no}</or>"), false),
        (
            format!("<and>{yes}<or>{no}<and>{yes}{yes}</and></or></and>"),
            true,
        ),
        (
            format!("<and>{yes}<or>{no}<and>{yes}{no}</and></or></and>"),
            false,
        ),
        (
            format!("<or><and>{no}</and><or><or>{yes}</or></or></or>"),
            true,
        ),
        (format!("<and><and><and>{no}</and></and></and>"), false),
    ];
    for (body, expected) in cases {
        assert_eq!(query(&body).matches(&f), expected, "{body}");
    }
}

#[test]
fn reserved_names_search_the_record_fields() {
    let a = Attributes::new();
    let mut f = fields(&a);
    check(
        &f,
        "peercreatorid",
        "string",
        &[
            ("equal", "James Peters", true),
            ("equal", "James*", true),
            ("equal", "james peters", false),
        ],
    );
    check(
        &f,
        "PeerLastModifiedBy",
        "string",
        &[("equal", "Alice", true), ("notequal", "Alice", false)],
    );
    // GUID fields compare case-insensitively.
    check(
        &f,
        "peerrecordid",
        "string",
        &[
            ("equal", "{0B1C2D3E-0000-4000-8000-00000000000A}", true),
            ("equal", "{0b1c2d3e-*}", true),
            ("notequal", "{0B1C2D3E-*}", false),
            ("less", "{1", true),
        ],
    );
    check(
        &f,
        "peerrecordtype",
        "string",
        &[("equal", "{F00DCAFE*", true), ("equal", "{0b1c*", false)],
    );
    check(
        &f,
        "peercreationtime",
        "date",
        &[
            ("equal", "2001-09-09T01:46:40Z", true),
            ("greater", "2001-09-09", true),
            ("less", "2001-09-09", false),
        ],
    );
    check(
        &f,
        "peerlastmodificationtime",
        "date",
        &[
            ("greaterorequal", "2004-11-09T11:33:20Z", true),
            ("greater", "2004-11-09T11:33:20Z", false),
        ],
    );
    // Wrong type for the field: no match.
    check(&f, "peercreationtime", "string", &[("equal", "*", false)]);
    check(&f, "peercreatorid", "date", &[("greater", "1970", false)]);
    // Never modified: the modifier is the empty string.
    f.last_modified_by = "";
    check(
        &f,
        "peerlastmodifiedby",
        "string",
        &[("equal", "", true), ("equal", "?*", false)],
    );
}

#[test]
fn names_ignore_case_values_do_not() {
    let a = record();
    let f = fields(&a);
    check(
        &f,
        "OWNER",
        "string",
        &[("equal", "Scott", true), ("equal", "SCOTT", false)],
    );
    check(&f, "priority", "int", &[("equal", "5", true)]);
}

#[test]
fn type_mismatch_and_missing_attributes_never_match() {
    let a = record();
    let f = fields(&a);
    check(
        &f,
        "Priority",
        "string",
        &[("equal", "5", false), ("notequal", "x", false)],
    );
    check(&f, "Owner", "int", &[("notequal", "1", false)]);
    check(&f, "Birthday", "int", &[("greater", "0", false)]);
    check(
        &f,
        "Nobody",
        "string",
        &[("notequal", "x", false), ("equal", "*", false)],
    );
}

#[test]
fn wildcard_matching_is_linear_ish() {
    let text = "a".repeat(200_000);
    let start = Instant::now();
    assert!(!Pattern::parse("*a*a*a*a*a*a*b").unwrap().matches(&text));
    assert!(Pattern::parse("*a*a*a*a*a*a*").unwrap().matches(&text));
    let mut many_stars = "*a".repeat(40);
    many_stars.push('b');
    assert!(!Pattern::parse(&many_stars).unwrap().matches(&text));
    // As long as attribute XML allows.
    let a = Attributes::new()
        .with_string("s", "a".repeat(60_000))
        .unwrap();
    let f = fields(&a);
    assert!(!query(&clause("s", "string", "equal", "*a*a*a*a*a*a*b")).matches(&f));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}
