//! Setting up and running the school: init-school, join, info, class, member, pair, rules,
//! roster.

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use shouwang_core::bundle::seal::Passphrase;
use shouwang_core::roles::Role;
use shouwang_core::rules::RULES;
use shouwang_core::{Archive, SchoolSetup, roster};

use super::Ctx;
use crate::cli::{InitSchoolArgs, JoinArgs, MemberAddArgs, PairArgs};
use crate::error::{CliError, Result, read_data_file};
use crate::output::{Table, roles_label};

/// Refuses a store path whose directory does not exist or that is a directory.
pub(crate) fn check_new_store(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(CliError::msg(format!(
            "档案库应是一个文件，这里是目录：{}",
            path.display()
        )));
    }
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        return Err(CliError::msg(format!("目录不存在：{}", dir.display())));
    }
    Ok(())
}

/// Parses roles given as repeated flags or joined with `,` / `、`.
pub fn parse_roles(raw: &[String]) -> Result<Vec<Role>> {
    let mut roles = Vec::new();
    for part in raw
        .iter()
        .flat_map(|r| r.split([',', '，', '、']))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let r = Role::parse(part)?;
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    Ok(roles)
}

#[derive(Serialize)]
struct Created<'a> {
    school: &'a str,
    member: &'a str,
    device: &'a str,
    /// Encrypted at rest (`--key-file`).
    encrypted: bool,
}

pub fn init_school(ctx: &mut Ctx, a: &InitSchoolArgs) -> Result<()> {
    check_new_store(&ctx.store)?;
    // The office's archive holds the school secret and every child's 身份证号: encrypted
    // unless asked otherwise, in so many words.
    let keyed = ctx.new_key_file.is_some() || ctx.key.is_some();
    if !keyed && !a.plain {
        return Err(CliError::msg(
            "办公室档案存有全校学生的身份证号等信息，必须加密：请加 --key-file 密钥文件名\
             （文件不存在时会新建密钥，请另外备份一份）；只用于试用的档案可以加 --plain",
        ));
    }
    if keyed && a.plain {
        return Err(CliError::msg("--plain 和 --key-file 不能同时使用"));
    }
    let role = Role::parse(&a.admin_role)?;
    if !role.administers() {
        return Err(CliError::msg(format!(
            "创建学校的管理员应为校长或档案管理员，不能是{}",
            role.label()
        )));
    }
    let setup = SchoolSetup {
        name: a.name.clone(),
        town: a.town.clone(),
        hotline: a.hotline.clone().filter(|h| !h.trim().is_empty()),
        admin_name: a.admin.clone(),
        admin_role: role,
        device_label: a
            .device
            .clone()
            .unwrap_or_else(|| format!("{}的设备", a.admin.trim())),
    };
    // A key file named that does not exist yet: a new key, written first (readable by its
    // owner only; a file that appeared meanwhile is not overwritten), and taken back if the
    // school cannot be made, so a failed `init-school` leaves nothing behind.
    let new_key = match &ctx.new_key_file {
        Some(path) => {
            let key = shouwang_core::store::StoreKey::generate();
            shouwang_relay::keyfile::create(path, key.as_bytes())
                .map_err(|e| CliError::msg(format!("无法建立密钥文件 {}：{e}", path.display())))?;
            Some(key)
        }
        None => None,
    };
    let key = new_key.as_ref().or(ctx.key.as_ref());
    // What was at the store's path before: nothing, or an empty file (put back as it was).
    let was = std::fs::metadata(&ctx.store).ok().map(|m| m.len());
    let mut archive = match Archive::create_school_with_key(&ctx.store, &setup, key) {
        Ok(a) => a,
        Err(e) => {
            // The new key goes, and a store this command began (a disk full at its first
            // write): kept, it would be an archive nobody can open, and refuse the retry.
            if let Some(path) = &ctx.new_key_file {
                if matches!(was, None | Some(0)) {
                    for suffix in ["-wal", "-shm"] {
                        let mut p = ctx.store.clone().into_os_string();
                        p.push(suffix);
                        let _ = std::fs::remove_file(p);
                    }
                    let _ = match was {
                        None => std::fs::remove_file(&ctx.store),
                        Some(_) => std::fs::File::create(&ctx.store).map(drop),
                    };
                }
                let _ = std::fs::remove_file(path);
            }
            return Err(e.into());
        }
    };
    let school = archive.school()?;
    let me = archive.me()?;
    if ctx.json {
        return ctx.json(&Created {
            school: archive.school_id().as_str(),
            member: me.id.as_str(),
            device: archive.device().as_str(),
            encrypted: key.is_some(),
        });
    }
    ctx.line(format!(
        "已创建学校：{}（{}），档案库：{}",
        school.name,
        school.town,
        ctx.store.display()
    ))?;
    if let Some(path) = ctx.new_key_file.clone() {
        ctx.line(format!(
            "档案库已加密，新密钥在 {}：以后每条命令都要加 --key-file {}；请另外保管一份，丢失后档案库无法打开。",
            path.display(),
            path.display()
        ))?;
    } else if ctx.key.is_some() {
        ctx.line("档案库已用 --key-file 所指的密钥加密：以后每条命令都要加同一个 --key-file。")?;
    }
    ctx.line(format!(
        "本设备使用者：{}（{}）。下一步：class add 添加班级，member add 添加成员，roster import 导入名单。",
        me.name,
        me.role_labels()
    ))?;
    ctx.line(
        "个人信息保护：请用 school privacy-officer 指定负责人，用 consent require 要求档案隐私部分先取得监护人同意。",
    )
}

