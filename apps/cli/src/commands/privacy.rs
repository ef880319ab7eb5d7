//! Children's personal information: guardian consent, the school's 个人信息保护负责人, and the
//! lost-phone report.

use shouwang_core::archive::{ConsentInput, LostDeviceReport, WithdrawalInput};
use shouwang_core::consent::Consent;
use shouwang_core::school::PrivacyOfficer;

use super::Ctx;
use crate::error::Result;
use crate::output::local_time;

/// One line describing a consent, for the file view and `consent show`.
pub fn consent_line(c: Option<&Consent>, required: bool) -> String {
    let Some(c) = c else {
        return if required {
            "未登记（隐私部分在登记前不能填写）".to_owned()
        } else {
            "未登记".to_owned()
        };
    };
    c.line()
}

/// The responsible person, for `info`, `status` and the file's footer.
pub fn officer_line(o: Option<&PrivacyOfficer>) -> String {
    match o {
        Some(o) => format!(
            "个人信息保护负责人：{}{}",
            o.name,
            o.phone
                .as_deref()
                .map(|p| format!("（电话 {p}）"))
                .unwrap_or_default()
        ),
        None => "个人信息保护负责人：未设置（管理员可用 shouwang school privacy-officer 设置）"
            .to_owned(),
    }
}

/// `shouwang consent record`.
pub fn consent_record(ctx: &mut Ctx, child: &str, input: &ConsentInput) -> Result<()> {
    let mut a = ctx.open()?;
    a.record_consent(child, input)?;
    let c = a.consent(child)?;
    if ctx.json {
        return ctx.json(&c);
    }
    ctx.line(format!(
        "已登记监护人同意：{}",
        consent_line(c.as_ref(), false)
    ))
}

/// `shouwang consent withdraw`.
pub fn consent_withdraw(ctx: &mut Ctx, child: &str, input: &WithdrawalInput) -> Result<()> {
    let mut a = ctx.open()?;
    let hint = a.withdraw_consent(child, input)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "consent": a.consent(child)?, "hint": hint }));
    }
    ctx.line(format!("{hint}{}", super::command_for(&hint)))
}

/// `shouwang consent require`.
pub fn consent_require(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    a.require_consent()?;
    ctx.line(
        "已要求监护人同意：此后没有监护人同意的学生，档案的隐私部分（身份证号、学籍号、特别关注、心理辅导记录、个别教育管理方案）不能再填写，各设备都会拒绝；已有内容保留可查。班主任的待办会列出“缺监护人同意”。",
    )
}

/// `shouwang consent show`.
pub fn consent_show(ctx: &mut Ctx, child: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let c = a.consent(child)?;
    let required = a.school()?.consent_required;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "consent": c, "required": required }));
    }
    ctx.line(format!(
        "监护人同意：{}",
        consent_line(c.as_ref(), required)
    ))
}

/// `shouwang school privacy-officer`.
pub fn privacy_officer(ctx: &mut Ctx, name: &str, phone: &str) -> Result<()> {
    let mut a = ctx.open()?;
    a.set_privacy_officer(name, phone)?;
    let o = a.school()?.privacy_officer.clone();
    if ctx.json {
        return ctx.json(&o);
    }
    ctx.line(format!("已设置{}", officer_line(o.as_ref())))
}

fn render_lost(r: &LostDeviceReport) -> String {
    let mut s = String::new();
    let mut push = |line: String| {
        s.push_str(&line);
        s.push('\n');
    };
    push(format!(
        "{} {} 的设备“{}”（{}）。",
        if r.newly_revoked {
            "已停用"
        } else {
            "此前已停用"
        },
        r.member,
        r.label,
        r.device
    ));
    push(format!(
        "登记时间：{}（最早从此时起可能保存档案）",
        r.registered_at.map_or_else(
            || "不详（登记早于本版本）".to_owned(),
            |t| local_time(t / 1000)
        )
    ));
    push(format!(
        "最后一次与本机同步：{}（此后的修改不在这台设备上）",
        r.last_sync
            .map_or_else(|| "本机没有记录".to_owned(), |t| local_time(t / 1000))
    ));
    push(format!(
        "它可能保存了以下 {} 名学生的档案（按 {} 目前的权限推算，是上限：从未同步过的档案不在其中）：",
        r.children.len(),
        r.member
    ));
    for c in &r.children {
        push(format!(
            "  {}（{}）{}{}",
            c.name,
            c.class_name.as_deref().unwrap_or("未分班"),
            if c.private {
                "，含隐私部分（身份证号、心理辅导记录等）"
            } else {
                ""
            },
            if c.synced {
                "，服务器记录显示已同步到这台设备"
            } else {
                ""
            }
        ));
    }
    if !r.ended_pairings.is_empty() {
        push("结对已结束、若此后未同步可能仍保存的学生：".to_owned());
        for c in &r.ended_pairings {
            push(format!(
                "  {}（{}）",
                c.name,
                c.class_name.as_deref().unwrap_or("未分班")
            ));
        }
    }
    push("请学校个人信息保护负责人按规定告知相关学生的监护人。设备下次连上学校服务器时会清除本机档案。".to_owned());
    s
}

/// `shouwang device lost`.
pub fn device_lost(ctx: &mut Ctx, device: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let r = a.report_lost_device(device)?;
    // A report naming the children whose files the phone held.
    ctx.log_report(&mut a, r.children.len() + r.ended_pairings.len())?;
    if ctx.json {
        return ctx.json(&r);
    }
    let officer = officer_line(a.school()?.privacy_officer.as_ref());
    ctx.text(render_lost(&r))?;
    ctx.line(officer)
}
