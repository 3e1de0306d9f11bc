//! Byte spans of config text, [`Spanned`] values that keep them, and [`Lenient`] values
//! that turn a parse failure into `None`: a leaf module, so stores can declare their config
//! types without depending on `config/`.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// The newtype-struct name the config deserializer recognises to hand out a node's span.
pub(crate) const SPANNED: &str = "$__vss_private_Spanned";
/// The newtype-struct name the config deserializer recognises for [`Lenient`].
pub(crate) const LENIENT: &str = "$__vss_private_Lenient";

/// A byte range in a source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end: end.max(start) }
    }
}

/// A value with the span of the YAML node it was read from.
#[derive(Clone, Debug)]
pub struct Spanned<T> {
    /// Where the value was written.
    pub span: Span,
    /// The value.
    pub value: T,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}
impl<T: Eq> Eq for Spanned<T> {}
impl<T: Ord> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (_, start) = map.next_entry::<String, usize>()?.ok_or_else(|| de::Error::custom("span start"))?;
                let (_, end) = map.next_entry::<String, usize>()?.ok_or_else(|| de::Error::custom("span end"))?;
                let _: Option<String> = map.next_key()?;
                let value = map.next_value()?;
                Ok(Spanned { span: Span::new(start, end), value })
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Ok(Spanned { span: Span::default(), value: T::deserialize(d)? })
            }
        }
        deserializer.deserialize_newtype_struct(SPANNED, SpannedVisitor(PhantomData))
    }
}

/// Wrappers that only carry parse metadata have the schema of what they wrap.
macro_rules! transparent_schema {
    ($wrapper:ident) => {
        impl<T: schemars::JsonSchema> schemars::JsonSchema for $wrapper<T> {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                T::schema_name()
            }
            fn schema_id() -> std::borrow::Cow<'static, str> {
                T::schema_id()
            }
            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                T::json_schema(generator)
            }
            fn inline_schema() -> bool {
                T::inline_schema()
            }
        }
    };
}

transparent_schema!(Spanned);
transparent_schema!(Lenient);

/// A value that failed to parse becomes `None`; its errors are already recorded.
#[derive(Clone, Debug)]
pub struct Lenient<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LenientVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientVisitor<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                Ok(Lenient(T::deserialize(d).ok()))
            }
        }
        deserializer.deserialize_newtype_struct(LENIENT, LenientVisitor(PhantomData))
    }
}
