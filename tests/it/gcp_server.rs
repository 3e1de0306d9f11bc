//! A loopback Google Cloud Secret Manager test server: the REST routes of
//! `secretmanager.v1` that vss and Google's clients use (secrets: create, get, list,
//! patch, delete; versions: add, access, list, get, enable, disable, destroy), stateful
//! and in memory, faithful to the published contract:
//!
//! - every request is checked against Google's discovery document of the API
//!   (`secretmanager.v1.json`, shipped in the `google-api-python-client` wheel; `tests/run`
//!   installs it and exports its path as `VSS_TEST_GCP_DISCOVERY`): an undocumented route
//!   is 404, a query parameter the method does not declare or a body field its schema does
//!   not have (or of the wrong type, an unknown enum value, bytes that are not base64, an
//!   int64 that is not one) is 400 `INVALID_ARGUMENT`, and each is recorded in
//!   [`GcpServer::rejected`];
//! - errors are `{"error": {"code", "message", "status"}}` with the canonical statuses
//!   (404 `NOT_FOUND`, 409 `ALREADY_EXISTS`, 409 `ABORTED` on an etag mismatch, 400
//!   `INVALID_ARGUMENT` on a bad secret id, label or payload, 400 `FAILED_PRECONDITION`
//!   when the latest version is not enabled);
//! - names come back with the project **number** (`projects/1000001/secrets/x`), as the
//!   real API answers; ids are `[A-Za-z0-9_-]{1,255}`, labels follow GCP's rules (keys
//!   `[a-z][a-z0-9_-]{0,62}`, values `[a-z0-9_-]{0,63}`, at most 64), payloads at most
//!   64 KiB, and a payload's `dataCrc32c`, when sent, must match it;
//! - lists are paged by `pageSize` and `pageToken`; [`GcpServer::cap_pages`] makes pages
//!   shorter than asked (the API may return fewer items than requested);
//! - [`GcpServer::race_create`] makes the next create of an id meet a secret someone else
//!   just created (409), as a concurrent writer would.
#![cfg(feature = "gcp")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::loopback::{Request, Response, serve};

/// One version of a secret.
#[derive(Clone, Debug)]
pub struct Version {
    /// `ENABLED`, `DISABLED` or `DESTROYED`.
    pub state: &'static str,
    /// The payload (empty once destroyed).
    pub data: Vec<u8>,
    /// Its CRC32C.
    pub crc32c: u32,
}

/// One secret.
#[derive(Clone, Debug, Default)]
pub struct Secret {
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Its replication, as written.
    pub replication: Value,
    /// Its etag (changes with every update).
    pub etag: u64,
    /// Versions 1, 2, …
    pub versions: Vec<Version>,
}

impl Secret {
    /// The payload of the latest enabled version, as text.
    pub fn latest(&self) -> Option<String> {
        let version = self.versions.iter().rev().find(|v| v.state == "ENABLED")?;
        Some(String::from_utf8_lossy(&version.data).into_owned())
    }
}

#[derive(Default)]
struct State {
    /// project id -> secret id -> secret.
    projects: BTreeMap<String, BTreeMap<String, Secret>>,
    rejected: Vec<String>,
    page_cap: Option<usize>,
    race: Option<String>,
    corrupt: bool,
    writes: u64,
}

/// A running test server.
#[derive(Clone)]
pub struct GcpServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// The number the server gives a project id in the names it answers with.
fn number_of(project: &str, projects: &BTreeMap<String, BTreeMap<String, Secret>>) -> u64 {
    1_000_001 + projects.keys().position(|p| p == project).unwrap_or(0) as u64
}

fn error(code: u16, status: &str, message: impl Into<String>) -> Response {
    Response {
        status: code,
        headers: Vec::new(),
        content_type: "application/json; charset=UTF-8",
        body: json!({"error": {"code": code, "message": message.into(), "status": status}}).to_string(),
    }
}

