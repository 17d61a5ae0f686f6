//! Runs the conformance suite on SQLite files in fresh temporary folders,
//! plus what only SQLite has (reopen, single writer).

use std::sync::Arc;

use orghooks_store::Store;
use orghooks_store::sqlite::{SqliteOptions, SqliteStore};

use crate::conformance;

fn fresh() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        SqliteStore::open(&dir.path().join("orghooks.db"), &SqliteOptions::default()).unwrap();
    (dir, Arc::new(store))
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh();
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
