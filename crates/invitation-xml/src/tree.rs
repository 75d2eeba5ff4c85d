//! Checks of an element tree against a closed format: which elements, in which order, with
//! which attributes, holding text or elements.
//!
//! Every format in this crate is closed: an element or attribute it does not define is
//! refused (a new one would come with a new `VERSION`), elements must come in the order the
//! format lists them (as Windows writes them and as the XSDs say), and none may repeat.

use base64::Engine as _;

use crate::error::{Error, shorten};
use crate::reader::{Element, is_xml_whitespace};

/// The namespace of the `dt:dt` attribute on base64 elements.
pub const DATATYPES_NAMESPACE: &str = "urn:schemas-microsoft-com:datatypes";

/// The children of a container element, looked up by name.
pub(crate) struct Fields<'a> {
    parent: &'static str,
    spec: &'static [&'static str],
    found: Vec<Option<&'a Element>>,
}

impl<'a> Fields<'a> {
    /// The child `name`, if present.
    pub(crate) fn get(&self, name: &'static str) -> Option<&'a Element> {
        let index = self.spec.iter().position(|s| *s == name)?;
        self.found.get(index).copied().flatten()
    }

    /// The child `name`, or a "missing element" error.
    pub(crate) fn require(&self, name: &'static str) -> Result<&'a Element, Error> {
        self.get(name).ok_or(Error::MissingElement {
            element: name,
            parent: self.parent,
        })
    }
}

impl Element {
    /// Checks that this is the root `name` with only a `VERSION` attribute, and returns it.
    pub(crate) fn root_version(&self, name: &'static str) -> Result<&str, Error> {
        if self.name != name {
            return Err(Error::WrongRoot {
                expected: name,
                found: shorten(&self.name),
            });
        }
        self.check_attributes(&["VERSION"])?;
        self.attribute("VERSION")
            .ok_or_else(|| Error::MissingAttribute {
                attribute: "VERSION",
                element: name.to_owned(),
            })
    }

    /// The value of attribute `key`, if present.
    pub(crate) fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Refuses attributes other than `allowed`.
    pub(crate) fn check_attributes(&self, allowed: &[&str]) -> Result<(), Error> {
        match self
            .attributes
            .iter()
            .find(|(k, _)| !allowed.contains(&k.as_str()))
        {
            Some((k, _)) => Err(Error::UnknownAttribute {
                attribute: shorten(k),
                element: shorten(&self.name),
            }),
            None => Ok(()),
        }
    }

    /// Reads the children of a container named `parent` whose possible children are `spec`,
    /// in order, each at most once. Text other than white space is refused.
    pub(crate) fn fields(
        &self,
        parent: &'static str,
        spec: &'static [&'static str],
    ) -> Result<Fields<'_>, Error> {
        self.check_no_text()?;
        let mut found: Vec<Option<&Element>> = vec![None; spec.len()];
        let mut last: Option<usize> = None;
        for child in &self.children {
            let Some(index) = spec.iter().position(|s| *s == child.name) else {
                return Err(Error::UnknownElement {
                    element: shorten(&child.name),
                    parent: parent.to_owned(),
                });
            };
            if found[index].is_some() {
                return Err(Error::DuplicateElement {
                    element: child.name.clone(),
                    parent: parent.to_owned(),
                });
            }
            if let Some(last) = last
                && index < last
            {
                return Err(Error::OutOfOrder {
                    element: child.name.clone(),
                    parent: parent.to_owned(),
                    before: spec[last].to_owned(),
                });
            }
            found[index] = Some(child);
            last = Some(index);
        }
        Ok(Fields {
            parent,
            spec,
            found,
        })
    }

    /// Refuses non-white-space text in a container.
    pub(crate) fn check_no_text(&self) -> Result<(), Error> {
        if !is_xml_whitespace(&self.text) {
            return Err(Error::UnexpectedText {
                element: self.name.clone(),
                text: shorten(self.text.trim()),
            });
        }
        Ok(())
    }

    /// Refuses child elements in a text element.
    fn check_no_children(&self) -> Result<(), Error> {
        match self.children.first() {
            Some(child) => Err(Error::UnexpectedChild {
                element: self.name.clone(),
                child: shorten(&child.name),
            }),
            None => Ok(()),
        }
    }

