//! Due work and compliance, computed from the rule settings and the merged records.
//!
//! Every rule is an *obligation* per period: a member must have written at least `required`
//! non-voided records of a kind (for one child, or in all) with a *happened-on* date inside the
//! period. Periods come from that date only: ISO weeks, calendar months, or fixed windows of N
//! days counted from Monday 2000-01-03. Device clocks play no part, so a phone with a wrong clock
//! cannot make work due or done, and a record that arrives late from another device counts for
//! the period it happened in as soon as it is merged.
//!
//! For a member, [`due_for`] lists the current period's unmet obligations as 待完成 (due by the
//! period's last day) and the previous period's unmet ones as 已逾期. [`compliance`] counts the
//! obligations of every member over the complete periods inside a date range.

use std::collections::HashMap;

use chrono::{Days, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::dates::Period;
use crate::error::Result;
use crate::ids::{ChildId, MemberId};
use crate::kinds::RecordKind;
use crate::roles::Role;
use crate::school::{Member, SchoolView};

/// How a rule's periods are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cadence {
    Week,
    Month,
    Days(i64),
}

impl Cadence {
    fn period_of(self, d: NaiveDate) -> Period {
        match self {
            Cadence::Week => Period::week_of(d),
            Cadence::Month => Period::month_of(d),
            Cadence::Days(n) => {
                let n = n.max(1);
                let epoch = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap_or(d);
                let k = (d - epoch).num_days().div_euclid(n);
                let start = epoch + chrono::Duration::days(k * n);
                Period {
                    start,
                    end: start + Days::new(n.unsigned_abs()),
                }
            }
        }
    }
}

/// Which rule an obligation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    HomeVisits,
    HeadTeacherTalks,
    LoveMotherTalks,
    CounsellorVisits,
    ParentContact,
    ProxyParentVisits,
    /// The private part of a child's file waits for the guardian's consent (once the school
    /// requires it, `crate::consent`): the 班主任's to obtain.
    GuardianConsent,
}

impl Rule {
    /// Chinese description of what is owed.
    pub fn label(self) -> &'static str {
        match self {
            Rule::HomeVisits => "本周家访",
            Rule::HeadTeacherTalks => "班主任每月谈心",
            Rule::LoveMotherTalks => "爱心妈妈每周谈心",
            Rule::CounsellorVisits => "爱心辅导员每月走访",
            Rule::ParentContact => "与外出家长电话联系",
            Rule::ProxyParentVisits => "代理家长家访",
            Rule::GuardianConsent => "缺监护人同意",
        }
    }

    fn kind(self) -> RecordKind {
        match self {
            Rule::HomeVisits | Rule::ProxyParentVisits => RecordKind::HomeVisit,
            Rule::HeadTeacherTalks | Rule::LoveMotherTalks => RecordKind::Talk,
            Rule::CounsellorVisits => RecordKind::FieldVisit,
            Rule::ParentContact => RecordKind::ParentCall,
            // Not counted from records (see `missing_consent`); never a duty.
            Rule::GuardianConsent => RecordKind::Talk,
        }
    }
}

/// Whether an obligation is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A past period ended unmet: 已逾期.
    Overdue,
    /// The current period is not met yet: 待完成.
    Due,
    /// Met: 已完成.
    Done,
}

impl Status {
    /// Chinese label.
    pub fn label(self) -> &'static str {
        match self {
            Status::Overdue => "已逾期",
            Status::Due => "待完成",
            Status::Done => "已完成",
        }
    }
}

/// One obligation of one member for one period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DueItem {
    pub rule: Rule,
    pub label: &'static str,
    pub member: MemberId,
    pub child: Option<ChildId>,
    pub child_name: Option<String>,
    pub period: Period,
    pub required: i64,
    pub done: i64,
    pub status: Status,
}

