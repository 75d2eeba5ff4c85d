//! Text that reaches a terminal: inert, whoever wrote it.
//!
//! Every member may be hostile, and so may every file: a chat message, a friendly name, a
//! record's payload or attributes, a refusal reason sent by a peer, or an error quoting what
//! the user typed can hold bytes a terminal obeys: escape sequences that set the window
//! title, clear the screen or move the cursor; carriage returns and newlines that overwrite
//! or invent lines (`Alice: …` typed by Mallory); bidi overrides that reverse what follows;
//! invisible characters that make two names look alike. [`inert`] turns each such character
//! into a visible escape, and everything the CLI prints for a person goes through it:
//! [`print_line`], error messages ([`crate::util::one_line`]), the chat (both modes) and the
//! logs written to standard error ([`InertWriter`]).
//!
//! JSON output is left alone: serde escapes control characters, and a program reads it.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Result;

/// `text` made safe to show on a terminal: C0 and C1 control characters, DEL (so ESC, CR, LF,
/// BEL, backspace, tab), Unicode line and paragraph separators, bidi embeddings, overrides,
/// isolates and marks, and invisible format characters (zero-width spaces, joiners, word
/// joiners, the byte order mark, tags, fillers …) become visible escapes: `\n`, `\r`, `\t`,
/// or `\u{…}` with the code point in lower-case hex (`\u{1b}`, `\u{202e}`). Everything else,
/// accents, CJK and emoji included, is kept as is.
///
/// Two joiners are kept where text needs them: U+200D (ZWJ) and U+200C (ZWNJ) between two
/// visible non-ASCII characters (emoji sequences like 👩‍👩‍👧, Persian and Indic words), and
/// the tag characters of a flag sequence right after 🏴. Neither moves the cursor; between
/// ASCII letters, or alone, they are escaped, so `Al\u{200c}ice` does not pass for `Alice`.
///
/// The result is for reading, not for parsing back: a backslash is left as it is.
pub(crate) fn inert(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_suspect) {
        return Cow::Borrowed(text);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut in_flag_tags = false;
    for (i, &c) in chars.iter().enumerate() {
        let keep = match c {
            '\u{200C}' | '\u{200D}' => {
                let before = i.checked_sub(1).and_then(|j| chars.get(j)).copied();
                let after = chars.get(i + 1).copied();
                before.is_some_and(joins) && after.is_some_and(joins)
            }
            '\u{E0020}'..='\u{E007F}' => in_flag_tags,
            c => !is_unsafe(c),
        };
        in_flag_tags = match c {
            '\u{1F3F4}' => true,
            '\u{E007F}' => false,
            '\u{E0020}'..='\u{E007E}' => in_flag_tags,
            _ => false,
        };
        if keep {
            out.push(c);
        } else {
            push_escape(&mut out, c);
        }
    }
    Cow::Owned(out)
}

/// Writes `c` as a visible escape.
fn push_escape(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
}

/// Whether `c` needs a closer look: unsafe, or one of the joiners kept only in context.
fn is_suspect(c: char) -> bool {
    is_unsafe(c) || matches!(c, '\u{200C}' | '\u{200D}' | '\u{E0020}'..='\u{E007F}')
}

/// Whether a ZWJ or ZWNJ next to `c` joins real text: `c` is visible, not ASCII, and not
/// itself a character [`inert`] escapes (nor another joiner).
fn joins(c: char) -> bool {
    !c.is_ascii() && !c.is_whitespace() && !is_unsafe(c) && !matches!(c, '\u{200C}' | '\u{200D}')
}

