//! The records and enums the apps receive and send: plain data converted from the core's
//! types, field by field. Dates are `YYYY-MM-DD` strings (as the core stores them); device
//! times are milliseconds since the epoch unless the name says otherwise.

use shouwang_core::archive::{ChildFile as CoreFile, ChildRow, HistoryEntry as CoreHistory};
use shouwang_core::due::{self, ComplianceRow as CoreCompliance, DueItem as CoreDue};
use shouwang_core::records::{ProgressView, RecordView, ShownField};
use shouwang_core::roles::Role;
use shouwang_core::school::{Member, SchoolView};
use shouwang_core::sync::Progress;

/// One `key = value` pair of a form, as typed. `key` is the field's key or its Chinese label.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldInput {
    pub key: String,
    pub value: String,
}

/// The fields of one section of a child's file to change (`father`, `mother`, `guardian`, …,
/// or their Chinese labels), for [`crate::ShouwangClient::edit_child_sections`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SectionInput {
    pub section: String,
    pub fields: Vec<FieldInput>,
}

pub(crate) fn pairs(fields: Vec<FieldInput>) -> Vec<(String, String)> {
    fields.into_iter().map(|f| (f.key, f.value)).collect()
}

/// A new care record, as the person entered it. Validated completely by the core; a refusal
/// is [`crate::ShouwangError::InvalidInput`] naming the field, and nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordDraft {
    /// The kind's key (`home_visit`) or Chinese name (`家访记录`, `家访`).
    pub kind: String,
    /// The child's id, for child and private records.
    pub child_id: Option<String>,
    /// The class id, for 班级关爱活动记录.
    pub class_id: Option<String>,
    /// The date it happened (`2026-11-20`; `2026年11月20日` is accepted too).
    pub date: String,
    pub fields: Vec<FieldInput>,
}

/// How to resolve a conflict.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Resolution {
    /// Keep one of the values shown in [`Conflict::values`] (0-based).
    Keep { index: u32 },
    /// Write a new value instead.
    NewValue { value: String },
}

/// A role, by key and Chinese name.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoleInfo {
    pub key: String,
    pub label: String,
}

impl From<Role> for RoleInfo {
    fn from(r: Role) -> Self {
        RoleInfo {
            key: r.key().into(),
            label: r.label().into(),
        }
    }
}

/// The member using this device, and the school.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Me {
    pub member_id: String,
    pub name: String,
    pub roles: Vec<RoleInfo>,
    pub school_id: String,
    pub school_name: String,
    pub town: String,
    /// The school's 亲情电话, if set.
    pub hotline: Option<String>,
    /// The school's 个人信息保护负责人, if named.
    pub privacy_officer: Option<crate::privacy::PrivacyOfficer>,
    /// Whether private parts need the guardian's consent.
    pub consent_required: bool,
}

impl Me {
    pub(crate) fn new(member: Member, school_id: String, school: &SchoolView) -> Me {
        Me {
            member_id: member.id.0,
            name: member.name,
            roles: member.roles.into_iter().map(RoleInfo::from).collect(),
            school_id,
            school_name: school.name.clone(),
            town: school.town.clone(),
            hotline: school.hotline.clone(),
            privacy_officer: school.privacy_officer.clone().map(Into::into),
            consent_required: school.consent_required,
        }
    }
}

/// A child in a list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChildSummary {
    pub id: String,
    pub name: String,
    pub class_name: Option<String>,
    pub sex: Option<String>,
    /// Which parents work away (`父亲外出`, …).
    pub parents_away: Option<String>,
    /// 三特 flags that are set, in Chinese.
    pub flags: Vec<String>,
    /// Non-voided records.
    pub records: i64,
    /// When the last non-voided record happened.
    pub last_record: Option<String>,
}

impl From<ChildRow> for ChildSummary {
    fn from(c: ChildRow) -> Self {
        ChildSummary {
            id: c.id.0,
            name: c.name,
            class_name: c.class_name,
            sex: c.sex,
            parents_away: c.parents_away,
            flags: c.flags.into_iter().map(str::to_owned).collect(),
            records: c.records,
            last_record: c.last_record,
        }
    }
}

/// Which rule a piece of due work comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DueRule {
    HomeVisits,
    HeadTeacherTalks,
    LoveMotherTalks,
    CounsellorVisits,
    ParentContact,
    ProxyParentVisits,
    /// 缺监护人同意: a child of the 班主任's class whose private part waits for consent.
    GuardianConsent,
}