/// An obligation template: who, for which child, what, how often.
#[derive(Debug, Clone)]
struct Duty {
    rule: Rule,
    member: MemberId,
    child: Option<(ChildId, String)>,
    cadence: Cadence,
    required: i64,
}

/// SQL true when `p_children.consent` (the projection's comma-separated consent tags:
/// `private`, `-private`, `-basic`, …) does not hold `$tag`.
macro_rules! consent_lacks {
    ($tag:literal) => {
        concat!(
            "(',' || coalesce(consent, '') || ',') NOT LIKE '%,",
            $tag,
            ",%'"
        )
    };
}

/// The children of `class` on this device whose care is anyone's duty: not those whose
/// guardian withdrew consent to (or objected to) the basic file (`-basic` in
/// `p_children.consent`): nothing new may be written in their files.
fn children_of_class(conn: &Connection, class: &str) -> Result<Vec<(ChildId, String)>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT child_id, name FROM p_children WHERE class_id = ?1 AND ",
        consent_lacks!("-basic"),
        " ORDER BY name"
    ))?;
    let rows = stmt
        .query_map([class], |r| Ok((ChildId(r.get(0)?), r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// A paired child's name, if her care is a duty on this device: `None` when this device
/// holds no file of hers (a file closed to the carer, dropped) or the guardian withdrew
/// consent to (or objected to) the basic file.
fn cared_child_name(conn: &Connection, child: &ChildId) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT name FROM p_children WHERE child_id = ?1 AND ",
        consent_lacks!("-basic")
    ))?;
    Ok(stmt.query_row([child.as_str()], |r| r.get(0)).optional()?)
}

fn duties(conn: &Connection, school: &SchoolView, m: &Member) -> Result<Vec<Duty>> {
    let r = &school.rules;
    let mut out = Vec::new();
    if !m.active {
        return Ok(out);
    }
    if m.roles.iter().any(|r| r.is_teacher()) && r.home_visits_per_week > 0 {
        out.push(Duty {
            rule: Rule::HomeVisits,
            member: m.id.clone(),
            child: None,
            cadence: Cadence::Week,
            required: r.home_visits_per_week,
        });
    }
    if m.has(Role::HeadTeacher) {
        let classes: Vec<&str> = school
            .classes
            .iter()
            .filter(|c| c.head_teacher.as_ref() == Some(&m.id))
            .map(|c| c.id.as_str())
            .collect();
        for class in classes {
            // A child who left the school is nobody's duty any more.
            for child in children_of_class(conn, class)?
                .into_iter()
                .filter(|(c, _)| !school.has_left(c))
            {
                if r.head_teacher_talks_per_month > 0 {
                    out.push(Duty {
                        rule: Rule::HeadTeacherTalks,
                        member: m.id.clone(),
                        child: Some(child.clone()),
                        cadence: Cadence::Month,
                        required: r.head_teacher_talks_per_month,
                    });
                }
                if r.parent_contact_days > 0 {
                    out.push(Duty {
                        rule: Rule::ParentContact,
                        member: m.id.clone(),
                        child: Some(child),
                        cadence: Cadence::Days(r.parent_contact_days),
                        required: 1,
                    });
                }
            }
        }
    }
    for p in school.pairings.iter().filter(|p| {
        p.carer == m.id && p.active && !school.is_erased(&p.child) && !school.has_left(&p.child)
    }) {
        let (rule, cadence, required) = match p.role {
            Role::LoveMother => (
                Rule::LoveMotherTalks,
                Cadence::Week,
                r.love_mother_talks_per_week,
            ),
            Role::Counsellor => (
                Rule::CounsellorVisits,
                Cadence::Month,
                r.counsellor_visits_per_month,
            ),
            Role::ProxyParent => (
                Rule::ProxyParentVisits,
                Cadence::Days(r.proxy_parent_visit_days),
                1,
            ),
            _ => continue,
        };
        if required > 0
            && !matches!(cadence, Cadence::Days(0))
            && let Some(name) = cared_child_name(conn, &p.child)?
        {
            out.push(Duty {
                rule,
                member: m.id.clone(),
                child: Some((p.child.clone(), name)),
                cadence,
                required,
            });
        }
    }
    Ok(out)
}

