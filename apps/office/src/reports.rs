//! 报表 (administrators): the seeds' registers as .xlsx (DOMAIN.md §1.2, §1.14–1.16, §4.1),
//! Chinese headers in the order of the paper forms, ID numbers masked as the file shows them.
//! Each download is recorded in the access log as a report naming how many children it lists.
//!
//! [`build`] makes a workbook from the archive (the console and tests call it); the rows come
//! from the core's views (`children`, the child file, the school document, the record
//! projection), never from a second copy of its rules.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{Datelike, NaiveDate};
use rust_xlsxwriter::{Format, Workbook};
use serde::Deserialize;
use shouwang_core::Archive;
use shouwang_core::kinds::RecordKind;

use crate::auth::viewer;
use crate::html::{self, Table, esc};
use crate::{Ctx, Office, OfficeError};

/// A report: its key (in the URL), its title (the paper form's name), whether it takes a month.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    pub key: &'static str,
    pub title: &'static str,
    pub monthly: bool,
}

/// Every report, in the order the page lists them.
pub const REPORTS: [Report; 5] = [
    Report {
        key: "summary",
        title: "留守儿童信息汇总表",
        monthly: false,
    },
    Report {
        key: "registry",
        title: "留守儿童基本情况登记表",
        monthly: false,
    },
    Report {
        key: "sante",
        title: "三特儿童登记表",
        monthly: false,
    },
    Report {
        key: "pairings",
        title: "结对帮扶登记表",
        monthly: false,
    },
    Report {
        key: "contacts",
        title: "家访、谈心、电话记录月统计",
        monthly: true,
    },
];

/// A sheet as rows of text: the header row first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sheet {
    pub title: String,
    pub rows: Vec<Vec<String>>,
    /// Children the sheet names (for the access log).
    pub children: usize,
}

