//! Class rosters from the school registry (学籍名单), as .csv or .xlsx.
//!
//! The header row names the columns; order does not matter and unknown columns are ignored.
//! Required: 姓名, 班级. Understood: 学籍号, 性别, 出生日期, 身份证号, 家庭住址, 监护人,
//! 与监护人关系 (or 关系), 联系电话 (the guardian's phone), 父亲姓名, 父亲电话, 母亲姓名,
//! 母亲电话, 外出务工 (父亲/母亲/父母 or 父亲外出…), 寄宿 (是/否).
//!
//! Every row is validated before anything is written; the first bad row is reported with its
//! line number, and nothing from the file is imported.

use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};
use chrono::NaiveDate;

use crate::error::{Error, Result};
use crate::forms::{FieldValue, parse_phone};
use crate::id_card::IdCardNumber;
use crate::kinds::{PROFILE, SANTE};

/// One child from a roster, validated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RosterRow {
    /// Line in the file (the header is line 1).
    pub line: usize,
    pub student_no: Option<String>,
    pub name: String,
    pub sex: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub class_name: String,
    pub id_card: Option<String>,
    pub address: Option<String>,
    pub guardian: Option<String>,
    pub guardian_relation: Option<String>,
    pub guardian_phone: Option<String>,
    pub father: Option<String>,
    pub father_phone: Option<String>,
    pub mother: Option<String>,
    pub mother_phone: Option<String>,
    /// `father`, `mother` or `both`.
    pub parents_away: Option<String>,
    pub boarding: Option<bool>,
}

const MAX_ROWS: usize = 20_000;

/// Reads a roster file by its extension.
pub fn read_file(path: &Path) -> Result<Vec<RosterRow>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let table = match ext.as_str() {
        "csv" | "txt" => read_csv(path)?,
        "xlsx" | "xls" | "xlsm" | "ods" => read_sheet(path)?,
        _ => {
            return Err(Error::invalid(
                "名单文件",
                "只支持 .xlsx、.xls 或 .csv 文件",
            ));
        }
    };
    parse_table(&table)
}

fn read_csv(path: &Path) -> Result<Vec<Vec<String>>> {
    let bytes = std::fs::read(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::invalid("名单文件", "不是UTF-8编码，请在Excel中另存为“CSV UTF-8”"))?;
    let text = text.trim_start_matches('\u{feff}');
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| Error::invalid("名单文件", format!("CSV格式有误：{e}")))?;
        rows.push(rec.iter().map(str::to_owned).collect());
        if rows.len() > MAX_ROWS {
            return Err(Error::invalid("名单文件", "行数太多"));
        }
    }
    Ok(rows)
}

fn cell_text(c: &Data) -> String {
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Int(i) => i.to_string(),
        Data::DateTime(d) => excel_date(d.as_f64()),
        other => other.to_string(),
    }
}

