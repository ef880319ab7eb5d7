//! The hub's delivery log (issue 11 point 2): which documents a session sent to which device,
//! for which member, and when. The hub writes it for the sessions it serves
//! (`relay::server::hub`); the office reads it on the hub's store. It holds ids only (device,
//! member, document key), never a name or a value, and keeps the newest [`MAX_DELIVERIES`]
//! rows, so a busy hub's log stays bounded (about 100 bytes a row).

use rusqlite::{OptionalExtension, params};

use super::Store;
use crate::doc::DocId;
use crate::error::Result;

/// Rows the delivery log keeps; older ones are dropped as new ones arrive.
pub const MAX_DELIVERIES: i64 = 200_000;

/// A document sent to the same device again within this many seconds of its last logged
/// delivery adds no row. A member's device asking for everything over and over (a modified app
/// answering every sync message with empty heads) would otherwise push the log's older rows,
/// the record of who received what, out of its bound within a day; now it adds at most one row
/// per document of its scope an hour.
pub const SAME_DELIVERY_SECS: i64 = 3_600;

/// One document sent to one device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryRow {
    /// Unix seconds, by the hub's clock.
    pub at: i64,
    pub device: String,
    pub member: String,
    /// The document's key (`child/<id>`, `school`, …).
    pub doc: String,
}

impl Store {
    /// Logs that `docs` were sent to `device` (used by `member`) at `at`, in one transaction,
    /// except a document logged for the device within [`SAME_DELIVERY_SECS`] before, and drops
    /// the oldest rows beyond [`MAX_DELIVERIES`].
    pub fn log_deliveries(
        &mut self,
        device: &str,
        member: &str,
        docs: &[DocId],
        at: i64,
    ) -> Result<()> {
        if docs.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        {
            // The document's newest rows first (`deliveries_by_doc`), until this device's.
            let mut last = tx.prepare_cached(
                "SELECT at FROM deliveries WHERE doc_id = ?1 AND device = ?2
                 ORDER BY id DESC LIMIT 1",
            )?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (at, device, member, doc_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for d in docs {
                let key = d.key();
                let before: Option<i64> = last
                    .query_row(params![key, device], |r| r.get(0))
                    .optional()?;
                if before.is_some_and(|t| (0..SAME_DELIVERY_SECS).contains(&(at - t))) {
                    continue;
                }
                insert.execute(params![at, device, member, key])?;
            }
        }
        tx.prepare_cached(
            "DELETE FROM deliveries WHERE id <= (SELECT max(id) FROM deliveries) - ?1",
        )?
        .execute([MAX_DELIVERIES])?;
        tx.commit()?;
        Ok(())
    }

    /// The newest `limit` rows, newest first, optionally of one device (its id or a prefix of
    /// at least 6 hex digits) and of some documents.
    pub fn deliveries(
        &self,
        device: Option<&str>,
        docs: Option<&[DocId]>,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let keys: Option<Vec<String>> = docs.map(|d| d.iter().map(DocId::key).collect());
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, device, member, doc_id FROM deliveries
             WHERE (?1 IS NULL OR device LIKE ?1 || '%')
             ORDER BY id DESC",
        )?;
        let mut out = Vec::new();
        let mut rows = stmt.query([device])?;
        while let Some(r) = rows.next()? {
            let row = DeliveryRow {
                at: r.get(0)?,
                device: r.get(1)?,
                member: r.get(2)?,
                doc: r.get(3)?,
            };
            if keys.as_ref().is_some_and(|k| !k.contains(&row.doc)) {
                continue;
            }
            out.push(row);
            if out.len() as i64 >= limit {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A device sent the same documents over and over within the hour adds no row; the first
    /// delivery, another document, another device and the next hour each do.
    #[test]
    fn the_same_delivery_within_the_hour_is_logged_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("hub.db")).unwrap();
        let child = DocId::parse("child/c1").unwrap();
        let docs = [DocId::School, child.clone()];
        let t = 1_764_900_000;
        for i in 0..1_000 {
            store.log_deliveries("d1", "m1", &docs, t + i).unwrap();
        }
        assert_eq!(store.deliveries(None, None, 10_000).unwrap().len(), 2);
        store.log_deliveries("d2", "m2", &docs, t + 5).unwrap();
        store
            .log_deliveries("d1", "m1", &[child], t + SAME_DELIVERY_SECS)
            .unwrap();
        let rows = store.deliveries(None, None, 10_000).unwrap();
        assert_eq!(rows.len(), 5, "{rows:?}");
        assert_eq!(rows[0].at, t + SAME_DELIVERY_SECS);
    }
}
