//! The strict, limited XML reader shared by attribute XML and search queries, and the
//! escaping used when writing them.
//!
//! Built on quick-xml's pull reader, it accepts only what the two formats need:
//!
//! - an optional XML declaration, only at the very start: version 1.0, encoding UTF-8 or
//!   UTF-16 (the text is already decoded, so both are accepted; Windows passes UTF-16 strings
//!   whose declaration says `utf-8`), standalone yes/no;
//! - no `<!DOCTYPE>` (so no entity declarations), no processing instructions, no entity
//!   references but `&lt; &gt; &amp; &apos; &quot;` and numeric character references, and no
//!   character XML 1.0 forbids, even written as a reference;
//! - comments are skipped before and inside the root; after the root only white space;
//! - a caller-given maximum element depth (the caller limits the input size first).
//!
//! Line ends in text are normalised as XML 1.0 says (`\r\n` and `\r` become `\n`); nothing
//! else is changed, so leading and trailing white space survive. CDATA sections are text.

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesDecl, BytesStart, Event};
use quick_xml::{XmlVersion, errors};

use super::error::{Document, SearchError, shorten};

/// One element: name, attributes (in order, values unescaped and normalised), child
/// elements, all of its own text concatenated, and the line it starts on.
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
    pub(crate) line: usize,
}

impl Element {
    /// Refuses non-white-space text in an element that only holds elements.
    pub(crate) fn expect_no_text(&self, doc: Document) -> Result<(), SearchError> {
        if is_xml_whitespace(&self.text) {
            Ok(())
        } else {
            Err(SearchError::Schema {
                doc,
                line: self.line,
                reason: format!(
                    "element <{}> holds elements only, but has text {:?}",
                    self.name,
                    shorten(self.text.trim())
                ),
            })
        }
    }

    /// Refuses child elements in an element that only holds text.
    pub(crate) fn expect_no_children(&self, doc: Document) -> Result<(), SearchError> {
        match self.children.first() {
            None => Ok(()),
            Some(child) => Err(SearchError::Schema {
                doc,
                line: child.line,
                reason: format!(
                    "element <{}> holds text only, but has child element <{}>",
                    self.name, child.name
                ),
            }),
        }
    }
}