/// The characters a terminal must never receive from outside.
///
/// - Control characters (Unicode category Cc): C0 (U+0000–U+001F, ESC and CR among them),
///   DEL (U+007F) and C1 (U+0080–U+009F, where U+009B is a one-character CSI for some
///   terminals).
/// - Line and paragraph separators (U+2028, U+2029): some terminals break the line.
/// - Format characters (category Cf): the bidi embeddings, overrides and isolates
///   (U+202A–U+202E, U+2066–U+2069) and marks (U+200E, U+200F, U+061C) that reorder what
///   follows; zero-width spaces and joiners (U+200B–U+200D); word joiner and invisible
///   operators (U+2060–U+2064) and the deprecated format characters (U+206A–U+206F); the byte
///   order mark (U+FEFF); the soft hyphen (U+00AD); interlinear annotation (U+FFF9–U+FFFB);
///   the prepended number signs and other Cf of Arabic, Syriac, Kaithi, Egyptian, Duployan and
///   musical notation; the tag characters (U+E0000–U+E007F).
/// - Other default-ignorable characters a terminal shows as nothing: the combining grapheme
///   joiner (U+034F), the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), the Khmer inherent
///   vowels (U+17B4, U+17B5), the Mongolian free variation selectors and vowel separator
///   (U+180B–U+180F), unassigned U+FFF0–U+FFF8 and U+E0080–U+E0FFF except the variation
///   selectors (U+E0100–U+E01EF, kept with U+FE00–U+FE0F: they only pick a glyph).
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{0600}'..='\u{0605}'
                | '\u{061C}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{0890}'..='\u{0891}'
                | '\u{08E2}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{3164}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{110BD}'
                | '\u{110CD}'
                | '\u{13430}'..='\u{1343F}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E00FF}'
                | '\u{E01F0}'..='\u{E0FFF}'
        )
}

/// Prints `text`, made [`inert`], as one line on standard output.
pub(crate) fn print_line(text: &str) -> Result<()> {
    if crate::control::write_out(format!("{}\n", inert(text)).as_bytes()) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", inert(text))?;
    out.flush()?;
    Ok(())
}

