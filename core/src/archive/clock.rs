//! Whether this device's clock is plainly wrong. A phone whose battery ran flat may come back
//! in 1970 or years ahead; dates people enter are what every rule counts, so a wrong clock
//! does not break records or due work, but it does refuse a date "in the future" and stamps
//! the time a record was written. The checks use only what the store holds.

use rusqlite::OptionalExtension;

use super::Archive;
use crate::error::Result;

use crate::dates::EARLIEST_YEAR;
/// How far past the newest record anyone wrote a clock may be before it looks wrong.
const AHEAD_DAYS: i64 = 366;

impl Archive {
    /// The latest date a person may enter for something that happened: today by this device's
    /// clock, or `None` when the clock is plainly wrong (before the app existed), since then
    /// nothing says what today is and the date the person entered is all there is.
    pub fn latest_allowed_date(&self) -> Option<chrono::NaiveDate> {
        use chrono::Datelike;
        let today = self.today();
        (today.year() >= EARLIEST_YEAR).then_some(today)
    }

    /// A Chinese warning if this device's clock is plainly wrong: before the app existed,
    /// before the latest date anyone entered for a record, or more than a year past the
    /// newest record anyone else wrote. `None` if it looks right.
    pub fn clock_warning(&self) -> Result<Option<String>> {
        self.clock_warning_since(None)
    }

    /// [`Archive::clock_warning`], also counting `trusted_ms` as a time that has certainly
    /// passed, read from another clock: the hub's, when it issued this device's certificate
    /// (renewed at every sync once half its validity is gone). A clock more than a year past
    /// it is plainly wrong even when no one else's record is on this device yet.
    pub fn clock_warning_since(&self, trusted_ms: Option<i64>) -> Result<Option<String>> {
        use chrono::Datelike;
        let now = self.store.clock_ms();
        let shown = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| {
                    t.with_timezone(&chrono::Local)
                        .format("%Y-%m-%d")
                        .to_string()
                })
                .unwrap_or_default()
        };
        let today = self.today();
        let fix = "请在手机设置里改正日期和时间（可打开“自动设置时间”）";
        if today.year() < EARLIEST_YEAR {
            return Ok(Some(format!("本机时间是 {today}，明显不对；{fix}")));
        }
        let conn = self.store.conn();
        let me = self.store.meta(super::META_MEMBER)?.unwrap_or_default();
        // Dates people enter match real days (and no date after today is taken), so a clock
        // behind the latest of them is wrong. (Not the clock stamps of records: one written
        // while the clock was ahead would make a right clock look behind for years.) Another
        // member's dates count only where a second member's reach as far: one modified app
        // making up a date years ahead must not tell every phone its clock is wrong. This
        // member's own were checked by this app when entered.
        let own: Option<String> = conn.query_row(
            "SELECT max(happened_on) FROM p_records WHERE voided = 0 AND author = ?1",
            [&me],
            |r| r.get(0),
        )?;
        let others: Option<String> = conn
            .query_row(
                "SELECT d FROM (SELECT max(happened_on) AS d FROM p_records
                  WHERE voided = 0 AND author != ?1 GROUP BY author)
                 ORDER BY d DESC LIMIT 1 OFFSET 1",
                [&me],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let latest = own
            .max(others)
            .as_deref()
            .and_then(crate::dates::stored_date);
        if let Some(d) = latest
            && today < d - chrono::Days::new(1)
        {
            return Ok(Some(format!(
                "本机时间是 {today}，比学校已有记录的日期（{d}）还早，时间可能不对；{fix}"
            )));
        }
        if let Some(t) = trusted_ms
            && now < t - 24 * 3600 * 1000
        {
            return Ok(Some(format!(
                "本机时间是 {today}，比学校服务器上次给本机发证书的时间（{}）还早，时间可能不对；{fix}",
                shown(t)
            )));
        }
        // Ahead: more than a year past the newest time known to have passed. Records this
        // member wrote carry this clock's own stamps (a clock ahead would vouch for itself), so
        // only other people's count, again where two members' reach, with the latest date
        // anyone entered (dates of real events, none after the real today) and the hub's time.
        let others: Option<i64> = conn
            .query_row(
                "SELECT t FROM (SELECT max(written_at) AS t FROM p_records
                  WHERE author != ?1 GROUP BY author)
                 ORDER BY t DESC LIMIT 1 OFFSET 1",
                [&me],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let day_ms = 24 * 3600 * 1000;
        let entered = latest
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc().timestamp_millis() + day_ms);
        let known = [
            (others, "学校最新的记录"),
            (entered, "最近一条记录的日期"),
            (trusted_ms, "学校服务器上次给本机发证书的时间"),
        ]
        .into_iter()
        .filter_map(|(t, what)| t.map(|t| (t, what)))
        .max_by_key(|(t, _)| *t);
        if let Some((t, what)) = known
            && now > t + AHEAD_DAYS * day_ms
        {
            return Ok(Some(format!(
                "本机时间是 {today}，比{what}（{}）晚了一年以上，时间可能不对；{fix}",
                shown(t)
            )));
        }
        Ok(None)
    }
}
