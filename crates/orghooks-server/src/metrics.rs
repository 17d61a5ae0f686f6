//! Prometheus metrics, owned by the app (no global registry): HTTP requests
//! by route and status with their latency, and the delivery engine's
//! deliveries, attempts, circuits and in-flight requests.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::state::AppState;

// Every label value comes from a closed set, so no client can grow the
// exposition: methods outside the standard ones are `other`, paths that
// match no route are `unmatched`, and a status is one of at most 500 codes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

/// The method as a label: one of the standard methods, or `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The media type of [`Metrics::render`]'s output: prometheus-client
/// writes the OpenMetrics text format (with `_total` counters and `# EOF`).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoticeLabels {
    pub event_name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    pub webhook_uuid: String,
}

/// The app's metrics and the registry that renders them.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    /// Deliveries created by accepted events; with `settled`, the backlog.
    pub deliveries_created: Counter,
    /// Deliveries that reached an end: succeeded, failed or cancelled.
    pub deliveries_settled: Family<OutcomeLabels, Counter>,
    /// Attempts by result: success, http_error, network_error, timeout.
    pub attempts: Family<OutcomeLabels, Counter>,
    pub attempt_duration: Histogram,
    pub circuits_open: Gauge,
    /// Failure notices raised (`webhook.disabled`, …), by type.
    pub notices: Family<NoticeLabels, Counter>,
    pub in_flight: Family<WebhookLabels, Gauge>,
    /// HTTP connections open to the API.
    pub http_connections: Gauge,
    /// Outcomes whose delivery was no longer leased here when written.
    pub outcomes_lost: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("orghooks");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to ~13 s: API calls are sub-millisecond when healthy.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.0001, 2.0, 18,
            ))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route",
            latency.clone(),
        );
        let deliveries_created = Counter::default();
        registry.register(
            "deliveries_created",
            "Deliveries created by accepted events (backlog = created - settled)",
            deliveries_created.clone(),
        );
        let deliveries_settled = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "deliveries_settled",
            "Deliveries that reached an end, by outcome (succeeded, failed, cancelled)",
            deliveries_settled.clone(),
        );
        let attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "delivery_attempts",
            "Delivery attempts, by result (success, http_error, network_error, timeout, refused)",
            attempts.clone(),
        );
        let attempt_duration = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18),
        );
        registry.register(
            "delivery_attempt_duration_seconds",
            "Time from sending a delivery request to its answer",
            attempt_duration.clone(),
        );
        let circuits_open = Gauge::default();
        registry.register(
            "circuits_open",
            "Webhooks whose circuit is open on this node",
            circuits_open.clone(),
        );
        let notices = Family::<NoticeLabels, Counter>::default();
        registry.register(
            "notices",
            "Failure notices raised on this node, by type (webhook.disabled, webhook.circuit_opened, webhook.circuit_closed, delivery.exhausted)",
            notices.clone(),
        );
        let in_flight = Family::<WebhookLabels, Gauge>::default();
        registry.register(
            "webhook_in_flight",
            "Requests in flight to each webhook from this node",
            in_flight.clone(),
        );
        let http_connections = Gauge::default();
        registry.register(
            "http_connections",
            "HTTP connections open to the API (capped by http.max_connections)",
            http_connections.clone(),
        );
        let outcomes_lost = Counter::default();
        registry.register(
            "delivery_outcomes_lost",
            "Delivery outcomes that found their delivery no longer leased to this node \
             (its lease lapsed and it was claimed again: it may be sent twice)",
            outcomes_lost.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            latency,
            deliveries_created,
            deliveries_settled,
            attempts,
            attempt_duration,
            circuits_open,
            notices,
            in_flight,
            http_connections,
            outcomes_lost,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String does not fail");
        out
    }
}

/// Middleware recording every request's route, status and latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    // Only a matched route's template is a label, never the raw path.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let metrics = state.metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    response
}
