//! `orghooks-bench`: starts orghooks (this same executable, serving the
//! orghooks library) on a fresh database for each scenario, with fast
//! receivers on 127.0.0.1, drives load, and reports throughput, latency,
//! CPU and memory as JSON and a markdown table. Everything stays on
//! loopback and every scenario is bounded in count and time.

mod drill;
mod forwarder;
mod load;
mod process;
mod receiver;
mod scenario;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "orghooks-bench", about = "Benchmarks orghooks on this machine")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Scenarios to run (default: all), comma-separated.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// A seconds-long run with tiny counts, to prove the tool works.
    #[arg(long)]
    smoke: bool,
    /// Where the JSON results and the markdown table go.
    #[arg(long, default_value = "bench-results")]
    out: PathBuf,
    /// Run on PostgreSQL: an admin URL on which each scenario gets a fresh database.
    #[arg(long)]
    postgres: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// (internal) Serve orghooks from the environment's configuration.
    #[command(hide = true)]
    Serve,
    /// (internal) The bare forwarder of the baseline scenario.
    #[command(hide = true)]
    Forward { target: String },
    /// The load and checks of scripts/failover-drill.sh, which builds the
    /// cluster and says how to kill its primary.
    Drill {
        /// The cluster's multi-host URL (`target_session_attrs=read-write`).
        #[arg(long)]
        database_url: String,
        /// Events to publish.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// Events per second.
        #[arg(long, default_value_t = 250)]
        rate: u64,
        /// A shell command run once half the events are sent.
        #[arg(long)]
        kill: String,
        /// Where the result (JSON) goes.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Serve) => runtime.block_on(serve()),
        Some(Command::Forward { target }) => runtime.block_on(forwarder::run(target)),
        Some(Command::Drill {
            database_url,
            events,
            rate,
            kill,
            out,
        }) => runtime.block_on(drill::run(database_url, events, rate, kill, out)),
        None => runtime.block_on(scenario::run_all(
            cli.scenarios,
            cli.smoke,
            cli.out,
            cli.postgres,
        )),
    }
}

/// The orghooks server, exactly as `orghooks serve` runs it.
async fn serve() -> anyhow::Result<()> {
    let config = orghooks_server::Config::load(None, &orghooks_server::Overrides::default())?;
    orghooks_server::telemetry::init(&config.log);
    let app = orghooks_server::App::build(config, orghooks_server::Deps::default()).await?;
    println!("listening {}", app.local_addr());
    app.run(tokio_util::sync::CancellationToken::new()).await
}