    /// The text of a text element without attributes.
    pub(crate) fn text(&self) -> Result<&str, Error> {
        self.check_attributes(&[])?;
        self.check_no_children()?;
        Ok(&self.text)
    }

    /// The bytes of a base64 element `<X xmlns:dt="urn:schemas-microsoft-com:datatypes"
    /// dt:dt="bin.base64">`. Both attributes are required, as Windows writes them. White
    /// space inside the base64 is ignored (line-wrapped base64 is common); the rest must be
    /// canonical padded standard base64.
    pub(crate) fn base64(&self, element: &'static str) -> Result<Vec<u8>, Error> {
        self.check_attributes(&["xmlns:dt", "dt:dt"])?;
        self.check_fixed_attribute("xmlns:dt", DATATYPES_NAMESPACE)?;
        self.check_fixed_attribute("dt:dt", "bin.base64")?;
        self.check_no_children()?;
        let compact: String = self
            .text
            .chars()
            .filter(|c| !matches!(c, ' ' | '\t' | '\r' | '\n'))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| Error::Base64 {
                element,
                reason: e.to_string(),
            })
    }

    fn check_fixed_attribute(
        &self,
        key: &'static str,
        expected: &'static str,
    ) -> Result<(), Error> {
        match self.attribute(key) {
            None => Err(Error::MissingAttribute {
                attribute: key,
                element: self.name.clone(),
            }),
            Some(v) if v == expected => Ok(()),
            Some(v) => Err(Error::WrongAttribute {
                attribute: key,
                element: self.name.clone(),
                expected,
                found: shorten(v),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::{SourceEncoding, read_document};

    const SPEC: &[&str] = &["A", "B", "C"];

    fn fields_of(xml: &str) -> Result<(), Error> {
        let root = read_document(xml, SourceEncoding::Utf8, &[])?;
        root.fields("R", SPEC).map(|_| ())
    }

    #[test]
    fn fields_in_order_once() {
        fields_of("<R><A/><C/></R>").unwrap();
        fields_of("<R>\n  <A/>\n  <B/>\n</R>").unwrap();
        assert!(matches!(
            fields_of("<R><A/><A/></R>"),
            Err(Error::DuplicateElement { .. })
        ));
        assert!(matches!(
            fields_of("<R><B/><A/></R>"),
            Err(Error::OutOfOrder { .. })
        ));
        assert!(matches!(
            fields_of("<R><A/><Z/></R>"),
            Err(Error::UnknownElement { .. })
        ));
        assert!(matches!(
            fields_of("<R>text<A/></R>"),
            Err(Error::UnexpectedText { .. })
        ));
        let root = read_document("<R><A/></R>", SourceEncoding::Utf8, &[]).unwrap();
        let fields = root.fields("R", SPEC).unwrap();
        assert!(fields.get("A").is_some());
        assert_eq!(
            fields.require("B").unwrap_err().to_string(),
            "missing element B in R"
        );
    }

    #[test]
    fn base64_elements() {
        let ok = format!(
            "<X xmlns:dt=\"{DATATYPES_NAMESPACE}\" dt:dt=\"bin.base64\">AAEC\r\n  Aw==</X>"
        );
        let e = read_document(&ok, SourceEncoding::Utf8, &["X"]).unwrap();
        assert_eq!(e.base64("X").unwrap(), vec![0, 1, 2, 3]);
        for bad in [
            "<X dt:dt=\"bin.base64\">AA==</X>",
            "<X xmlns:dt=\"urn:other\" dt:dt=\"bin.base64\">AA==</X>",
            "<X xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.hex\">AA==</X>",
            "<X xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\" y=\"\">AA==</X>",
            "<X xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">AA</X>",
            "<X xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">AB==</X>",
            "<X xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\">A*==</X>",
            "<X xmlns:dt=\"urn:schemas-microsoft-com:datatypes\" dt:dt=\"bin.base64\"><Y/></X>",
        ] {
            let e = read_document(bad, SourceEncoding::Utf8, &["X"]).unwrap();
            assert!(e.base64("X").is_err(), "{bad} decoded");
        }
    }
}
