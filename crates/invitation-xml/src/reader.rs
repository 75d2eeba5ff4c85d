//! The strict, limited XML reader: text in, a small element tree out.
//!
//! It is built on quick-xml's pull reader and accepts only the XML our blobs need:
//!
//! - at most [`MAX_INPUT_BYTES`] of input, [`MAX_DEPTH`] levels, [`MAX_ELEMENTS`] elements,
//!   [`MAX_ATTRIBUTES`] attributes per element and [`MAX_TEXT_BYTES`] of text per element
//!   (base64 elements may hold up to the input limit);
//! - an optional XML declaration, only at the very start, version 1.0, encoding UTF-8 (or
//!   UTF-16 when the bytes were UTF-16);
//! - no `<!DOCTYPE>` (so no entity declarations), no processing instructions, no entity
//!   references but `&lt; &gt; &amp; &apos; &quot;` and numeric character references, no
//!   character XML 1.0 forbids (even written as a reference);
//! - comments are skipped before and inside the root; after the root only whitespace may follow.
//!
//! Line ends in text are normalised as XML 1.0 says (`\r\n` and `\r` become `\n`); nothing
//! else is changed, so leading and trailing spaces survive.

use std::borrow::Cow;

use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{XmlVersion, errors};

use crate::error::{Error, shorten};

/// The largest input accepted, in bytes (512 KiB).
pub const MAX_INPUT_BYTES: usize = 512 * 1024;
/// The deepest element nesting accepted (the root is level 1).
pub const MAX_DEPTH: usize = 8;
/// The most elements accepted in one document.
pub const MAX_ELEMENTS: usize = 128;
/// The most attributes accepted on one element.
pub const MAX_ATTRIBUTES: usize = 8;
/// The most text accepted in one element that is not base64, in bytes (after unescaping).
pub const MAX_TEXT_BYTES: usize = 4096;

/// One element: its name, attributes (in order, values unescaped and normalised), child
/// elements and text (all text pieces, concatenated).
#[derive(Debug)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

/// The encoding the text was in before it reached the reader; the declaration must agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SourceEncoding {
    Utf8,
    Utf16,
}

/// Decodes bytes: UTF-8 (with or without a byte order mark) or UTF-16 with a byte order mark.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Cow<'_, str>, SourceEncoding), Error> {
    check_size(bytes.len())?;
    let utf16 = |rest: &[u8], from: fn([u8; 2]) -> u16| -> Result<_, Error> {
        let bad = Error::Encoding { encoding: "UTF-16" };
        if !rest.len().is_multiple_of(2) {
            return Err(bad);
        }
        let units = rest.chunks_exact(2).map(|c| from([c[0], c[1]]));
        let text: String = char::decode_utf16(units)
            .collect::<Result<_, _>>()
            .map_err(|_| bad)?;
        Ok((Cow::Owned(text), SourceEncoding::Utf16))
    };
    match bytes {
        [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => {
            let rest = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
            let text =
                std::str::from_utf8(rest).map_err(|_| Error::Encoding { encoding: "UTF-8" })?;
            Ok((Cow::Borrowed(text), SourceEncoding::Utf8))
        }
    }
}

/// Refuses input over [`MAX_INPUT_BYTES`].
pub(crate) fn check_size(size: usize) -> Result<(), Error> {
    if size > MAX_INPUT_BYTES {
        return Err(Error::TooLarge {
            size,
            limit: MAX_INPUT_BYTES,
        });
    }
    Ok(())
}

