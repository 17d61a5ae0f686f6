//! The HTTP API. Each route lives in the file of the resource it serves;
//! this module assembles them into one router whose OpenAPI document is
//! generated from the same declarations, so an API route cannot exist
//! without being documented. The HTML dashboard (`crate::dashboard`) is
//! merged in here too; its pages are not part of the API document.

pub mod account_level;
pub mod catalog;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod oauth;
pub mod options;
pub mod portal;
pub mod serve;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::{Extension, Request};
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use error::{ApiError, ErrorCode, ErrorEnvelope};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orghooks",
        description = "Organization-level webhooks, wire-compatible with the Ocrolus org-webhook API. \
                       Every error answers with the envelope `ErrorEnvelope`; its `code` values are \
                       listed in docs/error-codes.md."
    ),
    components(schemas(ErrorEnvelope)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "OAuth2 client credentials"),
        (name = "webhooks", description = "An organization's webhooks (manager role)"),
        (name = "events", description = "The event catalog"),
        (name = "deliveries", description = "A webhook's delivery log, redelivery and recovery (manager role)"),
        (name = "publish", description = "The platform publishes events (publisher tokens)"),
        (name = "portal", description = "One-time links that open the dashboard for an organization (publisher tokens)"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document, rendered once at start.
#[derive(Clone)]
struct OpenApiJson(Arc<String>);

/// This OpenAPI document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, content_type = "application/json", body = Object)))]
async fn openapi_json(Extension(doc): Extension<OpenApiJson>) -> impl IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc.0.as_str().to_owned(),
    )
}

async fn route_not_found(req: Request) -> ApiError {
    ApiError::ocrolus(
        ErrorCode::RouteNotFound,
        format!("path: no route {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!(
            "method: {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

/// What every node serves, whatever its role.
fn operations_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(openapi_json))
}

/// Every route with its documentation, before state and layers. The batch
/// publish route has its own, larger body limit.
fn documented_routes(max_batch_bytes: usize) -> OpenApiRouter<AppState> {
    let batch = OpenApiRouter::new()
        .routes(routes!(events::publish_batch))
        .layer(Extension(extract::BodyLimit(max_batch_bytes)));
    operations_routes()
        .merge(batch)
        .routes(routes!(events::publish))
        .routes(routes!(portal::create_session))
        .routes(routes!(webhooks::test_webhook))
        .routes(routes!(deliveries::list_deliveries))
        .routes(routes!(deliveries::get_delivery))
        .routes(routes!(deliveries::redeliver))
        .routes(routes!(deliveries::recover))
        .routes(routes!(oauth::token))
        .routes(routes!(webhooks::add_webhook))
        .routes(routes!(webhooks::list_webhooks))
        .routes(routes!(webhooks::get_webhook))
        .routes(routes!(webhooks::update_webhook))
        .routes(routes!(webhooks::delete_webhook))
        .routes(routes!(webhooks::webhook_events))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(catalog::list_event_types))
        .routes(routes!(account_level::configure))
        .routes(routes!(account_level::details))
        .routes(routes!(account_level::test))
        .routes(routes!(account_level::rotate_secret))
}

/// The OpenAPI document of every route the router serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes(0).split_for_parts().1
}

/// The document as served: the generated one, completed with what the
/// derive macros cannot say, so that it matches the wire exactly: every
/// error code on `ErrorEnvelope.code`, the statuses every operation can
/// answer (a body can be too large or late, a token refused, a store
/// unavailable), and the catalog's event names where a field takes them.
fn render_openapi(
    api: &utoipa::openapi::OpenApi,
    catalog: &orghooks_core::Catalog,
    max_batch_events: usize,
) -> String {
    let mut doc = serde_json::to_value(api).expect("the OpenAPI document serialises");
    let code = &mut doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["code"];
    code["enum"] = ErrorCode::ALL.iter().map(|c| c.code()).collect();
    code["description"] = format!(
        "The stable error code (never reused):\n\n{}",
        error::error_code_table()
    )
    .into();
    let names: Vec<&str> = catalog
        .iter()
        .filter(|t| t.is_active)
        .map(|t| t.name.as_str())
        .collect();
    let all_names: Vec<&str> = catalog.iter().map(|t| t.name.as_str()).collect();
    // What follows completes the management and publish routes; a worker's
    // document has neither (`pointer_mut` finds nothing there).
    for body in ["AddWebhookBody", "UpdateWebhookBody"] {
        let pointer = format!("/components/schemas/{body}/properties/event_names");
        if let Some(field) = doc.pointer_mut(&pointer) {
            field["uniqueItems"] = true.into();
            field["items"]["enum"] = serde_json::json!(names);
        }
    }
    if let Some(events) = doc.pointer_mut("/components/schemas/BatchBody/properties/events") {
        events["maxItems"] = max_batch_events.into();
    }
    if let Some(update) = doc.pointer_mut("/components/schemas/UpdateWebhookBody") {
        // An update changes the webhook, the subscriptions, or both.
        update["anyOf"] = serde_json::json!([
            {"required": ["webhook"], "properties": {"webhook": {"type": "object"}}},
            {"required": ["event_names"], "properties": {"event_names": {"type": "array"}}},
        ]);
    }
    let log = "/paths/~1v1~1account~1settings~1webhook~1{webhook_uuid}~1deliveries/get/parameters";
    for parameter in doc
        .pointer_mut(log)
        .and_then(|p| p.as_array_mut())
        .into_iter()
        .flatten()
    {
        if parameter["name"] == "event_name" {
            parameter["schema"]["enum"] = serde_json::json!(all_names);
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, operations) in paths {
            for operation in operations
                .as_object_mut()
                .into_iter()
                .flat_map(|o| o.values_mut())
            {
                add_error_responses(path, operation);
            }
        }
    }
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
}

