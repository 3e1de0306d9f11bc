//! Configuration: YAML text -> spanned nodes ([`crate::yaml`]) -> raw serde types ([`raw`],
//! via the span-keeping deserializer in [`de`]) -> the validated [`model`] ([`validate`]),
//! where every name is resolved to a typed id and every error is reported at once
//! ([`crate::diagnostic`]).

pub mod de;
pub mod interpolate;
pub mod model;
pub mod raw;
pub mod validate;

pub use model::Config;
pub use validate::{ConfigError, load, load_str};
