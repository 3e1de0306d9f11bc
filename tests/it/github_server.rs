//! A loopback GitHub test server: the REST routes vss uses for Actions, Dependabot and
//! Codespaces secrets (repository, environment, organization) and Actions variables,
//! stateful and in memory. It is test code, faithful to GitHub's documented contract:
//!
//! - a real X25519 key pair per location; `PUT …/secrets/{name}` with `encrypted_value` and
//!   `key_id` answers 201 (created) or 204 (updated) and **opens the sealed box**, so tests
//!   assert plaintexts; 422 on an unknown key id, a value that does not open, a bad name
//!   (`[A-Za-z0-9_]`, no leading digit, no `GITHUB_` prefix) or a value over 48 KB;
//! - lists paged by `per_page` (default 30, at most 100) and `page`, with `Link` headers;
//! - `Authorization: Bearer` checked (401 `Bad credentials` otherwise); unknown
//!   repositories, environments and organizations are 404 `Not Found`;
//! - `x-ratelimit-*` headers on every answer, a primary limit that answers 403 once spent,
//!   and a switch for secondary limits (403 with `retry-after`);
//! - every request is checked against GitHub's published OpenAPI description of the
//!   operation (`tests/github/openapi.json`, cut from npm `@octokit/openapi` by
//!   `tests/github/openapi-subset.py`): an undocumented route is 404, a parameter or body
//!   the schema refuses is 422, and either is recorded in [`GithubServer::rejected`]; the
//!   server's own answers are checked against the documented response schemas too, so a
//!   test server that drifts from GitHub fails the tests that assert `rejected` is empty.
//!
//! `updated_at` comes from a logical clock that moves one second per write, so a change
//! made "behind vss's back" is always later than vss's own write.
#![cfg(feature = "github")]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::loopback::{Request, Response, serve};

const DOCS: &str = "https://docs.github.com/rest";

/// One stored secret.
#[derive(Clone, Debug)]
pub struct Secret {
    /// The decrypted value.
    pub plaintext: String,
    /// Creation time.
    pub created_at: String,
    /// Last update.
    pub updated_at: String,
    /// Organization secrets: `all`, `private` or `selected`.
    pub visibility: Option<String>,
    /// Organization secrets: selected repository ids.
    pub selected: Vec<u64>,
}

/// The secrets of one location, with its key pair.
struct Location {
    key: crypto_box::SecretKey,
    key_id: String,
    secrets: BTreeMap<String, Secret>,
    /// The `encrypted_value` of the last PUT.
    last_sealed: Option<String>,
}

impl Location {
    /// A location with a fresh key pair and no secrets.
    fn new() -> Self {
        let key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        Location { key, key_id: format!("{:x}", rand_id()), secrets: BTreeMap::new(), last_sealed: None }
    }
}

/// An environment's protection rules, as `PUT …/environments/{name}` sets them.
#[derive(Clone, Debug, Default)]
pub struct Environment {
    /// Its id.
    pub id: u64,
    /// Minutes.
    pub wait_timer: u64,
    /// Whether self-review is prevented.
    pub prevent_self_review: bool,
    /// (`User` or `Team`, id), as given.
    pub reviewers: Vec<(String, u64)>,
    /// (`protected_branches`, `custom_branch_policies`), or `None`: every branch.
    pub policy: Option<(bool, bool)>,
    /// Branch policies: id -> (pattern, `branch` or `tag`).
    pub branch_policies: BTreeMap<u64, (String, String)>,
}

/// Something that was sent to `POST /repos/{owner}/{repo}/dispatches`.
#[derive(Clone, Debug)]
pub struct Dispatch {
    /// `owner/name` of the repository it was sent to.
    pub repo: String,
    /// `event_type`.
    pub event_type: String,
    /// `client_payload`.
    pub payload: Value,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, u64>,
    environments: BTreeMap<(String, String), Environment>,
    /// Users: login -> id.
    users: BTreeMap<String, u64>,
    /// Teams: (org, slug) -> id.
    teams: BTreeMap<(String, String), u64>,
    dispatches: Vec<Dispatch>,
    /// Called (outside the lock) with each dispatch, as the receiving workflow would run.
    on_dispatch: Option<Arc<dyn Fn(Dispatch) + Send + Sync>>,
    orgs: BTreeSet<String>,
    /// Secrets collection path (`/repos/o/r/actions/secrets`) -> location.
    locations: BTreeMap<String, Location>,
    /// Variables collection path -> name -> value.
    /// Variables collection path -> name -> the variable as GitHub returns it.
    variables: BTreeMap<String, BTreeMap<String, Value>>,
    clock: u64,
    /// Tokens accepted: the server's own, and installation tokens it issued.
    tokens: BTreeSet<String>,
    /// GitHub Apps: app id -> (installation id, the App's public key, PKCS#1 DER).
    apps: BTreeMap<String, (u64, Vec<u8>)>,
    remaining: i64,
    /// Secret names whose PUTs fail (500), as a failing server would.
    failing: BTreeSet<String>,
    /// Seconds an installation token lives (GitHub: an hour).
    token_lifetime: u64,
    secondary: u32,
    writes: u64,
    rejected: Vec<String>,
}