pub fn join(ctx: &mut Ctx, a: &JoinArgs) -> Result<()> {
    check_new_store(&ctx.store)?;
    let Some(bundle) = &a.bundle else {
        return Err(CliError::msg(
            "请提供邀请码，或者用 --bundle 提供管理员为这台设备导出的数据文件",
        ));
    };
    let bytes = read_data_file("数据文件", bundle)?;
    let member = a.member.as_deref().unwrap_or("");
    ctx.no_key("从数据文件加入")?;
    let passphrase = match &a.passphrase {
        Some(p) => Passphrase::parse(p)?,
        None if crate::prompt::interactive() => {
            crate::prompt::ask_passphrase("口令（管理员当面给你的 16 位数字）")?
        }
        None => {
            return Err(CliError::msg(
                "请用 --passphrase 提供管理员当面给你的口令（16 位数字）",
            ));
        }
    };
    let (mut archive, report) = Archive::join_file(&ctx.store, &bytes, &passphrase, member, None)?;
    report_joined(ctx, &mut archive)?;
    if report.dropped > 0 && !ctx.json {
        ctx.line(super::bundle::dropped_line(report.dropped))?;
    }
    Ok(())
}

/// What `join` prints, however the device joined (bundle file or invite ticket).
pub(crate) fn report_joined(ctx: &mut Ctx, archive: &mut Archive) -> Result<()> {
    let school = archive.school()?;
    let me = archive.me()?;
    let children = archive.children(None, false)?.len();
    if ctx.json {
        return ctx.json(&Created {
            school: archive.school_id().as_str(),
            member: me.id.as_str(),
            device: archive.device().as_str(),
            encrypted: ctx.key.is_some(),
        });
    }
    ctx.line(format!(
        "已加入{}：本设备使用者 {}（{}），收到 {} 名学生的档案。档案库：{}",
        school.name,
        me.name,
        me.role_labels(),
        children,
        ctx.store.display()
    ))
}

#[derive(Serialize)]
struct Info {
    school_id: String,
    school: String,
    town: String,
    hotline: Option<String>,
    privacy_officer: Option<shouwang_core::school::PrivacyOfficer>,
    consent_required: bool,
    member: shouwang_core::school::Member,
    device: String,
    classes: usize,
    members: usize,
    children: usize,
}

