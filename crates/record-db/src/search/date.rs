//! `date` values: the W3C date-time profile of ISO 8601 (W3C NOTE-datetime), to and from
//! [`Timestamp`].
//!
//! Accepted forms (`TZD` is `Z`, `+hh:mm` or `-hh:mm`):
//!
//! | form | example |
//! |------|---------|
//! | `YYYY` | `1997` |
//! | `YYYY-MM` | `1997-07` |
//! | `YYYY-MM-DD` | `1997-07-16` |
//! | `YYYY-MM-DDThh:mmTZD` | `1997-07-16T19:20+01:00` |
//! | `YYYY-MM-DDThh:mm:ssTZD` | `1997-07-16T19:20:30Z` |
//! | `YYYY-MM-DDThh:mm:ss.sTZD` | `1997-07-16T19:20:30.45-05:00` |
//!
//! Dates without a time are midnight UTC (a missing month or day is the first). A time needs
//! a zone designator, as the W3C profile says (local time means nothing to a group spread
//! over time zones). Fractions may have 1 to 9 digits and are truncated to milliseconds.
//! `T` and `Z` are upper case; hours are 00–23 (no `24:00`), no leap seconds.
//!
//! [`Timestamp`] counts milliseconds from 1970-01-01T00:00:00Z without a sign, so dates
//! before the epoch (after applying the offset) are refused with a clear error rather than
//! clamped; the latest date is 9999-12-31T23:59:59.999Z, the last one four-digit years reach.
//!
//! The components are read and the calendar checked by the `time` crate, one piece of the
//! form at a time through [`Parsed`], so an error names the piece that was wrong. `time`'s
//! well-known formats do not do the job: `Rfc3339` needs seconds and accepts a lower-case
//! `t`/`z`, and `Iso8601` has no `YYYY`/`YYYY-MM` forms; a single format description with
//! `[optional …]` parts would do, but it swallows the error of an optional part ("unexpected
//! text" instead of "the month must be 01 to 12"). The few checks below that are not
//! `time`'s each say why.

use std::num::NonZero;

use peergroup_identity::Timestamp;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::parsing::Parsed;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// The latest date a `date` value can hold: 9999-12-31T23:59:59.999Z.
pub const MAX_DATE: Timestamp = Timestamp::from_millis(253_402_300_799_999);

