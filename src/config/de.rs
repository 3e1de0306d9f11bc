//! A serde `Deserializer` over the spanned YAML [`Node`] tree.
//!
//! It is what lets vss report every config error at once, each at its location:
//! - every error gets the span of the innermost node it came from and is recorded in the
//!   [`Ctx`] the moment it gets that span;
//! - unknown keys of a struct are recorded (with a "did you mean") and skipped, so parsing
//!   goes on;
//! - [`Lenient<T>`](crate::span::Lenient) turns a failed `T` into `None`: each source and target is parsed on its
//!   own, so an error in one does not hide the errors in the others;
//! - [`Spanned<T>`](crate::span::Spanned) keeps a value's span for the checks that run after parsing;
//! - string scalars are expanded (`${VAR}`), and an unset variable is an error naming the
//!   key that uses it.
//!
//! Type errors never quote the offending value: it may have come from an environment
//! variable that holds a secret.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};

use crate::config::interpolate::{InterpolateError, interpolate};
use crate::diagnostic::{Diagnostic, suggest};
use crate::span::{SPANNED, Span};
use crate::yaml::{Node, NodeKind, Plain, resolve_plain};

/// Where errors are collected while a tree is deserialized, and how variables are found.
pub struct Ctx<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: RefCell<Vec<Diagnostic>>,
    /// Value nodes that failed in an earlier pass: read as null in this one.
    bad: &'a HashSet<Span>,
}

/// Deserializes `node` as `T`. Returns the value when the top level succeeded, and every
/// error recorded on the way (also when it succeeded: skipped unknown keys, failed
/// [`Lenient`](crate::span::Lenient) parts), sorted by position.
///
/// A type error stops serde in the middle of a struct, which would hide the errors after it
/// in the same block. So parsing is repeated: each pass reads the nodes that failed before
/// as null (an optional field is then simply absent) and records the errors found beyond
/// them, until a pass finds nothing new.
pub fn from_node<T: DeserializeOwned>(
    node: &Node,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Option<T>, Vec<Diagnostic>) {
    const PASSES: usize = 32;
    let mut bad: HashSet<Span> = HashSet::new();
    let mut all: Vec<Diagnostic> = Vec::new();
    let mut pass = 0;
    loop {
        pass += 1;
        let ctx = Ctx { env, errors: RefCell::new(Vec::new()), bad: &bad };
        let root = NodeDe { node, ctx: &ctx, path: String::new(), key: false, nulled: false };
        let value = T::deserialize(root).ok();
        let new: Vec<Diagnostic> =
            ctx.errors.into_inner().into_iter().filter(|d| d.span.is_none_or(|s| !bad.contains(&s))).collect();
        let done = new.is_empty() || pass == PASSES;
        for diagnostic in new {
            if let Some(span) = diagnostic.span {
                bad.insert(span);
            }
            all.push(diagnostic);
        }
        if done {
            all.sort_by_key(|d| d.span.map(|s| s.start));
            all.dedup();
            return (value, all);
        }
    }
}

/// A deserialization error; see the module docs.
#[derive(Debug)]
pub struct DeError {
    message: String,
    label: Option<String>,
    span: Option<Span>,
    recorded: bool,
}

impl DeError {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), label: None, span: None, recorded: false }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn describe(unexpected: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match unexpected {
        U::Bool(_) => "a boolean".into(),
        U::Unsigned(_) | U::Signed(_) => "an integer".into(),
        U::Float(_) => "a number".into(),
        U::Char(_) | U::Str(_) => "a string".into(),
        U::Bytes(_) => "bytes".into(),
        U::Unit | U::Option => "null".into(),
        U::Seq => "a list".into(),
        U::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// serde's names for what it expected, in the words of a YAML file.
fn friendly(expected: &dyn de::Expected) -> String {
    let text = expected.to_string();
    match text.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            "a whole number".into()
        }
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        "a map" => "a mapping".into(),
        _ if text.starts_with("struct ") => "a mapping".into(),
        _ => text,
    }
}

fn one_of(expected: &[&str]) -> String {
    let names: Vec<String> = expected.iter().map(|e| format!("`{e}`")).collect();
    match names.len() {
        0 => "nothing is allowed here".into(),
        _ => format!("expected one of {}", names.join(", ")),
    }
}

