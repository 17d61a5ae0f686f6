//! Configuration: the documented defaults of `config/default.toml` (built
//! in), an optional file, `ORGHOOKS_<SECTION>__<KEY>` environment variables
//! and flags, merged in that order and checked once into a [`Config`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The built-in defaults; `config/default.toml` is their documentation.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub node: NodeConfig,
    pub auth: AuthConfig,
    pub webhooks: WebhooksConfig,
    pub publish: PublishConfig,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    pub security: SecurityConfig,
    pub catalog: CatalogConfig,
    pub dashboard: DashboardConfig,
    pub notices: NoticesConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
    pub max_connections: usize,
    pub error_status: ErrorStatus,
    /// Sites that may show the dashboard in a frame (CSP `frame-ancestors`
    /// sources); empty: none.
    pub frame_ancestors: Vec<String>,
}

/// The HTTP status the Ocrolus routes answer errors with.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ErrorStatus {
    /// The error's own status (400, 401, 404…).
    Real,
    /// Ocrolus's way: HTTP 200 for 4xx errors, the status in the body.
    Ocrolus,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub sqlite_synchronous_full: bool,
    pub sqlite_readers: usize,
    pub write_queue: usize,
    pub postgres_pool_size: usize,
}

impl StorageConfig {
    pub fn is_postgres(&self) -> bool {
        !self.database_url.is_empty()
    }

    /// Where the data is, for the logs: the SQLite file, or the PostgreSQL
    /// URL without its password.
    pub fn describe(&self) -> String {
        if !self.is_postgres() {
            let dir = std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
            return format!("SQLite {}", dir.join(crate::data_dir::DB_FILE).display());
        }
        let url = &self.database_url;
        let shown = match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{}{user}{}", &url[..scheme + 3], &url[at..])
            }
            _ => url.clone(),
        };
        format!("PostgreSQL {shown}")
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub role: NodeRole,
}

/// What a node does (SPEC §7).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Serve the API and deliver.
    All,
    /// Serve the API only; workers send what it accepts.
    Api,
    /// Deliver only.
    Worker,
}

impl NodeRole {
    pub fn serves_api(self) -> bool {
        self != Self::Worker
    }

