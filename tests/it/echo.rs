//! A hostile server: a loopback test server that speaks just enough of the Vault, Secrets
//! Manager and S3 APIs to be written to, and answers every write with an error whose text
//! quotes the request body, as some servers and gateways do. No output of vss may then
//! carry a value: not the reports in any format, not the GitHub annotations or step
//! summary, not the `-vvv` logs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;

use crate::common::{Run, Vss, Workspace};

const CANARY: &str = "CANARY-echo-6a1f";

/// Starts the echo server on a free loopback port; every write is answered with `status`.
/// Returns its address. The server thread lives as long as the test process.
fn start(status: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || serve(stream, status));
        }
    });
    address
}

/// One request: method, path, the `X-Amz-Target` header, and the body.
fn read_request(stream: &TcpStream) -> Option<(String, String, Option<String>, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let (mut length, mut target) = (0usize, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().ok()?,
            "x-amz-target" => target = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, target, String::from_utf8_lossy(&body).into_owned()))
}

fn serve(mut stream: TcpStream, status: u16) {
    while let Some((method, path, target, body)) = read_request(&stream) {
        // What a careless server says: the request, quoted back, Python style.
        let echo = body.replace('"', "'");
        let (code, content_type, answer) = match (method.as_str(), path.as_str(), target.as_deref()) {
            // Vault: token lookup, mount lookup, an empty listing; writes fail.
            ("GET", "/v1/auth/token/lookup-self", _) => (200, "application/json", r#"{"data":{}}"#.to_string()),
            ("GET", p, _) if p.starts_with("/v1/sys/internal/ui/mounts/") => (
                200,
                "application/json",
                r#"{"data":{"path":"secret/","type":"kv","options":{"version":"2"}}}"#.to_string(),
            ),
            ("LIST" | "GET", p, None) if p.starts_with("/v1/") => {
                (404, "application/json", r#"{"errors":[]}"#.to_string())
            }
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
                (
                    status,
                    "application/x-amz-json-1.1",
                    serde_json::json!({"__type": kind, "message": message}).to_string(),
                )
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
        let reason = match code {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            _ => "Internal Server Error",
        };
        let response = format!(
            "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if stream.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A secret number (one Vault holds exactly), which an echo would quote as it is.
const NUMBER: &str = "1234567890123456";

fn assert_clean(label: &str, run: &Run, ws: &Workspace, files: &[&str]) {
    assert_eq!(run.code, 2, "{label}: the write fails: {}", run.transcript());
    for secret in [CANARY, NUMBER] {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "{label}: {}", run.transcript());
        for file in files {
            let text = std::fs::read_to_string(ws.path(file)).unwrap_or_default();
            assert!(!text.contains(secret), "{label}: {file}:\n{text}");
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
        for (store, target, merge_store) in [
            ("vault", format!("vault: {{path: secret/app, address: \"{address}\", auth: {{token: t}}}}"), ""),
            ("aws", "aws: {prefix: app/}".to_string(), ""),
            ("s3", "file: {path: out}".to_string(), "merge_store: {s3: {bucket: bundles, prefix: merged/}}\n"),
        ] {
            ws.write(
                "vss.yaml",
                &format!(
                    "aws: {{endpoint_url: \"{address}\", region: us-east-1}}\n{merge_store}source: {{file: {{path: s.yaml}}}}\ntargets: {{T: {{{target}}}}}\n"
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
