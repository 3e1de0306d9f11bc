//! YAML text -> a tree of [`Node`]s that keep their byte spans, built on `saphyr-parser`
//! (YAML 1.2). Anchors and aliases are resolved, `<<` merge keys are applied, duplicate
//! keys are errors. The config deserializer and the `file` store's YAML reader both start
//! here, so every value knows where it came from.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Tag};
use serde_json::Value;

use crate::span::Span;

/// One YAML node and where it is in the text.
#[derive(Clone, Debug)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Its byte range in the source text.
    pub span: Span,
}

/// The three kinds of YAML node.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A scalar's text; `plain` scalars are typed by the YAML 1.2 core schema, quoted and
    /// block scalars are always strings.
    Scalar {
        /// The scalar's text after unescaping.
        text: String,
        /// Whether the scalar was written plain (unquoted).
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
}

/// A YAML syntax error with its location.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
}

/// The core-schema meaning of a plain scalar.
#[derive(Clone, Debug, PartialEq)]
pub enum Plain {
    /// `null`, `~` or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// Anything else.
    Str,
}

/// Types a plain scalar by the YAML 1.2 core schema.
pub fn resolve_plain(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Plain::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Plain::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let negative = text.starts_with('-');
    if !unsigned.is_empty()
        && unsigned.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = text.parse::<i128>()
    {
        return Plain::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x").filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
        && let Ok(i) = i128::from_str_radix(hex, 16)
    {
        return Plain::Int(i);
    }
    if let Some(oct) =
        text.strip_prefix("0o").filter(|o| !o.is_empty() && o.bytes().all(|b| (b'0'..=b'7').contains(&b)))
        && let Ok(i) = i128::from_str_radix(oct, 8)
    {
        return Plain::Int(i);
    }
    let looks_numeric = unsigned.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.')
        && unsigned.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric && let Ok(f) = unsigned.parse::<f64>() {
        return Plain::Float(if negative { -f } else { f });
    }
    Plain::Str
}

/// `text` as a JSON number, exactly, when it is spelled as JSON spells numbers
/// (`-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`).
fn json_number(text: &str) -> Option<serde_json::Number> {
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut at = match b.first()? {
        b'0' => 1,
        b'1'..=b'9' => digits(0),
        _ => return None,
    };
    if b.get(at) == Some(&b'.') {
        let n = digits(at + 1);
        if n == 0 {
            return None;
        }
        at += 1 + n;
    }
    if matches!(b.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(b.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let n = digits(at);
        if n == 0 {
            return None;
        }
        at += n;
    }
    if at != b.len() {
        return None;
    }
    text.parse().ok()
}

impl Node {
    /// Converts the node to JSON, typing plain scalars by the core schema. A number spelled
    /// as JSON keeps its exact text; non-finite floats are kept as their text.
    pub fn to_json(&self) -> Value {
        match &self.kind {
            NodeKind::Scalar { text, plain: false } => Value::String(text.clone()),
            NodeKind::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Null => Value::Null,
                Plain::Bool(b) => Value::Bool(b),
                // A number written as JSON writes it keeps that exact text, whatever its size
                // or precision; other YAML spellings (`0x1f`, `+1`, `.5`) become their value.
                Plain::Int(_) | Plain::Float(_) if let Some(n) = json_number(text) => Value::Number(n),
                Plain::Int(i) => json_number(&i.to_string()).map_or_else(|| Value::String(text.clone()), Value::Number),
                Plain::Float(f) => {
                    serde_json::Number::from_f64(f).map(Value::Number).unwrap_or_else(|| Value::String(text.clone()))
                }
                Plain::Str => Value::String(text.clone()),
            },
            NodeKind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeKind::Map(entries) => Value::Object(
                entries.iter().map(|(k, v)| (k.scalar_text().unwrap_or_default().to_string(), v.to_json())).collect(),
            ),
        }
    }

    /// The text of a scalar node.
    pub fn scalar_text(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    /// Whether the node is a plain null scalar (`~`, `null` or nothing).
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if resolve_plain(text) == Plain::Null)
    }

    /// A short name of the node's kind for error messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null",
            NodeKind::Scalar { .. } => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// How much aliases may add to a document, in nodes plus bytes of scalar text: a few MB at
/// most, however the aliases nest (an "alias bomb" of 600 bytes would otherwise expand to
/// billions of nodes).
pub const MAX_ALIAS_EXPANSION: usize = 100_000;

/// How deeply collections may nest.
pub const MAX_DEPTH: usize = 128;

/// Parses one YAML document. An empty text is a null node. Aliases are bounded by
/// [`MAX_ALIAS_EXPANSION`], nesting by [`MAX_DEPTH`]; tags other than `!!str` (and `!!map`
/// / `!!seq` on their own kind) are refused, since vss would otherwise read them as plain
/// text (`path: !include x.yaml` is not an include).
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    Builder::new(text).run()
}

