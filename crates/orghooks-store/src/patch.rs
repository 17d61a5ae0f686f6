//! Applying a [`WebhookPatch`] to a webhook, the same for every backend.

use crate::model::{Webhook, WebhookPatch};

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
        w.max_in_flight = n;
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
