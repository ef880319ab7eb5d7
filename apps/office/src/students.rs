//! 学生: the list (search and filters) and a child's file as the CLI's `child show` shows it:
//! sections, records, conflicts, history. Everything is read on behalf of the logged-in
//! member, so the core decides what they see; opening a private part is logged by the core
//! exactly as `child show` logs it, and showing the ID numbers in full asks for a reason and
//! is logged as `child show --reveal-id --why` logs it.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;
use shouwang_core::archive::{ChildFile, ChildFilter};
use shouwang_core::doc::DocId;
use shouwang_core::school::SchoolView;

use crate::auth::{Viewer, viewer};
use crate::conflicts::Offer;
use crate::html::{self, Table, csrf_field, esc};
use crate::{Ctx, Office, OfficeError, PostedForm, Who};

/// The list's filters.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Name or 编号, part of it.
    q: String,
    /// Class name.
    class: String,
    /// `father`, `mother`, `both`.
    away: String,
    /// 特困生, 特长生, 特殊学生.
    flag: String,
}

/// `GET /students`.
pub async fn list(
    State(office): State<Office>,
    ctx: Ctx,
    Query(f): Query<Filter>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            let school = a.school()?;
            let rows = a.on_behalf(&v.member.id)?.children(None)?;
            // The page's own choices, so a value no child has shows nobody rather than an
            // error.
            let filter = ChildFilter {
                text: Some(f.q.clone()),
                class: Some(f.class.clone()),
                away: Some(f.away.clone()),
                flag: Some(f.flag.clone()),
            };
            let shown: Vec<_> = rows.iter().filter(|r| filter.matches(r)).collect();
            let mut classes: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.class_name.as_deref())
                .collect();
            classes.sort_unstable();
            classes.dedup();
            let mut body = filter_form(&f, &classes);
            let mut t = Table::new(&[
                "姓名",
                "班级",
                "性别",
                "外出务工",
                "三特",
                "记录",
                "最近记录",
            ]);
            for r in &shown {
                t.row_html(&[
                    format!(
                        "<a href=\"/students/{}\">{}</a>",
                        html::url(r.id.as_str()),
                        esc(&r.name)
                    ),
                    esc(r.class_name.as_deref().unwrap_or("")),
                    esc(&html::profile_choice("sex", r.sex.as_deref())),
                    esc(&html::profile_choice(
                        "parents_away",
                        r.parents_away.as_deref(),
                    )),
                    esc(&r.flags.join("、")),
                    r.records.to_string(),
                    esc(r.last_record.as_deref().unwrap_or("")),
                ]);
            }
            let _ = write!(
                body,
                "<p class=\"count\">共 {} 名学生（你可见 {} 名）</p>{}",
                shown.len(),
                rows.len(),
                t.finish()
            );
            Ok(html::page(&v, &school.name, "学生", "/students", &body))
        })
        .await
}

fn filter_form(f: &Filter, classes: &[&str]) -> String {
    let option = |value: &str, label: &str, current: &str| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(value),
            if value == current { " selected" } else { "" },
            esc(label)
        )
    };
    let mut class_opts = option("", "全部班级", &f.class);
    for c in classes {
        class_opts.push_str(&option(c, c, &f.class));
    }
    let mut away_opts = option("", "不限", &f.away);
    for (k, l) in [
        ("father", "父亲外出"),
        ("mother", "母亲外出"),
        ("both", "父母均外出"),
    ] {
        away_opts.push_str(&option(k, l, &f.away));
    }
    let mut flag_opts = option("", "不限", &f.flag);
    for l in ["特困生", "特长生", "特殊学生"] {
        flag_opts.push_str(&option(l, l, &f.flag));
    }
    format!(
        "<form method=\"get\" action=\"/students\" class=\"filters\"><label>姓名或编号<input name=\"q\" value=\"{}\" autocomplete=\"off\"></label><label>班级<select name=\"class\">{class_opts}</select></label><label>外出务工<select name=\"away\">{away_opts}</select></label><label>三特<select name=\"flag\">{flag_opts}</select></label><button type=\"submit\">筛选</button></form>",
        esc(&f.q)
    )
}

