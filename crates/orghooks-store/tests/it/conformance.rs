//! Backend-independent checks of the `Store` contract.

use std::sync::Arc;

/// Every check of the suite as a test, each on the database a `fresh()`
/// of the calling module makes (kept alive for the test).
macro_rules! conformance_suite {
    () => {
        conformance_suite!(
            orgs_and_accounts,
            token_grants_follow_the_account,
            webhook_crud_is_scoped_to_its_org,
            webhook_limit_holds_under_concurrency,
            webhook_url_is_unique_among_live_webhooks,
            reactivation_clears_disabled_fields,
            batches_fan_out_and_keep_book_order,
            outcomes_report_deliveries_no_longer_leased,
            a_redelivery_asked_for_in_flight_follows_a_failure,
            renewed_leases_are_not_claimed,
            publisher_tokens_are_found_by_hash_and_revoked_once,
            claims_take_the_oldest_due_first,
            an_outcome_from_another_owner_settles_nothing,
            a_node_frees_rather_than_claims_its_own_lapsed_leases,
            test_deliveries_and_the_log,
            disabling_holds_and_reactivating_releases,
            resending_starts_a_fresh_budget,
            purge_takes_only_finished_events,
            recovering_leases_frees_every_lease,
            a_webhook_without_its_own_cap_follows_the_default,
            a_scoped_webhook_hears_only_its_accounts,
            account_level_webhooks_are_one_per_account_outside_the_limit,
            portal_links_open_once_into_sessions,
            notices_are_one_event_delivered_to_the_chosen_webhooks,
        );
    };
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_database, store) = fresh().await;
            crate::conformance::$name(store).await;
        }
    )*};
}

use orghooks_core::webhook::{Ordering, SignatureScheme};
use orghooks_store::*;
use uuid::Uuid;

pub async fn seed_org(store: &dyn Store, name: &str) -> Org {
    store
        .create_org(NewOrg {
            uuid: Uuid::new_v4(),
            name: name.into(),
            created_at: 1_000,
        })
        .await
        .unwrap()
}

pub async fn seed_account(store: &dyn Store, org: Uuid, role: Role) -> Account {
    store
        .create_account(NewAccount {
            uuid: Uuid::new_v4(),
            org_uuid: org,
            name: "acct".into(),
            role,
            client_id: Uuid::new_v4().simple().to_string(),
            client_secret_hash: vec![1, 2, 3],
            created_at: 2_000,
        })
        .await
        .unwrap()
}

pub fn new_webhook(org: Uuid, url: &str) -> NewWebhook {
    NewWebhook {
        uuid: Uuid::new_v4(),
        org_uuid: org,
        url: url.into(),
        url_password_sealed: None,
        description: Some("desc".into()),
        is_active: true,
        event_names: vec!["book.verified".into()],
        signature_scheme: SignatureScheme::Ocrolus,
        ordering: Ordering::None,
        max_in_flight: None,
        account_uuids: vec![],
        owner_account: None,
        options: DeliveryOptions::default(),
        created_at: 3_000,
    }
}

