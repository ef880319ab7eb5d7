//! Class rosters from the school registry (学籍名单), as .csv, .xlsx, .xls or .ods.
//!
//! The header row names the columns; order does not matter and unknown columns are ignored.
//! Required: 姓名, 班级. Understood: 学籍号, 性别, 出生日期, 身份证号, 家庭住址, 监护人,
//! 与监护人关系 (or 关系), 联系电话 (the guardian's phone), 父亲姓名, 父亲电话, 母亲姓名,
//! 母亲电话, 外出务工 (父亲/母亲/父母 or 父亲外出…), 寄宿 (是/否).
//!
//! Every row is validated before anything is written; the first bad row is reported with its
//! line number, and nothing from the file is imported.

mod bounds;

use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook, open_workbook_auto};
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
/// Widest sheet read: a roster has a few dozen columns.
const MAX_COLS: usize = 200;
/// Excel's last day, 9999-12-31.
const MAX_EXCEL_SERIAL: f64 = 2_958_465.0;

/// Reads a roster file by its extension.
pub fn read_file(path: &Path) -> Result<Vec<RosterRow>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let table = match ext.as_str() {
        "csv" | "txt" => read_csv(path)?,
        "xlsx" | "xls" | "xlsm" | "ods" => read_sheet(path, &ext)?,
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
        // The csv crate's own text is English: say where, in Chinese.
        let rec = rec.map_err(|e| {
            let at = e
                .position()
                .map(|p| format!("（第{}行附近）", p.line()))
                .unwrap_or_default();
            Error::invalid(
                "名单文件",
                format!("CSV格式有误{at}，请在 Excel 或 WPS 中打开后另存为“CSV UTF-8”再导入"),
            )
        })?;
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

/// An Excel serial date (days since 1899-12-30) as `YYYY-MM-DD`. A serial outside Excel's
/// calendar (negative, past 9999-12-31, not a number) is no date: it is kept as the number, so
/// the date's own check names the row.
fn excel_date(serial: f64) -> String {
    let days = serial.floor();
    if !(0.0..=MAX_EXCEL_SERIAL).contains(&days) {
        return format!("{serial}");
    }
    NaiveDate::from_ymd_opt(1899, 12, 30)
        .and_then(|base| base.checked_add_signed(chrono::Duration::days(days as i64)))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| format!("{serial}"))
}

/// calamine's own messages are English and technical ("Zip error: invalid Zip archive"): the
/// person needs to know the file is not a readable spreadsheet, and what to do.
fn unreadable() -> Error {
    Error::invalid(
        "名单文件",
        "无法读取这个表格：文件不是有效的 Excel 文件（.xlsx/.xls），或已损坏。请用 Excel 或 WPS 打开后另存为 .xlsx 或 .csv 再导入",
    )
}

fn bad_sheet() -> Error {
    Error::invalid("名单文件", "无法读取第一张工作表：表格可能已损坏")
}

fn too_big() -> Error {
    Error::invalid(
        "名单文件",
        format!(
            "表格太大：最多 {MAX_ROWS} 行、{MAX_COLS} 列，请删掉多余的行列（包括远处的空格子）后再导入"
        ),
    )
}

fn read_sheet(path: &Path, ext: &str) -> Result<Vec<Vec<String>>> {
    if matches!(ext, "xlsx" | "xlsm") {
        return read_xlsx(path);
    }
    // calamine reads every sheet of an .xls or .ods whole when it opens it, sized by what the
    // file claims: measure first (`bounds`), then let calamine read, a panic in it being a
    // damaged file as for .xlsx.
    match ext {
        "xls" => bounds::check_xls(path)?,
        "ods" => bounds::check_ods(path)?,
        _ => {}
    }
    let range = crate::panics::catch_quietly(|| {
        let mut wb = open_workbook_auto(path).map_err(|_| unreadable())?;
        wb.worksheet_range_at(0)
            .ok_or_else(|| Error::invalid("名单文件", "表格里没有工作表"))?
            .map_err(|_| bad_sheet())
    })
    .unwrap_or_else(|_| Err(bad_sheet()))?;
    if range.height() > MAX_ROWS {
        return Err(Error::invalid("名单文件", "行数太多"));
    }
    Ok(range
        .rows()
        .map(|r| r.iter().map(cell_text).collect())
        .collect())
}

/// The first sheet of an .xlsx, cell by cell. calamine's `worksheet_range` allocates the box
/// from the first used cell to the last before anything can be checked: one cell in the sheet's
/// far corner (XFD1048576) asks for 512 GiB and aborts the process. Here the box is checked as
/// the cells come ([`MAX_ROWS`] × [`MAX_COLS`]) and only the cells present are kept. The table
/// starts at the first used row and column, as a range does.
fn read_xlsx(path: &Path) -> Result<Vec<Vec<String>>> {
    // calamine can panic on a hostile sheet: a cell reference whose column overflows its
    // arithmetic (found by the `roster_xlsx` fuzz target in a build with overflow checks). A
    // panic there is a damaged file, refused like one (without calamine's English message).
    crate::panics::catch_quietly(|| read_xlsx_cells(path)).unwrap_or_else(|_| Err(bad_sheet()))
}