/// The server and its state.
#[derive(Clone)]
pub struct GithubServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

fn error(status: u16, message: &str) -> Response {
    let body = json!({"message": message, "documentation_url": DOCS, "status": status.to_string()});
    Response { status, headers: Vec::new(), content_type: "application/json; charset=utf-8", body: body.to_string() }
}

fn ok(status: u16, body: Value) -> Response {
    let body = if body.is_null() { String::new() } else { body.to_string() };
    Response { status, headers: Vec::new(), content_type: "application/json; charset=utf-8", body }
}

fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit()
        && !name.to_ascii_uppercase().starts_with("GITHUB_")
}

/// The operations vss calls, from GitHub's published description (`tests/github/openapi.json`,
/// cut by `tests/github/openapi-subset.py`): path template -> method -> operation.
static SPEC: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    serde_json::from_str(include_str!("../github/openapi.json")).expect("the vendored description parses")
});

/// The description's operation for a request: its path template, the operation, and the
/// path parameters. The template with the most literal segments wins (`public-key` over
/// `{secret_name}`).
fn operation(method: &str, path: &str) -> Option<(&'static str, &'static Value, BTreeMap<String, String>)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, &'static str, &'static Value, BTreeMap<String, String>)> = None;
    for (template, operations) in SPEC["paths"].as_object()? {
        let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut params = BTreeMap::new();
        let mut literal = 0;
        let fits = parts.iter().zip(&segments).all(|(part, segment)| match part.strip_prefix('{') {
            Some(name) => {
                params.insert(name.trim_end_matches('}').to_string(), segment.to_string());
                !segment.is_empty()
            }
            None => {
                literal += 1;
                part == segment
            }
        });
        let Some(op) = operations.get(method.to_ascii_lowercase()) else {
            continue;
        };
        if fits && best.as_ref().is_none_or(|(n, ..)| literal > *n) {
            best = Some((literal, template.as_str(), op, params));
        }
    }
    best.map(|(_, template, op, params)| (template, op, params))
}

/// What is wrong with `instance` under `schema`, if anything.
fn violations(schema: &Value, instance: &Value) -> Option<String> {
    let validator = jsonschema::validator_for(schema).expect("the vendored schemas compile");
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Checks a request against its operation: a documented route, the parameters' schemas
/// (no undocumented query parameter), and the JSON body's schema. Returns the operation.
fn check_request(request: &Request) -> Result<&'static Value, Response> {
    let Some((template, op, params)) = operation(&request.method, &request.path) else {
        return Err(error(404, "Not Found"));
    };
    let invalid = |why: String| error(422, &format!("Invalid request.\n\n{why} ({} {template})", request.method));
    for param in op["parameters"].as_array().into_iter().flatten() {
        let name = param["name"].as_str().unwrap_or_default();
        let value = match param["in"].as_str() {
            Some("path") => params.get(name),
            Some("query") => request.query.get(name),
            _ => continue,
        };
        let Some(value) = value else {
            if param["required"] == json!(true) {
                return Err(invalid(format!("`{name}` is required")));
            }
            continue;
        };
        let typed = match param["schema"]["type"].as_str() {
            Some("integer") => value.parse::<i64>().map(Value::from).unwrap_or(json!(value)),
            _ => json!(value),
        };
        if let Some(why) = violations(&param["schema"], &typed) {
            return Err(invalid(format!("`{name}`: {why}")));
        }
    }
    let documented: BTreeSet<&str> =
        op["parameters"].as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    if let Some(unknown) = request.query.keys().find(|k| !documented.contains(k.as_str())) {
        return Err(invalid(format!("`{unknown}` is not a parameter of this operation")));
    }
    if let Some(body) = op.get("requestBody").filter(|b| b["required"] == json!(true) || !request.body.is_empty()) {
        let Ok(value) = serde_json::from_str::<Value>(&request.body) else {
            return Err(error(400, "Problems parsing JSON"));
        };
        if let Some(why) = violations(&body["schema"], &value) {
            return Err(invalid(why));
        }
    }
    Ok(op)
}

