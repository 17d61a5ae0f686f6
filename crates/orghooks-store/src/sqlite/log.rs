//! The delivery log on SQLite: the shared statements of [`crate::log`],
//! run on the readers (lists, one delivery) or the writer (resending, the
//! retention purge).

use async_trait::async_trait;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::{SqliteStore, exec, row, rows};
use crate::log::{self, RedeliverStep};
use crate::model::*;
use crate::sql::Sql;
use crate::{DeliveryLog, StoreError};

#[async_trait]
impl DeliveryLog for SqliteStore {
    async fn list_deliveries(
        &self,
        webhook: Uuid,
        f: DeliveryFilter,
    ) -> Result<Vec<DeliverySummary>, StoreError> {
        self.readers
            .read(move |conn| {
                rows(
                    conn,
                    &log::LIST,
                    params![
                        webhook.to_string(),
                        f.status.map(DeliveryStatus::as_str),
                        f.event_name,
                        f.book_uuid,
                        f.since,
                        f.until,
                        f.before,
                        f.limit
                    ],
                    log::summary,
                )
            })
            .await
    }

    async fn get_delivery(
        &self,
        webhook: Uuid,
        delivery: Uuid,
    ) -> Result<DeliveryDetail, StoreError> {
        self.readers
            .read(move |conn| get(conn, webhook, delivery))
            .await
    }

    async fn redeliver(
        &self,
        webhook: Uuid,
        delivery: Uuid,
        now: i64,
        lease: Option<Lease>,
    ) -> Result<Option<Redelivery>, StoreError> {
        self.writer
            .submit(move |conn| {
                let detail = get(conn, webhook, delivery)?;
                let id = detail.summary.id;
                match log::redeliver_step(detail.summary.status) {
                    RedeliverStep::Nothing => Ok(None),
                    RedeliverStep::AfterCurrent => {
                        exec(conn, &log::MARK_REDELIVER, [id])?;
                        Ok(Some(Redelivery::AfterCurrent))
                    }
                    RedeliverStep::Resend => match lease {
                        None => {
                            exec(conn, &log::REQUEUE, params![id, now])?;
                            Ok(Some(Redelivery::Queued))
                        }
                        // Another request redelivered it meanwhile: idempotent.
                        Some(lease) => Ok(row(
                            conn,
                            &log::LEASE_AGAIN,
                            params![id, now, lease.owner, lease.until],
                            log::leased_again,
                        )?
                        .map(|leased| log::leased_job(detail, leased))),
                    },
                }
            })
            .await
    }

    async fn delivery_counts(
        &self,
        webhook: Uuid,
        since: i64,
        slice_ms: i64,
    ) -> Result<Vec<DeliveryCount>, StoreError> {
        self.readers
            .read(move |conn| {
                rows(
                    conn,
                    &log::COUNTS,
                    params![webhook.to_string(), since, slice_ms],
                    log::count,
                )
            })
            .await
    }

    async fn recover(
        &self,
        webhook: Uuid,
        since: i64,
        until: i64,
        now: i64,
    ) -> Result<u64, StoreError> {
        self.writer
            .submit(move |conn| {
                exec(
                    conn,
                    &log::RECOVER,
                    params![webhook.to_string(), since, until, now],
                )
            })
            .await
    }

    async fn purge(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        static PURGEABLE: Sql = Sql::new(log::purgeable!());
        static DELETE: [Sql; 3] = [
            Sql::new(
                "DELETE FROM attempts WHERE delivery_id IN \
                 (SELECT id FROM deliveries WHERE event_id = $1)",
            ),
            Sql::new("DELETE FROM deliveries WHERE event_id = $1"),
            Sql::new("DELETE FROM events WHERE id = $1"),
        ];
        self.writer
            .submit(move |conn| {
                let ids = rows(conn, &PURGEABLE, params![cutoff, limit], |r| r.int(0))?;
                for id in &ids {
                    for sql in &DELETE {
                        exec(conn, sql, [id])?;
                    }
                }
                Ok(ids.len() as u64)
            })
            .await
    }
}

fn get(conn: &Connection, webhook: Uuid, delivery: Uuid) -> Result<DeliveryDetail, StoreError> {
    let (summary, payload) = row(
        conn,
        &log::GET,
        [delivery.to_string(), webhook.to_string()],
        |r| Ok((log::summary(r)?, r.text(12)?)),
    )?
    .ok_or(StoreError::NotFound)?;
    let attempts = rows(conn, &log::ATTEMPTS, [summary.id], log::attempt)?;
    Ok(DeliveryDetail {
        summary,
        payload,
        attempts,
    })
}
