//! 报表 (administrators): the seeds' registers as .xlsx, built by the core
//! (`Archive::report`, `shouwang_core::reports`: the same workbooks `shouwang report` writes),
//! ID numbers masked as the file shows them. Each download is recorded in the access log as a
//! report naming the member and how many children it lists. A report that lists ID numbers can
//! be downloaded with them in full (`POST /reports/{name}/reveal`, a reason required): the
//! request is recorded first, naming the member and the report, as
//! `shouwang report --reveal-id --why` records it.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shouwang_core::reports::{REPORTS, ReportOptions, to_xlsx};

use crate::auth::viewer;
use crate::html::{self, Table, csrf_field, esc};
use crate::{Ctx, Office, OfficeError, PostedForm, Who};

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
                let reveal = if r.lists_ids {
                    format!(
                        "<form method=\"post\" action=\"/reports/{}/reveal\" class=\"reveal\">{}<label>含完整身份证号下载的原因<input name=\"why\" required maxlength=\"200\" placeholder=\"如：上报教育局\"></label><button type=\"submit\">下载含完整身份证号的 .xlsx</button><span class=\"hint\">会记入查阅记录</span></form>",
                        r.key,
                        csrf_field(&v.csrf)
                    )
                } else {
                    String::new()
                };
                t.row_html(&[esc(r.title), format!("{link}{reveal}")]);
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
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            build(a, &v.member.id, &name, q.options(None))
        })
        .await
        .map(xlsx)
}

/// The reason given for the ID numbers in full, with the report's month or child.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RevealForm {
    why: String,
    #[serde(flatten)]
    report: ReportQuery,
}

/// `POST /reports/{name}/reveal`: the .xlsx with the ID numbers in full, for a report that
/// lists them; the reason is recorded (naming the member and the report) before it is built.
pub(crate) async fn reveal(
    State(office): State<Office>,
    ctx: Ctx,
    Path(name): Path<String>,
    PostedForm(form): PostedForm<RevealForm>,
) -> Result<Response, OfficeError> {
    office
        .post_form(ctx, Who::Admin, form, move |a, _, v, form| {
            let why = form.why.trim().to_owned();
            build(a, &v.member.id, &name, form.report.options(Some(why)))
        })
        .await
        .map(xlsx)
}

impl ReportQuery {
    fn options(&self, reveal_ids: Option<String>) -> ReportOptions {
        ReportOptions {
            month: Some(self.month.trim().to_owned()).filter(|m| !m.is_empty()),
            child: Some(self.child.trim().to_owned()).filter(|c| !c.is_empty()),
            reveal_ids,
        }
    }
}

/// Builds the report as `member` and records the download, naming the member.
fn build(
    a: &mut shouwang_core::Archive,
    member: &shouwang_core::ids::MemberId,
    name: &str,
    opts: ReportOptions,
) -> Result<(Vec<u8>, String), OfficeError> {
    let mut lent = a.on_behalf(member)?;
    let book = lent.report(name, &opts)?;
    lent.log_report(&format!("办公室网页下载报表 {}", book.title), book.children)?;
    drop(lent);
    let school = a.school()?;
    let bytes = to_xlsx(&book, &school.name)?;
    Ok((bytes, book.title))
}

/// The workbook as a download.
fn xlsx((bytes, title): (Vec<u8>, String)) -> Response {
    let file = format!("{title}.xlsx");
    (
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
        .into_response()
}
