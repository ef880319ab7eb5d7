//! Children and their files: children, child show, child edit, child erase, child erased,
//! child rebase, conflicts, resolve.

use serde_json::Value;
use shouwang_core::archive::{ChildFile, ChildFilter};
use shouwang_core::kinds::section;
use shouwang_core::school::SchoolView;

use super::{Ctx, key_values};
use crate::cli::ChildrenArgs;
use crate::error::{CliError, Result};
use crate::output::{Table, away_label, local_time, role_label, sex_label};

/// `shouwang children`: the children this device holds, narrowed by the same [`ChildFilter`]
/// the office console's 学生 page uses.
pub fn list(ctx: &mut Ctx, args: &ChildrenArgs) -> Result<()> {
    let (class, mine) = (args.class.as_deref(), args.mine);
    let mut a = ctx.open()?;
    // The class by name (an unknown one refused as before), so the filter can match rows.
    let class_name = class.map(|c| a.find_class(c)).transpose()?.map(|c| c.name);
    let filter = ChildFilter::parse(
        args.search.as_deref(),
        class_name.as_deref(),
        args.away.as_deref(),
        args.flag.as_deref(),
    )?;
    let rows = filter.apply(a.children(None, mine)?);
    // A report: any JSON export of the list, and an administrator's whole-school list on
    // screen. A carer's own list, or one class on screen, is ordinary use.
    let admin = a.me()?.roles.iter().any(|r| r.administers());
    if ctx.json || (admin && class.is_none() && !mine) {
        ctx.log_report(&mut a, rows.len())?;
    }
    if ctx.json {
        return ctx.json(&rows);
    }
    if rows.is_empty() {
        let narrowed = !ChildFilter {
            class: None,
            ..filter
        }
        .is_empty();
        return ctx.line(if narrowed {
            "没有符合条件的学生。"
        } else if mine {
            "没有由你负责的学生。"
        } else {
            "没有学生。用 roster import 导入名单。"
        });
    }
    let mut t = Table::new(&[
        "姓名",
        "班级",
        "性别",
        "外出务工",
        "三特",
        "记录",
        "最近记录",
        "编号",
    ]);
    for c in &rows {
        t.row(vec![
            c.name.clone(),
            c.class_name.clone().unwrap_or_default(),
            sex_label(c.sex.as_deref()),
            away_label(c.parents_away.as_deref()),
            c.flags.join("、"),
            c.records.to_string(),
            c.last_record.clone().unwrap_or_default(),
            c.id.to_string(),
        ]);
    }
    ctx.text(t.render())?;
    ctx.line(format!("共 {} 名学生", rows.len()))
}

/// The file as JSON, with the names of the members its ids refer to.
fn file_json(file: &ChildFile, school: &SchoolView) -> Result<Value> {
    let mut v = serde_json::to_value(file)?;
    let names: serde_json::Map<String, Value> = school
        .members
        .iter()
        .map(|m| (m.id.to_string(), Value::String(m.name.clone())))
        .collect();
    if let Value::Object(o) = &mut v {
        o.insert("member_names".into(), Value::Object(names));
    }
    Ok(v)
}

