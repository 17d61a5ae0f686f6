//! `GET /v1/account/settings/webhook_events`: the whole event catalog, with
//! each type's JSON Schema and example, for any authenticated account.

use axum::extract::State;

use super::error::{ApiError, ErrorEnvelope};
use super::extract::Caller;
use super::views::{Catalog, Envelope, EventTypeDetail, ok};
use crate::state::AppState;

/// The event catalog.
#[utoipa::path(
    get, path = "/v1/account/settings/webhook_events", tag = "events",
    responses(
        (status = 200, body = Envelope<Catalog>),
        (status = 401, body = ErrorEnvelope),
    ),
    security(("bearer" = []))
)]
pub async fn list_event_types(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<axum::Json<Envelope<Catalog>>, ApiError> {
    let events = state.catalog().iter().map(EventTypeDetail::from).collect();
    Ok(ok(Catalog { events }))
}
