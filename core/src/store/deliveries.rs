//! The hub's delivery log (issue 11 point 2): which documents a session sent to which device,
//! for which member, and when. The hub writes it for the sessions it serves
//! (`relay::server::hub`); the office reads it on the hub's store. It holds ids only (device,
//! member, document key), never a name or a value, and keeps the newest [`MAX_DELIVERIES`]
//! rows, so a busy hub's log stays bounded (about 100 bytes a row).

use rusqlite::params;

use super::Store;
use crate::doc::DocId;
use crate::error::Result;

/// Rows the delivery log keeps; older ones are dropped as new ones arrive.
pub const MAX_DELIVERIES: i64 = 200_000;

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
    /// and drops the oldest rows beyond [`MAX_DELIVERIES`].
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
            let mut insert = tx.prepare_cached(
                "INSERT INTO deliveries (at, device, member, doc_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for d in docs {
                insert.execute(params![at, device, member, d.key()])?;
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