/// An Excel serial date (days since 1899-12-30) as `YYYY-MM-DD`.
fn excel_date(serial: f64) -> String {
    NaiveDate::from_ymd_opt(1899, 12, 30)
        .and_then(|base| base.checked_add_signed(chrono::Duration::days(serial.floor() as i64)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn read_sheet(path: &Path) -> Result<Vec<Vec<String>>> {
    // calamine's own messages are English and technical ("Zip error: invalid Zip archive"):
    // the person needs to know the file is not a readable spreadsheet, and what to do.
    let unreadable = |_| {
        Error::invalid(
            "名单文件",
            "无法读取这个表格：文件不是有效的 Excel 文件（.xlsx/.xls），或已损坏。请用 Excel 或 WPS 打开后另存为 .xlsx 或 .csv 再导入",
        )
    };
    let mut wb = open_workbook_auto(path).map_err(unreadable)?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or_else(|| Error::invalid("名单文件", "表格里没有工作表"))?
        .map_err(|_| Error::invalid("名单文件", "无法读取第一张工作表：表格可能已损坏"))?;
    if range.height() > MAX_ROWS {
        return Err(Error::invalid("名单文件", "行数太多"));
    }
    Ok(range
        .rows()
        .map(|r| r.iter().map(cell_text).collect())
        .collect())
}

fn col(header: &[String], names: &[&str]) -> Option<usize> {
    header
        .iter()
        .position(|h| names.iter().any(|n| h.trim() == *n))
}

/// Validates a table whose first row is the header.
pub fn parse_table(table: &[Vec<String>]) -> Result<Vec<RosterRow>> {
    let Some((header, body)) = table.split_first() else {
        return Err(Error::invalid("名单文件", "文件是空的"));
    };
    let need = |names: &[&str]| {
        col(header, names)
            .ok_or_else(|| Error::invalid("名单文件", format!("缺少“{}”列", names[0])))
    };
    let c_name = need(&["姓名", "学生姓名"])?;
    let c_class = need(&["班级", "所在班级"])?;
    let c = |names: &[&str]| col(header, names);
    let cols = (
        c(&["学籍号", "学籍号码", "全国学籍号"]),
        c(&["性别"]),
        c(&["出生日期", "出生年月"]),
        c(&["身份证号", "身份证号码", "身份证件号"]),
        c(&["家庭住址", "住址"]),
        c(&["监护人", "监护人姓名"]),
        c(&["与监护人关系", "关系"]),
        c(&["联系电话", "监护人电话"]),
        c(&["父亲姓名", "父亲"]),
        c(&["父亲电话"]),
        c(&["母亲姓名", "母亲"]),
        c(&["母亲电话"]),
        c(&["外出务工", "留守类型"]),
        c(&["寄宿", "是否寄宿"]),
    );
    let mut out = Vec::new();
    let mut seen_no = std::collections::HashSet::new();
    for (i, row) in body.iter().enumerate() {
        let line = i + 2;
        let get = |c: Option<usize>| {
            c.and_then(|c| row.get(c))
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        };
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let at = |e: Error| Error::invalid(format!("第{line}行"), e.to_string());
        let name = get(Some(c_name)).ok_or_else(|| at(Error::Missing("姓名".into())))?;
        let class_name = get(Some(c_class)).ok_or_else(|| at(Error::Missing("班级".into())))?;
        let field = |key: &str| PROFILE.fields.iter().find(|f| f.key == key);
        let sex = match (get(cols.1), field("sex")) {
            (Some(s), Some(spec)) => match spec.parse(&s).map_err(at)? {
                FieldValue::Str(k) => Some(k),
                _ => None,
            },
            _ => None,
        };
        let birth_date = get(cols.2)
            .map(|s| crate::dates::parse_date("出生日期", &s).map_err(at))
            .transpose()?;
        let id_card = get(cols.3)
            .map(|s| {
                IdCardNumber::parse(&s)
                    .map(|i| i.as_str().to_owned())
                    .map_err(at)
            })
            .transpose()?;
        let phone = |c: Option<usize>, label: &str| {
            get(c)
                .map(|s| parse_phone(label, &s).map_err(at))
                .transpose()
        };
        let parents_away = match get(cols.12) {
            None => None,
            Some(s) => Some(
                match s.as_str() {
                    "父亲" | "父亲外出" | "父" => "father",
                    "母亲" | "母亲外出" | "母" => "mother",
                    "父母" | "双亲" | "父母均外出" | "父母双方" => "both",
                    _ => {
                        return Err(at(Error::invalid("外出务工", "请填“父亲”“母亲”或“父母”")));
                    }
                }
                .to_owned(),
            ),
        };
        let boarding = match get(cols.13) {
            None => None,
            Some(s) => match SANTE.fields[0].parse(&s) {
                Ok(FieldValue::Bool(b)) => Some(b),
                _ => return Err(at(Error::invalid("寄宿", "请填“是”或“否”"))),
            },
        };
        let student_no = get(cols.0);
        if let Some(no) = &student_no
            && !seen_no.insert(no.clone())
        {
            return Err(at(Error::invalid("学籍号", "与前面的行重复")));
        }
        out.push(RosterRow {
            line,
            student_no,
            name,
            sex,
            birth_date,
            class_name,
            id_card,
            address: get(cols.4),
            guardian: get(cols.5),
            guardian_relation: get(cols.6),
            guardian_phone: phone(cols.7, "联系电话")?,
            father: get(cols.8),
            father_phone: phone(cols.9, "父亲电话")?,
            mother: get(cols.10),
            mother_phone: phone(cols.11, "母亲电话")?,
            parents_away,
            boarding,
        });
    }
    if out.is_empty() {
        return Err(Error::invalid("名单文件", "没有任何学生"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn reads_columns_by_header_in_any_order() {
        let t = table(&[
            &[
                "班级",
                "姓名",
                "学籍号",
                "性别",
                "出生日期",
                "监护人",
                "联系电话",
                "外出务工",
            ],
            &[
                "三年级(1)班",
                "王小雨",
                "G1",
                "女",
                "2017/3/5",
                "王奶奶",
                "13800001111",
                "父母",
            ],
            &["", "", "", "", "", "", "", ""],
        ]);
        let rows = parse_table(&t).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].sex.as_deref(), Some("female"));
        assert_eq!(rows[0].parents_away.as_deref(), Some("both"));
        assert_eq!(rows[0].birth_date, NaiveDate::from_ymd_opt(2017, 3, 5));
    }

    #[test]
    fn reports_the_first_bad_row_by_line() {
        let t = table(&[
            &["姓名", "班级", "身份证号"],
            &["甲", "一班", ""],
            &["乙", "一班", "110105194912310021"],
        ]);
        let e = parse_table(&t).unwrap_err().to_string();
        assert!(e.starts_with("第3行"), "{e}");
        assert!(e.contains("身份证号"), "{e}");
        let e = parse_table(&table(&[&["姓名"], &["甲"]]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("缺少“班级”列"), "{e}");
    }
}