/// A minimal instance of `schema`: required properties only, placeholders for scalars.
/// The test server answers with it where GitHub's answer carries more than vss reads.
fn sample(schema: &Value) -> Value {
    if let Some(first) = schema.get("anyOf").or_else(|| schema.get("oneOf")).and_then(|v| v.get(0)) {
        return sample(first);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut out = serde_json::Map::new();
        for part in all {
            if let Value::Object(map) = sample(part) {
                out.extend(map);
            }
        }
        return Value::Object(out);
    }
    if let Some(first) = schema.get("enum").and_then(|v| v.get(0)) {
        return first.clone();
    }
    let kind = match &schema["type"] {
        Value::Array(kinds) => kinds.iter().find(|k| *k != "null").and_then(Value::as_str).unwrap_or("null"),
        Value::String(kind) => kind.as_str(),
        _ => "object",
    };
    match kind {
        "object" => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                out.insert(name.to_string(), sample(&schema["properties"][name]));
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "integer" | "number" => json!(1),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => match schema["format"].as_str() {
            Some("date-time") => json!("2026-01-01T00:00:00Z"),
            Some("uri") => json!("https://github.invalid/x"),
            _ => json!("x"),
        },
    }
}

impl GithubServer {
    /// Starts a server accepting `token`.
    pub fn start(token: &str) -> Self {
        let tokens = BTreeSet::from([token.to_string()]);
        let state = Arc::new(Mutex::new(State {
            remaining: 5000,
            clock: 1_800_000_000,
            tokens,
            token_lifetime: 3600,
            ..State::default()
        }));
        let s = state.clone();
        let url = serve(move |request| handle(&s, request));
        GithubServer { url, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a repository (`owner/name`); its id is returned.
    pub fn add_repo(&self, full_name: &str) -> u64 {
        let mut state = self.state();
        let id = 1000 + state.repos.len() as u64;
        *state.repos.entry(full_name.to_string()).or_insert(id)
    }

    /// Registers a GitHub App installation and the App's public key (PKCS#1 DER).
    pub fn add_app(&self, app_id: &str, installation_id: u64, public_key: &[u8]) {
        self.state().apps.insert(app_id.to_string(), (installation_id, public_key.to_vec()));
    }

    /// Writes of `name` fail with 500 from now on.
    pub fn fail_writes_of(&self, name: &str) {
        self.state().failing.insert(name.to_string());
    }

    /// Installation tokens issued from now on live `seconds`.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.state().token_lifetime = seconds;
    }

    /// Installation tokens issued so far.
    pub fn issued(&self) -> usize {
        self.state().tokens.len() - 1
    }

    /// Adds an environment to a repository.
    pub fn add_environment(&self, repo: &str, environment: &str) {
        let id = rand_id();
        let env = Environment { id, ..Environment::default() };
        self.state().environments.entry((repo.to_string(), environment.to_string())).or_insert(env);
    }

    /// An environment's protection rules, if it exists.
    pub fn environment(&self, repo: &str, environment: &str) -> Option<Environment> {
        self.state().environments.get(&(repo.to_string(), environment.to_string())).cloned()
    }

    /// Adds a user; its id is returned.
    pub fn add_user(&self, login: &str) -> u64 {
        let mut state = self.state();
        let id = 500 + state.users.len() as u64;
        *state.users.entry(login.to_string()).or_insert(id)
    }

    /// Adds a team to an organization; its id is returned.
    pub fn add_team(&self, org: &str, slug: &str) -> u64 {
        let mut state = self.state();
        let id = 700 + state.teams.len() as u64;
        *state.teams.entry((org.to_string(), slug.to_string())).or_insert(id)
    }

    /// Every repository dispatch received so far.
    pub fn dispatches(&self) -> Vec<Dispatch> {
        self.state().dispatches.clone()
    }

    /// Runs `workflow` on a thread for each repository dispatch received from now on, as
    /// the receiving repository's workflow would run.
    pub fn on_dispatch(&self, workflow: impl Fn(Dispatch) + Send + Sync + 'static) {
        self.state().on_dispatch = Some(Arc::new(workflow));
    }

    /// Adds an organization.
    pub fn add_org(&self, org: &str) {
        self.state().orgs.insert(org.to_string());
    }

    /// The secrets at a collection path (`/repos/acme/app/actions/secrets`).
    pub fn secrets(&self, collection: &str) -> BTreeMap<String, Secret> {
        self.state().locations.get(collection).map(|l| l.secrets.clone()).unwrap_or_default()
    }

    /// An Actions variable's value.
    pub fn variable(&self, collection: &str, name: &str) -> Option<String> {
        let state = self.state();
        state.variables.get(collection).and_then(|v| v.get(name)).and_then(|v| v["value"].as_str().map(str::to_string))
    }

    /// The private key of a location and the last sealed value PUT there (base64), as
    /// received: for checking the sealing against libsodium.
    pub fn last_sealed(&self, collection: &str) -> Option<(Vec<u8>, String)> {
        let state = self.state();
        let location = state.locations.get(collection)?;
        Some((location.key.to_bytes().to_vec(), location.last_sealed.clone()?))
    }

    /// Creates or changes a secret as someone else would (through GitHub, not vss).
    pub fn put_secret(&self, collection: &str, name: &str, plaintext: &str) {
        let mut state = self.state();
        state.clock += 1;
        let now = timestamp(state.clock);
        let location = state.locations.entry(collection.to_string()).or_insert_with(Location::new);
        let secret = Secret {
            plaintext: plaintext.to_string(),
            created_at: now.clone(),
            updated_at: now,
            visibility: None,
            selected: Vec::new(),
        };
        location.secrets.insert(name.to_string(), secret);
    }

    /// Changes a secret as someone else would (through GitHub, not vss).
    pub fn overwrite(&self, collection: &str, name: &str, plaintext: &str) {
        let mut state = self.state();
        state.clock += 1;
        let now = timestamp(state.clock);
        let secret = state.locations.get_mut(collection).and_then(|l| l.secrets.get_mut(name)).expect("a secret");
        secret.plaintext = plaintext.to_string();
        secret.updated_at = now;
    }

    /// How many writes (PUT, POST, PATCH, DELETE) were accepted.
    pub fn writes(&self) -> u64 {
        self.state().writes
    }

    /// Requests refused as the real API would refuse them (should stay empty).
    pub fn rejected(&self) -> Vec<String> {
        self.state().rejected.clone()
    }

    /// Sets the calls left in the primary rate limit.
    pub fn set_remaining(&self, remaining: i64) {
        self.state().remaining = remaining;
    }

    /// The next `count` writes hit a secondary rate limit.
    pub fn secondary_limit(&self, count: u32) {
        self.state().secondary = count;
    }
}

fn timestamp(clock: u64) -> String {
    vss::time::timestamp(clock as i64)
}

/// Pages `items` by `per_page`/`page`, with the `Link` header.
fn page(request: &Request, url_path: &str, items: Vec<Value>) -> Result<(Vec<Value>, Option<String>), Response> {
    let per_page: usize =
        request.query.get("per_page").map_or(Ok(30), |v| v.parse()).map_err(|_| error(422, "Invalid request."))?;
    let page: usize =
        request.query.get("page").map_or(Ok(1), |v| v.parse()).map_err(|_| error(422, "Invalid request."))?;
    if !(1..=100).contains(&per_page) || page == 0 {
        return Err(error(422, "Invalid request.\n\nper_page must be between 1 and 100."));
    }
    let total = items.len();
    let shown: Vec<Value> = items.into_iter().skip((page - 1) * per_page).take(per_page).collect();
    let last = total.div_ceil(per_page).max(1);
    let link = (page < last).then(|| {
        format!(
            "<{url_path}?per_page={per_page}&page={}>; rel=\"next\", <{url_path}?per_page={per_page}&page={last}>; rel=\"last\"",
            page + 1
        )
    });
    Ok((shown, link))
}

fn handle(state: &Mutex<State>, request: Request) -> Response {
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let (op, mut response) = match check_request(&request) {
        Ok(op) => (Some(op), route(&mut state, &request)),
        Err(_) if !authorized(&state.tokens, &request) => (None, error(401, "Bad credentials")),
        Err(refused) => (None, refused),
    };
    // The test server's own answers are held to the description too.
    if let Some(op) = op
        && let Some(schema) = op["responses"].get(response.status.to_string()).filter(|s| !s.is_null())
    {
        let body: Value = serde_json::from_str(&response.body).unwrap_or(Value::Null);
        if let Some(why) = violations(schema, &body) {
            state.rejected.push(format!("the test server's answer to {} {}: {why}", request.method, request.path));
        }
    }
    // The primary limit resets within the hour, as GitHub's does.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let reset = (now - now % 3600 + 3600).to_string();
    let remaining = state.remaining.max(0).to_string();
    response.headers.extend([
        ("x-ratelimit-limit".to_string(), "5000".to_string()),
        ("x-ratelimit-used".to_string(), (5000 - state.remaining.clamp(0, 5000)).to_string()),
        ("x-ratelimit-remaining".to_string(), remaining),
        ("x-ratelimit-reset".to_string(), reset),
        ("x-ratelimit-resource".to_string(), "core".to_string()),
        ("x-github-api-version-selected".to_string(), "2022-11-28".to_string()),
    ]);
    if response.status == 422 || response.status == 400 {
        state.rejected.push(format!("{} {}: {}", request.method, request.path, response.body));
    }
    response
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers.get("authorization")?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("token "))
}

