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

use peergroup_identity::Timestamp;

/// The latest date a `date` value can hold: 9999-12-31T23:59:59.999Z.
pub const MAX_DATE: Timestamp = Timestamp::from_millis(253_402_300_799_999);

const MS_PER_DAY: i64 = 86_400_000;

/// Parses a W3C date-time; the error says what was wrong.
pub(crate) fn parse_date(text: &str) -> Result<Timestamp, &'static str> {
    let mut cur = Cursor { rest: text };
    let year = cur.digits(4).ok_or("expected a four-digit year (YYYY)")?;
    let mut month = 1;
    let mut day = 1;
    let mut ms_of_day: i64 = 0;
    let mut offset_ms: i64 = 0;
    if cur.eat('-') {
        month = cur
            .digits(2)
            .ok_or("expected a two-digit month after YYYY-")?;
        if !(1..=12).contains(&month) {
            return Err("the month must be 01 to 12");
        }
        if cur.eat('-') {
            day = cur
                .digits(2)
                .ok_or("expected a two-digit day after YYYY-MM-")?;
            if day < 1 || day > days_in_month(year, month) {
                return Err("the day does not exist in that month");
            }
            if cur.eat('T') {
                let (time, offset) = parse_time(&mut cur)?;
                ms_of_day = time;
                offset_ms = offset;
            }
        }
    }
    if !cur.rest.is_empty() {
        return Err(
            "unexpected text; expected YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.s]] \
             followed by Z or ±hh:mm",
        );
    }
    let ms = days_from_civil(year, month, day)
        .saturating_mul(MS_PER_DAY)
        .saturating_add(ms_of_day)
        .saturating_sub(offset_ms);
    match u64::try_from(ms) {
        Ok(ms) => Ok(Timestamp::from_millis(ms)),
        Err(_) => Err("dates before 1970-01-01T00:00:00Z are not supported"),
    }
}

/// Parses `hh:mm[:ss[.fraction]]TZD`; returns (milliseconds into the day, offset in ms).
fn parse_time(cur: &mut Cursor<'_>) -> Result<(i64, i64), &'static str> {
    let hour = cur.digits(2).ok_or("expected a two-digit hour after T")?;
    if !cur.eat(':') {
        return Err("expected ':' after the hour");
    }
    let minute = cur
        .digits(2)
        .ok_or("expected two-digit minutes after hh:")?;
    if hour > 23 || minute > 59 {
        return Err("the time must be 00:00 to 23:59");
    }
    let mut second = 0;
    let mut millis = 0;
    if cur.eat(':') {
        second = cur
            .digits(2)
            .ok_or("expected two-digit seconds after hh:mm:")?;
        if second > 59 {
            return Err("seconds must be 00 to 59");
        }
        if cur.eat('.') {
            let fraction = cur.take_digits();
            if fraction.is_empty() || fraction.len() > 9 {
                return Err("a fraction of a second needs 1 to 9 digits");
            }
            for (i, b) in fraction.bytes().take(3).enumerate() {
                let scale = [100, 10, 1].get(i).copied().unwrap_or(0);
                millis += i64::from(b - b'0') * scale;
            }
        }
    }
    let offset = if cur.eat('Z') {
        0
    } else {
        let sign = if cur.eat('+') {
            1
        } else if cur.eat('-') {
            -1
        } else {
            return Err("a time needs a zone designator: Z, +hh:mm or -hh:mm");
        };
        let oh = cur.digits(2).ok_or("expected a two-digit offset hour")?;
        if !cur.eat(':') {
            return Err("expected ':' in the zone offset (±hh:mm)");
        }
        let om = cur.digits(2).ok_or("expected two-digit offset minutes")?;
        if oh > 23 || om > 59 {
            return Err("the zone offset must be -23:59 to +23:59");
        }
        sign * (oh * 60 + om) * 60_000
    };
    let time = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    Ok((time, offset))
}

/// Canonical text: `YYYY-MM-DD` for midnight UTC, else `YYYY-MM-DDThh:mm:ssZ`, with `.sss`
/// when there are milliseconds. `None` after [`MAX_DATE`].
pub(crate) fn format_date(t: Timestamp) -> Option<String> {
    if t > MAX_DATE {
        return None;
    }
    let ms = i64::try_from(t.as_millis()).ok()?;
    let (days, ms_of_day) = (ms / MS_PER_DAY, ms % MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!("{y:04}-{m:02}-{d:02}");
    if ms_of_day != 0 {
        let (secs, millis) = (ms_of_day / 1000, ms_of_day % 1000);
        let (hh, mm, ss) = (secs / 3600, secs / 60 % 60, secs % 60);
        out.push_str(&format!("T{hh:02}:{mm:02}:{ss:02}"));
        if millis != 0 {
            out.push_str(&format!(".{millis:03}"));
        }
        out.push('Z');
    }
    Some(out)
}

struct Cursor<'a> {
    rest: &'a str,
}

impl Cursor<'_> {
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// Exactly `n` ASCII digits, as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let head = self.rest.get(..n)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.rest = self.rest.get(n..)?;
        head.parse().ok()
    }

    /// All leading ASCII digits.
    fn take_digits(&mut self) -> &str {
        let end = self
            .rest
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.rest.len());
        let (head, rest) = self.rest.split_at_checked(end).unwrap_or((self.rest, ""));
        self.rest = rest;
        head
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
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
        for days in [0i64, 59, 60, 365, 10_957, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
