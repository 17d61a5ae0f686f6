//! Runs the conformance suite on PostgreSQL, each test in a fresh database.

use std::sync::Arc;

use orghooks_store::postgres::scratch::ScratchDatabase;
use orghooks_store::postgres::{PgOptions, PgStore};
use orghooks_store::*;
use uuid::Uuid;

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

/// A node keeps where events go between publishes; a change made through
/// another node applies to its very next publish (the insert checks the
/// routing version it chose by, and reads again when it moved on).
#[tokio::test]
async fn a_webhook_change_on_one_node_routes_the_next_publish_on_another() {
    let db = ScratchDatabase::create().await;
    let a = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    let b = PgStore::open(&db.url, &PgOptions::default()).await.unwrap();
    let org = conformance::seed_org(&a, "o").await;
    let account = conformance::seed_account(&a, org.uuid, Role::Manager).await;
    let first = b
        .insert_webhook(
            conformance::new_webhook(org.uuid, "https://example.com/1"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let publish = |store: &PgStore, book: &'static str| {
        let store = store.clone();
        async move {
            let out = store
                .append_events(
                    vec![conformance::event(account.uuid, Uuid::new_v4(), book, "{}")],
                    100,
                    Some(conformance::lease(10_000)),
                    Backpressure::Wait,
                )
                .await
                .unwrap();
            let mut hooks: Vec<Uuid> = out[0]
                .as_ref()
                .unwrap()
                .deliveries
                .iter()
                .map(|d| d.webhook_uuid)
                .collect();
            hooks.sort();
            hooks
        }
    };
    assert_eq!(publish(&a, "b1").await, vec![first.uuid]);
    let second = b
        .insert_webhook(
            conformance::new_webhook(org.uuid, "https://example.com/2"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let mut both = vec![first.uuid, second.uuid];
    both.sort();
    assert_eq!(publish(&a, "b2").await, both, "the added webhook hears it");
    b.update_webhook(
        org.uuid,
        first.uuid,
        WebhookPatch {
            is_active: Some(false),
            updated_at: 200,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        publish(&a, "b3").await,
        vec![second.uuid],
        "the turned-off webhook does not"
    );
    b.delete_webhook(org.uuid, second.uuid, 300).await.unwrap();
    assert!(publish(&a, "b4").await.is_empty(), "nor the deleted one");
}
