//! Configuration: YAML text -> spanned nodes ([`yaml`]) -> raw serde types ([`raw`], via the
//! span-keeping deserializer in [`de`]) -> the validated [`model`] ([`validate`]), where
//! every name is resolved to a typed id and every error is reported at once
//! ([`diagnostic`]).

pub mod de;
pub mod diagnostic;
pub mod interpolate;
pub mod model;
pub mod raw;
pub mod validate;
pub mod yaml;

pub use model::Config;
pub use validate::{ConfigError, load, load_str};
