//! Webhooks as the store keeps them: the statements both backends run,
//! the row decoder, and the patch rule. Backends add only how a statement
//! runs.

use async_trait::async_trait;
use uuid::Uuid;

use crate::StoreError;
use crate::model::*;
use crate::sql::{Cells, Sql, Value, text_list};

/// An org's webhooks.
///
/// Methods that take an `org` only ever see that organization's rows: a
/// webhook of another org is `NotFound`, exactly as if it did not exist.
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Adds a webhook unless the org is at its limit (`LimitReached`), or,
    /// org-level, already has one with the same URL, or, account-level, its
    /// account already has one (`Conflict`). The check and the insert are
    /// one atomic step.
    async fn insert_webhook(
        &self,
        webhook: NewWebhook,
        limit: WebhookLimit,
    ) -> Result<Webhook, StoreError>;
    /// The live account-level webhook of an account, if it has one.
    async fn account_webhook(&self, account: Uuid) -> Result<Option<Webhook>, StoreError>;
    async fn list_webhooks(&self, org: Uuid) -> Result<Vec<Webhook>, StoreError>;
    async fn get_webhook(&self, org: Uuid, webhook: Uuid) -> Result<Webhook, StoreError>;
    /// Applies `patch`; turning a webhook off holds its pending deliveries,
    /// turning it on releases its held ones.
    async fn update_webhook(
        &self,
        org: Uuid,
        webhook: Uuid,
        patch: WebhookPatch,
    ) -> Result<Webhook, StoreError>;
    /// Soft-deletes: the webhook no longer counts for the limit or URL
    /// rule, and its pending and held deliveries are cancelled (answers
    /// how many).
    async fn delete_webhook(&self, org: Uuid, webhook: Uuid, now: i64) -> Result<u64, StoreError>;
    /// A live webhook by uuid, whatever its org (for the delivery engine).
    async fn webhook_by_uuid(&self, webhook: Uuid) -> Result<Option<Webhook>, StoreError>;
    /// Turns a webhook off on the receiver's word (410 Gone, a circuit open
    /// too long): `is_active = false` with the reason; its pending
    /// deliveries are held. `false` when it was already off (or gone).
    async fn disable_webhook(
        &self,
        webhook: Uuid,
        reason: String,
        at: i64,
    ) -> Result<bool, StoreError>;
}

/// The columns [`decode`] reads, in its order.
macro_rules! cols {
    () => {
        "uuid, org_uuid, url, url_password_sealed, description, is_active, event_names, \
         secret_sealed, signature_scheme, ordering, max_in_flight, disabled_reason, disabled_at, \
         created_at, updated_at, previous_secret_sealed, previous_secret_until, account_uuids, \
         owner_account_uuid, options"
    };
}
pub(crate) use cols;

/// The org's live webhooks toward its limit; `$2`: whether account-level
/// ones count.
pub(crate) static COUNT_LIVE: Sql = Sql::new(
    "SELECT count(*) FROM webhooks WHERE org_uuid = $1 AND deleted_at IS NULL \
     AND (owner_account_uuid IS NULL OR $2)",
);
pub(crate) static INSERT: Sql = Sql::new(concat!(
    "INSERT INTO webhooks (uuid, org_uuid, url, url_password_sealed, description, is_active, \
     event_names, signature_scheme, ordering, max_in_flight, created_at, updated_at, \
     account_uuids, owner_account_uuid, options) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) RETURNING ",
    cols!()
));
pub(crate) static LIST: Sql = Sql::new(concat!(
    "SELECT ",
    cols!(),
    " FROM webhooks WHERE org_uuid = $1 AND deleted_at IS NULL ORDER BY created_at, uuid"
));
/// A live webhook of an org: `$1` the webhook, `$2` the org.
pub(crate) static GET_LIVE: Sql = Sql::new(concat!(
    "SELECT ",
    cols!(),
    " FROM webhooks WHERE uuid = $1 AND org_uuid = $2 AND deleted_at IS NULL"
));
pub(crate) static BY_OWNER: Sql = Sql::new(concat!(
    "SELECT ",
    cols!(),
    " FROM webhooks WHERE owner_account_uuid = $1 AND deleted_at IS NULL"
));
pub(crate) static BY_UUID: Sql = Sql::new(concat!(
    "SELECT ",
    cols!(),
    " FROM webhooks WHERE uuid = $1 AND deleted_at IS NULL"
));
/// Writes every field [`apply`] may change ([`update_values`]).
pub(crate) static UPDATE: Sql = Sql::new(
    "UPDATE webhooks SET url = $2, url_password_sealed = $3, description = $4, is_active = $5, \
     event_names = $6, secret_sealed = $7, signature_scheme = $8, ordering = $9, \
     max_in_flight = $10, disabled_reason = $11, disabled_at = $12, updated_at = $13, \
     previous_secret_sealed = $14, previous_secret_until = $15, account_uuids = $16, \
     options = $17 WHERE uuid = $1",
);
pub(crate) static DELETE: Sql = Sql::new(
    "UPDATE webhooks SET deleted_at = $3, updated_at = $3 \
     WHERE uuid = $1 AND org_uuid = $2 AND deleted_at IS NULL",
);
pub(crate) static DISABLE: Sql = Sql::new(
    "UPDATE webhooks SET is_active = false, disabled_reason = $2, disabled_at = $3, \
     updated_at = $3 WHERE uuid = $1 AND deleted_at IS NULL AND is_active = true",
);