impl From<due::Rule> for DueRule {
    fn from(r: due::Rule) -> Self {
        match r {
            due::Rule::HomeVisits => DueRule::HomeVisits,
            due::Rule::HeadTeacherTalks => DueRule::HeadTeacherTalks,
            due::Rule::LoveMotherTalks => DueRule::LoveMotherTalks,
            due::Rule::CounsellorVisits => DueRule::CounsellorVisits,
            due::Rule::ParentContact => DueRule::ParentContact,
            due::Rule::ProxyParentVisits => DueRule::ProxyParentVisits,
            due::Rule::GuardianConsent => DueRule::GuardianConsent,
        }
    }
}

/// Whether an obligation is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DueStatus {
    /// 已逾期: the previous period ended unmet.
    Overdue,
    /// 待完成: the current period is not met yet.
    Due,
    /// 已完成.
    Done,
}

impl From<due::Status> for DueStatus {
    fn from(s: due::Status) -> Self {
        match s {
            due::Status::Overdue => DueStatus::Overdue,
            due::Status::Due => DueStatus::Due,
            due::Status::Done => DueStatus::Done,
        }
    }
}

/// One obligation for one period.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DueItem {
    pub rule: DueRule,
    /// What is owed, in Chinese (`本周家访`).
    pub label: String,
    pub child_id: Option<String>,
    pub child_name: Option<String>,
    /// The period in Chinese (`11月16日–11月22日`, `2026年11月`).
    pub period: String,
    pub period_start: String,
    /// The period's last day: due by then.
    pub due_by: String,
    pub required: i64,
    pub done: i64,
    pub status: DueStatus,
    /// `已逾期`, `待完成` or `已完成`.
    pub status_label: String,
}

impl From<CoreDue> for DueItem {
    fn from(d: CoreDue) -> Self {
        DueItem {
            rule: d.rule.into(),
            label: d.label.into(),
            child_id: d.child.map(|c| c.0),
            child_name: d.child_name,
            period: d.period.label(),
            period_start: d.period.start.format("%Y-%m-%d").to_string(),
            due_by: d.period.last_day().format("%Y-%m-%d").to_string(),
            required: d.required,
            done: d.done,
            status: d.status.into(),
            status_label: d.status.label().into(),
        }
    }
}

/// The school's compliance with one rule over a range.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ComplianceRow {
    pub rule: DueRule,
    pub label: String,
    pub obligations: i64,
    pub met: i64,
    /// Share met, 0–100.
    pub percent: f64,
}

impl From<CoreCompliance> for ComplianceRow {
    fn from(c: CoreCompliance) -> Self {
        ComplianceRow {
            rule: c.rule.into(),
            label: c.label.into(),
            obligations: c.obligations,
            met: c.met,
            percent: c.percent(),
        }
    }
}

/// One field as shown.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldValue {
    pub key: String,
    pub label: String,
    pub value: String,
}

impl From<ShownField> for FieldValue {
    fn from(f: ShownField) -> Self {
        FieldValue {
            key: f.key,
            label: f.label,
            value: f.value,
        }
    }
}

fn values(fields: Vec<ShownField>) -> Vec<FieldValue> {
    fields.into_iter().map(FieldValue::from).collect()
}

/// A section of a child's file (基本情况, 父亲, 监护人, …).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FileSection {
    pub key: String,
    pub label: String,
    pub fields: Vec<FieldValue>,
}

/// Who voided a record, when and why.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VoidInfo {
    pub by_member_id: String,
    pub by_name: String,
    pub at_ms: i64,
    pub reason: String,
}

/// A 进步档案 entry of a 学习帮扶计划.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProgressEntry {
    pub id: String,
    pub date: String,
    pub author_name: String,
    pub fields: Vec<FieldValue>,
}