/// The weight of a node for the alias budget: its nodes plus its scalar bytes.
fn weight(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { text, .. } => 1 + text.len(),
        NodeKind::Seq(items) => 1 + items.iter().map(weight).sum::<usize>(),
        NodeKind::Map(entries) => 1 + entries.iter().map(|(k, v)| weight(k) + weight(v)).sum::<usize>(),
    }
}

/// How a tag is written: `!!str`, `!include`, `!<tag:example.com:x>`.
fn tag_text(tag: &Tag) -> String {
    if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// Whether a tag on a node of `kind` (`str`, `map`, `seq`) is one vss understands; an error
/// naming it otherwise.
fn check_tag(tag: Option<&Tag>, kind: &str, span: Span) -> Result<(), SyntaxError> {
    let Some(tag) = tag else { return Ok(()) };
    let non_specific = tag_text(tag) == "!";
    if non_specific || (tag.is_yaml_core_schema() && tag.suffix == kind) {
        return Ok(());
    }
    Err(SyntaxError {
        message: format!(
            "unsupported YAML tag `{}`: vss reads plain YAML values (no includes, no binary; quote the value to keep it as text)",
            tag_text(tag)
        ),
        span,
    })
}

struct Builder<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    /// Anchored nodes, with their weight.
    anchors: HashMap<usize, (Node, usize)>,
    /// What aliases added so far (see [`MAX_ALIAS_EXPANSION`]).
    expanded: usize,
    /// The last converted position (line index, column, byte offset): events arrive in
    /// order, so converting forward from here keeps long lines linear.
    cursor: std::cell::Cell<(usize, usize, usize)>,
}

enum Frame {
    Seq {
        start: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    /// `seen`: the scalar keys so far, for duplicate keys in linear time.
    Map {
        start: usize,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        seen: HashSet<String>,
    },
}

impl<'a> Builder<'a> {
    fn new(text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { text, line_starts, anchors: HashMap::new(), expanded: 0, cursor: std::cell::Cell::new((0, 0, 0)) }
    }

    /// Byte offset of a parser marker (1-based line, 0-based column in characters).
    fn offset(&self, marker: &saphyr_parser::Marker) -> usize {
        let line = marker.line().saturating_sub(1).min(self.line_starts.len() - 1);
        let (cursor_line, cursor_col, cursor_byte) = self.cursor.get();
        let (mut col, mut byte) = if cursor_line == line && cursor_col <= marker.col() {
            (cursor_col, cursor_byte)
        } else {
            (0, self.line_starts[line])
        };
        let mut chars = self.text[byte..].chars();
        while col < marker.col() {
            match chars.next() {
                Some('\n') | None => break,
                Some(c) => {
                    byte += c.len_utf8();
                    col += 1;
                }
            }
        }
        self.cursor.set((line, col, byte));
        byte
    }

