//! Terminal output: aligned tables for Chinese text, JSON, and small display helpers.

use std::io::Write;

use serde::Serialize;
use shouwang_core::forms::FieldValue;
use shouwang_core::kinds::{PROFILE, Section};
use shouwang_core::roles::Role;

use crate::error::Result;

pub use shouwang_relay::usage::width;

/// A table with a header row, printed with columns aligned by display width.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells are blank).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, one line per row, ending in a newline.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        let mut line = |cells: &[String]| {
            let mut l = String::new();
            for (i, w) in widths.iter().enumerate() {
                let c = cells.get(i).map(String::as_str).unwrap_or("");
                l.push_str(c);
                if i + 1 < n {
                    l.push_str(&" ".repeat(w.saturating_sub(width(c)) + 2));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.headers);
        for r in &self.rows {
            line(r);
        }
        out
    }
}

/// Writes a value as pretty JSON followed by a newline.
pub fn json<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// The Chinese label of a stored choice value in a section (`female` → `女`).
pub fn choice_label(section: &Section, key: &str, value: &str) -> String {
    section
        .fields
        .iter()
        .find(|f| f.key == key)
        .map(|f| f.display(&FieldValue::Str(value.to_owned())))
        .unwrap_or_else(|| value.to_owned())
}

/// `性别` of a child row.
pub fn sex_label(v: Option<&str>) -> String {
    v.map(|s| choice_label(&PROFILE, "sex", s))
        .unwrap_or_default()
}

/// `外出务工` of a child row.
pub fn away_label(v: Option<&str>) -> String {
    v.map(|s| choice_label(&PROFILE, "parents_away", s))
        .unwrap_or_default()
}

/// A role key as stored (`head_teacher`) in Chinese.
pub fn role_label(key: &str) -> String {
    Role::parse(key).map_or_else(|_| key.to_owned(), |r| r.label().to_owned())
}

/// Roles joined in Chinese.
pub fn roles_label(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.label())
        .collect::<Vec<_>>()
        .join("、")
}

/// A device clock time (seconds or milliseconds since the epoch) as local `YYYY-MM-DD HH:MM`.
pub fn local_time(secs: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(secs, 0).single() {
        Some(t) if secs > 0 => t.format("%Y-%m-%d %H:%M").to_string(),
        _ => "时间未知".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_columns_line_up() {
        let mut t = Table::new(&["姓名", "班级"]);
        t.row(vec!["王小雨".into(), "三年级(1)班".into()]);
        t.row(vec!["Li".into(), "一班".into()]);
        assert_eq!(
            t.render(),
            "姓名    班级\n王小雨  三年级(1)班\nLi      一班\n"
        );
        assert_eq!(width("三年级(1)班"), 11);
    }
}
