//! Children's personal information, for the app: guardian consent, the school's
//! 个人信息保护负责人, and the lost-phone report. Thin methods over the core's `Archive`
//! (`record_consent`, `withdraw_consent`, `require_consent`, `set_privacy_officer`,
//! `report_lost_device`); every rule is in `shouwang-core` (`consent`, `archive/lost.rs`).

use shouwang_core::archive::{
    ConsentInput, HeldChild as CoreHeld, LostDeviceReport as CoreLost, WithdrawalInput,
};
use shouwang_core::consent::{Consent, Cover};
use shouwang_core::school::PrivacyOfficer as CoreOfficer;

use crate::client::ShouwangClient;
use crate::error::ShouwangError;

type Result<T, E = ShouwangError> = std::result::Result<T, E>;

/// The school's 个人信息保护负责人.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PrivacyOfficer {
    pub name: String,
    pub phone: Option<String>,
}

impl From<CoreOfficer> for PrivacyOfficer {
    fn from(o: CoreOfficer) -> Self {
        PrivacyOfficer {
            name: o.name,
            phone: o.phone,
        }
    }
}

/// A guardian's consent as the file records it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct GuardianConsent {
    pub guardian: String,
    pub relation: String,
    pub date: String,
    /// What it covers: `basic`, `private`, `photos`.
    pub covers: Vec<String>,
    /// The same in Chinese (`基本档案、隐私部分`).
    pub covers_label: String,
    pub form: String,
    pub withdrawn_on: Option<String>,
    pub withdrawn_by: Option<String>,
    /// What was withdrawn, in Chinese.
    pub withdrawn_label: Option<String>,
    /// What is covered now (granted and not withdrawn): `basic`, `private`, `photos`.
    pub effective: Vec<String>,
    /// The guardian objected without ever consenting (a withdrawal with no grant: 拒绝).
    pub objection: bool,
    /// The whole consent in one Chinese line, as the file shows it.
    pub summary: String,
}

fn keys(list: &[Cover]) -> Vec<String> {
    list.iter().map(|c| c.key().to_owned()).collect()
}

impl From<Consent> for GuardianConsent {
    fn from(c: Consent) -> Self {
        GuardianConsent {
            objection: c.is_objection(),
            summary: c.line(),
            covers: keys(&c.covers),
            covers_label: Cover::labels(&c.covers),
            effective: keys(&c.effective()),
            withdrawn_on: c.withdrawn.as_ref().map(|w| w.date.clone()),
            withdrawn_by: c.withdrawn.as_ref().map(|w| w.by.clone()),
            withdrawn_label: c.withdrawn.as_ref().map(|w| Cover::labels(&w.covers)),
            guardian: c.guardian,
            relation: c.relation,
            date: c.date,
            form: c.form,
        }
    }
}

/// A consent from the paper form.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConsentDraft {
    pub guardian: String,
    pub relation: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// `basic`, `private`, `photos` (or their Chinese labels).
    pub covers: Vec<String>,
    /// The paper form's number.
    pub form: String,
}

/// A withdrawal of consent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WithdrawalDraft {
    pub date: String,
    pub by: String,
    pub covers: Vec<String>,
}

/// A child whose file a lost device may have held.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HeldChild {
    pub id: String,
    pub name: String,
    pub class_name: Option<String>,
    /// Whether the private part was in scope too.
    pub private: bool,
    /// Whether the hub's sync record shows the file reached the device (exact).
    pub synced: bool,
}

impl From<CoreHeld> for HeldChild {
    fn from(c: CoreHeld) -> Self {
        HeldChild {
            id: c.id.0,
            name: c.name,
            class_name: c.class_name,
            private: c.private,
            synced: c.synced,
        }
    }
}

/// The lost-phone report (see the core's `archive/lost.rs` for what is exact and what is a
/// bound).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LostDeviceReport {
    pub device: String,
    pub label: String,
    pub member: String,
    pub newly_revoked: bool,
    /// When the device was registered, ms since the epoch: the earliest it held anything.
    pub registered_at: Option<i64>,
    /// The last sync this store completed with it, ms since the epoch.
    pub last_sync: Option<i64>,
    /// What it may have held (an upper bound).
    pub children: Vec<HeldChild>,
    /// Children of ended pairings it held until its first sync after the end.
    pub ended_pairings: Vec<HeldChild>,
}

impl From<CoreLost> for LostDeviceReport {
    fn from(r: CoreLost) -> Self {
        LostDeviceReport {
            device: r.device,
            label: r.label,
            member: r.member,
            newly_revoked: r.newly_revoked,
            registered_at: r.registered_at,
            last_sync: r.last_sync,
            children: r.children.into_iter().map(HeldChild::from).collect(),
            ended_pairings: r.ended_pairings.into_iter().map(HeldChild::from).collect(),
        }
    }
}

#[uniffi::export]
impl ShouwangClient {
    /// The consent a child's file records (`None`: none yet).
    pub fn consent(&self, child_id: String) -> Result<Option<GuardianConsent>> {
        self.inner
            .with_archive(|a| Ok(a.consent(&child_id)?.map(GuardianConsent::from)))
    }

    /// Records a guardian's consent from the paper form (the child's 班主任, administrators).
    pub fn record_consent(&self, child_id: String, draft: ConsentDraft) -> Result<()> {
        let input = ConsentInput {
            guardian: draft.guardian,
            relation: draft.relation,
            date: draft.date,
            covers: draft.covers.join(","),
            form: draft.form,
        };
        self.inner.write(|a| a.record_consent(&child_id, &input))
    }

    /// Records a withdrawal. Returns the sentence to show (it points to erasure).
    pub fn withdraw_consent(&self, child_id: String, draft: WithdrawalDraft) -> Result<String> {
        let input = WithdrawalInput {
            date: draft.date,
            by: draft.by,
            covers: draft.covers.join(","),
        };
        self.inner.write(|a| a.withdraw_consent(&child_id, &input))
    }

    /// From now on, private parts need consent (administrators; cannot be undone).
    pub fn require_consent(&self) -> Result<()> {
        self.inner.write(|a| a.require_consent())
    }

    /// The school's 个人信息保护负责人, if named.
    pub fn privacy_officer(&self) -> Result<Option<PrivacyOfficer>> {
        self.inner.with_archive(|a| {
            Ok(a.school()?
                .privacy_officer
                .clone()
                .map(PrivacyOfficer::from))
        })
    }

    /// Names the school's 个人信息保护负责人 (administrators).
    pub fn set_privacy_officer(&self, name: String, phone: String) -> Result<()> {
        self.inner.write(|a| a.set_privacy_officer(&name, &phone))
    }

    /// Reports a device lost (administrators): revokes it and lists the children's files it
    /// may have held. `device` is its id (or a prefix of at least 6 characters) or its device
    /// code.
    pub fn report_lost_device(&self, device: String) -> Result<LostDeviceReport> {
        self.inner
            .write(|a| Ok(a.report_lost_device(&device)?.into()))
    }
}