const YEAR: &[BorrowedFormatItem<'_>] = format_description!("[year range:standard]");
const MONTH: &[BorrowedFormatItem<'_>] = format_description!("-[month]");
const DAY: &[BorrowedFormatItem<'_>] = format_description!("-[day]");
const HOUR_MINUTE: &[BorrowedFormatItem<'_>] = format_description!("T[hour]:[minute]");
const SECOND: &[BorrowedFormatItem<'_>] = format_description!(":[second]");
const FRACTION: &[BorrowedFormatItem<'_>] = format_description!(".[subsecond digits:1+]");
const OFFSET_HOUR: &[BorrowedFormatItem<'_>] = format_description!("[offset_hour sign:mandatory]");
const OFFSET_MINUTE: &[BorrowedFormatItem<'_>] = format_description!(":[offset_minute]");

/// Parses a W3C date-time; the error says what was wrong.
pub(crate) fn parse_date(text: &str) -> Result<Timestamp, &'static str> {
    let mut p = Parsed::new();
    // `time`'s `[year]` also takes a leading `+` or `-`; the W3C profile has no sign.
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a four-digit year (YYYY)");
    }
    let mut rest = step(
        &mut p,
        text.as_bytes(),
        YEAR,
        "expected a four-digit year (YYYY)",
    )?;
    let mut has_time = false;
    if rest.first() == Some(&b'-') {
        let why = "expected a two-digit month 01 to 12 after YYYY";
        rest = step(&mut p, rest, MONTH, why)?;
        if rest.first() == Some(&b'-') {
            let why = "expected a two-digit day after YYYY-MM, or the day does not exist";
            rest = step(&mut p, rest, DAY, why)?;
            if rest.first() == Some(&b'T') {
                has_time = true;
                rest = parse_time(&mut p, rest)?;
            }
        }
    }
    if !rest.is_empty() {
        return Err(
            "unexpected text; expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.s]] \
             followed by Z or ±hh:mm",
        );
    }
    let date = Date::from_calendar_date(
        p.year().ok_or("expected a four-digit year (YYYY)")?,
        p.month().unwrap_or(Month::January),
        p.day().map_or(1, NonZero::get),
    )
    .map_err(|_| "the day does not exist in that month")?;
    let time = if has_time {
        Time::from_hms_nano(
            p.hour_24().unwrap_or(0),
            p.minute().unwrap_or(0),
            p.second().unwrap_or(0),
            p.subsecond().unwrap_or(0),
        )
        // `time` reads a second of 60 (a leap second) and refuses it here.
        .map_err(|_| "seconds must be 00 to 59")?
    } else {
        Time::MIDNIGHT
    };
    let offset = UtcOffset::from_hms(
        p.offset_hour().unwrap_or(0),
        p.offset_minute_signed().unwrap_or(0),
        0,
    )
    .map_err(|_| "the zone offset must be -23:59 to +23:59")?;
    to_timestamp(PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// Parses `Thh:mm[:ss[.fraction]]TZD` into `p`; returns what follows.
fn parse_time<'a>(p: &mut Parsed, text: &'a [u8]) -> Result<&'a [u8], &'static str> {
    let mut rest = step(
        p,
        text,
        HOUR_MINUTE,
        "expected a time hh:mm, 00:00 to 23:59, after T",
    )?;
    if rest.first() == Some(&b':') {
        rest = step(
            p,
            rest,
            SECOND,
            "expected two-digit seconds 00 to 59 after hh:mm:",
        )?;
        if rest.first() == Some(&b'.') {
            // `time` reads up to 32 digits and drops those past the ninth; this profile
            // takes at most 9 (nanoseconds), so more is refused rather than cut silently.
            let digits = rest
                .iter()
                .skip(1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let why = "a fraction of a second needs 1 to 9 digits";
            if digits > 9 {
                return Err(why);
            }
            rest = step(p, rest, FRACTION, why)?;
        }
    }
    if let Some(after) = rest.strip_prefix(b"Z") {
        return Ok(after);
    }
    let why = "a time needs a zone designator: Z, +hh:mm or -hh:mm";
    rest = step(p, rest, OFFSET_HOUR, why)?;
    // `time` takes offsets up to ±25:59:59; the W3C profile's hours are 00 to 23.
    if p.offset_hour().is_some_and(|h| !(-23..=23).contains(&h)) {
        return Err("the zone offset must be -23:59 to +23:59");
    }
    let why = "expected ':' in the zone offset (±hh:mm) and two-digit offset minutes 00 to 59";
    step(p, rest, OFFSET_MINUTE, why)
}

/// Reads `items` at the front of `text` into `p`; on failure the error is `why`.
fn step<'a>(
    p: &mut Parsed,
    text: &'a [u8],
    items: &[BorrowedFormatItem<'_>],
    why: &'static str,
) -> Result<&'a [u8], &'static str> {
    p.parse_items(text, items).map_err(|_| why)
}

/// Milliseconds since the epoch (the fraction truncated), if in `0..=MAX_DATE`.
fn to_timestamp(t: OffsetDateTime) -> Result<Timestamp, &'static str> {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    let ms =
        u64::try_from(ms).map_err(|_| "dates before 1970-01-01T00:00:00Z are not supported")?;
    let t = Timestamp::from_millis(ms);
    if t > MAX_DATE {
        return Err("dates after 9999-12-31T23:59:59.999Z are not supported");
    }
    Ok(t)
}

/// Canonical text: `YYYY-MM-DD` for midnight UTC, else `YYYY-MM-DDThh:mm:ssZ`, with `.sss`
/// when there are milliseconds. `None` after [`MAX_DATE`].
pub(crate) fn format_date(t: Timestamp) -> Option<String> {
    if t > MAX_DATE {
        return None;
    }
    let t =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.as_millis()) * 1_000_000).ok()?;
    let format = if t.time() == Time::MIDNIGHT {
        format_description!("[year]-[month]-[day]")
    } else if t.millisecond() == 0 {
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z")
    } else {
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z")
    };
    t.format(format).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u64 {
        parse_date(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .as_millis()
    }

    #[test]
    fn all_forms_parse() {
        assert_eq!(ms("1970"), 0);
        assert_eq!(ms("1970-01"), 0);
        assert_eq!(ms("1970-01-02"), 86_400_000);
        assert_eq!(ms("1972-04-04"), 71_193_600_000);
        assert_eq!(ms("1997-07-16T19:20+01:00"), 869_077_200_000);
        assert_eq!(ms("1997-07-16T19:20:30+01:00"), 869_077_230_000);
        assert_eq!(ms("1997-07-16T19:20:30.45+01:00"), 869_077_230_450);
        assert_eq!(ms("1997-07-16T18:20:30.450Z"), 869_077_230_450);
        assert_eq!(ms("1997-07-16T18:20:30.4509999Z"), 869_077_230_450);
        assert_eq!(ms("1997-07-16T13:20:30.45-05:00"), 869_077_230_450);
        assert_eq!(ms("2000-02-29"), 951_782_400_000);
        assert_eq!(ms("9999-12-31T23:59:59.999Z"), MAX_DATE.as_millis());
        assert_eq!(ms("1970-01-01T00:30+00:30"), 0);
        assert_eq!(ms("1969-12-31T23:00-01:00"), 0);
    }

    #[test]
    fn bad_dates_say_why() {
        for (text, why) in [
            ("", "four-digit year"),
            ("72", "four-digit year"),
            ("１９７２", "four-digit year"),
            ("1972-4-04", "month"),
            ("1972-13", "01 to 12"),
            ("1972-00", "01 to 12"),
            ("1973-02-29", "does not exist"),
            ("1900-02-29", "does not exist"),
            ("1972-04-31", "does not exist"),
            ("1972-04-00", "does not exist"),
            ("1972-04-04T10:00", "zone designator"),
            ("1972-04-04T24:00Z", "00:00 to 23:59"),
            ("1972-04-04T10:60Z", "00:00 to 23:59"),
            ("1972-04-04T10:00:60Z", "00 to 59"),
            ("1972-04-04T10:00:00.Z", "1 to 9 digits"),
            ("1972-04-04T10:00:00.1234567890Z", "1 to 9 digits"),
            ("1972-04-04T10:00+0100", "':' in the zone"),
            ("1972-04-04T10:00+24:00", "-23:59 to +23:59"),
            ("1972-04-04t10:00Z", "unexpected text"),
            ("1972-04-04T10:00z", "zone designator"),
            ("1972-04-04 ", "unexpected text"),
            (" 1972", "four-digit year"),
            ("1969-12-31", "before 1970"),
            ("1970-01-01T00:00+00:01", "before 1970"),
            ("0000", "before 1970"),
            ("19720", "unexpected text"),
            ("+1972", "four-digit year"),
            ("-1972", "four-digit year"),
            ("1972-04-04T10:00:00.5+25:00", "-23:59 to +23:59"),
            ("1972-04-04T10:00-00:60", "offset minutes"),
            ("9999-12-31T23:59-00:01", "after 9999"),
        ] {
            match parse_date(text) {
                Err(e) => assert!(e.contains(why), "{text:?}: {e:?} lacks {why:?}"),
                Ok(t) => panic!("{text:?} parsed as {t:?}"),
            }
        }
    }

    #[test]
    fn canonical_text_round_trips() {
        for text in [
            "1970-01-01",
            "1972-04-04",
            "2000-02-29T12:00:00Z",
            "2024-12-31T23:59:59.001Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            let t = parse_date(text).unwrap();
            assert_eq!(format_date(t).as_deref(), Some(text));
        }
        assert_eq!(
            format_date(Timestamp::from_millis(MAX_DATE.as_millis() + 1)),
            None
        );
        for days in [0u64, 59, 60, 365, 10_957, 2_932_896] {
            let t = Timestamp::from_millis(days * 86_400_000);
            let text = format_date(t).unwrap();
            assert_eq!(parse_date(&text), Ok(t), "{text}");
        }
    }
}
