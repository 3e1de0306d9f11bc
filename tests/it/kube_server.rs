//! A loopback kube-apiserver test server: the core/v1 Secret routes that vss and the
//! official clients use (list, get, create, replace, patch — server-side apply, merge and
//! strategic merge — and delete), stateful and in memory, faithful to the published
//! contract:
//!
//! - every request body is checked against the Kubernetes OpenAPI schemas of v1.34 (the
//!   strict JSON schemas shipped in the `kubernetes-validate` wheel; `tests/run` installs
//!   it and exports their directory as `VSS_TEST_KUBE_SCHEMAS`): a Secret or DeleteOptions
//!   with a field the schema does not have, or of the wrong type, is 400 `BadRequest`; an
//!   undocumented route is 404, a query parameter the route does not take is 400; each is
//!   recorded in [`KubeServer::rejected`]. Every Secret the server answers with is checked
//!   against the same schemas;
//! - errors are `Status` objects (`{"kind": "Status", "status": "Failure", "message",
//!   "reason", "details", "code"}`) with the API server's reasons and messages: 401
//!   `Unauthorized` without the bearer token, 403 `Forbidden` for a verb
//!   [`KubeServer::forbid`] denies, 404 `NotFound`, 409 `AlreadyExists`, 409 `Conflict`
//!   when a write's `resourceVersion` or a delete's preconditions no longer hold, 422
//!   `Invalid` for a name that is not a DNS subdomain, a data key outside
//!   `[-._a-zA-Z0-9]`, a Secret over 1 MiB, a type's missing keys, labels outside the label
//!   rules, a change of `type` or of an immutable Secret's data;
//! - server-side apply keeps field ownership per field manager (data keys, labels,
//!   annotations, type, immutable): an apply sets what it sends and removes the fields its
//!   manager owned and no longer sends, unless another manager owns them too; `force`
//!   takes fields from other managers, without it a differing field is a 409 conflict;
//!   `managedFields` are answered as the API server does;
//! - lists are paged by `limit` and `continue` ([`KubeServer::cap_pages`] makes pages
//!   shorter, as the API may) and filtered by equality- and set-based label selectors;
//! - [`KubeServer::die_after`] makes the server drop every request after a number of
//!   them, as a crashed API server would;
//! - [`KubeServer::race`] makes the next write of a Secret meet another writer's change
//!   (its `resourceVersion` moves on first), as a concurrent controller would.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::loopback::{Request, Response, serve};

/// The bearer token the server accepts.
pub const TOKEN: &str = "vss-test-token";

/// One field a manager can own.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Data(String),
    Label(String),
    Annotation(String),
    Type,
    Immutable,
}

/// A stored Secret.
#[derive(Clone, Debug, Default)]
pub struct StoredSecret {
    /// Its data, as bytes.
    pub data: BTreeMap<String, Vec<u8>>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its type.
    pub secret_type: String,
    /// Whether it is immutable.
    pub immutable: bool,
    /// Its resourceVersion.
    pub resource_version: u64,
    uid: String,
    created: String,
    /// manager -> (operation, fields it owns).
    managers: BTreeMap<String, (String, BTreeSet<Field>)>,
}