/// `GET /students/{id}`: the file as `child show` shows it (the private part, if this member
/// may see it, is logged as opened).
pub async fn file(
    State(office): State<Office>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            let file = a.on_behalf(&v.member.id)?.child_file_for(&id, None)?;
            let school = a.school()?;
            let offers = file
                .conflicts
                .iter()
                .map(|(key, c)| {
                    let doc = DocId::parse(key)
                        .ok_or_else(|| OfficeError::Internal(format!("档案编号无效：{key}")))?;
                    Offer::to(a, &v, &doc, &c.path, &school)
                })
                .collect::<Result<Vec<_>, OfficeError>>()?;
            let mut body = render_file(&file, &school, Some((&v, &offers)), false);
            if v.admin {
                body.push_str(&format!(
                    "<p><a href=\"/reports/child?child={}\">下载六项基本档案（.xlsx）</a></p>",
                    html::url(file.id.as_str())
                ));
            }
            Ok(html::page(
                &v,
                &school.name,
                &format!("{}的档案", file.name),
                "/students",
                &body,
            ))
        })
        .await
}

/// The reveal form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevealForm {
    why: String,
}

/// `POST /students/{id}/reveal`: the ID numbers in full, with a reason, recorded first.
pub async fn reveal(
    State(office): State<Office>,
    ctx: Ctx,
    Path(id): Path<String>,
    PostedForm(form): PostedForm<RevealForm>,
) -> Result<Response, OfficeError> {
    office
        .post_form(ctx, Who::Member, form, move |a, _, v, form| {
            let file = a.on_behalf(&v.member.id)?.reveal_id(&id, &form.why)?;
            let school = a.school()?;
            let body = format!(
                "<div class=\"notice\">已显示完整身份证号，本次查看已记入查阅记录（原因：{}）。</div>{}",
                esc(form.why.trim()),
                render_file(&file, &school, None, true)
            );
            Ok(html::page(v, &school.name, &format!("{}的档案", file.name), "/students", &body))
        })
        .await
}

/// `GET /print/{id}`: the child's archive on A4 (print CSS), read as `GET /students/{id}`.
pub async fn print(
    State(office): State<Office>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            let file = a.on_behalf(&v.member.id)?.child_file_for(&id, None)?;
            let school = a.school()?;
            let body = format!(
                "<div class=\"print-head\">{} · 留守儿童档案 · 打印人 {} · {}</div>{}",
                esc(&school.name),
                esc(&v.member.name),
                crate::today(),
                render_file(&file, &school, None, true)
            );
            Ok(html::respond(format!(
                "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{} 的档案</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body class=\"print\"><main>{body}</main></body></html>",
                esc(&file.name)
            )))
        })
        .await
}