fn hint(unknown: &str, expected: &[&str]) -> String {
    match suggest(unknown, expected.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => one_of(expected),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(msg.to_string())
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {}, found {}", friendly(exp), describe(&unexp)))
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("invalid value: expected {}, found {}", friendly(exp), describe(&unexp)))
    }
    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        DeError::new(format!("expected {exp}, found {len} items"))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(format!("unknown value `{variant}`"));
        e.label = Some(hint(variant, expected));
        e
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let mut e = DeError::new(format!("unknown key `{field}`"));
        e.label = Some(hint(field, expected));
        e
    }
    fn missing_field(field: &'static str) -> Self {
        DeError::new(format!("missing key `{field}`"))
    }
    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(format!("duplicate key `{field}`"))
    }
}

struct NodeDe<'n, 'c> {
    node: &'n Node,
    ctx: &'c Ctx<'c>,
    path: String,
    key: bool,
    /// The node failed in an earlier pass: read it as null (keeping its span).
    nulled: bool,
}

/// What a nulled node reads as.
static NULL: NodeKind = NodeKind::Scalar { text: String::new(), plain: true };

impl<'n, 'c> NodeDe<'n, 'c> {
    fn child(&self, node: &'n Node, segment: &str) -> Self {
        let path = if self.path.is_empty() { segment.to_string() } else { format!("{}.{segment}", self.path) };
        self.at(node, path)
    }

    /// A value node, nulled when it failed in an earlier pass.
    fn at(&self, node: &'n Node, path: String) -> Self {
        NodeDe { node, ctx: self.ctx, path, key: false, nulled: self.ctx.bad.contains(&node.span) }
    }

    fn key_of(&self, node: &'n Node) -> Self {
        NodeDe { node, ctx: self.ctx, path: self.path.clone(), key: true, nulled: false }
    }

    /// This node again (for a visitor that needs a fresh deserializer).
    fn same(&self) -> Self {
        NodeDe { node: self.node, ctx: self.ctx, path: self.path.clone(), key: self.key, nulled: self.nulled }
    }

