//! 成员与设备 (administrators): members and their classes, devices and their last sync; the
//! school's membership changed through the core's own calls, as the CLI on the hub's store
//! would: adding a member, a class or a pairing (`add_member`, `add_class`, `pair`: `shouwang
//! member add`, `class add`, `pair`), ending a pairing (`end_pairing`: `pair --end`), changing a
//! class's head (`set_class_head`: `class head`) and deactivating a member with their devices
//! (`deactivate_member`: `member deactivate`), the last two after a page that says what will
//! happen; and invites: the hub issues one (adding a new member with the role asked for, as
//! `shouwang-relay invite` does) and the page shows it as text and as a QR code (inline SVG)
//! for the teacher's phone to scan.
//!
//! Each action is a plain function of the archive, the hub, the member and the form, routed
//! with `action` in `lib.rs`, which checks the session, the CSRF token and the administrator's
//! role before it runs. Every write is made as the member logged in
//! (`Archive::write_as_member`: under their console device, the core's checks run for them);
//! an invite for a new member adds the member that way before the hub issues it.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use qrcode::{Color, EcLevel, QrCode};
use serde::Deserialize;
use shouwang_core::membership::{MAX_INVITE_DAYS, invite_days_refused};
use shouwang_core::roles::Role;

use shouwang_core::{Archive, Error};

use crate::auth::{Asked, Viewer, viewer};
use crate::html::{self, Table, csrf_field, esc};
use crate::{Ctx, Hub, Office, OfficeError, PostedForm};

/// What was just done (a fixed code, so a link cannot put words on the page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Done {
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
    let roles = role_options(String::new());
    let mut classes = String::from("<option value=\"\">（无）</option>");
    let mut heads = String::new();
    for c in &school.classes {
        let _ = write!(classes, "<option>{}</option>", esc(&c.name));
        let head = c.head_teacher.as_ref().map_or_else(
            || "无班主任".to_owned(),
            |h| format!("班主任 {}", school.member_name(h.as_str())),
        );
        let _ = write!(
            heads,
            "<option value=\"{}\">{}（{}）</option>",
            esc(&c.name),
            esc(&c.name),
            esc(&head)
        );
    }
    let token = csrf_field(csrf);
    format!(
        "<section><h2>添加成员、班级、结对</h2>\
<form method=\"post\" action=\"/members/add\" class=\"filters\">{token}<label>姓名<input name=\"name\" required maxlength=\"50\"></label><label>角色<select name=\"role\">{roles}</select></label><label>班级（班主任填）<select name=\"class\">{classes}</select></label><label>电话<input name=\"phone\" maxlength=\"20\"></label><button type=\"submit\">添加成员</button></form>\
<form method=\"post\" action=\"/members/class\" class=\"filters\">{token}<label>班级名称<input name=\"name\" required maxlength=\"50\" placeholder=\"三年级(2)班\"></label><label>班主任（可不填）<input name=\"head\" maxlength=\"50\"></label><button type=\"submit\">添加班级</button></form>\
<form method=\"post\" action=\"/members/pair\" class=\"filters\">{token}<label>帮扶人<input name=\"carer\" required maxlength=\"50\"></label><label>学生（姓名、学籍号或编号）<input name=\"child\" required maxlength=\"50\"></label><button type=\"submit\">建立结对</button></form></section>\
<section><h2>结束结对、更换班主任、停用成员</h2>\
<form method=\"post\" action=\"/members/unpair\" class=\"filters\">{token}<label>帮扶人<input name=\"carer\" required maxlength=\"50\"></label><label>学生（姓名、学籍号或编号）<input name=\"child\" required maxlength=\"50\"></label><button type=\"submit\">结束结对</button></form>\
<form method=\"post\" action=\"/members/head\" class=\"filters\">{token}<label>班级<select name=\"class\" required>{heads}</select></label><label>新班主任<input name=\"head\" required maxlength=\"50\"></label><button type=\"submit\">更换班主任…</button></form>\
<form method=\"post\" action=\"/members/deactivate\" class=\"filters\">{token}<label>成员<input name=\"member\" required maxlength=\"50\"></label><button type=\"submit\">停用成员…</button></form>\
<p class=\"hint\">更换班主任和停用成员会先显示将要发生的变化，确认后才生效。</p></section>"
    )
}

/// The add-a-member form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MemberForm {
    name: String,
    role: String,
    class: String,
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

/// `s` trimmed, or a refusal naming the empty field.
fn required<'a>(s: &'a str, field: &str) -> Result<&'a str, OfficeError> {
    optional(s).ok_or_else(|| OfficeError::BadInput(format!("请填写{field}，没有做任何改动")))
}