pub async fn orgs_and_accounts(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    let a = seed_org(&*store, "a").await;
    let b = seed_org(&*store, "b").await;
    assert_eq!(store.list_orgs().await.unwrap().len(), 2);
    let acct = seed_account(&*store, a.uuid, Role::Manager).await;
    seed_account(&*store, b.uuid, Role::Member).await;
    assert_eq!(store.list_accounts(None).await.unwrap().len(), 2);
    assert_eq!(
        store.list_accounts(Some(a.uuid)).await.unwrap(),
        vec![acct.clone()]
    );
    let creds = store
        .account_by_client_id(&acct.client_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(creds.account, acct);
    assert_eq!(creds.client_secret_hash, vec![1, 2, 3]);
    assert!(store.account_by_client_id("nope").await.unwrap().is_none());

    let mut dup = NewAccount {
        uuid: Uuid::new_v4(),
        org_uuid: a.uuid,
        name: "dup".into(),
        role: Role::Member,
        client_id: acct.client_id.clone(),
        client_secret_hash: vec![],
        created_at: 0,
    };
    assert!(matches!(
        store.create_account(dup.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    dup.org_uuid = Uuid::new_v4();
    dup.client_id = "fresh".into();
    assert!(matches!(
        store.create_account(dup).await,
        Err(StoreError::NotFound)
    ));

    let disabled = store
        .set_account_disabled(acct.uuid, Some(5))
        .await
        .unwrap();
    assert_eq!(disabled.disabled_at, Some(5));
    let enabled = store.set_account_disabled(acct.uuid, None).await.unwrap();
    assert_eq!(enabled.disabled_at, None);
    assert!(matches!(
        store.set_account_disabled(Uuid::new_v4(), Some(1)).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn token_grants_follow_the_account(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let acct = seed_account(&*store, org.uuid, Role::Manager).await;
    let token = NewToken {
        hash: vec![9; 32],
        account_uuid: acct.uuid,
        created_at: 10,
        expires_at: 20,
    };
    store.insert_token(token).await.unwrap();
    let grant = store.token_grant(vec![9; 32]).await.unwrap().unwrap();
    assert_eq!(grant.account.uuid, acct.uuid);
    assert_eq!(grant.expires_at, 20);
    assert!(store.token_grant(vec![8; 32]).await.unwrap().is_none());
    store
        .set_account_disabled(acct.uuid, Some(15))
        .await
        .unwrap();
    let grant = store.token_grant(vec![9; 32]).await.unwrap().unwrap();
    assert_eq!(
        grant.account.disabled_at,
        Some(15),
        "a grant shows the account as it is now"
    );
    store.delete_token(vec![9; 32]).await.unwrap();
    assert!(store.token_grant(vec![9; 32]).await.unwrap().is_none());
    store.delete_token(vec![9; 32]).await.unwrap();
}

pub async fn webhook_crud_is_scoped_to_its_org(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a").await;
    let b = seed_org(&*store, "b").await;
    let w = store
        .insert_webhook(
            new_webhook(a.uuid, "https://example.com/a"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    assert_eq!(w.created_at, 3_000);
    assert_eq!(w.updated_at, 3_000);
    assert_eq!(store.get_webhook(a.uuid, w.uuid).await.unwrap(), w);
    assert!(matches!(
        store.get_webhook(b.uuid, w.uuid).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_webhooks(b.uuid).await.unwrap().is_empty());
    let patch = WebhookPatch {
        description: Some("new".into()),
        updated_at: 4_000,
        ..Default::default()
    };
    assert!(matches!(
        store.update_webhook(b.uuid, w.uuid, patch.clone()).await,
        Err(StoreError::NotFound)
    ));
    let updated = store.update_webhook(a.uuid, w.uuid, patch).await.unwrap();
    assert_eq!(updated.description.as_deref(), Some("new"));
    assert_eq!(updated.updated_at, 4_000);
    assert_eq!(updated.event_names, w.event_names);
    assert_eq!(updated.options, DeliveryOptions::default());
    // Its own delivery settings are kept whole, and replaced whole.
    let options = DeliveryOptions {
        header_names: vec!["X-Api-Key".into()],
        headers_sealed: Some("k1:sealed".into()),
        retry_gaps_ms: Some(vec![1_000, 60_000]),
        timeout_ms: Some(9_000),
    };
    let patch = WebhookPatch {
        options: Some(options.clone()),
        updated_at: 4_500,
        ..Default::default()
    };
    let updated = store.update_webhook(a.uuid, w.uuid, patch).await.unwrap();
    assert_eq!(updated.options, options);
    assert_eq!(
        store.get_webhook(a.uuid, w.uuid).await.unwrap().options,
        options
    );
    let patch = WebhookPatch {
        options: Some(DeliveryOptions::default()),
        updated_at: 4_600,
        ..Default::default()
    };
    let updated = store.update_webhook(a.uuid, w.uuid, patch).await.unwrap();
    assert_eq!(updated.options, DeliveryOptions::default());
    assert!(matches!(
        store.delete_webhook(b.uuid, w.uuid, 5_000).await,
        Err(StoreError::NotFound)
    ));
    store.delete_webhook(a.uuid, w.uuid, 5_000).await.unwrap();
    assert!(matches!(
        store.get_webhook(a.uuid, w.uuid).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete_webhook(a.uuid, w.uuid, 5_000).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.list_webhooks(a.uuid).await.unwrap().is_empty());
}

pub async fn webhook_limit_holds_under_concurrency(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .insert_webhook(
                        new_webhook(org.uuid, &format!("https://example.com/{i}")),
                        WebhookLimit::org_level(5),
                    )
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::LimitReached) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(ok, 5);
    assert_eq!(store.list_webhooks(org.uuid).await.unwrap().len(), 5);
}

pub async fn webhook_url_is_unique_among_live_webhooks(store: Arc<dyn Store>) {
    let a = seed_org(&*store, "a").await;
    let b = seed_org(&*store, "b").await;
    let url = "https://example.com/same";
    let w = store
        .insert_webhook(new_webhook(a.uuid, url), WebhookLimit::org_level(5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert_webhook(new_webhook(a.uuid, url), WebhookLimit::org_level(5))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .insert_webhook(new_webhook(b.uuid, url), WebhookLimit::org_level(5))
        .await
        .unwrap();
    let other = store
        .insert_webhook(
            new_webhook(a.uuid, "https://example.com/other"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let patch = WebhookPatch {
        url: Some((url.into(), None)),
        updated_at: 1,
        ..Default::default()
    };
    assert!(matches!(
        store.update_webhook(a.uuid, other.uuid, patch).await,
        Err(StoreError::Conflict(_))
    ));
    store.delete_webhook(a.uuid, w.uuid, 10).await.unwrap();
    store
        .insert_webhook(new_webhook(a.uuid, url), WebhookLimit::org_level(5))
        .await
        .unwrap();
}

pub async fn reactivation_clears_disabled_fields(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let w = store
        .insert_webhook(
            new_webhook(org.uuid, "https://example.com/x"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let off = WebhookPatch {
        is_active: Some(false),
        updated_at: 2,
        ..Default::default()
    };
    let w2 = store.update_webhook(org.uuid, w.uuid, off).await.unwrap();
    assert!(!w2.is_active);
    let on = WebhookPatch {
        is_active: Some(true),
        updated_at: 3,
        ..Default::default()
    };
    let w3 = store.update_webhook(org.uuid, w.uuid, on).await.unwrap();
    assert!(w3.is_active);
    assert_eq!(w3.disabled_reason, None);
    assert_eq!(w3.disabled_at, None);
}

pub fn event(account: Uuid, uuid: Uuid, book: &str, payload: &str) -> NewEvent {
    NewEvent {
        uuid,
        account_uuid: account,
        event_name: "book.verified".into(),
        book_uuid: Some(book.into()),
        occurred_at: 1,
        payload: payload.into(),
        payload_hash: payload.as_bytes().to_vec(),
    }
}

pub fn lease(until: i64) -> Lease {
    Lease {
        owner: "node-a".into(),
        until,
        except: vec![],
    }
}

/// A batch: each event judged on its own (unknown accounts, replays and
/// conflicts within the batch), fan-out to every subscribed webhook, and
/// per-book order within the batch and across claims.
pub async fn batches_fan_out_and_keep_book_order(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let account = seed_account(&*store, org.uuid, Role::Manager).await;
    let plain = store
        .insert_webhook(
            new_webhook(org.uuid, "https://example.com/plain"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let mut ordered = new_webhook(org.uuid, "https://example.com/ordered");
    ordered.ordering = Ordering::PerBook;
    let ordered = store
        .insert_webhook(ordered, WebhookLimit::org_level(5))
        .await
        .unwrap();
    let (e1, e2, e3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let batch = vec![
        event(account.uuid, e1, "book-x", "{\"n\":1}"),
        event(account.uuid, e2, "book-x", "{\"n\":2}"),
        event(account.uuid, e1, "book-x", "{\"n\":1}"),
        event(account.uuid, e1, "book-x", "{\"n\":9}"),
        event(Uuid::new_v4(), Uuid::new_v4(), "book-x", "{}"),
        event(account.uuid, e3, "book-y", "{\"n\":3}"),
    ];
    let results = store
        .append_events(batch, 100, Some(lease(10_000)), Backpressure::Wait)
        .await
        .unwrap();
    let summary: Vec<Result<(u32, usize, bool), AppendError>> = results
        .iter()
        .map(|r| {
            r.clone()
                .map(|a| (a.delivery_count, a.deliveries.len(), a.replayed))
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            Ok((2, 2, false)),
            Ok((2, 1, false)), // book-x's second event waits for the first on the ordered webhook
            Ok((2, 0, true)),
            Err(AppendError::PayloadMismatch),
            Err(AppendError::UnknownAccount),
            Ok((2, 2, false)),
        ]
    );
    // Replaying the same event in a later batch answers the first answer.
    let again = store
        .append_events(
            vec![event(account.uuid, e2, "book-x", "{\"n\":2}")],
            200,
            Some(lease(10_000)),
            Backpressure::Wait,
        )
        .await
        .unwrap();
    assert_eq!(again[0].as_ref().unwrap().delivery_count, 2);
    assert!(again[0].as_ref().unwrap().replayed);

    let first = results[0].as_ref().unwrap();
    let ordered_first = first
        .deliveries
        .iter()
        .find(|d| d.webhook_uuid == ordered.uuid)
        .unwrap();
    assert!(ordered_first.ordered);
    assert!(
        first
            .deliveries
            .iter()
            .any(|d| d.webhook_uuid == plain.uuid && !d.ordered)
    );
    // The blocked delivery is not claimable while the first is unfinished…
    let claimed = store
        .claim_due(300, lease(20_000), 100, vec![])
        .await
        .unwrap();
    assert!(claimed.is_empty(), "{claimed:?}");
    // …and is once the first has succeeded.
    let done = Outcome {
        delivery_id: ordered_first.id,
        attempt: None,
        settle: Settle::Succeeded,
        ordered: true,
    };
    store
        .complete("node-a".into(), vec![done], 400)
        .await
        .unwrap();
    let claimed = store
        .claim_due(500, lease(20_000), 100, vec![])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].webhook_uuid, ordered.uuid);
    assert_eq!(claimed[0].event_uuid, e2);
    assert_eq!(&*claimed[0].payload, "{\"n\":2}");
}

/// An org with one webhook and two events for it, their deliveries leased
/// to `node-a` until `until`.
async fn two_leased_deliveries(store: &dyn Store, until: i64) -> (Org, Webhook, Vec<DeliveryJob>) {
    let org = seed_org(store, "a").await;
    let account = seed_account(store, org.uuid, Role::Manager).await;
    let hook = store
        .insert_webhook(
            new_webhook(org.uuid, "https://example.com/h"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let events = vec![
        event(account.uuid, Uuid::new_v4(), "b1", "{}"),
        event(account.uuid, Uuid::new_v4(), "b2", "{}"),
    ];
    let jobs = store
        .append_events(events, 100, Some(lease(until)), Backpressure::Wait)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.unwrap().deliveries[0].clone())
        .collect();
    (org, hook, jobs)
}

fn outcome(delivery_id: i64, settle: Settle) -> Outcome {
    Outcome {
        delivery_id,
        attempt: None,
        settle,
        ordered: false,
    }
}

/// An outcome that finds its delivery no longer being delivered says so
/// (never silence), except for a delivery cancelled meanwhile.
pub async fn outcomes_report_deliveries_no_longer_leased(store: Arc<dyn Store>) {
    let (org, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    let lost = store
        .complete(
            "node-a".into(),
            vec![outcome(ids[0], Settle::Succeeded)],
            200,
        )
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
    // The same outcome again: the delivery is no longer being delivered.
    let lost = store
        .complete(
            "node-a".into(),
            vec![outcome(ids[0], Settle::Succeeded)],
            300,
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![ids[0]]);
    // Cancelled while in flight (the webhook was deleted): not lost.
    store
        .delete_webhook(org.uuid, hook.uuid, 400)
        .await
        .unwrap();
    let lost = store
        .complete("node-a".into(), vec![outcome(ids[1], Settle::Failed)], 500)
        .await
        .unwrap();
    assert!(lost.is_empty(), "{lost:?}");
}

/// A redelivery asked for while an attempt is in flight: a failure makes
/// the delivery due again at once with a fresh budget; a success ends it.
pub async fn a_redelivery_asked_for_in_flight_follows_a_failure(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    for job in &jobs {
        let asked = store
            .redeliver(hook.uuid, job.uuid, 150, Some(lease(10_000)))
            .await
            .unwrap();
        assert!(matches!(asked, Some(Redelivery::AfterCurrent)), "{asked:?}");
    }
    store
        .complete(
            "node-a".into(),
            vec![
                outcome(jobs[0].id, Settle::Failed),
                outcome(jobs[1].id, Settle::Succeeded),
            ],
            200,
        )
        .await
        .unwrap();
    let first = store.get_delivery(hook.uuid, jobs[0].uuid).await.unwrap();
    assert_eq!(first.summary.status, DeliveryStatus::Pending);
    assert_eq!(first.summary.next_attempt_at, 200);
    assert_eq!(first.summary.attempts, 0);
    let second = store.get_delivery(hook.uuid, jobs[1].uuid).await.unwrap();
    assert_eq!(second.summary.status, DeliveryStatus::Succeeded);
    let claimed = store
        .claim_due(300, lease(20_000), 100, vec![])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, jobs[0].id);
}

/// A lease its owner renews is not claimed when the first expiry passes;
/// another owner's renewal changes nothing.
pub async fn renewed_leases_are_not_claimed(store: Arc<dyn Store>) {
    let (_, _, jobs) = two_leased_deliveries(&*store, 1_000).await;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    store
        .renew_leases("node-a".into(), vec![ids[0]], 5_000)
        .await
        .unwrap();
    store
        .renew_leases("node-b".into(), vec![ids[1]], 5_000)
        .await
        .unwrap();
    let mut other = lease(20_000);
    other.owner = "node-b".into();
    let claimed = store.claim_due(2_000, other, 100, vec![]).await.unwrap();
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[1]],
        "only the lease its owner did not renew expired"
    );
}

/// A node never claims back a lease of its own that lapsed: it still has
/// the delivery in memory, and sending it again would make a duplicate.
/// What it lost track of it frees, once lapsed long enough, keeping what
/// it still holds; then any claim takes it.
pub async fn a_node_frees_rather_than_claims_its_own_lapsed_leases(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 1_000).await;
    let ids: Vec<i64> = jobs.iter().map(|j| j.id).collect();
    assert!(
        store
            .claim_due(5_000, lease(20_000), 100, vec![])
            .await
            .unwrap()
            .is_empty(),
        "its own lapsed leases are not claimed by node-a"
    );
    assert_eq!(
        store
            .free_lapsed_leases("node-b".into(), 4_000, vec![], 5_000)
            .await
            .unwrap(),
        0,
        "another owner frees nothing"
    );
    assert_eq!(
        store
            .free_lapsed_leases("node-a".into(), 999, vec![], 5_000)
            .await
            .unwrap(),
        0,
        "nothing lapsed before 999"
    );
    assert_eq!(
        store
            .free_lapsed_leases("node-a".into(), 4_000, vec![ids[0]], 5_000)
            .await
            .unwrap(),
        1,
        "the one node-a still holds is kept"
    );
    let freed = store.get_delivery(hook.uuid, jobs[1].uuid).await.unwrap();
    assert_eq!(freed.summary.status, DeliveryStatus::Pending);
    assert_eq!(freed.summary.next_attempt_at, 5_000);
    let claimed = store
        .claim_due(5_000, lease(20_000), 100, vec![])
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
}

/// Publisher tokens: found by their hash, listed, revoked once (a second
/// revoke keeps the first time); an unknown one is `NotFound`.
pub async fn publisher_tokens_are_found_by_hash_and_revoked_once(store: Arc<dyn Store>) {
    let token = store
        .create_publisher_token(NewPublisherToken {
            uuid: Uuid::new_v4(),
            name: "platform".into(),
            hash: vec![7; 32],
            created_at: 1_000,
        })
        .await
        .unwrap();
    assert_eq!(token.revoked_at, None);
    assert_eq!(
        store.publisher_token(vec![7; 32]).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(store.publisher_token(vec![8; 32]).await.unwrap(), None);
    assert_eq!(
        store.list_publisher_tokens().await.unwrap(),
        vec![token.clone()]
    );
    let revoked = store
        .revoke_publisher_token(token.uuid, 2_000)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(2_000));
    let again = store
        .revoke_publisher_token(token.uuid, 3_000)
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(2_000));
    assert!(matches!(
        store.revoke_publisher_token(Uuid::new_v4(), 3_000).await,
        Err(StoreError::NotFound)
    ));
}

/// Appends one event per book (so nothing waits for anything) without a
/// lease: every delivery is left pending for the claimers.
async fn pending_deliveries(store: &dyn Store, books: &[&str], at: i64) -> (Webhook, Vec<Uuid>) {
    let org = seed_org(store, "a").await;
    let account = seed_account(store, org.uuid, Role::Manager).await;
    let hook = store
        .insert_webhook(
            new_webhook(org.uuid, "https://example.com/q"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    let mut events = Vec::new();
    for book in books {
        let uuid = Uuid::new_v4();
        store
            .append_events(
                vec![event(account.uuid, uuid, book, "{}")],
                at,
                None,
                Backpressure::Wait,
            )
            .await
            .unwrap();
        events.push(uuid);
    }
    (hook, events)
}

/// Claims are in due order (a retry due earlier goes before a newer
/// delivery, another node's expired lease competes by its expiry), capped
/// by `limit`, and leave out the webhooks in `skip` and what is not due yet.
pub async fn claims_take_the_oldest_due_first(store: Arc<dyn Store>) {
    let (hook, events) = pending_deliveries(&*store, &["b1", "b2", "b3"], 100).await;
    // Nothing is due before its time; a skipped webhook is left alone.
    assert!(
        store
            .claim_due(99, lease(1_000), 10, vec![])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim_due(100, lease(1_000), 10, vec![hook.uuid])
            .await
            .unwrap()
            .is_empty()
    );
    let all = store
        .claim_due(100, lease(1_000), 10, vec![])
        .await
        .unwrap();
    assert_eq!(all.iter().map(|j| j.event_uuid).collect::<Vec<_>>(), events);
    // The first is retried at 300, the second at 200, the third's lease
    // (until 1_000) is left to expire.
    store
        .complete(
            "node-a".into(),
            vec![
                outcome(all[0].id, Settle::Retry { at: 300 }),
                outcome(all[1].id, Settle::Retry { at: 200 }),
            ],
            150,
        )
        .await
        .unwrap();
    let mut b = lease(5_000);
    b.owner = "node-b".into();
    let one = store.claim_due(1_000, b.clone(), 1, vec![]).await.unwrap();
    assert_eq!(
        one.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![all[1].id],
        "due at 200 first"
    );
    assert_eq!(
        one[0].attempts, 0,
        "a retry without an attempt spends nothing"
    );
    let rest = store.claim_due(1_000, b, 10, vec![]).await.unwrap();
    let mut ids: Vec<i64> = rest.iter().map(|j| j.id).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        vec![all[0].id, all[2].id],
        "then the 300 retry and the lease that expired at 1_000"
    );
}

/// An outcome written by a node that no longer holds the lease (it lapsed
/// and another node claimed the delivery) changes nothing and is reported.
pub async fn an_outcome_from_another_owner_settles_nothing(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 1_000).await;
    let mut b = lease(9_000);
    b.owner = "node-b".into();
    let taken = store.claim_due(2_000, b, 10, vec![]).await.unwrap();
    assert_eq!(taken.len(), 2);
    let lost = store
        .complete(
            "node-a".into(),
            vec![outcome(jobs[0].id, Settle::Succeeded)],
            2_500,
        )
        .await
        .unwrap();
    assert_eq!(lost, vec![jobs[0].id]);
    let now = store.get_delivery(hook.uuid, jobs[0].uuid).await.unwrap();
    assert_eq!(
        now.summary.status,
        DeliveryStatus::Delivering,
        "node-b still holds it"
    );
    let lost = store
        .complete(
            "node-b".into(),
            vec![outcome(jobs[0].id, Settle::Succeeded)],
            2_600,
        )
        .await
        .unwrap();
    assert!(lost.is_empty());
}

fn attempt_record(status: u16) -> AttemptRecord {
    AttemptRecord {
        uuid: Uuid::new_v4(),
        started_at: 150,
        duration_ms: 12,
        request_headers: Some("{\"content-type\":\"application/json\"}".into()),
        response_status: Some(status),
        response_headers: Some("{}".into()),
        response_body: Some("nope".into()),
        error: None,
    }
}

/// A test delivery is leased when asked, and the log lists it with the
/// others, newest first, filtered and paged; one delivery shows its
/// attempts in order.
pub async fn test_deliveries_and_the_log(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    let test_event = NewEvent {
        uuid: Uuid::new_v4(),
        account_uuid: Uuid::new_v4(),
        event_name: "book.completed".into(),
        book_uuid: None,
        occurred_at: 1,
        payload: "{\"test\":true}".into(),
        payload_hash: vec![1],
    };
    let (test_uuid, job) = store
        .append_test_delivery(hook.uuid, test_event.clone(), 200, Some(lease(10_000)))
        .await
        .unwrap();
    let job = job.expect("leased");
    assert!(job.is_test);
    assert_eq!(job.uuid, test_uuid);
    assert_eq!(&*job.payload, "{\"test\":true}");
    assert!(matches!(
        store
            .append_test_delivery(Uuid::new_v4(), test_event, 200, None)
            .await,
        Err(StoreError::NotFound)
    ));
    let mut attempt = outcome(jobs[0].id, Settle::Retry { at: 500 });
    attempt.attempt = Some(attempt_record(500));
    let mut second = outcome(jobs[0].id, Settle::Succeeded);
    second.attempt = Some(attempt_record(200));
    store
        .complete("node-a".into(), vec![attempt], 300)
        .await
        .unwrap();
    store
        .claim_due(500, lease(10_000), 10, vec![])
        .await
        .unwrap();
    store
        .complete("node-a".into(), vec![second], 600)
        .await
        .unwrap();

    let page = |filter: DeliveryFilter| {
        let store = store.clone();
        async move { store.list_deliveries(hook.uuid, filter).await.unwrap() }
    };
    let all = page(DeliveryFilter {
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(
        all.iter().map(|d| d.uuid).collect::<Vec<_>>(),
        vec![test_uuid, jobs[1].uuid, jobs[0].uuid],
        "newest first"
    );
    let first_page = page(DeliveryFilter {
        limit: 2,
        ..Default::default()
    })
    .await;
    let next = page(DeliveryFilter {
        limit: 2,
        before: Some(first_page[1].id),
        ..Default::default()
    })
    .await;
    assert_eq!(
        next.iter().map(|d| d.uuid).collect::<Vec<_>>(),
        vec![jobs[0].uuid]
    );
    let succeeded = page(DeliveryFilter {
        status: Some(DeliveryStatus::Succeeded),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(succeeded.len(), 1);
    assert_eq!(succeeded[0].attempts, 2);
    let by_book = page(DeliveryFilter {
        book_uuid: Some("b2".into()),
        event_name: Some("book.verified".into()),
        since: Some(100),
        until: Some(101),
        limit: 10,
        ..Default::default()
    })
    .await;
    assert_eq!(
        by_book.iter().map(|d| d.uuid).collect::<Vec<_>>(),
        vec![jobs[1].uuid]
    );

    let detail = store.get_delivery(hook.uuid, jobs[0].uuid).await.unwrap();
    assert_eq!(detail.payload, "{}");
    assert_eq!(
        detail
            .attempts
            .iter()
            .map(|a| a.response_status)
            .collect::<Vec<_>>(),
        vec![Some(500), Some(200)]
    );
    assert_eq!(detail.attempts[0].response_body.as_deref(), Some("nope"));
    assert!(matches!(
        store.get_delivery(Uuid::new_v4(), jobs[0].uuid).await,
        Err(StoreError::NotFound)
    ));

    let mut counts = store.delivery_counts(hook.uuid, 0, 50).await.unwrap();
    counts.sort_by_key(|c| c.status.as_str());
    assert_eq!(
        counts,
        vec![
            DeliveryCount {
                slice: 2,
                status: DeliveryStatus::Delivering,
                count: 1
            },
            DeliveryCount {
                slice: 2,
                status: DeliveryStatus::Succeeded,
                count: 1
            },
        ],
        "tests are left out of the health counts"
    );
    assert!(
        store
            .delivery_counts(hook.uuid, 101, 50)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Turning a webhook off (by its admin or by the engine) holds its pending
/// deliveries; turning it on makes them due at once. A circuit that closes
/// makes deferred ones due now.
pub async fn disabling_holds_and_reactivating_releases(store: Arc<dyn Store>) {
    let (hook, _) = pending_deliveries(&*store, &["b1", "b2"], 100).await;
    store
        .disable_webhook(hook.uuid, "the receiver answered 410 Gone".into(), 200)
        .await
        .unwrap();
    let disabled = store.webhook_by_uuid(hook.uuid).await.unwrap().unwrap();
    assert!(!disabled.is_active);
    assert_eq!(disabled.disabled_at, Some(200));
    let held = store
        .list_deliveries(
            hook.uuid,
            DeliveryFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        held.iter().all(|d| d.status == DeliveryStatus::Held),
        "{held:?}"
    );
    assert!(
        store
            .claim_due(1_000, lease(5_000), 10, vec![])
            .await
            .unwrap()
            .is_empty()
    );
    store
        .update_webhook(
            hook.org_uuid,
            hook.uuid,
            WebhookPatch {
                is_active: Some(true),
                updated_at: 300,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let claimed = store
        .claim_due(300, lease(5_000), 10, vec![])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // Deferred (circuit open) until 9_000, then the circuit closes at 400.
    store
        .complete(
            "node-a".into(),
            claimed
                .iter()
                .map(|j| outcome(j.id, Settle::Deferred { at: 9_000 }))
                .collect(),
            350,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_due(400, lease(5_000), 10, vec![])
            .await
            .unwrap()
            .is_empty()
    );
    store.release_deferred(hook.uuid, 400).await.unwrap();
    assert_eq!(
        store
            .claim_due(400, lease(5_000), 10, vec![])
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.webhook_by_uuid(Uuid::new_v4()).await.unwrap(), None);
}

/// Redeliver and recover give a finished delivery a fresh budget; one
/// already waiting is left as it is (idempotent).
pub async fn resending_starts_a_fresh_budget(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    let mut failed = outcome(jobs[0].id, Settle::Failed);
    failed.attempt = Some(attempt_record(500));
    let mut succeeded = outcome(jobs[1].id, Settle::Succeeded);
    succeeded.attempt = Some(attempt_record(200));
    store
        .complete("node-a".into(), vec![failed, succeeded], 200)
        .await
        .unwrap();
    // Without a lease the delivery waits for the claimers; asked again
    // while it waits, nothing changes.
    let queued = store
        .redeliver(hook.uuid, jobs[1].uuid, 300, None)
        .await
        .unwrap();
    assert!(matches!(queued, Some(Redelivery::Queued)), "{queued:?}");
    assert_eq!(
        store
            .redeliver(hook.uuid, jobs[1].uuid, 310, None)
            .await
            .unwrap(),
        None
    );
    let pending = store.get_delivery(hook.uuid, jobs[1].uuid).await.unwrap();
    assert_eq!(
        (pending.summary.status, pending.summary.attempts),
        (DeliveryStatus::Pending, 0)
    );
    // With a lease it is handed back to send now.
    let leased = store
        .redeliver(hook.uuid, jobs[0].uuid, 300, Some(lease(10_000)))
        .await
        .unwrap();
    let Some(Redelivery::Leased(job)) = leased else {
        panic!("{leased:?}")
    };
    assert_eq!((job.id, job.attempts), (jobs[0].id, 0));
    assert!(matches!(
        store.redeliver(hook.uuid, Uuid::new_v4(), 300, None).await,
        Err(StoreError::NotFound)
    ));
    // Recover re-queues the failed ones created in the window only.
    store
        .complete(
            "node-a".into(),
            vec![outcome(jobs[0].id, Settle::Failed)],
            400,
        )
        .await
        .unwrap();
    assert_eq!(store.recover(hook.uuid, 0, 100, 500).await.unwrap(), 0);
    assert_eq!(store.recover(hook.uuid, 100, 101, 500).await.unwrap(), 1);
    let recovered = store.get_delivery(hook.uuid, jobs[0].uuid).await.unwrap();
    assert_eq!(
        (
            recovered.summary.status,
            recovered.summary.attempts,
            recovered.summary.next_attempt_at
        ),
        (DeliveryStatus::Pending, 0, 500)
    );
}

/// Purge deletes old events whose deliveries are all finished, with their
/// deliveries and attempts, a batch at a time; unfinished ones stay.
pub async fn purge_takes_only_finished_events(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    let mut done = outcome(jobs[0].id, Settle::Succeeded);
    done.attempt = Some(attempt_record(200));
    store
        .complete("node-a".into(), vec![done], 200)
        .await
        .unwrap();
    assert_eq!(
        store.purge(100, 10).await.unwrap(),
        0,
        "accepted at 100: not before the cutoff"
    );
    assert_eq!(store.purge(101, 10).await.unwrap(), 1);
    assert!(matches!(
        store.get_delivery(hook.uuid, jobs[0].uuid).await,
        Err(StoreError::NotFound)
    ));
    store.get_delivery(hook.uuid, jobs[1].uuid).await.unwrap();
    assert_eq!(
        store.purge(101, 10).await.unwrap(),
        0,
        "the other is still being delivered"
    );
}

/// Recovering leases (a single node starting) makes every leased delivery
/// due now, whoever held it.
pub async fn recovering_leases_frees_every_lease(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    assert_eq!(store.recover_leases(500).await.unwrap(), 2);
    let freed = store.get_delivery(hook.uuid, jobs[0].uuid).await.unwrap();
    assert_eq!(
        (freed.summary.status, freed.summary.next_attempt_at),
        (DeliveryStatus::Pending, 500)
    );
    let mut b = lease(9_000);
    b.owner = "node-b".into();
    assert_eq!(store.claim_due(500, b, 10, vec![]).await.unwrap().len(), 2);
}

/// A webhook that sets no cap stores none (the node's default applies and
/// may change); one that does keeps it, and its deliveries carry it.
pub async fn a_webhook_without_its_own_cap_follows_the_default(store: Arc<dyn Store>) {
    let (_, hook, jobs) = two_leased_deliveries(&*store, 10_000).await;
    assert_eq!(hook.max_in_flight, None);
    assert_eq!(jobs[0].max_in_flight, None);
    let capped = store
        .update_webhook(
            hook.org_uuid,
            hook.uuid,
            WebhookPatch {
                max_in_flight: Some(4),
                updated_at: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(capped.max_in_flight, Some(4));
    assert_eq!(
        store
            .get_webhook(hook.org_uuid, hook.uuid)
            .await
            .unwrap()
            .max_in_flight,
        Some(4)
    );
    store.recover_leases(300).await.unwrap();
    let claimed = store
        .claim_due(300, lease(10_000), 10, vec![])
        .await
        .unwrap();
    assert!(
        claimed.iter().all(|j| j.max_in_flight == Some(4)),
        "{claimed:?}"
    );
}

/// A webhook scoped to some accounts gets only their events (in single
/// appends and batches alike, and in the fan-out count); an empty scope
/// is every account.
pub async fn a_scoped_webhook_hears_only_its_accounts(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let a = seed_account(&*store, org.uuid, Role::Manager).await;
    let b = seed_account(&*store, org.uuid, Role::Member).await;
    let mut scoped = new_webhook(org.uuid, "https://example.com/scoped");
    scoped.account_uuids = vec![a.uuid];
    let scoped = store
        .insert_webhook(scoped, WebhookLimit::org_level(5))
        .await
        .unwrap();
    assert_eq!(scoped.account_uuids, vec![a.uuid]);
    let everyone = store
        .insert_webhook(
            new_webhook(org.uuid, "https://example.com/all"),
            WebhookLimit::org_level(5),
        )
        .await
        .unwrap();
    assert!(everyone.account_uuids.is_empty());
    let batch = vec![
        event(a.uuid, Uuid::new_v4(), "b1", "{}"),
        event(b.uuid, Uuid::new_v4(), "b2", "{}"),
    ];
    let results = store
        .append_events(batch, 100, Some(lease(10_000)), Backpressure::Wait)
        .await
        .unwrap();
    let hooks = |i: usize| {
        let mut w: Vec<Uuid> = results[i]
            .as_ref()
            .unwrap()
            .deliveries
            .iter()
            .map(|d| d.webhook_uuid)
            .collect();
        w.sort();
        w
    };
    let mut both = vec![scoped.uuid, everyone.uuid];
    both.sort();
    assert_eq!(hooks(0), both, "account a: both webhooks");
    assert_eq!(
        hooks(1),
        vec![everyone.uuid],
        "account b: the unscoped one only"
    );
    assert_eq!(results[1].as_ref().unwrap().delivery_count, 1);
    let widened = store
        .update_webhook(
            org.uuid,
            scoped.uuid,
            WebhookPatch {
                account_uuids: Some(vec![]),
                updated_at: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(widened.account_uuids.is_empty());
    let later = store
        .append_events(
            vec![event(b.uuid, Uuid::new_v4(), "b3", "{}")],
            300,
            Some(lease(10_000)),
            Backpressure::Wait,
        )
        .await
        .unwrap();
    assert_eq!(later[0].as_ref().unwrap().delivery_count, 2);
}

/// Ocrolus's account-level webhooks: one per account; several accounts may
/// share a URL with each other and with an org-level webhook; they do not
/// count toward the org's limit unless the limit says so.
pub async fn account_level_webhooks_are_one_per_account_outside_the_limit(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "o").await;
    let first = seed_account(&*store, org.uuid, Role::Manager).await;
    let second = seed_account(&*store, org.uuid, Role::Manager).await;
    let url = "https://example.com/shared";
    let limit = WebhookLimit::org_level(1);
    store
        .insert_webhook(new_webhook(org.uuid, url), limit)
        .await
        .unwrap();
    let legacy = |account: Uuid| NewWebhook {
        owner_account: Some(account),
        account_uuids: vec![account],
        ..new_webhook(org.uuid, url)
    };
    let mine = store
        .insert_webhook(legacy(first.uuid), limit)
        .await
        .unwrap();
    assert_eq!(mine.owner_account, Some(first.uuid));
    store
        .insert_webhook(legacy(second.uuid), limit)
        .await
        .unwrap();
    assert!(
        matches!(
            store.insert_webhook(legacy(first.uuid), limit).await,
            Err(StoreError::Conflict(_))
        ),
        "one per account"
    );
    assert_eq!(
        store.account_webhook(first.uuid).await.unwrap(),
        Some(mine.clone())
    );
    let counted = WebhookLimit {
        max_per_org: 3,
        account_level_counts: true,
    };
    let third = seed_account(&*store, org.uuid, Role::Manager).await;
    assert!(
        matches!(
            store.insert_webhook(legacy(third.uuid), counted).await,
            Err(StoreError::LimitReached)
        ),
        "1 org-level + 2 account-level reach a counted limit of 3"
    );
    store
        .delete_webhook(org.uuid, mine.uuid, 4_000)
        .await
        .unwrap();
    assert_eq!(store.account_webhook(first.uuid).await.unwrap(), None);
    store
        .insert_webhook(legacy(first.uuid), limit)
        .await
        .unwrap();
}

/// A portal link opens once, before it expires, and becomes a session.
pub async fn portal_links_open_once_into_sessions(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let link = |hash: u8, expires_at: i64| NewPortalLink {
        hash: vec![hash; 32],
        org_uuid: org.uuid,
        read_only: true,
        created_at: 10,
        expires_at,
    };
    store.insert_portal_link(link(1, 100)).await.unwrap();
    store.insert_portal_link(link(2, 50)).await.unwrap();
    let elsewhere = NewPortalLink {
        org_uuid: Uuid::new_v4(),
        ..link(3, 100)
    };
    assert!(matches!(
        store.insert_portal_link(elsewhere).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        store.portal_session(vec![1; 32]).await.unwrap().is_none(),
        "an unopened link is no session"
    );
    let opened = store
        .open_portal_link(vec![1; 32], vec![11; 32], 40)
        .await
        .unwrap();
    let session = PortalSession {
        org_uuid: org.uuid,
        read_only: true,
        expires_at: 100,
    };
    assert_eq!(opened, Some(session.clone()));
    assert_eq!(
        store
            .open_portal_link(vec![1; 32], vec![12; 32], 41)
            .await
            .unwrap(),
        None,
        "a link opens once"
    );
    assert_eq!(
        store
            .open_portal_link(vec![2; 32], vec![13; 32], 50)
            .await
            .unwrap(),
        None,
        "an expired link does not open"
    );
    assert_eq!(
        store.portal_session(vec![11; 32]).await.unwrap(),
        Some(session)
    );
    store.delete_portal_session(vec![11; 32]).await.unwrap();
    assert!(store.portal_session(vec![11; 32]).await.unwrap().is_none());
    store.delete_portal_session(vec![11; 32]).await.unwrap();
}

/// A notice is one event with a due, non-test delivery to each chosen
/// webhook that still exists.
pub async fn notices_are_one_event_delivered_to_the_chosen_webhooks(store: Arc<dyn Store>) {
    let org = seed_org(&*store, "a").await;
    let mut hooks = Vec::new();
    for url in [
        "https://example.com/1",
        "https://example.com/2",
        "https://example.com/3",
    ] {
        let w = store
            .insert_webhook(new_webhook(org.uuid, url), WebhookLimit::org_level(5))
            .await
            .unwrap();
        hooks.push(w.uuid);
    }
    store.delete_webhook(org.uuid, hooks[2], 10).await.unwrap();
    let notice = NewEvent {
        uuid: Uuid::new_v4(),
        account_uuid: Uuid::nil(),
        event_name: "webhook.disabled".into(),
        book_uuid: None,
        occurred_at: 100,
        payload: "{\"event_name\":\"webhook.disabled\"}".into(),
        payload_hash: vec![1],
    };
    let made = store
        .append_notice(hooks.clone(), notice.clone(), 100)
        .await
        .unwrap();
    assert_eq!(made, 2, "the deleted webhook gets none");
    let claimed = store
        .claim_due(100, lease(10_000), 10, vec![])
        .await
        .unwrap();
    let mut got: Vec<Uuid> = claimed.iter().map(|j| j.webhook_uuid).collect();
    got.sort();
    let mut want = hooks[..2].to_vec();
    want.sort();
    assert_eq!(got, want);
    assert!(
        claimed
            .iter()
            .all(|j| !j.is_test && j.event_uuid == notice.uuid)
    );
    assert_eq!(
        store
            .append_notice(vec![hooks[2]], notice, 100)
            .await
            .unwrap(),
        0,
        "nothing to deliver: no event either"
    );
}
