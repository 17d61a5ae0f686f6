//! The README's five-minute tour, run as written: its shell blocks are read
//! from README.md, the server and the receiver started in the background,
//! the rest run in one bash, and the receiver must print the verified
//! notification. Only the binary (the built one for `cargo run --release`)
//! and the ports (free ones for 8080 and 3000) are swapped.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::BIN;

/// The ```sh blocks of the README's tour, in order.
fn tour_blocks() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README.md");
    let start = readme
        .find("## A five-minute tour")
        .expect("the README has its tour");
    let rest = &readme[start..];
    let end = rest.find("### More of the API").expect("the tour ends");
    rest[..end]
        .split("```sh\n")
        .skip(1)
        .map(|block| block.split("```").next().unwrap().to_owned())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A background shell block, killed with its process group when dropped.
struct Background {
    child: Child,
    out: std::path::PathBuf,
}

impl Background {
    fn start(dir: &Path, name: &str, script: &str, env: &[(&str, String)]) -> Self {
        let out = dir.join(format!("{name}.out"));
        let file = std::fs::File::create(&out).unwrap();
        let mut command = Command::new("bash");
        command
            .args(["-c", script])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (k, v) in env {
            command.env(k, v);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        Self {
            child: command.spawn().expect("bash runs"),
            out,
        }
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits up to 60 s until its output has a line for which `done` holds.
    async fn wait_for(&mut self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(line) = self.printed().lines().find(|l| done(l)) {
                return line.to_owned();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("exited ({status}) before {what}:\n{}", self.printed());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within 60 s:\n{}",
                self.printed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_readme_tour_delivers_a_verified_notification() {
    let blocks = tour_blocks();
    assert_eq!(blocks.len(), 5, "serve, listen, account, webhook, publish");
    let (api, receiver) = (free_port(), free_port());
    let adapt = |block: &str| {
        block
            .replace("cargo run --release -q --", BIN)
            .replace("cargo run --release --", BIN)
            .replace("localhost:8080", &format!("localhost:{api}"))
            .replace("localhost:3000", &format!("localhost:{receiver}"))
            .replace("--port 3000", &format!("--port {receiver}"))
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = Background::start(
        dir.path(),
        "serve",
        &adapt(&blocks[0]),
        &[("ORGHOOKS_HTTP__LISTEN", format!("127.0.0.1:{api}"))],
    );
    server
        .wait_for("the server's start", |l| l.contains("orghooks listening"))
        .await;
    let mut listen = Background::start(dir.path(), "listen", &adapt(&blocks[1]), &[]);
    listen
        .wait_for("the receiver's start", |l| l.starts_with("listening on"))
        .await;

    let script = format!(
        "set -euo pipefail\n{}",
        blocks[2..]
            .iter()
            .map(|b| adapt(b))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the tour's commands failed:\n{said}");
    assert!(said.contains("\"deliveries\":1"), "{said}");

    let line = listen
        .wait_for("the notification", |l| l.contains("book.verified"))
        .await;
    assert!(
        line.contains("book 1e03d9cd-7d84-4672-bc3d-c19cd19c500b") && line.ends_with("  verified"),
        "{line}"
    );
    eprintln!("the tour as a new user sees it:\n{}", listen.printed());
}