/// The page after a change: what was done, one sentence a paragraph, and the way back.
fn result_page(a: &mut Archive, v: &Viewer, title: &str, lines: &[String]) -> ResultPage {
    let mut body = String::from("<div class=\"notice\">");
    for l in lines {
        let _ = write!(body, "<p>{}</p>", esc(l));
    }
    body.push_str("</div><p><a href=\"/members\">返回成员与设备</a></p>");
    Ok(html::page(v, &a.school()?.name, title, "/members", &body))
}

/// The page that asks before a change: what will happen, and the same form again with
/// `confirm=1` (its fields in hidden inputs) or the way back.
fn confirm_page(
    a: &mut Archive,
    v: &Viewer,
    title: &str,
    lines: &[String],
    action: &str,
    fields: &[(&str, &str)],
    button: &str,
) -> ResultPage {
    let mut body = String::from("<div class=\"confirm\">");
    for l in lines {
        let _ = write!(body, "<p>{}</p>", esc(l));
    }
    let _ = write!(
        body,
        "</div><form method=\"post\" action=\"{action}\" class=\"filters\">{}",
        csrf_field(&v.csrf)
    );
    for (k, value) in fields {
        let _ = write!(
            body,
            "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
            esc(value)
        );
    }
    let _ = write!(
        body,
        "<input type=\"hidden\" name=\"confirm\" value=\"1\"><button type=\"submit\">{}</button> <a href=\"/members\">取消，返回成员与设备</a></form>",
        esc(button)
    );
    Ok(html::page(v, &a.school()?.name, title, "/members", &body))
}

type ResultPage = Result<Response, OfficeError>;

/// `POST /members/add`: `shouwang member add`.
pub(crate) fn add_member(a: &mut Archive, _: &dyn Hub, v: &Viewer, f: MemberForm) -> ResultPage {
    let role = Role::parse(&f.role)?;
    a.write_as_member(&v.member.id, |a| {
        a.add_member(&f.name, &[role], optional(&f.class), optional(&f.phone))
    })?;
    tracing::info!(by = %v.member.id, "office: member added");
    Ok(done("member"))
}

/// The add-a-class form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClassForm {
    name: String,
    head: String,
}

/// `POST /members/class`: `shouwang class add`. A class that exists is refused as the CLI
/// refuses it, pointing to this page's own way of changing its head.
pub(crate) fn add_class(a: &mut Archive, _: &dyn Hub, v: &Viewer, f: ClassForm) -> ResultPage {
    let school = a.school()?;
    if let Some(c) = school.classes.iter().find(|c| c.name == f.name.trim()) {
        let head = c.head_teacher.as_ref().map_or_else(
            || "还没有班主任".to_owned(),
            |h| format!("班主任是{}", school.member_name(h.as_str())),
        );
        return Err(OfficeError::Forbidden(format!(
            "班级“{}”已经存在（{head}），没有改动；要更换班主任，请用本页的“更换班主任”",
            c.name
        )));
    }
    a.write_as_member(&v.member.id, |a| a.add_class(&f.name, optional(&f.head)))?;
    tracing::info!(by = %v.member.id, "office: class added");
    Ok(done("class"))
}

/// The pairing form (adding one or ending one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PairForm {
    carer: String,
    child: String,
}

/// `POST /members/pair`: `shouwang pair`.
pub(crate) fn pair(a: &mut Archive, _: &dyn Hub, v: &Viewer, f: PairForm) -> ResultPage {
    a.write_as_member(&v.member.id, |a| {
        a.pair(f.carer.trim(), f.child.trim(), None)
    })?;
    tracing::info!(by = %v.member.id, "office: pairing added");
    Ok(done("pair"))
}

/// `POST /members/unpair`: `shouwang pair --end` (every role the carer was paired in; a
/// carer not paired with the child is refused).
pub(crate) fn unpair(a: &mut Archive, _: &dyn Hub, v: &Viewer, f: PairForm) -> ResultPage {
    let carer = required(&f.carer, "帮扶人")?;
    let child = required(&f.child, "学生")?;
    let id = a.find_child(child)?;
    a.write_as_member(&v.member.id, |a| a.end_pairing(carer, id.as_str()))?;
    let name = a
        .child_name(id.as_str())
        .unwrap_or_else(|| child.to_owned());
    let carer = a.find_member(carer)?.name;
    tracing::info!(by = %v.member.id, "office: pairing ended");
    result_page(
        a,
        v,
        "已结束结对",
        &[format!(
            "已结束结对：{carer} 不再帮扶 {name}；对方设备下次同步或导入数据文件时会删除这名学生的档案。"
        )],
    )
}

