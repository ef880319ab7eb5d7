//! Dates as people enter them, and the periods rules are counted in.
//!
//! The date a thing *happened* is always entered (or confirmed) by the user and is what every
//! rule counts; the device clock is only recorded beside it. Weeks are ISO weeks (Monday to
//! Sunday), derived from the date, never taken from a weekday someone typed (the seeds' own
//! calendars get weekdays wrong, DOMAIN.md §9).

use chrono::{Datelike, Days, Months, NaiveDate};

use crate::error::{Error, Result};

/// Earliest and latest dates accepted for anything that happened.
const MIN_YEAR: i32 = 1990;
const MAX_YEAR: i32 = 2099;
/// No clock reading before this is plausible: the app did not exist.
pub const EARLIEST_YEAR: i32 = 2026;

/// Parses `2026-11-20`, `2026/11/20`, `2026.11.20`, `20261120` or `2026年11月20日`.
pub fn parse_date(field: &str, raw: &str) -> Result<NaiveDate> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(Error::Missing(field.to_owned()));
    }
    let normalised: String = s
        .replace(['年', '月', '/', '.'], "-")
        .replace('日', "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let parsed = if normalised.len() == 8 && normalised.chars().all(|c| c.is_ascii_digit()) {
        NaiveDate::parse_from_str(&normalised, "%Y%m%d")
    } else {
        NaiveDate::parse_from_str(&normalised, "%Y-%m-%d")
    };
    let date = parsed.map_err(|_| {
        Error::invalid(
            field,
            format!("“{s}”不是有效日期，请按 2026-11-20 的格式填写"),
        )
    })?;
    if !(MIN_YEAR..=MAX_YEAR).contains(&date.year()) {
        return Err(Error::invalid(
            field,
            format!("年份应在{MIN_YEAR}到{MAX_YEAR}之间"),
        ));
    }
    Ok(date)
}

/// A date as records store it (`2026-11-20`, the one form the app writes), within the years
/// [`parse_date`] accepts; `None` for anything else.
pub fn stored_date(raw: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok().filter(|d| {
        (MIN_YEAR..=MAX_YEAR).contains(&d.year()) && d.format("%Y-%m-%d").to_string() == raw
    })
}

/// The latest date a record made by a clock reading `made_at` (seconds since the epoch, a
/// change's own time) can say something happened on: the day after that reading's UTC date
/// (a local date runs at most a day ahead of UTC). `None` when the reading is before the app
/// existed: the clock was plainly wrong, and the date entered is all there is
/// (`Archive::latest_allowed_date`).
pub fn latest_date_by_clock(made_at: i64) -> Option<NaiveDate> {
    let made = chrono::DateTime::from_timestamp(made_at, 0)?.date_naive();
    if made.year() < EARLIEST_YEAR {
        return None;
    }
    // A reading past any date a record may carry bounds nothing either (and the next day of
    // chrono's last date does not exist).
    Some(
        made.checked_add_days(Days::new(1))
            .unwrap_or(NaiveDate::MAX),
    )
}

/// Parses the date something happened (see [`parse_date`]) and refuses one after `today`
/// (the device's local date; `None` when its clock cannot be trusted): a record of what has
/// not happened yet is a typing mistake, or the phone's clock is wrong, and the message says
/// both.
pub fn parse_past_date(field: &str, raw: &str, today: Option<NaiveDate>) -> Result<NaiveDate> {
    let date = parse_date(field, raw)?;
    if let Some(today) = today
        && date > today
    {
        return Err(Error::invalid(
            field,
            format!(
                "{date} 晚于今天（{today}），不能记录还没发生的事；如果手机日期不对，请先改正手机时间"
            ),
        ));
    }
    Ok(date)
}

/// A half-open range of days `[start, end)`: one week, one month or a fixed number of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Period {
    /// Whether `d` falls in the period.
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d < self.end
    }

    /// The last day in the period.
    pub fn last_day(&self) -> NaiveDate {
        self.end.pred_opt().unwrap_or(self.end)
    }

    /// The ISO week (Monday–Sunday) containing `d`.
    pub fn week_of(d: NaiveDate) -> Period {
        let start = d - Days::new(u64::from(d.weekday().num_days_from_monday()));
        Period {
            start,
            end: start + Days::new(7),
        }
    }

    /// The calendar month containing `d`.
    pub fn month_of(d: NaiveDate) -> Period {
        let start = d.with_day(1).unwrap_or(d);
        Period {
            start,
            end: start + Months::new(1),
        }
    }

    /// The period of the same length immediately before this one (a month steps a month).
    pub fn previous(&self) -> Period {
        let len = (self.end - self.start).num_days();
        if self.start.day() == 1 && self.end.day() == 1 && len >= 28 {
            let start = self.start - Months::new(1);
            Period {
                start,
                end: self.start,
            }
        } else {
            let start = self.start - Days::new(len.unsigned_abs());
            Period {
                start,
                end: self.start,
            }
        }
    }

    /// A short Chinese label: `11月16日–11月22日` or `2026年11月`.
    pub fn label(&self) -> String {
        if self.start.day() == 1 && self.end == self.start + Months::new(1) {
            format!("{}年{}月", self.start.year(), self.start.month())
        } else {
            let last = self.last_day();
            format!(
                "{}月{}日–{}月{}日",
                self.start.month(),
                self.start.day(),
                last.month(),
                last.day()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_clock_bounds_dates_and_never_panics() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2026-12-05 23:30 UTC: the next day, for a phone east of UTC.
        assert_eq!(latest_date_by_clock(1_796_513_400), Some(d("2026-12-06")));
        assert_eq!(
            latest_date_by_clock(0),
            None,
            "a clock before the app existed"
        );
        assert_eq!(latest_date_by_clock(i64::MIN), None);
        assert_eq!(latest_date_by_clock(i64::MAX), None);
        // chrono's last representable day: no next day, and no panic.
        assert_eq!(
            latest_date_by_clock(8_210_266_790_400),
            Some(NaiveDate::MAX)
        );
    }

    fn d(s: &str) -> NaiveDate {
        parse_date("日期", s).unwrap()
    }

    #[test]
    fn parses_the_forms_people_type() {
        let want = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        for s in [
            "2026-11-20",
            "2026/11/20",
            "2026.11.20",
            "20261120",
            "2026年11月20日",
        ] {
            assert_eq!(d(s), want, "{s}");
        }
    }

    #[test]
    fn refuses_impossible_dates_in_chinese() {
        let e = parse_date("家访日期", "2026-02-30")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("家访日期填写有误"), "{e}");
        assert!(parse_date("日期", "1900-01-01").is_err());
        assert!(parse_date("日期", "").is_err());
    }

    #[test]
    fn weeks_start_on_monday_and_months_step_back() {
        // 2026-11-22 is a Sunday.
        let w = Period::week_of(d("2026-11-22"));
        assert_eq!(w.start, d("2026-11-16"));
        assert_eq!(w.end, d("2026-11-23"));
        assert_eq!(w.previous().start, d("2026-11-09"));
        let m = Period::month_of(d("2026-03-31"));
        assert_eq!(m.previous(), Period::month_of(d("2026-02-01")));
        assert_eq!(m.label(), "2026年3月");
        assert!(m.contains(d("2026-03-01")) && !m.contains(d("2026-04-01")));
    }
}