fn ok(body: Value) -> Response {
    Response {
        status: 200,
        headers: Vec::new(),
        content_type: "application/json; charset=UTF-8",
        body: body.to_string(),
    }
}

/// One documented method: HTTP method, flat path segments, query parameters, request
/// schema.
type Method = (String, Vec<String>, BTreeSet<String>, Option<String>);

/// The discovery document's methods, and its schemas.
struct Contract {
    methods: Vec<Method>,
    schemas: Value,
    global: BTreeSet<String>,
}

impl Contract {
    fn load() -> Contract {
        let path = std::env::var("VSS_TEST_GCP_DISCOVERY").unwrap_or_else(|_| {
            panic!("VSS_TEST_GCP_DISCOVERY is not set: run tests/run (it installs the discovery document)")
        });
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut methods = Vec::new();
        fn walk(resources: &Value, out: &mut Vec<Method>) {
            for resource in resources.as_object().into_iter().flat_map(|r| r.values()) {
                for method in resource["methods"].as_object().into_iter().flat_map(|m| m.values()) {
                    let flat = method["flatPath"].as_str().unwrap_or_default();
                    let segments = flat.split('/').map(str::to_string).collect();
                    let query = method["parameters"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(_, p)| p["location"] == "query")
                        .map(|(name, _)| name.clone())
                        .collect();
                    let request = method["request"]["$ref"].as_str().map(str::to_string);
                    out.push((method["httpMethod"].as_str().unwrap().to_string(), segments, query, request));
                }
                walk(&resource["resources"], out);
            }
        }
        walk(&doc["resources"], &mut methods);
        let global = doc["parameters"].as_object().into_iter().flat_map(|p| p.keys().cloned()).collect();
        Contract { methods, schemas: doc["schemas"].clone(), global }
    }

    /// The documented method of `method path`: its query parameters and request schema.
    fn find(&self, method: &str, path: &str) -> Option<(&BTreeSet<String>, Option<&String>)> {
        let path = path.trim_start_matches('/');
        self.methods.iter().find_map(|(m, template, query, request)| {
            (m == method && matches(template, path)).then_some((query, request.as_ref()))
        })
    }

    /// Why `value` does not fit the schema `name` (at `at`), if it does not.
    fn check(&self, schema: &Value, value: &Value, at: &str) -> Option<String> {
        if let Some(reference) = schema["$ref"].as_str() {
            return self.check(&self.schemas[reference], value, at);
        }
        match (schema["type"].as_str(), value) {
            (_, Value::Null) => None,
            (Some("object"), Value::Object(map)) => {
                if let Some(properties) = schema["properties"].as_object() {
                    for (key, v) in map {
                        let Some(property) = properties.get(key) else {
                            return Some(format!("Invalid JSON payload received. Unknown name \"{key}\" at '{at}'"));
                        };
                        if let Some(why) = self.check(property, v, &format!("{at}.{key}")) {
                            return Some(why);
                        }
                    }
                } else if let Some(items) = schema.get("additionalProperties") {
                    for (key, v) in map {
                        if let Some(why) = self.check(items, v, &format!("{at}[{key}]")) {
                            return Some(why);
                        }
                    }
                }
                None
            }
            (Some("array"), Value::Array(items)) => {
                items.iter().enumerate().find_map(|(i, v)| self.check(&schema["items"], v, &format!("{at}[{i}]")))
            }
            (Some("string"), Value::String(text)) => match schema["format"].as_str() {
                Some("byte") if base64::engine::general_purpose::STANDARD.decode(text).is_err() => {
                    Some(format!("Invalid value at '{at}': not base64"))
                }
                Some("int64" | "uint64") if text.parse::<i128>().is_err() => {
                    Some(format!("Invalid value at '{at}' (TYPE_INT64), \"{text}\""))
                }
                _ => match schema["enum"].as_array() {
                    Some(values) if !values.iter().any(|v| v == text) => {
                        Some(format!("Invalid value at '{at}', \"{text}\""))
                    }
                    _ => None,
                },
            },
            (Some("string"), Value::Number(_)) if matches!(schema["format"].as_str(), Some("int64" | "uint64")) => None,
            (Some("integer" | "number"), Value::Number(_)) | (Some("boolean"), Value::Bool(_)) => None,
            (Some("any") | None, _) => None,
            (Some(kind), other) => Some(format!("Invalid value at '{at}' ({kind}), {other}")),
        }
    }
}