pub fn info(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let school = a.school()?;
    let me = a.me()?;
    let info = Info {
        school_id: a.school_id().to_string(),
        school: school.name.clone(),
        town: school.town.clone(),
        hotline: school.hotline.clone(),
        privacy_officer: school.privacy_officer.clone(),
        consent_required: school.consent_required,
        member: me,
        device: a.device().to_string(),
        classes: school.classes.len(),
        members: school.members.len(),
        children: a.children(None, false)?.len(),
    };
    if ctx.json {
        return ctx.json(&info);
    }
    ctx.line(format!("学校：{}（{}）", info.school, info.town))?;
    if let Some(h) = &info.hotline {
        ctx.line(format!("亲情电话：{h}"))?;
    }
    ctx.line(super::privacy::officer_line(info.privacy_officer.as_ref()))?;
    if info.consent_required {
        ctx.line("档案隐私部分须先取得监护人同意")?;
    }
    ctx.line(format!(
        "本设备使用者：{}（{}）",
        info.member.name,
        info.member.role_labels()
    ))?;
    ctx.line(format!(
        "班级 {} 个，成员 {} 人，本机学生档案 {} 份",
        info.classes, info.members, info.children
    ))?;
    ctx.line(format!("档案库：{}", ctx.store.display()))
}

pub fn class_add(ctx: &mut Ctx, name: &str, head: Option<&str>) -> Result<()> {
    let mut a = ctx.open()?;
    let id = a.add_class(name, head)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id }));
    }
    ctx.line(format!("已添加班级：{}", name.trim()))?;
    if let Some(h) = head {
        let m = a.find_member(h)?;
        ctx.line(format!(
            "{} 是本班班主任（班主任角色），可以查看和填写本班学生的档案，含私密部分。",
            m.name
        ))?;
    }
    Ok(())
}

pub fn class_head(ctx: &mut Ctx, class: &str, head: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let c = a.set_class_head(class, head)?;
    if ctx.json {
        return ctx.json(&c);
    }
    if !c.changed {
        return ctx.line(format!(
            "{} 已经是{}的班主任，没有改动。",
            c.new_head, c.class
        ));
    }
    ctx.line(format!("已更换{}的班主任：{}", c.class, c.new_head))?;
    let role = if c.new_head_gains_role {
        "获得班主任角色，"
    } else {
        ""
    };
    ctx.line(format!(
        "{} {}可以查看和填写本班 {} 名学生的档案，含私密部分（身份证号、心理辅导记录等）。",
        c.new_head, role, c.children
    ))?;
    if let Some(old) = &c.old_head {
        let role = if c.old_head_loses_role {
            "，并失去班主任角色（不再担任其他班级的班主任）"
        } else {
            ""
        };
        ctx.line(format!(
            "{old} 不再是本班班主任，不再能查看本班学生的档案（结对帮扶的学生除外）{role}。"
        ))?;
    }
    Ok(())
}

pub fn class_list(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let school = a.school()?;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for c in a.children(None, false)? {
        *counts.entry(c.class_name.unwrap_or_default()).or_default() += 1;
    }
    if ctx.json {
        return ctx.json(&school.classes);
    }
    let mut t = Table::new(&["班级", "班主任", "学生数", "编号"]);
    for c in &school.classes {
        t.row(vec![
            c.name.clone(),
            c.head_teacher
                .as_ref()
                .map(|h| school.member_name(h.as_str()))
                .unwrap_or_default(),
            counts.get(&c.name).copied().unwrap_or(0).to_string(),
            c.id.to_string(),
        ]);
    }
    if t.is_empty() {
        return ctx.line("还没有班级。用 class add 添加。");
    }
    ctx.text(t.render())
}

pub fn member_add(ctx: &mut Ctx, m: &MemberAddArgs) -> Result<()> {
    let roles = parse_roles(&m.roles)?;
    let mut a = ctx.open()?;
    let id = a.add_member(&m.name, &roles, m.class.as_deref(), m.phone.as_deref())?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id }));
    }
    ctx.line(format!(
        "已添加成员：{}（{}）",
        m.name.trim(),
        roles_label(&roles)
    ))
}

