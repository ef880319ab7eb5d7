//! 概览: children by class (parents away, 三特), what is due and overdue per member, this
//! month's compliance as an inline SVG chart, and the last sync of every device.
//!
//! An administrator sees the school; a 班主任 his own children (the core's scope), his own due
//! list and his own devices.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::response::Response;
use chrono::Datelike;
use shouwang_core::Archive;
use shouwang_core::archive::ChildRow;
use shouwang_core::due::Status;

use crate::auth::{Viewer, viewer};
use crate::chart::{self, Bar};
use crate::html::{self, Table, esc};
use crate::{Ctx, Office, OfficeError, today};

/// Children of one class, counted.
#[derive(Debug, Default)]
struct ClassCount {
    children: usize,
    away: [usize; 3],
    flags: [usize; 3],
}

const AWAY: [&str; 3] = ["father", "mother", "both"];
const FLAGS: [&str; 3] = ["特困生", "特长生", "特殊学生"];

fn by_class(rows: &[ChildRow]) -> BTreeMap<String, ClassCount> {
    let mut out: BTreeMap<String, ClassCount> = BTreeMap::new();
    for r in rows {
        let c = out
            .entry(r.class_name.clone().unwrap_or_else(|| "未分班".into()))
            .or_default();
        c.children += 1;
        for (i, a) in AWAY.iter().enumerate() {
            if r.parents_away.as_deref() == Some(a) {
                c.away[i] += 1;
            }
        }
        for (i, f) in FLAGS.iter().enumerate() {
            if r.flags.contains(f) {
                c.flags[i] += 1;
            }
        }
    }
    out
}

/// `GET /`.
pub async fn page(State(office): State<Office>, ctx: Ctx) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            let body = render(a, &v)?;
            let school = a.school()?.name.clone();
            Ok(html::page(&v, &school, "概览", "/", &body))
        })
        .await
}