/// Reads a whole document into its root element.
///
/// `too_deep(element, line)` builds the error for an element opened below `max_depth` (the
/// root is depth 1).
pub(crate) fn read(
    text: &str,
    doc: Document,
    max_depth: usize,
    too_deep: &dyn Fn(&str, usize) -> SearchError,
) -> Result<Element, SearchError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.check_comments = true;
    config.trim_text(false);

    let syntax = |line: usize, reason: String| SearchError::Syntax { doc, line, reason };
    let mut lines = Lines::new(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut first = true;
    loop {
        let position = reader.buffer_position();
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => return Err(syntax(lines.at(reader.error_position()), describe(&e))),
        };
        let was_first = std::mem::replace(&mut first, false);
        let line = lines.at(position);
        match event {
            Event::Decl(decl) => {
                if !was_first || position != 0 {
                    return Err(syntax(
                        line,
                        "the XML declaration must be the very first thing".into(),
                    ));
                }
                check_declaration(&decl).map_err(|reason| syntax(line, reason))?;
            }
            Event::DocType(_) => {
                return Err(syntax(
                    line,
                    "<!DOCTYPE> is not allowed (no DTDs or entity declarations)".into(),
                ));
            }
            Event::PI(pi) => {
                return Err(syntax(
                    line,
                    format!(
                        "processing instruction <?{}?> is not allowed",
                        shorten(pi.target())
                    ),
                ));
            }
            Event::Comment(_) => {
                if root.is_some() {
                    return Err(syntax(line, "a comment after the root element".into()));
                }
            }
            Event::Start(start) | Event::Empty(start) => {
                if root.is_some() {
                    return Err(syntax(line, "an element after the root element".into()));
                }
                let element = open_element(&start, doc, line)?;
                if stack.len() >= max_depth {
                    return Err(too_deep(&element.name, line));
                }
                stack.push(element);
            }
            Event::End(_) => {
                // quick-xml checks that the name matches the open element.
                let Some(done) = stack.pop() else {
                    return Err(syntax(line, "an end tag with no open element".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(open) => push_text(open, &content, doc, line)?,
                    None if is_xml_whitespace(&content) => {}
                    None => {
                        return Err(syntax(
                            line,
                            format!(
                                "text {:?} outside the root element",
                                shorten(content.trim())
                            ),
                        ));
                    }
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(open) => push_text(open, &c.xml10_content(), doc, line)?,
                None => {
                    return Err(syntax(line, "CDATA outside the root element".into()));
                }
            },
            Event::GeneralRef(r) => {
                let Some(open) = stack.last_mut() else {
                    return Err(syntax(line, "a reference outside the root element".into()));
                };
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => resolve_predefined_entity(&r)
                        .ok_or_else(|| syntax(line, unknown_entity(&r)))?
                        .to_owned(),
                    Err(e) => return Err(syntax(line, describe(&e))),
                };
                push_text(open, &resolved, doc, line)?;
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.pop() {
        return Err(SearchError::Syntax {
            doc,
            line: open.line,
            reason: format!("element <{}> is never closed", open.name),
        });
    }
    root.ok_or_else(|| syntax(lines.at(u64::MAX), "there is no root element".into()))
}

/// Line numbers of byte positions, counted incrementally (positions mostly increase).
struct Lines<'a> {
    text: &'a str,
    /// A byte position and the 1-based line it is on.
    pos: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Lines {
            text,
            pos: 0,
            line: 1,
        }
    }

    /// The 1-based line of byte `position` (clamped to the text).
    fn at(&mut self, position: u64) -> usize {
        let end = usize::try_from(position)
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        if end < self.pos {
            (self.pos, self.line) = (0, 1);
        }
        let between = self.text.as_bytes().get(self.pos..end).unwrap_or_default();
        self.line += between.iter().filter(|&&b| b == b'\n').count();
        self.pos = end;
        self.line
    }
}

fn unknown_entity(name: &str) -> String {
    format!(
        "entity reference &{}; is not allowed (only &lt; &gt; &amp; &apos; &quot; and \
         numeric character references)",
        shorten(name)
    )
}

fn describe(e: &errors::Error) -> String {
    if let errors::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) = e {
        return unknown_entity(name);
    }
    shorten(&e.to_string())
}

fn check_declaration(decl: &BytesDecl<'_>) -> Result<(), String> {
    let version = decl
        .version()
        .map_err(|e| format!("unreadable XML version: {}", describe(&e)))?;
    if version != "1.0" {
        return Err(format!(
            "XML version {:?} is not supported, only 1.0",
            shorten(&version)
        ));
    }
    if let Some(encoding) = decl.encoding() {
        let encoding = encoding.map_err(|e| format!("unreadable encoding: {e}"))?;
        let ok = encoding.eq_ignore_ascii_case("utf-8") || encoding.eq_ignore_ascii_case("utf-16");
        if !ok {
            return Err(format!(
                "encoding {:?} is not supported, only utf-8 (or utf-16)",
                shorten(&encoding)
            ));
        }
    }
    if let Some(standalone) = decl.standalone() {
        let standalone = standalone.map_err(|e| format!("unreadable standalone: {e}"))?;
        if standalone != "yes" && standalone != "no" {
            return Err("standalone must be yes or no".into());
        }
    }
    Ok(())
}

fn open_element(
    start: &BytesStart<'_>,
    doc: Document,
    line: usize,
) -> Result<Element, SearchError> {
    let name = start.name().as_ref().to_owned();
    let syntax = |reason: String| SearchError::Syntax { doc, line, reason };
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        let attr =
            attr.map_err(|e| syntax(format!("attributes of element <{}>: {e}", shorten(&name))))?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Explicit1_0)
            .map_err(|e| {
                syntax(format!(
                    "attribute {} of element <{}>: {}",
                    shorten(&key),
                    shorten(&name),
                    describe(&e)
                ))
            })?;
        check_chars(&value, doc, line)?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
        line,
    })
}

fn push_text(
    open: &mut Element,
    piece: &str,
    doc: Document,
    line: usize,
) -> Result<(), SearchError> {
    check_chars(piece, doc, line)?;
    open.text.push_str(piece);
    Ok(())
}

/// Whether `c` is a `Char` of XML 1.0.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\u{9}' | '\u{a}' | '\u{d}'
        | '\u{20}'..='\u{d7ff}'
        | '\u{e000}'..='\u{fffd}'
        | '\u{10000}'..='\u{10ffff}')
}

/// Refuses characters XML 1.0 cannot carry.
pub(crate) fn check_chars(s: &str, doc: Document, line: usize) -> Result<(), SearchError> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(SearchError::IllegalCharacter {
            doc,
            line,
            code: u32::from(c),
        }),
        None => Ok(()),
    }
}

