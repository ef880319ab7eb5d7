//! 报表 (administrators): the seeds' registers as .xlsx, built by the core
//! (`Archive::report`, `shouwang_core::reports`: the same workbooks `shouwang report` writes),
//! ID numbers masked as the file shows them. Each download is recorded in the access log as a
//! report naming the member and how many children it lists.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shouwang_core::reports::{REPORTS, ReportOptions, to_xlsx};

use crate::auth::viewer;
use crate::html::{self, Table, esc};
use crate::{Ctx, Office, OfficeError};

/// `GET /reports`.
pub(crate) async fn page(State(office): State<Office>, ctx: Ctx) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let school = a.school()?;
            let month = crate::today().format("%Y-%m").to_string();
            let mut t = Table::new(&["报表", "下载"]);
            for r in REPORTS.iter().filter(|r| !r.per_child) {
                let link = if r.monthly {
                    format!(
                        "<form method=\"get\" action=\"/reports/{}\" class=\"inline\"><input name=\"month\" value=\"{month}\" size=\"8\"><button type=\"submit\">下载 .xlsx</button></form>",
                        r.key
                    )
                } else {
                    format!("<a href=\"/reports/{}\">下载 .xlsx</a>", r.key)
                };
                t.row_html(&[esc(r.title), link]);
            }
            let body = format!(
                "<p class=\"lead\">身份证号和学籍号按档案显示的方式遮盖。每次下载都会记入查阅记录。单个学生的档案（六项基本档案）请在该学生的页面下载或打开“打印版”。</p>{}",
                t.finish()
            );
            Ok(html::page(&v, &school.name, "报表", "/reports", &body))
        })
        .await
}

/// The month asked for.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ReportQuery {
    month: String,
    /// The child of a per-child report.
    child: String,
}

/// `GET /reports/{name}`: the .xlsx download.
pub(crate) async fn download(
    State(office): State<Office>,
    ctx: Ctx,
    Path(name): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, OfficeError> {
    let (bytes, title) = office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let opts = ReportOptions {
                month: Some(q.month.trim().to_owned()).filter(|m| !m.is_empty()),
                child: Some(q.child.trim().to_owned()).filter(|c| !c.is_empty()),
                reveal_ids: None,
            };
            let book = a.report(&name, &opts)?;
            let school = a.school()?;
            let bytes = to_xlsx(&book, &school.name)?;
            a.on_behalf(&v.member.id)?
                .log_report(&format!("办公室网页下载报表 {}", book.title), book.children)?;
            Ok((bytes, book.title))
        })
        .await?;
    let file = format!("{title}.xlsx");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"report.xlsx\"; filename*=UTF-8''{}",
                    html::url(&file)
                ),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
        .into_response())
}
