//! A hostile server: a loopback test server that speaks just enough of the Vault, Secrets
//! Manager, S3, Secret Manager and Kubernetes APIs to be written to, and answers every write with an error whose text
//! quotes the request body, as some servers and gateways do. No output of vss may then
//! carry a value: not the reports in any format, not the GitHub annotations or step
//! summary, not the `-vvv` logs.

use base64::Engine as _;

use crate::common::{Run, Vss, Workspace};
use crate::loopback::{Request, Response, serve};

const CANARY: &str = "CANARY-echo-6a1f";

/// Starts the echo server on a free loopback port; every write is answered with `status`.
/// Returns its address.
fn start(status: u16) -> String {
    serve(move |request| answer(request, status))
}

fn answer(request: Request, status: u16) -> Response {
    let Request { method, path, headers, body, .. } = request;
    let target = headers.get("x-amz-target").cloned();
    // What a careless server says: the request, quoted back, Python style.
    let echo = body.replace('"', "'");
    let (code, content_type, answer) = match (method.as_str(), path.as_str(), target.as_deref()) {
        // GCP Secret Manager: an empty project; a secret can be created, its versions fail.
        ("GET", p, None) if p.starts_with("/v1/projects/") && p.ends_with("/secrets") => {
            (200, "application/json", r#"{"secrets":[]}"#.to_string())
        }
        // Creating a secret and changing its labels work; adding a version fails.
        ("POST" | "PATCH", p, None) if p.starts_with("/v1/projects/") && !p.contains(':') => {
            (200, "application/json", r#"{"name":"projects/1/secrets/x","replication":{"automatic":{}}}"#.to_string())
        }
        ("POST", p, None) if p.starts_with("/v1/projects/") => {
            let status_name = match status {
                403 => "PERMISSION_DENIED",
                500 => "INTERNAL",
                _ => "INVALID_ARGUMENT",
            };
            let message = format!("invalid request body: {echo}");
            let body = serde_json::json!({"error": {"code": status, "message": message, "status": status_name}});
            (status, "application/json", body.to_string())
        }
        // Kubernetes: an empty namespace; applying a Secret fails.
        ("GET", p, None) if p.starts_with("/api/v1/namespaces/") && p.ends_with("/secrets") => (
            200,
            "application/json",
            r#"{"kind":"SecretList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}"#.to_string(),
        ),
        ("PATCH", p, None) if p.starts_with("/api/v1/namespaces/") => {
            let reason = match status {
                403 => "Forbidden",
                500 => "InternalError",
                _ => "BadRequest",
            };
            let body = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("invalid request body: {echo}"), "reason": reason, "code": status,
            });
            (status, "application/json", body.to_string())
        }
        // Vault: token lookup, mount lookup, an empty listing; writes fail.
        ("GET", "/v1/auth/token/lookup-self", _) => (200, "application/json", r#"{"data":{}}"#.to_string()),
        ("GET", p, _) if p.starts_with("/v1/sys/internal/ui/mounts/") => (
            200,
            "application/json",
            r#"{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}"#.to_string(),
        ),
        ("LIST" | "GET", p, None) if p.starts_with("/v1/") => (404, "application/json", r#"{"errors":[]}"#.to_string()),
        // The ownership marker (written before the value) holds no value: accepted.
        ("POST", p, None) if p.starts_with("/v1/secret/metadata/") => (204, "application/json", String::new()),
        ("POST" | "PUT", p, None) if p.starts_with("/v1/") => (
            status,
            "application/json",
            serde_json::json!({"errors": [format!("invalid request body: {echo}")]}).to_string(),
        ),
        // Secrets Manager (JSON protocol): an empty listing; writes fail.
        (_, _, Some("secretsmanager.ListSecrets")) => {
            (200, "application/x-amz-json-1.1", r#"{"SecretList":[]}"#.to_string())
        }
        (_, _, Some(action)) => {
            let kind = match status {
                403 => "AccessDeniedException",
                500 => "InternalServiceError",
                _ => "InvalidParameterException",
            };
            let message = format!("{action} rejected: {echo}");
            (status, "application/x-amz-json-1.1", serde_json::json!({"__type": kind, "message": message}).to_string())
        }
        // S3 (path-style): no bundle yet; writing one fails.
        ("GET", _, None) => (
            404,
            "application/xml",
            "<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>".to_string(),
        ),
        ("PUT", _, None) => {
            let code = match status {
                403 => "AccessDenied",
                500 => "InternalError",
                _ => "InvalidRequest",
            };
            let echo = echo.replace('&', "&amp;").replace('<', "&lt;");
            (
                status,
                "application/xml",
                format!("<Error><Code>{code}</Code><Message>bad body: {echo}</Message></Error>"),
            )
        }
        _ => (404, "application/json", "{}".to_string()),
    };
    Response { status: code, headers: Vec::new(), content_type, body: answer }
}

/// A secret number (one Vault holds exactly), which an echo would quote as it is.
const NUMBER: &str = "1234567890123456";

fn assert_clean(label: &str, run: &Run, ws: &Workspace, files: &[&str]) {
    assert_eq!(run.code, 2, "{label}: the write fails: {}", run.transcript());
    let texts: Vec<(String, String)> =
        [("stdout".to_string(), run.stdout.clone()), ("stderr".to_string(), run.stderr.clone())]
            .into_iter()
            .chain(files.iter().map(|f| (f.to_string(), std::fs::read_to_string(ws.path(f)).unwrap_or_default())))
            .collect();
    for (name, text) in &texts {
        for secret in [CANARY, NUMBER] {
            assert!(!text.contains(secret), "{label}: {name}:\n{text}");
            // Nor encoded: a payload a server echoes is base64 (GCP, binary secrets).
            for token in text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))) {
                if token.len() >= 16
                    && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(token)
                {
                    let decoded = String::from_utf8_lossy(&bytes);
                    assert!(!decoded.contains(secret), "{label}: {name} holds it in base64 ({token}):\n{text}");
                }
            }
        }
    }
}

