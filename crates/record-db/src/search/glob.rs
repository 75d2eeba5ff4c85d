//! String patterns of search clauses: `*` matches any run of characters (possibly empty), `?`
//! exactly one character, and `\*`, `\?`, `\\` stand for the characters themselves. Any other
//! backslash sequence (including a lone `\` at the end) is an error, as on Windows.
//!
//! Matching works on Unicode scalar values and uses the two-pointer algorithm with one
//! backtrack point (the last `*`), so it takes at most O(pattern × text) steps, never
//! exponential time, whatever the pattern.

use std::cmp::Ordering;

use super::error::{SearchError, shorten};

/// One element of a [`Pattern`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternToken {
    /// This character, literally.
    Char(char),
    /// `?`: exactly one character.
    AnyChar,
    /// `*`: any run of characters, possibly empty.
    AnyString,
}

/// A string clause value: literal characters and wildcards.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Pattern {
    tokens: Vec<PatternToken>,
}

impl Pattern {
    /// Parses clause text with wildcards and backslash escapes.
    pub fn parse(text: &str) -> Result<Pattern, SearchError> {
        Self::parse_at(text, 0)
    }

    pub(crate) fn parse_at(text: &str, line: usize) -> Result<Pattern, SearchError> {
        let mut tokens = Vec::with_capacity(text.len());
        let mut chars = text.chars().enumerate();
        while let Some((i, c)) = chars.next() {
            tokens.push(match c {
                '*' => PatternToken::AnyString,
                '?' => PatternToken::AnyChar,
                '\\' => match chars.next() {
                    Some((_, e @ ('*' | '?' | '\\'))) => PatternToken::Char(e),
                    other => {
                        return Err(SearchError::BadEscape {
                            line,
                            position: i + 1,
                            sequence: match other {
                                Some((_, e)) => format!("\\{e}"),
                                None => "\\".into(),
                            },
                            value: shorten(text),
                        });
                    }
                },
                c => PatternToken::Char(c),
            });
        }
        Ok(Pattern { tokens })
    }

    /// A pattern that matches exactly `text` (wildcard characters taken literally).
    pub fn literal(text: &str) -> Pattern {
        Pattern {
            tokens: text.chars().map(PatternToken::Char).collect(),
        }
    }

    /// A pattern made of these tokens.
    pub fn from_tokens(tokens: Vec<PatternToken>) -> Pattern {
        Pattern { tokens }
    }

    /// The tokens.
    pub fn tokens(&self) -> &[PatternToken] {
        &self.tokens
    }