/// The whole file as text.
pub fn render_file(file: &ChildFile, school: &SchoolView) -> String {
    let mut s = String::new();
    let mut push = |line: String| {
        s.push_str(&line);
        s.push('\n');
    };
    push(format!(
        "━━ {}（{}）的档案 ━━  编号 {}",
        file.name,
        file.class_name.as_deref().unwrap_or("未分班"),
        file.id
    ));
    let conflicted: Vec<String> = file.conflicts.iter().map(|(_, c)| c.dotted()).collect();
    for sec in &file.sections {
        if sec.fields.is_empty() {
            continue;
        }
        push(format!("【{}】", sec.label));
        for f in &sec.fields {
            let mark = if conflicted.contains(&format!("{}.{}", sec.key, f.key)) {
                "  ⚠ 有冲突，见下"
            } else {
                ""
            };
            push(format!("  {}：{}{}", f.label, f.value, mark));
        }
    }
    let waits_for_consent = file.consent_required
        && !file
            .consent
            .as_ref()
            .is_some_and(|c| c.covers(shouwang_core::consent::Cover::Private));
    if !file.private_shown {
        push(if waits_for_consent {
            "【身份信息、特别关注】待监护人同意后才能填写".to_owned()
        } else {
            "【身份信息、特别关注】仅班主任、校领导和档案管理员可见".to_owned()
        });
    }
    push(format!("【关爱记录】共 {} 条", file.records.len()));
    for (i, r) in file.records.iter().enumerate() {
        let voided = if r.void.is_some() {
            "【已作废】"
        } else {
            ""
        };
        push(format!(
            "  {}. {}{} {} · {}（{}） 编号 {}",
            i + 1,
            voided,
            r.meta.happened_on,
            r.kind_label,
            school.member_name(&r.meta.author),
            role_label(&r.meta.author_role),
            r.meta.id
        ));
        for f in r.fields.iter().chain(&r.other_fields) {
            push(format!(
                "       {}：{}",
                f.label,
                f.value.replace('\n', "\n         ")
            ));
        }
        for p in &r.progress {
            let text: Vec<String> = p
                .fields
                .iter()
                .map(|f| format!("{}：{}", f.label, f.value))
                .collect();
            push(format!(
                "       进步档案 {} · {}：{}",
                p.date,
                school.member_name(&p.author),
                text.join("；")
            ));
        }
        if let Some(v) = &r.void {
            push(format!(
                "       作废：{}，原因：{}",
                school.member_name(&v.by),
                v.reason
            ));
        }
    }
    if file.conflicts.is_empty() {
        push("【冲突】无".to_owned());
    } else {
        push(format!("【未解决的冲突】{} 处", file.conflicts.len()));
        for (_, c) in &file.conflicts {
            push(format!("  {}（{}）", c.label, c.dotted()));
            for (i, v) in c.values.iter().enumerate() {
                push(format!("    {}) {}", i + 1, v));
            }
        }
    }
    push(format!(
        "【监护人同意】{}",
        super::privacy::consent_line(file.consent.as_ref(), file.consent_required)
    ));
    push(format!("【修改历史】{} 次", file.history.len()));
    for h in &file.history {
        push(format!(
            "  {} {} {}",
            local_time(h.time),
            h.member,
            h.message
        ));
    }
    push(format!(
        "━━ {}",
        super::privacy::officer_line(file.privacy_officer.as_ref())
    ));
    s
}

pub fn show(ctx: &mut Ctx, child: &str, why: Option<&str>, reveal_id: bool) -> Result<()> {
    let mut a = ctx.open()?;
    let file = match (reveal_id, why) {
        (true, Some(why)) => a.reveal_id(child, why)?,
        (true, None) => {
            return Err(
                shouwang_core::Error::Missing("查看完整身份证号的原因（--why）".into()).into(),
            );
        }
        (false, _) => a.child_file_for(child, why)?,
    };
    let school = a.school()?;
    if ctx.json {
        let v = file_json(&file, &school)?;
        return ctx.json(&v);
    }
    ctx.text(render_file(&file, &school))
}

pub fn edit(ctx: &mut Ctx, child: &str, sec: &str, fields: &[String]) -> Result<()> {
    let kv = key_values(fields)?;
    let mut a = ctx.open()?;
    a.edit_child(child, sec, &kv)?;
    let label = section(sec).map_or(sec, |s| s.label);
    let keys: Vec<&str> = kv.iter().map(|(k, _)| k.as_str()).collect();
    if ctx.json {
        return ctx.json(&serde_json::json!({ "section": sec, "fields": keys }));
    }
    ctx.line(format!("已修改{}：{}", label, keys.join("、")))
}

/// Lines describing a file's open conflicts and how to resolve them.
pub fn render_conflicts(file: &ChildFile, child_arg: &str) -> String {
    if file.conflicts.is_empty() {
        return format!("{} 的档案没有未解决的冲突。\n", file.name);
    }
    let mut s = format!(
        "{} 的档案有 {} 处冲突（两台设备离线时改成了不同的值，都已保留）：\n",
        file.name,
        file.conflicts.len()
    );
    for (_, c) in &file.conflicts {
        s.push_str(&format!("  {}（{}）\n", c.label, c.dotted()));
        for (i, v) in c.values.iter().enumerate() {
            s.push_str(&format!("    {}) {}\n", i + 1, v));
        }
        s.push_str(&format!(
            "    解决：shouwang resolve {} {} --pick 序号（或 --value 新值）\n",
            child_arg,
            c.dotted()
        ));
    }
    s
}