fn authorized(tokens: &BTreeSet<String>, request: &Request) -> bool {
    bearer(request).is_some_and(|t| tokens.contains(t))
}

/// `POST /app/installations/{id}/access_tokens`: the JWT must be RS256, signed by the App's
/// key, issued by the App, and not expired.
fn access_token(state: &mut State, request: &Request, installation: &str) -> Response {
    let refused = || error(401, "A JSON web token could not be decoded");
    let Some(jwt) = bearer(request) else { return refused() };
    let parts: Vec<&str> = jwt.split('.').collect();
    let decode = |p: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).ok();
    let (Some(header), Some(claims), Some(signature)) = (
        parts.first().and_then(|p| decode(p)),
        parts.get(1).and_then(|p| decode(p)),
        parts.get(2).and_then(|p| decode(p)),
    ) else {
        return refused();
    };
    let header: Value = serde_json::from_slice(&header).unwrap_or(Value::Null);
    let claims: Value = serde_json::from_slice(&claims).unwrap_or(Value::Null);
    if header["alg"] != "RS256" || parts.len() != 3 {
        return refused();
    }
    let Some((app_installation, key)) = claims["iss"].as_str().and_then(|iss| state.apps.get(iss)) else {
        return error(401, "'Issuer' claim ('iss') must be an Integer");
    };
    let signed = format!("{}.{}", parts[0], parts[1]);
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, key);
    if public.verify(signed.as_bytes(), &signature).is_err() {
        return refused();
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (iat, exp) = (claims["iat"].as_i64().unwrap_or(i64::MAX), claims["exp"].as_i64().unwrap_or(0));
    if exp <= now || iat > now + 60 || exp - iat > 600 {
        return error(401, "'Expiration time' claim ('exp') is too far in the future");
    }
    if installation != app_installation.to_string() {
        return error(404, "Not Found");
    }
    let token = format!("ghs_installation_{}", state.tokens.len());
    state.tokens.insert(token.clone());
    ok(201, json!({"token": token, "expires_at": timestamp(now as u64 + state.token_lifetime)}))
}