/// Reads a whole document. `binary` names the elements whose text is base64 and may be long.
pub(crate) fn read_document(
    text: &str,
    encoding: SourceEncoding,
    binary: &[&str],
) -> Result<Element, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let config = reader.config_mut();
    config.expand_empty_elements = true;
    config.check_end_names = true;
    config.check_comments = true;
    config.trim_text(false);

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    let mut first = true;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| syntax(&reader, e))?;
        let was_first = std::mem::replace(&mut first, false);
        match event {
            Event::Decl(decl) => {
                if !was_first || position != 0 {
                    return Err(Error::Declaration(
                        "it must be the very first thing in the document".into(),
                    ));
                }
                check_declaration(&decl, encoding)?;
            }
            Event::DocType(_) => return Err(Error::DocType),
            Event::PI(pi) => {
                return Err(Error::ProcessingInstruction {
                    target: shorten(pi.target()),
                });
            }
            Event::Comment(_) => {
                if root.is_some() {
                    return Err(Error::ContentOutsideRoot { position });
                }
            }
            Event::Start(start) | Event::Empty(start) => {
                if root.is_some() {
                    return Err(Error::ContentOutsideRoot { position });
                }
                let element = open_element(&start, position)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::TooDeep {
                        element: element.name,
                        limit: MAX_DEPTH,
                    });
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(Error::TooManyElements {
                        limit: MAX_ELEMENTS,
                    });
                }
                stack.push(element);
            }
            Event::End(_) => {
                // quick-xml checks that the name matches the open element.
                let Some(done) = stack.pop() else {
                    return Err(Error::ContentOutsideRoot { position });
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(open) => push_text(open, &content, binary)?,
                    None if is_xml_whitespace(&content) => {}
                    None => return Err(Error::ContentOutsideRoot { position }),
                }
            }
            Event::CData(c) => match stack.last_mut() {
                Some(open) => push_text(open, &c.xml10_content(), binary)?,
                None => return Err(Error::ContentOutsideRoot { position }),
            },
            Event::GeneralRef(r) => {
                let Some(open) = stack.last_mut() else {
                    return Err(Error::ContentOutsideRoot { position });
                };
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => resolve_predefined_entity(&r)
                        .ok_or_else(|| Error::EntityReference { name: shorten(&r) })?
                        .to_owned(),
                    Err(e) => return Err(syntax(&reader, e)),
                };
                push_text(open, &resolved, binary)?;
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.pop() {
        return Err(Error::Truncated { element: open.name });
    }
    root.ok_or(Error::NoRoot)
}

fn syntax(reader: &quick_xml::Reader<&[u8]>, e: impl Into<errors::Error>) -> Error {
    let e: errors::Error = e.into();
    if let errors::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) = &e {
        return Error::EntityReference {
            name: shorten(name),
        };
    }
    Error::Syntax {
        position: reader.error_position(),
        reason: shorten(&e.to_string()),
    }
}

fn check_declaration(
    decl: &quick_xml::events::BytesDecl<'_>,
    encoding: SourceEncoding,
) -> Result<(), Error> {
    let bad = |what: String| Error::Declaration(what);
    let version = decl
        .version()
        .map_err(|e| bad(format!("unreadable version: {e}")))?;
    if version != "1.0" {
        return Err(bad(format!(
            "version {:?} is not supported, only 1.0",
            shorten(&version)
        )));
    }
    if let Some(declared) = decl.encoding() {
        let declared = declared.map_err(|e| bad(format!("unreadable encoding: {e}")))?;
        let ok = match encoding {
            SourceEncoding::Utf8 => declared.eq_ignore_ascii_case("utf-8"),
            SourceEncoding::Utf16 => declared.eq_ignore_ascii_case("utf-16"),
        };
        if !ok {
            return Err(bad(format!(
                "it declares encoding {:?} but the text is {}",
                shorten(&declared),
                match encoding {
                    SourceEncoding::Utf8 => "UTF-8",
                    SourceEncoding::Utf16 => "UTF-16",
                }
            )));
        }
    }
    if let Some(standalone) = decl.standalone() {
        let standalone = standalone.map_err(|e| bad(format!("unreadable standalone: {e}")))?;
        if standalone != "yes" && standalone != "no" {
            return Err(bad(format!(
                "standalone must be yes or no, found {:?}",
                shorten(&standalone)
            )));
        }
    }
    Ok(())
}