/// The change-a-head form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HeadForm {
    class: String,
    head: String,
    /// `1` once the page that says what changes hands was confirmed.
    confirm: String,
}

/// `POST /members/head`: `shouwang class head`. Without `confirm` the page says what changes
/// hands (the core's `class_head_change`, nothing written); with it the head changes.
pub(crate) fn class_head(a: &mut Archive, _: &dyn Hub, v: &Viewer, f: HeadForm) -> ResultPage {
    let class = required(&f.class, "班级")?;
    let head = required(&f.head, "新班主任")?;
    if f.confirm != "1" {
        let c = a.class_head_change(class, head)?;
        if !c.changed {
            return result_page(a, v, "更换班主任", &[unchanged(&c)]);
        }
        let mut lines = vec![format!("把{}的班主任换成 {}？", c.class, c.new_head)];
        let role = if c.new_head_gains_role {
            "获得班主任角色，"
        } else {
            ""
        };
        lines.push(format!(
            "{} 将{role}可以查看和填写本班 {} 名学生的档案，含私密部分（身份证号、心理辅导记录等）。",
            c.new_head, c.children
        ));
        if let Some(old) = &c.old_head {
            let role = if c.old_head_loses_role {
                "，并失去班主任角色（不再担任其他班级的班主任）"
            } else {
                ""
            };
            lines.push(format!(
                "{old} 将不再是本班班主任，不再能查看本班学生的档案（结对帮扶的学生除外）{role}。"
            ));
        }
        return confirm_page(
            a,
            v,
            "确认更换班主任",
            &lines,
            "/members/head",
            &[("class", class), ("head", head)],
            "确认更换",
        );
    }
    let c = a.write_as_member(&v.member.id, |a| a.set_class_head(class, head))?;
    if !c.changed {
        return result_page(a, v, "更换班主任", &[unchanged(&c)]);
    }
    tracing::info!(by = %v.member.id, "office: class head changed");
    let mut lines = vec![format!("已更换{}的班主任：{}", c.class, c.new_head)];
    if let Some(old) = &c.old_head {
        lines.push(format!("{old} 不再是本班班主任。"));
    }
    result_page(a, v, "已更换班主任", &lines)
}

fn unchanged(c: &shouwang_core::archive::ClassHeadChange) -> String {
    format!("{} 已经是{}的班主任，没有改动。", c.new_head, c.class)
}

/// The deactivate-a-member form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeactivateForm {
    member: String,
    /// `1` once the page that says what happens was confirmed.
    confirm: String,
}

/// `POST /members/deactivate`: `shouwang member deactivate` (the member and every device of
/// theirs), after a page that says what will happen. Never the member logged in, nor the
/// member the hub's own device is registered to.
pub(crate) fn deactivate(
    a: &mut Archive,
    _: &dyn Hub,
    v: &Viewer,
    f: DeactivateForm,
) -> ResultPage {
    let key = required(&f.member, "成员")?;
    let m = a.find_member(key)?;
    if m.id == v.member.id {
        return Err(OfficeError::Forbidden("不能停用自己，没有改动".into()));
    }
    if &m.id == a.me_id() {
        return Err(OfficeError::Forbidden(format!(
            "{} 是学校服务器登记的管理员，不能在办公室网页上停用，没有改动",
            m.name
        )));
    }
    let devices = a
        .school()?
        .devices
        .iter()
        .filter(|d| d.member == m.id && !d.revoked)
        .count();
    if !m.active && devices == 0 {
        return result_page(
            a,
            v,
            "停用成员",
            &[format!("{} 已经停用，没有改动。", m.name)],
        );
    }
    if f.confirm != "1" {
        let lines = [
            format!("停用 {}（{}）？", m.name, m.role_labels()),
            format!(
                "其 {devices} 台设备将被停用：学校服务器和同步过的设备都将拒绝它们，设备下次同步时将删除其中的学生档案。"
            ),
            "停用后不能再登录办公室网页；已写的记录保留在档案中。".to_owned(),
        ];
        return confirm_page(
            a,
            v,
            "确认停用成员",
            &lines,
            "/members/deactivate",
            &[("member", m.id.as_str())],
            "确认停用",
        );
    }
    let n = a.write_as_member(&v.member.id, |a| a.deactivate_member(m.id.as_str()))?;
    // The member's console sessions end with the member (none comes back on reactivation).
    crate::auth::end_sessions(a, &m.id)?;
    tracing::info!(by = %v.member.id, member = %m.id, "office: member deactivated");
    result_page(
        a,
        v,
        "已停用成员",
        &[format!(
            "已停用成员 {}，并停用其 {n} 台设备：设备下次同步时将删除其中的学生档案。",
            m.name
        )],
    )
}