/// Whether `path` fits a flat path template (`v1/projects/{projectsId}/secrets/{secretsId}:addVersion`).
fn matches(template: &[String], path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    parts.len() == template.len()
        && template.iter().zip(&parts).all(|(t, p)| match t.split_once('{') {
            None => t == p,
            Some((before, rest)) => {
                let (_, after) = rest.split_once('}').unwrap_or((rest, ""));
                p.starts_with(before)
                    && p.ends_with(after)
                    && p.len() > before.len() + after.len()
                    && !p[before.len()..p.len() - after.len()].contains(':')
            }
        })
}

fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_labels(labels: &BTreeMap<String, String>) -> Result<(), String> {
    if labels.len() > 64 {
        return Err("a secret has at most 64 labels".into());
    }
    let ok = |s: &str| s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    for (key, value) in labels {
        if key.is_empty() || key.len() > 63 || !key.starts_with(|c: char| c.is_ascii_lowercase()) || !ok(key) {
            return Err(format!("Invalid label key: {key}"));
        }
        if value.len() > 63 || !ok(value) {
            return Err(format!("Invalid label value: {value}"));
        }
    }
    Ok(())
}

fn strings(value: &Value) -> BTreeMap<String, String> {
    value.as_object().into_iter().flatten().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect()
}

fn timestamp(n: u64) -> String {
    format!("2026-01-01T00:{:02}:{:02}Z", (n / 60) % 60, n % 60)
}

