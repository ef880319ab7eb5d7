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
use shouwang_core::archive::MayResolve;
use shouwang_core::doc::DocId;
use shouwang_core::doc::conflicts::{self, Conflict};
use shouwang_core::school::SchoolView;

use shouwang_core::Archive;

use crate::auth::{Viewer, viewer};
use crate::html::{self, csrf_field, esc};
use crate::{Ctx, Hub, Office, OfficeError};

/// What a conflict's box offers its reader.
pub(crate) enum Offer<'a> {
    /// The form to pick a value or enter a new one, with the session's CSRF token.
    Form(&'a str),
    /// The values only (on paper).
    Values,
    /// The values, and that only the record's or entry's author (named) may resolve them:
    /// every other device would refuse anyone else's change to them.
    AuthorOnly(String),
    /// The values, and that this member may not change them (or nobody may: a value fixed
    /// when it was written).
    NotYours,
}

impl<'a> Offer<'a> {
    /// What `viewer` is offered for the conflict at `path` of `doc`, as the core's
    /// `Archive::may_resolve` (the trust rules) has it.
    pub(crate) fn to(
        a: &mut Archive,
        viewer: &'a Viewer,
        doc: &DocId,
        path: &[String],
        school: &SchoolView,
    ) -> Result<Offer<'a>, OfficeError> {
        Ok(match a.may_resolve(&viewer.member.id, doc, path)? {
            MayResolve::Yes => Offer::Form(&viewer.csrf),
            MayResolve::OnlyAuthor(author) => {
                Offer::AuthorOnly(school.member_name(author.as_str()))
            }
            MayResolve::No => Offer::NotYours,
        })
    }
}

/// One conflict's values, with what `offer` offers.
pub(crate) fn conflict_form(child: &str, name: &str, c: &Conflict, offer: &Offer<'_>) -> String {
    let mut s = format!(
        "<div class=\"conflict\"><p><b>{}</b> · {}（<code>{}</code>）</p>",
        esc(name),
        esc(&c.label),
        esc(&c.dotted())
    );
    match offer {
        Offer::Form(token) => {
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
        Offer::Values | Offer::AuthorOnly(_) | Offer::NotYours => {
            s.push_str("<ol>");
            for v in &c.values {
                let _ = write!(s, "<li>{}</li>", esc(v));
            }
            s.push_str("</ol>");
            match offer {
                Offer::AuthorOnly(author) => {
                    let _ = write!(
                        s,
                        "<p class=\"hint\">只有填写这条记录的{}能解决这处冲突（在其设备上或登录后在这里）。</p>",
                        esc(author)
                    );
                }
                Offer::NotYours => s.push_str(
                    "<p class=\"hint\">你不能修改这一项，请有权修改的人解决这处冲突。</p>",
                ),
                _ => {}
            }
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
                        found.push((c.id.to_string(), c.name.clone(), doc.clone(), k));
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
            for (id, name, doc, c) in &found {
                let offer = Offer::to(a, &v, doc, &c.path, &school)?;
                body.push_str(&conflict_form(id, name, c, &offer));
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
    // Not the child as typed in the form (a name or 学籍号 would go into the hub's log).
    tracing::info!(member = %v.member.id, path = %form.path, "office: conflict resolved");
    Ok((
        StatusCode::SEE_OTHER,
        [(header::LOCATION, "/conflicts?done=1")],
    )
        .into_response())
}