fn route(state: &mut State, request: &Request) -> Response {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    if let ("POST", ["app", "installations", installation, "access_tokens"]) =
        (request.method.as_str(), segments.as_slice())
    {
        return access_token(state, request, installation);
    }
    if !authorized(&state.tokens, request) {
        return error(401, "Bad credentials");
    }
    if state.remaining <= 0 {
        return error(403, "API rate limit exceeded for user ID 1.");
    }
    state.remaining -= 1;
    let writes = matches!(request.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE");
    if writes && state.secondary > 0 {
        state.secondary -= 1;
        let mut response =
            error(403, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.");
        response.headers.push(("retry-after".into(), "1".into()));
        return response;
    }
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    // Where the location is, and whether it exists.
    let (owner_kind, rest): (Option<bool>, &[&str]) = match segments.as_slice() {
        ["repos", o, r, rest @ ..] => {
            let full = format!("{o}/{r}");
            if !state.repos.contains_key(&full) {
                return error(404, "Not Found");
            }
            if let ["environments", env, more @ ..] = rest
                && !(request.method == "PUT" && more.is_empty())
                && !state.environments.contains_key(&(full.clone(), decode(env)))
            {
                return error(404, "Not Found");
            }
            (Some(false), rest)
        }
        ["orgs", org, rest @ ..] => {
            if !state.orgs.contains(*org) {
                return error(404, "Not Found");
            }
            (Some(true), rest)
        }
        _ => (None, &[]),
    };
    let org = owner_kind == Some(true);
    match (request.method.as_str(), segments.as_slice(), rest) {
        ("GET", ["repos", o, r], _) => {
            let full = format!("{o}/{r}");
            let op = operation("GET", &request.path).expect("documented").1;
            let mut repo = sample(&op["responses"]["200"]);
            repo["id"] = json!(state.repos[&full]);
            repo["name"] = json!(r);
            repo["full_name"] = json!(full);
            ok(200, repo)
        }
        (method, _, rest) if rest.contains(&"secrets") => secrets(state, request, method, org),
        ("POST", ["repos", o, r, "dispatches"], _) => {
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            let dispatch = Dispatch {
                repo: format!("{o}/{r}"),
                event_type: body["event_type"].as_str().unwrap_or_default().to_string(),
                payload: body.get("client_payload").cloned().unwrap_or(json!({})),
            };
            state.dispatches.push(dispatch.clone());
            if let Some(workflow) = state.on_dispatch.clone() {
                std::thread::spawn(move || workflow(dispatch));
            }
            ok(204, Value::Null)
        }
        ("GET", ["users", login], _) => match state.users.get(*login) {
            Some(id) => {
                let op = operation("GET", &request.path).expect("documented").1;
                let mut user = sample(&op["responses"]["200"]);
                user["id"] = json!(id);
                user["login"] = json!(login);
                user["type"] = json!("User");
                ok(200, user)
            }
            None => error(404, "Not Found"),
        },
        ("GET", ["orgs", org, "teams", slug], _) => match state.teams.get(&(org.to_string(), slug.to_string())) {
            Some(id) => {
                let op = operation("GET", &request.path).expect("documented").1;
                let mut team = sample(&op["responses"]["200"]);
                team["id"] = json!(id);
                team["slug"] = json!(slug);
                team["name"] = json!(slug);
                ok(200, team)
            }
            None => error(404, "Not Found"),
        },
        (method, _, rest) if rest.contains(&"variables") => variables(state, request, method),
        (_, ["repos", o, r, "environments", ..], _) => environments(state, request, &format!("{o}/{r}")),
        _ => error(404, "Not Found"),
    }
}

/// The collection path (up to `secrets`/`variables`) and what follows it.
fn split<'a>(path: &'a str, word: &str) -> (String, Vec<&'a str>) {
    let segments: Vec<&str> = path.split('/').collect();
    let at = segments.iter().position(|s| *s == word).expect("routed on it");
    (segments[..=at].join("/"), segments[at + 1..].to_vec())
}

fn secrets(state: &mut State, request: &Request, method: &str, org: bool) -> Response {
    let (collection, rest) = split(&request.path, "secrets");
    let scope_ok = collection.ends_with("/actions/secrets")
        || collection.ends_with("/dependabot/secrets")
        || collection.ends_with("/codespaces/secrets")
        || collection.contains("/environments/");
    if !scope_ok {
        return error(404, "Not Found");
    }
    let location = state.locations.entry(collection.clone()).or_insert_with(Location::new);
    let org_item = |name: &str, secret: &Secret| {
        let mut item = json!({"name": name, "created_at": secret.created_at, "updated_at": secret.updated_at});
        if org {
            item["visibility"] = json!(secret.visibility);
            if secret.visibility.as_deref() == Some("selected") {
                item["selected_repositories_url"] = json!(format!("{collection}/{name}/repositories"));
            }
        }
        item
    };
    match (method, rest.as_slice()) {
        ("GET", []) => {
            let items: Vec<Value> = location.secrets.iter().map(|(n, s)| org_item(n, s)).collect();
            let total = items.len();
            match page(request, &collection, items) {
                Ok((shown, link)) => {
                    let mut response = ok(200, json!({"total_count": total, "secrets": shown}));
                    response.headers.extend(link.map(|l| ("link".to_string(), l)));
                    response
                }
                Err(response) => response,
            }
        }
        ("GET", ["public-key"]) => {
            let key = base64::engine::general_purpose::STANDARD.encode(location.key.public_key().as_bytes());
            ok(200, json!({"key_id": location.key_id, "key": key}))
        }
        ("GET", [name]) => match location.secrets.get(&name.to_ascii_uppercase()) {
            Some(secret) => ok(200, org_item(&name.to_ascii_uppercase(), secret)),
            None => error(404, "Not Found"),
        },
        ("GET", [name, "repositories"]) if org => match location.secrets.get(&name.to_ascii_uppercase()) {
            Some(secret) => {
                let repos: Vec<Value> = state
                    .repos
                    .iter()
                    .filter(|(_, id)| secret.selected.contains(id))
                    .map(|(full, id)| {
                        let op = operation("GET", &request.path).expect("documented").1;
                        let mut repo = sample(&op["responses"]["200"]["properties"]["repositories"]["items"]);
                        repo["id"] = json!(id);
                        repo["full_name"] = json!(full);
                        repo["name"] = json!(full.split('/').nth(1));
                        repo
                    })
                    .collect();
                ok(200, json!({"total_count": repos.len(), "repositories": repos}))
            }
            None => error(404, "Not Found"),
        },
        ("PUT", [name]) if state.failing.contains(&name.to_ascii_uppercase()) => error(500, "Server Error"),
        ("PUT", [name]) => {
            let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
            if !name_ok(name) {
                return error(
                    422,
                    "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_). Spaces are not allowed. Must start with a letter ([a-z], [A-Z]) or underscores (_).",
                );
            }
            if body["key_id"] != json!(location.key_id) {
                return error(422, "Bad request - key_id does not match the current public key");
            }
            let Some(sealed) =
                body["encrypted_value"].as_str().and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
            else {
                return error(422, "Invalid request.\n\nencrypted_value is not base64");
            };
            location.last_sealed = body["encrypted_value"].as_str().map(str::to_string);
            let Ok(plain) = location.key.unseal(&sealed) else {
                return error(422, "Bad request - the value could not be decrypted with the key");
            };
            let Ok(plaintext) = String::from_utf8(plain) else {
                return error(422, "Bad request - the value is not UTF-8");
            };
            if plaintext.len() > 48 * 1024 {
                return error(422, "Secret value is too large (maximum 48 KB)");
            }
            state.clock += 1;
            state.writes += 1;
            let now = timestamp(state.clock);
            let location = state.locations.get_mut(&collection).expect("created above");
            let name = name.to_ascii_uppercase();
            let visibility = body["visibility"].as_str().map(str::to_string);
            let selected: Vec<u64> = body["selected_repository_ids"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok())).collect())
                .unwrap_or_default();
            match location.secrets.get_mut(&name) {
                Some(secret) => {
                    secret.plaintext = plaintext;
                    secret.updated_at = now;
                    secret.visibility = visibility;
                    secret.selected = selected;
                    ok(204, Value::Null)
                }
                None => {
                    let secret = Secret { plaintext, created_at: now.clone(), updated_at: now, visibility, selected };
                    location.secrets.insert(name, secret);
                    ok(201, json!({}))
                }
            }
        }
        ("DELETE", [name]) => match location.secrets.remove(&name.to_ascii_uppercase()) {
            Some(_) => {
                state.writes += 1;
                ok(204, Value::Null)
            }
            None => error(404, "Not Found"),
        },
        _ => error(404, "Not Found"),
    }
}

