//! A child leaving the school and coming back, the left children, and the files past the
//! school's retention: child leave, child return, children --left, child retention.

use shouwang_core::archive::{LeaveInput, LeftChild};

use super::{Ctx, date_or_today, today};
use crate::error::Result;
use crate::output::Table;

pub fn leave(ctx: &mut Ctx, child: &str, date: &str, reason: &str, to: Option<&str>) -> Result<()> {
    let mut a = ctx.open()?;
    let report = a.leave_child(
        child,
        &LeaveInput {
            date: date.to_owned(),
            reason: reason.to_owned(),
            to: to.map(str::to_owned),
        },
    )?;
    if ctx.json {
        return ctx.json(&report);
    }
    let name = a
        .child_name(report.child.as_str())
        .unwrap_or_else(|| report.child.to_string());
    let years = a.school()?.rules.retention_years;
    ctx.line(format!(
        "已登记{name}离校（{}，{}）：结束结对 {} 个。\n\
         班主任、爱心妈妈等的设备下次同步或导入数据文件时删除这份档案；只有管理员保留，\n\
         保存到 {}（离校后 {years} 年），之后由 child retention 列出，审核后用 child erase 删除。",
        date.trim(),
        reason.trim(),
        report.pairings_ended,
        report.keep_until
    ))
}

pub fn return_(ctx: &mut Ctx, child: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let departure = a.return_child(child)?;
    if ctx.json {
        return ctx.json(&departure);
    }
    let name = a
        .child_name(departure.child.as_str())
        .unwrap_or_else(|| departure.child.to_string());
    ctx.line(format!(
        "{name}已回校（撤销 {} 的离校登记）：班主任的设备下次同步时重新收到档案。\n\
         离校时结束的结对帮扶不会恢复，需要时请重新 pair。",
        departure.on
    ))
}

fn table(rows: &[LeftChild]) -> Table {
    let mut t = Table::new(&[
        "姓名",
        "班级",
        "离校日期",
        "原因",
        "转入学校",
        "保存至",
        "编号",
    ]);
    for c in rows {
        t.row(vec![
            c.name.clone(),
            c.class_name.clone().unwrap_or_default(),
            c.departure.on.clone(),
            c.departure
                .reason
                .map(|r| r.label().to_owned())
                .unwrap_or_default(),
            c.departure.to.clone().unwrap_or_default(),
            format!(
                "{}{}",
                c.keep_until,
                if c.past_retention {
                    "（已到期）"
                } else {
                    ""
                }
            ),
            c.id.to_string(),
        ]);
    }
    t
}

pub fn left_list(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let rows = a.left_children(today())?;
    ctx.log_report(&mut a, rows.len())?;
    if ctx.json {
        return ctx.json(&rows);
    }
    if rows.is_empty() {
        return ctx.line("没有已离校学生的档案。");
    }
    ctx.text(table(&rows).render())?;
    ctx.line(format!("共 {} 名已离校学生", rows.len()))
}

pub fn retention(ctx: &mut Ctx, date: Option<&str>) -> Result<()> {
    let day = date_or_today("日期", date)?;
    let mut a = ctx.open()?;
    let rows = a.due_for_erasure(day)?;
    ctx.log_report(&mut a, rows.len())?;
    if ctx.json {
        return ctx.json(&rows);
    }
    let years = a.school()?.rules.retention_years;
    if rows.is_empty() {
        return ctx.line(format!(
            "截至 {}，没有超过保存期限（离校后 {years} 年）的离校学生档案。",
            day.format("%Y-%m-%d")
        ));
    }
    ctx.line(format!(
        "截至 {}，以下 {} 份离校学生档案已超过保存期限（离校后 {years} 年），请审核后删除：",
        day.format("%Y-%m-%d"),
        rows.len()
    ))?;
    ctx.text(table(&rows).render())?;
    ctx.line(format!(
        "删除：shouwang child erase 编号 --reason \"离校满{years}年，保存期满\"（原因里不要写姓名）"
    ))
}

/// The line `due` shows an administrator when left children's files are past retention.
pub fn retention_line(
    a: &mut shouwang_core::Archive,
    day: chrono::NaiveDate,
) -> Result<Option<String>> {
    let me = a.me()?;
    if !me.roles.iter().any(|r| r.administers()) {
        return Ok(None);
    }
    let n = a.due_for_erasure(day)?.len();
    Ok((n > 0).then(|| {
        format!("另有 {n} 份离校学生档案已超过保存期限，请用 shouwang child retention 审核后删除。")
    }))
}