pub fn conflicts(ctx: &mut Ctx, child: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let file = a.child_conflicts_for(child)?;
    if ctx.json {
        let list: Vec<Value> = file
            .conflicts
            .iter()
            .map(|(doc, c)| {
                serde_json::json!({
                    "doc": doc,
                    "path": c.dotted(),
                    "label": c.label,
                    "values": c.values,
                })
            })
            .collect();
        return ctx.json(&list);
    }
    ctx.text(render_conflicts(&file, child))
}

pub fn resolve(
    ctx: &mut Ctx,
    child: &str,
    path: &str,
    pick: Option<usize>,
    value: Option<&str>,
) -> Result<()> {
    let mut a = ctx.open()?;
    let before = a.child_conflicts_for(child)?;
    let conflict = before
        .conflicts
        .iter()
        .map(|(_, c)| c)
        .find(|c| c.dotted() == path.trim())
        .ok_or_else(|| CliError::Core(shouwang_core::Error::not_found("冲突", path.trim())))?
        .clone();
    a.resolve(child, path.trim(), pick, value)?;
    // Show the value as stored now (a typed phone number loses its spaces, a choice its key).
    let after = a.child_file(child)?;
    let stored = match conflict.path.as_slice() {
        [sec, key] => after
            .sections
            .iter()
            .filter(|s| &s.key == sec)
            .flat_map(|s| &s.fields)
            .find(|f| &f.key == key)
            .map(|f| f.value.clone()),
        _ => None,
    };
    let chosen = match (stored, pick, value) {
        (Some(v), _, _) => v,
        (None, Some(n), _) => conflict
            .values
            .get(n.saturating_sub(1))
            .cloned()
            .unwrap_or_default(),
        (None, None, Some(v)) => v.trim().to_owned(),
        (None, None, None) => String::new(),
    };
    if ctx.json {
        return ctx.json(&serde_json::json!({ "path": conflict.dotted(), "value": chosen }));
    }
    ctx.line(format!(
        "已解决冲突：{} 的{}采用“{}”",
        before.name, conflict.label, chosen
    ))
}

pub fn erase(ctx: &mut Ctx, child: &str, reason: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let name = a
        .child_file(child)
        .map_or_else(|_| child.to_owned(), |f| f.name);
    let report = a.erase_child(child, reason)?;
    if ctx.json {
        return ctx.json(&report);
    }
    ctx.line(format!(
        "已删除{name}的档案：本机已清除 {} 份文件，结束结对 {} 个。\n\
         其他设备下次与学校服务器或管理员设备同步、或导入数据文件时清除，之后不再接收。\n\
         学校只保留删除记录（编号 {}、日期、原因、操作人）。",
        report.purged, report.pairings_ended, report.child
    ))
}

pub fn erased(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let rows = a.erasures()?;
    if ctx.json {
        return ctx.json(&rows);
    }
    if rows.is_empty() {
        return ctx.line("没有删除过学生档案。");
    }
    let school = a.school()?;
    let mut t = Table::new(&["学生编号", "日期", "原因", "操作人"]);
    for e in &rows {
        t.row(vec![
            e.child.to_string(),
            e.on.clone(),
            e.reason.clone(),
            school.member_name(e.by.as_str()),
        ]);
    }
    ctx.text(t.render())
}

pub fn rebase(ctx: &mut Ctx, child: &str, reason: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let report = a.rebase_child(child, reason)?;
    if ctx.json {
        return ctx.json(&report);
    }
    let name = a
        .child_file(child)
        .map_or_else(|_| child.to_owned(), |f| f.name);
    ctx.line(format!(
        "已重建{name}的档案：{} 份文件只保留现在的内容，去掉了 {} 项修改历史。\n\
         其他设备下次同步或导入数据文件时换成新档案（它们尚未同步的新记录会保留到新档案里），旧版本的修改不再接收。",
        report.documents, report.dropped_changes
    ))
}
