//! 查阅记录 (administrators): the access log of every device that has synced with the hub
//! (`Archive::audit_lines`, the same lines `shouwang audit` prints), filtered by member or
//! child, with a warning when a chain shows an entry altered, dropped or written twice; and
//! which documents of a child went to which device, when (the hub's delivery log).

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use shouwang_core::archive::DeliveryFilter;

use crate::auth::viewer;
use crate::html::{self, Table, esc};
use crate::{Ctx, Office, OfficeError};

/// The filters, from the query string.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditQuery {
    member: String,
    child: String,
}

fn given(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// `GET /audit`.
pub(crate) async fn page(
    State(office): State<Office>,
    ctx: Ctx,
    Query(q): Query<AuditQuery>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let school = a.school()?;
            let (lines, problems) = a.audit_lines(given(&q.member), given(&q.child))?;
            let mut body = format!(
                "<form method=\"get\" action=\"/audit\" class=\"filters\"><label>成员<input name=\"member\" value=\"{}\" maxlength=\"50\"></label><label>学生<input name=\"child\" value=\"{}\" maxlength=\"50\" autocomplete=\"off\"></label><button type=\"submit\">筛选</button></form>",
                esc(q.member.trim()),
                esc(q.child.trim())
            );
            if problems.is_empty() {
                body.push_str(&format!(
                    "<p class=\"lead\">共 {} 条，逐条核对无误（未被改动）。打开保密档案、查看完整身份证号、导出数据文件和名单都会记在操作的设备上，设备同步后汇总到这里，设备的使用者无法修改或删除。</p>",
                    lines.len()
                ));
            } else {
                body.push_str(&format!(
                    "<p class=\"warn\">⚠ 查阅记录有被改动的迹象：{}</p>",
                    esc(&problems.join("；"))
                ));
            }
            let mut t = Table::new(&["时间", "成员", "操作", "对象", "理由", "设备"]);
            for e in lines.iter().rev() {
                t.row(&[
                    &html::time(e.at),
                    &e.member,
                    &e.what,
                    &e.target,
                    e.why.as_deref().unwrap_or(""),
                    &e.device,
                ]);
            }
            body.push_str(&t.finish());
            if let Some(child) = given(&q.child) {
                let sent = a.deliveries(&DeliveryFilter {
                    child: Some(child.to_owned()),
                    ..DeliveryFilter::default()
                })?;
                let mut t = Table::new(&["时间", "设备", "成员", "档案"]);
                for d in &sent {
                    let doc = shouwang_core::doc::DocId::parse(&d.doc)
                        .map_or_else(|| d.doc.clone(), |id| shouwang_core::store::doc_label(&id));
                    t.row(&[
                        &html::time(d.at),
                        &d.device.chars().take(8).collect::<String>(),
                        &d.member_name,
                        &doc,
                    ]);
                }
                body.push_str(&format!(
                    "<h2>这名学生的档案发往了哪些设备</h2>{}",
                    t.finish()
                ));
            }
            Ok(html::page(&v, &school.name, "查阅记录", "/audit", &body))
        })
        .await
}
