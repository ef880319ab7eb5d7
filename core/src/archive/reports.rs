//! Building the reports of [`crate::reports`] from the archive (administrators only). The rows
//! come from the same views the CLI shows (`children`, the child file with its ID numbers
//! masked, the school document, the record projection); nothing here decides who may see what
//! beyond requiring an administrator, who sees the whole school. Recording the export in the
//! access log is the caller's (the CLI's and the console's policy), with
//! [`Workbook::children`](crate::reports::Workbook).

use std::collections::BTreeMap;

use chrono::Datelike;

use super::{Archive, ChildFile, ChildRow};
use crate::doc::DocId;
use crate::error::{Error, Result};
use crate::kinds::{DocPart, PROFILE, RecordKind};
use crate::records::RecordView;
use crate::reports::{ReportOptions, Sheet, Workbook, find, parse_month};
use crate::school::SchoolView;

const FLAGS: [&str; 3] = ["特困生", "特长生", "特殊学生"];

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A choice of 基本情况 (`sex`, `parents_away`) in Chinese.
fn choice(key: &str, value: Option<&str>) -> String {
    let Some(value) = value else {
        return String::new();
    };
    PROFILE.fields.iter().find(|f| f.key == key).map_or_else(
        || value.to_owned(),
        |f| f.display(&crate::forms::FieldValue::Str(value.to_owned())),
    )
}

/// A field of the file as shown (masked ID numbers included), or empty.
fn field(file: &ChildFile, section: &str, key: &str) -> String {
    file.sections
        .iter()
        .find(|s| s.key == section)
        .and_then(|s| s.fields.iter().find(|f| f.key == key))
        .map(|f| f.value.clone())
        .unwrap_or_default()
}

/// What a register shows where the guardian withdrew consent to what the cell would hold
/// (`consent.rs`): the school no longer processes it, and nobody should ask the family for it.
pub const WITHDRAWN: &str = "监护人已撤回同意";

fn sheet(title: &str, rows: Vec<Vec<String>>) -> Sheet {
    Sheet {
        name: title.to_owned(),
        title: title.to_owned(),
        rows,
    }
}