/// Prints a line that is already safe for the terminal (made inert where it quotes others),
/// to the client of the running node when serving one.
pub(crate) fn print_safe_line(text: &str) -> Result<()> {
    if crate::control::write_out(format!("{text}\n").as_bytes()) {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()?;
    Ok(())
}

/// A log writer that makes each record [`inert`] before it reaches its destination: log
/// lines quote peers (refusal reasons, names, addresses they claim) and files. The
/// formatter writes one whole record per `write`, ending in a newline; that final newline is
/// kept, every other character goes through [`inert`], so a record stays one line. Use it
/// without ANSI colours (they would be escaped too).
pub(crate) struct InertWriter<W>(pub(crate) W);

impl<W: std::io::Write> std::io::Write for InertWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.strip_suffix(b"\n") {
            Some(body) => (body, "\n"),
            None => (buf, ""),
        };
        let text = String::from_utf8_lossy(body);
        self.0
            .write_all(format!("{}{end}", inert(&text)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No byte of `s` is a control byte, and no character of it one a terminal acts on.
    fn assert_inert(s: &str) {
        assert!(!s.chars().any(is_unsafe), "unsafe character left in {s:?}");
    }

    #[test]
    fn ordinary_text_is_kept_as_is() {
        for s in [
            "",
            "hello, world",
            "Zoë déjà vu, señor",
            "你好，世界 こんにちは 안녕하세요",
            "Привет мир",
            "emoji 🎉👍🏽 ❤️ ✈️",
            "family 👩\u{200D}👩\u{200D}👧 rainbow 🏳\u{FE0F}\u{200D}🌈",
            "Persian \u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
            "England 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
            "C:\\path with \\backslashes and \"quotes\"",
            "private use \u{E0A0} and variation \u{845B}\u{E0100}",
        ] {
            assert_eq!(inert(s), s, "{s:?} was changed");
        }
    }

    #[test]
    fn c0_controls_esc_and_del_are_escaped() {
        assert_eq!(
            inert("\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"
        );
        assert_eq!(inert("a\nb\rc\td"), "a\\nb\\rc\\td");
        assert_eq!(
            inert("nul\0 bs\u{8} del\u{7f}"),
            "nul\\u{0} bs\\u{8} del\\u{7f}"
        );
        for b in (0u8..0x20).chain([0x7f]) {
            let s = format!("x{}y", char::from(b));
            let out = inert(&s);
            assert_inert(&out);
            assert!(
                out.starts_with('x') && out.ends_with('y') && out.len() > 3,
                "{out}"
            );
        }
    }

    #[test]
    fn c1_controls_are_escaped() {
        assert_eq!(inert("\u{9b}31m red"), "\\u{9b}31m red");
        assert_eq!(inert("\u{85}next line"), "\\u{85}next line");
        for c in '\u{80}'..='\u{9f}' {
            assert_eq!(inert(&c.to_string()), format!("\\u{{{:x}}}", u32::from(c)));
        }
    }

    #[test]
    fn bidi_controls_are_escaped() {
        assert_eq!(inert("Eve\u{202E}gnp.exe"), "Eve\\u{202e}gnp.exe");
        for c in [
            '\u{200E}', '\u{200F}', '\u{061C}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}',
            '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}',
        ] {
            let s = format!("a{c}b");
            assert_eq!(inert(&s), format!("a\\u{{{:x}}}b", u32::from(c)));
        }
    }

    #[test]
    fn zero_width_and_format_characters_are_escaped() {
        for c in [
            '\u{200B}',
            '\u{2060}',
            '\u{2061}',
            '\u{2064}',
            '\u{206F}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{034F}',
            '\u{0600}',
            '\u{06DD}',
            '\u{070F}',
            '\u{180E}',
            '\u{3164}',
            '\u{115F}',
            '\u{FFA0}',
            '\u{FFF9}',
            '\u{110BD}',
            '\u{13430}',
            '\u{1BCA0}',
            '\u{1D173}',
            '\u{E0001}',
            '\u{E0041}',
            '\u{2028}',
            '\u{2029}',
        ] {
            let s = format!("a{c}b");
            assert_eq!(inert(&s), format!("a\\u{{{:x}}}b", u32::from(c)), "{c:?}");
        }
    }

    #[test]
    fn joiners_are_kept_only_between_visible_non_ascii_characters() {
        // Between ASCII letters, a joiner only hides: `Al\u{200c}ice` is not Alice.
        assert_eq!(inert("Al\u{200C}ice"), "Al\\u{200c}ice");
        assert_eq!(inert("Al\u{200D}ice"), "Al\\u{200d}ice");
        // Alone, at the ends, doubled, or next to an escaped character.
        assert_eq!(inert("\u{200D}"), "\\u{200d}");
        assert_eq!(inert("👩\u{200D}"), "👩\\u{200d}");
        assert_eq!(inert("👩\u{200D}\u{200D}👧"), "👩\\u{200d}\\u{200d}👧");
        assert_eq!(inert("👩\u{200D}\u{202E}"), "👩\\u{200d}\\u{202e}");
        // Tag characters outside a flag sequence hide text.
        assert_eq!(inert("a\u{E0061}b"), "a\\u{e0061}b");
        assert_eq!(
            inert("🏴\u{E0067}\u{E007F}\u{E0067}"),
            "🏴\u{E0067}\u{E007F}\\u{e0067}"
        );
    }

    #[test]
    fn the_result_is_always_inert() {
        let hostile = "\u{1b}[1;1H\u{1b}[2JAlice: send me your password\r\n\u{202E}\u{2066}\
                       \u{9b}2J\u{200B}\u{FEFF}\u{E0001}\u{7f}\u{85}\u{2028}";
        let out = inert(hostile);
        assert_inert(&out);
        assert!(!out.bytes().any(|b| b < 0x20 || b == 0x7f), "{out:?}");
        assert_eq!(out.lines().count(), 1);
    }

    #[test]
    fn the_log_writer_keeps_one_line_per_record() {
        let mut w = InertWriter(Vec::new());
        w.write_all(b"WARN refused: \x1b[2Jbad\r\nAlice: hi\n")
            .unwrap();
        w.write_all(b"no newline \x07").unwrap();
        let out = String::from_utf8(w.0).unwrap();
        assert_eq!(
            out,
            "WARN refused: \\u{1b}[2Jbad\\r\\nAlice: hi\nno newline \\u{7}"
        );
    }
}
