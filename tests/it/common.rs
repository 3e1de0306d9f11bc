//! Test support: a builder that runs the real `vss` binary, and helpers to lay out
//! config and secret files in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Status, stdout and stderr in one text, for snapshots.
    pub fn transcript(&self) -> String {
        format!("exit: {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.transcript()))
    }
}

/// A `vss` invocation: arguments, environment, working directory.
pub struct Vss {
    command: Command,
}

impl Vss {
    pub fn new() -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vss"));
        for var in ["VSS_CONFIG", "VSS_FINGERPRINT_KEY", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "NO_COLOR"] {
            command.env_remove(var);
        }
        Self { command }
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Self {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Self {
        self.command.env_remove(key);
        self
    }

    pub fn cwd(mut self, dir: &Path) -> Self {
        self.command.current_dir(dir);
        self
    }

    /// Starts the command without waiting for it.
    pub fn spawn(mut self) -> std::process::Child {
        self.command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        self.command.spawn().expect("the vss binary starts")
    }

    pub fn run(mut self) -> Run {
        let out = self.command.output().expect("the vss binary runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// A temporary workspace with helpers to write files into it.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temp dir") }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn read_json(&self, relative: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    /// Every file below `relative`, as sorted relative paths (hidden sidecars included).
    pub fn files(&self, relative: &str) -> Vec<String> {
        let root = self.path(relative);
        let mut out = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(root, &path, out);
                } else {
                    out.push(path.strip_prefix(root).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        walk(&root, &root, &mut out);
        out.sort();
        out
    }

    /// Runs `vss` in this workspace.
    pub fn vss<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(&self, args: I) -> Run {
        Vss::new().cwd(self.dir.path()).args(args).run()
    }
}

/// Runs the commands `make` builds, all at once, and asserts that every one succeeds.
pub fn run_concurrently(count: usize, make: impl Fn() -> Vss) {
    let children: Vec<std::process::Child> = (0..count).map(|_| make().spawn()).collect();
    for child in children {
        let out = child.wait_with_output().expect("vss finishes");
        assert!(
            out.status.success(),
            "a concurrent run failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `pipeline` once, then `concurrent` dry runs at once, each through `vss()` (a
/// config whose audit log is in the merge store), and checks that `vss audit` lists every
/// run's `per_run` events under one id per run, none lost. Returns the audit report.
pub fn audit_log_keeps_concurrent_runs(vss: impl Fn() -> Vss, concurrent: usize, per_run: usize) -> serde_json::Value {
    let first = vss().args(["pipeline"]).run();
    assert_eq!(first.code, 0, "{}", first.transcript());
    run_concurrently(concurrent, || vss().args(["pipeline", "--dry-run", "--output", "compact"]));
    let out = vss().args(["audit", "--output", "json"]).run();
    assert_eq!(out.code, 0, "{}", out.transcript());
    let report = out.json();
    let events = report["events"].as_array().unwrap();
    assert_eq!(events.len(), (concurrent + 1) * per_run, "{report}");
    assert_eq!(report["skipped_lines"], 0);
    let mut runs: Vec<&str> = events.iter().map(|e| e["run"].as_str().unwrap()).collect();
    runs.dedup();
    assert_eq!(runs.len(), concurrent + 1, "a run's events stay together, one id per run: {runs:?}");
    let real: Vec<&serde_json::Value> = events.iter().filter(|e| e["dry_run"] == false).collect();
    assert_eq!(real.len(), per_run, "{report}");
    assert!(real.iter().all(|e| e["status"] == "success" && e["command"] == "pipeline"), "{report}");
    // `--since` a time after every run: nothing.
    let later = vss().args(["audit", "--output", "json", "--since", "2099-01-01T00:00:00Z"]).run();
    assert_eq!(later.json()["events"], serde_json::json!([]), "{}", later.transcript());
    let recent = vss().args(["audit", "--output", "json", "--since", "1h"]).run();
    assert_eq!(recent.json()["events"].as_array().unwrap().len(), events.len());
    report
}

/// Whether `name` is an audit entry's name: `20261124T080000Z-0123456789abcdef`.
pub fn is_audit_entry(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() == 33
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[9..15].iter().all(u8::is_ascii_digit)
        && &bytes[15..17] == b"Z-"
        && bytes[17..].iter().all(|b| b.is_ascii_hexdigit())
}

/// A server that accepts connections and never answers: for timeouts. Returns its
/// address (`http://127.0.0.1:PORT`); it lives as long as the test process.
pub fn hung_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let address = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    address
}

/// Opens a store the way the engine does, with `defaults` as the top-level blocks (at its
/// location, or at one target's bundle in it).
pub async fn open_store(
    config: &vss::store::StoreConfig,
    defaults: &vss::store::StoreDefaults,
    bundle: Option<&vss::store::Bundle<'_>>,
) -> Result<vss::store::AnyStore, vss::store::StoreError> {
    let (stats, sessions) = (vss::store::stats::Stats::default(), vss::store::Sessions::default());
    let ctx = vss::store::OpenContext {
        base_dir: Path::new("."),
        stats: &stats,
        defaults,
        sessions: &sessions,
        fingerprints: None,
    };
    vss::store::AnyStore::open(config, &ctx, bundle).await
}