impl StoredSecret {
    /// Its data as text (lossy), by key.
    pub fn text(&self) -> BTreeMap<String, String> {
        self.data.iter().map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned())).collect()
    }

    fn get(&self, field: &Field) -> Option<Value> {
        match field {
            Field::Data(k) => self.data.get(k).map(|v| json!(b64(v))),
            Field::Label(k) => self.labels.get(k).map(|v| json!(v)),
            Field::Annotation(k) => self.annotations.get(k).map(|v| json!(v)),
            Field::Type => Some(json!(self.secret_type)),
            Field::Immutable => self.immutable.then_some(Value::Bool(true)),
        }
    }

    fn set(&mut self, field: &Field, value: Option<&Value>) {
        let text = || value.and_then(Value::as_str).unwrap_or_default().to_string();
        match (field, value) {
            (Field::Data(k), Some(_)) => {
                self.data.insert(k.clone(), unb64(&text()).unwrap_or_default());
            }
            (Field::Data(k), None) => {
                self.data.remove(k);
            }
            (Field::Label(k), Some(_)) => {
                self.labels.insert(k.clone(), text());
            }
            (Field::Label(k), None) => {
                self.labels.remove(k);
            }
            (Field::Annotation(k), Some(_)) => {
                self.annotations.insert(k.clone(), text());
            }
            (Field::Annotation(k), None) => {
                self.annotations.remove(k);
            }
            (Field::Type, value) => self.secret_type = value.and_then(Value::as_str).unwrap_or("Opaque").to_string(),
            (Field::Immutable, value) => self.immutable = value.and_then(Value::as_bool).unwrap_or(false),
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[derive(Default)]
struct State {
    /// namespace -> name -> Secret.
    namespaces: BTreeMap<String, BTreeMap<String, StoredSecret>>,
    version: u64,
    rejected: Vec<String>,
    forbidden: BTreeSet<String>,
    page_cap: Option<usize>,
    race: Option<String>,
    /// Requests left before the server drops every connection unanswered (`die_after`).
    alive: Option<usize>,
    writes: u64,
    requests: Vec<String>,
}

/// A running test server.
#[derive(Clone)]
pub struct KubeServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// The strict JSON schemas of a Secret and of DeleteOptions, with their definitions.
struct Schemas {
    secret: jsonschema::Validator,
    delete_options: jsonschema::Validator,
}

fn schemas() -> &'static Schemas {
    static SCHEMAS: std::sync::OnceLock<Schemas> = std::sync::OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = std::env::var("VSS_TEST_KUBE_SCHEMAS")
            .unwrap_or_else(|_| panic!("VSS_TEST_KUBE_SCHEMAS is not set: run tests/run (it installs the schemas)"));
        let read = |file: &str| -> Value {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap_or_else(|e| panic!("{dir}/{file}: {e}"));
            serde_json::from_str(&text.replace("/api/_definitions.json#/$defs/", "#/$defs/")).unwrap()
        };
        let definitions = read("_definitions.json")["$defs"].clone();
        let compile = |file: &str| {
            let mut schema = read(file);
            schema["$defs"] = definitions.clone();
            jsonschema::validator_for(&schema).expect("the Kubernetes schemas compile")
        };
        Schemas { secret: compile("secret-v1.json"), delete_options: compile("deleteoptions-meta-v1.json") }
    })
}

/// A `Status` answer.
fn status(code: u16, reason: &str, message: impl Into<String>, details: Value) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.into(), "reason": reason, "code": code,
    });
    if !details.is_null() {
        body["details"] = details;
    }
    Response { status: code, headers: Vec::new(), content_type: "application/json", body: body.to_string() }
}

fn ok(code: u16, body: Value) -> Response {
    Response { status: code, headers: Vec::new(), content_type: "application/json", body: body.to_string() }
}

fn not_found(name: &str) -> Response {
    status(404, "NotFound", format!("secrets \"{name}\" not found"), json!({"name": name, "kind": "secrets"}))
}

fn conflict(name: &str) -> Response {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on secrets \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
        ),
        json!({"name": name, "kind": "secrets"}),
    )
}

/// A 422 naming each invalid field, as the API server's validation does.
fn invalid(name: &str, causes: &[(String, String)]) -> Response {
    let list = causes.iter().map(|(field, message)| format!("{field}: {message}")).collect::<Vec<_>>();
    let message = if list.len() == 1 { list[0].clone() } else { format!("[{}]", list.join(", ")) };
    status(
        422,
        "Invalid",
        format!("Secret \"{name}\" is invalid: {message}"),
        json!({
            "name": name, "kind": "Secret",
            "causes": causes.iter().map(|(field, message)| json!({"reason": "FieldValueInvalid", "message": message, "field": field})).collect::<Vec<_>>(),
        }),
    )
}

fn is_dns_subdomain(name: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty() && name.len() <= 253 && name.split('.').all(label)
}

/// Label value rules: `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`, at most 63.
fn is_label_value(value: &str) -> bool {
    value.len() <= 63
        && (value.is_empty()
            || (value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
                && value.as_bytes()[0].is_ascii_alphanumeric()
                && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric()))
}

/// Qualified names (label and annotation keys): an optional DNS-subdomain prefix and `/`,
/// then a name of at most 63 characters.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    prefix.is_none_or(is_dns_subdomain) && !name.is_empty() && is_label_value(name)
}

