//! 成员与设备 (administrators): members and their classes, devices and their last sync;
//! adding a member, a class or a pairing (the core's `add_member`, `add_class`, `pair`, as
//! `shouwang member add`, `class add` and `pair` on the hub's store); and invites: the hub
//! issues one (adding a new member with the role asked for, as `shouwang-relay invite` does)
//! and the page shows it as text and as a QR code (inline SVG) for the teacher's phone to scan.

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;
use shouwang_core::roles::Role;

use crate::auth::viewer;
use crate::html::{self, Table, csrf_field, esc};
use crate::{Ctx, Office, OfficeError};

/// What was just done (a fixed code, so a link cannot put words on the page).
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// `GET /members`.
pub async fn page(
    State(office): State<Office>,
    ctx: Ctx,
    Query(done): Query<Done>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.require_admin()?;
            let notice = match done.done.as_str() {
                "member" => "<div class=\"notice\">已添加成员。</div>",
                "class" => "<div class=\"notice\">已添加班级。</div>",
                "pair" => "<div class=\"notice\">已建立结对帮扶。</div>",
                _ => "",
            };
            let school = a.school()?;
            let devices = a.devices()?;
            let with_password: Vec<String> = {
                let conn = a.store().conn();
                let mut stmt = conn.prepare("SELECT member_id FROM office_passwords")?;
                stmt.query_map([], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut body = format!(
                "{notice}{}{}",
                invite_form(&v.csrf),
                add_forms(&v.csrf, &school)
            );
            let mut t = Table::new(&[
                "姓名",
                "角色",
                "班级",
                "结对学生",
                "设备",
                "办公室登录",
                "状态",
            ]);
            for m in &school.members {
                let classes: Vec<&str> = school
                    .classes
                    .iter()
                    .filter(|c| c.head_teacher.as_ref() == Some(&m.id))
                    .map(|c| c.name.as_str())
                    .collect();
                let pairings = school
                    .pairings
                    .iter()
                    .filter(|p| p.active && p.carer == m.id)
                    .count();
                let device_count = school.devices.iter().filter(|d| d.member == m.id).count();
                let login = if with_password.iter().any(|p| p == m.id.as_str()) {
                    "已设密码"
                } else {
                    ""
                };
                t.row(&[
                    &m.name,
                    &m.role_labels(),
                    &classes.join("、"),
                    &pairings.to_string(),
                    &device_count.to_string(),
                    login,
                    if m.active { "在校" } else { "已停用" },
                ]);
            }
            let _ = write!(
                body,
                "<section><h2>成员（{} 人）</h2>{}</section>",
                school.members.len(),
                t.finish()
            );
            let mut t = Table::new(&["成员", "设备", "编号", "状态", "最近同步"]);
            for d in &devices {
                let last = d
                    .last_sync
                    .map(|ms| html::time(ms.div_euclid(1000)))
                    .unwrap_or_else(|| "从未同步".into());
                let short: String = d.id.chars().take(8).collect();
                t.row(&[&d.member, &d.label, &short, &d.status(), &last]);
            }
            let _ = write!(
                body,
                "<section><h2>设备（{} 台）</h2>{}</section>",
                devices.len(),
                t.finish()
            );
            Ok(html::page(
                &v,
                &school.name,
                "成员与设备",
                "/members",
                &body,
            ))
        })
        .await
}

fn add_forms(csrf: &str, school: &shouwang_core::school::SchoolView) -> String {
    let mut roles = String::new();
    for r in Role::ALL {
        let _ = write!(
            roles,
            "<option value=\"{}\">{}</option>",
            r.key(),
            esc(r.label())
        );
    }
    let mut classes = String::from("<option value=\"\">（无）</option>");
    for c in &school.classes {
        let _ = write!(classes, "<option>{}</option>", esc(&c.name));
    }
    let token = csrf_field(csrf);
    format!(
        "<section><h2>添加成员、班级、结对</h2>\
<form method=\"post\" action=\"/members/add\" class=\"filters\">{token}<label>姓名<input name=\"name\" required maxlength=\"50\"></label><label>角色<select name=\"role\">{roles}</select></label><label>班级（班主任填）<select name=\"class\">{classes}</select></label><label>电话<input name=\"phone\" maxlength=\"20\"></label><button type=\"submit\">添加成员</button></form>\
<form method=\"post\" action=\"/members/class\" class=\"filters\">{token}<label>班级名称<input name=\"name\" required maxlength=\"50\" placeholder=\"三年级(2)班\"></label><label>班主任（可不填）<input name=\"head\" maxlength=\"50\"></label><button type=\"submit\">添加班级</button></form>\
<form method=\"post\" action=\"/members/pair\" class=\"filters\">{token}<label>帮扶人<input name=\"carer\" required maxlength=\"50\"></label><label>学生（姓名、学籍号或编号）<input name=\"child\" required maxlength=\"50\"></label><button type=\"submit\">建立结对</button></form></section>"
    )
}

/// The add-a-member form.
#[derive(Debug, Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    phone: String,
}

fn done(what: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/members?done={what}"))],
    )
        .into_response()
}

fn optional(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// `POST /members/add`: `shouwang member add`.
pub async fn add_member(
    State(office): State<Office>,
    ctx: Ctx,
    Form(form): Form<MemberForm>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.check_csrf(&form.csrf)?;
            v.require_admin()?;
            let role = Role::parse(&form.role)?;
            a.add_member(
                &form.name,
                &[role],
                optional(&form.class),
                optional(&form.phone),
            )?;
            tracing::info!(by = %v.member.id, "office: member added");
            Ok(done("member"))
        })
        .await
}

