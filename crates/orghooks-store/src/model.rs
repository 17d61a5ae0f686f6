//! The records the store holds, as callers see them. Timestamps are Unix
//! milliseconds; sealed fields hold ciphertext produced by
//! `orghooks_core::sealing`, never a plaintext secret.

use orghooks_core::webhook::{Ordering, SignatureScheme};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrg {
    pub uuid: Uuid,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub uuid: Uuid,
    pub name: String,
    pub created_at: i64,
}

/// What an API account may do: managers manage webhooks, members read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Manager,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manager => "manager",
            Self::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manager" => Some(Self::Manager),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub name: String,
    pub role: Role,
    pub client_id: String,
    pub client_secret_hash: Vec<u8>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub name: String,
    pub role: Role,
    pub client_id: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

/// An account with the hash of its client secret, for the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCredentials {
    pub account: Account,
    pub client_secret_hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub hash: Vec<u8>,
    pub account_uuid: Uuid,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Who a token speaks for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub account: Account,
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    /// Normalised, without its password.
    pub url: String,
    pub url_password_sealed: Option<String>,
    pub description: Option<String>,
    pub is_active: bool,
    pub event_names: Vec<String>,
    pub signature_scheme: SignatureScheme,
    pub ordering: Ordering,
    pub max_in_flight: u32,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub uuid: Uuid,
    pub org_uuid: Uuid,
    pub url: String,
    pub url_password_sealed: Option<String>,
    pub description: Option<String>,
    pub is_active: bool,
    pub event_names: Vec<String>,
    pub secret_sealed: Option<String>,
    pub signature_scheme: SignatureScheme,
    pub ordering: Ordering,
    pub max_in_flight: u32,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A change to a webhook; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPatch {
    /// A new URL replaces the password too: `(url, sealed password)`.
    pub url: Option<(String, Option<String>)>,
    pub description: Option<String>,
    /// Re-activating clears `disabled_reason` and `disabled_at`.
    pub is_active: Option<bool>,
    pub event_names: Option<Vec<String>>,
    pub signature_scheme: Option<SignatureScheme>,
    pub ordering: Option<Ordering>,
    pub max_in_flight: Option<u32>,
    pub secret_sealed: Option<String>,
    pub updated_at: i64,
}
