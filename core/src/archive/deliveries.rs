//! Reading the hub's delivery log (see [`crate::store::Store::log_deliveries`]): which
//! documents went to which device, and when. Administrators only; on the hub's store (the
//! office opens `hub.db` with its key, or `shouwang-relay deliveries`).

use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::error::Result;

/// Which deliveries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    /// A device id, or a prefix of at least 6 hex digits.
    pub device: Option<String>,
    /// A child (name, 学籍号 or id; an erased child by id): their care file and private part.
    pub child: Option<String>,
    /// At most this many, newest first (default 200).
    pub limit: Option<usize>,
}

/// One document sent to one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Unix seconds, by the hub's clock.
    pub at: i64,
    pub device: String,
    /// The member's id, and name if the school document knows it.
    pub member: String,
    pub member_name: String,
    /// The document's key (`child/<id>`, `child/<id>/private`, `school`, …).
    pub doc: String,
}

impl Archive {
    /// The delivery log this store holds (the hub's), newest first: administrators only.
    pub fn deliveries(&mut self, filter: &DeliveryFilter) -> Result<Vec<Delivery>> {
        self.require_admin()?;
        let device = match filter.device.as_deref().map(str::trim) {
            Some(d) if d.len() < 6 || !d.chars().all(|c| c.is_ascii_hexdigit()) => {
                return Err(crate::error::Error::invalid(
                    "设备",
                    "应为设备编号或其前至少 6 位（十六进制）",
                ));
            }
            d => d.map(str::to_ascii_lowercase),
        };
        let docs = match filter.child.as_deref().map(str::trim) {
            None => None,
            Some(c) => {
                let id = match self.find_child(c) {
                    Ok(id) => id,
                    // An erased child is found by id only.
                    Err(e) => match DocId::parse(&format!("child/{c}")) {
                        Some(DocId::Child(id)) if self.school()?.is_erased(&id) => id,
                        _ => return Err(e),
                    },
                };
                Some(vec![DocId::Child(id.clone()), DocId::Private(id)])
            }
        };
        let limit = filter.limit.unwrap_or(200).clamp(1, 100_000) as i64;
        let rows = self
            .store
            .deliveries(device.as_deref(), docs.as_deref(), limit)?;
        let school = self.school()?;
        Ok(rows
            .into_iter()
            .map(|r| Delivery {
                at: r.at,
                member_name: school.member_name(&r.member),
                device: r.device,
                member: r.member,
                doc: r.doc,
            })
            .collect())
    }
}