/// A care record as shown.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CareRecord {
    pub id: String,
    /// The kind's key (a newer app's kind is shown with `kind_label` `未知类型`).
    pub kind: String,
    pub kind_label: String,
    /// The date it happened, as entered.
    pub happened_on: String,
    pub author_id: String,
    pub author_name: String,
    /// The role the author wrote it in, in Chinese.
    pub author_role: String,
    /// The device clock when it was written (shown only; never used for ordering or rules).
    pub written_at_ms: i64,
    pub child_id: Option<String>,
    /// The form's fields that have a value, in form order.
    pub fields: Vec<FieldValue>,
    /// Fields a newer app wrote, shown as text and kept on every edit.
    pub other_fields: Vec<FieldValue>,
    /// Set when the record was voided (作废): it stays in the file and counts nowhere.
    pub void: Option<VoidInfo>,
    pub progress: Vec<ProgressEntry>,
}

pub(crate) fn care_record(r: RecordView, school: &SchoolView) -> CareRecord {
    let role = Role::parse(&r.meta.author_role)
        .map(|role| role.label().to_owned())
        .unwrap_or_else(|_| r.meta.author_role.clone());
    CareRecord {
        author_name: school.member_name(&r.meta.author),
        id: r.meta.id.0,
        kind: r.meta.kind_key,
        kind_label: r.kind_label,
        happened_on: r.meta.happened_on,
        author_id: r.meta.author,
        author_role: role,
        written_at_ms: r.meta.written_at,
        child_id: r.meta.child,
        fields: values(r.fields),
        other_fields: values(r.other_fields),
        void: r.void.map(|v| VoidInfo {
            by_name: school.member_name(&v.by),
            by_member_id: v.by,
            at_ms: v.at,
            reason: v.reason,
        }),
        progress: r
            .progress
            .into_iter()
            .map(|p: ProgressView| ProgressEntry {
                author_name: school.member_name(&p.author),
                id: p.id,
                date: p.date,
                fields: values(p.fields),
            })
            .collect(),
    }
}

/// A field with concurrent values: two devices wrote it while apart. Every value is kept
/// until a person picks one ([`crate::ShouwangClient::resolve_conflict`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Conflict {
    /// Which document (`child/<id>` or `child/<id>/private`).
    pub document: String,
    /// The field's path, to pass back when resolving (`guardian.phone`).
    pub path: String,
    /// Chinese label (`监护人·电话`).
    pub label: String,
    /// The distinct values, as shown.
    pub values: Vec<String>,
}

/// One change in a file's history.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct HistoryEntry {
    /// Device clock, seconds since the epoch (advisory).
    pub time_secs: i64,
    /// Who made it (the member of the device that wrote it).
    pub member: String,
    /// What was done, in Chinese (`新增家访记录`).
    pub message: String,
}

impl From<CoreHistory> for HistoryEntry {
    fn from(h: CoreHistory) -> Self {
        HistoryEntry {
            time_secs: h.time,
            member: h.member,
            message: h.message,
        }
    }
}

/// A child's whole file, as the member using this device may see it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChildFile {
    pub id: String,
    pub name: String,
    pub class_name: Option<String>,
    pub sections: Vec<FileSection>,
    /// Every record, voided ones included, ordered by the date they happened.
    pub records: Vec<CareRecord>,
    pub conflicts: Vec<Conflict>,
    pub history: Vec<HistoryEntry>,
    /// Whether the private part (身份信息, 特别关注, private records) is included.
    pub private_shown: bool,
    /// The guardian's consent (`None`: none recorded).
    pub consent: Option<crate::privacy::GuardianConsent>,
    /// Whether the school requires consent for the private part.
    pub consent_required: bool,
    /// The school's 个人信息保护负责人, for the file's footer.
    pub privacy_officer: Option<crate::privacy::PrivacyOfficer>,
}

pub(crate) fn child_file(f: CoreFile, school: &SchoolView) -> ChildFile {
    ChildFile {
        id: f.id.0,
        name: f.name,
        class_name: f.class_name,
        sections: f
            .sections
            .into_iter()
            .map(|s| FileSection {
                key: s.key,
                label: s.label,
                fields: values(s.fields),
            })
            .collect(),
        records: f
            .records
            .into_iter()
            .map(|r| care_record(r, school))
            .collect(),
        conflicts: f
            .conflicts
            .into_iter()
            .map(|(document, c)| Conflict {
                document,
                path: c.dotted(),
                label: c.label,
                values: c.values,
            })
            .collect(),
        history: f.history.into_iter().map(HistoryEntry::from).collect(),
        private_shown: f.private_shown,
        consent: f.consent.map(Into::into),
        consent_required: f.consent_required,
        privacy_officer: f.privacy_officer.map(Into::into),
    }
}