impl Archive {
    /// Builds the report `name` (key or Chinese title; see [`crate::reports::REPORTS`]).
    /// Administrators only; ID numbers are masked as the child file shows them, unless
    /// `opts.reveal_ids` gives a reason, which is recorded in this device's access log
    /// (`id_reveal`, naming the report) before anything is built. A report that lists no ID
    /// numbers ([`crate::reports::ReportKind::lists_ids`]) refuses the request, so that no
    /// reveal is recorded for nothing.
    pub fn report(&mut self, name: &str, opts: &ReportOptions) -> Result<Workbook> {
        let kind = find(name)?;
        self.require_admin()?;
        // The child is found before a reveal is recorded: a mistyped name records nothing.
        let one_child = if kind.per_child {
            let child = opts
                .child
                .as_deref()
                .ok_or_else(|| Error::Missing("学生（--child）".into()))?;
            Some(self.find_child(child)?)
        } else {
            None
        };
        let reveal = match opts.reveal_ids.as_deref().map(str::trim) {
            None => false,
            Some("") => return Err(Error::Missing("显示完整身份证号的原因".into())),
            Some(_) if !kind.lists_ids => {
                return Err(Error::NotPermitted(format!(
                    "《{}》不含身份证号，不需要显示完整身份证号",
                    kind.title
                )));
            }
            Some(why) => {
                crate::forms::check_line("原因", why, 200)?;
                // One child's report is recorded against her, as showing her ID number on
                // her file is: the office's 查阅记录 for her lists it.
                let target = one_child.as_ref().map_or_else(
                    || format!("报表：{}", kind.title),
                    |c| c.as_str().to_owned(),
                );
                self.audit(super::audit_kind::ID_REVEAL, &target, Some(why))?;
                true
            }
        };
        let school = self.school()?;
        let mut children = self.children(None, false)?;
        // A child whose guardian withdrew the basic file: her 三特 flags are counted nowhere
        // (the 汇总表's counts beside the 三特 register would name her), and the 三特 register
        // says how many such children it leaves out, flagged or not.
        // What the guardian withdrew, per child (basic file, private part), read once.
        let mut withdrawals = Vec::with_capacity(children.len());
        for c in &mut children {
            let facts = self.child_facts(&c.id)?;
            if facts.basic_withdrawn {
                c.flags.clear();
            }
            withdrawals.push((facts.basic_withdrawn, facts.private_withdrawn));
        }
        let withdrawn = withdrawals.iter().filter(|(basic, _)| *basic).count();
        let mut book = Workbook {
            title: kind.title.to_owned(),
            sheets: Vec::new(),
            children: 0,
        };
        match kind.key {
            "summary" => book.sheets.push(summary(&school, &children)),
            "registry" => {
                let mut rows = vec![strings(&[
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
                ])];
                for (i, (c, &(basic_withdrawn, private_withdrawn))) in
                    children.iter().zip(&withdrawals).enumerate()
                {
                    if basic_withdrawn {
                        // Her name and class only: the register counts her, and says why
                        // the rest is empty.
                        let mut row = vec![WITHDRAWN.to_owned(); rows[0].len()];
                        row[0] = (i + 1).to_string();
                        row[2].clone_from(&c.name);
                        row[5] = c.class_name.clone().unwrap_or_default();
                        rows.push(row);
                        continue;
                    }
                    let f = if reveal && !private_withdrawn {
                        self.child_sections_revealed(c.id.as_str())?
                    } else {
                        self.child_sections(c.id.as_str())?
                    };
                    let private = |section: &str, key: &str| {
                        if private_withdrawn {
                            WITHDRAWN.to_owned()
                        } else {
                            field(&f, section, key)
                        }
                    };
                    rows.push(vec![
                        (i + 1).to_string(),
                        private("identity", "student_no"),
                        c.name.clone(),
                        choice("sex", c.sex.as_deref()),
                        field(&f, "profile", "birth_date"),
                        c.class_name.clone().unwrap_or_default(),
                        private("identity", "id_card"),
                        field(&f, "profile", "address"),
                        choice("parents_away", c.parents_away.as_deref()),
                        field(&f, "father", "name"),
                        field(&f, "father", "phone"),
                        field(&f, "father", "work_place"),
                        field(&f, "mother", "name"),
                        field(&f, "mother", "phone"),
                        field(&f, "mother", "work_place"),
                        field(&f, "guardian", "name"),
                        field(&f, "guardian", "relation"),
                        field(&f, "guardian", "phone"),
                        field(&f, "profile", "lives_with"),
                    ]);
                }
                book.children = children.len();
                book.sheets.push(sheet(kind.title, rows));
            }
            "sante" => {
                let mut rows = vec![strings(&[
                    "序号",
                    "姓名",
                    "班级",
                    "性别",
                    "特困生",
                    "特长生",
                    "特殊学生",
                    "外出务工",
                ])];
                for c in children.iter().filter(|c| !c.flags.is_empty()) {
                    let mark = |f: &str| if c.flags.contains(&f) { "是" } else { "" }.to_owned();
                    rows.push(vec![
                        rows.len().to_string(),
                        c.name.clone(),
                        c.class_name.clone().unwrap_or_default(),
                        choice("sex", c.sex.as_deref()),
                        mark(FLAGS[0]),
                        mark(FLAGS[1]),
                        mark(FLAGS[2]),
                        choice("parents_away", c.parents_away.as_deref()),
                    ]);
                }
                book.children = rows.len() - 1;
                if withdrawn > 0 {
                    rows.push(vec![format!(
                        "另有{withdrawn}名学生的监护人已撤回同意，未列入"
                    )]);
                }
                book.sheets.push(sheet(kind.title, rows));
            }
            "pairings" => {
                let mut rows = vec![strings(&["序号", "帮扶人", "帮扶角色", "学生", "班级"])];
                for p in school.pairings.iter().filter(|p| p.active) {
                    let Some(c) = children.iter().find(|c| c.id == p.child) else {
                        continue;
                    };
                    rows.push(vec![
                        rows.len().to_string(),
                        school.member_name(p.carer.as_str()),
                        p.role.label().to_owned(),
                        c.name.clone(),
                        c.class_name.clone().unwrap_or_default(),
                    ]);
                }
                book.children = rows.len() - 1;
                book.sheets.push(sheet(kind.title, rows));
            }
            "contacts" => {
                let month = opts
                    .month
                    .clone()
                    .unwrap_or_else(|| self.today().format("%Y-%m").to_string());
                let (from, to) = parse_month(&month)?;
                book.title = format!("{}（{}年{}月）", kind.title, from.year(), from.month());
                book.sheets
                    .push(self.contact_counts(&school, from, to, &book.title)?);
            }
            _ => {
                let child = opts
                    .child
                    .as_deref()
                    .ok_or_else(|| Error::Missing("学生（--child）".into()))?;
                // Opened for a person: her private part's opening is recorded against her.
                let file = if reveal {
                    self.child_file_revealed_for(child)?
                } else {
                    self.child_file_for(child, None)?
                };
                book.title = format!("{}的档案", file.name);
                book.sheets = self.child_archive(&school, &file)?;
                book.children = 1;
            }
        }
        Ok(book)
    }

