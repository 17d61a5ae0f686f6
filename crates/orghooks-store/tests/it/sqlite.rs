//! Runs the conformance suite on SQLite files in fresh temporary folders,
//! plus what only SQLite has (reopen, single writer).

use std::sync::Arc;

use orghooks_store::sqlite::{SqliteOptions, SqliteStore};
use orghooks_store::{Store, Tenancy};

use crate::conformance;

async fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("orghooks.db"), &SqliteOptions::default()).unwrap();
    (dir, Arc::new(store))
}

conformance_suite!();

#[tokio::test]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orghooks.db");
    let org = {
        let store = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
        conformance::seed_org(&store, "persisted").await
    };
    let store = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
    let orgs = store.list_orgs().await.unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].uuid, org.uuid);
    assert_eq!(orgs[0].name, "persisted");
}