fn open_element(start: &BytesStart<'_>, position: u64) -> Result<Element, Error> {
    let name = start.name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attr in start.attributes() {
        if attributes.len() == MAX_ATTRIBUTES {
            return Err(Error::TooManyAttributes {
                element: name,
                limit: MAX_ATTRIBUTES,
            });
        }
        let attr = attr.map_err(|e| Error::Syntax {
            position,
            reason: shorten(&format!("attribute on element {name}: {e}")),
        })?;
        let key = attr.key.as_ref().to_owned();
        let value = attr
            .normalized_value(XmlVersion::Explicit1_0)
            .map_err(|e| match e {
                errors::Error::Escape(EscapeError::UnrecognizedEntity(_, entity)) => {
                    Error::EntityReference {
                        name: shorten(&entity),
                    }
                }
                other => Error::Syntax {
                    position,
                    reason: shorten(&format!("attribute {key} on element {name}: {other}")),
                },
            })?;
        check_chars(&value, || format!("attribute {key} on element {name}"))?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
    })
}

fn push_text(open: &mut Element, piece: &str, binary: &[&str]) -> Result<(), Error> {
    let limit = if binary.contains(&open.name.as_str()) {
        MAX_INPUT_BYTES
    } else {
        MAX_TEXT_BYTES
    };
    if open.text.len().saturating_add(piece.len()) > limit {
        return Err(Error::TextTooLong {
            element: open.name.clone(),
            limit,
        });
    }
    check_chars(piece, || format!("the text of element {}", open.name))?;
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

fn check_chars(s: &str, context: impl FnOnce() -> String) -> Result<(), Error> {
    match s.chars().find(|c| !is_xml_char(*c)) {
        Some(c) => Err(Error::IllegalCharacter {
            code: u32::from(c),
            context: context(),
        }),
        None => Ok(()),
    }
}

/// Whether `s` is only XML white space (space, tab, CR, LF).
pub(crate) fn is_xml_whitespace(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(xml: &str) -> Result<Element, Error> {
        read_document(xml, SourceEncoding::Utf8, &["BIN"])
    }

    #[test]
    fn reads_a_tree_and_keeps_text_exactly() {
        let e = read(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hi --><A X=\"1 &amp; 2\">\n <B>  \
             a&lt;b&#x20AC;&#8364;<![CDATA[<&>]]> </B><C/></A>\n",
        )
        .unwrap();
        assert_eq!(e.name, "A");
        assert_eq!(e.attributes, vec![("X".into(), "1 & 2".into())]);
        assert_eq!(e.children.len(), 2);
        assert_eq!(e.children[0].text, "  a<b€€<&> ");
        assert_eq!(e.children[1].text, "");
        assert!(is_xml_whitespace(&e.text));
    }

    #[test]
    fn normalises_line_ends_only() {
        let e = read("<A> a\r\nb\rc&#13; </A>").unwrap();
        assert_eq!(e.text, " a\nb\nc\r ");
    }

    #[test]
    fn refuses_forbidden_features() {
        type Check = fn(&Error) -> bool;
        let cases: &[(&str, Check)] = &[
            ("<!DOCTYPE A [<!ENTITY x \"y\">]><A>&x;</A>", |e| {
                matches!(e, Error::DocType)
            }),
            ("<A>&x;</A>", |e| matches!(e, Error::EntityReference { .. })),
            ("<A X=\"&x;\"/>", |e| {
                matches!(e, Error::EntityReference { .. })
            }),
            ("<?pi x?><A/>", |e| {
                matches!(e, Error::ProcessingInstruction { .. })
            }),
            ("<A><?pi x?></A>", |e| {
                matches!(e, Error::ProcessingInstruction { .. })
            }),
            (" <?xml version=\"1.0\"?><A/>", |e| {
                matches!(e, Error::Declaration(_))
            }),
            ("<?xml version=\"1.1\"?><A/>", |e| {
                matches!(e, Error::Declaration(_))
            }),
            ("<?xml version=\"1.0\" encoding=\"latin1\"?><A/>", |e| {
                matches!(e, Error::Declaration(_))
            }),
            ("<A>&#0;</A>", |e| matches!(e, Error::Syntax { .. })),
            ("<A>&#1;</A>", |e| {
                matches!(e, Error::IllegalCharacter { .. })
            }),
            ("<A>\u{1}</A>", |e| {
                matches!(e, Error::IllegalCharacter { .. })
            }),
            ("<A>\u{ffff}</A>", |e| {
                matches!(e, Error::IllegalCharacter { .. })
            }),
            ("<A/><B/>", |e| {
                matches!(e, Error::ContentOutsideRoot { .. })
            }),
            ("<A/>x", |e| matches!(e, Error::ContentOutsideRoot { .. })),
            ("<A/><!-- c -->", |e| {
                matches!(e, Error::ContentOutsideRoot { .. })
            }),
            ("x<A/>", |e| matches!(e, Error::ContentOutsideRoot { .. })),
            ("<A><B></A>", |e| matches!(e, Error::Syntax { .. })),
            ("<A><B>", |e| matches!(e, Error::Truncated { .. })),
            ("<A", |e| matches!(e, Error::Syntax { .. })),
            ("", |e| matches!(e, Error::NoRoot)),
            ("<A X=\"1\" X=\"2\"/>", |e| {
                matches!(e, Error::Syntax { .. })
            }),
            ("<A X=1/>", |e| matches!(e, Error::Syntax { .. })),
            ("<A>a & b</A>", |e| matches!(e, Error::Syntax { .. })),
            ("<A><!-- a -- b --></A>", |e| {
                matches!(e, Error::Syntax { .. })
            }),
        ];
        for (xml, want) in cases {
            let got = read(xml);
            assert!(matches!(&got, Err(e) if want(e)), "{xml:?} gave {got:?}");
        }
    }

    #[test]
    fn enforces_limits() {
        let deep = format!(
            "{}{}",
            "<A>".repeat(MAX_DEPTH + 1),
            "</A>".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(read(&deep), Err(Error::TooDeep { .. })));
        let ok = format!("{}{}", "<A>".repeat(MAX_DEPTH), "</A>".repeat(MAX_DEPTH));
        read(&ok).unwrap();

        let many = format!("<A>{}</A>", "<B/>".repeat(MAX_ELEMENTS));
        assert!(matches!(read(&many), Err(Error::TooManyElements { .. })));

        let attrs: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}=\"\""))
            .collect();
        assert!(matches!(
            read(&format!("<A{attrs}/>")),
            Err(Error::TooManyAttributes { .. })
        ));

        let long = format!("<A>{}</A>", "x".repeat(MAX_TEXT_BYTES + 1));
        assert!(matches!(read(&long), Err(Error::TextTooLong { .. })));
        let refs = format!("<A>{}</A>", "&amp;".repeat(MAX_TEXT_BYTES + 1));
        assert!(matches!(read(&refs), Err(Error::TextTooLong { .. })));
        let bin = format!("<BIN>{}</BIN>", "x".repeat(MAX_TEXT_BYTES + 1));
        read(&bin).unwrap();
    }

    #[test]
    fn decodes_utf8_and_utf16() {
        let (t, enc) = decode(b"\xef\xbb\xbf<A/>").unwrap();
        assert_eq!((t.as_ref(), enc), ("<A/>", SourceEncoding::Utf8));
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("<A>é</A>".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let (t, enc) = decode(&le).unwrap();
        assert_eq!((t.as_ref(), enc), ("<A>é</A>", SourceEncoding::Utf16));
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("<A/>".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&be).unwrap().0, "<A/>");
        assert!(matches!(
            decode(b"<A>\xff</A>"),
            Err(Error::Encoding { .. })
        ));
        assert!(matches!(
            decode(&[0xff, 0xfe, 0x3c]),
            Err(Error::Encoding { .. })
        ));
        let utf16_decl: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "<?xml version=\"1.0\" encoding=\"UTF-16\"?><A/>"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        let (t, enc) = decode(&utf16_decl).unwrap();
        read_document(&t, enc, &[]).unwrap();
        assert!(matches!(
            read_document(&t, SourceEncoding::Utf8, &[]),
            Err(Error::Declaration(_))
        ));
    }
}
