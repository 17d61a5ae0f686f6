//! Applies the SQLite migrations of [`crate::migrations`] in order at open,
//! recording the version in `PRAGMA user_version`.

use rusqlite::Connection;

use super::backend;
use crate::StoreError;
use crate::migrations::SQLITE as MIGRATIONS;

/// Brings the schema up to date; refuses a database newer than this binary.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this orghooks ({}); upgrade orghooks",
            MIGRATIONS.len()
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}
