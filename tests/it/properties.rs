//! Property tests of the pure core: deep merge (identity, associativity, determinism),
//! diff (`diff(a, a)` is empty, applying `diff(a, b)` to `a` gives `b`), and config
//! parsing (never panics, whatever the input).

use proptest::prelude::*;
use serde_json::Value;
use vss::diff::{DiffOptions, apply, diff};
use vss::merge::{ListMode, MergeOptions, NullMode, merge_maps};
use vss::secret::{LiveSecret, LiveState};
use vss::secret::{SecretMap, SecretPath, SecretValue, canonical_json};

/// Arbitrary JSON: scalars (including numbers that are equal as int and float), nested
/// lists and objects over a small key alphabet so merges overlap.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(Value::from),
        (-3i64..3).prop_map(|i| Value::from(i as f64)),
        "[a-c]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-d]", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// JSON objects whose keys fix the type of their values (`o*` objects, `l*` lists, `s*`
/// scalars), so that layers agree on the type at every position: deep merge is associative
/// exactly for such layers (a type conflict resolves as "later wins", which is not).
fn typed_object() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..3).prop_map(Value::from),
        "[a-c]{0,2}".prop_map(Value::String),
    ];
    let leaf_members = (
        prop::collection::btree_map("s[a-c]", scalar, 0..3),
        prop::collection::btree_map("l[a-b]", prop::collection::vec(json(), 0..3).prop_map(Value::Array), 0..2),
    )
        .prop_map(|(s, l)| s.into_iter().chain(l).collect::<serde_json::Map<String, Value>>());
    leaf_members
        .prop_recursive(2, 16, 3, |inner| {
            (inner.clone(), prop::collection::btree_map("o[a-b]", inner.prop_map(Value::Object), 0..3)).prop_map(
                |(mut own, nested)| {
                    own.extend(nested);
                    own
                },
            )
        })
        .prop_map(Value::Object)
}

fn secrets() -> impl Strategy<Value = SecretMap> {
    prop::collection::btree_map("[a-c](/[a-c])?", typed_object(), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (SecretPath::parse(&k).unwrap(), SecretValue::new(v))).collect())
}

/// Any JSON values, type conflicts included.
fn any_secrets() -> impl Strategy<Value = SecretMap> {
    prop::collection::btree_map("[a-c](/[a-c])?", json(), 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (SecretPath::parse(&k).unwrap(), SecretValue::new(v))).collect())
}

fn keep_options() -> impl Strategy<Value = MergeOptions> {
    prop_oneof![Just(ListMode::Append), Just(ListMode::Replace), Just(ListMode::Union)]
        .prop_map(|lists| MergeOptions { lists, nulls: NullMode::Keep })
}

fn bytes(map: &SecretMap) -> String {
    let mut out = String::new();
    for (path, value) in map {
        out.push_str(path.as_str());
        out.push('=');
        canonical_json(&value.expose(), &mut out);
        out.push('\n');
    }
    out
}