    /// 家访/谈心/电话/走访 records per member that happened in `[from, to]`, voided ones left
    /// out.
    fn contact_counts(
        &mut self,
        school: &SchoolView,
        from: chrono::NaiveDate,
        to: chrono::NaiveDate,
        title: &str,
    ) -> Result<Sheet> {
        let kinds = [
            RecordKind::HomeVisit,
            RecordKind::Talk,
            RecordKind::ParentCall,
            RecordKind::FieldVisit,
        ];
        let mut header = strings(&["序号", "成员", "角色"]);
        header.extend(kinds.iter().map(|k| k.label().to_owned()));
        header.push("合计".to_owned());
        let mut rows = vec![header];
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT count(*) FROM p_records WHERE author = ?1 AND kind = ?2 AND voided = 0
             AND happened_on >= ?3 AND happened_on <= ?4",
        )?;
        for m in school.members.iter().filter(|m| m.active) {
            let mut counts = Vec::new();
            for k in kinds {
                let n: i64 = stmt.query_row(
                    rusqlite::params![m.id.as_str(), k.key(), from.to_string(), to.to_string()],
                    |r| r.get(0),
                )?;
                counts.push(n);
            }
            let mut row = vec![rows.len().to_string(), m.name.clone(), m.role_labels()];
            row.extend(counts.iter().map(ToString::to_string));
            row.push(counts.iter().sum::<i64>().to_string());
            rows.push(row);
        }
        Ok(Sheet {
            name: "月统计".into(),
            title: title.to_owned(),
            rows,
        })
    }

    /// One child's 六项基本档案 (DOMAIN.md §1.15): the registration form, the 三特 register,
    /// the activity register, the class's care-activity log, the growth highlights; and the
    /// care records (private kinds left out: they are not part of the basic archive).
    fn child_archive(&mut self, school: &SchoolView, file: &ChildFile) -> Result<Vec<Sheet>> {
        let mut basic = vec![strings(&["项目", "内容"])];
        basic.push(vec![
            "班级".into(),
            file.class_name.clone().unwrap_or_default(),
        ]);
        for sec in file.sections.iter().filter(|s| s.key != "flags") {
            for f in &sec.fields {
                if f.key == "class_id" {
                    continue;
                }
                basic.push(vec![format!("{}·{}", sec.label, f.label), f.value.clone()]);
            }
        }
        let mut sante = vec![strings(&["类别", "是否"])];
        let flags = file.sections.iter().find(|s| s.key == "flags");
        for (key, label) in [
            ("hardship", "特困生"),
            ("talent", "特长生"),
            ("special_needs", "特殊学生"),
        ] {
            let v = flags
                .and_then(|s| s.fields.iter().find(|f| f.key == key))
                .map(|f| f.value.clone())
                .unwrap_or_default();
            sante.push(vec![label.to_owned(), v]);
        }
        let live: Vec<&RecordView> = file.records.iter().filter(|r| r.void.is_none()).collect();
        let of = |kind: RecordKind| -> Vec<&RecordView> {
            live.iter()
                .filter(|r| r.meta.kind() == Some(kind))
                .copied()
                .collect()
        };
        let mut class_log = Vec::new();
        if let Some(class) = self.class_of(&file.id)?
            && let Some(doc) = self.store.doc(&DocId::Class(class))?
        {
            class_log = crate::records::views(doc);
        }
        class_log.retain(|r| r.void.is_none());
        let class_log: Vec<&RecordView> = class_log.iter().collect();
        let care: Vec<&RecordView> = live
            .iter()
            .filter(|r| r.meta.kind().is_some_and(|k| k.part() != DocPart::Private))
            .filter(|r| {
                !matches!(
                    r.meta.kind(),
                    Some(RecordKind::Activity | RecordKind::Highlight)
                )
            })
            .copied()
            .collect();
        Ok(vec![
            sheet("基本情况登记表", basic),
            sheet("三特儿童登记表", sante),
            record_sheet(
                school,
                "活动登记表",
                RecordKind::Activity,
                &of(RecordKind::Activity),
            ),
            record_sheet(
                school,
                "班级关爱活动记录表",
                RecordKind::ClassActivity,
                &class_log,
            ),
            record_sheet(
                school,
                "成长特殊事迹记录",
                RecordKind::Highlight,
                &of(RecordKind::Highlight),
            ),
            mixed_sheet(school, "关爱记录", &care),
        ])
    }
}