    /// The node's content, or null when nulled.
    fn kind(&self) -> &'n NodeKind {
        if self.nulled { &NULL } else { &self.node.kind }
    }

    fn is_null(&self) -> bool {
        self.nulled || self.node.is_null()
    }

    fn kind_name(&self) -> &'static str {
        if self.nulled { "null" } else { self.node.kind_name() }
    }

    /// Gives an error the span of this node (unless it has a more precise one) and records
    /// it once.
    fn attach<T>(&self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|mut e| {
            if e.span.is_none() {
                e.span = Some(self.node.span);
            }
            if !e.recorded {
                e.recorded = true;
                self.record(&e);
            }
            e
        })
    }

    fn record(&self, e: &DeError) {
        self.ctx.errors.borrow_mut().push(Diagnostic {
            message: e.message.clone(),
            span: e.span,
            label: e.label.clone(),
            notes: Vec::new(),
        });
    }

    /// The scalar's text, expanded unless it is a key. A nulled node has none: it only
    /// satisfies an optional field.
    fn text(&self) -> Result<Option<String>, DeError> {
        if self.nulled {
            return Ok(None);
        }
        let NodeKind::Scalar { text, .. } = self.kind() else { return Ok(None) };
        if self.key {
            return Ok(Some(text.clone()));
        }
        interpolate(text, self.ctx.env).map(Some).map_err(|err| {
            let mut e = DeError::new(match &err {
                InterpolateError::Unset(name) => {
                    format!("environment variable `{name}` is not set (used by `{}`)", self.path)
                }
                InterpolateError::Unterminated => format!("unterminated `${{` in `{}`", self.path),
                InterpolateError::BadName(name) => {
                    format!("`${{{name}}}` is not a variable reference (in `{}`)", self.path)
                }
            });
            e.label = Some(match err {
                InterpolateError::Unset(name) => format!("set it, or give a default: `${{{name}:-default}}`"),
                _ => "write `$${` for a literal `${`".into(),
            });
            e.span = Some(self.node.span);
            e
        })
    }

    fn mismatch(&self, exp: &dyn de::Expected) -> DeError {
        DeError::new(format!("expected {}, found {}", friendly(exp), self.kind_name()))
    }

    fn any<'de, V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, DeError> {
        match self.kind() {
            NodeKind::Scalar { plain: false, .. } => visitor.visit_string(self.text()?.unwrap_or_default()),
            NodeKind::Scalar { plain: true, .. } => {
                let text = self.text()?.unwrap_or_default();
                match resolve_plain(&text) {
                    Plain::Null => visitor.visit_unit(),
                    Plain::Bool(b) => visitor.visit_bool(b),
                    Plain::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                        (Ok(v), _) => visitor.visit_i64(v),
                        (_, Ok(v)) => visitor.visit_u64(v),
                        _ => visitor.visit_i128(i),
                    },
                    Plain::Float(f) => visitor.visit_f64(f),
                    Plain::Str => visitor.visit_string(text),
                }
            }
            NodeKind::Seq(items) => visitor.visit_seq(SeqAcc { parent: self, items: items.iter(), index: 0 }),
            NodeKind::Map(entries) => {
                visitor.visit_map(MapAcc { parent: self, entries: entries.iter().collect(), pos: 0, value: None })
            }
        }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = self.any(visitor);
        self.attach(r)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.text() {
            Ok(Some(text)) => visitor.visit_string(text),
            Ok(None) => Err(self.mismatch(&visitor)),
            Err(e) => Err(e),
        };
        self.attach(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            return visitor.visit_none();
        }
        let r = visitor.visit_some(self.same());
        self.attach(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let NodeKind::Map(entries) = self.kind() else {
            let e = self.mismatch(&visitor);
            return self.attach(Err(e));
        };
        let mut known = Vec::with_capacity(entries.len());
        for entry in entries {
            let name = entry.0.scalar_text().unwrap_or("");
            if fields.contains(&name) {
                known.push(entry);
            } else {
                let mut e = <DeError as de::Error>::unknown_field(name, fields);
                e.span = Some(entry.0.span);
                let _ = self.attach::<()>(Err(e));
            }
        }
        let had_unknown = known.len() < entries.len();
        let r = visitor.visit_map(MapAcc { parent: &self, entries: known, pos: 0, value: None });
        // A key missing next to an unknown key is almost always the same typo: report it once.
        let r = r.map_err(|mut e| {
            if had_unknown && !e.recorded && e.message.starts_with("missing key") {
                e.recorded = true;
                e.span = Some(self.node.span);
            }
            e
        });
        self.attach(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match self.kind() {
            NodeKind::Scalar { .. } => visitor.visit_enum(UnitVariant { de: NodeDe { key: false, ..self.same() } }),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (key, value) = &entries[0];
                let name = key.scalar_text().unwrap_or("");
                if variants.contains(&name) {
                    visitor.visit_enum(MapVariant { key: self.key_of(key), value: self.child(value, name) })
                } else {
                    let mut e = <DeError as de::Error>::unknown_field(name, variants);
                    e.span = Some(key.span);
                    Err(e)
                }
            }
            NodeKind::Map(entries) if entries.len() > 1 => {
                let names: Vec<&str> = entries.iter().map(|(k, _)| k.scalar_text().unwrap_or("?")).collect();
                let mut e = DeError::new(format!(
                    "only one of {} may be set here, found `{}` and `{}`",
                    one_of(variants).trim_start_matches("expected one of "),
                    names[0],
                    names[1]
                ));
                e.span = Some(entries[1].0.span);
                Err(e)
            }
            _ => Err(DeError::new(format!("{}, found {}", one_of(variants), self.kind_name()))),
        };
        self.attach(r)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        match name {
            SPANNED => {
                let span = self.node.span;
                let r = visitor.visit_map(SpanAcc { de: Some(self.same()), span, step: 0 });
                self.attach(r)
            }
            _ => {
                let r = visitor.visit_newtype_struct(self.same());
                self.attach(r)
            }
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit unit_struct seq tuple tuple_struct map
    }
}

struct SeqAcc<'p, 'n, 'c> {
    parent: &'p NodeDe<'n, 'c>,
    items: std::slice::Iter<'n, Node>,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAcc<'_, '_, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some(item) = self.items.next() else { return Ok(None) };
        let child = self.parent.at(item, format!("{}[{}]", self.parent.path, self.index));
        self.index += 1;
        let span_holder = self.parent.at(item, String::new());
        span_holder.attach(seed.deserialize(child)).map(Some)
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAcc<'p, 'n, 'c> {
    parent: &'p NodeDe<'n, 'c>,
    entries: Vec<&'n (Node, Node)>,
    pos: usize,
    value: Option<&'n (Node, Node)>,
}

