//! Search query XML: `<peersearch>` holding one `clause`, `and` or `or`.

use std::fmt;

use peergroup_identity::Timestamp;

use super::date::{MAX_DATE, format_date, parse_date};
use super::error::{Document, SearchError, shorten};
use super::glob::{Pattern, PatternToken};
use super::value::{AttributeName, ValueType, parse_int};
use super::xml::{self, Element, escape_attribute, escape_text};

/// The largest query XML accepted, in bytes (64 KiB). It bounds both the text given to
/// [`Query::parse`] and the canonical text [`Query::to_xml`] writes.
pub const MAX_QUERY_XML_BYTES: usize = 64 * 1024;
/// How deep `and`/`or` groups may nest (a group directly under `peersearch` is level 1).
pub const MAX_QUERY_DEPTH: usize = 32;

const DOC: Document = Document::Query;

/// How a clause compares an attribute value with its own value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compare {
    /// `equal` (the default when `compare` is absent). Strings match the wildcard pattern.
    #[default]
    Equal,
    /// `notequal`. Strings do not match the wildcard pattern.
    NotEqual,
    /// `less`: the attribute value is less than the clause value.
    Less,
    /// `greater`.
    Greater,
    /// `lessorequal`.
    LessOrEqual,
    /// `greaterorequal`.
    GreaterOrEqual,
}

impl Compare {
    const ALL: [Compare; 6] = [
        Compare::Equal,
        Compare::NotEqual,
        Compare::Less,
        Compare::Greater,
        Compare::LessOrEqual,
        Compare::GreaterOrEqual,
    ];

    /// The XML keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Compare::Equal => "equal",
            Compare::NotEqual => "notequal",
            Compare::Less => "less",
            Compare::Greater => "greater",
            Compare::LessOrEqual => "lessorequal",
            Compare::GreaterOrEqual => "greaterorequal",
        }
    }

    /// Whether `attribute_value.cmp(clause_value) == ordering` satisfies this comparison.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Compare::Equal => ordering == Equal,
            Compare::NotEqual => ordering != Equal,
            Compare::Less => ordering == Less,
            Compare::Greater => ordering == Greater,
            Compare::LessOrEqual => ordering != Greater,
            Compare::GreaterOrEqual => ordering != Less,
        }
    }

    fn from_keyword(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Compare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The typed value of a clause.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClauseValue {
    /// A `string` clause: a pattern with wildcards and escapes.
    String(Pattern),
    /// An `int` clause.
    Int(i64),
    /// A `date` clause.
    Date(Timestamp),
}

impl ClauseValue {
    /// The clause type.
    pub fn value_type(&self) -> ValueType {
        match self {
            ClauseValue::String(_) => ValueType::String,
            ClauseValue::Int(_) => ValueType::Int,
            ClauseValue::Date(_) => ValueType::Date,
        }
    }
}

/// One comparison: `<clause attrib="…" type="…" compare="…">value</clause>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Clause {
    attrib: AttributeName,
    compare: Compare,
    value: ClauseValue,
}

impl Clause {
    /// A clause. `attrib` may be a reserved `peer*` name. Refuses pattern characters XML
    /// cannot carry and dates after [`MAX_DATE`].
    pub fn new(
        attrib: AttributeName,
        compare: Compare,
        value: ClauseValue,
    ) -> Result<Self, SearchError> {
        match &value {
            ClauseValue::String(p) => {
                for t in p.tokens() {
                    if let PatternToken::Char(c) = t {
                        xml::check_chars(c.encode_utf8(&mut [0; 4]), DOC, 0)?;
                    }
                }
            }
            ClauseValue::Int(_) => {}
            ClauseValue::Date(t) => {
                if *t > MAX_DATE {
                    return Err(SearchError::BadDate {
                        doc: DOC,
                        line: 0,
                        text: format!("{} ms", t.as_millis()),
                        reason: "dates after 9999-12-31T23:59:59.999Z are not supported",
                    });
                }
            }
        }
        Ok(Clause {
            attrib,
            compare,
            value,
        })
    }

    /// The attribute compared.
    pub fn attrib(&self) -> &AttributeName {
        &self.attrib
    }