    /// A flow collection ends at its closing bracket (the end event); a block collection
    /// at its last item (its end event sits at the next token, possibly lines later).
    fn collection_end(&self, start: usize, event_end: usize, last_item: Option<usize>) -> usize {
        let flow = self.text[start..].starts_with(['[', '{']);
        match last_item {
            Some(last) if !flow => last.max(start),
            _ => event_end.max(start),
        }
    }

    /// Refuses a collection nested deeper than [`MAX_DEPTH`].
    fn nest(&self, depth: usize, start: usize) -> Result<(), SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(SyntaxError {
                message: format!("collections nest deeper than {MAX_DEPTH} levels: refused"),
                span: Span::new(start, start + 1),
            });
        }
        Ok(())
    }

    fn scan_error(&self, error: &ScanError) -> SyntaxError {
        let at = self.offset(error.marker());
        SyntaxError { message: format!("invalid YAML: {}", error.info()), span: Span::new(at, at) }
    }

    fn run(mut self) -> Result<Node, SyntaxError> {
        let mut parser = Parser::new_from_str(self.text);
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents: Vec<Node> = Vec::new();
        while let Some(next) = parser.next_event() {
            let (event, span) = next.map_err(|e| self.scan_error(&e))?;
            let (start, end) = (self.offset(&span.start), self.offset(&span.end));
            let finished = match event {
                Event::StreamStart | Event::DocumentStart(_) | Event::DocumentEnd | Event::Nothing => None,
                Event::StreamEnd => break,
                Event::Alias(id) => match self.anchors.get(&id) {
                    Some((node, weight)) => {
                        self.expanded = self.expanded.saturating_add(*weight);
                        if self.expanded > MAX_ALIAS_EXPANSION {
                            return Err(SyntaxError {
                                message: format!(
                                    "aliases expand to more than {MAX_ALIAS_EXPANSION} nodes and bytes: refused (an alias bomb?)"
                                ),
                                span: Span::new(start, end),
                            });
                        }
                        Some(Node { kind: node.kind.clone(), span: Span::new(start, end) })
                    }
                    None => {
                        return Err(SyntaxError {
                            message: "alias to an unknown anchor".into(),
                            span: Span::new(start, end),
                        });
                    }
                },
                Event::Scalar(text, style, anchor, tag) => {
                    let span = Span::new(start, end.max(start));
                    check_tag(tag.as_deref(), "str", span)?;
                    // A `!!str` (or `!`) tag makes a plain scalar a string, as quotes do.
                    let plain = style == ScalarStyle::Plain && tag.is_none();
                    let node = Node { kind: NodeKind::Scalar { text: text.into_owned(), plain }, span };
                    if anchor > 0 {
                        self.anchors.insert(anchor, (node.clone(), weight(&node)));
                    }
                    Some(node)
                }
                Event::SequenceStart(anchor, tag) => {
                    check_tag(tag.as_deref(), "seq", Span::new(start, end.max(start)))?;
                    self.nest(stack.len(), start)?;
                    stack.push(Frame::Seq { start, anchor, items: Vec::new() });
                    None
                }
                Event::MappingStart(anchor, tag) => {
                    check_tag(tag.as_deref(), "map", Span::new(start, end.max(start)))?;
                    self.nest(stack.len(), start)?;
                    stack.push(Frame::Map { start, anchor, entries: Vec::new(), key: None, seen: HashSet::new() });
                    None
                }
                Event::SequenceEnd | Event::MappingEnd => {
                    let node = match stack.pop() {
                        Some(Frame::Seq { start: s, anchor, items }) => {
                            let e = self.collection_end(s, end, items.last().map(|n| n.span.end));
                            (anchor, Node { kind: NodeKind::Seq(items), span: Span::new(s, e) })
                        }
                        Some(Frame::Map { start: s, anchor, entries, .. }) => {
                            let e = self.collection_end(s, end, entries.last().map(|(_, v)| v.span.end));
                            (anchor, Node { kind: NodeKind::Map(apply_merge_keys(entries)?), span: Span::new(s, e) })
                        }
                        None => continue,
                    };
                    if node.0 > 0 {
                        let weight = weight(&node.1);
                        self.anchors.insert(node.0, (node.1.clone(), weight));
                    }
                    Some(node.1)
                }
            };
            let Some(node) = finished else { continue };
            match stack.last_mut() {
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map { entries, key, seen, .. }) => match key.take() {
                    None => *key = Some(node),
                    Some(k) => {
                        if let Some(name) = k.scalar_text()
                            && name != "<<"
                            && !seen.insert(name.to_string())
                        {
                            return Err(SyntaxError { message: format!("duplicate key `{name}`"), span: k.span });
                        }
                        entries.push((k, node));
                    }
                },
                None => documents.push(node),
            }
        }
        match documents.len() {
            0 => Ok(Node { kind: NodeKind::Scalar { text: String::new(), plain: true }, span: Span::new(0, 0) }),
            1 => Ok(documents.remove(0)),
            _ => Err(SyntaxError {
                message: "expected one YAML document, found several".into(),
                span: documents[1].span,
            }),
        }
    }
}

