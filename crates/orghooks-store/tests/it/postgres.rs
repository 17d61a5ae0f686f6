//! Runs the conformance suite on PostgreSQL, each test in a fresh database.

use std::sync::Arc;

use orghooks_store::Store;
use orghooks_store::postgres::scratch::ScratchDatabase;
use orghooks_store::postgres::{PgOptions, PgStore};

use crate::conformance;

async fn fresh() -> (ScratchDatabase, Arc<dyn Store>) {
    let db = ScratchDatabase::create().await;
    let store = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    (db, Arc::new(store))
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_db, store) = fresh().await;
            conformance::$name(store).await;
        }
    )*};
}

conformance_tests!(
    orgs_and_accounts,
    token_grants_follow_the_account,
    webhook_crud_is_scoped_to_its_org,
    webhook_limit_holds_under_concurrency,
    webhook_url_is_unique_among_live_webhooks,
    reactivation_clears_disabled_fields,
    batches_fan_out_and_keep_book_order,
);

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let db = ScratchDatabase::create().await;
    let first = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    conformance::seed_org(&first, "kept").await;
    let second = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    assert_eq!(second.list_orgs().await.unwrap().len(), 1);
}
