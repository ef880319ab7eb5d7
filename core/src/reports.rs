//! The seeds' registers and statistics as workbooks (DOMAIN.md §1.2, §1.14–§1.16, §4.1):
//! what they are ([`REPORTS`]), their rows ([`Workbook`], built by `Archive::report` in
//! `archive/reports.rs`), and the .xlsx file ([`to_xlsx`]) that the CLI's `shouwang report` and
//! the office console both write. Chinese headers in the order of the paper forms; a count is a
//! number cell, anything else (学籍号, phones, masked ID numbers) a text cell.

use chrono::NaiveDate;
use rust_xlsxwriter::{Format, Workbook as XlsxBook, XlsxError};
use serde::Serialize;

use crate::error::{Error, Result};

/// A report the school can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportKind {
    /// The key (`shouwang report registry`, `/reports/registry`).
    pub key: &'static str,
    /// The paper form's name.
    pub title: &'static str,
    /// Whether it covers one month (`--month 2026-11`).
    pub monthly: bool,
    /// Whether it is one child's (`--child 学生`).
    pub per_child: bool,
    /// Whether it lists ID numbers (masked unless shown in full with a recorded reason).
    pub lists_ids: bool,
}

/// Every report, in the order they are listed.
pub const REPORTS: [ReportKind; 6] = [
    ReportKind {
        key: "summary",
        title: "留守儿童信息汇总表",
        monthly: false,
        per_child: false,
        lists_ids: false,
    },
    ReportKind {
        key: "registry",
        title: "留守儿童基本情况登记表",
        monthly: false,
        per_child: false,
        lists_ids: true,
    },
    ReportKind {
        key: "sante",
        title: "三特儿童登记表",
        monthly: false,
        per_child: false,
        lists_ids: false,
    },
    ReportKind {
        key: "pairings",
        title: "结对帮扶登记表",
        monthly: false,
        per_child: false,
        lists_ids: false,
    },
    ReportKind {
        key: "contacts",
        title: "家访、谈心、电话记录月统计",
        monthly: true,
        per_child: false,
        lists_ids: false,
    },
    ReportKind {
        key: "child",
        title: "留守儿童档案（六项基本档案）",
        monthly: false,
        per_child: true,
        lists_ids: true,
    },
];

/// The report named `name` (its key or its Chinese title, or the title without 表).
pub fn find(name: &str) -> Result<ReportKind> {
    let name = name.trim();
    REPORTS
        .into_iter()
        .find(|r| {
            r.key == name
                || r.title == name
                || r.title.trim_end_matches('表') == name
                || r.title.split('（').next() == Some(name)
        })
        .ok_or_else(|| {
            let names: Vec<String> = REPORTS
                .iter()
                .map(|r| format!("{}（{}）", r.key, r.title))
                .collect();
            Error::invalid(
                "报表",
                format!("没有“{name}”这个报表，可选：{}", names.join("、")),
            )
        })
}

/// What a report is asked for with.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// `2026-11` (monthly reports; default: this month).
    pub month: Option<String>,
    /// The child (name, 学籍号 or 编号) of a per-child report.
    pub child: Option<String>,
    /// Why ID numbers must be shown in full (a registry reported upward needs them): the
    /// request is recorded in the device's access log before the report is built. `None`:
    /// masked, as everywhere.
    pub reveal_ids: Option<String>,
}

/// One sheet: a title line, then a header row and data rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sheet {
    /// The sheet's tab name (at most 31 characters).
    pub name: String,
    /// The line above the table.
    pub title: String,
    /// The header row first.
    pub rows: Vec<Vec<String>>,
}

/// A report as built: its title, its sheets, and how many children it names (for the
/// access log).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Workbook {
    pub title: String,
    pub sheets: Vec<Sheet>,
    pub children: usize,
}

/// A month (`2026-11`) as its first and last day, or a Chinese error.
pub fn parse_month(s: &str) -> Result<(NaiveDate, NaiveDate)> {
    let bad = || Error::invalid("月份", format!("“{s}”不是有效的月份，格式如 2026-11"));
    let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
    let y = y.parse::<i32>().map_err(|_| bad())?;
    let m = m.parse::<u32>().map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok((first, next.pred_opt().ok_or_else(bad)?))
}