fn read_xlsx_cells(path: &Path) -> Result<Vec<Vec<String>>> {
    let mut wb: Xlsx<_> = open_workbook(path).map_err(|_| unreadable())?;
    let Some(name) = wb.sheet_names().first().cloned() else {
        return Err(Error::invalid("名单文件", "表格里没有工作表"));
    };
    let mut reader = wb.worksheet_cells_reader(&name).map_err(|_| bad_sheet())?;
    let mut cells: Vec<(u32, u32, String)> = Vec::new();
    let (mut top, mut bottom, mut left, mut right) = (u32::MAX, 0u32, u32::MAX, 0u32);
    while let Some(cell) = reader.next_cell().map_err(|_| bad_sheet())? {
        let value = Data::from(cell.get_value().clone());
        if value == Data::Empty {
            continue;
        }
        let (row, col) = cell.get_position();
        (top, bottom) = (top.min(row), bottom.max(row));
        (left, right) = (left.min(col), right.max(col));
        if (bottom - top) as usize >= MAX_ROWS || (right - left) as usize >= MAX_COLS {
            return Err(too_big());
        }
        cells.push((row, col, cell_text(&value)));
    }
    if cells.is_empty() {
        return Ok(Vec::new());
    }
    let mut table = vec![Vec::<String>::new(); (bottom - top) as usize + 1];
    for (row, col, text) in cells {
        let line = &mut table[(row - top) as usize];
        let at = (col - left) as usize;
        if line.len() <= at {
            line.resize(at + 1, String::new());
        }
        line[at] = text;
    }
    Ok(table)
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
    /// An .xlsx with the fixtures' header and one row whose 出生日期 cell is `date` with a date
    /// format, and optionally a cell at `far` (row, column).
    fn xlsx(date: f64, far: Option<(u32, u16)>) -> (tempfile::TempDir, std::path::PathBuf) {
        let mut wb = rust_xlsxwriter::Workbook::new();
        let ws = wb.add_worksheet();
        for (c, h) in ["姓名", "班级", "出生日期"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_string(1, 0, "甲").unwrap();
        ws.write_string(1, 1, "一班").unwrap();
        let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        ws.write_number_with_format(1, 2, date, &format).unwrap();
        if let Some((r, c)) = far {
            ws.write_string(r, c, "备注").unwrap();
        }
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("名单.xlsx");
        wb.save(&path).unwrap();
        (dir, path)
    }

    #[test]
    fn xlsx_dates_are_read_as_dates() {
        let (_dir, path) = xlsx(42_799.0, None);
        let rows = read_file(&path).unwrap();
        assert_eq!(rows[0].birth_date, NaiveDate::from_ymd_opt(2017, 3, 5));
    }

    /// Fuzzing (RELIABILITY.md): a date cell whose serial is past any calendar panicked in
    /// `chrono::Duration::days` ("TimeDelta::days out of bounds"). Now the row is refused.
    #[test]
    fn an_xlsx_date_past_excels_calendar_is_an_error_not_a_panic() {
        for serial in [1e20, -1e20, 2_958_466.0, -1.0, f64::MAX] {
            let (_dir, path) = xlsx(serial, None);
            let e = read_file(&path).unwrap_err().to_string();
            assert!(
                e.contains("第2行") && e.contains("出生日期"),
                "{serial}: {e}"
            );
        }
        for serial in [f64::NAN, f64::INFINITY, -0.5, 1e300] {
            let text = excel_date(serial);
            assert!(parse_date_text(&text).is_none(), "{serial} → {text}");
        }
    }

    fn parse_date_text(text: &str) -> Option<NaiveDate> {
        crate::dates::parse_date("出生日期", text).ok()
    }

    /// Fuzzing (RELIABILITY.md): one cell in the sheet's far corner (a 5 KB file) made calamine
    /// allocate the whole box, 512 GiB, and abort the process. Now it is refused as too large,
    /// and a sheet as wide as a roster can be still reads.
    #[test]
    fn an_xlsx_cell_reference_that_overflows_calamine_is_refused_not_a_panic() {
        // The input the CI fuzz run of 2026-12-03 found (calamine's `get_row_and_optional_column`:
        // attempt to multiply with overflow).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("名单.xlsx");
        std::fs::write(
            &path,
            include_bytes!("../../testdata/roster-cell-reference-overflow.xlsx"),
        )
        .unwrap();
        let e = read_file(&path).unwrap_err().to_string();
        assert!(e.contains("名单"), "{e}");
    }

    #[test]
    fn an_xlsx_cell_in_the_far_corner_is_refused_without_allocating() {
        for far in [(1_048_575, 16_383), (1, 16_383), (25_000, 0)] {
            let (_dir, path) = xlsx(42_799.0, Some(far));
            let e = read_file(&path).unwrap_err().to_string();
            assert!(e.contains("表格太大"), "{far:?}: {e}");
        }
        let (_dir, path) = xlsx(42_799.0, Some((1, 150)));
        let rows = read_file(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "甲");
    }

    fn sheet_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    fn xls(sheet: &[Vec<u8>]) -> (tempfile::TempDir, std::path::PathBuf) {
        use bounds::tests::{compound_file, workbook};
        sheet_file("名单.xls", &compound_file(&workbook(sheet)))
    }

    #[test]
    fn an_xls_roster_reads() {
        use bounds::tests::{dimensions, label};
        let (_dir, path) = xls(&[
            dimensions(0, 2, 0, 2),
            label(0, 0, "姓名"),
            label(0, 1, "班级"),
            label(1, 0, "甲"),
            label(1, 1, "一班"),
        ]);
        let rows = read_file(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].class_name.as_str()),
            ("甲", "一班")
        );
        // The same workbook with its stream past 4,096 bytes, out of the mini stream.
        let mut stream = bounds::tests::workbook(&[
            dimensions(0, 2, 0, 2),
            label(0, 0, "姓名"),
            label(0, 1, "班级"),
            label(1, 0, "乙"),
            label(1, 1, "一班"),
        ]);
        stream.resize(5000, 0);
        let (_dir, path) = sheet_file("名单.xls", &bounds::tests::compound_file(&stream));
        assert_eq!(read_file(&path).unwrap()[0].name, "乙");
    }

    /// A 5 KB .xls can claim a sheet of billions of cells: calamine reserves room for the box a
    /// DIMENSIONS record names (4 billion rows × 256 columns here, about 40 TB) and lays out
    /// the box from the first cell to the last (65,536 × 65,536), all when it opens the file;
    /// the allocation fails and aborts the process. Now the sheet is measured first.
    #[test]
    fn an_xls_claiming_a_huge_sheet_is_refused_without_allocating() {
        use bounds::tests::{dimensions, label};
        let header = [label(0, 0, "姓名"), label(0, 1, "班级")];
        for (what, extra, says) in [
            // Beyond what an .xls can hold: a damaged sheet.
            ("dimensions", dimensions(0, u32::MAX, 0, 256), "已损坏"),
            ("far corner", label(65_535, 65_535, "备注"), "已损坏"),
            // Within it, beyond a roster.
            ("many rows", dimensions(0, 65_536, 0, 256), "表格太大"),
            ("far row", label(25_000, 0, "备注"), "表格太大"),
            ("far column", label(1, 250, "备注"), "表格太大"),
        ] {
            let mut sheet = header.to_vec();
            sheet.push(extra);
            let (_dir, path) = xls(&sheet);
            let e = read_file(&path).unwrap_err().to_string();
            assert!(e.contains(says), "{what}: {e}");
        }
    }

    fn ods(rows: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        sheet_file("名单.ods", &bounds::tests::ods(rows))
    }

    #[test]
    fn an_ods_roster_reads() {
        use bounds::tests::ods_row;
        // LibreOffice writes the formatted rest of a sheet as empty rows and cells repeated to
        // its last row and column: they are not cells.
        let rest = r#"<table:table-row table:number-rows-repeated="1048573"><table:table-cell table:number-columns-repeated="1024"/></table:table-row>"#;
        let (_dir, path) = ods(&format!(
            "{}{}{rest}",
            ods_row(&["姓名", "班级"]),
            ods_row(&["甲", "一班"])
        ));
        let rows = read_file(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].name.as_str(), rows[0].class_name.as_str()),
            ("甲", "一班")
        );
    }

    /// An .ods row or cell can say it repeats a million times: calamine expands it (up to 100
    /// million cells, gigabytes, before its own limit). Now the sheet is measured first.
    #[test]
    fn an_ods_claiming_a_huge_sheet_is_refused_without_allocating() {
        use bounds::tests::ods_row;
        let header = ods_row(&["姓名", "班级"]);
        let cell = |cols: u32| {
            format!(
                r#"<table:table-cell table:number-columns-repeated="{cols}" office:value-type="string"><text:p>甲</text:p></table:table-cell>"#
            )
        };
        for (what, rows) in [
            (
                "rows and columns",
                format!(
                    r#"<table:table-row table:number-rows-repeated="1000000">{}</table:table-row>"#,
                    cell(16_384)
                ),
            ),
            (
                "rows",
                format!(
                    r#"<table:table-row table:number-rows-repeated="30000">{}</table:table-row>"#,
                    cell(2)
                ),
            ),
            (
                "far column",
                format!(
                    r#"<table:table-row><table:table-cell table:number-columns-repeated="300"/>{}</table:table-row>"#,
                    cell(1)
                ),
            ),
            (
                "count past u64",
                format!(
                    r#"<table:table-row table:number-rows-repeated="99999999999999999999999">{}</table:table-row>"#,
                    cell(1)
                ),
            ),
        ] {
            let (_dir, path) = ods(&format!("{header}{rows}"));
            let e = read_file(&path).unwrap_err().to_string();
            assert!(e.contains("表格太大"), "{what}: {e}");
        }
    }
}
