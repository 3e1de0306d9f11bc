//! Selection and transforms: which secrets of a layer go to a target, under which names.
//! Pure, and part of the one desired-state computation, so the dry run, plans, `explain`
//! and every store see the same result.
//!
//! An import (or `inherits`) may carry a [`Selection`]; its steps run in this order:
//!
//! 1. `include` / `exclude`: path globs. A path is selected when it matches an `include`
//!    (every path, when there is none) and no `exclude`.
//! 2. `keys.include` / `keys.exclude`: globs of the top-level keys of object secrets
//!    (other secrets have no keys and pass). An object left without a key is dropped.
//! 3. `rename`: path renames, the first rule that matches wins. A rule is exact
//!    (`payments/stripe: stripe`) or a glob whose wildcards are captured, numbered from 1,
//!    for the template (`"payments/*": "pay/{1}"`).
//! 4. `rename_keys`: exact top-level key renames of object secrets.
//! 5. `prefix`: every path is mounted under it (`third-party/` + `stripe`).
//!
//! Globs use one dialect everywhere (the `globset` crate, as `protect` does): `*` and `?`
//! stay within a path segment, `**` crosses segments (`payments/**` matches
//! `payments/stripe` and `payments/eu/stripe`, not `payments`; `**/test-*` matches
//! `test-a` and `x/y/test-a`), `[abc]` and `{a,b}` as usual. A rename glob may use only `*`,
//! `**` and `?` (its wildcards are what the template refers to).
//!
//! Two paths that would get one name, or two keys one key, are an error naming both
//! (never a silent overwrite); a renamed path that is not a valid secret path is an error.
//! A pattern that matches nothing is reported back ([`Selected::unmatched`]): a likely typo.

use std::collections::BTreeMap;
use std::fmt;

use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;

use crate::secret::{SecretMap, SecretPath, SecretValue};

/// One glob, as written and compiled.
#[derive(Clone)]
pub struct Glob {
    /// As written.
    pub pattern: String,
    matcher: GlobMatcher,
}

impl fmt::Debug for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Glob({:?})", self.pattern)
    }
}

impl Glob {
    /// Compiles `pattern` in vss's dialect, or says why it is not a glob.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let glob = GlobBuilder::new(pattern).literal_separator(true).build().map_err(|e| e.kind().to_string())?;
        Ok(Glob { pattern: pattern.to_string(), matcher: glob.compile_matcher() })
    }

    /// Whether `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }
}

/// A path rename rule.
#[derive(Clone, Debug)]
pub struct Rename {
    /// The path or glob it applies to, as written.
    pub from: String,
    /// The new path, or its template (`{1}`, `{2}`… for the glob's wildcards).
    pub to: String,
    /// For a glob: what captures its wildcards.
    captures: Option<regex::Regex>,
}

impl Rename {
    /// A rule; a `from` with wildcards is a glob (`*`, `**` and `?` only).
    pub fn new(from: &str, to: &str) -> Result<Self, String> {
        if !from.contains(['*', '?', '[', '{']) {
            return Ok(Rename { from: from.to_string(), to: to.to_string(), captures: None });
        }
        if from.contains(['[', ']', '{', '}']) {
            return Err("a rename glob may use only `*`, `**` and `?`".into());
        }
        let mut regex = String::from("^");
        let mut chars = from.chars().peekable();
        let mut groups = 0;
        while let Some(c) = chars.next() {
            match c {
                '*' if chars.peek() == Some(&'*') => {
                    chars.next();
                    groups += 1;
                    // `**/` matches any number of whole segments, none included.
                    if chars.peek() == Some(&'/') {
                        chars.next();
                        regex.push_str("((?:[^/]*/)*)");
                    } else {
                        regex.push_str("(.*)");
                    }
                }
                '*' => {
                    groups += 1;
                    regex.push_str("([^/]*)");
                }
                '?' => {
                    groups += 1;
                    regex.push_str("([^/])");
                }
                other => regex.push_str(&regex::escape(&other.to_string())),
            }
        }
        regex.push('$');
        for n in template_numbers(to) {
            if n == 0 || n > groups {
                return Err(format!("`{{{n}}}` in `{to}` names no wildcard of `{from}` (it has {groups})"));
            }
        }
        let captures = regex::Regex::new(&regex).map_err(|e| e.to_string())?;
        Ok(Rename { from: from.to_string(), to: to.to_string(), captures: Some(captures) })
    }

