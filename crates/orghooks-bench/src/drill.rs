//! The failover drill's load and checks (`scripts/failover-drill.sh` builds
//! the PostgreSQL cluster and kills its primary): two orghooks nodes on the
//! cluster's multi-host URL, two receivers, events published at a steady
//! rate to both nodes in turn, each retried on 503 as `Retry-After` asks
//! until it is accepted; halfway through, the `--kill` command. Then every
//! accepted event must reach both receivers. Everything stays on loopback
//! and is bounded in count and time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use orghooks_core::SystemClock;
use orghooks_core::sealing::Keyring;
use orghooks_server::admin::Admin;
use serde::Serialize;

use crate::load::{self, HttpClient};
use crate::process::Proc;
use crate::receiver::{Mode, Receiver};
use crate::scenario;

/// How long publishing and then delivery may take, each.
const LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Default, Serialize)]
pub struct DrillResult {
    pub events: u64,
    /// Events finally answered 202 (each retried until then).
    pub accepted: u64,
    pub answers_503: u64,
    /// 503s that came without `Retry-After`.
    pub answers_503_without_retry_after: u64,
    pub answers_500: u64,
    pub answers_other: u64,
    /// Requests that got no HTTP answer (connection refused or reset).
    pub no_answer: u64,
    /// From the kill to the first 202 of a publish sent after it.
    pub recovery_seconds: f64,
    /// Per receiver: accepted events that never arrived.
    pub lost: Vec<u64>,
    /// Per receiver: deliveries that arrived more than once.
    pub duplicates: Vec<u64>,
    /// Whether both orghooks nodes ran throughout (no restart).
    pub nodes_survived: bool,
    pub seconds: f64,
}

#[derive(Default)]
struct Counts {
    accepted: AtomicU64,
    s503: AtomicU64,
    s503_bare: AtomicU64,
    s500: AtomicU64,
    other: AtomicU64,
    no_answer: AtomicU64,
    /// Microseconds after the start of the first 202 sent after the kill.
    first_after_kill_us: AtomicU64,
}