/// The file as HTML, in the order `child show` prints it. `viewer`: draw the forms (show the
/// ID in full; for each conflict, in order, what its offer says) for this session; `printed`:
/// a page for paper (no forms).
pub(crate) fn render_file(
    file: &ChildFile,
    school: &SchoolView,
    viewer: Option<(&Viewer, &[Offer<'_>])>,
    printed: bool,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<p class=\"lead\">{}（{}） · 编号 <code>{}</code>{}</p>",
        esc(&file.name),
        esc(file.class_name.as_deref().unwrap_or("未分班")),
        esc(file.id.as_str()),
        if printed {
            String::new()
        } else {
            format!(
                " · <a href=\"/print/{id}\">打印版</a>",
                id = html::url(file.id.as_str())
            )
        }
    );
    let conflicted: Vec<String> = file.conflicts.iter().map(|(_, c)| c.dotted()).collect();
    s.push_str("<div class=\"sections\">");
    for sec in file.sections.iter().filter(|s| !s.fields.is_empty()) {
        let _ = write!(
            s,
            "<section class=\"card\"><h2>{}</h2><dl>",
            esc(&sec.label)
        );
        for f in &sec.fields {
            let mark = if conflicted.contains(&format!("{}.{}", sec.key, f.key)) {
                " <span class=\"warn\">⚠ 有冲突</span>"
            } else {
                ""
            };
            let _ = write!(
                s,
                "<dt>{}</dt><dd>{}{mark}</dd>",
                esc(&f.label),
                esc(&f.value)
            );
        }
        s.push_str("</dl></section>");
    }
    s.push_str("</div>");
    if file.private_shown {
        if let Some(token) = viewer.map(|(v, _)| v.csrf.as_str()) {
            let _ = write!(
                s,
                "<form method=\"post\" action=\"/students/{}/reveal\" class=\"reveal\">{}<label>查看完整身份证号的原因<input name=\"why\" required maxlength=\"200\" placeholder=\"如：办理学籍转入\"></label><button type=\"submit\">显示完整身份证号</button><span class=\"hint\">会记入查阅记录</span></form>",
                html::url(file.id.as_str()),
                csrf_field(token)
            );
        }
    } else {
        let waits = file.consent_required
            && !file
                .consent
                .as_ref()
                .is_some_and(|c| c.covers(shouwang_core::consent::Cover::Private));
        s.push_str(if waits {
            "<p class=\"muted\">【身份信息、特别关注】待监护人同意后才能填写</p>"
        } else {
            "<p class=\"muted\">【身份信息、特别关注】仅班主任、校领导和档案管理员可见</p>"
        });
    }
    let _ = write!(
        s,
        "<section><h2>关爱记录（共 {} 条）</h2>",
        file.records.len()
    );
    let mut t = Table::new(&["日期", "类型", "记录人", "内容"]);
    for r in &file.records {
        let mut content = String::new();
        if let Some(v) = &r.void {
            let _ = write!(
                content,
                "<b class=\"warn\">已作废</b>（{}：{}）<br>",
                esc(&school.member_name(&v.by)),
                esc(&v.reason)
            );
        }
        for f in r.fields.iter().chain(&r.other_fields) {
            let _ = write!(
                content,
                "<span class=\"k\">{}</span>：{}<br>",
                esc(&f.label),
                esc(&f.value).replace('\n', "<br>")
            );
        }
        for p in &r.progress {
            let text: Vec<String> = p
                .fields
                .iter()
                .map(|f| format!("{}：{}", f.label, f.value))
                .collect();
            let _ = write!(
                content,
                "进步档案 {} · {}：{}<br>",
                esc(&p.date),
                esc(&school.member_name(&p.author)),
                esc(&text.join("；"))
            );
        }
        let role = shouwang_core::roles::Role::parse(&r.meta.author_role)
            .map_or_else(|_| r.meta.author_role.clone(), |x| x.label().to_owned());
        t.row_html(&[
            esc(&r.meta.happened_on),
            esc(&r.kind_label),
            format!(
                "{}（{}）",
                esc(&school.member_name(&r.meta.author)),
                esc(&role)
            ),
            content,
        ]);
    }
    s.push_str(&t.finish());
    s.push_str("</section>");
    let _ = write!(
        s,
        "<section><h2>未解决的冲突（{} 处）</h2>",
        file.conflicts.len()
    );
    if file.conflicts.is_empty() {
        s.push_str("<p>无</p>");
    }
    for (i, (_, c)) in file.conflicts.iter().enumerate() {
        let offer = match viewer {
            Some((_, offers)) if !printed => offers.get(i).unwrap_or(&Offer::Values),
            _ => &Offer::Values,
        };
        s.push_str(&crate::conflicts::conflict_form(
            file.id.as_str(),
            &file.name,
            c,
            offer,
        ));
    }
    s.push_str("</section>");
    let consent = match &file.consent {
        Some(c) => c.line(),
        None if file.consent_required => "未登记（隐私部分在登记前不能填写）".to_owned(),
        None => "未登记".to_owned(),
    };
    let _ = write!(s, "<p><b>监护人同意：</b>{}</p>", esc(&consent));
    if !printed {
        let _ = write!(s, "<section><h2>修改历史（{} 次）</h2>", file.history.len());
        let mut t = Table::new(&["时间", "设备的成员", "修改"]);
        for h in &file.history {
            t.row(&[&html::time(h.time), &h.member, &h.message]);
        }
        s.push_str(&t.finish());
        s.push_str("</section>");
    }
    let officer = match &file.privacy_officer {
        Some(o) => format!(
            "个人信息保护负责人：{}{}",
            o.name,
            o.phone
                .as_deref()
                .map(|p| format!("（电话 {p}）"))
                .unwrap_or_default()
        ),
        None => "个人信息保护负责人：未设置".to_owned(),
    };
    let _ = write!(s, "<p class=\"muted\">{}</p>", esc(&officer));
    s
}