    /// The new name of `path`, when this rule applies to it.
    fn apply(&self, path: &str) -> Option<String> {
        match &self.captures {
            None => (path == self.from).then(|| self.to.clone()),
            Some(regex) => {
                let found = regex.captures(path)?;
                let mut out = self.to.clone();
                for n in (1..found.len()).rev() {
                    let part = found.get(n).map_or("", |m| m.as_str()).trim_end_matches('/');
                    out = out.replace(&format!("{{{n}}}"), part);
                }
                Some(out)
            }
        }
    }
}

/// The `{N}` references of a template.
fn template_numbers(template: &str) -> Vec<usize> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if let Some(close) = rest.find('}')
            && let Ok(n) = rest[..close].parse()
        {
            out.push(n);
        }
    }
    out
}

/// What an import (or `inherits`, or a target itself) takes, and how it renames it.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Path globs: only matching paths (all, when empty).
    pub include: Vec<Glob>,
    /// Path globs: never these.
    pub exclude: Vec<Glob>,
    /// Key globs: only matching top-level keys (all, when empty).
    pub keys_include: Vec<Glob>,
    /// Key globs: never these keys.
    pub keys_exclude: Vec<Glob>,
    /// Path renames, first match wins.
    pub rename: Vec<Rename>,
    /// Top-level key renames: from -> to.
    pub rename_keys: Vec<(String, String)>,
    /// Mounted under this path.
    pub prefix: Option<String>,
}

/// Why a selection failed: two that would get one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    /// Two paths renamed (or prefixed) to one path.
    PathCollision {
        /// The path both would get.
        path: String,
        /// The two paths, in order.
        from: (String, String),
    },
    /// Two keys of one secret renamed to one key.
    KeyCollision {
        /// The secret (as renamed).
        path: String,
        /// The key both would get.
        key: String,
        /// The two keys.
        from: (String, String),
    },
    /// A rename made something that is not a secret path.
    BadPath {
        /// The original path.
        from: String,
        /// What the rename made.
        to: String,
        /// Why it is not a path.
        why: String,
    },
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SelectError::PathCollision { path, from: (a, b) } => {
                write!(f, "`{a}` and `{b}` would both become `{path}`")
            }
            SelectError::KeyCollision { path, key, from: (a, b) } => {
                write!(f, "keys `{a}` and `{b}` of `{path}` would both become `{key}`")
            }
            SelectError::BadPath { from, to, why } => write!(f, "`{from}` would become `{to}`, which {why}"),
        }
    }
}

/// Where a selected secret, or one key of it, came from, when a rename or prefix moved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Moved {
    /// The path in the layer before the selection.
    pub path: SecretPath,
    /// The key before `rename_keys` (the same key when only the path moved).
    pub key: Option<String>,
}

/// A layer after its selection.
#[derive(Clone, Debug, Default)]
pub struct Selected {
    /// The secrets taken, under their new names.
    pub secrets: SecretMap,
    /// Patterns and renames that matched nothing (`include "paymnts/**"`), as written,
    /// each with the option that holds it.
    pub unmatched: Vec<String>,
    /// Per new path (and key, for renamed keys): where it came from, when moved.
    pub moved: BTreeMap<(SecretPath, Option<String>), Moved>,
}