/// Whether `s` is only XML white space (space, tab, CR, LF).
pub(crate) fn is_xml_whitespace(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// Appends `s` as element text, so that reading it back gives `s` exactly (including CR,
/// which a reader would otherwise turn into LF).
pub(crate) fn escape_text(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Appends `s` as a double-quoted attribute value, so that reading it back (with attribute
/// value normalisation) gives `s` exactly.
pub(crate) fn escape_attribute(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Element, SearchError> {
        read(xml, Document::Attributes, 4, &|name, line| {
            SearchError::Schema {
                doc: Document::Attributes,
                line,
                reason: format!("too deep at <{name}>"),
            }
        })
    }

    fn syntax_reason(xml: &str) -> String {
        match parse(xml) {
            Err(SearchError::Syntax { reason, .. }) => reason,
            other => panic!("expected a syntax error for {xml:?}, got {other:?}"),
        }
    }

    #[test]
    fn reads_a_tree_and_keeps_text_exactly() {
        let e = parse(
            "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n<!-- hi --><a x=\"1 &amp; 2\">\n \
             <b>  a&lt;b&#x20AC;&#8364;<![CDATA[<&>]]> </b><c/></a>\n",
        )
        .unwrap();
        assert_eq!(e.name, "a");
        assert_eq!(e.line, 2);
        assert_eq!(e.attributes, vec![("x".into(), "1 & 2".into())]);
        assert_eq!(e.children.len(), 2);
        assert_eq!(e.children[0].text, "  a<b€€<&> ");
        assert_eq!(e.children[1].text, "");
        assert!(is_xml_whitespace(&e.text));
    }

    #[test]
    fn normalises_line_ends_only() {
        let e = parse("<a> a\r\nb\rc&#13; </a>").unwrap();
        assert_eq!(e.text, " a\nb\nc\r ");
    }

    #[test]
    fn refuses_forbidden_features() {
        assert!(syntax_reason("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>").contains("DOCTYPE"));
        assert!(syntax_reason("<a>&x;</a>").contains("&x;"));
        assert!(syntax_reason("<a b=\"&x;\"/>").contains("&x;"));
        assert!(syntax_reason("<?pi x?><a/>").contains("processing instruction"));
        assert!(syntax_reason(" <?xml version=\"1.0\"?><a/>").contains("declaration"));
        assert!(syntax_reason("<?xml version=\"1.1\"?><a/>").contains("1.1"));
        assert!(
            syntax_reason("<?xml version=\"1.0\" encoding=\"latin1\"?><a/>").contains("latin1")
        );
        assert!(syntax_reason("<a/><b/>").contains("after the root"));
        assert!(syntax_reason("<a/>x").contains("outside the root"));
        assert!(syntax_reason("<a/><!-- c -->").contains("comment after"));
        assert!(syntax_reason("x<a/>").contains("outside the root"));
        assert!(syntax_reason("<a><b></a>").contains('b'));
        assert!(syntax_reason("<a>\n<b>").contains("<b> is never closed"));
        assert!(syntax_reason("</a>").contains("</a>") || !syntax_reason("</a>").is_empty());
        assert!(syntax_reason("").contains("no root"));
        assert!(syntax_reason("<a x=\"1\" x=\"2\"/>").contains("attributes of element <a>"));
        assert!(matches!(
            parse("<a>&#0;</a>"),
            Err(SearchError::Syntax { .. })
        ));
        assert!(matches!(
            parse("<a>&#1;</a>"),
            Err(SearchError::IllegalCharacter { code: 1, .. })
        ));
        assert!(matches!(
            parse("<a>\u{ffff}</a>"),
            Err(SearchError::IllegalCharacter { .. })
        ));
        assert!(matches!(
            parse("<a><b><c><d><e/></d></c></b></a>"),
            Err(SearchError::Schema { .. })
        ));
        assert!(parse("<a><b><c><d/></c></b></a>").is_ok());
    }

    #[test]
    fn errors_carry_line_numbers() {
        match parse("<a>\n\n<b>&bogus;</b></a>") {
            Err(SearchError::Syntax { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn escaping_round_trips() {
        let awkward = " \t<a&b>\"c'\r\n\r é ]]> ";
        let mut text = String::from("<a v=\"");
        escape_attribute(awkward, &mut text);
        text.push_str("\">");
        escape_text(awkward, &mut text);
        text.push_str("</a>");
        let e = parse(&text).unwrap();
        assert_eq!(e.attributes[0].1, awkward);
        assert_eq!(e.text, awkward);
    }
}
