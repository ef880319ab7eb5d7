//! A child who leaves the school, for the app: recording the leave (转学, 毕业, 辍学), the return,
//! and the office's list of left children with their retention. Thin methods over the core's
//! `Archive` (`leave_child`, `return_child`, `left_children`); every rule (administrators only,
//! the date not after today, who loses the file) is in `shouwang-core` (`archive/departure.rs`).

use shouwang_core::archive::{LeaveInput, LeaveReport, LeftChild as CoreLeft};
use shouwang_core::dates::parse_date;
use shouwang_core::school::Departure as CoreDeparture;

use crate::client::ShouwangClient;
use crate::error::ShouwangError;

type Result<T, E = ShouwangError> = std::result::Result<T, E>;

/// What the administrator enters when a child leaves.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LeaveDraft {
    /// `YYYY-MM-DD`, not after today.
    pub date: String,
    /// 转学, 毕业, 辍学 or 其他; empty where this phone does not hold the child's file (only
    /// administrators keep why a child left).
    pub reason: String,
    /// The school the child moved to, if known.
    pub to: Option<String>,
}

/// What recording a leave did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LeaveResult {
    pub child_id: String,
    /// Active pairings with the child (爱心妈妈, 代理家长 …), now ended.
    pub pairings_ended: u32,
    /// `YYYY-MM-DD` until which the file is kept (then listed for review and erasure).
    pub keep_until: String,
}

impl From<LeaveReport> for LeaveResult {
    fn from(r: LeaveReport) -> Self {
        LeaveResult {
            child_id: r.child.to_string(),
            pairings_ended: u32::try_from(r.pairings_ended).unwrap_or(u32::MAX),
            keep_until: r.keep_until,
        }
    }
}

/// A child's leave as the school document records it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Departure {
    pub child_id: String,
    /// `YYYY-MM-DD`.
    pub on: String,
    /// 转学, 毕业, 辍学 or 其他; empty where this phone does not hold the child's file (only
    /// administrators keep why a child left).
    pub reason: String,
    pub to: Option<String>,
    /// The member id of the administrator who recorded it.
    pub by: String,
}

impl From<CoreDeparture> for Departure {
    fn from(d: CoreDeparture) -> Self {
        Departure {
            child_id: d.child.to_string(),
            on: d.on,
            reason: d.reason.map(|r| r.label().to_owned()).unwrap_or_default(),
            to: d.to,
            by: d.by.to_string(),
        }
    }
}

/// A left child's file as the office holds it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LeftChild {
    pub id: String,
    pub name: String,
    pub class_name: Option<String>,
    pub departure: Departure,
    /// `YYYY-MM-DD`: the leave date plus the school's retention years.
    pub keep_until: String,
    /// Kept past the retention on the day asked about: to be reviewed and erased.
    pub past_retention: bool,
}

impl From<CoreLeft> for LeftChild {
    fn from(c: CoreLeft) -> Self {
        LeftChild {
            id: c.id.to_string(),
            name: c.name,
            class_name: c.class_name,
            departure: c.departure.into(),
            keep_until: c.keep_until,
            past_retention: c.past_retention,
        }
    }
}

#[uniffi::export]
impl ShouwangClient {
    /// Records that a child left the school (administrators only). The child's carers lose the
    /// file at their next sync; the office keeps it for the school's retention years.
    pub fn leave_child(&self, child_id: String, draft: LeaveDraft) -> Result<LeaveResult> {
        let input = LeaveInput {
            date: draft.date,
            reason: draft.reason,
            to: draft.to,
        };
        self.inner
            .write(|a| Ok(a.leave_child(&child_id, &input)?.into()))
    }

    /// Re-admits a child who left (administrators only). Returns the leave it undid.
    pub fn return_child(&self, child_id: String) -> Result<Departure> {
        self.inner.write(|a| Ok(a.return_child(&child_id)?.into()))
    }

    /// The left children whose files this device holds, with their retention on `today`
    /// (`YYYY-MM-DD`, or the device's date if absent): administrators only.
    pub fn left_children(&self, today: Option<String>) -> Result<Vec<LeftChild>> {
        let today = match today {
            Some(d) => parse_date("日期", &d)?,
            None => chrono::Local::now().date_naive(),
        };
        self.inner.with_archive(|a| {
            Ok(a.left_children(today)?
                .into_iter()
                .map(LeftChild::from)
                .collect())
        })
    }
}
