//! The HTTP API. Each route lives in the file of the resource it serves;
//! this module assembles them into one router whose OpenAPI document is
//! generated from the same declarations, so a route cannot exist without
//! being documented.

pub mod catalog;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod oauth;
pub mod serve;
pub mod views;
pub mod webhooks;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Extension, Request};
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
    ApiError::new(
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
        .layer(DefaultBodyLimit::max(max_batch_bytes))
        .layer(Extension(extract::BodyLimit(max_batch_bytes)));
    operations_routes()
        .merge(batch)
        .routes(routes!(events::publish))
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
}

/// The OpenAPI document of every route the router serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    documented_routes(0).split_for_parts().1
}

/// The document as served: the generated one, with every error code listed
/// on `ErrorEnvelope.code` (an enum, and the table in its description).
fn render_openapi(api: &utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(api).expect("the OpenAPI document serialises");
    let code = &mut doc["components"]["schemas"]["ErrorEnvelope"]["properties"]["code"];
    code["enum"] = ErrorCode::ALL.iter().map(|c| c.code()).collect();
    code["description"] = format!(
        "The stable error code (never reused):\n\n{}",
        error::error_code_table()
    )
    .into();
    serde_json::to_string_pretty(&doc).expect("a JSON value serialises")
}

/// The whole API, ready to serve.
pub fn router(state: AppState) -> axum::Router {
    let (router, api) = documented_routes(state.config().publish.max_batch_bytes).split_for_parts();
    let doc = OpenApiJson(Arc::new(render_openapi(&api)));
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes()))
        .layer(Extension(extract::BodyLimit(state.max_body_bytes())))
        .layer(Extension(doc))
        .with_state(state)
}