/// The dates of a member's non-voided records of a kind in `[from, to)`, by child.
fn record_dates(
    conn: &Connection,
    author: &MemberId,
    kind: RecordKind,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<(Option<String>, NaiveDate)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT child_id, happened_on FROM p_records
         WHERE author = ?1 AND kind = ?2 AND voided = 0 AND happened_on >= ?3 AND happened_on < ?4",
    )?;
    let rows = stmt
        .query_map(
            params![
                author.as_str(),
                kind.key(),
                from.format("%Y-%m-%d").to_string(),
                to.format("%Y-%m-%d").to_string()
            ],
            |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?)),
        )?
        .filter_map(|row| {
            let (c, d) = row.ok()?;
            Some((c, NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok()?))
        })
        .collect();
    Ok(rows)
}

/// A member's record dates of one kind, by child.
type DatesByAuthor = HashMap<(MemberId, RecordKind), Vec<(Option<String>, NaiveDate)>>;

/// Counts, per duty, the records in each period between `from` and `to`.
struct Counter {
    cache: DatesByAuthor,
    from: NaiveDate,
    to: NaiveDate,
}

impl Counter {
    fn count(&mut self, conn: &Connection, duty: &Duty, period: Period) -> Result<i64> {
        let key = (duty.member.clone(), duty.rule.kind());
        if !self.cache.contains_key(&key) {
            let dates = record_dates(conn, &duty.member, duty.rule.kind(), self.from, self.to)?;
            self.cache.insert(key.clone(), dates);
        }
        let dates = self.cache.get(&key).map(Vec::as_slice).unwrap_or_default();
        let n = dates
            .iter()
            .filter(|(c, d)| {
                period.contains(*d)
                    && duty
                        .child
                        .as_ref()
                        .is_none_or(|(id, _)| c.as_deref() == Some(id.as_str()))
            })
            .count();
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

fn item(duty: &Duty, period: Period, done: i64, status: Status) -> DueItem {
    DueItem {
        rule: duty.rule,
        label: duty.rule.label(),
        member: duty.member.clone(),
        child: duty.child.as_ref().map(|(c, _)| c.clone()),
        child_name: duty.child.as_ref().map(|(_, n)| n.clone()),
        period,
        required: duty.required,
        done,
        status,
    }
}

/// The children of the classes `m` heads whose consent does not cover the private part and
/// whose guardian has not said no to it (an objection or a withdrawal is the guardian's
/// decision, not consent still to obtain): one standing item each, due now, while the school
/// requires consent.
fn missing_consent(
    conn: &Connection,
    school: &SchoolView,
    m: &Member,
    today: NaiveDate,
) -> Result<Vec<DueItem>> {
    if !school.consent_required || !m.active || !m.has(Role::HeadTeacher) {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT child_id, name FROM p_children WHERE class_id = ?1 AND ",
        consent_lacks!("private"),
        " AND ",
        consent_lacks!("-private"),
        " AND ",
        consent_lacks!("-basic"),
        " ORDER BY name"
    ))?;
    let mut out = Vec::new();
    for class in school
        .classes
        .iter()
        .filter(|c| c.head_teacher.as_ref() == Some(&m.id) || m.class_id.as_ref() == Some(&c.id))
    {
        let rows: Vec<(String, String)> = stmt
            .query_map([class.id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (id, name) in rows {
            if school.has_left(&ChildId(id.clone())) {
                continue;
            }
            out.push(DueItem {
                rule: Rule::GuardianConsent,
                label: Rule::GuardianConsent.label(),
                member: m.id.clone(),
                child: Some(ChildId(id)),
                child_name: Some(name),
                period: Period {
                    start: today,
                    end: today + Days::new(1),
                },
                required: 1,
                done: 0,
                status: Status::Due,
            });
        }
    }
    Ok(out)
}

/// What `member` owes on `today`: unmet obligations of the current period (待完成) and of the
/// previous one (已逾期), overdue first. With `include_done`, met ones too.
pub fn due_for(
    conn: &Connection,
    school: &SchoolView,
    member: &Member,
    today: NaiveDate,
    include_done: bool,
) -> Result<Vec<DueItem>> {
    let duties = duties(conn, school, member)?;
    let from = today - Days::new(100);
    let mut counter = Counter {
        cache: HashMap::new(),
        from,
        to: today + Days::new(100),
    };
    let mut out = missing_consent(conn, school, member, today)?;
    for duty in &duties {
        let current = duty.cadence.period_of(today);
        let previous = duty.cadence.period_of(current.start - Days::new(1));
        let done = counter.count(conn, duty, previous)?;
        if done < duty.required {
            out.push(item(duty, previous, done, Status::Overdue));
        } else if include_done {
            out.push(item(duty, previous, done, Status::Done));
        }
        let done = counter.count(conn, duty, current)?;
        if done < duty.required {
            out.push(item(duty, current, done, Status::Due));
        } else if include_done {
            out.push(item(duty, current, done, Status::Done));
        }
    }
    out.sort_by(|a, b| {
        (a.status, a.period.end, a.rule, &a.child_name).cmp(&(
            b.status,
            b.period.end,
            b.rule,
            &b.child_name,
        ))
    });
    Ok(out)
}

/// Compliance with one rule over a range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComplianceRow {
    pub rule: Rule,
    pub label: &'static str,
    /// Obligations in complete periods inside the range.
    pub obligations: i64,
    pub met: i64,
}

impl ComplianceRow {
    /// Share met, 0–100 (100 when there was nothing to do).
    pub fn percent(&self) -> f64 {
        if self.obligations == 0 {
            100.0
        } else {
            self.met as f64 * 100.0 / self.obligations as f64
        }
    }
}

/// Per-rule compliance of every member over the complete periods within `[from, to]`.
pub fn compliance(
    conn: &Connection,
    school: &SchoolView,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<ComplianceRow>> {
    let end = to + Days::new(1);
    let mut counter = Counter {
        cache: HashMap::new(),
        from,
        to: end,
    };
    let mut rows: Vec<ComplianceRow> = Vec::new();
    for m in &school.members {
        for duty in duties(conn, school, m)? {
            let mut period = duty.cadence.period_of(from);
            if period.start < from {
                period = duty.cadence.period_of(period.end);
            }
            while period.end <= end {
                let done = counter.count(conn, &duty, period)?;
                let row = match rows.iter_mut().find(|r| r.rule == duty.rule) {
                    Some(r) => r,
                    None => {
                        rows.push(ComplianceRow {
                            rule: duty.rule,
                            label: duty.rule.label(),
                            obligations: 0,
                            met: 0,
                        });
                        let last = rows.len() - 1;
                        &mut rows[last]
                    }
                };
                row.obligations += 1;
                if done >= duty.required {
                    row.met += 1;
                }
                period = duty.cadence.period_of(period.end);
            }
        }
    }
    rows.sort_by_key(|r| r.rule);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn fixed_day_windows_tile_the_calendar() {
        let c = Cadence::Days(14);
        let p = c.period_of(d("2026-11-20"));
        assert_eq!((p.end - p.start).num_days(), 14);
        assert!(p.contains(d("2026-11-20")));
        assert_eq!(c.period_of(p.end).start, p.end);
        assert_eq!(c.period_of(p.start - Days::new(1)).end, p.start);
        assert_eq!(
            Cadence::Days(7).period_of(d("2026-11-20")),
            Period::week_of(d("2026-11-20"))
        );
    }
}