/// Records of one kind: date, who, then the form's fields in order.
fn record_sheet(
    school: &SchoolView,
    title: &str,
    kind: RecordKind,
    records: &[&RecordView],
) -> Sheet {
    let form = kind.fields();
    let mut header = strings(&["日期", "记录人"]);
    header.extend(form.iter().map(|f| f.label.to_owned()));
    let mut rows = vec![header];
    for r in records {
        let mut row = vec![
            r.meta.happened_on.clone(),
            school.member_name(&r.meta.author),
        ];
        for f in form {
            row.push(
                r.fields
                    .iter()
                    .find(|x| x.key == f.key)
                    .map(|x| x.value.clone())
                    .unwrap_or_default(),
            );
        }
        rows.push(row);
    }
    sheet(title, rows)
}

/// Records of several kinds: date, kind, who, and the fields as `标签：值` lines.
fn mixed_sheet(school: &SchoolView, title: &str, records: &[&RecordView]) -> Sheet {
    let mut rows = vec![strings(&["日期", "类型", "记录人", "内容"])];
    for r in records {
        let text: Vec<String> = r
            .fields
            .iter()
            .map(|f| format!("{}：{}", f.label, f.value))
            .collect();
        rows.push(vec![
            r.meta.happened_on.clone(),
            r.kind_label.clone(),
            school.member_name(&r.meta.author),
            text.join("\n"),
        ]);
    }
    sheet(title, rows)
}

/// 留守儿童信息汇总表: per class, with the school's total.
fn summary(school: &SchoolView, children: &[ChildRow]) -> Sheet {
    let mut rows = vec![strings(&[
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
    ])];
    let mut by: BTreeMap<String, [usize; 7]> = BTreeMap::new();
    for c in children {
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
        for (i, f) in FLAGS.iter().enumerate() {
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
        rows.push(row);
    }
    let mut row = vec![school.name.clone(), "合计".to_owned(), String::new()];
    row.extend(total.iter().map(ToString::to_string));
    rows.push(row);
    sheet("留守儿童信息汇总表", rows)
}
