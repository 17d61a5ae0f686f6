//! Applies the PostgreSQL migrations of [`crate::migrations`], recorded in
//! `orghooks_migrations`, under an advisory lock so that nodes starting
//! together migrate once.

use tokio_postgres::Client;

use super::pg;
use crate::StoreError;

/// Any fixed number: the advisory lock that serialises migrations.
const MIGRATION_LOCK: i64 = 0x6f72_6768_6f6f_6b73;

use crate::migrations::POSTGRES as MIGRATIONS;

/// Brings the schema up to date; refuses a database newer than this binary.
pub(crate) async fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS orghooks_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let version: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM orghooks_migrations",
            &[],
        )
        .await
        .map_err(pg)?
        .get(0);
    let version = version as usize;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this orghooks ({}); upgrade orghooks",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO orghooks_migrations (version) VALUES ($1)",
            &[&(i as i32 + 1)],
        )
        .await
        .map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}