    pub fn delivers(self) -> bool {
        self != Self::Api
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub token_ttl_secs: u64,
    pub rate_limit_burst: u32,
    pub rate_limit_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub max_per_org: u32,
    pub account_level_counts: bool,
    /// Bounds of a webhook's own `timeout_ms` and `retry_gaps_ms`.
    pub max_timeout_ms: u64,
    pub max_retries: u32,
    pub min_retry_gap_ms: u64,
    pub max_retry_gap_ms: u64,
}

impl WebhooksConfig {
    pub fn limit(&self) -> orghooks_store::WebhookLimit {
        orghooks_store::WebhookLimit {
            max_per_org: self.max_per_org,
            account_level_counts: self.account_level_counts,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    pub max_payload_bytes: usize,
    pub max_batch_events: usize,
    pub max_batch_bytes: usize,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    pub timeout_ms: u64,
    pub retry_gaps_ms: Vec<u64>,
    pub retry_jitter: f64,
    pub circuit_failure_threshold: u32,
    pub circuit_disable_after_secs: u64,
    pub default_max_in_flight: u32,
    pub max_in_flight_total: usize,
    pub max_queued_per_webhook: usize,
    pub max_queued_total: usize,
    pub lease_ms: u64,
    pub claim_interval_ms: u64,
    /// How long an outcome may wait for others to share its commit.
    pub outcome_linger_ms: u64,
    pub webhook_cache_ms: u64,
    pub resolver_timeout_ms: u64,
    pub secret_overlap_secs: u64,
    /// `http://host:port` of an HTTP CONNECT proxy every delivery leaves
    /// through; empty: deliveries go straight to receivers.
    pub proxy_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub period_secs: u64,
    pub purge_interval_ms: u64,
    pub purge_batch: u32,
}

impl DeliveryConfig {
    /// A webhook's cap on requests in flight from this node: its own, or
    /// `default_max_in_flight` when it did not set one.
    pub fn max_in_flight(&self, own: Option<u32>) -> u32 {
        own.unwrap_or(self.default_max_in_flight).max(1)
    }

    pub fn schedule(&self) -> orghooks_core::retry::Schedule {
        orghooks_core::retry::Schedule {
            gaps: self
                .retry_gaps_ms
                .iter()
                .map(|ms| std::time::Duration::from_millis(*ms))
                .collect(),
            jitter: self.retry_jitter,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// A list, or one comma-separated string (handy in the environment).
    #[serde(deserialize_with = "cidr_list")]
    pub allow_cidrs: Vec<IpNet>,
    pub encryption_keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogConfig {
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    pub session_ttl_secs: u64,
    /// Where browsers reach the dashboard (`https://hooks.example.com`), for
    /// the portal links the API hands out; empty: the request's own host.
    pub public_url: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NoticesConfig {
    /// Where the operator hears every failure notice too (`http(s)://…`);
    /// empty: nowhere.
    pub operator_url: String,
    /// Signs what goes to `operator_url` (ocrolus scheme); empty: unsigned.
    pub operator_secret: String,
    /// At most one `delivery.exhausted` notice per webhook this often.
    pub exhausted_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Values given as command-line flags; they win over everything else.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<NodeRole>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Each wrong key, with where it was set.
    #[error("configuration: {0}")]
    Figment(String),
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("configuration: {0}")]
    Invalid(String),
}

/// The longest an HTTP client may take over a request's headers or body.
const HOUR_MS: u64 = 3_600_000;

impl Config {
    /// Merges defaults, `file`, the environment and `overrides`, then checks
    /// the result.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::MissingFile(file.to_owned()));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only ORGHOOKS_<SECTION>__<KEY>: other ORGHOOKS_ variables
        // (ORGHOOKS_CONFIG, the test suite's) are not configuration keys.
        figment = figment.merge(
            Env::prefixed("ORGHOOKS_")
                .filter(|key| key.as_str().contains("__"))
                .split("__"),
        );
        let mut flags = serde_json::Map::new();
        if let Some(listen) = overrides.listen {
            flags.insert("http".into(), serde_json::json!({ "listen": listen }));
        }
        let mut storage = serde_json::Map::new();
        if let Some(dir) = &overrides.data_dir {
            storage.insert("data_dir".into(), serde_json::json!(dir));
        }
        if let Some(url) = &overrides.database_url {
            storage.insert("database_url".into(), serde_json::json!(url));
        }
        if !storage.is_empty() {
            flags.insert("storage".into(), storage.into());
        }
        if let Some(role) = overrides.role {
            flags.insert("node".into(), serde_json::json!({ "role": role }));
        }
        figment = figment.merge(Serialized::defaults(serde_json::Value::Object(flags)));
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Figment(describe(e)))?;
        config.check().map_err(|e| match (e, file) {
            (ConfigError::Invalid(why), Some(file)) => ConfigError::Invalid(format!(
                "{why} (with the configuration file {})",
                file.display()
            )),
            (e, _) => e,
        })?;
        Ok(config)
    }

    /// The built-in defaults alone (no file, no environment): what tests
    /// start from before setting what they need.
    pub fn defaults() -> Self {
        let config: Config = Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("the built-in default.toml is a valid configuration");
        config
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |s: &str| Err(ConfigError::Invalid(s.to_owned()));
        if let Some(bad) = unknown_level(&self.log.level) {
            return Err(ConfigError::Invalid(format!(
                "log.level: {bad:?} is not a level (trace, debug, info, warn, error, off) \
                 nor target=level"
            )));
        }
        if self.http.max_body_bytes < 1024 {
            return invalid("http.max_body_bytes must be at least 1024");
        }
        let h = &self.http;
        if h.header_read_timeout_ms == 0 || h.body_read_timeout_ms == 0 || h.max_connections == 0 {
            return invalid(
                "http: header_read_timeout_ms, body_read_timeout_ms and max_connections must be at least 1",
            );
        }
        if h.header_read_timeout_ms > HOUR_MS || h.body_read_timeout_ms > HOUR_MS {
            return invalid(
                "http: header_read_timeout_ms and body_read_timeout_ms must be at most 3600000 (1 h)",
            );
        }
        if self.auth.token_ttl_secs == 0 {
            return invalid("auth.token_ttl_secs must be at least 1");
        }
        if self.dashboard.session_ttl_secs == 0 {
            return invalid("dashboard.session_ttl_secs must be at least 1");
        }
        if let Some(bad) = h.frame_ancestors.iter().find(|s| !frame_source(s)) {
            return Err(ConfigError::Invalid(format!(
                "http.frame_ancestors: {bad:?} is not a site (scheme://host[:port], *.host allowed) or 'self'"
            )));
        }
        let operator = &self.notices.operator_url;
        let operator_ok = (operator.starts_with("https://") || operator.starts_with("http://"))
            && operator.parse::<axum::http::Uri>().is_ok();
        if !operator.is_empty() && !operator_ok {
            return invalid("notices.operator_url must be an http:// or https:// URL");
        }
        let public = &self.dashboard.public_url;
        if !(public.is_empty() || public.starts_with("https://") || public.starts_with("http://")) {
            return invalid("dashboard.public_url must start with https:// or http://");
        }
        if self.auth.rate_limit_burst == 0 || self.auth.rate_limit_per_minute == 0 {
            return invalid(
                "auth.rate_limit_burst and auth.rate_limit_per_minute must be at least 1",
            );
        }
        if self.webhooks.max_per_org == 0 {
            return invalid("webhooks.max_per_org must be at least 1");
        }
        if self.storage.sqlite_readers == 0 || self.storage.write_queue == 0 {
            return invalid("storage.sqlite_readers and storage.write_queue must be at least 1");
        }
        let d = &self.delivery;
        if d.timeout_ms == 0 || d.claim_interval_ms == 0 || d.resolver_timeout_ms == 0 {
            return invalid(
                "delivery: timeout_ms, claim_interval_ms and resolver_timeout_ms must be at least 1",
            );
        }
        if d.outcome_linger_ms > 1000 {
            return invalid("delivery.outcome_linger_ms must be at most 1000");
        }
        if !d.proxy_url.is_empty() && crate::delivery::proxy_authority(&d.proxy_url).is_err() {
            return Err(ConfigError::Invalid(format!(
                "delivery.proxy_url {:?}: give http://host:port of an HTTP CONNECT proxy",
                d.proxy_url
            )));
        }
        let w = &self.webhooks;
        if w.max_timeout_ms < 1000
            || w.min_retry_gap_ms == 0
            || w.min_retry_gap_ms > w.max_retry_gap_ms
        {
            return invalid(
                "webhooks: max_timeout_ms must be at least 1000, and \
                 min_retry_gap_ms from 1 to max_retry_gap_ms",
            );
        }
        if d.lease_ms <= d.timeout_ms.max(w.max_timeout_ms) {
            return invalid(
                "delivery.lease_ms must be longer than delivery.timeout_ms and webhooks.max_timeout_ms",
            );
        }
        if d.lease_ms <= d.timeout_ms {
            return invalid("delivery.lease_ms must be longer than delivery.timeout_ms");
        }
        if !(0.0..1.0).contains(&d.retry_jitter) {
            return invalid("delivery.retry_jitter must be in [0, 1)");
        }
        if d.circuit_failure_threshold == 0
            || d.max_in_flight_total == 0
            || d.max_queued_per_webhook == 0
            || d.max_queued_total == 0
        {
            return invalid("delivery: thresholds, in-flight and queue limits must be at least 1");
        }
        if orghooks_core::webhook::parse_max_in_flight(d.default_max_in_flight).is_err() {
            return invalid("delivery.default_max_in_flight must be between 1 and 256");
        }
        let r = &self.retention;
        if r.period_secs == 0 || r.purge_interval_ms == 0 || r.purge_batch == 0 {
            return invalid(
                "retention: period_secs, purge_interval_ms and purge_batch must be at least 1",
            );
        }
        if self.publish.max_payload_bytes == 0 || self.publish.max_batch_events == 0 {
            return invalid("publish: limits must be at least 1");
        }
        if self.storage.is_postgres() {
            if !self.storage.database_url.starts_with("postgres://")
                && !self.storage.database_url.starts_with("postgresql://")
            {
                return invalid("storage.database_url must start with postgres://");
            }
            if self.security.encryption_keys.is_empty() {
                return invalid(
                    "security.encryption_keys is required with PostgreSQL: every node must seal and open secrets with the same keys",
                );
            }
            if self.storage.postgres_pool_size == 0 {
                return invalid("storage.postgres_pool_size must be at least 1");
            }
        } else if self.node.role != NodeRole::All {
            return invalid("node.role: only \"all\" with SQLite (one node per data folder)");
        }
        Ok(())
    }
}

/// The first part of a log filter (`info`, `orghooks_server=debug,warn`)
/// that is not a level or `target=level`; a bare word that is not a level
/// would otherwise be taken for a target and silence everything.
fn unknown_level(filter: &str) -> Option<&str> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    filter
        .split(',')
        .map(str::trim)
        .find(|part| match part.split_once('=') {
            Some((target, level)) => target.trim().is_empty() || !is_level(level),
            None => !is_level(part),
        })
}

/// Each of figment's errors once: the key, where it was set (the file,
/// or the environment), and what is wrong with it.
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let key = e.path.join(".").to_ascii_lowercase();
            let place = match e.metadata.as_ref() {
                Some(m) => match &m.source {
                    Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
                    _ => format!(" (in {})", m.name),
                },
                None => String::new(),
            };
            format!("{key}{place}: {}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// CIDRs as a list (`["127.0.0.0/8"]`) or as one string
/// (`"127.0.0.0/8, ::1/128"`); an address alone is its own /32 or /128.
fn cidr_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Given {
        One(String),
        List(Vec<String>),
    }
    let items = match Given::deserialize(d)? {
        Given::One(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Given::List(list) => list,
    };
    items
        .iter()
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{item:?} is not a CIDR such as 127.0.0.0/8 or ::1/128"
                    ))
                })
        })
        .collect()
}