    /// The comparison.
    pub fn compare(&self) -> Compare {
        self.compare
    }

    /// The value compared against.
    pub fn value(&self) -> &ClauseValue {
        &self.value
    }
}

/// A node of the query tree.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Node {
    /// A single comparison.
    Clause(Clause),
    /// `<and>`: every child matches (at least one child).
    And(Vec<Node>),
    /// `<or>`: some child matches (at least one child).
    Or(Vec<Node>),
}

/// A validated search query.
///
/// Every value of this type can be written by [`Query::to_xml`] and read back equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Query {
    root: Node,
}

impl Query {
    /// A query from a tree: refuses empty `and`/`or` groups, nesting deeper than
    /// [`MAX_QUERY_DEPTH`] and canonical XML over [`MAX_QUERY_XML_BYTES`].
    pub fn new(root: Node) -> Result<Query, SearchError> {
        check_node(&root, 0)?;
        let query = Query { root };
        let size = query.to_xml().len();
        if size > MAX_QUERY_XML_BYTES {
            return Err(SearchError::TooLarge {
                doc: DOC,
                size,
                limit: MAX_QUERY_XML_BYTES,
            });
        }
        Ok(query)
    }

    /// The root of the tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Parses query XML (see the module docs for the format and the rules we keep).
    pub fn parse(xml: &str) -> Result<Query, SearchError> {
        if xml.len() > MAX_QUERY_XML_BYTES {
            return Err(SearchError::TooLarge {
                doc: DOC,
                size: xml.len(),
                limit: MAX_QUERY_XML_BYTES,
            });
        }
        // peersearch, the groups, and a clause.
        let max_depth = MAX_QUERY_DEPTH + 2;
        let root = xml::read(xml, DOC, max_depth, &|_, _| SearchError::TooDeep {
            limit: MAX_QUERY_DEPTH,
        })?;
        if root.name != "peersearch" {
            return Err(schema(
                root.line,
                format!(
                    "the root element must be <peersearch>, found <{}>",
                    shorten(&root.name)
                ),
            ));
        }
        for (key, _) in &root.attributes {
            if key != "xmlns" && !key.starts_with("xmlns:") {
                return Err(schema(
                    root.line,
                    format!(
                        "unknown attribute {} on <peersearch>; only xmlns attributes are allowed",
                        shorten(key)
                    ),
                ));
            }
        }
        root.expect_no_text(DOC)?;
        let [child] = root.children.as_slice() else {
            return Err(schema(
                root.line,
                format!(
                    "<peersearch> must have exactly one child (clause, and or or), found {}",
                    root.children.len()
                ),
            ));
        };
        Query::new(read_node(child, 1)?)
    }

    /// The canonical XML: an XML declaration, then `<peersearch>` with no white space between
    /// elements and every `compare` written out.
    pub fn to_xml(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><peersearch>");
        write_node(&self.root, &mut out);
        out.push_str("</peersearch>");
        out
    }
}

fn schema(line: usize, reason: String) -> SearchError {
    SearchError::Schema {
        doc: DOC,
        line,
        reason,
    }
}

/// Checks groups below `depth` enclosing groups; recursion stops at the depth limit.
fn check_node(node: &Node, depth: usize) -> Result<(), SearchError> {
    let (name, children) = match node {
        Node::Clause(_) => return Ok(()),
        Node::And(children) => ("and", children),
        Node::Or(children) => ("or", children),
    };
    if depth >= MAX_QUERY_DEPTH {
        return Err(SearchError::TooDeep {
            limit: MAX_QUERY_DEPTH,
        });
    }
    if children.is_empty() {
        return Err(schema(0, format!("<{name}> must have at least one child")));
    }
    children.iter().try_for_each(|c| check_node(c, depth + 1))
}

