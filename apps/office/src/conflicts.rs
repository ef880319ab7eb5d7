//! 冲突: the open conflicts in every file the member may see, resolved from the page through
//! the core's `resolve` (the member's right to the field checked first, as the CLI does, and
//! the change judged by the trust rules before it is kept). A conflict in a private part
//! (保密档案) is only counted here, with a link to the child's page: its values are shown
//! there, where opening the private part is recorded in the access log.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shouwang_core::doc::DocId;
use shouwang_core::doc::conflicts::{self, Conflict};

use shouwang_core::Archive;

use crate::auth::{Viewer, viewer};
use crate::html::{self, csrf_field, esc};
use crate::{Ctx, Hub, Office, OfficeError};

/// One conflict's values, with a form to pick one or enter a new value (`csrf`: none on
/// paper).
pub(crate) fn conflict_form(child: &str, name: &str, c: &Conflict, csrf: Option<&str>) -> String {
    let mut s = format!(
        "<div class=\"conflict\"><p><b>{}</b> · {}（<code>{}</code>）</p>",
        esc(name),
        esc(&c.label),
        esc(&c.dotted())
    );
    match csrf {
        Some(token) => {
            let _ = write!(
                s,
                "<form method=\"post\" action=\"/conflicts/resolve\">{}<input type=\"hidden\" name=\"child\" value=\"{}\"><input type=\"hidden\" name=\"path\" value=\"{}\">",
                csrf_field(token),
                esc(child),
                esc(&c.dotted())
            );
            for (i, v) in c.values.iter().enumerate() {
                let _ = write!(
                    s,
                    "<label class=\"pick\"><input type=\"radio\" name=\"pick\" value=\"{}\"> {}</label>",
                    i + 1,
                    esc(v)
                );
            }
            s.push_str("<label class=\"pick\">或填新值 <input name=\"value\" maxlength=\"200\"></label><button type=\"submit\">解决冲突</button></form>");
        }
        None => {
            s.push_str("<ol>");
            for v in &c.values {
                let _ = write!(s, "<li>{}</li>", esc(v));
            }
            s.push_str("</ol>");
        }
    }
    s.push_str("</div>");
    s
}

/// `GET /conflicts`.
pub async fn list(State(office): State<Office>, ctx: Ctx) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            let school = a.school()?;
            let children = a.on_behalf(&v.member.id)?.children(None)?;
            // Only the documents known to hold a conflict are read (`Store::conflicted_docs`).
            let conflicted: std::collections::BTreeSet<DocId> =
                a.store().conflicted_docs()?.into_iter().collect();
            let docs: Vec<(usize, DocId)> = children
                .iter()
                .enumerate()
                .flat_map(|(i, c)| {
                    [
                        DocId::Child(c.id.clone()),
                        DocId::Staff(c.id.clone()),
                        DocId::Private(c.id.clone()),
                    ]
                    .map(|d| (i, d))
                })
                .filter(|(_, d)| conflicted.contains(d))
                .collect();
            let ids: Vec<DocId> = docs.iter().map(|(_, d)| d.clone()).collect();
            let visible = a.on_behalf(&v.member.id)?.may_see_all(&ids)?;
            let mut found = Vec::new();
            // Conflicts in a private part (保密档案), by child: their values are shown only on
            // the child's page, whose opening is recorded in the access log.
            let mut private = Vec::new();
            for ((i, doc), shown) in docs.iter().zip(visible) {
                if !shown {
                    continue;
                }
                if let Some(d) = a.store().doc(doc)? {
                    let c = &children[*i];
                    let listed = conflicts::list(d);
                    if matches!(doc, DocId::Private(_)) {
                        if !listed.is_empty() {
                            private.push((c.id.to_string(), c.name.clone(), listed.len()));
                        }
                        continue;
                    }
                    for mut k in listed {
                        shouwang_core::archive::mask_conflict(&mut k);
                        found.push((c.id.to_string(), c.name.clone(), k));
                    }
                }
            }
            let total = found.len() + private.iter().map(|(_, _, n)| n).sum::<usize>();
            let mut body = format!(
                "<p class=\"lead\">两台设备离线时把同一项改成了不同的值，两个值都保留着，等人来决定。共 {total} 处。</p>"
            );
            for (id, name, n) in &private {
                let _ = write!(
                    body,
                    "<div class=\"conflict\"><p><b>{}</b> · 保密档案里有 {n} 处冲突：<a href=\"/students/{}\">打开学生档案查看并解决</a>（打开保密档案会记入查阅记录）</p></div>",
                    esc(name),
                    html::url(id)
                );
            }
            for (id, name, c) in &found {
                body.push_str(&conflict_form(id, name, c, Some(&v.csrf)));
            }
            Ok(html::page(&v, &school.name, "冲突", "/conflicts", &body))
        })
        .await
}

/// The resolve form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ResolveForm {
    child: String,
    path: String,
    pick: String,
    value: String,
}

/// `POST /conflicts/resolve`: one value picked (1-based) or a new one; back to the list.
pub(crate) fn resolve(
    a: &mut Archive,
    _: &dyn Hub,
    v: &Viewer,
    form: ResolveForm,
) -> Result<Response, OfficeError> {
    let value = form.value.trim();
    let pick = match (form.pick.trim(), value) {
        ("", "") => {
            return Err(OfficeError::BadInput(
                "请选择一个已有的值，或填写新值".into(),
            ));
        }
        ("", _) => None,
        (p, "") => Some(
            p.parse::<usize>()
                .map_err(|_| OfficeError::BadInput(format!("“{p}”不是有效的选项")))?,
        ),
        _ => {
            return Err(OfficeError::BadInput(
                "选择已有的值和填写新值只能二选一".into(),
            ));
        }
    };
    let value = (!value.is_empty()).then_some(value);
    a.write_as_member(&v.member.id, |a| {
        a.resolve(&form.child, &form.path, pick, value)
    })?;
    tracing::info!(member = %v.member.id, child = %form.child, path = %form.path, "office: conflict resolved");
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/conflicts?done=1")],
    )
        .into_response())
}