/// Applies YAML merge keys (`<<: *anchor` or `<<: [*a, *b]`): the merged mappings' entries
/// are added where the mapping does not set the key itself.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Result<Vec<(Node, Node)>, SyntaxError> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return Ok(entries);
    }
    let (merges, mut own): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(k, _)| is_merge_key(k));
    let mut present: HashSet<Option<String>> = own.iter().map(|(k, _)| k.scalar_text().map(str::to_string)).collect();
    for (_, value) in merges {
        let sources = match value.kind {
            NodeKind::Map(_) => vec![value],
            NodeKind::Seq(items) => items,
            _ => {
                return Err(SyntaxError {
                    message: "a `<<` merge key needs a mapping or a list of mappings".into(),
                    span: value.span,
                });
            }
        };
        for source in sources {
            let NodeKind::Map(merged) = source.kind else {
                return Err(SyntaxError {
                    message: "a `<<` merge key needs a mapping or a list of mappings".into(),
                    span: source.span,
                });
            };
            for (k, v) in merged {
                if present.insert(k.scalar_text().map(str::to_string)) {
                    own.push((k, v));
                }
            }
        }
    }
    Ok(own)
}

fn is_merge_key(node: &Node) -> bool {
    matches!(&node.kind, NodeKind::Scalar { text, plain: true } if text == "<<")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten levels of nine aliases each: 9^10 nodes if expanded, 600 bytes written.
    pub(crate) fn alias_bomb() -> String {
        let mut text = String::from("x0: &a0 [lol]\n");
        for level in 1..=10 {
            let items = vec![format!("*a{}", level - 1); 9].join(", ");
            text.push_str(&format!("x{level}: &a{level} [{items}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_that_crosses_the_budget() {
        let text = alias_bomb();
        assert!(text.len() < 700, "{}", text.len());
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("aliases expand to more than"), "{}", error.message);
        assert!(text[error.span.start..].starts_with("*a"), "located at an alias");
        // Ordinary anchors and merge keys are untouched.
        let node = parse("base: &b {x: 1}\na: *b\nc: {<<: *b, y: 2}\n").unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"base": {"x": 1}, "a": {"x": 1}, "c": {"x": 1, "y": 2}}));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        let error = parse(&deep).unwrap_err();
        assert!(error.message.contains("nest deeper than"), "{}", error.message);
        let fine = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&fine).is_ok());
    }

    #[test]
    fn unknown_tags_are_located_errors_and_str_makes_a_string() {
        for (text, tag) in [
            ("path: !include ./s.yaml\n", "!include"),
            ("key: !!binary aGVsbG8=\n", "!!binary"),
            ("n: !!int 3\n", "!!int"),
            ("m: !!seq {a: 1}\n", "!!seq"),
        ] {
            let error = parse(text).unwrap_err();
            assert!(error.message.contains(&format!("unsupported YAML tag `{tag}`")), "{text}: {}", error.message);
            assert!(error.span.start > text.find(": ").unwrap(), "located at the tagged value: {text}");
        }
        let node = parse("a: !!str 123\nb: ! true\nc: !!map {x: 1}\nd: !!seq [1]\n").unwrap();
        assert_eq!(node.to_json(), serde_json::json!({"a": "123", "b": "true", "c": {"x": 1}, "d": [1]}));
    }
    use serde_json::json;

    #[test]
    fn spans_point_at_the_text() {
        let text = "a: 1\nbé:\n  c: [x, \"y\"]\n";
        let node = parse(text).unwrap();
        let NodeKind::Map(entries) = &node.kind else { panic!("expected a map") };
        let (key, value) = &entries[1];
        assert_eq!(&text[key.span.start..key.span.end], "bé");
        let NodeKind::Map(inner) = &value.kind else { panic!("expected a map") };
        assert_eq!(&text[inner[0].0.span.start..inner[0].0.span.end], "c");
        let NodeKind::Seq(items) = &inner[0].1.kind else { panic!("expected a seq") };
        assert_eq!(&text[items[0].span.start..items[0].span.end], "x");
    }

    #[test]
    fn long_flow_lines_keep_exact_spans() {
        let items: Vec<String> = (0..20_000).map(|i| format!("k{i}: é{i}")).collect();
        let text = format!("{{{}}}", items.join(", "));
        let node = parse(&text).unwrap();
        let NodeKind::Map(entries) = &node.kind else { panic!("expected a map") };
        let (key, value) = &entries[19_999];
        assert_eq!(&text[key.span.start..key.span.end], "k19999");
        assert_eq!(&text[value.span.start..value.span.end], "é19999");
    }

    #[test]
    fn core_schema_typing() {
        let node = parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: hello\ng: -2\nh: 0x1f\ni: 1e3\nj: 1.2.3").unwrap();
        assert_eq!(
            node.to_json(),
            json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1", "f": "hello", "g": -2, "h": 31, "i": serde_json::from_str::<Value>("1e3").unwrap(), "j": "1.2.3"})
        );
    }

    #[test]
    fn numbers_spelled_as_json_keep_their_exact_text() {
        let exact = ["0", "-0", "1.10", "1.0", "12345678901234567890123", "-1e+400", "2.5e-3", "1e+5"];
        for text in exact {
            let node = parse(&format!("n: {text}")).unwrap();
            assert_eq!(node.to_json()["n"].to_string(), text, "{text}");
        }
        // Other YAML spellings of numbers become their value; what is not a number stays text.
        let node = parse("a: +1\nb: .5\nc: 0x1f\nd: 1.\ne: 007\nf: 1e\ng: .inf").unwrap();
        let text = |k: &str| node.to_json()[k].to_string();
        assert_eq!([text("a"), text("b"), text("c"), text("d"), text("e")], ["1", "0.5", "31", "1.0", "7"]);
        assert_eq!([text("f"), text("g")], [r#""1e""#, r#"".inf""#]);
    }

    #[test]
    fn anchors_aliases_and_merge_keys() {
        let node = parse("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\nlist: *b\n").unwrap();
        assert_eq!(
            node.to_json(),
            json!({"base": {"x": 1, "y": 2}, "other": {"x": 1, "y": 3}, "list": {"x": 1, "y": 2}})
        );
    }

    #[test]
    fn errors_have_locations() {
        let text = "a: 1\na: 2\n";
        let err = parse(text).unwrap_err();
        assert_eq!(err.message, "duplicate key `a`");
        assert_eq!(err.span.start, 5);
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(err.message.starts_with("invalid YAML"), "{}", err.message);
        assert!(parse("---\na: 1\n---\nb: 2\n").is_err());
        assert!(parse("").unwrap().is_null());
    }
}