fn xlsx_error(e: XlsxError) -> Error {
    Error::Io(std::io::Error::other(format!("生成表格失败：{e}")))
}

/// Whether a cell is written as a number: a plain count (no leading zero, a few digits).
fn is_count(cell: &str) -> bool {
    !cell.is_empty()
        && cell.len() < 8
        && cell.bytes().all(|b| b.is_ascii_digit())
        && (cell == "0" || !cell.starts_with('0'))
}

/// The workbook as .xlsx bytes: each sheet's first row is `学校 标题`, then the header row
/// (bold) and the rows.
pub fn to_xlsx(book: &Workbook, school: &str) -> Result<Vec<u8>> {
    let mut xlsx = XlsxBook::new();
    let bold = Format::new().set_bold();
    for sheet in &book.sheets {
        let ws = xlsx.add_worksheet();
        let name: String = sheet
            .name
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        ws.set_name(name).map_err(xlsx_error)?;
        ws.write_string_with_format(0, 0, format!("{school} {}", sheet.title), &bold)
            .map_err(xlsx_error)?;
        for (r, row) in sheet.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).map_err(|_| Error::invalid("报表", "行数太多"))?;
            for (c, cell) in row.iter().enumerate() {
                let c = u16::try_from(c).map_err(|_| Error::invalid("报表", "列数太多"))?;
                if r == 1 {
                    ws.write_string_with_format(r, c, cell, &bold)
                } else if is_count(cell) {
                    ws.write_number(r, c, cell.parse::<f64>().unwrap_or_default())
                } else {
                    ws.write_string(r, c, cell)
                }
                .map_err(xlsx_error)?;
            }
        }
        ws.autofit();
    }
    xlsx.save_to_buffer().map_err(xlsx_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_its_first_and_last_day_and_a_bad_one_is_refused_in_chinese() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            parse_month("2026-11").unwrap(),
            (d(2026, 11, 1), d(2026, 11, 30))
        );
        assert_eq!(
            parse_month("2026-12").unwrap(),
            (d(2026, 12, 1), d(2026, 12, 31))
        );
        assert_eq!(parse_month("2028-02").unwrap().1, d(2028, 2, 29));
        for bad in ["2026-13", "2026", "十一月", ""] {
            let e = parse_month(bad).unwrap_err().to_string();
            assert!(e.contains("不是有效的月份"), "{e}");
        }
    }

    #[test]
    fn reports_are_found_by_key_or_chinese_name() {
        assert_eq!(find("registry").unwrap().key, "registry");
        assert_eq!(find("三特儿童登记表").unwrap().key, "sante");
        assert_eq!(find("结对帮扶登记").unwrap().key, "pairings");
        assert_eq!(find("留守儿童档案").unwrap().key, "child");
        let e = find("成绩单").unwrap_err().to_string();
        assert!(
            e.contains("没有“成绩单”这个报表") && e.contains("registry"),
            "{e}"
        );
    }

    #[test]
    fn counts_are_numbers_and_ids_stay_text() {
        use calamine::{Data, Reader, Xlsx};
        let book = Workbook {
            title: "三特儿童登记表".into(),
            sheets: vec![Sheet {
                name: "三特儿童登记表".into(),
                title: "三特儿童登记表".into(),
                rows: vec![
                    vec!["序号".into(), "学籍号".into(), "姓名".into()],
                    vec!["1".into(), "G340321201501".into(), "王小雨".into()],
                    vec!["2".into(), "00123".into(), "赵子涵".into()],
                ],
            }],
            children: 2,
        };
        let bytes = to_xlsx(&book, "郭庄小学").unwrap();
        let mut xlsx = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let range = xlsx.worksheet_range_at(0).unwrap().unwrap();
        let rows: Vec<_> = range.rows().collect();
        assert_eq!(rows[0][0], Data::String("郭庄小学 三特儿童登记表".into()));
        assert_eq!(rows[1][0], Data::String("序号".into()));
        assert_eq!(rows[2][0], Data::Float(1.0));
        assert_eq!(rows[2][1], Data::String("G340321201501".into()));
        assert_eq!(
            rows[3][1],
            Data::String("00123".into()),
            "leading zeros kept"
        );
    }
}