/// Adds the error statuses an operation can answer that its declaration
/// does not list, each with the error envelope.
fn add_error_responses(path: &str, operation: &mut serde_json::Value) {
    let secured = operation.get("security").is_some();
    let management = operation["tags"]
        .as_array()
        .and_then(|t| t.first())
        .and_then(|t| t.as_str())
        .is_some_and(|t| matches!(t, "webhooks" | "deliveries" | "events"));
    let body = operation.get("requestBody").is_some();
    let mut statuses: Vec<(u16, &str)> = Vec::new();
    if body {
        statuses.extend([
            (
                400,
                "A path uuid is not a uuid, or the body is not valid JSON or breaks a rule; \
                 the message names the field",
            ),
            (
                408,
                "The body did not arrive within http.body_read_timeout_ms",
            ),
            (413, "The body is larger than the route's limit"),
            (415, "The body is not sent as application/json"),
        ]);
    }
    if path.contains('{') {
        statuses.extend([
            (400, "A path uuid is not a uuid"),
            (404, "No such object in your organization"),
        ]);
    }
    if secured {
        statuses.extend([
            (
                401,
                "No token, an unknown or expired one, or a disabled account",
            ),
            (403, "The token's kind or role may not do this"),
        ]);
    }
    if management {
        statuses.push((
            429,
            "Too many management calls from this account; see Retry-After",
        ));
    }
    if secured || body {
        statuses.push((
            503,
            "The store cannot take this now; retry after Retry-After",
        ));
    }
    let responses = &mut operation["responses"];
    for (status, description) in statuses {
        let key = status.to_string();
        if responses.get(&key).is_some() {
            continue;
        }
        let mut response = serde_json::json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
        });
        if status == 429 || status == 503 {
            response["headers"] = serde_json::json!({"Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer", "minimum": 0},
            }});
        }
        responses[key] = response;
    }
}

/// The whole API, ready to serve.
pub fn router(state: AppState) -> axum::Router {
    // A worker only delivers: it serves health, metrics and this document,
    // and its document lists only those.
    let routes = if state.config().node.role.serves_api() {
        documented_routes(state.config().publish.max_batch_bytes)
    } else {
        operations_routes()
    };
    let (mut router, api) = routes.split_for_parts();
    if state.config().node.role.serves_api() {
        router = router.merge(crate::dashboard::router(&state));
    }
    let doc = OpenApiJson(Arc::new(render_openapi(
        &api,
        state.catalog(),
        state.config().publish.max_batch_events,
    )));
    let routed = router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            ocrolus_error_status,
        ))
        .layer(Extension(extract::BodyLimit(state.max_body_bytes())))
        .layer(Extension(doc))
        .with_state(state);
    // The trim runs before routing: the outer router has no routes of its
    // own, so every request reaches `routed` through its fallback.
    axum::Router::new()
        .fallback_service(routed)
        .layer(axum::middleware::map_request(trim_one_trailing_slash))
}

/// With `http.error_status = "ocrolus"`, a 4xx error on an Ocrolus route
/// (`/v1/account/…`) answers HTTP 200 with its status in the body, as
/// Ocrolus does. Other routes, and 5xx, keep their real status.
async fn ocrolus_error_status(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ocrolus_route = req.uri().path().starts_with("/v1/account/");
    let mut response = next.run(req).await;
    if ocrolus_route
        && state.config().http.error_status == crate::config::ErrorStatus::Ocrolus
        && response.status().is_client_error()
        && response.extensions().get::<error::Enveloped>().is_some()
    {
        *response.status_mut() = axum::http::StatusCode::OK;
    }
    response
}

/// `/v1/account/settings/webhooks/` is routed as `…/webhooks`, as Ocrolus
/// does: clients that add a slash keep working. One slash only, so `//`
/// still answers 404.
async fn trim_one_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') && !path.ends_with("//") {
        let trimmed = &path[..path.len() - 1];
        let rebuilt = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_owned(),
        };
        if let Ok(uri) = rebuilt.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}