impl GcpServer {
    /// Starts a server on a free loopback port.
    pub fn start() -> GcpServer {
        let contract = Arc::new(Contract::load());
        let state: Arc<Mutex<State>> = Arc::default();
        let shared = state.clone();
        let url = serve(move |request| {
            let mut state = shared.lock().unwrap();
            handle(&contract, &mut state, request)
        });
        GcpServer { url, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// The secrets of `project`.
    pub fn secrets(&self, project: &str) -> BTreeMap<String, Secret> {
        self.state().projects.get(project).cloned().unwrap_or_default()
    }

    /// Creates (or changes) a secret as someone else would: a new version with `text`.
    pub fn put(&self, project: &str, id: &str, text: &str, labels: &[(&str, &str)]) {
        let mut state = self.state();
        let secret = state.projects.entry(project.into()).or_default().entry(id.into()).or_default();
        for (k, v) in labels {
            secret.labels.insert(k.to_string(), v.to_string());
        }
        secret.etag += 1;
        secret.versions.push(Version {
            state: "ENABLED",
            data: text.as_bytes().to_vec(),
            crc32c: crc32c::crc32c(text.as_bytes()),
        });
    }

    /// Sets a label of a secret as someone else would, leaving its versions alone.
    pub fn relabel(&self, project: &str, id: &str, key: &str, value: &str) {
        let mut state = self.state();
        let secret = state.projects.get_mut(project).and_then(|p| p.get_mut(id)).expect("a secret");
        secret.labels.insert(key.to_string(), value.to_string());
        secret.etag += 1;
    }

    /// Requests refused as not fitting the published contract.
    pub fn rejected(&self) -> Vec<String> {
        self.state().rejected.clone()
    }

    /// Accepted writes (creates, new versions, patches, deletes, version changes).
    pub fn writes(&self) -> u64 {
        self.state().writes
    }

    /// Answers lists with pages of at most `n` items, whatever `pageSize` asks.
    pub fn cap_pages(&self, n: usize) {
        self.state().page_cap = Some(n);
    }

    /// Answers accesses with a payload whose `dataCrc32c` does not match it (corrupted on
    /// the way).
    pub fn corrupt_payloads(&self) {
        self.state().corrupt = true;
    }

    /// Answers accesses with intact payloads again.
    pub fn intact_payloads(&self) {
        self.state().corrupt = false;
    }

    /// The next create of secret `id` meets one someone else just created.
    pub fn race_create(&self, id: &str) {
        self.state().race = Some(id.to_string());
    }
}

fn handle(contract: &Contract, state: &mut State, request: Request) -> Response {
    let Some((query, schema)) = contract.find(&request.method, &request.path) else {
        let why = format!("{} {}: no such method in secretmanager.v1", request.method, request.path);
        state.rejected.push(why.clone());
        return error(404, "NOT_FOUND", why);
    };
    for name in request.query.keys() {
        // System parameters may be written with a `$` (`$alt=json;enum-encoding=int`).
        let system = name.strip_prefix('$').unwrap_or(name);
        if !query.contains(name) && !contract.global.contains(name) && !contract.global.contains(system) {
            let why =
                format!("{} {}: Invalid JSON payload received. Unknown name \"{name}\"", request.method, request.path);
            state.rejected.push(why.clone());
            return error(400, "INVALID_ARGUMENT", why);
        }
    }
    let body: Value = if request.body.trim().is_empty() {
        Value::Null
    } else {
        match serde_json::from_str(&request.body) {
            Ok(v) => v,
            Err(e) => {
                state.rejected.push(format!("{}: not JSON: {e}", request.path));
                return error(400, "INVALID_ARGUMENT", format!("Invalid JSON payload received. {e}"));
            }
        }
    };
    if let Some(schema) = schema
        && let Some(why) = contract.check(&json!({"$ref": schema}), &body, "")
    {
        state.rejected.push(format!("{} {}: {why}", request.method, request.path));
        return error(400, "INVALID_ARGUMENT", why);
    }
    route(state, &request, &body)
}

fn route(state: &mut State, request: &Request, body: &Value) -> Response {
    let path = request.path.trim_start_matches("/v1/");
    let (path, verb) = match path.rsplit_once(':') {
        Some((p, v)) if !v.contains('/') => (p, Some(v)),
        _ => (path, None),
    };
    let parts: Vec<&str> = path.split('/').collect();
    // A project is named by its id or, as in the names the API answers with, its number.
    let named = parts.get(1).copied().unwrap_or_default().to_string();
    let project = named
        .parse::<u64>()
        .ok()
        .and_then(|n| state.projects.keys().find(|p| number_of(p, &state.projects) == n).cloned())
        .unwrap_or(named);
    let number = number_of(&project, &state.projects);
    let secret_name = |id: &str| format!("projects/{number}/secrets/{id}");
    let render = |id: &str, s: &Secret| {
        json!({
            "name": secret_name(id),
            "replication": s.replication,
            "createTime": timestamp(1),
            "labels": s.labels,
            "annotations": s.annotations,
            "etag": format!("\"{}\"", s.etag),
        })
    };
    let version_json = |id: &str, n: usize, v: &Version| json!({"name": format!("{}/versions/{n}", secret_name(id)), "createTime": timestamp(n as u64), "state": v.state, "etag": format!("\"{n}\"")});
    let page = |items: Vec<Value>, key: &str, cap: Option<usize>| {
        let size = request.query.get("pageSize").and_then(|s| s.parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(25);
        let size = cap.map_or(size, |c| size.min(c));
        let start = request.query.get("pageToken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
        let end = (start + size).min(items.len());
        let mut out = json!({ key: items[start.min(end)..end].to_vec(), "totalSize": items.len() });
        if end < items.len() {
            out["nextPageToken"] = json!(end.to_string());
        }
        ok(out)
    };
    match (request.method.as_str(), &parts[..], verb) {
        ("GET", ["projects", _, "secrets"], None) => {
            let secrets = state.projects.get(&project).cloned().unwrap_or_default();
            page(secrets.iter().map(|(id, s)| render(id, s)).collect(), "secrets", state.page_cap)
        }
        ("POST", ["projects", _, "secrets"], None) => {
            let id = request.query.get("secretId").cloned().unwrap_or_default();
            if !valid_id(&id) {
                return error(
                    400,
                    "INVALID_ARGUMENT",
                    format!("Secret ID [{id}] is invalid: it must match [a-zA-Z0-9_-]{{1,255}}"),
                );
            }
            if body["replication"].is_null() {
                return error(400, "INVALID_ARGUMENT", "Secret.replication is required");
            }
            let labels = strings(&body["labels"]);
            if let Err(why) = valid_labels(&labels) {
                return error(400, "INVALID_ARGUMENT", why);
            }
            if state.race.as_deref() == Some(id.as_str()) {
                state.race = None;
                let other = Secret {
                    replication: json!({"automatic": {}}),
                    etag: 1,
                    versions: vec![Version {
                        state: "ENABLED",
                        data: b"{\"someone\":\"else\"}".to_vec(),
                        crc32c: crc32c::crc32c(b"{\"someone\":\"else\"}"),
                    }],
                    ..Secret::default()
                };
                state.projects.entry(project.clone()).or_default().insert(id.clone(), other);
            }
            let secrets = state.projects.entry(project.clone()).or_default();
            if secrets.contains_key(&id) {
                return error(409, "ALREADY_EXISTS", format!("Secret [{}] already exists.", secret_name(&id)));
            }
            let secret = Secret {
                labels,
                annotations: strings(&body["annotations"]),
                replication: body["replication"].clone(),
                etag: 1,
                versions: Vec::new(),
            };
            let out = render(&id, &secret);
            secrets.insert(id, secret);
            state.writes += 1;
            ok(out)
        }
        (method, ["projects", _, "secrets", id], verb) => {
            let id = id.to_string();
            let Some(secret) = state.projects.get_mut(&project).and_then(|s| s.get_mut(&id)) else {
                return error(404, "NOT_FOUND", format!("Secret [{}] not found.", secret_name(&id)));
            };
            match (method, verb) {
                ("GET", None) => ok(render(&id, secret)),
                ("PATCH", None) => {
                    let mask = request.query.get("updateMask").cloned().unwrap_or_default();
                    for field in mask.split(',').filter(|f| !f.is_empty()) {
                        match field {
                            "labels" => {
                                let labels = strings(&body["labels"]);
                                if let Err(why) = valid_labels(&labels) {
                                    return error(400, "INVALID_ARGUMENT", why);
                                }
                                secret.labels = labels;
                            }
                            "annotations" => secret.annotations = strings(&body["annotations"]),
                            other => {
                                return error(
                                    400,
                                    "INVALID_ARGUMENT",
                                    format!("The update_mask field {other} is not supported"),
                                );
                            }
                        }
                    }
                    secret.etag += 1;
                    let out = render(&id, secret);
                    state.writes += 1;
                    ok(out)
                }
                ("DELETE", None) => {
                    if let Some(etag) = request.query.get("etag").filter(|e| !e.is_empty())
                        && etag.trim_matches('"') != secret.etag.to_string()
                    {
                        return error(409, "ABORTED", "etag mismatch");
                    }
                    state.projects.get_mut(&project).unwrap().remove(&id);
                    state.writes += 1;
                    ok(json!({}))
                }
                ("POST", Some("addVersion")) => {
                    let data = body["payload"]["data"]
                        .as_str()
                        .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                        .unwrap_or_default();
                    if data.len() > 65_536 {
                        return error(400, "INVALID_ARGUMENT", "Secret Payload cannot be larger than 64KiB.");
                    }
                    let crc = crc32c::crc32c(&data);
                    let sent = &body["payload"]["dataCrc32c"];
                    let sent = sent.as_str().and_then(|s| s.parse::<i64>().ok()).or_else(|| sent.as_i64());
                    if sent.is_some_and(|s| s != i64::from(crc)) {
                        return error(
                            400,
                            "INVALID_ARGUMENT",
                            "Checksum mismatch: the data does not match its data_crc32c",
                        );
                    }
                    secret.versions.push(Version { state: "ENABLED", data, crc32c: crc });
                    let n = secret.versions.len();
                    let out = version_json(&id, n, &secret.versions[n - 1]);
                    state.writes += 1;
                    ok(out)
                }
                _ => error(404, "NOT_FOUND", "no such method"),
            }
        }
        ("GET", ["projects", _, "secrets", id, "versions"], None) => {
            let id = id.to_string();
            let Some(secret) = state.projects.get(&project).and_then(|s| s.get(&id)) else {
                return error(404, "NOT_FOUND", format!("Secret [{}] not found.", secret_name(&id)));
            };
            // Newest first, as the API lists them.
            let items = secret.versions.iter().enumerate().rev().map(|(i, v)| version_json(&id, i + 1, v)).collect();
            page(items, "versions", state.page_cap)
        }
        (method, ["projects", _, "secrets", id, "versions", which], verb) => {
            let id = id.to_string();
            let corrupt = state.corrupt;
            let Some(secret) = state.projects.get_mut(&project).and_then(|s| s.get_mut(&id)) else {
                return error(404, "NOT_FOUND", format!("Secret [{}] not found or has no versions.", secret_name(&id)));
            };
            let index = if *which == "latest" {
                if secret.versions.is_empty() {
                    return error(
                        404,
                        "NOT_FOUND",
                        format!("Secret [{}] not found or has no versions.", secret_name(&id)),
                    );
                }
                secret.versions.len() - 1
            } else {
                match which.parse::<usize>().ok().filter(|n| *n >= 1 && *n <= secret.versions.len()) {
                    Some(n) => n - 1,
                    None => {
                        return error(
                            404,
                            "NOT_FOUND",
                            format!("Secret Version [{}/versions/{which}] not found.", secret_name(&id)),
                        );
                    }
                }
            };
            let name = format!("{}/versions/{}", secret_name(&id), index + 1);
            match (method, verb) {
                ("GET", Some("access")) => {
                    let version = &secret.versions[index];
                    if version.state != "ENABLED" {
                        return error(
                            400,
                            "FAILED_PRECONDITION",
                            format!("Secret Version [{name}] is in {} state.", version.state),
                        );
                    }
                    let crc = if corrupt { version.crc32c ^ 1 } else { version.crc32c };
                    let data = base64::engine::general_purpose::STANDARD.encode(&version.data);
                    ok(json!({"name": name, "payload": {"data": data, "dataCrc32c": crc.to_string()}}))
                }
                ("GET", None) => ok(version_json(&id, index + 1, &secret.versions[index])),
                ("POST", Some(change @ ("enable" | "disable" | "destroy"))) => {
                    let version = &mut secret.versions[index];
                    if version.state == "DESTROYED" {
                        return error(
                            400,
                            "FAILED_PRECONDITION",
                            format!("Secret Version [{name}] is in DESTROYED state."),
                        );
                    }
                    version.state = match change {
                        "enable" => "ENABLED",
                        "disable" => "DISABLED",
                        _ => "DESTROYED",
                    };
                    if version.state == "DESTROYED" {
                        version.data.clear();
                    }
                    let out = version_json(&id, index + 1, version);
                    state.writes += 1;
                    ok(out)
                }
                _ => error(404, "NOT_FOUND", "no such method"),
            }
        }
        _ => error(404, "NOT_FOUND", format!("{} {} is not served by the test server", request.method, request.path)),
    }
}