/// What a change of the webhook does to its deliveries: turned off, its
/// pending ones are held; turned on, its held ones are due now; deleted,
/// its pending and held ones are cancelled.
pub(crate) static HOLD_PENDING: Sql = Sql::new(
    "UPDATE deliveries SET status = 'held', updated_at = $2 \
     WHERE webhook_uuid = $1 AND status = 'pending'",
);
pub(crate) static RELEASE_HELD: Sql = Sql::new(
    "UPDATE deliveries SET status = 'pending', next_attempt_at = $2, updated_at = $2 \
     WHERE webhook_uuid = $1 AND status = 'held'",
);
pub(crate) static CANCEL_OPEN: Sql = Sql::new(
    "UPDATE deliveries SET status = 'cancelled', updated_at = $2 \
     WHERE webhook_uuid = $1 AND status IN ('pending', 'held')",
);

/// The statement that follows turning a webhook on (`true`) or off.
pub(crate) fn hold_or_release(active: bool) -> &'static Sql {
    if active { &RELEASE_HELD } else { &HOLD_PENDING }
}

/// The parameters of [`INSERT`].
pub(crate) fn insert_values(w: &NewWebhook) -> Vec<Value> {
    vec![
        w.uuid.into(),
        w.org_uuid.into(),
        w.url.clone().into(),
        w.url_password_sealed.clone().into(),
        w.description.clone().into(),
        w.is_active.into(),
        text_list(&w.event_names).into(),
        w.signature_scheme.as_str().into(),
        w.ordering.as_str().into(),
        w.max_in_flight.into(),
        w.created_at.into(),
        account_list(&w.account_uuids).into(),
        w.owner_account.into(),
        options_json(&w.options).into(),
    ]
}

/// The parameters of [`UPDATE`]: every field [`apply`] may change.
pub(crate) fn update_values(w: &Webhook) -> Vec<Value> {
    vec![
        w.uuid.into(),
        w.url.clone().into(),
        w.url_password_sealed.clone().into(),
        w.description.clone().into(),
        w.is_active.into(),
        text_list(&w.event_names).into(),
        w.secret_sealed.clone().into(),
        w.signature_scheme.as_str().into(),
        w.ordering.as_str().into(),
        w.max_in_flight.into(),
        w.disabled_reason.clone().into(),
        w.disabled_at.into(),
        w.updated_at.into(),
        w.previous_secret_sealed.clone().into(),
        w.previous_secret_until.into(),
        account_list(&w.account_uuids).into(),
        options_json(&w.options).into(),
    ]
}