/// A CSP `frame-ancestors` source this config accepts: `'self'` or a site
/// `scheme://host[:port]` (the host may start with `*.`), so that nothing
/// else can be written into the header.
fn frame_source(source: &str) -> bool {
    if source == "'self'" {
        return true;
    }
    let Some((scheme, rest)) = source.split_once("://") else {
        return false;
    };
    let host = rest.strip_prefix("*.").unwrap_or(rest);
    let host = host.split_once(':').map_or(host, |(h, port)| {
        if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            ""
        }
    });
    matches!(scheme, "https" | "http")
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment::Error
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every `[section] key` of the built-in defaults.
    fn default_keys() -> Vec<(String, String)> {
        let mut section = String::new();
        let mut keys = Vec::new();
        for line in DEFAULT_TOML.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, _)) = line.split_once(" = ")
                && !line.starts_with('#')
            {
                keys.push((section.clone(), key.to_owned()));
            }
        }
        keys
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            rng_seed: proptest::test_runner::RngSeed::Fixed(20261129),
            ..Default::default()
        })]

        /// Any value for any key is refused with a message or accepted
        /// into a config the server can run with; nothing panics.
        #[test]
        fn any_value_for_any_key_is_judged_without_panicking(
            entries in prop::collection::vec(
                (prop::sample::select(default_keys()), prop_oneof![
                    any::<i64>().prop_map(|n| n.to_string()),
                    any::<u64>().prop_map(|n| n.to_string()),
                    any::<f64>().prop_map(|f| format!("{f:?}")),
                    any::<bool>().prop_map(|b| b.to_string()),
                    "[ -~]{0,20}".prop_map(|s| format!("{s:?}")),
                    prop::collection::vec(0u64..100_000, 0..4).prop_map(|v| format!("{v:?}")),
                    Just("[\"127.0.0.0/8\"]".to_owned()),
                ]),
                1..4,
            )
        ) {
            let text: String = entries
                .iter()
                .map(|((section, key), value)| format!("[{section}]\n{key} = {value}\n"))
                .collect();
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("c.toml");
            std::fs::write(&file, &text).unwrap();
            if let Ok(config) = Config::load(Some(&file), &Overrides::default()) {
                let _ = config.delivery.schedule();
                let _ = crate::http::serve::ConnectionLimits::from_config(&config);
            }
        }
    }

    #[test]
    fn defaults_parse_and_flags_win() {
        let d = Config::defaults();
        assert_eq!(d.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(d.webhooks.max_per_org, 5);
        assert_eq!(d.auth.token_ttl_secs, 86_400);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[webhooks]\nmax_per_org = 3\n[http]\nlisten = \"127.0.0.1:9\"\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:7".parse().unwrap()),
            ..Default::default()
        };
        // In a jail: the environment is not shared with other tests.
        figment::Jail::expect_with(|_| {
            let c = Config::load(Some(&file), &overrides).unwrap();
            assert_eq!(c.webhooks.max_per_org, 3);
            assert_eq!(c.http.listen.to_string(), "127.0.0.1:7");
            Ok(())
        });
    }

    #[test]
    fn only_section_keys_are_read_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ORGHOOKS_TEST_DATABASE_URL", "postgres://elsewhere");
            jail.set_env("ORGHOOKS_CONFIG", "x.toml");
            jail.set_env("ORGHOOKS_WEBHOOKS__MAX_PER_ORG", "7");
            let c = Config::load(None, &Overrides::default()).map_err(|e| e.to_string())?;
            assert_eq!(c.webhooks.max_per_org, 7);
            Ok(())
        });
    }

    #[test]
    fn bad_files_are_refused_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "[webhooks]\nmax_per_orgs = 3\n").unwrap();
        let load = |f: &std::path::Path| {
            let mut out = None;
            figment::Jail::expect_with(|_| {
                out = Some(Config::load(Some(f), &Overrides::default()));
                Ok(())
            });
            out.unwrap()
        };
        let err = load(&file).unwrap_err().to_string();
        assert!(err.contains("max_per_orgs"), "{err}");
        let missing = load(&dir.path().join("nope.toml"));
        assert!(matches!(missing, Err(ConfigError::MissingFile(_))));
    }

    #[test]
    fn frame_ancestors_take_sites_only() {
        for good in [
            "'self'",
            "https://app.example.com",
            "https://*.example.com",
            "http://127.0.0.1:3000",
        ] {
            assert!(frame_source(good), "{good}");
        }
        for bad in [
            "*",
            "app.example.com",
            "https://a.example.com; script-src *",
            "https://a b",
            "javascript://x",
            "https://",
            "https://a:",
        ] {
            assert!(!frame_source(bad), "{bad}");
        }
    }

    #[test]
    fn log_levels_are_levels() {
        for good in ["info", "WARN", "orghooks_server=debug,info", "off"] {
            assert_eq!(unknown_level(good), None, "{good}");
        }
        for bad in ["loud", "info,verbose", "x=loud", "=info", ""] {
            assert!(unknown_level(bad).is_some(), "{bad}");
        }
    }
}