fn variables(state: &mut State, request: &Request, method: &str) -> Response {
    let (collection, rest) = split(&request.path, "variables");
    let vars = state.variables.entry(collection.clone()).or_default();
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    match (method, rest.as_slice()) {
        ("GET", []) => {
            let items: Vec<Value> = vars.values().cloned().collect();
            let total = items.len();
            match page(request, &collection, items) {
                Ok((shown, link)) => {
                    let mut response = ok(200, json!({"total_count": total, "variables": shown}));
                    response.headers.extend(link.map(|l| ("link".to_string(), l)));
                    response
                }
                Err(response) => response,
            }
        }
        ("GET", [name]) => match vars.get(&name.to_ascii_uppercase()) {
            Some(variable) => ok(200, variable.clone()),
            None => error(404, "Not Found"),
        },
        ("POST", []) => {
            let name = body["name"].as_str().unwrap_or_default().to_ascii_uppercase();
            if vars.contains_key(&name) {
                return error(409, "Already exists - Variable already exists");
            }
            let value = body["value"].as_str().unwrap_or_default().to_string();
            if value.len() > 48 * 1024 {
                return error(422, "Variable value is too large (maximum 48 KB)");
            }
            state.clock += 1;
            let now = timestamp(state.clock);
            let mut variable = json!({"name": name, "value": value, "created_at": now, "updated_at": now});
            if let Some(visibility) = body.get("visibility") {
                variable["visibility"] = visibility.clone();
            }
            state.variables.get_mut(&collection).expect("created above").insert(name, variable);
            state.writes += 1;
            ok(201, json!({}))
        }
        ("PATCH", [name]) => {
            let key = name.to_ascii_uppercase();
            if !vars.contains_key(&key) {
                return error(404, "Not Found");
            }
            let value = body["value"].as_str().unwrap_or_default().to_string();
            if value.len() > 48 * 1024 {
                return error(422, "Variable value is too large (maximum 48 KB)");
            }
            state.clock += 1;
            let now = timestamp(state.clock);
            let variable = state.variables.get_mut(&collection).and_then(|v| v.get_mut(&key)).expect("exists");
            variable["value"] = json!(value);
            variable["updated_at"] = json!(now);
            if let Some(visibility) = body.get("visibility") {
                variable["visibility"] = visibility.clone();
            }
            state.writes += 1;
            ok(204, Value::Null)
        }
        ("DELETE", [name]) => match vars.remove(&name.to_ascii_uppercase()) {
            Some(_) => {
                state.writes += 1;
                ok(204, Value::Null)
            }
            None => error(404, "Not Found"),
        },
        _ => error(404, "Not Found"),
    }
}

