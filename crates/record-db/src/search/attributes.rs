//! Record attribute XML: `<attributes><attribute name="…" type="…">value</attribute>…`.

use peergroup_identity::Timestamp;

use super::date::{MAX_DATE, format_date, parse_date};
use super::error::{Document, SearchError, shorten};
use super::value::{AttributeName, Value, ValueType, parse_int};
use super::xml::{self, Element, escape_attribute, escape_text};

/// The largest attribute XML accepted, in bytes (64 KiB). It bounds both the text given to
/// [`Attributes::parse`] and the canonical text [`Attributes::to_xml`] writes.
pub const MAX_ATTRIBUTES_XML_BYTES: usize = 64 * 1024;
/// The most attributes one record may carry.
pub const MAX_ATTRIBUTES: usize = 256;

const DOC: Document = Document::Attributes;
const OPEN: &str = "<attributes>";
const CLOSE: &str = "</attributes>";

/// One attribute: a name and a typed value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The name (never a reserved name once inside [`Attributes`]).
    pub name: AttributeName,
    /// The value.
    pub value: Value,
}

/// A record's application attributes, in order. Names need not be unique.
///
/// Every value of this type can be written by [`Attributes::to_xml`] and read back equal:
/// adding an attribute refuses reserved names, strings with characters XML cannot carry,
/// dates after [`MAX_DATE`], more than [`MAX_ATTRIBUTES`] attributes and canonical XML over
/// [`MAX_ATTRIBUTES_XML_BYTES`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Attributes {
    list: Vec<Attribute>,
    /// Length of the canonical XML of `list`, without the root tags.
    body_len: usize,
}

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses attribute XML. Empty (or all white space) text means no attributes.
    ///
    /// Types are `string` (kept exactly), `int` and `date` (see the module docs); the type
    /// keyword is matched case-insensitively, element and attribute names exactly.
    pub fn parse(xml: &str) -> Result<Attributes, SearchError> {
        if xml.len() > MAX_ATTRIBUTES_XML_BYTES {
            return Err(SearchError::TooLarge {
                doc: DOC,
                size: xml.len(),
                limit: MAX_ATTRIBUTES_XML_BYTES,
            });
        }
        if xml::is_xml_whitespace(xml) {
            return Ok(Attributes::new());
        }
        let root = xml::read(xml, DOC, 2, &|name, line| SearchError::Schema {
            doc: DOC,
            line,
            reason: format!(
                "element <{}> nests too deeply: <attributes> holds <attribute> elements, which \
                 hold only text",
                shorten(name)
            ),
        })?;
        if root.name != "attributes" {
            return Err(schema(
                root.line,
                format!(
                    "the root element must be <attributes>, found <{}>",
                    shorten(&root.name)
                ),
            ));
        }
        if let Some((key, _)) = root.attributes.first() {
            return Err(schema(
                root.line,
                format!("unknown attribute {} on <attributes>", shorten(key)),
            ));
        }
        root.expect_no_text(DOC)?;
        let mut out = Attributes::new();
        for element in &root.children {
            if out.list.len() >= MAX_ATTRIBUTES {
                return Err(SearchError::TooManyAttributes {
                    limit: MAX_ATTRIBUTES,
                });
            }
            let attribute = read_attribute(element)?;
            out.push_at(attribute, element.line)?;
        }
        Ok(out)
    }

    /// The canonical XML: `<attributes><attribute name="…" type="…">…</attribute>…</attributes>`
    /// with no white space between elements, or the empty string when there are no attributes.
    /// Strings are escaped so they read back exactly; dates are written as `YYYY-MM-DD` at
    /// midnight UTC and `YYYY-MM-DDThh:mm:ss[.sss]Z` otherwise.
    pub fn to_xml(&self) -> String {
        if self.list.is_empty() {
            return String::new();
        }
        let mut out = String::with_capacity(OPEN.len() + self.body_len + CLOSE.len());
        out.push_str(OPEN);
        for a in &self.list {
            write_attribute(a, &mut out);
        }
        out.push_str(CLOSE);
        out
    }

    /// Appends an attribute, checking it as described on [`Attributes`].
    pub fn push(&mut self, attribute: Attribute) -> Result<(), SearchError> {
        self.push_at(attribute, 0)
    }

    /// Appends a `string` attribute (builder style).
    pub fn with_string(
        mut self,
        name: &str,
        value: impl Into<String>,
    ) -> Result<Self, SearchError> {
        self.push(Attribute {
            name: AttributeName::new(name)?,
            value: Value::String(value.into()),
        })?;
        Ok(self)
    }

    /// Appends an `int` attribute (builder style).
    pub fn with_int(mut self, name: &str, value: i64) -> Result<Self, SearchError> {
        self.push(Attribute {
            name: AttributeName::new(name)?,
            value: Value::Int(value),
        })?;
        Ok(self)
    }

    /// Appends a `date` attribute (builder style).
    pub fn with_date(mut self, name: &str, value: Timestamp) -> Result<Self, SearchError> {
        self.push(Attribute {
            name: AttributeName::new(name)?,
            value: Value::Date(value),
        })?;
        Ok(self)
    }

    /// The values of every attribute called `name` (ASCII case-insensitive), in order.
    pub fn get<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.list
            .iter()
            .filter(move |a| a.name.matches(name))
            .map(|a| &a.value)
    }

    /// All attributes, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Attribute> {
        self.list.iter()
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn push_at(&mut self, attribute: Attribute, line: usize) -> Result<(), SearchError> {
        if attribute.name.reserved().is_some() {
            return Err(SearchError::ReservedName {
                line,
                name: attribute.name.as_str().to_owned(),
            });
        }
        match &attribute.value {
            Value::String(s) => xml::check_chars(s, DOC, line)?,
            Value::Int(_) => {}
            Value::Date(t) => {
                if *t > MAX_DATE {
                    return Err(SearchError::BadDate {
                        doc: DOC,
                        line,
                        text: format!("{} ms", t.as_millis()),
                        reason: "dates after 9999-12-31T23:59:59.999Z are not supported",
                    });
                }
            }
        }
        if self.list.len() >= MAX_ATTRIBUTES {
            return Err(SearchError::TooManyAttributes {
                limit: MAX_ATTRIBUTES,
            });
        }
        let mut element = String::new();
        write_attribute(&attribute, &mut element);
        let body_len = self.body_len.saturating_add(element.len());
        let size = body_len.saturating_add(OPEN.len() + CLOSE.len());
        if size > MAX_ATTRIBUTES_XML_BYTES {
            return Err(SearchError::TooLarge {
                doc: DOC,
                size,
                limit: MAX_ATTRIBUTES_XML_BYTES,
            });
        }
        self.body_len = body_len;
        self.list.push(attribute);
        Ok(())
    }
}