#[test]
fn an_echoing_server_cannot_put_a_value_in_any_output() {
    let ws = Workspace::new();
    ws.write(
        "s.yaml",
        &format!("app/api: {{token: {CANARY}-token, quoted: \"say \\\"{CANARY}\\\"\"}}\napp/n: {{big: {NUMBER}}}\n"),
    );
    for status in [400, 403, 500] {
        let address = start(status);
        ws.write(
            "kubeconfig.yaml",
            &format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: echo\nclusters: [{{name: c, cluster: {{server: \"{address}\"}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: echo, context: {{cluster: c, user: u}}}}]\n"
            ),
        );
        for (store, target, merge_store) in [
            ("vault", format!("vault: {{path: secret/app, address: \"{address}\", auth: {{token: t}}}}"), ""),
            ("aws", "aws: {prefix: app/}".to_string(), ""),
            ("gcp", "gcp: {project: p}".to_string(), ""),
            ("kubernetes", "kubernetes: {namespace: app}".to_string(), ""),
            ("s3", "file: {path: out}".to_string(), "merge_store: {s3: {bucket: bundles, prefix: merged/}}\n"),
        ] {
            ws.write(
                "vss.yaml",
                &format!(
                    "aws: {{endpoint_url: \"{address}\", region: us-east-1}}\ngcp: {{endpoint: \"{address}\", auth: anonymous}}\nkubernetes: {{kubeconfig: kubeconfig.yaml}}\n{merge_store}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{{target}}}}}\n"
                ),
            );
            // Every format once; the retried 500s in JSON only (each run waits out the retries).
            let outputs: &[&str] = if status == 500 { &["json"] } else { &["human", "json", "github", "compact"] };
            for &output in outputs {
                let label = format!("{store} {status} {output}");
                let run = Vss::new()
                    .cwd(ws.dir.path())
                    .env("AWS_ACCESS_KEY_ID", "testing")
                    .env("AWS_SECRET_ACCESS_KEY", "testing")
                    .env("AWS_EC2_METADATA_DISABLED", "true")
                    .env("GITHUB_OUTPUT", ws.path("gh-output"))
                    .env("GITHUB_STEP_SUMMARY", ws.path("gh-summary"))
                    .env_remove("AWS_PROFILE")
                    .env_remove("AWS_ENDPOINT_URL")
                    .args(["-vvv", "pipeline", "--output", output])
                    .run();
                assert_clean(&label, &run, &ws, &["gh-output", "gh-summary"]);
                if output == "json" {
                    let message = run.json()["errors"][0]["message"].as_str().unwrap().to_string();
                    assert!(message.contains("<redacted>"), "{label}: the server did echo: {message}");
                }
            }
        }
    }
}
