//! The last line of defence against a value in an output: every secret value the run has
//! read is remembered ([`remember`]), and every error message, hint and log line is
//! scrubbed of it ([`scrub`]) before it is written, whatever a server put in its error
//! text (some echo the request body).
//!
//! What is remembered: every string in a value of at least [`MIN_LEN`] bytes, its
//! JSON-escaped form when that differs, and then also its pieces between quotes,
//! backslashes and control characters (a server may quote it its own way); and the JSON
//! text of every other leaf of that length (long numbers). Shorter strings are left alone: they are common words, and
//! scrubbing them would garble messages without protecting anything worth a secret.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::{LazyLock, RwLock};

use aho_corasick::AhoCorasick;
use serde_json::Value;

use crate::secret::SecretValue;

/// Strings shorter than this are not scrubbed.
pub const MIN_LEN: usize = 6;

/// What a scrubbed value is replaced with.
pub const MASK: &str = "<redacted>";

#[derive(Default)]
struct Seen {
    needles: HashSet<Box<str>>,
    /// The automaton over `needles`, and how many needles it was built from.
    matcher: Option<(usize, AhoCorasick)>,
}

static SEEN: LazyLock<RwLock<Seen>> = LazyLock::new(Default::default);

/// Remembers the strings of `value`, to be scrubbed from every output.
pub fn remember(value: &SecretValue) {
    let mut found = Vec::new();
    leaves(&value.expose(), &mut found);
    insert(found);
}

/// Adds `texts` to what is scrubbed.
fn insert(texts: Vec<String>) {
    if texts.is_empty() {
        return;
    }
    let mut seen = SEEN.write().unwrap_or_else(|e| e.into_inner());
    for text in texts {
        if !seen.needles.contains(text.as_str()) {
            seen.needles.insert(text.into_boxed_str());
        }
    }
}

/// Remembers `text`, a secret value as a store encodes it on the wire (a base64 payload),
/// to be scrubbed from every output like the values themselves: a server that echoes its
/// request must not print it in any form.
pub fn remember_encoded(text: &str) {
    if text.len() >= MIN_LEN {
        insert(vec![text.to_string()]);
    }
}

fn leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(text) => {
            if text.len() >= MIN_LEN {
                out.push(text.clone());
                let escaped = serde_json::to_string(text).expect("a string serializes");
                let escaped = &escaped[1..escaped.len() - 1];
                if escaped != text {
                    out.push(escaped.to_string());
                    // A server may quote or escape it its own way: the pieces between the
                    // characters quoting changes are remembered too.
                    let pieces = text.split(|c: char| matches!(c, '"' | '\'' | '\\') || c.is_control());
                    out.extend(pieces.filter(|p| p.len() >= MIN_LEN && p.len() < text.len()).map(str::to_string));
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| leaves(v, out)),
        other => {
            let text = other.to_string();
            if text.len() >= MIN_LEN {
                out.push(text);
            }
        }
    }
}

/// `text` with every remembered value replaced by [`MASK`].
pub fn scrub(text: &str) -> Cow<'_, str> {
    {
        let seen = SEEN.read().unwrap_or_else(|e| e.into_inner());
        if seen.needles.is_empty() {
            return Cow::Borrowed(text);
        }
        if let Some((built, matcher)) = &seen.matcher
            && *built == seen.needles.len()
        {
            return replace(matcher, text);
        }
    }
    let mut seen = SEEN.write().unwrap_or_else(|e| e.into_inner());
    let needles: Vec<&str> = seen.needles.iter().map(|n| &**n).collect();
    // A contiguous NFA builds in time linear in the needles' length; the default may pick
    // a DFA, whose build grows with length x alphabet and took minutes for one 48 KB value.
    let matcher = AhoCorasick::builder()
        .match_kind(aho_corasick::MatchKind::LeftmostLongest)
        .kind(Some(aho_corasick::AhoCorasickKind::ContiguousNFA))
        .build(&needles)
        .expect("the scrubbing automaton builds");
    let out = replace(&matcher, text).into_owned();
    let count = seen.needles.len();
    seen.matcher = Some((count, matcher));
    Cow::Owned(out)
}

fn replace<'t>(matcher: &AhoCorasick, text: &'t str) -> Cow<'t, str> {
    if !matcher.is_match(text) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    matcher.replace_all_with(text, &mut out, |_, _, dst| {
        dst.push_str(MASK);
        true
    });
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn remembered_values_are_scrubbed_in_every_form() {
        remember(&SecretValue::new(json!({"token": "tok-2f9e8d", "quoted": "say \"hi\" now", "n": 98765432109_i64})));
        let echoed = r#"invalid body: {'data': {'token': 'tok-2f9e8d'}}, "say \"hi\" now", 98765432109, short"#;
        remember(&SecretValue::new(json!("it's \"quoted-part\" here")));
        assert!(!scrub(r#"body: 'it\'s \'quoted-part\' here'"#).contains("quoted-part"));
        let clean = scrub(echoed);
        assert!(!clean.contains("tok-2f9e8d") && !clean.contains("98765432109"), "{clean}");
        assert!(!clean.contains(r#"say \"hi\" now"#), "the JSON-escaped form too: {clean}");
        assert!(clean.contains("short") && clean.contains(MASK), "{clean}");
        // Values remembered later are scrubbed too.
        remember(&SecretValue::new(json!("later-secret")));
        assert_eq!(scrub("x later-secret y"), format!("x {MASK} y"));
    }

    #[test]
    fn a_large_value_is_scrubbed() {
        // A 64 KB certificate-sized value (a DFA over it took minutes to build).
        let big: String = (0..65_536).map(|i| char::from(b'a' + (i * 7 % 26) as u8)).collect();
        remember(&SecretValue::new(json!({"pem": big})));
        assert_eq!(scrub(&format!("<{big}>")), format!("<{MASK}>"));
    }
}
