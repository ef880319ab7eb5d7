//! Renewing an expired membership on the store a device already holds.
//!
//! A certificate lasts 30 days and is renewed at every hub sync past its half-life, so a
//! phone that did not reach the hub for a month (a summer holiday, a volunteer who only met
//! colleagues' phones) holds an expired one, and the hub refuses it for good: a lost phone
//! falls out of trust by time. The administrator's answer is a new invite, and the device
//! enrolls again **with the key it holds** (`shouwang_relay::device::renew`), so its store,
//! and whatever it wrote and has not sent, stays: a fresh join would need a new store and
//! lose that work.
//!
//! The hub answers such an enrollment as any other (it registers a device only once, and
//! never a revoked one): a certificate and the member's documents. Both are taken here in
//! one transaction, the documents merged as the hub's are at a sync, and nothing is written
//! if any check fails. The device's sync state with the hub is kept as it was (true, if
//! older than what the hub now records): its next sync sends its unsent work.

use super::Archive;
use super::exchange::{ImportReport, take_enrollment};
use crate::bundle::Bundle;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::school::{Member, SchoolView};

/// Why the hub's documents for a renewal are refused: they are not for this device.
const NOT_THIS_DEVICE: &str = "学校服务器发来的档案不是给这台设备的，没有改动本机的档案";

impl Archive {
    /// Takes the plain bundle the hub sent over an authenticated enrollment of this device's
    /// own key (see the module docs) and writes `meta` (the new certificate and invite) in the
    /// same transaction. The bundle must be this school's, name this device, and register it
    /// to this member, not revoked; documents she may not see are dropped, as at a join.
    /// `hub`: the hub's endpoint id, the sync peer the documents came from; what is merged is
    /// recorded as from it (a change refused is listed as the hub's, as at a sync).
    pub fn renew_enrolled(
        &mut self,
        bundle_bytes: &[u8],
        hub: &str,
        meta: &[(&str, &str)],
    ) -> Result<ImportReport> {
        let bundle = Bundle::decode(bundle_bytes)?;
        if bundle.school != self.school_id {
            return Err(Error::WrongSchool);
        }
        if bundle.device.as_ref() != Some(&self.device) {
            return Err(Error::NotPermitted(NOT_THIS_DEVICE.into()));
        }
        if !bundle.entries.iter().any(|e| e.doc == DocId::School) {
            return Err(Error::invalid(
                "学校文件",
                "学校服务器发来的档案里没有学校信息，请重试",
            ));
        }
        let (me, device) = (self.me.clone(), self.device.clone());
        let mut report = self.store.write(|b| {
            // Sent by the hub, not in a file: its sync's source.
            b.set_source(hub);
            // Registered to this device's own member: a renewal never changes who it is.
            let admit = |_: &SchoolView, registered: Option<&Member>| {
                registered
                    .filter(|m| m.id == me)
                    .cloned()
                    .ok_or_else(|| Error::NotPermitted(NOT_THIS_DEVICE.into()))
            };
            let (_, _, report) = take_enrollment(b, bundle.entries, &device, admit, meta)?;
            Ok(report)
        })?;
        // Renewed and merged: a purge that fails now (the store busy) is done again at the
        // next sync, and is no reason to tell her the renewal failed.
        report.purged = self.purge_out_of_scope().unwrap_or_else(|e| {
            tracing::warn!("purge after a renewal: {e}");
            0
        });
        Ok(report)
    }
}
