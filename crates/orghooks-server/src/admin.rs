//! The operator's admin operations behind `orghooks admin …`: organizations,
//! API accounts and publisher tokens. They reach the store directly, so they work while a
//! server runs on the same data; the server reads grants fresh on every
//! request, so a change here takes effect there at once.

use std::sync::Arc;

use anyhow::{Context, bail};
use orghooks_core::{Clock, clock::format_ms, credentials};
use orghooks_store::{
    Account, NewAccount, NewOrg, NewPublisherToken, Org, PublisherToken, Role, Store, StoreError,
};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::config::Config;
use crate::data_dir;

pub struct Admin {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
}

/// A new account and its client secret, which is shown once and never stored.
pub struct CreatedAccount {
    pub account: Account,
    pub client_secret: String,
}

impl Admin {
    /// Opens the store `serve` uses; refuses to make a new SQLite database
    /// (a mistyped `--data-dir` would otherwise start an empty one).
    pub async fn open(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let file = config.storage.data_dir.join(data_dir::DB_FILE);
        if !config.storage.is_postgres() && !file.exists() {
            let dir = std::path::absolute(&config.storage.data_dir)
                .unwrap_or_else(|_| config.storage.data_dir.clone());
            bail!(
                "no orghooks database in {} (looked for {}); start `orghooks serve` \
                 or run `orghooks migrate` there first, or give --data-dir",
                dir.display(),
                data_dir::DB_FILE
            );
        }
        Ok(Self {
            store: data_dir::open_store(config).await?,
            clock,
        })
    }

    pub async fn create_org(&self, name: &str) -> anyhow::Result<Org> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 {
            bail!("--name: must be 1 to 255 characters");
        }
        Ok(self
            .store
            .create_org(NewOrg {
                uuid: Uuid::new_v4(),
                name: name.to_owned(),
                created_at: self.clock.now_ms(),
            })
            .await?)
    }

    pub async fn list_orgs(&self) -> anyhow::Result<Vec<Org>> {
        Ok(self.store.list_orgs().await?)
    }

    pub async fn create_account(
        &self,
        org: Uuid,
        name: &str,
        role: Role,
    ) -> anyhow::Result<CreatedAccount> {
        let client_secret = credentials::new_client_secret();
        let result = self
            .store
            .create_account(NewAccount {
                uuid: Uuid::new_v4(),
                org_uuid: org,
                name: name.trim().to_owned(),
                role,
                client_id: credentials::new_client_id(),
                client_secret_hash: credentials::hash(&client_secret),
                created_at: self.clock.now_ms(),
            })
            .await;
        match result {
            Ok(account) => Ok(CreatedAccount {
                account,
                client_secret,
            }),
            Err(StoreError::NotFound) => bail!("--org: no organization {org}"),
            Err(e) => Err(e).context("cannot create the account"),
        }
    }

    pub async fn list_accounts(&self, org: Option<Uuid>) -> anyhow::Result<Vec<Account>> {
        Ok(self.store.list_accounts(org).await?)
    }

    /// Disables (or re-enables) an account: its tokens stop working at once.
    pub async fn set_disabled(&self, account: Uuid, disabled: bool) -> anyhow::Result<Account> {
        let at = disabled.then(|| self.clock.now_ms());
        match self.store.set_account_disabled(account, at).await {
            Err(StoreError::NotFound) => bail!("no account {account}"),
            other => Ok(other?),
        }
    }

    /// Creates a publisher token; the token is returned this once.
    pub async fn create_publisher_token(
        &self,
        name: &str,
    ) -> anyhow::Result<(PublisherToken, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 255 {
            bail!("--name: must be 1 to 255 characters");
        }
        let token = credentials::new_publisher_token();
        let record = self
            .store
            .create_publisher_token(NewPublisherToken {
                uuid: Uuid::new_v4(),
                name: name.to_owned(),
                hash: credentials::hash(&token),
                created_at: self.clock.now_ms(),
            })
            .await?;
        Ok((record, token))
    }

    pub async fn list_publisher_tokens(&self) -> anyhow::Result<Vec<PublisherToken>> {
        Ok(self.store.list_publisher_tokens().await?)
    }

    /// Revokes a publisher token: it stops working at once.
    /// Revokes a publisher token named by its uuid or given itself
    /// (`ohp_…`, as the platform holds it).
    pub async fn revoke_publisher_token(&self, given: &str) -> anyhow::Result<PublisherToken> {
        let given = given.trim();
        let token = match Uuid::parse_str(given) {
            Ok(uuid) => uuid,
            Err(_) if given.starts_with(credentials::PUBLISHER_TOKEN_PREFIX) => {
                match self.store.publisher_token(credentials::hash(given)).await? {
                    Some(t) => t.uuid,
                    None => bail!("no such publisher token (give its uuid or the token)"),
                }
            }
            Err(_) => bail!("{given:?}: give the token's uuid or the token itself (ohp_…)"),
        };
        match self
            .store
            .revoke_publisher_token(token, self.clock.now_ms())
            .await
        {
            Err(StoreError::NotFound) => bail!("no publisher token {token}"),
            other => Ok(other?),
        }
    }
}

pub fn publisher_token_json(t: &PublisherToken) -> Value {
    json!({
        "uuid": t.uuid,
        "name": t.name,
        "created_on": format_ms(t.created_at),
        "revoked": t.revoked_at.is_some(),
        "revoked_at": t.revoked_at.map(format_ms),
    })
}

pub fn org_json(org: &Org) -> Value {
    json!({"uuid": org.uuid, "name": org.name, "created_on": format_ms(org.created_at)})
}

pub fn account_json(a: &Account) -> Value {
    json!({
        "uuid": a.uuid,
        "org_uuid": a.org_uuid,
        "name": a.name,
        "role": a.role.as_str(),
        "client_id": a.client_id,
        "disabled": a.disabled_at.is_some(),
        "disabled_at": a.disabled_at.map(format_ms),
        "created_on": format_ms(a.created_at),
    })
}
