//! 待核实 (administrators): the changes other devices sent that the trust rules refused, the
//! ones taken but listed for review (a member's standing changed before the phone heard of it,
//! a record dated past what its clock allows, a consent or departure ignored), and those of
//! revoked devices that another device handed on. The same lists `shouwang quarantine` prints
//! (`Archive::quarantined`, `outdated_standing`, `relayed_from_revoked`); what should not stand
//! is voided on the child's file.

use axum::extract::State;
use axum::response::Response;
use shouwang_core::archive::QuarantinedChange;

use crate::auth::viewer;
use crate::html::{self, Table};
use crate::{Ctx, Office, OfficeError};

/// A table of refused or listed changes.
fn listed(rows: &[QuarantinedChange]) -> String {
    let mut t = Table::new(&["时间", "档案", "成员", "设备", "原因", "来源"]);
    for q in rows {
        t.row(&[
            &html::time(q.at),
            &q.doc,
            &q.member,
            &q.device.chars().take(8).collect::<String>(),
            &q.reason,
            &q.from,
        ]);
    }
    t.finish()
}

/// `GET /review`.
pub(crate) async fn page(State(office): State<Office>, ctx: Ctx) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let school = a.school()?;
            let outdated = a.outdated_standing()?;
            let refused = a.quarantined()?;
            let relayed = a.relayed_from_revoked()?;
            let mut body = String::new();
            if outdated.is_empty() && refused.is_empty() && relayed.is_empty() {
                body.push_str("<p class=\"lead\">没有需要核实的修改。</p>");
            } else {
                body.push_str("<p class=\"lead\">各设备同步来的修改都按权限逐项检查过。下面的修改有的已接收但需要核实，有的被拒绝并隔离（不会进入档案）。核实后，不应保留的记录请在学生档案里作废。</p>");
            }
            body.push_str(&format!(
                "<section><h2>已接收、需要核实的修改（{} 项）</h2><p>成员在得知自己的职责调整之前所做的修改，或记录日期、修改时间不对的修改。原因见每项。</p>{}</section>",
                outdated.len(),
                listed(&outdated)
            ));
            body.push_str(&format!(
                "<section><h2>被拒绝并隔离的修改（{} 项）</h2><p>超出成员权限或不合格式的修改，没有进入任何档案。</p>{}</section>",
                refused.len(),
                listed(&refused)
            ));
            let mut t = Table::new(&["时间", "档案", "已停用的设备", "由谁转交"]);
            for r in &relayed {
                t.row(&[
                    &html::time(r.at),
                    &r.doc,
                    &format!(
                        "{}（设备 {}）",
                        r.member,
                        r.device.chars().take(8).collect::<String>()
                    ),
                    &r.via,
                ]);
            }
            body.push_str(&format!(
                "<section><h2>已停用设备的修改，由其他设备转交后已接收（{} 项）</h2>{}</section>",
                relayed.len(),
                t.finish()
            ));
            Ok(html::page(&v, &school.name, "待核实", "/review", &body))
        })
        .await
}