fn render(a: &mut Archive, v: &Viewer) -> Result<String, OfficeError> {
    let today = today();
    let mut body = String::new();
    let children = a.on_behalf(&v.member.id)?.children(None)?;
    let _ = write!(
        body,
        "<p class=\"lead\">今天 {today} · {} 名学生{}</p>",
        children.len(),
        if v.admin {
            "（全校）"
        } else {
            "（你负责的）"
        }
    );
    if v.admin {
        let waiting = a.to_review()?;
        if waiting > 0 {
            let _ = write!(
                body,
                "<p class=\"warn\">有 {waiting} 项同步来的修改需要核实或已被拒绝，请查看<a href=\"/review\">待核实</a>。</p>"
            );
        }
    }

    // Children by class.
    let mut t = Table::new(&[
        "班级",
        "学生",
        "父亲外出",
        "母亲外出",
        "父母均外出",
        "特困生",
        "特长生",
        "特殊学生",
    ]);
    let mut total = ClassCount::default();
    for (class, c) in by_class(&children) {
        total.children += c.children;
        for i in 0..3 {
            total.away[i] += c.away[i];
            total.flags[i] += c.flags[i];
        }
        let link = format!(
            "<a href=\"/students?class={}\">{}</a>",
            html::url(&class),
            esc(&class)
        );
        let mut cells = vec![link, c.children.to_string()];
        cells.extend(c.away.iter().chain(&c.flags).map(ToString::to_string));
        t.row_html(&cells);
    }
    let mut cells = vec!["<b>合计</b>".to_owned(), total.children.to_string()];
    cells.extend(
        total
            .away
            .iter()
            .chain(&total.flags)
            .map(ToString::to_string),
    );
    t.row_html(&cells);
    let _ = write!(body, "<section><h2>各班学生</h2>{}</section>", t.finish());

    // Due and overdue per member.
    let school = a.school()?;
    let members: Vec<_> = if v.admin {
        school
            .members
            .iter()
            .filter(|m| m.active)
            .cloned()
            .collect()
    } else {
        vec![v.member.clone()]
    };
    let mut t = Table::new(&["成员", "角色", "待完成", "已逾期", "最早逾期"]);
    let mut overdue_items = Vec::new();
    for m in &members {
        let items = if v.admin {
            a.due(Some(m.id.as_str()), today, false)?
        } else {
            a.on_behalf(&m.id)?.due(today, false)?
        };
        let due = items.iter().filter(|i| i.status == Status::Due).count();
        let overdue: Vec<_> = items
            .iter()
            .filter(|i| i.status == Status::Overdue)
            .collect();
        if due == 0 && overdue.is_empty() {
            continue;
        }
        let first = overdue
            .iter()
            .map(|i| i.period.end)
            .min()
            .map(|d| d.to_string())
            .unwrap_or_default();
        let over = if overdue.is_empty() {
            "0".to_owned()
        } else {
            format!("<span class=\"warn\">{}</span>", overdue.len())
        };
        t.row_html(&[
            esc(&m.name),
            esc(&m.role_labels()),
            due.to_string(),
            over,
            esc(&first),
        ]);
        if !v.admin {
            overdue_items = items;
        }
    }
    let table = if t.rows() == 0 {
        "<p>没有待完成或逾期的工作。</p>".to_owned()
    } else {
        t.finish()
    };
    let _ = write!(body, "<section><h2>待完成与逾期（按成员）</h2>{table}");
    if !overdue_items.is_empty() {
        let mut t = Table::new(&["状态", "工作", "学生", "期间", "已做/应做"]);
        for i in &overdue_items {
            t.row(&[
                i.status.label(),
                i.label,
                i.child_name.as_deref().unwrap_or(""),
                &format!("{} 至 {}", i.period.start, i.period.last_day()),
                &format!("{}/{}", i.done, i.required),
            ]);
        }
        let _ = write!(body, "<h3>我的工作</h3>{}", t.finish());
    }
    body.push_str("</section>");

    // This month's compliance so far and last month's, school-wide (administrators).
    if v.admin {
        let first = today.with_day(1).unwrap_or(today);
        let last_month = first.pred_opt().unwrap_or(first);
        let months = [
            ("本月", first, today),
            (
                "上月",
                last_month.with_day(1).unwrap_or(last_month),
                last_month,
            ),
        ];
        body.push_str("<section><h2>各项规定的达标情况（只计已结束的考核周期）</h2>");
        for (name, from, to) in months {
            let rows = a.compliance(from, to)?;
            let bars: Vec<Bar> = rows
                .iter()
                .filter(|r| r.obligations > 0)
                .map(|r| Bar {
                    label: r.label.to_owned(),
                    value: r.percent(),
                    text: format!("{:.0}%（{}/{}）", r.percent(), r.met, r.obligations),
                })
                .collect();
            let chart = if bars.is_empty() {
                "<p>这段时间还没有已结束的考核周期。</p>".to_owned()
            } else {
                chart::bars(&format!("{name}各项规定的达标率"), &bars, 100.0, Some(80.0))
            };
            let _ = write!(body, "<h3>{name}（{from} 至 {to}）</h3>{chart}");
        }
        body.push_str("</section>");
    }

    // Devices and their last sync.
    let devices = a.devices()?;
    let mine: Vec<String> = school
        .devices
        .iter()
        .filter(|d| d.member == v.member.id)
        .map(|d| d.id.to_string())
        .collect();
    let mut t = Table::new(&["成员", "设备", "状态", "最近同步"]);
    for d in devices.iter().filter(|d| v.admin || mine.contains(&d.id)) {
        let last = d
            .last_sync
            .map(|ms| html::time(ms.div_euclid(1000)))
            .unwrap_or_else(|| "从未同步".into());
        t.row(&[&d.member, &d.label, &d.status(), &last]);
    }
    let _ = write!(
        body,
        "<section><h2>设备最近同步</h2>{}</section>",
        t.finish()
    );
    Ok(body)
}