/// The API server's checks of a Secret (`ValidateSecret`).
fn validate(name: &str, secret: &StoredSecret) -> Vec<(String, String)> {
    let mut causes = Vec::new();
    if !is_dns_subdomain(name) {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        ));
    }
    for (key, value) in &secret.labels {
        if !is_qualified_name(key) {
            causes.push((
                "metadata.labels".into(),
                format!("Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"),
            ));
        }
        if !is_label_value(value) {
            causes.push(("metadata.labels".into(), format!("Invalid value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
        }
    }
    let annotations: usize = secret.annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if annotations > 262_144 {
        causes.push(("metadata.annotations".into(), "Too long: must have at most 262144 bytes".into()));
    }
    for key in secret.annotations.keys() {
        if !is_qualified_name(key) {
            causes.push((
                "metadata.annotations".into(),
                format!("Invalid value: \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"),
            ));
        }
    }
    let mut size = 0;
    for (key, value) in &secret.data {
        size += value.len();
        let valid = !key.is_empty()
            && key.len() <= 253
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && key != "."
            && key != ".."
            && !key.starts_with("..");
        if !valid {
            causes.push((
                format!("data[{key}]"),
                format!("Invalid value: \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"),
            ));
        }
    }
    if size > 1_048_576 {
        causes.push(("data".into(), "Too long: must have at most 1048576 bytes".into()));
    }
    let required: &[&str] = match secret.secret_type.as_str() {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    for key in required {
        if !secret.data.contains_key(*key) {
            causes.push((format!("data[{key}]"), "Required value".into()));
        }
    }
    if secret.secret_type == "kubernetes.io/dockerconfigjson"
        && let Some(bytes) = secret.data.get(".dockerconfigjson")
        && serde_json::from_slice::<Value>(bytes).is_err()
    {
        causes.push((
            "data[.dockerconfigjson]".into(),
            "Invalid value: \"<secret contents redacted>\": invalid character".into(),
        ));
    }
    if secret.secret_type == "kubernetes.io/basic-auth"
        && !secret.data.contains_key("username")
        && !secret.data.contains_key("password")
    {
        causes.push(("data[username]".into(), "Required value: either username or password is required".into()));
    }
    causes
}

/// Every field an object sets, with its value (`data` and `stringData` as base64 data).
fn fields_of(object: &Value) -> BTreeMap<Field, Value> {
    let mut out = BTreeMap::new();
    for (k, v) in object["data"].as_object().into_iter().flatten() {
        out.insert(Field::Data(k.clone()), v.clone());
    }
    for (k, v) in object["stringData"].as_object().into_iter().flatten() {
        out.insert(Field::Data(k.clone()), json!(b64(v.as_str().unwrap_or_default().as_bytes())));
    }
    for (k, v) in object["metadata"]["labels"].as_object().into_iter().flatten() {
        out.insert(Field::Label(k.clone()), v.clone());
    }
    for (k, v) in object["metadata"]["annotations"].as_object().into_iter().flatten() {
        out.insert(Field::Annotation(k.clone()), v.clone());
    }
    if let Some(t) = object.get("type").filter(|t| !t.is_null()) {
        out.insert(Field::Type, t.clone());
    }
    if let Some(i) = object.get("immutable").filter(|i| !i.is_null()) {
        out.insert(Field::Immutable, i.clone());
    }
    out
}

/// The `fieldsV1` of a set of fields.
fn fields_v1(fields: &BTreeSet<Field>) -> Value {
    let mut out = json!({});
    for field in fields {
        let (group, key) = match field {
            Field::Data(k) => ("f:data", Some(k)),
            Field::Label(k) => ("f:metadata.f:labels", Some(k)),
            Field::Annotation(k) => ("f:metadata.f:annotations", Some(k)),
            Field::Type => ("f:type", None),
            Field::Immutable => ("f:immutable", None),
        };
        let mut at = &mut out;
        for part in group.split('.') {
            at = at.as_object_mut().unwrap().entry(part.to_string()).or_insert_with(|| json!({}));
        }
        if let Some(key) = key {
            at.as_object_mut().unwrap().insert(format!("f:{key}"), json!({}));
        }
    }
    out
}

impl KubeServer {
    /// Starts a server with the namespaces `namespaces`.
    pub fn start(namespaces: &[&str]) -> Self {
        let _ = schemas();
        let state = Arc::new(Mutex::new(State {
            namespaces: namespaces.iter().map(|n| (n.to_string(), BTreeMap::new())).collect(),
            version: 1000,
            ..State::default()
        }));
        let shared = state.clone();
        let url = serve(move |request| handle(&shared, request));
        KubeServer { url, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// A kubeconfig with one context per `(context, namespace)`, each reaching this
    /// server with its token; the first is the current context.
    pub fn kubeconfig(&self, contexts: &[(&str, &str)]) -> String {
        KubeServer::kubeconfig_of(&contexts.iter().map(|(c, n)| (self, *c, *n)).collect::<Vec<_>>())
    }

    /// A kubeconfig with contexts on several servers (clusters).
    pub fn kubeconfig_of(contexts: &[(&KubeServer, &str, &str)]) -> String {
        let mut text = String::from("apiVersion: v1\nkind: Config\n");
        text.push_str(&format!("current-context: {}\n", contexts.first().map_or("", |c| c.1)));
        text.push_str("clusters:\n");
        for (server, context, _) in contexts {
            text.push_str(&format!("- name: {context}-cluster\n  cluster:\n    server: {}\n", server.url));
        }
        text.push_str("users:\n- name: tester\n  user:\n    token: ");
        text.push_str(TOKEN);
        text.push_str("\ncontexts:\n");
        for (_, context, namespace) in contexts {
            text.push_str(&format!(
                "- name: {context}\n  context:\n    cluster: {context}-cluster\n    user: tester\n    namespace: {namespace}\n"
            ));
        }
        text
    }

    /// The Secrets of `namespace`, by name.
    pub fn secrets(&self, namespace: &str) -> BTreeMap<String, StoredSecret> {
        self.lock().namespaces.get(namespace).cloned().unwrap_or_default()
    }

    /// Puts a Secret in place as another client would (manager `kubectl-client-side-apply`).
    pub fn put(&self, namespace: &str, name: &str, object: Value) {
        let mut state = self.lock();
        state.version += 1;
        let version = state.version;
        let ns = state.namespaces.entry(namespace.to_string()).or_default();
        let mut secret = ns.remove(name).unwrap_or_else(|| StoredSecret {
            uid: format!("uid-{name}-{version}"),
            created: "2026-01-01T00:00:00Z".into(),
            secret_type: "Opaque".into(),
            ..StoredSecret::default()
        });
        let fields = fields_of(&object);
        for (field, value) in &fields {
            secret.set(field, Some(value));
        }
        secret.resource_version = version;
        secret.managers.insert("kubectl-client-side-apply".into(), ("Update".into(), fields.into_keys().collect()));
        ns.insert(name.to_string(), secret);
    }

    /// Deletes a Secret as another client would.
    pub fn remove(&self, namespace: &str, name: &str) {
        self.lock().namespaces.get_mut(namespace).map(|n| n.remove(name));
    }

    /// Changes a Secret's labels as another client would (its resourceVersion moves on).
    pub fn relabel(&self, namespace: &str, name: &str, key: &str, value: &str) {
        let mut state = self.lock();
        state.version += 1;
        let version = state.version;
        let secret = state.namespaces.get_mut(namespace).and_then(|n| n.get_mut(name)).expect("the Secret exists");
        secret.labels.insert(key.into(), value.into());
        secret.resource_version = version;
    }

    /// Requests the server refused as off-contract (should stay empty).
    pub fn rejected(&self) -> Vec<String> {
        self.lock().rejected.clone()
    }

    /// Writes (applies, creates, replaces, patches, deletes) that changed something.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Every request so far, as `METHOD path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Denies `verb` (`list`, `get`, `create`, `update`, `patch`, `delete`) with 403.
    pub fn forbid(&self, verb: &str) {
        self.lock().forbidden.insert(verb.to_string());
    }

    /// Pages of at most `n` items, whatever `limit` asks.
    pub fn cap_pages(&self, n: usize) {
        self.lock().page_cap = Some(n);
    }

    /// After `requests` more requests, the server dies: every request is dropped
    /// unanswered (the connection closes), as a crashed API server's would be.
    pub fn die_after(&self, requests: usize) {
        self.lock().alive = Some(requests);
    }

    /// Answers again after [`KubeServer::die_after`].
    pub fn revive(&self) {
        self.lock().alive = None;
    }

    /// The next write of Secret `name` meets another writer's change first.
    pub fn race(&self, name: &str) {
        self.lock().race = Some(name.to_string());
    }
}

/// The query parameters each verb takes (the API reference's, for Secrets).
fn allowed(verb: &str) -> &'static [&'static str] {
    match verb {
        "list" => &[
            "allowWatchBookmarks",
            "continue",
            "fieldSelector",
            "labelSelector",
            "limit",
            "pretty",
            "resourceVersion",
            "resourceVersionMatch",
            "sendInitialEvents",
            "timeoutSeconds",
            "watch",
        ],
        "get" => &["pretty"],
        "create" | "update" => &["dryRun", "fieldManager", "fieldValidation", "pretty"],
        "patch" => &["dryRun", "fieldManager", "fieldValidation", "force", "pretty"],
        "delete" => &[
            "dryRun",
            "gracePeriodSeconds",
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "orphanDependents",
            "pretty",
            "propagationPolicy",
        ],
        _ => &[],
    }
}

fn handle(state: &Mutex<State>, request: Request) -> Response {
    let mut state = state.lock().unwrap();
    match state.alive {
        Some(0) => {
            return Response { status: 0, headers: Vec::new(), content_type: "application/json", body: String::new() };
        }
        Some(n) => state.alive = Some(n - 1),
        None => {}
    }
    let query: String = request.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    state.requests.push(format!("{} {}?{query}", request.method, request.path));
    if request.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        return status(401, "Unauthorized", "Unauthorized", Value::Null);
    }
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let (namespace, name) = match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "secrets"] => (ns.to_string(), None),
        ["api", "v1", "namespaces", ns, "secrets", name] => (ns.to_string(), Some(name.to_string())),
        _ => {
            state.rejected.push(format!("{} {}: no such route", request.method, request.path));
            return status(404, "NotFound", "the server could not find the requested resource", Value::Null);
        }
    };
    let verb = match (request.method.as_str(), &name) {
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", None) => "create",
        ("PUT", Some(_)) => "update",
        ("PATCH", Some(_)) => "patch",
        ("DELETE", Some(_)) => "delete",
        _ => {
            state.rejected.push(format!("{} {}: method not allowed", request.method, request.path));
            return status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                Value::Null,
            );
        }
    };
    if let Some(bad) = request.query.keys().find(|k| !allowed(verb).contains(&k.as_str())) {
        state.rejected.push(format!("{verb} {}: query parameter `{bad}`", request.path));
        return status(400, "BadRequest", format!("unknown query parameter \"{bad}\""), Value::Null);
    }
    if state.forbidden.contains(verb) {
        let what = name.as_ref().map_or_else(String::new, |n| format!(" \"{n}\""));
        return status(
            403,
            "Forbidden",
            format!(
                "secrets{what} is forbidden: User \"system:serviceaccount:ci:vss\" cannot {verb} resource \"secrets\" in API group \"\" in the namespace \"{namespace}\""
            ),
            json!({"name": name.clone().unwrap_or_default(), "kind": "secrets"}),
        );
    }
    let body: Option<Value> = if request.body.trim().is_empty() {
        None
    } else {
        match serde_json::from_str(&request.body) {
            Ok(body) => Some(body),
            Err(e) => {
                state.rejected.push(format!("{verb} {}: body is not JSON: {e}", request.path));
                return status(
                    400,
                    "BadRequest",
                    format!("couldn't get version/kind; json parse error: {e}"),
                    Value::Null,
                );
            }
        }
    };
    let response = match verb {
        "list" => list(&mut state, &namespace, &request),
        "get" => {
            let name = name.unwrap_or_default();
            match state.namespaces.get(&namespace).and_then(|n| n.get(&name)) {
                Some(secret) => ok(200, render(&namespace, &name, secret)),
                None => not_found(&name),
            }
        }
        "delete" => delete(&mut state, &namespace, &name.unwrap_or_default(), body.as_ref()),
        _ => write(&mut state, verb, &namespace, name.as_deref(), body, &request),
    };
    if (200..300).contains(&response.status) {
        check_answer(&mut state, verb, &response);
    }
    response
}