/// The month a report covers (`2026-11`), or an error in Chinese.
pub fn parse_month(s: &str) -> Result<(NaiveDate, NaiveDate), OfficeError> {
    let bad = || OfficeError::BadInput(format!("月份“{s}”填写有误，格式如 2026-11"));
    let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
    let (y, m) = (
        y.parse::<i32>().map_err(|_| bad())?,
        m.parse::<u32>().map_err(|_| bad())?,
    );
    let first = NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let next = if m == 12 {
        NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    Ok((first, next.pred_opt().ok_or_else(bad)?))
}

/// Builds the report `key` from the archive (read as its own member: an administrator).
pub fn build(a: &mut Archive, key: &str, month: Option<&str>) -> Result<Sheet, OfficeError> {
    let report = REPORTS
        .iter()
        .find(|r| r.key == key)
        .ok_or_else(|| OfficeError::BadInput(format!("没有名为“{key}”的报表")))?;
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<String>>();
    let school = a.school()?;
    let children = a.children(None, false)?;
    let mut sheet = Sheet {
        title: report.title.to_owned(),
        rows: Vec::new(),
        children: 0,
    };
    match key {
        "summary" => {
            sheet.rows.push(s(&[
                "学校",
                "班级",
                "班主任",
                "留守儿童人数",
                "父亲外出",
                "母亲外出",
                "父母均外出",
                "特困生",
                "特长生",
                "特殊学生",
            ]));
            let mut by: BTreeMap<String, [usize; 7]> = BTreeMap::new();
            for c in &children {
                let e = by
                    .entry(c.class_name.clone().unwrap_or_else(|| "未分班".into()))
                    .or_default();
                e[0] += 1;
                match c.parents_away.as_deref() {
                    Some("father") => e[1] += 1,
                    Some("mother") => e[2] += 1,
                    Some("both") => e[3] += 1,
                    _ => {}
                }
                for (i, f) in ["特困生", "特长生", "特殊学生"].iter().enumerate() {
                    if c.flags.contains(f) {
                        e[4 + i] += 1;
                    }
                }
            }
            let mut total = [0usize; 7];
            for (class, n) in &by {
                let head = school
                    .classes
                    .iter()
                    .find(|c| &c.name == class)
                    .and_then(|c| c.head_teacher.as_ref())
                    .map(|h| school.member_name(h.as_str()))
                    .unwrap_or_default();
                let mut row = vec![school.name.clone(), class.clone(), head];
                row.extend(n.iter().map(ToString::to_string));
                for (t, x) in total.iter_mut().zip(n) {
                    *t += x;
                }
                sheet.rows.push(row);
            }
            let mut row = vec![school.name.clone(), "合计".to_owned(), String::new()];
            row.extend(total.iter().map(ToString::to_string));
            sheet.rows.push(row);
            sheet.children = 0;
        }
        "registry" => {
            sheet.rows.push(s(&[
                "序号",
                "学籍号",
                "姓名",
                "性别",
                "出生日期",
                "班级",
                "身份证号",
                "家庭住址",
                "外出务工",
                "父亲姓名",
                "父亲电话",
                "父亲务工地址",
                "母亲姓名",
                "母亲电话",
                "母亲务工地址",
                "监护人",
                "与监护人关系",
                "监护人电话",
                "与谁生活",
            ]));
            for (i, c) in children.iter().enumerate() {
                let file = a.child_file(c.id.as_str())?;
                let get = |sec: &str, key: &str| {
                    file.sections
                        .iter()
                        .find(|s| s.key == sec)
                        .and_then(|s| s.fields.iter().find(|f| f.key == key))
                        .map(|f| f.value.clone())
                        .unwrap_or_default()
                };
                sheet.rows.push(vec![
                    (i + 1).to_string(),
                    get("identity", "student_no"),
                    c.name.clone(),
                    html::profile_choice("sex", c.sex.as_deref()),
                    get("profile", "birth_date"),
                    c.class_name.clone().unwrap_or_default(),
                    get("identity", "id_card"),
                    get("profile", "address"),
                    html::profile_choice("parents_away", c.parents_away.as_deref()),
                    get("father", "name"),
                    get("father", "phone"),
                    get("father", "work_place"),
                    get("mother", "name"),
                    get("mother", "phone"),
                    get("mother", "work_place"),
                    get("guardian", "name"),
                    get("guardian", "relation"),
                    get("guardian", "phone"),
                    get("profile", "lives_with"),
                ]);
            }
            sheet.children = children.len();
        }
        "sante" => {
            sheet.rows.push(s(&[
                "序号",
                "姓名",
                "班级",
                "性别",
                "特困生",
                "特长生",
                "特殊学生",
                "外出务工",
            ]));
            let mut n = 0;
            for c in children.iter().filter(|c| !c.flags.is_empty()) {
                n += 1;
                let mark = |f: &str| if c.flags.contains(&f) { "是" } else { "" }.to_owned();
                sheet.rows.push(vec![
                    n.to_string(),
                    c.name.clone(),
                    c.class_name.clone().unwrap_or_default(),
                    html::profile_choice("sex", c.sex.as_deref()),
                    mark("特困生"),
                    mark("特长生"),
                    mark("特殊学生"),
                    html::profile_choice("parents_away", c.parents_away.as_deref()),
                ]);
            }
            sheet.children = n;
        }
        "pairings" => {
            sheet
                .rows
                .push(s(&["序号", "帮扶人", "帮扶角色", "学生", "班级"]));
            let mut n = 0;
            for p in school.pairings.iter().filter(|p| p.active) {
                let Some(c) = children.iter().find(|c| c.id == p.child) else {
                    continue;
                };
                n += 1;
                sheet.rows.push(vec![
                    n.to_string(),
                    school.member_name(p.carer.as_str()),
                    p.role.label().to_owned(),
                    c.name.clone(),
                    c.class_name.clone().unwrap_or_default(),
                ]);
            }
            sheet.children = n;
        }
        "contacts" => {
            let month = month
                .map(str::to_owned)
                .unwrap_or_else(|| crate::today().format("%Y-%m").to_string());
            let (from, to) = parse_month(&month)?;
            sheet.title = format!("{}（{}年{}月）", report.title, from.year(), from.month());
            let kinds = [
                RecordKind::HomeVisit,
                RecordKind::Talk,
                RecordKind::ParentCall,
                RecordKind::FieldVisit,
            ];
            let mut header = vec!["序号".to_owned(), "成员".to_owned(), "角色".to_owned()];
            header.extend(kinds.iter().map(|k| k.label().to_owned()));
            header.push("合计".to_owned());
            sheet.rows.push(header);
            let mut n = 0;
            for m in school.members.iter().filter(|m| m.active) {
                let mut counts = Vec::new();
                for k in kinds {
                    let c: i64 = a.store().conn().query_row(
                        "SELECT count(*) FROM p_records WHERE author = ?1 AND kind = ?2 AND voided = 0 AND happened_on >= ?3 AND happened_on <= ?4",
                        rusqlite::params![m.id.as_str(), k.key(), from.to_string(), to.to_string()],
                        |r| r.get(0),
                    )?;
                    counts.push(c);
                }
                n += 1;
                let mut row = vec![n.to_string(), m.name.clone(), m.role_labels()];
                row.extend(counts.iter().map(ToString::to_string));
                row.push(counts.iter().sum::<i64>().to_string());
                sheet.rows.push(row);
            }
        }
        _ => return Err(OfficeError::BadInput(format!("没有名为“{key}”的报表"))),
    }
    Ok(sheet)
}

/// The sheet as an .xlsx workbook: a title row, then the header row (bold) and the rows.
/// Numbers stay text where the paper form has text (学籍号, phones), counts are numbers.
pub fn xlsx(sheet: &Sheet, school: &str) -> Result<Vec<u8>, OfficeError> {
    let err = |e: rust_xlsxwriter::XlsxError| OfficeError::Internal(format!("生成表格：{e}"));
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    let name: String = sheet.title.chars().take(31).collect();
    ws.set_name(name.replace(['（', '）'], "")).map_err(err)?;
    let bold = Format::new().set_bold();
    ws.write_string_with_format(0, 0, format!("{school} {}", sheet.title), &bold)
        .map_err(err)?;
    for (r, row) in sheet.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).map_err(|_| OfficeError::Internal("行数太多".into()))?;
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).map_err(|_| OfficeError::Internal("列数太多".into()))?;
            if r == 1 {
                ws.write_string_with_format(r, c, cell, &bold)
                    .map_err(err)?;
            } else if let Ok(n) = cell.parse::<i64>()
                && n.to_string() == *cell
                && cell.len() < 8
            {
                ws.write_number(r, c, n as f64).map_err(err)?;
            } else {
                ws.write_string(r, c, cell).map_err(err)?;
            }
        }
    }
    ws.autofit();
    book.save_to_buffer().map_err(err)
}

