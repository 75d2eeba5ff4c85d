//! The XML writer: a declaration, then elements written in order, text escaped.
//!
//! Output is compact (no indentation), as Windows writes these blobs. Text is escaped so that
//! the reader gives back exactly what was written: `& < > " '` become the predefined
//! entities and a carriage return becomes `&#13;` (a raw one would be read back as a line
//! feed). Values reach the writer already checked, so no other character needs care.

use base64::Engine as _;

use crate::tree::DATATYPES_NAMESPACE;

/// The declaration every blob starts with.
pub const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

/// Builds one document.
pub(crate) struct Writer {
    out: String,
}

impl Writer {
    /// Starts a document with the declaration and opens the root with a `VERSION`.
    pub(crate) fn new(root: &str, version: &str) -> Self {
        let mut w = Writer {
            out: String::with_capacity(1024),
        };
        w.out.push_str(XML_DECLARATION);
        w.out.push('<');
        w.out.push_str(root);
        w.out.push_str(" VERSION=\"");
        escape_into(&mut w.out, version);
        w.out.push_str("\">");
        w
    }

    /// Opens a container element without attributes.
    pub(crate) fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Closes an element.
    pub(crate) fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Writes `<name>text</name>`.
    pub(crate) fn text(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    /// Writes a base64 element in the Windows shape.
    pub(crate) fn base64(&mut self, name: &str, bytes: &[u8]) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push_str(" xmlns:dt=\"");
        self.out.push_str(DATATYPES_NAMESPACE);
        self.out.push_str("\" dt:dt=\"bin.base64\">");
        base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut self.out);
        self.close(name);
    }

    /// Closes the root and returns the document.
    pub(crate) fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// Appends `text` escaped for element content or a double-quoted attribute value.
pub(crate) fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{SourceEncoding, read_document};

    #[test]
    fn escapes_and_reads_back() {
        let awkward = "  <a> & \"b\" 'c' \r\n é 😀 ]]> ";
        let mut w = Writer::new("R", "1.0");
        w.text("T", awkward);
        w.base64("B", &[0, 255, 7]);
        let xml = w.finish("R");
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?><R VERSION=\"1.0\">"));
        let root = read_document(&xml, SourceEncoding::Utf8, &["B"]).unwrap();
        assert_eq!(root.children[0].text, awkward);
        assert_eq!(root.children[1].base64("B").unwrap(), vec![0, 255, 7]);
    }
}
