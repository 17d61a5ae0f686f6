//! The delivery log on PostgreSQL: the shared statements of
//! [`crate::log`]; the purge locks the events it takes (`SKIP LOCKED`) so
//! that nodes purging together do not wait on each other.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use uuid::Uuid;

use super::{PgStore, exec, pg, row, rows};
use crate::log::{self, RedeliverStep};
use crate::model::*;
use crate::sql::Sql;
use crate::{DeliveryLog, StoreError};

#[async_trait]
impl DeliveryLog for PgStore {
    async fn list_deliveries(
        &self,
        webhook: Uuid,
        f: DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        let client = self.client().await?;
        rows(
            &client,
            &log::LIST,
            &[
                &webhook,
                &f.status.map(DeliveryStatus::as_str),
                &f.event_name,
                &f.book_uuid,
                &f.since,
                &f.until,
                &f.before,
                &i64::from(f.limit),
            ],
            log::summary,
        )
        .await
    }

    async fn get_delivery(
        &self,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<DeliveryDetail, StoreError> {
        let client = self.client().await?;
        get(&client, webhook, delivery).await
    }

    async fn redeliver(
        &self,
        webhook: Uuid,
        delivery: Uuid,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<Option<Redelivery>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let detail = get(&tx, webhook, delivery).await?;
        let id = detail.summary.id;
        let answer = match log::redeliver_step(detail.summary.status) {
            RedeliverStep::Nothing => None,
            RedeliverStep::AfterCurrent => {
                exec(&tx, &log::MARK_REDELIVER, &[&id]).await?;
                Some(Redelivery::AfterCurrent)
            }
            RedeliverStep::Resend => match lease {
                None => {
                    exec(&tx, &log::REQUEUE, &[&id, &now]).await?;
                    Some(Redelivery::Queued)
                }
                // Another request redelivered it meanwhile: idempotent.
                Some(lease) => row(
                    &tx,
                    &log::LEASE_AGAIN,
                    &[&id, &now, &lease.owner, &lease.until],
                    log::leased_again,
                )
                .await?
                .map(|leased| log::leased_job(detail, leased)),
            },
        };
        tx.commit().await.map_err(pg)?;
        Ok(answer)
    }

    async fn delivery_counts(
        &self,
        webhook: Uuid,
        since: i64,
        slice_ms: i64,
    ) -> Result<Vec<DeliveryCount>, StoreError> {
        let client = self.client().await?;
        rows(
            &client,
            &log::COUNTS,
            &[&webhook, &since, &slice_ms],
            log::count,
        )
        .await
    }

    async fn recover(
        &self,
        webhook: Uuid,
        since: i64,
        until: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        exec(&client, &log::RECOVER, &[&webhook, &since, &until, &now]).await
    }

    async fn purge(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        static PURGEABLE: Sql = Sql::new(concat!(log::purgeable!(), " FOR UPDATE SKIP LOCKED"));
        static DELETE: [Sql; 3] = [
            Sql::new(
                "DELETE FROM attempts WHERE delivery_id IN \
                 (SELECT id FROM deliveries WHERE event_id = ANY($1))",
            ),
            Sql::new("DELETE FROM deliveries WHERE event_id = ANY($1)"),
            Sql::new("DELETE FROM events WHERE id = ANY($1)"),
        ];
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let ids = rows(&tx, &PURGEABLE, &[&cutoff, &i64::from(limit)], |r| r.int(0)).await?;
        if !ids.is_empty() {
            for sql in &DELETE {
                exec(&tx, sql, &[&ids]).await?;
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(ids.len() as u64)
    }
}

async fn get(
    client: &impl GenericClient,
    webhook: Uuid,
    delivery: Uuid,
) -> Result<DeliveryDetail, StoreError> {
    let (summary, payload) = row(client, &log::GET, &[&delivery, &webhook], |r| {
        Ok((log::summary(r)?, r.text(12)?))
    })
    .await?
    .ok_or(StoreError::NotFound)?;
    let attempts = rows(client, &log::ATTEMPTS, &[&summary.id], log::attempt).await?;
    Ok(DeliveryDetail {
        summary,
        payload,
        attempts,
    })
}