/// `GET /reports`.
pub(crate) async fn page(State(office): State<Office>, ctx: Ctx) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let school = a.school()?;
            let month = crate::today().format("%Y-%m").to_string();
            let mut t = Table::new(&["报表", "下载"]);
            for r in REPORTS {
                let link = if r.monthly {
                    format!(
                        "<form method=\"get\" action=\"/reports/{}\" class=\"inline\"><input name=\"month\" value=\"{month}\" size=\"8\"><button type=\"submit\">下载 .xlsx</button></form>",
                        r.key
                    )
                } else {
                    format!("<a href=\"/reports/{}\">下载 .xlsx</a>", r.key)
                };
                t.row_html(&[esc(r.title), link]);
            }
            let body = format!(
                "<p class=\"lead\">身份证号和学籍号按档案显示的方式遮盖。每次下载都会记入查阅记录。单个学生的档案请在学生页面打开“打印版”。</p>{}",
                t.finish()
            );
            Ok(html::page(&v, &school.name, "报表", "/reports", &body))
        })
        .await
}

/// The month asked for.
#[derive(Debug, Default, Deserialize)]
pub struct MonthQuery {
    #[serde(default)]
    month: String,
}

/// `GET /reports/{name}`: the .xlsx download.
pub(crate) async fn download(
    State(office): State<Office>,
    ctx: Ctx,
    Path(name): Path<String>,
    Query(q): Query<MonthQuery>,
) -> Result<Response, OfficeError> {
    let (bytes, title) = office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let month = (!q.month.trim().is_empty()).then(|| q.month.trim().to_owned());
            let sheet = build(a, &name, month.as_deref())?;
            let school = a.school()?;
            let bytes = xlsx(&sheet, &school.name)?;
            a.on_behalf(&v.member.id)?.log_report(
                &format!("办公室网页下载报表 {}", sheet.title),
                sheet.children,
            )?;
            Ok((bytes, sheet.title))
        })
        .await?;
    let file = format!("{title}.xlsx");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"report.xlsx\"; filename*=UTF-8''{}",
                    html::url(&file)
                ),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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
            assert!(e.contains("填写有误"), "{e}");
        }
    }

    #[test]
    fn a_sheet_becomes_a_workbook_with_counts_as_numbers_and_ids_as_text() {
        use calamine::{Data, Reader, Xlsx};
        let sheet = Sheet {
            title: "三特儿童登记表".into(),
            rows: vec![
                vec!["序号".into(), "学籍号".into(), "姓名".into()],
                vec!["1".into(), "G340321201501".into(), "王小雨".into()],
                vec!["2".into(), "00123".into(), "赵子涵".into()],
            ],
            children: 2,
        };
        let bytes = xlsx(&sheet, "郭庄小学").unwrap();
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range_at(0).unwrap().unwrap();
        let rows: Vec<_> = range.rows().collect();
        assert_eq!(rows[0][0], Data::String("郭庄小学 三特儿童登记表".into()));
        assert_eq!(rows[2][0], Data::Float(1.0));
        assert_eq!(rows[2][1], Data::String("G340321201501".into()));
        assert_eq!(
            rows[3][1],
            Data::String("00123".into()),
            "leading zeros kept"
        );
    }
}
