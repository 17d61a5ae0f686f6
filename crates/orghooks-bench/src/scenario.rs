//! The scenarios, what each measures, and the report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use orghooks_core::SystemClock;
use orghooks_core::sealing::Keyring;
use orghooks_server::admin::Admin;
use orghooks_store::Role;
use orghooks_store::postgres::scratch::ScratchDatabase;
use serde::Serialize;
use serde_json::{Value, json};

use crate::load::{self, HttpClient, LoadResult, MakeBody, Target, percentile_ms};
use crate::process::{self, Proc};
use crate::receiver::{Mode, Receiver};

const BOOK: &str = "1e03d9cd-7d84-4672-bc3d-c19cd19c500b";

#[derive(Debug, Clone, Copy)]
enum Load {
    /// Single-event publishes, `concurrency` in flight.
    Saturate { concurrency: usize, events: u64 },
    /// Batch publishes of `size` events.
    Batch {
        concurrency: usize,
        events: u64,
        size: u64,
    },
    /// A fixed rate for a while.
    Steady { rate: u64, secs: u64 },
}

#[derive(Debug, Clone)]
struct Spec {
    name: &'static str,
    receivers: Vec<Mode>,
    orgs: usize,
    load: Load,
    /// The bare forwarder instead of orghooks.
    baseline: bool,
    /// Extra server settings, as environment variables.
    env: Vec<(&'static str, &'static str)>,
    /// Receivers start slow and speed up once publishing is over.
    speed_up_after_publish: bool,
    /// An `api` node takes the publishes and a separate `worker` node
    /// delivers them (PostgreSQL only: SQLite is one node).
    split_roles: bool,
}

#[derive(Debug, Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub backend: String,
    pub events: u64,
    pub publish_seconds: f64,
    pub events_per_sec: f64,
    pub deliveries: u64,
    pub deliveries_per_sec: f64,
    pub publish_p50_ms: f64,
    pub publish_p99_ms: f64,
    pub receipt_p50_ms: f64,
    pub receipt_p90_ms: f64,
    pub receipt_p99_ms: f64,
    pub receipt_max_ms: f64,
    pub cpu_seconds: f64,
    pub cpu_us_per_event: f64,
    /// The server plus the database server's processes (PostgreSQL), per
    /// event; for SQLite, which runs inside the server, the same as above.
    pub total_cpu_us_per_event: f64,
    pub peak_rss_mib: f64,
    pub refused_503: u64,
    pub all_delivered: bool,
    pub fraction_of_baseline: Option<f64>,
}

fn specs(smoke: bool) -> Vec<Spec> {
    let n = |full: u64, small: u64| if smoke { small } else { full };
    let secs = |full: u64| if smoke { 1 } else { full };
    let spec = |name, receivers: Vec<Mode>, load| Spec {
        name,
        receivers,
        orgs: 1,
        load,
        baseline: false,
        env: Vec::new(),
        speed_up_after_publish: false,
        split_roles: false,
    };
    let fast = |k| vec![Mode::Fast; k];
    vec![
        Spec {
            baseline: true,
            ..spec(
                "baseline",
                fast(1),
                Load::Saturate {
                    concurrency: 64,
                    events: n(100_000, 500),
                },
            )
        },
        spec(
            "saturate-1",
            fast(1),
            Load::Saturate {
                concurrency: 64,
                events: n(100_000, 500),
            },
        ),
        spec(
            "saturate-5",
            fast(5),
            Load::Saturate {
                concurrency: 64,
                events: n(50_000, 300),
            },
        ),
        spec(
            "batch",
            fast(5),
            Load::Batch {
                concurrency: 4,
                events: n(100_000, 500),
                size: 100,
            },
        ),
        spec(
            "steady-600",
            fast(1),
            Load::Steady {
                rate: 600,
                secs: secs(30),
            },
        ),
        spec(
            "steady-1k",
            fast(1),
            Load::Steady {
                rate: 1_000,
                secs: secs(30),
            },
        ),
        spec(
            "steady-10k",
            fast(1),
            Load::Steady {
                rate: 10_000,
                secs: secs(30),
            },
        ),
        spec(
            "one-dead-ref",
            fast(3),
            Load::Saturate {
                concurrency: 64,
                events: n(30_000, 200),
            },
        ),
        spec(
            "one-dead",
            vec![
                Mode::Fast,
                Mode::Fast,
                Mode::Fast,
                Mode::Dead,
                Mode::Failing,
            ],
            Load::Saturate {
                concurrency: 64,
                events: n(30_000, 200),
            },
        ),
        Spec {
            orgs: if smoke { 5 } else { 1000 },
            ..spec(
                "many-orgs",
                fast(5),
                Load::Saturate {
                    concurrency: 64,
                    events: n(50_000, 300),
                },
            )
        },
        Spec {
            split_roles: true,
            ..spec(
                "handoff",
                fast(1),
                Load::Steady {
                    rate: 1_000,
                    secs: secs(30),
                },
            )
        },
        Spec {
            env: vec![("ORGHOOKS_STORAGE__WRITE_QUEUE", "64")],
            speed_up_after_publish: true,
            ..spec(
                "overload",
                vec![Mode::Slow(Duration::from_millis(50))],
                Load::Saturate {
                    concurrency: 256,
                    events: n(500_000, 2_000),
                },
            )
        },
    ]
}

