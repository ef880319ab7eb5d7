//! A child leaving the school (转学, 毕业, 辍学), coming back, and the retention of a left
//! child's file (issue 11 points 3 and 4, issue 9 point 4).
//!
//! The leave is a school fact an administrator records: `school.left:<child id>` in the school
//! profile, one JSON string `{on, reason: "", by}` (see [`crate::school::put_departure`]). Like every write
//! to the school document, the trust rules accept it from administrators only. Every member's
//! device holds the school document, so it says no more than that she left and when: why (辍学
//! is nobody else's business) and the school she moved to go into her own file in the same
//! write (`profile.left`, [`crate::school::put_departure_details`], administrators only), which
//! from then on only administrators hold. (Releases before kept them in the school document;
//! such entries are still read; the school entry keeps an empty `reason`, which they need.)
//! Her file's history keeps them when she comes back: whoever holds the file then (her
//! 班主任, a carer paired with her later) can read them there, as every older value of the
//! file; an erasure takes them with the file.
//! Once a replica's school document holds it, [`super::scope::may_see`] gives the child's
//! documents to administrators only: every carer's device (班主任, 爱心妈妈, other pairings)
//! purges them at its next sync or import (the existing purge), sessions neither offer nor
//! accept them for those members, the trust rules refuse the carers' writes into them, and
//! due work, compliance and the child lists leave the child out. Recording the leave also ends
//! the child's active pairings. `return_child` deletes the fact; the class's 班主任 sees the
//! file again at the next sync (pairings are made again with `pair`).
//!
//! Retention: the school rule `retention_years` (default 3, [`crate::rules::RULES`]) counts
//! from the leave date; [`Archive::due_for_erasure`] lists the files past it for an
//! administrator's review, who erases them with `child erase` and the reason.

use chrono::{Months, NaiveDate};
use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::ids::ChildId;
use crate::school::{self, Departure, LeaveReason, Pairing};

/// What an administrator is told to do for a child who left and is back (the CLI adds its
/// command).
pub const RETURN_ADVICE: &str = "如已回校，请登记学生回校";

/// What an administrator enters when a child leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveInput {
    /// `YYYY-MM-DD`, not after today.
    pub date: String,
    /// 转学, 毕业, 辍学 or 其他.
    pub reason: String,
    /// The school the child moved to, if known.
    pub to: Option<String>,
}

/// What recording a leave did on this device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaveReport {
    pub child: ChildId,
    /// Active pairings with the child, now ended.
    pub pairings_ended: usize,
    /// `YYYY-MM-DD` until which the file is kept (then listed for review).
    pub keep_until: String,
}

/// A left child's file as the office sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeftChild {
    pub id: ChildId,
    pub name: String,
    pub class_name: Option<String>,
    pub departure: Departure,
    /// `YYYY-MM-DD`: the leave date plus the school's retention.
    pub keep_until: String,
    /// Whether `keep_until` is on or before the day asked about.
    pub past_retention: bool,
}

/// The day a file left on `on` is kept until, under `years` of retention.
fn keep_until(on: &str, years: i64) -> Option<NaiveDate> {
    let on = NaiveDate::parse_from_str(on, "%Y-%m-%d").ok()?;
    let months = u32::try_from(years.max(0) * 12).ok()?;
    on.checked_add_months(Months::new(months))
}

impl Archive {
    /// Records that a child left the school: administrators only. The child's carers lose the
    /// file at their next sync or import; administrators keep it until it is erased.
    pub fn leave_child(&mut self, child: &str, input: &LeaveInput) -> Result<LeaveReport> {
        let me = self.require_admin()?;
        let date = crate::dates::parse_date("离校日期", &input.date)?;
        if date > chrono::Local::now().date_naive() {
            return Err(Error::invalid("离校日期", "不能晚于今天"));
        }
        let reason = LeaveReason::parse(&input.reason)?;
        let to = input
            .to
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        if let Some(t) = &to {
            crate::forms::check_line("转入学校", t, 100)?;
        }
        let child = self.find_child(child)?;
        let school = self.school()?;
        if let Some(d) = school.departure(&child).cloned() {
            let d = self.with_details(d)?;
            return Err(Error::NotPermitted(match d.reason {
                Some(r) => format!(
                    "这名学生已于 {} 离校（{}）；{RETURN_ADVICE}",
                    d.on,
                    r.label()
                ),
                None => format!("这名学生已于 {} 离校；{RETURN_ADVICE}", d.on),
            }));
        }
        let departure = Departure {
            child: child.clone(),
            on: date.format("%Y-%m-%d").to_string(),
            reason: Some(reason),
            to,
            by: me.id.clone(),
        };
        let ending: Vec<Pairing> = school
            .pairings
            .iter()
            .filter(|p| p.active && p.child == child)
            .map(|p| Pairing {
                active: false,
                ..p.clone()
            })
            .collect();
        self.store.write(|b| {
            b.change(&DocId::School, false, "学生离校", |tx| {
                school::put_departure(tx, &departure)?;
                ending.iter().try_for_each(|p| school::put_pairing(tx, p))
            })?;
            b.change(
                &DocId::Child(child.clone()),
                false,
                &format!("学生离校（{}）", reason.label()),
                |tx| school::put_departure_details(tx, reason, departure.to.as_deref()),
            )
        })?;
        let years = self.school()?.rules.retention_years;
        Ok(LeaveReport {
            child,
            pairings_ended: ending.len(),
            keep_until: keep_until(&departure.on, years)
                .map(|d| d.format("%Y-%m-%d").to_string())
                .unwrap_or_default(),
        })
    }