/// Percent-decodes a path segment.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()),
        ) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An environment as `GET …/environments/{name}` returns it.
fn environment_json(state: &State, repo: &str, name: &str, env: &Environment) -> Value {
    let op = operation("GET", &format!("/repos/{repo}/environments/{name}")).expect("documented").1;
    let mut out = sample(&op["responses"]["200"]);
    out["id"] = json!(env.id);
    out["name"] = json!(name);
    let mut rules = Vec::new();
    if env.wait_timer > 0 {
        rules.push(json!({"id": env.id * 10 + 1, "node_id": "x", "type": "wait_timer", "wait_timer": env.wait_timer}));
    }
    if !env.reviewers.is_empty() {
        let reviewers: Vec<Value> = env
            .reviewers
            .iter()
            .map(|(kind, id)| {
                let schema = &op["responses"]["200"]["properties"]["protection_rules"]["items"]["anyOf"][1]["properties"]
                    ["reviewers"]["items"]["properties"]["reviewer"]["anyOf"][if kind == "User" { 0 } else { 1 }];
                let mut reviewer = sample(schema);
                reviewer["id"] = json!(id);
                if kind == "User" {
                    let login = state.users.iter().find(|(_, i)| *i == id).map(|(l, _)| l.clone());
                    reviewer["login"] = json!(login.unwrap_or_default());
                } else {
                    reviewer["parent"] = Value::Null;
                }
                json!({"type": kind, "reviewer": reviewer})
            })
            .collect();
        rules.push(json!({
            "id": env.id * 10 + 2, "node_id": "x", "type": "required_reviewers",
            "prevent_self_review": env.prevent_self_review, "reviewers": reviewers,
        }));
    }
    if env.policy.is_some() {
        rules.push(json!({"id": env.id * 10 + 3, "node_id": "x", "type": "branch_policy"}));
    }
    out["protection_rules"] = json!(rules);
    out["deployment_branch_policy"] = match env.policy {
        Some((protected, custom)) => json!({"protected_branches": protected, "custom_branch_policies": custom}),
        None => Value::Null,
    };
    out
}