/// Reads a clause or a group; `depth` counts groups including this one. (The reader's own
/// depth limit bounds the recursion.)
fn read_node(e: &Element, depth: usize) -> Result<Node, SearchError> {
    let group = |make: fn(Vec<Node>) -> Node| -> Result<Node, SearchError> {
        if depth > MAX_QUERY_DEPTH {
            return Err(SearchError::TooDeep {
                limit: MAX_QUERY_DEPTH,
            });
        }
        if let Some((key, _)) = e.attributes.first() {
            return Err(schema(
                e.line,
                format!("unknown attribute {} on <{}>", shorten(key), e.name),
            ));
        }
        e.expect_no_text(DOC)?;
        if e.children.is_empty() {
            return Err(schema(
                e.line,
                format!(
                    "<{}> must have at least one child (clause, and or or)",
                    e.name
                ),
            ));
        }
        let children = e
            .children
            .iter()
            .map(|c| read_node(c, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(make(children))
    };
    match e.name.as_str() {
        "clause" => read_clause(e).map(Node::Clause),
        "and" => group(Node::And),
        "or" => group(Node::Or),
        other => Err(schema(
            e.line,
            format!(
                "unknown element <{}>; expected clause, and or or",
                shorten(other)
            ),
        )),
    }
}

fn read_clause(e: &Element) -> Result<Clause, SearchError> {
    let mut attrib = None;
    let mut value_type = None;
    let mut compare = None;
    for (key, value) in &e.attributes {
        let unknown = |what: &str, expected: &str| {
            schema(
                e.line,
                format!(
                    "unknown {what} {:?} on <clause>; expected {expected}",
                    shorten(value)
                ),
            )
        };
        match key.as_str() {
            "attrib" => attrib = Some(AttributeName::parse_in(value, DOC, e.line)?),
            "type" => {
                value_type = Some(
                    ValueType::from_keyword(value)
                        .ok_or_else(|| unknown("type", "string, int or date"))?,
                );
            }
            "compare" => {
                compare = Some(Compare::from_keyword(value).ok_or_else(|| {
                    unknown(
                        "compare",
                        "equal, notequal, less, greater, lessorequal or greaterorequal",
                    )
                })?);
            }
            other => {
                return Err(schema(
                    e.line,
                    format!(
                        "unknown attribute {} on <clause>; expected attrib, type and compare",
                        shorten(other)
                    ),
                ));
            }
        }
    }
    let missing = |what: &str| schema(e.line, format!("<clause> has no {what} attribute"));
    let attrib = attrib.ok_or_else(|| missing("attrib"))?;
    let value_type = value_type.ok_or_else(|| missing("type"))?;
    e.expect_no_children(DOC)?;
    let text = e.text.as_str();
    let value = match value_type {
        ValueType::String => ClauseValue::String(Pattern::parse_at(text, e.line)?),
        ValueType::Int => {
            ClauseValue::Int(parse_int(text).map_err(|reason| SearchError::BadInt {
                doc: DOC,
                line: e.line,
                text: shorten(text),
                reason,
            })?)
        }
        ValueType::Date => {
            ClauseValue::Date(parse_date(text).map_err(|reason| SearchError::BadDate {
                doc: DOC,
                line: e.line,
                text: shorten(text),
                reason,
            })?)
        }
    };
    Ok(Clause {
        attrib,
        compare: compare.unwrap_or_default(),
        value,
    })
}

/// Writes a node; recursion is bounded by the depth limit `Query::new` checked.
fn write_node(node: &Node, out: &mut String) {
    let (name, children) = match node {
        Node::Clause(c) => return write_clause(c, out),
        Node::And(children) => ("and", children),
        Node::Or(children) => ("or", children),
    };
    out.push('<');
    out.push_str(name);
    out.push('>');
    for c in children {
        write_node(c, out);
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn write_clause(c: &Clause, out: &mut String) {
    out.push_str("<clause attrib=\"");
    escape_attribute(c.attrib.as_str(), out);
    out.push_str("\" type=\"");
    out.push_str(c.value.value_type().as_str());
    out.push_str("\" compare=\"");
    out.push_str(c.compare.as_str());
    out.push_str("\">");
    match &c.value {
        ClauseValue::String(p) => escape_text(&p.to_query_text(), out),
        ClauseValue::Int(i) => out.push_str(&i.to_string()),
        // Dates past MAX_DATE never get in (checked by Clause::new and parse_date).
        ClauseValue::Date(t) => out.push_str(&format_date(*t).unwrap_or_default()),
    }
    out.push_str("</clause>");
}
