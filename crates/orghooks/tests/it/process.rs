//! Runs the real binary: a `serve` child that reports its bound address,
//! and one-shot CLI commands.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_orghooks");

/// A running `orghooks serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Its last log lines, printed if it exited on its own.
    log: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// Starts `orghooks serve` in `cwd` on a free port and waits (up to 30 s)
/// for its "listening" log line.
pub fn serve(cwd: &Path, args: &[&str]) -> Server {
    let mut command = Command::new(BIN);
    command.arg("serve").args(args);
    start(cwd, command)
}

/// Starts `orghooks serve` with extra environment variables.
pub fn serve_with_env(cwd: &Path, env: &[(&str, &str)]) -> Server {
    let mut command = Command::new(BIN);
    command.arg("serve");
    for (k, v) in env {
        command.env(k, v);
    }
    start(cwd, command)
}

fn start(cwd: &Path, mut command: Command) -> Server {
    let mut child = command
        .current_dir(cwd)
        .env("ORGHOOKS_HTTP__LISTEN", "127.0.0.1:0")
        .env("ORGHOOKS_LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("orghooks starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let log = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["message"] == "orghooks listening"
            {
                let _ = tx.send(v["addr"].as_str().unwrap().to_owned());
            }
            let mut kept = kept.lock().unwrap();
            if kept.len() == 40 {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("orghooks serve logs its address");
    Server {
        child,
        base: format!("http://{addr}"),
        log,
    }
}

impl Server {
    /// The most recent of its last log lines whose message starts with
    /// `message`, parsed.
    pub fn logged(&self, message: &str) -> Option<Value> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|v| {
                v["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            eprintln!("orghooks serve exited on its own ({status}); its last log lines:");
            for line in self.log.lock().unwrap().iter() {
                eprintln!("  {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs one CLI command in `cwd`.
pub fn run(cwd: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .output()
        .expect("orghooks runs")
}

/// Runs an admin command with `--json` and parses its one JSON object.
pub fn admin_json(cwd: &Path, args: &[&str]) -> Value {
    let mut all = vec!["admin"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(cwd, &all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

/// Runs one CLI command in `cwd` with extra environment variables.
pub fn run_with_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).current_dir(cwd).env_remove("RUST_LOG");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("orghooks runs")
}

/// An access token for an account as `admin account create --json` printed
/// it (`{"client_id", "client_secret", …}`).
pub async fn access_token(base: &str, account: &Value) -> String {
    let answer: Value = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials",
            "client_id": account["client_id"], "client_secret": account["client_secret"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"].as_str().unwrap().to_owned()
}