/// Reads a row of [`cols`].
pub(crate) fn decode(r: &dyn Cells) -> Result<Webhook, StoreError> {
    Ok(Webhook {
        uuid: r.uuid(0)?,
        org_uuid: r.uuid(1)?,
        url: r.text(2)?,
        url_password_sealed: r.opt_text(3)?,
        description: r.opt_text(4)?,
        is_active: r.flag(5)?,
        event_names: r.text_list(6)?,
        secret_sealed: r.opt_text(7)?,
        signature_scheme: orghooks_core::webhook::SignatureScheme::from_stored(&r.text(8)?),
        ordering: orghooks_core::webhook::Ordering::from_stored(&r.text(9)?),
        max_in_flight: r.opt_count(10)?,
        disabled_reason: r.opt_text(11)?,
        disabled_at: r.opt_int(12)?,
        created_at: r.int(13)?,
        updated_at: r.int(14)?,
        previous_secret_sealed: r.opt_text(15)?,
        previous_secret_until: r.opt_int(16)?,
        account_uuids: accounts(r, 17)?,
        owner_account: r.opt_uuid(18)?,
        options: options(r, 19)?,
    })
}

/// The options column: NULL when every setting is the node's.
pub(crate) fn options_json(o: &DeliveryOptions) -> Option<String> {
    if *o == DeliveryOptions::default() {
        return None;
    }
    let value = serde_json::json!({
        "header_names": o.header_names,
        "headers_sealed": o.headers_sealed,
        "retry_gaps_ms": o.retry_gaps_ms,
        "timeout_ms": o.timeout_ms,
    });
    Some(value.to_string())
}

/// Reads the options column.
pub(crate) fn options(r: &dyn Cells, i: usize) -> Result<DeliveryOptions, StoreError> {
    let Some(text) = r.opt_text(i)? else {
        return Ok(DeliveryOptions::default());
    };
    let corrupt = |what: &str| StoreError::Corrupt(format!("column {i}: {what}"));
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| corrupt(&e.to_string()))?;
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(DeliveryOptions {
        header_names: strings("header_names"),
        headers_sealed: v["headers_sealed"].as_str().map(str::to_owned),
        retry_gaps_ms: v["retry_gaps_ms"]
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect()),
        timeout_ms: v["timeout_ms"]
            .as_u64()
            .map(|t| u32::try_from(t).map_err(|_| corrupt("timeout_ms")))
            .transpose()?,
    })
}

/// An account scope as its column keeps it: NULL for every account.
pub(crate) fn account_list(accounts: &[Uuid]) -> Option<String> {
    (!accounts.is_empty())
        .then(|| serde_json::to_string(accounts).expect("a list of uuids serialises"))
}

/// Reads an account scope (NULL: every account).
pub(crate) fn accounts(r: &dyn Cells, i: usize) -> Result<Vec<Uuid>, StoreError> {
    let Some(text) = r.opt_text(i)? else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// Applies `patch`: fields it sets replace the webhook's; re-activation
/// clears the disabled fields; a new secret moves the old one aside while a
/// rotation overlap is asked for.
pub(crate) fn apply(w: &mut Webhook, patch: WebhookPatch) {
    if let Some((url, password)) = patch.url {
        w.url = url;
        w.url_password_sealed = password;
    }
    if let Some(d) = patch.description {
        w.description = Some(d);
    }
    if let Some(active) = patch.is_active {
        w.is_active = active;
        if active {
            w.disabled_reason = None;
            w.disabled_at = None;
        }
    }
    if let Some(names) = patch.event_names {
        w.event_names = names;
    }
    if let Some(s) = patch.signature_scheme {
        w.signature_scheme = s;
    }
    if let Some(o) = patch.ordering {
        w.ordering = o;
    }
    if let Some(n) = patch.max_in_flight {
        w.max_in_flight = Some(n);
    }
    if let Some(accounts) = patch.account_uuids {
        w.account_uuids = accounts;
    }
    if let Some(options) = patch.options {
        w.options = options;
    }
    if let Some(s) = patch.secret_sealed {
        let replaced = w.secret_sealed.replace(s);
        match (replaced, patch.keep_previous_secret_until) {
            (Some(old), Some(until)) => {
                w.previous_secret_sealed = Some(old);
                w.previous_secret_until = Some(until);
            }
            _ => {
                w.previous_secret_sealed = None;
                w.previous_secret_until = None;
            }
        }
    }
    w.updated_at = patch.updated_at;
}