impl<'a> IntoIterator for &'a Attributes {
    type Item = &'a Attribute;
    type IntoIter = std::slice::Iter<'a, Attribute>;

    fn into_iter(self) -> Self::IntoIter {
        self.list.iter()
    }
}

fn schema(line: usize, reason: String) -> SearchError {
    SearchError::Schema {
        doc: DOC,
        line,
        reason,
    }
}

fn read_attribute(e: &Element) -> Result<Attribute, SearchError> {
    if e.name != "attribute" {
        return Err(schema(
            e.line,
            format!(
                "unknown element <{}> inside <attributes>; only <attribute> is allowed",
                shorten(&e.name)
            ),
        ));
    }
    let mut name = None;
    let mut value_type = None;
    for (key, value) in &e.attributes {
        match key.as_str() {
            "name" => name = Some(AttributeName::parse_in(value, DOC, e.line)?),
            "type" => {
                value_type = Some(ValueType::from_keyword(value).ok_or_else(|| {
                    schema(
                        e.line,
                        format!(
                            "unknown type {:?} on <attribute>; expected string, int or date",
                            shorten(value)
                        ),
                    )
                })?);
            }
            other => {
                return Err(schema(
                    e.line,
                    format!(
                        "unknown attribute {} on <attribute>; only name and type are allowed",
                        shorten(other)
                    ),
                ));
            }
        }
    }
    let missing = |what: &str| schema(e.line, format!("<attribute> has no {what} attribute"));
    let name = name.ok_or_else(|| missing("name"))?;
    let value_type = value_type.ok_or_else(|| missing("type"))?;
    e.expect_no_children(DOC)?;
    let text = e.text.as_str();
    let value = match value_type {
        ValueType::String => Value::String(text.to_owned()),
        ValueType::Int => Value::Int(parse_int(text).map_err(|reason| SearchError::BadInt {
            doc: DOC,
            line: e.line,
            text: shorten(text),
            reason,
        })?),
        ValueType::Date => {
            Value::Date(parse_date(text).map_err(|reason| SearchError::BadDate {
                doc: DOC,
                line: e.line,
                text: shorten(text),
                reason,
            })?)
        }
    };
    Ok(Attribute { name, value })
}

