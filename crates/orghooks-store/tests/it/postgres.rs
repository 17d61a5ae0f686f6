//! Runs the conformance suite on PostgreSQL, each test in a fresh database.

use std::sync::Arc;

use orghooks_store::postgres::scratch::ScratchDatabase;
use orghooks_store::postgres::{PgOptions, PgStore};
use orghooks_store::{Store, Tenancy};

use crate::conformance;

async fn fresh() -> (ScratchDatabase, Arc<dyn Store>) {
    let db = ScratchDatabase::create().await;
    let store = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    (db, Arc::new(store))
}

conformance_suite!();

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let db = ScratchDatabase::create().await;
    let first = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    conformance::seed_org(&first, "kept").await;
    let second = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    assert_eq!(second.list_orgs().await.unwrap().len(), 1);
}