    /// Re-admits a child who left: administrators only. The class's 班主任 receives the file
    /// again at the next sync; pairings ended by the leave are made again with `pair`.
    pub fn return_child(&mut self, child: &str) -> Result<Departure> {
        self.require_admin()?;
        let child = self.find_child(child)?;
        let Some(departure) = self.school()?.departure(&child).cloned() else {
            return Err(Error::NotPermitted("这名学生没有离校记录".into()));
        };
        let departure = self.with_details(departure)?;
        self.store.write(|b| {
            b.change(&DocId::School, false, "学生回校", |tx| {
                school::remove_departure(tx, &child)
            })?;
            b.change(&DocId::Child(child.clone()), false, "学生回校", |tx| {
                school::remove_departure_details(tx)
            })
        })?;
        Ok(departure)
    }

    /// `d` with why the child left and where she went, read from her file where this device
    /// holds it (an administrator's) and the school document does not say (it no longer does).
    fn with_details(&mut self, mut d: Departure) -> Result<Departure> {
        if d.reason.is_none()
            && let Some(doc) = self.store.doc(&DocId::Child(d.child.clone()))?
            && let Some((reason, to)) = school::departure_details(doc)
        {
            d.reason = Some(reason);
            d.to = to;
        }
        Ok(d)
    }

    /// Every child who left the school, as the school document records it (erased ones
    /// excluded). Any member's device holds the school document, so this is ids and dates
    /// only, with why and where to on a device that holds the child's file (an
    /// administrator's); [`Archive::left_children`] adds the names there.
    pub fn departures(&mut self) -> Result<Vec<Departure>> {
        let all = self.school()?.departures.clone();
        all.into_iter().map(|d| self.with_details(d)).collect()
    }

    /// The left children whose files this device holds, with their retention on `today`:
    /// administrators only.
    pub fn left_children(&mut self, today: NaiveDate) -> Result<Vec<LeftChild>> {
        self.require_admin()?;
        let school = self.school()?;
        let years = school.rules.retention_years;
        let mut out = Vec::new();
        for d in &school.departures {
            let Some(name) = self.child_name(d.child.as_str()) else {
                continue; // not on this device
            };
            let until = keep_until(&d.on, years);
            out.push(LeftChild {
                id: d.child.clone(),
                name,
                class_name: self
                    .class_of(&d.child)?
                    .and_then(|k| school.class(&k).map(|c| c.name.clone())),
                departure: self.with_details(d.clone())?,
                keep_until: until
                    .map(|u| u.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                past_retention: until.is_some_and(|u| u <= today),
            });
        }
        out.sort_by(|a, b| (&a.departure.on, &a.name).cmp(&(&b.departure.on, &b.name)));
        Ok(out)
    }

    /// The left children's files past the school's retention on `today`, for an
    /// administrator's review (then `child erase`): administrators only.
    pub fn due_for_erasure(&mut self, today: NaiveDate) -> Result<Vec<LeftChild>> {
        let mut all = self.left_children(today)?;
        all.retain(|c| c.past_retention);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_counts_whole_years_from_the_leave_date() {
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        assert_eq!(keep_until("2026-09-01", 3), d("2029-09-01"));
        assert_eq!(keep_until("2024-02-29", 1), d("2025-02-28"));
        assert_eq!(keep_until("不是日期", 3), None);
    }
}