pub async fn run(
    database_url: String,
    events: u64,
    rate: u64,
    kill: String,
    out: std::path::PathBuf,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key = Keyring::generate_spec("k1");
    let receivers = [
        Receiver::start(Mode::Fast).await?,
        Receiver::start(Mode::Fast).await?,
    ];
    let env_for = |data: &std::path::Path| -> Vec<(&'static str, String)> {
        vec![
            ("ORGHOOKS_STORAGE__DATA_DIR", data.display().to_string()),
            ("ORGHOOKS_STORAGE__DATABASE_URL", database_url.clone()),
            ("ORGHOOKS_SECURITY__ENCRYPTION_KEYS", format!("[\"{key}\"]")),
            ("ORGHOOKS_HTTP__LISTEN", "127.0.0.1:0".into()),
            ("ORGHOOKS_SECURITY__ALLOW_CIDRS", "[\"127.0.0.0/8\"]".into()),
            ("ORGHOOKS_LOG__LEVEL", "error".into()),
        ]
    };
    let (d1, d2) = (dir.path().join("n1"), dir.path().join("n2"));
    std::fs::create_dir_all(&d1)?;
    std::fs::create_dir_all(&d2)?;
    let mut nodes = vec![
        Proc::start(&["serve"], &env_for(&d1), &d1)?,
        Proc::start(&["serve"], &env_for(&d2), &d2)?,
    ];

    let client = load::client();
    let mut config = orghooks_server::Config::defaults();
    config.storage.data_dir = d1.clone();
    config.storage.database_url = database_url.clone();
    config.security.encryption_keys = vec![key.clone()];
    let admin = Admin::open(&config, Arc::new(SystemClock)).await?;
    let (_, publisher) = admin.create_publisher_token("drill").await?;
    let urls: Vec<String> = receivers.iter().map(|r| r.url("/hook")).collect();
    let account = scenario::setup_org(&admin, &client, &nodes[0].base, &urls, 0).await?;
    drop(admin);

    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let killed_at_us = Arc::new(AtomicU64::new(u64::MAX));
    let run_id = uuid::Uuid::now_v7().as_u128() & !0xffff_ffff;
    let mut tasks = tokio::task::JoinSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    let mut n = 0u64;
    let mut kill_done = false;
    while n < events {
        ticker.tick().await;
        let due = ((started.elapsed().as_micros() as u64) * rate / 1_000_000).min(events);
        while n < due {
            let event_uuid = uuid::Uuid::from_u128(run_id | u128::from(n));
            let body = format!(
                r#"{{"account_uuid":"{account}","event_uuid":"{event_uuid}","payload":{{"event_name":"book.verified","book_uuid":"1e03d9cd-7d84-4672-bc3d-c19cd19c500b","uploaded_docs":[],"n":{n}}}}}"#
            );
            let url = format!("{}/v1/events", bases[(n % 2) as usize]);
            let (client, publisher, counts, killed) = (
                client.clone(),
                publisher.clone(),
                counts.clone(),
                killed_at_us.clone(),
            );
            tasks.spawn(async move {
                publish(&client, &url, &publisher, body, &counts, &killed, started).await
            });
            n += 1;
        }
        if !kill_done && n >= events / 2 {
            kill_done = true;
            eprintln!("drill: {n} events sent; running: {kill}");
            let status = std::process::Command::new("sh")
                .args(["-c", &kill])
                .status()
                .context("running the kill command")?;
            if !status.success() {
                bail!("the kill command failed: {status}");
            }
            // Counted from when the primary is gone.
            killed_at_us.store(started.elapsed().as_micros() as u64, Ordering::SeqCst);
        }
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    eprintln!(
        "drill: publishing done in {:.1} s; waiting for deliveries",
        started.elapsed().as_secs_f64()
    );
    let accepted = counts.accepted.load(Ordering::SeqCst);
    let deadline = Instant::now() + LIMIT;
    while receivers.iter().any(|r| (r.distinct() as u64) < accepted) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates (a lease lapsed during the outage) would come now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nodes_survived = nodes
        .iter_mut()
        .all(|n| matches!(n.child.try_wait(), Ok(None)));
    let killed = killed_at_us.load(Ordering::SeqCst);
    let first = counts.first_after_kill_us.load(Ordering::SeqCst);
    let result = DrillResult {
        events,
        accepted,
        answers_503: counts.s503.load(Ordering::SeqCst),
        answers_503_without_retry_after: counts.s503_bare.load(Ordering::SeqCst),
        answers_500: counts.s500.load(Ordering::SeqCst),
        answers_other: counts.other.load(Ordering::SeqCst),
        no_answer: counts.no_answer.load(Ordering::SeqCst),
        recovery_seconds: if first == 0 || killed == u64::MAX {
            f64::NAN
        } else {
            first.saturating_sub(killed) as f64 / 1e6
        },
        lost: receivers
            .iter()
            .map(|r| accepted.saturating_sub(r.distinct() as u64))
            .collect(),
        duplicates: receivers
            .iter()
            .map(|r| (r.stats.received.load(Ordering::SeqCst) - r.distinct()) as u64)
            .collect(),
        nodes_survived,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&result)?;
    println!("{json}");
    std::fs::write(&out, &json).with_context(|| format!("writing {}", out.display()))?;
    drop(nodes);
    let ok = result.accepted == events
        && result.answers_500 == 0
        && result.answers_other == 0
        && result.answers_503_without_retry_after == 0
        && result.lost.iter().all(|l| *l == 0)
        && result.nodes_survived;
    if !ok {
        bail!("the drill failed its checks (see {})", out.display());
    }
    Ok(())
}

/// Publishes one event until it is accepted (or the time is up).
async fn publish(
    client: &HttpClient,
    url: &str,
    token: &str,
    body: String,
    counts: &Counts,
    killed_at_us: &AtomicU64,
    started: Instant,
) {
    loop {
        if started.elapsed() > LIMIT {
            return;
        }
        let sent_us = started.elapsed().as_micros() as u64;
        let request = Request::post(url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body.clone())))
            .expect("a request");
        let answer = match client.request(request).await {
            Ok(resp) => {
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let status = resp.status().as_u16();
                let _ = resp.into_body().collect().await;
                Some((status, retry_after))
            }
            Err(_) => None,
        };
        let pause = match answer {
            Some((202, _)) => {
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                if sent_us > killed_at_us.load(Ordering::SeqCst) {
                    let at = started.elapsed().as_micros() as u64;
                    let _ = counts.first_after_kill_us.compare_exchange(
                        0,
                        at,
                        Ordering::SeqCst,
                        Ordering::SeqCst,
                    );
                }
                return;
            }
            Some((503, retry_after)) => {
                counts.s503.fetch_add(1, Ordering::SeqCst);
                if retry_after.is_none() {
                    counts.s503_bare.fetch_add(1, Ordering::SeqCst);
                }
                Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 5))
            }
            Some((500, _)) => {
                counts.s500.fetch_add(1, Ordering::SeqCst);
                Duration::from_secs(1)
            }
            Some(_) => {
                counts.other.fetch_add(1, Ordering::SeqCst);
                return;
            }
            None => {
                counts.no_answer.fetch_add(1, Ordering::SeqCst);
                Duration::from_secs(1)
            }
        };
        tokio::time::sleep(pause).await;
    }
}