/// Checks that an answer's Secrets follow the schema (the server's own fidelity).
fn check_answer(state: &mut State, verb: &str, response: &Response) {
    let body: Value = serde_json::from_str(&response.body).unwrap_or_default();
    let items: Vec<&Value> = match body["kind"].as_str() {
        Some("Secret") => vec![&body],
        Some("SecretList") => body["items"].as_array().into_iter().flatten().collect(),
        _ => Vec::new(),
    };
    for item in items {
        let mut object = item.clone();
        // A list's items carry no kind and apiVersion on the wire of some servers; these do.
        object["kind"] = json!("Secret");
        if let Some(error) = schemas().secret.iter_errors(&object).next() {
            state.rejected.push(format!("{verb}: the server's own answer is off-schema: {error}"));
        }
    }
}

/// A label selector's requirements, or why it does not parse.
fn matches(selector: &str, labels: &BTreeMap<String, String>) -> Result<bool, String> {
    let mut requirements = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in selector.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                requirements.push(&selector[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    requirements.push(&selector[start..]);
    let mut all = true;
    for requirement in requirements.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        let set = |list: &str| -> Result<BTreeSet<String>, String> {
            let inner = list.trim().strip_prefix('(').and_then(|l| l.strip_suffix(')')).ok_or("expected a (list)")?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let ok = if let Some((key, values)) = requirement.split_once(" notin ") {
            !labels.get(key.trim()).is_some_and(|v| set(values).map(|s| s.contains(v)).unwrap_or(false))
                && set(values).is_ok()
        } else if let Some((key, values)) = requirement.split_once(" in ") {
            let values = set(values)?;
            labels.get(key.trim()).is_some_and(|v| values.contains(v))
        } else if let Some((key, value)) = requirement.split_once("!=") {
            labels.get(key.trim()) != Some(&value.trim().to_string())
        } else if let Some((key, value)) = requirement.split_once("==").or_else(|| requirement.split_once('=')) {
            labels.get(key.trim()) == Some(&value.trim().to_string())
        } else if let Some(key) = requirement.strip_prefix('!') {
            !labels.contains_key(key.trim())
        } else if is_qualified_name(requirement) {
            labels.contains_key(requirement)
        } else {
            return Err(format!("unable to parse requirement: found '{requirement}'"));
        };
        all &= ok;
    }
    Ok(all)
}

fn list(state: &mut State, namespace: &str, request: &Request) -> Response {
    if request.query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        state.rejected.push("list: watch is not served by this test server".into());
        return status(400, "BadRequest", "watch is not served here", Value::Null);
    }
    let selector = request.query.get("labelSelector").cloned().unwrap_or_default();
    let mut items = Vec::new();
    for (name, secret) in state.namespaces.get(namespace).into_iter().flatten() {
        match matches(&selector, &secret.labels) {
            Ok(true) => items.push((name.clone(), secret.clone())),
            Ok(false) => {}
            Err(why) => return status(400, "BadRequest", why, Value::Null),
        }
    }
    let after = match request.query.get("continue") {
        Some(token) if !token.is_empty() => match unb64(token).and_then(|b| String::from_utf8(b).ok()) {
            Some(after) => Some(after),
            None => return status(400, "BadRequest", "continue key is not valid: illegal base64 data", Value::Null),
        },
        _ => None,
    };
    let limit = request.query.get("limit").and_then(|l| l.parse::<usize>().ok()).filter(|l| *l > 0);
    let limit = match (limit, state.page_cap) {
        (Some(l), Some(cap)) => Some(l.min(cap)),
        (l, _) => l,
    };
    let rest: Vec<&(String, StoredSecret)> =
        items.iter().filter(|(name, _)| after.as_ref().is_none_or(|a| name > a)).collect();
    let page: Vec<&&(String, StoredSecret)> = rest.iter().take(limit.unwrap_or(usize::MAX)).collect();
    let mut metadata = json!({"resourceVersion": state.version.to_string()});
    if page.len() < rest.len()
        && let Some((last, _)) = page.last().map(|p| **p)
    {
        metadata["continue"] = json!(b64(last.as_bytes()));
        metadata["remainingItemCount"] = json!(rest.len() - page.len());
    }
    let items: Vec<Value> = page.iter().map(|(name, secret)| render(namespace, name, secret)).collect();
    ok(200, json!({"kind": "SecretList", "apiVersion": "v1", "metadata": metadata, "items": items}))
}

/// A Secret as the API server answers it.
fn render(namespace: &str, name: &str, secret: &StoredSecret) -> Value {
    let managed: Vec<Value> = secret
        .managers
        .iter()
        .filter(|(_, (_, fields))| !fields.is_empty())
        .map(|(manager, (operation, fields))| {
            json!({
                "manager": manager, "operation": operation, "apiVersion": "v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1", "fieldsV1": fields_v1(fields),
            })
        })
        .collect();
    let mut metadata = json!({
        "name": name, "namespace": namespace, "uid": secret.uid,
        "resourceVersion": secret.resource_version.to_string(), "creationTimestamp": secret.created,
        "managedFields": managed,
    });
    if !secret.labels.is_empty() {
        metadata["labels"] = json!(secret.labels);
    }
    if !secret.annotations.is_empty() {
        metadata["annotations"] = json!(secret.annotations);
    }
    let mut object = json!({"kind": "Secret", "apiVersion": "v1", "metadata": metadata, "type": secret.secret_type});
    if !secret.data.is_empty() {
        object["data"] = secret.data.iter().map(|(k, v)| (k.clone(), json!(b64(v)))).collect();
    }
    if secret.immutable {
        object["immutable"] = json!(true);
    }
    object
}

fn delete(state: &mut State, namespace: &str, name: &str, body: Option<&Value>) -> Response {
    if let Some(body) = body
        && let Some(error) = schemas().delete_options.iter_errors(body).next()
    {
        state.rejected.push(format!("delete {name}: DeleteOptions off-schema: {error}"));
        return status(400, "BadRequest", format!("DeleteOptions is invalid: {error}"), Value::Null);
    }
    let Some(secret) = state.namespaces.get(namespace).and_then(|n| n.get(name)) else {
        return not_found(name);
    };
    let preconditions = body.map(|b| b["preconditions"].clone()).unwrap_or(Value::Null);
    if let Some(uid) = preconditions["uid"].as_str()
        && uid != secret.uid
    {
        return status(
            409,
            "Conflict",
            format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", secret.uid),
            json!({"name": name, "kind": "secrets"}),
        );
    }
    if let Some(version) = preconditions["resourceVersion"].as_str()
        && version != secret.resource_version.to_string()
    {
        return status(
            409,
            "Conflict",
            format!(
                "Precondition failed: ResourceVersion in precondition: {version}, ResourceVersion in object meta: {}",
                secret.resource_version
            ),
            json!({"name": name, "kind": "secrets"}),
        );
    }
    let uid = secret.uid.clone();
    state.namespaces.get_mut(namespace).map(|n| n.remove(name));
    state.writes += 1;
    ok(
        200,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": name, "kind": "secrets", "uid": uid}}),
    )
}

fn write(
    state: &mut State,
    verb: &str,
    namespace: &str,
    name: Option<&str>,
    body: Option<Value>,
    request: &Request,
) -> Response {
    let content_type = request.headers.get("content-type").map(String::as_str).unwrap_or("application/json");
    let content_type = content_type.split(';').next().unwrap_or_default().trim();
    let apply = verb == "patch" && content_type == "application/apply-patch+yaml";
    let merge = verb == "patch"
        && matches!(content_type, "application/merge-patch+json" | "application/strategic-merge-patch+json");
    if verb == "patch" && !apply && !merge {
        state.rejected.push(format!("patch: content type {content_type}"));
        return status(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json; got {content_type}"
            ),
            Value::Null,
        );
    }
    let Some(body) = body else {
        return status(400, "BadRequest", "the request body is empty", Value::Null);
    };
    // A merge patch may be partial; whatever it holds must still fit the Secret schema.
    if let Some(error) = schemas().secret.iter_errors(&body).next() {
        state.rejected.push(format!("{verb}: Secret off-schema: {error}"));
        return status(
            400,
            "BadRequest",
            format!("Secret in version \"v1\" cannot be handled as a Secret: {error}"),
            Value::Null,
        );
    }
    // An apply must say what it is; other writes may leave it to the route.
    let said = |key: &str, want: &str| body.get(key).is_some_and(|v| v == want);
    let unsaid = |key: &str| body.get(key).is_none_or(Value::is_null);
    if (apply && !(said("apiVersion", "v1") && said("kind", "Secret")))
        || (!apply
            && !((unsaid("apiVersion") || said("apiVersion", "v1")) && (unsaid("kind") || said("kind", "Secret"))))
    {
        return status(400, "BadRequest", "Object 'Kind' is missing in the body, or apiVersion is not v1", Value::Null);
    }
    let manager = request.query.get("fieldManager").cloned();
    if apply && manager.as_deref().is_none_or(str::is_empty) {
        return status(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            Value::Null,
        );
    }
    let manager = manager.unwrap_or_else(|| {
        request.headers.get("user-agent").and_then(|a| a.split('/').next()).unwrap_or("unknown").to_string()
    });
    let name = match (name, body["metadata"]["name"].as_str()) {
        (Some(url), Some(named)) if url != named => {
            return status(
                400,
                "BadRequest",
                format!("the name of the object ({named}) does not match the name on the URL ({url})"),
                Value::Null,
            );
        }
        (Some(url), _) => url.to_string(),
        (None, Some(named)) => named.to_string(),
        (None, None) => {
            return invalid("", &[("metadata.name".into(), "Required value: name or generateName is required".into())]);
        }
    };
    if let Some(ns) = body["metadata"]["namespace"].as_str()
        && ns != namespace
    {
        return status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request",
            Value::Null,
        );
    }
    if !state.namespaces.contains_key(namespace) {
        return status(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
            json!({"name": namespace, "kind": "namespaces"}),
        );
    }
    if state.race.as_deref() == Some(name.as_str())
        && let Some(secret) = state.namespaces.get_mut(namespace).and_then(|n| n.get_mut(&name))
    {
        // Another writer gets there first.
        state.race = None;
        state.version += 1;
        secret.resource_version = state.version;
        secret.annotations.insert("other.example/touched".into(), "yes".into());
    }
    let existing = state.namespaces[namespace].get(&name).cloned();
    let dry_run = request.query.contains_key("dryRun");
    if verb == "create" && existing.is_some() {
        return status(
            409,
            "AlreadyExists",
            format!("secrets \"{name}\" already exists"),
            json!({"name": name, "kind": "secrets"}),
        );
    }
    if (verb == "update" || merge) && existing.is_none() {
        return not_found(&name);
    }
    if let (Some(version), Some(secret)) = (body["metadata"]["resourceVersion"].as_str(), &existing)
        && version != secret.resource_version.to_string()
    {
        return conflict(&name);
    }
    if verb == "update" && body["metadata"]["resourceVersion"].as_str().is_none() {
        return invalid(
            &name,
            &[("metadata.resourceVersion".into(), "Invalid value: 0x0: must be specified for an update".into())],
        );
    }
    let mut next = existing.clone().unwrap_or_else(|| StoredSecret {
        uid: format!("uid-{name}-{}", state.version + 1),
        created: "2026-01-01T00:00:00Z".into(),
        secret_type: "Opaque".into(),
        ..StoredSecret::default()
    });
    let sent = fields_of(&body);
    if apply {
        let force = request.query.get("force").is_some_and(|f| f == "true");
        // Fields another manager owns with another value conflict unless forced.
        let mut conflicts = Vec::new();
        for (field, value) in &sent {
            let others: Vec<&String> = next
                .managers
                .iter()
                .filter(|(m, (_, owned))| **m != manager && owned.contains(field))
                .map(|(m, _)| m)
                .collect();
            if !others.is_empty() && next.get(field).as_ref() != Some(value) {
                conflicts.push(format!("conflict with \"{}\": {field:?}", others[0]));
            }
        }
        if !conflicts.is_empty() && !force {
            return status(
                409,
                "Conflict",
                format!("Apply failed with {} conflicts: {}", conflicts.len(), conflicts.join(", ")),
                Value::Null,
            );
        }
        let previously: BTreeSet<Field> = next.managers.get(&manager).map(|(_, f)| f.clone()).unwrap_or_default();
        for field in previously.iter().filter(|f| !sent.contains_key(*f)) {
            let shared = next.managers.iter().any(|(m, (_, owned))| *m != manager && owned.contains(field));
            if !shared {
                next.set(field, None);
            }
        }
        for (field, value) in &sent {
            // A forced apply takes a field whose value it changes; the same value is shared.
            if next.get(field).as_ref() != Some(value) {
                for (m, (_, owned)) in next.managers.iter_mut() {
                    if *m != manager {
                        owned.remove(field);
                    }
                }
            }
            next.set(field, Some(value));
        }
        next.managers.insert(manager.clone(), ("Apply".into(), sent.keys().cloned().collect()));
    } else if merge {
        // `null` in a merge patch removes the key (and every manager's claim to it).
        let removed = |v: &Value| v.is_null();
        let mut owned = BTreeSet::new();
        for (field, value) in &sent {
            if removed(value) {
                next.set(field, None);
                for (_, (_, fields)) in next.managers.iter_mut() {
                    fields.remove(field);
                }
            } else {
                next.set(field, Some(value));
                owned.insert(field.clone());
            }
        }
        let entry = next.managers.entry(manager.clone()).or_insert(("Update".into(), BTreeSet::new()));
        entry.1.extend(owned);
    } else {
        // create / update: the object replaces what was there.
        let mut replaced = StoredSecret {
            uid: next.uid.clone(),
            created: next.created.clone(),
            managers: next.managers.clone(),
            secret_type: "Opaque".into(),
            ..StoredSecret::default()
        };
        for (field, value) in &sent {
            replaced.set(field, Some(value));
        }
        for (_, (_, owned)) in replaced.managers.iter_mut() {
            owned.retain(|f| sent.contains_key(f));
        }
        replaced.managers.insert(manager.clone(), ("Update".into(), sent.keys().cloned().collect()));
        next = replaced;
    }
    if let Some(before) = &existing {
        let mut causes = Vec::new();
        if before.secret_type != next.secret_type {
            causes.push(("type".to_string(), format!("Invalid value: \"{}\": field is immutable", next.secret_type)));
        }
        if before.immutable {
            if before.data != next.data {
                causes.push(("data".to_string(), "Forbidden: field is immutable when `immutable` is set".to_string()));
            }
            if !next.immutable {
                causes.push((
                    "immutable".to_string(),
                    "Forbidden: field is immutable when `immutable` is set".to_string(),
                ));
            }
        }
        if !causes.is_empty() {
            return invalid(&name, &causes);
        }
    }
    let causes = validate(&name, &next);
    if !causes.is_empty() {
        return invalid(&name, &causes);
    }
    let created = existing.is_none();
    let changed = existing.as_ref().is_none_or(|before| {
        before.data != next.data
            || before.labels != next.labels
            || before.annotations != next.annotations
            || before.secret_type != next.secret_type
            || before.immutable != next.immutable
    });
    if dry_run {
        return ok(if created { 201 } else { 200 }, render(namespace, &name, &next));
    }
    if changed {
        state.version += 1;
        next.resource_version = state.version;
        state.writes += 1;
    }
    let answer = render(namespace, &name, &next);
    state.namespaces.get_mut(namespace).unwrap().insert(name.clone(), next);
    ok(if created { 201 } else { 200 }, answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_follow_the_label_selector_grammar() {
        let labels: BTreeMap<String, String> =
            [("team".to_string(), "platform".to_string()), ("tier".to_string(), "db".to_string())].into();
        assert!(matches("team=platform", &labels).unwrap());
        assert!(matches("team==platform,tier in (db, cache)", &labels).unwrap());
        assert!(!matches("team!=platform", &labels).unwrap());
        assert!(matches("!absent,tier notin (web)", &labels).unwrap());
        assert!(matches("", &labels).unwrap());
        assert!(matches("team in platform", &labels).is_err());
    }
}