pub fn member_list(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let school = a.school()?;
    // Phones as this device holds them (a split school keeps each in the member's contact
    // document, which only those who need it receive).
    let phones: HashMap<String, String> = a
        .contacts()?
        .into_iter()
        .filter_map(|c| Some((c.member.to_string(), c.phone?)))
        .collect();
    let members: Vec<shouwang_core::school::Member> = school
        .members
        .iter()
        .map(|m| shouwang_core::school::Member {
            phone: phones.get(m.id.as_str()).cloned(),
            ..m.clone()
        })
        .collect();
    if ctx.json {
        return ctx.json(&members);
    }
    let mut paired: HashMap<&str, usize> = HashMap::new();
    for p in school.pairings.iter().filter(|p| p.active) {
        *paired.entry(p.carer.as_str()).or_default() += 1;
    }
    let mut t = Table::new(&["姓名", "角色", "班级", "电话", "结对学生", "编号"]);
    for m in &members {
        t.row(vec![
            m.name.clone(),
            m.role_labels(),
            m.class_id
                .as_ref()
                .and_then(|c| school.class(c))
                .map(|c| c.name.clone())
                .unwrap_or_default(),
            m.phone.clone().unwrap_or_default(),
            paired.get(m.id.as_str()).copied().unwrap_or(0).to_string(),
            m.id.to_string(),
        ]);
    }
    ctx.text(t.render())
}

pub fn pair(ctx: &mut Ctx, p: &PairArgs) -> Result<()> {
    let role = p.role.as_deref().map(Role::parse).transpose()?;
    let mut a = ctx.open()?;
    if p.end {
        let ended = a.end_pairing(&p.carer, &p.child)?;
        if ctx.json {
            return ctx.json(&serde_json::json!({ "ended": ended }));
        }
        let child = a
            .child_file(&p.child)
            .map_or_else(|_| p.child.clone(), |f| f.name);
        return ctx.line(format!(
            "已结束结对：{} 不再帮扶 {}；对方设备下次同步或导入数据文件时会删除这名学生的档案",
            p.carer.trim(),
            child
        ));
    }
    let id = a.pair(&p.carer, &p.child, role)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id }));
    }
    let school = a.school()?;
    let pairing = school.pairings.iter().find(|x| x.id == id);
    let role = pairing.map_or("帮扶", |x| x.role.label());
    let file = a.child_file(&p.child).ok();
    let child = file.map_or_else(|| p.child.clone(), |f| f.name);
    ctx.line(format!(
        "已结对：{}（{}）帮扶 {}",
        p.carer.trim(),
        role,
        child
    ))
}

#[derive(Serialize)]
struct RuleRow {
    key: &'static str,
    label: &'static str,
    value: i64,
    default: i64,
    min: i64,
    max: i64,
    source: &'static str,
}

pub fn rules_show(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let settings = a.school()?.rules.clone();
    let rows: Vec<RuleRow> = RULES
        .iter()
        .map(|r| RuleRow {
            key: r.key,
            label: r.label,
            value: settings.get(r.key).unwrap_or(r.default),
            default: r.default,
            min: r.min,
            max: r.max,
            source: r.source,
        })
        .collect();
    if ctx.json {
        return ctx.json(&rows);
    }
    let mut t = Table::new(&["规则", "说明", "当前", "默认", "依据"]);
    for r in &rows {
        t.row(vec![
            r.key.to_owned(),
            r.label.to_owned(),
            r.value.to_string(),
            r.default.to_string(),
            r.source.to_owned(),
        ]);
    }
    ctx.text(t.render())?;
    ctx.line("数值为 0 表示不检查这条规则。用 rules set 规则 数值 修改。")
}

pub fn rules_set(ctx: &mut Ctx, key: &str, value: &str) -> Result<()> {
    let mut a = ctx.open()?;
    a.set_rule(key, value)?;
    let (def, n) = shouwang_core::rules::parse_rule(key, value)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "key": def.key, "value": n }));
    }
    ctx.line(format!("已修改规则：{} = {}", def.label, n))
}