pub async fn run_all(
    only: Vec<String>,
    smoke: bool,
    out: PathBuf,
    postgres: Option<String>,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut baseline_rate = None;
    for spec in specs(smoke) {
        if !only.is_empty() && !only.iter().any(|o| o == spec.name) {
            continue;
        }
        if spec.baseline && postgres.is_some() {
            continue;
        }
        if spec.split_roles && postgres.is_none() {
            eprintln!("== {}: skipped, it needs --postgres", spec.name);
            continue;
        }
        eprintln!("== {}", spec.name);
        let mut outcome = run(&spec, postgres.as_deref()).await?;
        if spec.baseline {
            baseline_rate = Some(outcome.deliveries_per_sec);
        } else if let Some(base) = baseline_rate {
            outcome.fraction_of_baseline = Some(outcome.deliveries_per_sec / base);
        }
        println!("{}", serde_json::to_string(&outcome)?);
        std::fs::write(
            out.join(format!(
                "{}{}.json",
                spec.name,
                if postgres.is_some() { "-pg" } else { "" }
            )),
            serde_json::to_string_pretty(&outcome)?,
        )?;
        outcomes.push(outcome);
    }
    let table = markdown(&outcomes);
    println!("\n{table}");
    let name = if postgres.is_some() {
        "summary-pg.md"
    } else {
        "summary.md"
    };
    std::fs::write(out.join(name), table)?;
    if outcomes.iter().any(|o| !o.all_delivered) {
        bail!("some scenario did not deliver every event");
    }
    Ok(())
}

fn markdown(outcomes: &[Outcome]) -> String {
    let mut t = String::from(
        "| scenario | backend | events/s | deliveries/s | publish p50/p99 ms | receipt p50/p90/p99/max ms | CPU µs/event | with database | peak RSS MiB | 503s | all delivered | of baseline |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|\n",
    );
    for o in outcomes {
        t.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} / {:.2} / {:.1} | {:.1} | {:.1} | {:.0} | {} | {} | {} |\n",
            o.scenario,
            o.backend,
            o.events_per_sec,
            o.deliveries_per_sec,
            o.publish_p50_ms,
            o.publish_p99_ms,
            o.receipt_p50_ms,
            o.receipt_p90_ms,
            o.receipt_p99_ms,
            o.receipt_max_ms,
            o.cpu_us_per_event,
            o.total_cpu_us_per_event,
            o.peak_rss_mib,
            o.refused_503,
            if o.all_delivered { "yes" } else { "NO" },
            o.fraction_of_baseline.map(|f| format!("{:.0} %", f * 100.0)).unwrap_or_default(),
        ));
    }
    t
}

async fn json_call(
    client: &HttpClient,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<Value> {
    let mut req = Request::post(url).header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_string())))?)
        .await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url} answered {status}: {value}");
    }
    Ok(value)
}

/// One org with a manager account and a webhook to each receiver; answers
/// the account that publishes for it.
pub(crate) async fn setup_org(
    admin: &Admin,
    client: &HttpClient,
    base: &str,
    urls: &[String],
    i: usize,
) -> anyhow::Result<uuid::Uuid> {
    let org = admin.create_org(&format!("org {i}")).await?;
    let account = admin
        .create_account(org.uuid, "bench", Role::Manager)
        .await?;
    let token = json_call(
        client,
        &format!("{base}/oauth/token"),
        None,
        json!({"grant_type": "client_credentials", "client_id": account.account.client_id,
               "client_secret": account.client_secret}),
    )
    .await?["access_token"]
        .as_str()
        .context("a token")?
        .to_owned();
    for url in urls {
        json_call(
            client,
            &format!("{base}/v1/account/settings/webhook"),
            Some(&token),
            json!({"webhook": {"url": url, "max_in_flight": 64}, "event_names": ["book.verified"]}),
        )
        .await?;
    }
    Ok(account.account.uuid)
}