impl Selection {
    /// Whether it takes everything as it is (no option set).
    pub fn is_identity(&self) -> bool {
        self.include.is_empty()
            && self.exclude.is_empty()
            && self.keys_include.is_empty()
            && self.keys_exclude.is_empty()
            && self.rename.is_empty()
            && self.rename_keys.is_empty()
            && self.prefix.as_deref().is_none_or(|p| p.trim_matches('/').is_empty())
    }

    /// Whether `path` passes `include` and `exclude`.
    pub fn takes(&self, path: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|g| g.is_match(path)))
            && !self.exclude.iter().any(|g| g.is_match(path))
    }

    fn takes_key(&self, key: &str) -> bool {
        (self.keys_include.is_empty() || self.keys_include.iter().any(|g| g.is_match(key)))
            && !self.keys_exclude.iter().any(|g| g.is_match(key))
    }

    /// Applies the selection to `secrets` (see the module docs for the order).
    pub fn apply(&self, secrets: &SecretMap) -> Result<Selected, Vec<SelectError>> {
        let mut out = Selected::default();
        if self.is_identity() {
            out.secrets = secrets.clone();
            return Ok(out);
        }
        let mut hits = Hits::default();
        let mut errors = Vec::new();
        let mut origin_of: BTreeMap<SecretPath, SecretPath> = BTreeMap::new();
        for (path, value) in secrets {
            let text = path.as_str();
            for (i, g) in self.include.iter().enumerate() {
                if g.is_match(text) {
                    hits.include.insert(i);
                }
            }
            for (i, g) in self.exclude.iter().enumerate() {
                if g.is_match(text) {
                    hits.exclude.insert(i);
                }
            }
            if !self.takes(text) {
                continue;
            }
            // Keys, then key renames, of objects.
            let mut renamed_keys: Vec<(String, String)> = Vec::new();
            let value = match value.expose() {
                Value::Object(map) if self.has_key_options() => {
                    let mut kept = serde_json::Map::new();
                    let mut from_of: BTreeMap<String, String> = BTreeMap::new();
                    for (key, item) in map {
                        for (i, g) in self.keys_include.iter().enumerate() {
                            if g.is_match(&key) {
                                hits.keys_include.insert(i);
                            }
                        }
                        for (i, g) in self.keys_exclude.iter().enumerate() {
                            if g.is_match(&key) {
                                hits.keys_exclude.insert(i);
                            }
                        }
                        if !self.takes_key(&key) {
                            continue;
                        }
                        let new = match self.rename_keys.iter().position(|(from, _)| *from == key) {
                            Some(i) => {
                                hits.rename_keys.insert(i);
                                self.rename_keys[i].1.clone()
                            }
                            None => key.clone(),
                        };
                        if let Some(first) = from_of.get(&new) {
                            errors.push(SelectError::KeyCollision {
                                path: text.to_string(),
                                key: new.clone(),
                                from: (first.clone(), key.clone()),
                            });
                            continue;
                        }
                        if new != key {
                            renamed_keys.push((new.clone(), key.clone()));
                        }
                        from_of.insert(new.clone(), key);
                        kept.insert(new, item);
                    }
                    if kept.is_empty() {
                        continue;
                    }
                    SecretValue::new(Value::Object(kept))
                }
                _ => value.clone(),
            };
            // Path renames, then the prefix.
            let mut new = text.to_string();
            if let Some((i, renamed)) = self.rename.iter().enumerate().find_map(|(i, r)| r.apply(text).map(|n| (i, n)))
            {
                hits.rename.insert(i);
                new = renamed;
            }
            if let Some(prefix) = self.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
                new = format!("{prefix}/{new}");
            }
            let new_path = match SecretPath::parse(&new) {
                Ok(p) => p,
                Err(why) => {
                    let why = why.split_once(": ").map_or(why.clone(), |(_, w)| w.to_string());
                    errors.push(SelectError::BadPath { from: text.to_string(), to: new, why });
                    continue;
                }
            };
            if let Some(first) = origin_of.get(&new_path) {
                errors.push(SelectError::PathCollision {
                    path: new_path.to_string(),
                    from: (first.to_string(), text.to_string()),
                });
                continue;
            }
            origin_of.insert(new_path.clone(), path.clone());
            if new_path != *path {
                out.moved.insert((new_path.clone(), None), Moved { path: path.clone(), key: None });
            }
            for (new_key, old_key) in renamed_keys {
                out.moved.insert((new_path.clone(), Some(new_key)), Moved { path: path.clone(), key: Some(old_key) });
            }
            out.secrets.insert(new_path, value);
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        out.unmatched = self.unmatched(&hits);
        Ok(out)
    }

    fn has_key_options(&self) -> bool {
        !(self.keys_include.is_empty() && self.keys_exclude.is_empty() && self.rename_keys.is_empty())
    }

    fn unmatched(&self, hits: &Hits) -> Vec<String> {
        let mut out = Vec::new();
        let mut note = |option: &str, patterns: Vec<&str>, hit: &std::collections::BTreeSet<usize>| {
            for (i, pattern) in patterns.into_iter().enumerate() {
                if !hit.contains(&i) {
                    out.push(format!("{option} `{pattern}`"));
                }
            }
        };
        note("include", self.include.iter().map(|g| g.pattern.as_str()).collect(), &hits.include);
        note("exclude", self.exclude.iter().map(|g| g.pattern.as_str()).collect(), &hits.exclude);
        note("keys.include", self.keys_include.iter().map(|g| g.pattern.as_str()).collect(), &hits.keys_include);
        note("keys.exclude", self.keys_exclude.iter().map(|g| g.pattern.as_str()).collect(), &hits.keys_exclude);
        note("rename", self.rename.iter().map(|r| r.from.as_str()).collect(), &hits.rename);
        note("rename_keys", self.rename_keys.iter().map(|(from, _)| from.as_str()).collect(), &hits.rename_keys);
        out
    }

    /// The options set, as a JSON object for the graph and reports (patterns as written).
    pub fn describe(&self) -> Value {
        let globs = |list: &[Glob]| list.iter().map(|g| g.pattern.clone()).collect::<Vec<_>>();
        let mut out = serde_json::Map::new();
        if !self.include.is_empty() {
            out.insert("include".into(), globs(&self.include).into());
        }
        if !self.exclude.is_empty() {
            out.insert("exclude".into(), globs(&self.exclude).into());
        }
        let mut keys = serde_json::Map::new();
        if !self.keys_include.is_empty() {
            keys.insert("include".into(), globs(&self.keys_include).into());
        }
        if !self.keys_exclude.is_empty() {
            keys.insert("exclude".into(), globs(&self.keys_exclude).into());
        }
        if !keys.is_empty() {
            out.insert("keys".into(), Value::Object(keys));
        }
        if !self.rename.is_empty() {
            let map: serde_json::Map<String, Value> =
                self.rename.iter().map(|r| (r.from.clone(), Value::String(r.to.clone()))).collect();
            out.insert("rename".into(), Value::Object(map));
        }
        if !self.rename_keys.is_empty() {
            let map: serde_json::Map<String, Value> =
                self.rename_keys.iter().map(|(f, t)| (f.clone(), Value::String(t.clone()))).collect();
            out.insert("rename_keys".into(), Value::Object(map));
        }
        if let Some(prefix) = &self.prefix {
            out.insert("prefix".into(), Value::String(prefix.clone()));
        }
        Value::Object(out)
    }
}

