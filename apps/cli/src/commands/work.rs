//! Due work, compliance and the reports.

use std::os::unix::fs::OpenOptionsExt;

use shouwang_core::dates::parse_date;
use shouwang_core::due::{DueItem, Status};

use super::{Ctx, date_or_today};
use crate::cli::{DueArgs, ReportArgs};
use crate::error::Result;
use crate::output::Table;

/// Due items as a table.
pub fn due_table(items: &[DueItem]) -> Table {
    let mut t = Table::new(&["状态", "事项", "学生", "期间", "截止", "完成"]);
    for i in items {
        t.row(vec![
            i.status.label().to_owned(),
            i.label.to_owned(),
            i.child_name.clone().unwrap_or_else(|| "—".to_owned()),
            i.period.label(),
            i.period.last_day().format("%Y-%m-%d").to_string(),
            format!("{}/{}", i.done, i.required),
        ]);
    }
    t
}

/// Counts per rule and status, one line per rule.
pub fn due_summary(items: &[DueItem]) -> String {
    let mut rules: Vec<(&str, [usize; 3])> = Vec::new();
    for i in items {
        let slot = match i.status {
            Status::Overdue => 0,
            Status::Due => 1,
            Status::Done => 2,
        };
        match rules.iter_mut().find(|(l, _)| *l == i.label) {
            Some((_, n)) => n[slot] += 1,
            None => {
                let mut n = [0; 3];
                n[slot] = 1;
                rules.push((i.label, n));
            }
        }
    }
    let mut s = String::from("汇总：\n");
    for (label, n) in rules {
        let mut parts = Vec::new();
        for (count, status) in n.iter().zip([Status::Overdue, Status::Due, Status::Done]) {
            if *count > 0 {
                parts.push(format!("{} {} 项", status.label(), count));
            }
        }
        s.push_str(&format!("  {label}：{}\n", parts.join("，")));
    }
    s
}

pub fn due(ctx: &mut Ctx, args: &DueArgs) -> Result<()> {
    let today = date_or_today("日期", args.date.as_deref())?;
    let mut a = ctx.open()?;
    let member = match &args.member {
        Some(m) => a.find_member(m)?,
        None => a.me()?,
    };
    let items = a.due(Some(member.id.as_str()), today, args.all)?;
    let retention = super::departure::retention_line(&mut a, today)?;
    if ctx.json {
        // An export of the list: in the access log if it names children.
        let named: std::collections::BTreeSet<_> =
            items.iter().filter_map(|i| i.child.as_ref()).collect();
        ctx.log_report(&mut a, named.len())?;
        return ctx.json(&items);
    }
    // Due work counts from today: a wrong clock moves every deadline.
    if args.date.is_none()
        && let Some(w) = super::network::clock_warning(&mut a)?
    {
        ctx.line(w)?;
    }
    ctx.line(format!(
        "{}（{}）截至 {} 的待办：",
        member.name,
        member.role_labels(),
        today.format("%Y-%m-%d")
    ))?;
    if items.is_empty() {
        ctx.line("  没有待办，规定的工作都已完成。")?;
    } else {
        ctx.text(due_table(&items).render())?;
        ctx.text(due_summary(&items))?;
    }
    match retention {
        Some(line) => ctx.line(line),
        None => Ok(()),
    }
}

pub fn compliance(ctx: &mut Ctx, from: &str, to: &str) -> Result<()> {
    let from = parse_date("开始日期", from)?;
    let to = parse_date("结束日期", to)?;
    let mut a = ctx.open()?;
    let rows = a.compliance(from, to)?;
    if ctx.json {
        let mut list = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut v = serde_json::to_value(r)?;
            if let serde_json::Value::Object(o) = &mut v {
                o.insert("percent".into(), serde_json::json!(r.percent()));
            }
            list.push(v);
        }
        return ctx.json(&list);
    }
    ctx.line(format!(
        "{} 至 {} 各项规则完成情况（只计完整的周期）：",
        from.format("%Y-%m-%d"),
        to.format("%Y-%m-%d")
    ))?;
    if rows.is_empty() {
        return ctx.line("  这段时间内没有需要检查的完整周期。");
    }
    let mut t = Table::new(&["规则", "应完成", "已完成", "完成率"]);
    for r in &rows {
        t.row(vec![
            r.label.to_owned(),
            r.obligations.to_string(),
            r.met.to_string(),
            format!("{:.1}%", r.percent()),
        ]);
    }
    ctx.text(t.render())
}

/// `shouwang report`: a report as .xlsx (administrators), recorded in the access log as a
/// report naming how many children it lists before the file is written; an existing file is
/// never overwritten.
pub fn report(ctx: &mut Ctx, args: &ReportArgs) -> Result<()> {
    use std::io::Write as _;
    let mut a = ctx.open()?;
    let opts = shouwang_core::reports::ReportOptions {
        month: args.month.clone(),
        child: args.child.clone(),
        reveal_ids: args.reveal_id.then(|| args.why.clone().unwrap_or_default()),
    };
    let book = a.report(&args.name, &opts)?;
    let school = a.school()?;
    let bytes = shouwang_core::reports::to_xlsx(&book, &school.name)?;
    if args.out.exists() {
        return Err(shouwang_core::Error::NotPermitted(format!(
            "{} 已经存在，不会覆盖；请换一个文件名",
            args.out.display()
        ))
        .into());
    }
    ctx.log_report(&mut a, book.children)?;
    // Children's personal data, on what is often a shared office computer: readable by its
    // owner only, whatever the umask.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .map_err(shouwang_core::Error::Io)?;
    file.write_all(&bytes).map_err(shouwang_core::Error::Io)?;
    file.sync_all().map_err(shouwang_core::Error::Io)?;
    let rows: usize = book
        .sheets
        .iter()
        .map(|s| s.rows.len().saturating_sub(1))
        .sum();
    if ctx.json {
        return ctx.json(&serde_json::json!({
            "title": book.title,
            "out": args.out,
            "rows": rows,
            "children": book.children,
        }));
    }
    ctx.line(format!(
        "已导出{}：{}（{} 行）",
        book.title,
        args.out.display(),
        rows
    ))
}