/// How far a sync has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    /// Documents being synced in this exchange.
    pub documents_syncing: u64,
    /// Of those, documents with nothing left to exchange.
    pub documents_settled: u64,
    /// Documents that received new changes.
    pub documents_changed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl From<&Progress> for SyncProgress {
    fn from(p: &Progress) -> Self {
        SyncProgress {
            documents_syncing: p.docs_syncing as u64,
            documents_settled: p.docs_settled as u64,
            documents_changed: p.docs_changed as u64,
            bytes_sent: p.bytes_sent,
            bytes_received: p.bytes_received,
        }
    }
}

/// What a completed sync with the hub did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    pub progress: SyncProgress,
    /// Device clock of this success, ms since the epoch.
    pub last_success_ms: i64,
    pub duration_ms: u64,
    /// Files found damaged on this phone (a bad flash page) and fetched again from the school,
    /// as a person reads them: tell the member that what she wrote in them since her last
    /// sync before the damage could not be read back, and to check and type it again. Said
    /// again by every report until [`crate::ShouwangClient::dismiss_sync_notices`].
    pub refetched_damaged: Vec<String>,
    /// What the member wrote and had not sent that this phone could not keep, one sentence
    /// each: a record the school's rules refuse in a child's file the school re-based meanwhile
    /// (the guardian withdrew consent, her role changed: "王晓雨的谈心记录（2026-11-25）未能
    /// 保留：……"), a whole older copy the school no longer sends her, or an erased child's
    /// file (not named). It is gone from the phone; show each line to her (a dialog she
    /// dismisses, not a passing toast), so that nothing she typed disappears without her
    /// knowing, then call [`crate::ShouwangClient::dismiss_sync_notices`]: until then every
    /// report says it again.
    pub not_kept: Vec<String>,
}

/// What a sync with another member's device did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PeerSyncReport {
    /// The other device's member (a teacher's or volunteer's name, never a child's data).
    pub peer_name: String,
    pub progress: SyncProgress,
}

/// A status update from a sync (see [`crate::SyncListener`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SyncUpdate {
    /// Reaching the school server.
    Connecting,
    /// After each message exchanged.
    Progress { progress: SyncProgress },
    /// Both sides have everything.
    Succeeded { report: SyncReport },
    /// The attempt failed; `message` is Chinese. In background sync, the next attempt is in
    /// `retry_in_secs`.
    Failed {
        message: String,
        retry_in_secs: Option<u32>,
    },
    /// The school revoked this device (reported lost, or its member left): the store has been
    /// wiped and the sync stopped for good; every call on the client now fails with
    /// `ShouwangError.Revoked`. Close the client, delete the store's key from the keystore and
    /// show `message` (Chinese); the device can only join again with a new invite.
    Revoked { message: String },
}

/// How this device stands with the school server.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncState {
    /// Device clock of the last completed sync, ms since the epoch.
    pub last_success_ms: Option<i64>,
    /// Why the last attempt failed, if it did, in Chinese.
    pub last_error: Option<String>,
    /// Documents the server has not confirmed yet, in Chinese (`王小雨的档案`).
    pub pending: Vec<String>,
    /// Records written on this device since the last completed sync.
    pub records_since: i64,
    /// Changes the server refused from this device, one line per document in Chinese
    /// (`王小雨的档案：1 项修改被拒绝：…`). They are not sent again.
    pub refused: Vec<String>,
    /// When the membership certificate expires (seconds since the epoch); renewed silently at
    /// a sync with the school server.
    pub certificate_expires_at: i64,
    /// A Chinese warning when the certificate is near expiry or past it: show it.
    pub certificate_warning: Option<String>,
}

/// What changed, for a [`crate::ChangeListener`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ChangeOrigin {
    /// A write through this client.
    Local,
    /// A sync with the school server brought changes.
    Hub,
    /// A sync with a nearby device brought changes.
    Peer,
}

/// Something changed in the store: reload what is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ChangeEvent {
    pub origin: ChangeOrigin,
    /// Documents that changed.
    pub documents: u64,
}

/// A device of the same app announcing itself on the local network. Whether it belongs to
/// the same school is learnt when syncing with it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NearbyPeer {
    /// Its device code (its endpoint id).
    pub device_code: String,
    /// Its addresses on the local network (`192.168.43.5:52011`).
    pub addresses: Vec<String>,
}