fn owned(map: &SecretMap, owner: &str) -> LiveState {
    map.iter().map(|(p, v)| (p.clone(), LiveSecret::with_value(v.clone(), Some(owner.into())))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn merge_with_empty_is_identity(a in any_secrets(), options in keep_options()) {
        prop_assert_eq!(bytes(&merge_maps(a.clone(), &SecretMap::new(), options)), bytes(&a));
        prop_assert_eq!(bytes(&merge_maps(SecretMap::new(), &a, options)), bytes(&a));
    }

    #[test]
    fn merge_is_associative(a in secrets(), b in secrets(), c in secrets(), options in keep_options()) {
        let left = merge_maps(merge_maps(a.clone(), &b, options), &c, options);
        let right = merge_maps(a, &merge_maps(b, &c, options), options);
        prop_assert_eq!(bytes(&left), bytes(&right));
    }

    #[test]
    fn merge_is_deterministic(a in any_secrets(), b in any_secrets(), options in keep_options()) {
        let once = merge_maps(a.clone(), &b, options);
        let twice = merge_maps(a, &b, options);
        prop_assert_eq!(bytes(&once), bytes(&twice));
    }

    #[test]
    fn null_delete_leaves_no_nulls_in_objects(a in any_secrets(), b in any_secrets()) {
        let options = MergeOptions { lists: ListMode::Append, nulls: NullMode::Delete };
        let out = merge_maps(SecretMap::new(), &merge_maps(a, &b, options), options);
        // Inside lists a null is a value, as in JSON Merge Patch (lists are not patched).
        fn has_null_member(v: &Value) -> bool {
            match v {
                Value::Object(m) => m.values().any(|x| x.is_null() || has_null_member(x)),
                _ => false,
            }
        }
        prop_assert!(out.values().all(|v| !v.is_null() && !has_null_member(&v.expose())));
    }

    #[test]
    fn diff_of_a_state_with_itself_is_empty(a in any_secrets()) {
        let d = diff(&owned(&a, "T"), &a, DiffOptions { delete_orphans: true, owner: "T", fingerprints: None });
        prop_assert!(!d.has_changes());
        prop_assert_eq!(d.changes.len(), a.len());
    }

    #[test]
    fn applying_a_diff_gives_the_desired_state(a in any_secrets(), b in any_secrets()) {
        let d = diff(&owned(&a, "T"), &b, DiffOptions { delete_orphans: true, owner: "T", fingerprints: None });
        prop_assert_eq!(bytes(&apply(&a, &d)), bytes(&b));
    }

    #[test]
    fn config_parsing_never_panics(text in "\\PC{0,200}") {
        let _ = vss::config::load_str("fuzz.yaml", text, std::path::Path::new("."), &|_| None);
    }

    #[test]
    fn structured_config_parsing_never_panics(
        lines in prop::collection::vec(
            prop_oneof![
                Just("targets:".to_string()), Just("sources:".to_string()), Just("  a:".to_string()),
                Just("    imports: [a, b]".to_string()), Just("    inherits: a".to_string()),
                Just("  b: { file: { path: x } }".to_string()), Just("    file: { path: ${X:-y} }".to_string()),
                Just("version: 1".to_string()), Just("merge_store: { file: { path: m } }".to_string()),
                Just("  - x".to_string()), Just("&a *a <<: ".to_string()), "[ -~]{0,12}",
            ],
            0..12,
        )
    ) {
        let _ = vss::config::load_str("fuzz.yaml", lines.join("\n"), std::path::Path::new("."), &|_| None);
    }
}

/// Secrets whose keys and paths collide often once flattened (`a-b` and `a_b`, `A` and `a`).
fn flattenable() -> impl Strategy<Value = SecretMap> {
    let value = prop_oneof![
        json(),
        prop::collection::btree_map("[aA][-_]?[b]?", json(), 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
    ];
    prop::collection::btree_map("[a-b](/[a-b_-]{1,2})?", value, 0..5)
        .prop_map(|m| m.into_iter().map(|(k, v)| (SecretPath::parse(&k).unwrap(), SecretValue::new(v))).collect())
}

fn flatten_options() -> impl Strategy<Value = vss::flatten::FlattenOptions> {
    use vss::flatten::{FlattenOptions, Naming};
    (prop_oneof![Just(Naming::Key), Just(Naming::PathKey), Just(Naming::Path)], "(|p_)", any::<bool>())
        .prop_map(|(naming, prefix, uppercase)| FlattenOptions { naming, prefix, uppercase, keep: "" })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every entry of every secret lands under exactly one name, with its value, or the
    /// flattening fails naming the entries that collide: nothing is lost silently.
    #[test]
    fn flattening_loses_nothing_silently(s in flattenable(), options in flatten_options()) {
        use vss::flatten::{FlattenError, Naming, Origin, flatten};
        // Every entry the secrets hold, with the value it must get.
        let mut entries: Vec<(Origin, String)> = Vec::new();
        for (path, value) in &s {
            let value = value.expose();
            let text = |v: &Value| match v {
                Value::String(t) => t.clone(),
                other => { let mut t = String::new(); canonical_json(other, &mut t); t }
            };
            match (&value, options.naming) {
                (Value::Object(map), Naming::Key | Naming::PathKey) => {
                    for (k, v) in map {
                        entries.push((Origin { path: path.clone(), key: Some(k.clone()) }, text(v)));
                    }
                }
                _ => entries.push((Origin { path: path.clone(), key: None }, text(&value))),
            }
        }
        match flatten(&s, &options) {
            Ok(flat) => {
                prop_assert_eq!(flat.len(), entries.len());
                for (origin, value) in &entries {
                    let hits: Vec<_> = flat.values().filter(|f| &f.origin == origin).collect();
                    prop_assert_eq!(hits.len(), 1);
                    prop_assert_eq!(&hits[0].value, value);
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for error in errors {
                    match error {
                        FlattenError::Collision { name, first, second } => {
                            prop_assert_ne!(&first, &second);
                            prop_assert!(entries.iter().any(|(o, _)| o == &first));
                            prop_assert!(entries.iter().any(|(o, _)| o == &second));
                            prop_assert!(!name.is_empty());
                        }
                        FlattenError::Empty { origin } => {
                            prop_assert!(options.prefix.is_empty());
                            prop_assert_eq!(origin.key.as_deref(), Some(""));
                        }
                    }
                }
            }
        }
    }
}

/// A glob over the test paths (`[a-c](/[a-c])?`).
fn glob() -> impl Strategy<Value = vss::select::Glob> {
    prop::sample::select(vec!["a", "a/*", "*/b", "**/c", "a/**", "*", "b*", "?", "{a,b}/c", "**"])
        .prop_map(|p| vss::select::Glob::new(p).unwrap())
}

/// A glob over the test keys (`o[a-b]`, `l[a-b]`, `s[a-c]`).
fn key_glob() -> impl Strategy<Value = vss::select::Glob> {
    prop::sample::select(vec!["s*", "o?", "la", "*b", "*"]).prop_map(|p| vss::select::Glob::new(p).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// `include: [G]` and `exclude: [G]` split every layer in two: together they are the
    /// layer, and nothing is in both.
    #[test]
    fn include_and_exclude_partition_a_layer(s in any_secrets(), g in glob()) {
        use vss::select::Selection;
        let included = Selection { include: vec![g.clone()], ..Selection::default() }.apply(&s).unwrap().secrets;
        let excluded = Selection { exclude: vec![g.clone()], ..Selection::default() }.apply(&s).unwrap().secrets;
        prop_assert!(included.keys().all(|p| !excluded.contains_key(p)), "disjoint");
        let mut union = included.clone();
        union.extend(excluded);
        prop_assert_eq!(union, s);
    }

    /// A rename either moves every secret to a name of its own (a bijection: the moved
    /// secrets map back to distinct originals, values untouched) or fails naming two
    /// secrets that would share a name.
    #[test]
    fn a_rename_is_a_bijection_or_an_error(
        s in any_secrets(),
        rules in prop::collection::vec(
            (prop::sample::select(vec!["a", "b/c", "a/*", "*/b", "**/c", "*"]), prop::sample::select(vec!["x", "a", "y/{1}", "z-{1}"])),
            0..3,
        ),
    ) {
        use vss::select::{Rename, Selection, SelectError};
        let rename: Vec<Rename> = rules.iter().filter_map(|(from, to)| Rename::new(from, to).ok()).collect();
        let selection = Selection { rename, ..Selection::default() };
        match selection.apply(&s) {
            Ok(selected) => {
                prop_assert_eq!(selected.secrets.len(), s.len());
                let mut originals = std::collections::BTreeSet::new();
                for (path, value) in &selected.secrets {
                    let original = selected.moved.get(&(path.clone(), None)).map_or(path, |m| &m.path);
                    prop_assert_eq!(s.get(original), Some(value));
                    prop_assert!(originals.insert(original.clone()), "two secrets map back to one");
                }
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for error in errors {
                    match error {
                        SelectError::PathCollision { from: (a, b), .. } => {
                            prop_assert_ne!(&a, &b);
                            prop_assert!(s.keys().any(|p| p.as_str() == a) && s.keys().any(|p| p.as_str() == b));
                        }
                        SelectError::BadPath { .. } => {}
                        other => prop_assert!(false, "unexpected {other}"),
                    }
                }
            }
        }
    }

    /// Filters by path and by key commute with the deep merge: filtering each layer and
    /// merging gives what merging and filtering the result gives.
    #[test]
    fn filters_commute_with_merge(
        a in secrets(),
        b in secrets(),
        include in prop::collection::vec(glob(), 0..2),
        exclude in prop::collection::vec(glob(), 0..2),
        keys_exclude in prop::collection::vec(key_glob(), 0..2),
        options in keep_options(),
    ) {
        use vss::select::Selection;
        let selection = Selection { include, exclude, keys_exclude, ..Selection::default() };
        let take = |m: &SecretMap| selection.apply(m).unwrap().secrets;
        let merged_then_filtered = take(&merge_maps(a.clone(), &b, options));
        let filtered_then_merged = merge_maps(take(&a), &take(&b), options);
        prop_assert_eq!(bytes(&merged_then_filtered), bytes(&filtered_then_merged));
    }
}