pub fn roster_import(ctx: &mut Ctx, file: &Path, update: bool) -> Result<()> {
    if !file.is_file() {
        return Err(CliError::msg(format!("找不到名单文件：{}", file.display())));
    }
    let mut a = ctx.open()?;
    let rows = roster::read_file(file)?;
    let report = a.import_roster_with(&rows, update)?;
    if ctx.json {
        return ctx.json(&report);
    }
    ctx.line(format!(
        "已导入名单：{} 行，新建学生档案 {} 份，已有档案 {} 份（空着的字段已按名单填写）。",
        report.rows,
        report.new_children,
        report.rows - report.new_children
    ))?;
    if !report.withheld.is_empty() {
        ctx.line(format!(
            "以下 {} 名学生尚无监护人对隐私部分的同意，身份证号和学籍号没有保存（只在名单文件里）；登记同意（shouwang consent record）后请重新导入同一名单：",
            report.withheld.len()
        ))?;
        for w in &report.withheld {
            ctx.line(format!("  第{}行 {}：{}", w.line, w.child, w.reason))?;
        }
    }
    if report.differences.is_empty() {
        return Ok(());
    }
    let archive_value = if update {
        "档案中原来的值"
    } else {
        "档案中的值"
    };
    let mut t = Table::new(&["行", "学生", "学籍号", "字段", "名单中的值", archive_value]);
    for d in &report.differences {
        t.row(vec![
            d.line.to_string(),
            d.child.clone(),
            d.student_no.clone().unwrap_or_default(),
            d.field.clone(),
            d.in_file.clone(),
            d.in_archive.clone(),
        ]);
    }
    if update {
        ctx.line(format!(
            "以下 {} 处档案中的值与名单不同，已改为名单中的值：",
            report.updated
        ))?;
        ctx.text(t.render())
    } else {
        ctx.line(format!(
            "以下 {} 处档案中的值与名单不同（有人修改过或仍有冲突），没有改动：",
            report.differences.len()
        ))?;
        ctx.text(t.render())?;
        ctx.line("核对后如确认以名单为准，请加 --update 重新导入。")
    }
}

/// `shouwang device list`.
pub fn device_list(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let rows = a.devices()?;
    if ctx.json {
        return ctx.json(&rows);
    }
    let mut t = Table::new(&["设备编号", "使用者", "名称", "状态", "上次同步"]);
    for d in &rows {
        t.row(vec![
            d.id.clone(),
            d.member.clone(),
            d.label.clone(),
            d.status(),
            d.last_sync
                .map_or_else(|| "—".to_owned(), |ms| crate::output::local_time(ms / 1000)),
        ]);
    }
    ctx.line(t.render())
}

/// `shouwang device revoke`.
pub fn device_revoke(ctx: &mut Ctx, device: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let d = a.revoke_device(device)?;
    if ctx.json {
        return ctx.json(&d);
    }
    ctx.line(format!(
        "已停用 {} 的设备“{}”（{}）：学校服务器和同步过的设备都将拒绝它；它尚未同步的记录不会再被接收。",
        d.member, d.label, d.id
    ))
}

/// `shouwang member deactivate`.
pub fn member_deactivate(ctx: &mut Ctx, name: &str) -> Result<()> {
    let mut a = ctx.open()?;
    let n = a.deactivate_member(name)?;
    ctx.line(format!(
        "已停用成员 {}，并停用其 {n} 台设备：设备下次同步时将删除其中的学生档案。",
        name.trim()
    ))
}

pub fn split(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let report = a.split_for_roles()?;
    if ctx.json {
        return ctx.json(&report);
    }
    ctx.line(format!(
        "已按角色拆分档案：{} 名学生的教师部分已移出共享档案并重建，{} 名成员的电话已移出学校信息{}。其他设备下次同步或导入时更新。",
        report.children,
        report.phones,
        if report.history > 0 {
            format!("，学校信息的修改历史中也已清除（改写了 {} 项修改）", report.history)
        } else {
            String::new()
        }
    ))
}