/// The add-a-class form.
#[derive(Debug, Deserialize)]
pub struct ClassForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    head: String,
}

/// `POST /members/class`: `shouwang class add`.
pub async fn add_class(
    State(office): State<Office>,
    ctx: Ctx,
    Form(form): Form<ClassForm>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.check_csrf(&form.csrf)?;
            v.require_admin()?;
            a.add_class(&form.name, optional(&form.head))?;
            tracing::info!(by = %v.member.id, "office: class added");
            Ok(done("class"))
        })
        .await
}

/// The pairing form.
#[derive(Debug, Deserialize)]
pub struct PairForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    carer: String,
    #[serde(default)]
    child: String,
}

/// `POST /members/pair`: `shouwang pair`.
pub async fn pair(
    State(office): State<Office>,
    ctx: Ctx,
    Form(form): Form<PairForm>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, _| {
            let v = viewer(a, &ctx)?;
            v.check_csrf(&form.csrf)?;
            v.require_admin()?;
            a.pair(form.carer.trim(), form.child.trim(), None)?;
            tracing::info!(by = %v.member.id, "office: pairing added");
            Ok(done("pair"))
        })
        .await
}

fn invite_form(csrf: &str) -> String {
    let mut roles = String::from("<option value=\"\">按其现有角色</option>");
    for r in Role::ALL {
        let _ = write!(
            roles,
            "<option value=\"{}\">{}</option>",
            r.key(),
            esc(r.label())
        );
    }
    format!(
        "<section><h2>邀请设备</h2><form method=\"post\" action=\"/members/invite\" class=\"filters\">{}<label>成员姓名<input name=\"member\" required maxlength=\"50\"></label><label>角色（新成员必填）<select name=\"role\">{roles}</select></label><label>有效天数<input name=\"days\" value=\"7\" size=\"3\" inputmode=\"numeric\"></label><button type=\"submit\">生成邀请码</button></form><p class=\"hint\">新成员会以所选角色加入学校；已有成员的邀请不会改变其角色。邀请码只能用于一台设备。</p></section>",
        csrf_field(csrf)
    )
}

/// The invite form.
#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    member: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    days: String,
}

/// `POST /members/invite`: the hub issues the invite; the page shows it with its QR code.
pub async fn invite(
    State(office): State<Office>,
    ctx: Ctx,
    Form(form): Form<InviteForm>,
) -> Result<Response, OfficeError> {
    office
        .with_archive(move |a, hub| {
            let v = viewer(a, &ctx)?;
            v.check_csrf(&form.csrf)?;
            v.require_admin()?;
            let member = form.member.trim();
            if member.is_empty() {
                return Err(OfficeError::BadInput("请填写成员姓名".into()));
            }
            let role = match form.role.trim() {
                "" => None,
                r => Some(Role::parse(r)?),
            };
            let days = match form.days.trim() {
                "" => 7,
                d => d
                    .parse::<u32>()
                    .ok()
                    .filter(|d| (1..=90).contains(d))
                    .ok_or_else(|| OfficeError::BadInput("有效天数请填 1 到 90 之间的整数".into()))?,
            };
            let ticket = hub.invite(member, role, days)?;
            let school = a.school()?;
            let qr = qr_svg(&ticket.ticket)?;
            let added = if ticket.member_added {
                format!(
                    "<div class=\"notice\">已把 {}（{}）加入学校。</div>",
                    esc(&ticket.member_name),
                    esc(ticket.role.label())
                )
            } else {
                String::new()
            };
            let body = format!(
                "{added}<p class=\"lead\">{}（{}）的邀请码，{} 前有效，只能用于一台设备。请在手机上用守望扫描二维码，或运行 <code>shouwang join 邀请码</code>。</p><div class=\"qr\">{qr}</div><p><textarea class=\"ticket\" readonly rows=\"4\">{}</textarea></p><p><a href=\"/members\">返回成员与设备</a></p>",
                esc(&ticket.member_name),
                esc(ticket.role.label()),
                html::time(ticket.expires_at),
                esc(&ticket.ticket),
            );
            tracing::info!(by = %v.member.id, member = %ticket.member_name, "office: invite issued");
            Ok(html::page(&v, &school.name, "邀请码", "/members", &body))
        })
        .await
}

/// The ticket as a QR code in inline SVG: one path of dark modules, with the 4-module quiet
/// zone. Upper case keeps the ticket in QR's compact alphanumeric mode, as the hub's terminal
/// and PNG codes do (decoding ignores case).
pub fn qr_svg(ticket: &str) -> Result<String, OfficeError> {
    let code = QrCode::with_error_correction_level(ticket.to_ascii_uppercase(), EcLevel::M)
        .map_err(|e| OfficeError::Internal(format!("二维码：{e}")))?;
    let width = code.width();
    let colors = code.to_colors();
    let quiet = 4;
    let size = width + 2 * quiet;
    let mut path = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == Color::Dark {
            let (x, y) = (i % width + quiet, i / width + quiet);
            let _ = write!(path, "M{x} {y}h1v1h-1z");
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"{px}\" height=\"{px}\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"邀请码二维码\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path d=\"{path}\" fill=\"#000\"/></svg>",
        px = size * 6
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_qr_code_has_a_quiet_zone_and_dark_modules() {
        let svg = qr_svg("shouwang1abcdefghijklmnopqrstuvwxyz0123456789").unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(
            svg.contains("M4 4h1v1h-1z"),
            "the finder pattern starts at the quiet zone"
        );
        assert!(!svg.contains("M0 0h1"));
    }
}