/// Which patterns matched something.
#[derive(Default)]
struct Hits {
    include: std::collections::BTreeSet<usize>,
    exclude: std::collections::BTreeSet<usize>,
    keys_include: std::collections::BTreeSet<usize>,
    keys_exclude: std::collections::BTreeSet<usize>,
    rename: std::collections::BTreeSet<usize>,
    rename_keys: std::collections::BTreeSet<usize>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(entries: &[(&str, Value)]) -> SecretMap {
        entries.iter().map(|(p, v)| (SecretPath::parse(p).unwrap(), SecretValue::new(v.clone()))).collect()
    }

    fn globs(patterns: &[&str]) -> Vec<Glob> {
        patterns.iter().map(|p| Glob::new(p).unwrap()).collect()
    }

    fn paths(selected: &Selected) -> Vec<&str> {
        selected.secrets.keys().map(SecretPath::as_str).collect()
    }

    #[test]
    fn the_documented_example() {
        let secrets = map(&[
            ("payments/stripe", json!({"api_key": "a", "secret_key": "s", "debug": "d"})),
            ("payments/test-card", json!({"api_key": "t"})),
            ("sendgrid", json!({"api_key": "g"})),
            ("other", json!({"api_key": "o"})),
        ]);
        let selection = Selection {
            include: globs(&["payments/**", "sendgrid"]),
            exclude: globs(&["**/test-*"]),
            keys_include: globs(&["api_key", "secret_key"]),
            keys_exclude: globs(&["debug"]),
            rename: vec![Rename::new("payments/stripe", "stripe").unwrap()],
            rename_keys: vec![("secret_key".into(), "STRIPE_SECRET_KEY".into())],
            prefix: Some("third-party/".into()),
        };
        let selected = selection.apply(&secrets).unwrap();
        assert_eq!(paths(&selected), ["third-party/sendgrid", "third-party/stripe"]);
        assert_eq!(
            selected.secrets[&SecretPath::parse("third-party/stripe").unwrap()].expose(),
            json!({"api_key": "a", "STRIPE_SECRET_KEY": "s"})
        );
        assert!(selected.unmatched.is_empty(), "{:?}", selected.unmatched);
        let moved =
            &selected.moved[&(SecretPath::parse("third-party/stripe").unwrap(), Some("STRIPE_SECRET_KEY".into()))];
        assert_eq!((moved.path.as_str(), moved.key.as_deref()), ("payments/stripe", Some("secret_key")));
    }