    /// Whether the pattern has a `*` or `?` wildcard.
    pub fn has_wildcards(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| !matches!(t, PatternToken::Char(_)))
    }

    /// The clause text: wildcards as `*`/`?`, and `*`, `?`, `\` characters escaped.
    pub fn to_query_text(&self) -> String {
        let mut out = String::with_capacity(self.tokens.len());
        for t in &self.tokens {
            match t {
                PatternToken::AnyString => out.push('*'),
                PatternToken::AnyChar => out.push('?'),
                PatternToken::Char(c @ ('*' | '?' | '\\')) => {
                    out.push('\\');
                    out.push(*c);
                }
                PatternToken::Char(c) => out.push(*c),
            }
        }
        out
    }

    /// The unescaped text, with wildcards as the characters `*` and `?`: what ordering
    /// comparisons (`less`, `greater`, …) compare against.
    pub fn literal_text(&self) -> String {
        self.literal_chars().collect()
    }

    fn literal_chars(&self) -> impl Iterator<Item = char> + '_ {
        self.tokens.iter().map(|t| match t {
            PatternToken::Char(c) => *c,
            PatternToken::AnyChar => '?',
            PatternToken::AnyString => '*',
        })
    }

    /// Whether `text` matches the pattern (case-sensitive).
    pub fn matches(&self, text: &str) -> bool {
        self.matches_with(text, false)
    }

    /// Orders `text` against [`Pattern::literal_text`], by Unicode scalar value (the same as
    /// byte order of UTF-8). With `fold_case`, ASCII letters compare case-insensitively.
    pub(crate) fn compare_literal(&self, text: &str, fold_case: bool) -> Ordering {
        let fold = move |c: char| {
            if fold_case { c.to_ascii_lowercase() } else { c }
        };
        text.chars().map(fold).cmp(self.literal_chars().map(fold))
    }

    /// Glob matching; with `fold_case`, ASCII letters match case-insensitively.
    pub(crate) fn matches_with(&self, text: &str, fold_case: bool) -> bool {
        let same = |a: char, b: char| {
            if fold_case {
                a.eq_ignore_ascii_case(&b)
            } else {
                a == b
            }
        };
        let tokens = self.tokens.as_slice();
        // `s` is a byte offset into `text`, `p` an index into `tokens`.
        let (mut s, mut p) = (0usize, 0usize);
        // After the last `*` seen: the token after it, and where in `text` it began matching.
        let mut backtrack: Option<(usize, usize)> = None;
        while let Some(c) = text.get(s..).and_then(|rest| rest.chars().next()) {
            match tokens.get(p) {
                Some(PatternToken::AnyString) => {
                    p += 1;
                    backtrack = Some((p, s));
                    continue;
                }
                Some(PatternToken::AnyChar) => {
                    s += c.len_utf8();
                    p += 1;
                    continue;
                }
                Some(PatternToken::Char(t)) if same(*t, c) => {
                    s += c.len_utf8();
                    p += 1;
                    continue;
                }
                _ => {}
            }
            // Mismatch: let the last `*` swallow one more character, or fail.
            let Some((star_p, star_s)) = backtrack else {
                return false;
            };
            let Some(skipped) = text.get(star_s..).and_then(|rest| rest.chars().next()) else {
                return false;
            };
            let next = star_s + skipped.len_utf8();
            backtrack = Some((star_p, next));
            (s, p) = (next, star_p);
        }
        tokens
            .get(p..)
            .unwrap_or_default()
            .iter()
            .all(|t| *t == PatternToken::AnyString)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::parse(pattern).unwrap().matches(text)
    }

    #[test]
    fn wildcards() {
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("James*", "James Peters"));
        assert!(m("*Peters", "James Peters"));
        assert!(m("J*s P*s", "James Peters"));
        assert!(!m("J*s P*x", "James Peters"));
        assert!(m("?", "é"));
        assert!(!m("?", ""));
        assert!(!m("?", "ab"));
        assert!(m("a?c", "abc"));
        assert!(m("**a**", "bab"));
        assert!(m("*?", "x"));
        assert!(!m("*?", ""));
        assert!(!m("abc", "ABC"));
    }

    #[test]
    fn escapes() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("\\?", "?"));
        assert!(!m("\\?", "x"));
        assert!(m("a\\\\b", "a\\b"));
        assert!(m("\\**", "*star"));
        assert_eq!(Pattern::parse("a\\*b").unwrap().literal_text(), "a*b");
        for (bad, position, sequence) in [("a\\x", 2, "\\x"), ("\\n", 1, "\\n"), ("ab\\", 3, "\\")]
        {
            match Pattern::parse(bad) {
                Err(SearchError::BadEscape {
                    position: p,
                    sequence: s,
                    ..
                }) => {
                    assert_eq!((p, s.as_str()), (position, sequence), "{bad:?}");
                }
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn text_form_round_trips() {
        for text in ["", "*", "a?b*", "\\*\\?\\\\", "plain text é"] {
            let p = Pattern::parse(text).unwrap();
            assert_eq!(p.to_query_text(), text);
        }
        let lit = Pattern::literal("a*b?c\\");
        assert!(!lit.has_wildcards());
        assert_eq!(Pattern::parse(&lit.to_query_text()).unwrap(), lit);
        assert!(lit.matches("a*b?c\\"));
    }

    #[test]
    fn case_folding_is_ascii_only() {
        let p = Pattern::parse("{ABC*}").unwrap();
        assert!(p.matches_with("{abcdef}", true));
        assert!(!p.matches_with("{abcdef}", false));
        assert!(!Pattern::literal("É").matches_with("é", true));
        assert_eq!(p.compare_literal("{abc*}", true), Ordering::Equal);
    }

    #[test]
    fn pathological_patterns_are_fast() {
        let text = "a".repeat(100_000);
        let start = std::time::Instant::now();
        assert!(!m("*a*a*a*a*a*a*b", &text));
        assert!(m("*a*a*a*a*a*a*", &text));
        let mut long = "*a?".repeat(50);
        long.push('b');
        assert!(!m(&long, &text));
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }
}