/// `…/environments/{name}` and its deployment branch policies.
fn environments(state: &mut State, request: &Request, repo: &str) -> Response {
    let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
    let Some(name) = segments.get(4).map(|s| decode(s)) else {
        return error(404, "Not Found");
    };
    let key = (repo.to_string(), name.clone());
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    match (request.method.as_str(), &segments[5..]) {
        ("GET", []) => {
            let env = state.environments[&key].clone();
            ok(200, environment_json(state, repo, &name, &env))
        }
        ("PUT", []) => {
            let wait_timer = body["wait_timer"].as_u64().unwrap_or(0);
            if wait_timer > 43_200 {
                return error(422, "Validation Failed: wait_timer must be between 0 and 43200");
            }
            let mut reviewers = Vec::new();
            for reviewer in body["reviewers"].as_array().into_iter().flatten() {
                let (kind, id) = (reviewer["type"].as_str().unwrap_or_default(), reviewer["id"].as_u64().unwrap_or(0));
                let known = match kind {
                    "User" => state.users.values().any(|i| *i == id),
                    _ => state.teams.iter().any(|((org, _), i)| *i == id && repo.starts_with(&format!("{org}/"))),
                };
                if !known {
                    return error(
                        422,
                        &format!("Validation Failed: reviewer {kind} {id} does not exist or has no access"),
                    );
                }
                reviewers.push((kind.to_string(), id));
            }
            if reviewers.len() > 6 {
                return error(422, "Validation Failed: at most 6 reviewers");
            }
            let policy = match &body["deployment_branch_policy"] {
                Value::Null => None,
                p => {
                    let (protected, custom) =
                        (p["protected_branches"] == json!(true), p["custom_branch_policies"] == json!(true));
                    if protected == custom {
                        return error(
                            422,
                            "Validation Failed: exactly one of protected_branches and custom_branch_policies must be true",
                        );
                    }
                    Some((protected, custom))
                }
            };
            state.writes += 1;
            let id = rand_id();
            let env =
                state.environments.entry(key.clone()).or_insert_with(|| Environment { id, ..Environment::default() });
            env.wait_timer = wait_timer;
            env.prevent_self_review = body["prevent_self_review"] == json!(true);
            env.reviewers = reviewers;
            if policy.map(|(_, custom)| custom) != Some(true) {
                env.branch_policies.clear();
            }
            env.policy = policy;
            let env = env.clone();
            ok(200, environment_json(state, repo, &name, &env))
        }
        ("DELETE", []) => {
            state.environments.remove(&key);
            state.writes += 1;
            ok(204, Value::Null)
        }
        (method, ["deployment-branch-policies", rest @ ..]) => {
            let env = state.environments.get_mut(&key).expect("checked by the router");
            if env.policy.map(|(_, custom)| custom) != Some(true) {
                return error(404, "Not Found");
            }
            let policy_json = |id: &u64, (pattern, kind): &(String, String)| json!({"id": id, "node_id": "x", "name": pattern, "type": kind});
            match (method, rest) {
                ("GET", []) => {
                    let items: Vec<Value> = env.branch_policies.iter().map(|(id, p)| policy_json(id, p)).collect();
                    let total = items.len();
                    let collection = format!("/repos/{repo}/environments/{}/deployment-branch-policies", segments[4]);
                    match page(request, &collection, items) {
                        Ok((shown, link)) => {
                            let mut response = ok(200, json!({"total_count": total, "branch_policies": shown}));
                            response.headers.extend(link.map(|l| ("link".to_string(), l)));
                            response
                        }
                        Err(response) => response,
                    }
                }
                ("POST", []) => {
                    let pattern = body["name"].as_str().unwrap_or_default().to_string();
                    let kind = body["type"].as_str().unwrap_or("branch").to_string();
                    if let Some((id, p)) = env.branch_policies.iter().find(|(_, (n, k))| *n == pattern && *k == kind) {
                        let mut response = ok(303, policy_json(id, p));
                        response.body = String::new();
                        return response;
                    }
                    let id = rand_id();
                    env.branch_policies.insert(id, (pattern.clone(), kind.clone()));
                    state.writes += 1;
                    ok(200, policy_json(&id, &(pattern, kind)))
                }
                ("DELETE", [id]) => match id.parse::<u64>().ok().and_then(|id| env.branch_policies.remove(&id)) {
                    Some(_) => {
                        state.writes += 1;
                        ok(204, Value::Null)
                    }
                    None => error(404, "Not Found"),
                },
                _ => error(404, "Not Found"),
            }
        }
        _ => error(404, "Not Found"),
    }
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0x5a11_0000);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn timestamps_are_utc_iso_8601() {
    assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
    assert_eq!(timestamp(1_800_000_000), "2027-01-15T08:00:00Z");
}