impl<'de> de::MapAccess<'de> for MapAcc<'_, '_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.get(self.pos).copied() else { return Ok(None) };
        self.pos += 1;
        self.value = Some(entry);
        let key = self.parent.key_of(&entry.0);
        let holder = self.parent.key_of(&entry.0);
        holder.attach(seed.deserialize(key)).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let entry = self.value.take().ok_or_else(|| DeError::new("value without a key"))?;
        let child = self.parent.child(&entry.1, entry.0.scalar_text().unwrap_or("?"));
        let holder = self.parent.child(&entry.1, "");
        holder.attach(seed.deserialize(child))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.pos)
    }
}

/// Presents a node as `{start, end, value}` to [`Spanned`]'s visitor.
struct SpanAcc<'n, 'c> {
    de: Option<NodeDe<'n, 'c>>,
    span: Span,
    step: u8,
}

impl<'de> de::MapAccess<'de> for SpanAcc<'_, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let key = match self.step {
            0 => "start",
            1 => "end",
            2 => "value",
            _ => return Ok(None),
        };
        seed.deserialize(key.into_deserializer()).map(Some)
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(self.span.start.into_deserializer()),
            2 => seed.deserialize(self.span.end.into_deserializer()),
            _ => seed.deserialize(self.de.take().ok_or_else(|| DeError::new("span value read twice"))?),
        }
    }
}

struct UnitVariant<'n, 'c> {
    de: NodeDe<'n, 'c>,
}

impl<'de> de::EnumAccess<'de> for UnitVariant<'_, '_> {
    type Error = DeError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let de = NodeDe { key: false, ..self.de.same() };
        Ok((seed.deserialize(de)?, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariant<'_, '_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(DeError::new("expected a mapping with one key, found a scalar"))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(DeError::new("expected a mapping with one key, found a scalar"))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(DeError::new("expected a mapping with one key, found a scalar"))
    }
}

struct MapVariant<'n, 'c> {
    key: NodeDe<'n, 'c>,
    value: NodeDe<'n, 'c>,
}

impl<'de, 'n, 'c> de::EnumAccess<'de> for MapVariant<'n, 'c> {
    type Error = DeError;
    type Variant = NodeDe<'n, 'c>;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), DeError> {
        Ok((seed.deserialize(self.key)?, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for NodeDe<'_, '_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        if self.is_null() { Ok(()) } else { self.attach(Err(DeError::new("expected nothing here"))) }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(self, fields: &'static [&'static str], visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::span::{Lenient, Spanned};
    use crate::yaml::parse;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        count: Option<u32>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: BTreeMap<Spanned<String>, Lenient<Inner>>,
        flag: Option<bool>,
    }

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "7".to_string())
    }

    #[test]
    fn collects_every_error_with_its_span() {
        let text = "items:\n  a: {name: x, cuont: 1}\n  b: {name: [1], count: \"${SET}\"}\n  c:\n    count: ${UNSET}\nflag: true\nextra: 1\n";
        let node = parse(text).unwrap();
        let (value, errors) = from_node::<Outer>(&node, &env);
        let value = value.expect("top level parses");
        assert!(value.items.values().filter(|v| v.0.is_some()).count() == 1);
        let got: Vec<(String, &str)> =
            errors.iter().map(|d| (d.message.clone(), &text[d.span.unwrap().start..d.span.unwrap().end])).collect();
        assert_eq!(
            got,
            [
                ("unknown key `cuont`".to_string(), "cuont"),
                ("expected a string, found a list".to_string(), "[1]"),
                // Found once the failing `count` no longer stops the parse of `c`.
                ("missing key `name`".to_string(), "count: ${UNSET}"),
                ("environment variable `UNSET` is not set (used by `items.c.count`)".to_string(), "${UNSET}"),
                ("unknown key `extra`".to_string(), "extra"),
            ]
        );
        assert_eq!(errors[0].label.as_deref(), Some("did you mean `count`?"));
    }

    #[test]
    fn type_errors_do_not_quote_values() {
        let node = parse("items: {}\nflag: \"hunter2\"\n").unwrap();
        let (_, errors) = from_node::<Outer>(&node, &env);
        assert_eq!(errors.len(), 1);
        assert!(!errors[0].message.contains("hunter2"), "{}", errors[0].message);
    }

    #[test]
    fn missing_keys_point_at_the_mapping() {
        let text = "items:\n  a: {count: 1}\n";
        let (_, errors) = from_node::<Outer>(&parse(text).unwrap(), &env);
        assert_eq!(errors[0].message, "missing key `name`");
        assert_eq!(&text[errors[0].span.unwrap().start..errors[0].span.unwrap().start + 1], "{");
    }
}