async fn run(spec: &Spec, postgres: Option<&str>) -> anyhow::Result<Outcome> {
    let on_postgres = postgres.is_some();
    let dir = tempfile::tempdir()?;
    let mut receivers = Vec::new();
    for mode in &spec.receivers {
        receivers.push(Receiver::start(*mode).await?);
    }
    let healthy: Vec<&Receiver> = receivers
        .iter()
        .zip(&spec.receivers)
        .filter(|(_, m)| !matches!(m, Mode::Dead | Mode::Failing))
        .map(|(r, _)| r)
        .collect();
    let client = load::client();
    let database = match postgres {
        Some(admin) => Some(ScratchDatabase::create_on(admin).await),
        None => None,
    };
    let key = Keyring::generate_spec("k1");
    let mut env: Vec<(&str, String)> = vec![
        (
            "ORGHOOKS_STORAGE__DATA_DIR",
            dir.path().display().to_string(),
        ),
        ("ORGHOOKS_HTTP__LISTEN", "127.0.0.1:0".into()),
        ("ORGHOOKS_SECURITY__ALLOW_CIDRS", "[\"127.0.0.0/8\"]".into()),
        ("ORGHOOKS_LOG__LEVEL", "error".into()),
    ];
    if let Some(db) = &database {
        env.push(("ORGHOOKS_STORAGE__DATABASE_URL", db.url.clone()));
        env.push(("ORGHOOKS_SECURITY__ENCRYPTION_KEYS", format!("[\"{key}\"]")));
    }
    for (k, v) in &spec.env {
        env.push((k, (*v).to_owned()));
    }

    let (server, target, accounts) = if spec.baseline {
        let target_url = healthy[0].url("/hook");
        let server = Proc::start(&["forward", &target_url], &env, dir.path())?;
        let target = Target {
            client: client.clone(),
            url: format!("{}/v1/events", server.base),
            token: None,
        };
        (server, target, vec![uuid::Uuid::nil()])
    } else {
        let server = if spec.split_roles {
            let mut api = env.clone();
            api.push(("ORGHOOKS_NODE__ROLE", "api".into()));
            Proc::start(&["serve"], &api, dir.path())?
        } else {
            Proc::start(&["serve"], &env, dir.path())?
        };
        let mut config = orghooks_server::Config::defaults();
        config.storage.data_dir = dir.path().to_owned();
        if let Some(db) = &database {
            config.storage.database_url = db.url.clone();
            config.security.encryption_keys = vec![key.clone()];
        }
        let admin = Arc::new(Admin::open(&config, Arc::new(SystemClock)).await?);
        let (_, publisher) = admin.create_publisher_token("bench").await?;
        let urls: Arc<Vec<String>> = Arc::new(receivers.iter().map(|r| r.url("/hook")).collect());
        // Set the orgs up 32 at a time: 1,000 orgs take seconds, not minutes.
        let mut accounts = Vec::with_capacity(spec.orgs);
        for chunk in (0..spec.orgs).collect::<Vec<_>>().chunks(32) {
            let mut tasks = tokio::task::JoinSet::new();
            for &i in chunk {
                let (admin, client, base, urls) = (
                    admin.clone(),
                    client.clone(),
                    server.base.clone(),
                    urls.clone(),
                );
                tasks.spawn(async move { setup_org(&admin, &client, &base, &urls, i).await });
            }
            while let Some(done) = tasks.join_next().await {
                accounts.push(done??);
            }
        }
        let target = Target {
            client: client.clone(),
            url: format!("{}/v1/events", server.base),
            token: Some(publisher),
        };
        (server, target, accounts)
    };

    // The worker of a split pair, on the same database.
    let worker = if spec.split_roles {
        let wdir = tempfile::tempdir()?;
        let mut worker = env.clone();
        worker.retain(|(k, _)| *k != "ORGHOOKS_STORAGE__DATA_DIR");
        worker.push((
            "ORGHOOKS_STORAGE__DATA_DIR",
            wdir.path().display().to_string(),
        ));
        worker.push(("ORGHOOKS_NODE__ROLE", "worker".into()));
        Some((Proc::start(&["serve"], &worker, wdir.path())?, wdir))
    } else {
        None
    };
    let procs: Vec<&Proc> = std::iter::once(&server)
        .chain(worker.as_ref().map(|(w, _)| w))
        .collect();

    let accounts = Arc::new(accounts);
    let event = {
        let accounts = accounts.clone();
        move |n: u64, sent: u64| {
            let account = accounts[(n as usize) % accounts.len()];
            format!(
                r#"{{"account_uuid":"{account}","payload":{{"event_name":"book.verified","book_uuid":"{BOOK}","uploaded_docs":[],"sent_us":{sent}}}}}"#
            )
        }
    };
    let cpu_before: f64 = procs.iter().map(|p| p.cpu_seconds()).sum();
    let database_before = on_postgres.then(process::postgres_cpu_seconds);
    let started = Instant::now();
    let limit = Duration::from_secs(300);
    let (result, events): (LoadResult, u64) = match spec.load {
        Load::Saturate {
            concurrency,
            events,
        } => {
            let make: MakeBody = Arc::new(event);
            (
                load::saturate(target, concurrency, events, make, limit).await,
                events,
            )
        }
        Load::Batch {
            concurrency,
            events,
            size,
        } => {
            let make: MakeBody = Arc::new(move |n, sent| {
                let items: Vec<String> = (0..size).map(|i| event(n * size + i, sent)).collect();
                format!(r#"{{"events":[{}]}}"#, items.join(","))
            });
            let mut batch = target;
            batch.url = batch.url.replace("/v1/events", "/v1/events/batch");
            (
                load::saturate(batch, concurrency, events / size, make, limit).await,
                events,
            )
        }
        Load::Steady { rate, secs } => {
            let make: MakeBody = Arc::new(event);
            (
                load::steady(target, rate, Duration::from_secs(secs), make).await,
                rate * secs,
            )
        }
    };
    let publish_seconds = result.elapsed.as_secs_f64();
    if spec.speed_up_after_publish {
        for r in &receivers {
            r.speed_up();
        }
    }
    let expected = events as usize * healthy.len();
    let deadline = Instant::now() + limit;
    let delivered = loop {
        let got: usize = healthy.iter().map(|r| r.distinct()).sum();
        if got >= expected || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let total = started.elapsed().as_secs_f64();
    let cpu = procs.iter().map(|p| p.cpu_seconds()).sum::<f64>() - cpu_before;
    let database_cpu = database_before.map_or(0.0, |b| process::postgres_cpu_seconds() - b);
    let rss = procs.iter().map(|p| p.peak_rss_mib()).fold(0.0, f64::max);
    drop(procs);
    drop(worker);
    drop(server);
    let mut publish = result.latencies_us;
    let mut receipt: Vec<u32> = healthy
        .iter()
        .flat_map(|r| r.stats.latencies_us.lock().expect("stats").clone())
        .collect();
    Ok(Outcome {
        scenario: spec.name.to_owned(),
        backend: if spec.baseline {
            "none (bare relay)".into()
        } else if spec.split_roles {
            "postgres (api + worker)".into()
        } else if on_postgres {
            "postgres".into()
        } else {
            "sqlite".into()
        },
        events,
        publish_seconds,
        events_per_sec: events as f64 / publish_seconds,
        deliveries: delivered as u64,
        deliveries_per_sec: delivered as f64 / total,
        publish_p50_ms: percentile_ms(&mut publish, 50.0),
        publish_p99_ms: percentile_ms(&mut publish, 99.0),
        receipt_p50_ms: percentile_ms(&mut receipt, 50.0),
        receipt_p90_ms: percentile_ms(&mut receipt, 90.0),
        receipt_p99_ms: percentile_ms(&mut receipt, 99.0),
        receipt_max_ms: percentile_ms(&mut receipt, 100.0),
        cpu_seconds: cpu,
        cpu_us_per_event: cpu * 1e6 / events as f64,
        total_cpu_us_per_event: (cpu + database_cpu) * 1e6 / events as f64,
        peak_rss_mib: rss,
        refused_503: result.refused_503,
        all_delivered: delivered >= expected,
        fraction_of_baseline: None,
    })
}