    #[test]
    fn glob_renames_capture_wildcards_and_collisions_name_both() {
        let secrets = map(&[("payments/eu/stripe", json!("a")), ("payments/us/stripe", json!("b"))]);
        let by_region =
            Selection { rename: vec![Rename::new("payments/*/stripe", "stripe-{1}").unwrap()], ..Default::default() };
        assert_eq!(paths(&by_region.apply(&secrets).unwrap()), ["stripe-eu", "stripe-us"]);
        let deep = Selection { rename: vec![Rename::new("**/stripe", "s/{1}").unwrap()], ..Default::default() };
        assert_eq!(paths(&deep.apply(&secrets).unwrap()), ["s/payments/eu", "s/payments/us"]);
        let flat =
            Selection { rename: vec![Rename::new("payments/*/stripe", "stripe").unwrap()], ..Default::default() };
        let errors = flat.apply(&secrets).unwrap_err();
        assert_eq!(errors[0].to_string(), "`payments/eu/stripe` and `payments/us/stripe` would both become `stripe`");
        let keys = Selection { rename_keys: vec![("a".into(), "b".into())], ..Default::default() };
        let errors = keys.apply(&map(&[("x", json!({"a": 1, "b": 2}))])).unwrap_err();
        assert_eq!(errors[0].to_string(), "keys `a` and `b` of `x` would both become `b`");
        assert!(Rename::new("a/*", "{2}").unwrap_err().contains("names no wildcard"));
        assert!(Rename::new("a/[bc]", "x").unwrap_err().contains("only `*`, `**` and `?`"));
    }

    #[test]
    fn patterns_that_match_nothing_are_reported() {
        let selection =
            Selection { include: globs(&["paymnts/**", "x"]), keys_exclude: globs(&["nope"]), ..Default::default() };
        let selected = selection.apply(&map(&[("x", json!({"k": 1}))])).unwrap();
        assert_eq!(selected.unmatched, ["include `paymnts/**`", "keys.exclude `nope`"]);
        assert_eq!(paths(&selected), ["x"]);
    }
}
