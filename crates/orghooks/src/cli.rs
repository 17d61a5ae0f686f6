//! The command line: `serve` and the operator's `admin` commands. Every
//! command takes the same `--config`, `--data-dir` and `--database-url`;
//! admin commands print one JSON object with `--json`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use orghooks_core::SystemClock;
use orghooks_server::admin::{self, Admin};
use orghooks_server::config::NodeRole;
use orghooks_server::{App, Config, Overrides};
use orghooks_store::Role;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(name = "orghooks", version, about = "Organization-level webhooks")]
pub struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration and the data are.
#[derive(Debug, Args)]
struct StoreArgs {
    /// A TOML file overriding the built-in defaults (see config/default.toml).
    #[arg(long, global = true, env = "ORGHOOKS_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of the embedded SQLite database (default ./data).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// postgres://… to use PostgreSQL instead of SQLite.
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API and the delivery engine.
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// all (default), api (accept only) or worker (deliver only).
        #[arg(long, value_enum)]
        role: Option<NodeRole>,
    },
    /// Create or upgrade the database schema, then exit (`serve` does it too).
    Migrate,
    /// A local receiver for development: verifies and prints each
    /// notification, answers it or forwards it to your app.
    Listen(ListenArgs),
    /// Operator commands: organizations, API accounts, publisher tokens.
    Admin {
        /// Print one JSON object instead of text.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Debug, Args)]
struct ListenArgs {
    /// Port on 127.0.0.1 to receive on (0: any free port, printed at start).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// The webhook's signing secret, to verify each signature and timestamp.
    #[arg(long, env = "ORGHOOKS_LISTEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The signature scheme to verify (default: judged from each signature).
    #[arg(long, value_enum)]
    scheme: Option<SchemeArg>,
    /// Largest age of a notification's timestamp accepted, in seconds.
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
    /// The HTTP status to answer (without --forward-to).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    status: u16,
    /// Send each request on unchanged to this URL and answer what it answers.
    #[arg(long)]
    forward_to: Option<String>,
    /// Print each notification's body too, pretty-printed.
    #[arg(long, short)]
    verbose: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SchemeArg {
    Ocrolus,
    StandardWebhooks,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Organizations (tenants).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// API accounts and their client credentials.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Tokens the platform publishes events with.
    PublisherToken {
        #[command(subcommand)]
        command: PublisherTokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PublisherTokenCommand {
    /// Create a publisher token; prints it once.
    Create {
        /// What the token is for (shown by `list`).
        #[arg(long)]
        name: String,
    },
    /// List publisher tokens (never the tokens themselves).
    List,
    /// Revoke a publisher token: it stops working at once.
    Revoke {
        /// The token's uuid (from `list`), or the token itself (ohp_…).
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Create an organization.
    Create {
        /// The organization's name (1 to 255 characters).
        #[arg(long)]
        name: String,
    },
    /// List organizations.
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Manager,
    Member,
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// Create an API account; prints its client secret once.
    Create {
        /// The organization's uuid.
        #[arg(long)]
        org: Uuid,
        /// manager (may change webhooks) or member (may look).
        #[arg(long, value_enum, default_value = "member")]
        role: RoleArg,
        /// A name to tell accounts apart (shown in the dashboard).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List accounts, of one organization or all.
    List {
        /// Only this organization's accounts.
        #[arg(long)]
        org: Option<Uuid>,
    },
    /// Disable an account: its tokens stop working at once.
    Disable {
        /// The account's uuid.
        account: Uuid,
    },
    /// Re-enable a disabled account.
    Enable {
        /// The account's uuid.
        account: Uuid,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Listen(args) = cli.command {
        return listen(args).await;
    }
    let (listen, role) = match &cli.command {
        Command::Serve { listen, role } => (*listen, *role),
        _ => (None, None),
    };
    let overrides = Overrides {
        listen,
        data_dir: cli.store.data_dir.clone(),
        database_url: cli.store.database_url.clone(),
        role,
    };
    let config = Config::load(cli.store.config.as_deref(), &overrides)?;
    match cli.command {
        Command::Serve { .. } => serve(config).await,
        Command::Migrate => {
            orghooks_server::data_dir::open_store(&config).await?;
            println!("the database schema is up to date");
            Ok(())
        }
        Command::Admin { json, command } => {
            let admin = Admin::open(&config, Arc::new(SystemClock)).await?;
            run_admin(&admin, command, json).await
        }
        Command::Listen(_) => unreachable!("handled before the configuration is read"),
    }
}

/// Runs the local receiver until Ctrl-C; needs no configuration or data.
async fn listen(args: ListenArgs) -> anyhow::Result<()> {
    let forward_to = args
        .forward_to
        .map(|u| {
            let uri: axum::http::Uri = u.parse().with_context(|| format!("--forward-to {u:?}"))?;
            anyhow::ensure!(
                uri.scheme_str() == Some("http") && uri.host().is_some(),
                "--forward-to {u:?}: give an http:// URL (a local app)"
            );
            Ok(uri)
        })
        .transpose()?;
    let options = orghooks_server::listen::Listen {
        port: args.port,
        secret: args.secret.map(orghooks_core::sealing::SecretString::new),
        scheme: args.scheme.map(|s| match s {
            SchemeArg::Ocrolus => orghooks_core::webhook::SignatureScheme::Ocrolus,
            SchemeArg::StandardWebhooks => {
                orghooks_core::webhook::SignatureScheme::StandardWebhooks
            }
        }),
        status: axum::http::StatusCode::from_u16(args.status)?,
        forward_to,
        tolerance_secs: args.tolerance,
        verbose: args.verbose,
    };
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        signal.cancel();
    });
    orghooks_server::listen::run(options, shutdown).await
}

async fn serve(config: Config) -> anyhow::Result<()> {
    orghooks_server::telemetry::init(&config.log);
    let app = App::build(config, orghooks_server::Deps::default()).await?;
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        signal.cancel();
    });
    app.run(shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn print(json_mode: bool, value: serde_json::Value, text: String) -> anyhow::Result<()> {
    if json_mode {
        println!(
            "{}",
            serde_json::to_string(&value).context("printing JSON")?
        );
    } else {
        println!("{text}");
    }
    Ok(())
}

async fn run_admin(admin: &Admin, command: AdminCommand, json_mode: bool) -> anyhow::Result<()> {
    match command {
        AdminCommand::Org { command } => match command {
            OrgCommand::Create { name } => {
                let org = admin.create_org(&name).await?;
                let text = format!("created organization {} ({})", org.uuid, org.name);
                print(json_mode, json!({"org": admin::org_json(&org)}), text)
            }
            OrgCommand::List => {
                let orgs = admin.list_orgs().await?;
                let text = orgs
                    .iter()
                    .map(|o| format!("{}  {}", o.uuid, o.name))
                    .collect::<Vec<_>>()
                    .join("\n");
                let list: Vec<_> = orgs.iter().map(admin::org_json).collect();
                print(json_mode, json!({"orgs": list}), text)
            }
        },
        AdminCommand::PublisherToken { command } => match command {
            PublisherTokenCommand::Create { name } => {
                let (record, token) = admin.create_publisher_token(&name).await?;
                let text = format!(
                    "created publisher token {} ({})\ntoken: {token}\n(the token is shown this once; store it now)",
                    record.uuid, record.name
                );
                let mut value = admin::publisher_token_json(&record);
                value["token"] = json!(token);
                print(json_mode, json!({"publisher_token": value}), text)
            }
            PublisherTokenCommand::List => {
                let tokens = admin.list_publisher_tokens().await?;
                let text = tokens
                    .iter()
                    .map(|t| {
                        let state = if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        format!("{}  {}  {}", t.uuid, state, t.name)
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let list: Vec<_> = tokens.iter().map(admin::publisher_token_json).collect();
                print(json_mode, json!({"publisher_tokens": list}), text)
            }
            PublisherTokenCommand::Revoke { token } => {
                let t = admin.revoke_publisher_token(&token).await?;
                let text = format!("revoked publisher token {}", t.uuid);
                print(
                    json_mode,
                    json!({"publisher_token": admin::publisher_token_json(&t)}),
                    text,
                )
            }
        },
        AdminCommand::Account { command } => match command {
            AccountCommand::Create { org, role, name } => {
                let role = match role {
                    RoleArg::Manager => Role::Manager,
                    RoleArg::Member => Role::Member,
                };
                let created = admin.create_account(org, &name, role).await?;
                let a = &created.account;
                let text = format!(
                    "created {} account {}\nclient_id:     {}\nclient_secret: {}\n\
                     (the client secret is shown this once; store it now)",
                    a.role.as_str(),
                    a.uuid,
                    a.client_id,
                    created.client_secret
                );
                let mut value = admin::account_json(a);
                value["client_secret"] = json!(created.client_secret);
                print(json_mode, json!({"account": value}), text)
            }
            AccountCommand::List { org } => {
                let accounts = admin.list_accounts(org).await?;
                let text = accounts
                    .iter()
                    .map(|a| {
                        let state = if a.disabled_at.is_some() {
                            "disabled"
                        } else {
                            "active"
                        };
                        format!(
                            "{}  {}  {}  {}  {}",
                            a.uuid,
                            a.org_uuid,
                            a.role.as_str(),
                            state,
                            a.client_id
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                let list: Vec<_> = accounts.iter().map(admin::account_json).collect();
                print(json_mode, json!({"accounts": list}), text)
            }
            AccountCommand::Disable { account } => {
                let a = admin.set_disabled(account, true).await?;
                let text = format!("disabled account {}", a.uuid);
                print(json_mode, json!({"account": admin::account_json(&a)}), text)
            }
            AccountCommand::Enable { account } => {
                let a = admin.set_disabled(account, false).await?;
                let text = format!("enabled account {}", a.uuid);
                print(json_mode, json!({"account": admin::account_json(&a)}), text)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every flag and argument of every command says what it is for.
    #[test]
    fn every_flag_has_help() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.get_help().is_none() && !matches!(id, "help" | "version") {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (command)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "orghooks", &mut missing);
        assert!(missing.is_empty(), "without help: {missing:?}");
    }
}