fn write_attribute(a: &Attribute, out: &mut String) {
    out.push_str("<attribute name=\"");
    escape_attribute(a.name.as_str(), out);
    out.push_str("\" type=\"");
    out.push_str(a.value.value_type().as_str());
    out.push_str("\">");
    match &a.value {
        Value::String(s) => escape_text(s, out),
        Value::Int(i) => out.push_str(&i.to_string()),
        // Dates past MAX_DATE never get in (checked by push_at).
        Value::Date(t) => out.push_str(&format_date(*t).unwrap_or_default()),
    }
    out.push_str("</attribute>");
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "<attributes><attribute name=\"Owner\" type=\"string\">Scott</attribute>\
        <attribute name=\"Birthday\" type=\"date\">1972-04-04</attribute>\
        <attribute name=\"Priority\" type=\"int\">1</attribute></attributes>";

    fn expect_schema(xml: &str, needle: &str) {
        match Attributes::parse(xml) {
            Err(SearchError::Schema { reason, .. }) => {
                assert!(
                    reason.contains(needle),
                    "{xml:?}: {reason:?} lacks {needle:?}"
                )
            }
            other => panic!("{xml:?}: expected a schema error, got {other:?}"),
        }
    }

    #[test]
    fn the_windows_example_parses_and_round_trips() {
        let a = Attributes::parse(EXAMPLE).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.to_xml(), EXAMPLE);
        let built = Attributes::new()
            .with_string("Owner", "Scott")
            .and_then(|a| a.with_date("Birthday", parse_date("1972-04-04").unwrap()))
            .and_then(|a| a.with_int("Priority", 1))
            .unwrap();
        assert_eq!(built, a);
        assert_eq!(
            a.get("owner").collect::<Vec<_>>(),
            [&Value::String("Scott".into())]
        );
        assert_eq!(a.get("PRIORITY").collect::<Vec<_>>(), [&Value::Int(1)]);
        assert_eq!(a.get("nobody").count(), 0);
    }

    #[test]
    fn empty_means_none() {
        assert_eq!(Attributes::parse("").unwrap(), Attributes::new());
        assert_eq!(Attributes::parse(" \n").unwrap(), Attributes::new());
        assert_eq!(
            Attributes::parse("<attributes/>").unwrap(),
            Attributes::new()
        );
        assert_eq!(Attributes::new().to_xml(), "");
    }

    #[test]
    fn schema_problems_are_named() {
        expect_schema("<attribs/>", "root element must be <attributes>");
        expect_schema(
            "<attributes x=\"1\"/>",
            "unknown attribute x on <attributes>",
        );
        expect_schema("<attributes>hi</attributes>", "holds elements only");
        expect_schema("<attributes><attr/></attributes>", "unknown element <attr>");
        expect_schema(
            "<attributes><attribute name=\"a\" type=\"string\" x=\"\"/></attributes>",
            "unknown attribute x on <attribute>",
        );
        expect_schema(
            "<attributes><attribute type=\"int\">1</attribute></attributes>",
            "no name",
        );
        expect_schema(
            "<attributes><attribute name=\"a\">1</attribute></attributes>",
            "no type",
        );
        expect_schema(
            "<attributes><attribute name=\"a\" type=\"float\">1</attribute></attributes>",
            "unknown type \"float\"",
        );
        expect_schema(
            "<attributes><attribute name=\"a\" type=\"string\"><b/></attribute></attributes>",
            "<b> nests too deeply",
        );
    }

    #[test]
    fn limits() {
        let one = "<attribute name=\"a\" type=\"int\">1</attribute>";
        let at_limit = format!("<attributes>{}</attributes>", one.repeat(MAX_ATTRIBUTES));
        assert_eq!(Attributes::parse(&at_limit).unwrap().len(), MAX_ATTRIBUTES);
        let over = format!(
            "<attributes>{}</attributes>",
            one.repeat(MAX_ATTRIBUTES + 1)
        );
        assert_eq!(
            Attributes::parse(&over),
            Err(SearchError::TooManyAttributes {
                limit: MAX_ATTRIBUTES
            })
        );
        let big = format!(
            "<attributes><attribute name=\"a\" type=\"string\">{}</attribute></attributes>",
            "x".repeat(MAX_ATTRIBUTES_XML_BYTES)
        );
        assert!(matches!(
            Attributes::parse(&big),
            Err(SearchError::TooLarge { .. })
        ));
        // Input under the limit whose canonical form would be over it.
        let cdata = format!(
            "<attributes><attribute name=\"a\" type=\"string\"><![CDATA[{}]]></attribute></attributes>",
            "<".repeat(20_000)
        );
        assert!(matches!(
            Attributes::parse(&cdata),
            Err(SearchError::TooLarge { .. })
        ));
        let mut a = Attributes::new();
        for _ in 0..MAX_ATTRIBUTES {
            a.push(Attribute {
                name: AttributeName::new("a").unwrap(),
                value: Value::Int(1),
            })
            .unwrap();
        }
        assert!(matches!(
            a.clone().with_int("b", 2),
            Err(SearchError::TooManyAttributes { .. })
        ));
    }

    #[test]
    fn builder_refusals() {
        let a = Attributes::new();
        assert!(matches!(
            a.clone().with_int("a-b", 1),
            Err(SearchError::BadName { .. })
        ));
        assert!(matches!(
            a.clone().with_string("PeerCreatorId", "x"),
            Err(SearchError::ReservedName { .. })
        ));
        assert!(matches!(
            a.clone().with_string("s", "nul\0"),
            Err(SearchError::IllegalCharacter { code: 0, .. })
        ));
        assert!(matches!(
            a.with_date("d", Timestamp::from_millis(u64::MAX)),
            Err(SearchError::BadDate { .. })
        ));
    }
}