/// `first` followed by an option for every role.
fn role_options(mut first: String) -> String {
    for r in Role::ALL {
        let _ = write!(
            first,
            "<option value=\"{}\">{}</option>",
            r.key(),
            esc(r.label())
        );
    }
    first
}

fn invite_form(csrf: &str) -> String {
    let roles = role_options(String::from("<option value=\"\">按其现有角色</option>"));
    format!(
        "<section><h2>邀请设备</h2><form method=\"post\" action=\"/members/invite\" class=\"filters\">{}<label>成员姓名<input name=\"member\" required maxlength=\"50\"></label><label>角色（新成员必填）<select name=\"role\">{roles}</select></label><label>有效天数<input name=\"days\" value=\"7\" size=\"3\" inputmode=\"numeric\"></label><label>你的密码<input name=\"password\" type=\"password\" required autocomplete=\"current-password\" maxlength=\"200\"></label><button type=\"submit\">生成邀请码</button></form><p class=\"hint\">新成员会以所选角色加入学校；已有成员的邀请不会改变其角色。邀请码只能用于一台设备。</p></section>",
        csrf_field(csrf)
    )
}

/// The invite form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InviteForm {
    member: String,
    role: String,
    days: String,
    /// The administrator's own password, asked again for every invite.
    password: String,
}

/// The route of [`invite`]: an administrator's form, which also keeps where the request came
/// from (for the password it asks again).
pub(crate) async fn post_invite(
    State(office): State<Office>,
    ctx: Ctx,
    PostedForm(form): PostedForm<InviteForm>,
) -> Result<Response, OfficeError> {
    let asked = Asked::of(&ctx);
    office
        .post_form(ctx, crate::Who::Admin, form, move |a, hub, v, f| {
            invite(a, hub, v, f, &asked)
        })
        .await
}

/// `POST /members/invite`: the hub issues the invite; the page shows it with its QR code.
/// Every invite asks for her password again: the device it enrolls outlives the session, and
/// neither logging out nor a new password takes it away (whoever sat at a browser she left
/// logged in could otherwise add a 班主任, invite a phone for her, and give her a class).
pub(crate) fn invite(
    a: &mut Archive,
    hub: &dyn Hub,
    v: &Viewer,
    form: InviteForm,
    asked: &Asked,
) -> ResultPage {
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
            .filter(|d| (1..=MAX_INVITE_DAYS).contains(d))
            .ok_or_else(|| OfficeError::BadInput(invite_days_refused()))?,
    };
    // Whoever scans an invite writes as its member on every device: an administrator's
    // device is hers to ask for (she can log in here herself), not a colleague's.
    if let Ok(m) = a.find_member(member)
        && m.id != v.member.id
        && m.roles.iter().any(|r| r.administers())
    {
        return Err(OfficeError::Forbidden(format!(
            "不能为另一位管理员（{}）生成设备邀请：请她本人登录办公室网页生成，\
             或在学校服务器上运行 shouwang-relay invite",
            m.name
        )));
    }
    if form.password.is_empty() {
        return Err(OfficeError::Forbidden(
            "生成设备邀请前，请再输入一次你的密码，没有做任何改动".into(),
        ));
    }
    asked.confirm(a, v, &form.password)?;
    // A new member is added here, as the member who asked; the hub then only issues.
    let added_here = match (a.find_member(member), role) {
        (Err(Error::NotFound { .. }), Some(role)) => {
            a.write_as_member(&v.member.id, |a| a.add_member(member, &[role], None, None))?;
            true
        }
        _ => false,
    };
    let ticket = hub.invite(member, role, days)?;
    // Recorded before the code is shown: whoever scans it acts as that member.
    a.write_as_member(&v.member.id, |a| {
        a.log_invite(&ticket.member, ticket.role.label(), days)
    })?;
    let school = a.school()?;
    let qr = qr_svg(&ticket.ticket)?;
    let added = if added_here || ticket.member_added {
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
    tracing::info!(by = %v.member.id, member = %ticket.member, "office: invite issued");
    Ok(html::page(v, &school.name, "邀请码", "/members", &body))
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
