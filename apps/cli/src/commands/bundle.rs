//! Bundle files: export, and import with a report of what was new.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;
use shouwang_core::bundle::{Bundle, seal};
use shouwang_core::doc::{DocId, conflicts};
use shouwang_core::records::metas;
use shouwang_core::{Archive, Error};

use super::Ctx;
use crate::error::{Result, read_data_file, write_file_atomic};
use crate::output::role_label;

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub file: String,
    pub bytes: usize,
    pub documents: usize,
    pub children: usize,
}

/// Reads a file sealed to this device, and opens and verifies it.
fn load_bundle(a: &mut Archive, what: &str, path: &Path) -> Result<(Vec<u8>, Bundle)> {
    let bytes = read_data_file(what, path)?;
    let bundle = a.open_bundle(&bytes)?;
    Ok((bytes, bundle))
}

/// Whom an export is for.
#[derive(Debug, Clone)]
pub enum Whom {
    /// The member using this device (no `--for`).
    Me,
    /// Another member (`--for`).
    Member(String),
    /// The whole school (`--all`; leadership and the archivist only).
    School,
}

/// Writes a sealed file to `out` (whole or not at all) and says what `decoded`, its content,
/// holds.
fn write_bundle(out: &Path, bytes: &[u8], decoded: &Bundle) -> Result<Exported> {
    write_file_atomic("数据文件", out, bytes)?;
    Ok(Exported {
        file: out.display().to_string(),
        bytes: bytes.len(),
        documents: decoded.entries.len(),
        children: decoded
            .entries
            .iter()
            .filter(|e| matches!(e.doc, DocId::Child(_)))
            .count(),
    })
}

/// Exports a bundle to `out` (whole or not at all).
pub fn export_to(
    a: &mut Archive,
    out: &Path,
    whom: &Whom,
    since: Option<&Path>,
) -> Result<Exported> {
    let since = since
        .map(|p| load_bundle(a, "旧数据文件", p).map(|(_, b)| b))
        .transpose()?;
    let bytes = match whom {
        Whom::Me => {
            let me = a.me_id().clone();
            a.export_bundle(Some(me.as_str()), since.as_ref())?
        }
        Whom::Member(m) => a.export_bundle(Some(m), since.as_ref())?,
        Whom::School => a.export_school(since.as_ref())?,
    };
    // This device is always among a file's recipients: open it to say what it holds.
    let decoded = a.open_bundle(&bytes)?;
    write_bundle(out, &bytes, &decoded)
}

/// What `device add` wrote.
#[derive(Debug, Serialize)]
pub struct DeviceAdded {
    #[serde(flatten)]
    pub exported: Exported,
    pub device: String,
    /// Opens the file on the new device; given in person, never sent with the file.
    pub passphrase: String,
}

/// Registers a new device for `member` and writes the file it joins with.
pub fn export_new_device(
    a: &mut Archive,
    out: &Path,
    member: &str,
    label: &str,
) -> Result<DeviceAdded> {
    let new = a.export_new_device(member, label)?;
    let decoded = seal::open(&new.bundle, seal::Unlock::Passphrase(&new.passphrase))?.bundle;
    Ok(DeviceAdded {
        exported: write_bundle(out, &new.bundle, &decoded)?,
        device: new.device.to_string(),
        passphrase: new.passphrase.to_string(),
    })
}

/// `shouwang device add`.
pub fn device_add(ctx: &mut Ctx, member: &str, label: Option<&str>, out: &Path) -> Result<()> {
    let mut a = ctx.open()?;
    let label = label.map_or_else(|| format!("{}的设备", member.trim()), str::to_owned);
    // Registering writes the school document: check where the file goes first, so a bad
    // path leaves no device registered without its file.
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() || out.is_dir() {
        return Err(crate::error::CliError::msg(format!(
            "无法写入数据文件：{}",
            out.display()
        )));
    }
    let done = export_new_device(&mut a, out, member, &label)?;
    if ctx.json {
        return ctx.json(&done);
    }
    ctx.line(format!(
        "已为 {} 登记新设备“{}”，并导出 {} 份档案（其中学生档案 {} 份）→ {}\n\
         口令：{}\n\
         请把口令当面告诉对方（不要和文件一起发送）；文件已加密，没有口令打不开。\n\
         在新设备上运行：shouwang join --bundle {}",
        member.trim(),
        label,
        done.exported.documents,
        done.exported.children,
        out.display(),
        done.passphrase,
        out.display()
    ))
}

/// One refused change, or one taken on a lost standing: when, what, whose, why, from where.
fn listed(q: &shouwang_core::archive::QuarantinedChange) -> String {
    format!(
        "{}  {}  {}（设备 {}）：{}  来源：{}",
        crate::output::local_time(q.at),
        q.doc,
        q.member,
        short(&q.device),
        q.reason,
        q.from
    )
}

/// A device id as people are shown it (the console too): its first 8 characters.
fn short(device: &str) -> String {
    device.chars().take(8).collect()
}

/// `shouwang quarantine`: changes other devices sent that the trust rules refused.
pub fn quarantine(ctx: &mut Ctx) -> Result<()> {
    let mut a = ctx.open()?;
    let refused = a.quarantined()?;
    let relayed = a.relayed_from_revoked()?;
    let outdated = a.outdated_standing()?;
    if ctx.json {
        return ctx.json(&serde_json::json!({
            "refused": refused,
            "relayed": relayed,
            "outdated": outdated,
        }));
    }
    if refused.is_empty() {
        ctx.line("没有被拒绝的修改。")?;
    } else {
        ctx.line(format!("被拒绝并隔离的修改：{} 项", refused.len()))?;
    }
    for q in refused {
        ctx.line(listed(&q))?;
    }
    if !relayed.is_empty() {
        ctx.line(format!(
            "已停用设备的修改，由其他设备转交后已接收（请核实，不应保留的记录可作废）：{} 项",
            relayed.len()
        ))?;
    }
    for r in relayed {
        ctx.line(format!(
            "{}  {}  {}（已停用设备 {}），由 {} 转交",
            crate::output::local_time(r.at),
            r.doc,
            r.member,
            short(&r.device),
            r.via
        ))?;
    }
    if !outdated.is_empty() {
        ctx.line(format!(
            "已接收、需要核实的修改（成员在得知自己的职责调整之前所做，或记录日期、修改时间不对；原因见每项，不应保留的记录可作废）：{} 项",
            outdated.len()
        ))?;
    }
    for q in outdated {
        ctx.line(listed(&q))?;
    }
    Ok(())
}

pub fn export(ctx: &mut Ctx, out: &Path, whom: &Whom, since: Option<&Path>) -> Result<()> {
    let mut a = ctx.open()?;
    let done = export_to(&mut a, out, whom, since)?;
    if ctx.json {
        return ctx.json(&done);
    }
    let whom = match whom {
        Whom::Me => format!("（给 {}）", a.me()?.name),
        Whom::Member(m) => format!("（给 {}）", m.trim()),
        Whom::School => "（全校）".to_owned(),
    };
    ctx.line(format!(
        "已导出{}：{} 份档案（其中学生档案 {} 份），{} 字节 → {}",
        whom,
        done.documents,
        done.children,
        done.bytes,
        out.display()
    ))
}

/// A record that arrived with an import.
#[derive(Debug, Serialize)]
pub struct NewRecord {
    pub id: String,
    pub date: String,
    pub kind: String,
    pub child: String,
    pub author: String,
    pub role: String,
}

/// A conflict that arrived with an import.
#[derive(Debug, Serialize)]
pub struct NewConflict {
    pub child: String,
    pub path: String,
    pub label: String,
    pub values: Vec<String>,
}

/// What an import did, in detail.
#[derive(Debug, Default, Serialize)]
pub struct Imported {
    pub documents: usize,
    pub changed: usize,
    pub new_changes: usize,
    /// Documents of the file this device's member may not see: left out.
    pub dropped: usize,
    /// Documents this device held that its member may no longer see: purged.
    pub purged: usize,
    /// Changes of the file not merged: refused by the school's rules (kept for review in
    /// `quarantine`), or past the sender's daily allowance (import the file again tomorrow).
    pub not_taken: usize,
    /// Of those, changes not judged now (past the sender's daily allowance, or resting on
    /// something this device lacks): not quarantined, taken by a later import of the file.
    pub deferred: usize,
    /// Of those, changes on an older generation of a re-based file (not quarantined; the
    /// sender's work comes back once it has the new generation).
    pub stale: usize,
    /// Why the first of them was not merged.
    pub not_taken_reason: Option<String>,
    pub school_changed: bool,
    pub new_children: Vec<String>,
    pub new_records: Vec<NewRecord>,
    pub new_conflicts: Vec<NewConflict>,
    /// What this device wrote offline in a file the school re-based and could not carry over
    /// into the new file (`Archive::take_not_carried`): one line each, what and why.
    pub not_kept: Vec<String>,
}

/// Record ids and conflict paths of a document, before an import.
type Snapshot = (HashSet<String>, HashSet<String>);

/// Imports a bundle file and works out what was new.
pub fn import_from(a: &mut Archive, path: &Path) -> Result<Imported> {
    let (bytes, bundle) = load_bundle(a, "数据文件", path)?;
    import_bundle(a, &bytes, &bundle)
}

/// Imports a decoded bundle (`bytes` are its encoding) and works out what was new.
fn import_bundle(a: &mut Archive, bytes: &[u8], bundle: &Bundle) -> Result<Imported> {
    if &bundle.school != a.school_id() {
        return Err(Error::WrongSchool.into());
    }
    let mut before: HashMap<DocId, Option<Snapshot>> = HashMap::new();
    for e in &bundle.entries {
        let snap = a.store().doc(&e.doc)?.map(|d| {
            (
                metas(d).into_iter().map(|m| m.id.0).collect(),
                conflicts::list(d).iter().map(|c| c.dotted()).collect(),
            )
        });
        before.insert(e.doc.clone(), snap);
    }
    let school_heads = a.store().heads(&DocId::School)?;
    let report = a.import_bundle(bytes)?;
    let mut out = Imported {
        documents: report.documents,
        changed: report.changed,
        new_changes: report.new_changes,
        dropped: report.dropped,
        purged: report.purged,
        not_taken: report.refused,
        deferred: report.deferred,
        stale: report.stale,
        not_taken_reason: report.refused_reason,
        school_changed: a.store().heads(&DocId::School)? != school_heads,
        new_children: Vec::new(),
        new_records: Vec::new(),
        new_conflicts: Vec::new(),
        not_kept: a.take_not_carried()?,
    };
    if report.new_changes == 0 {
        return Ok(out);
    }
    let school = a.school()?;
    let names: HashMap<String, String> = a
        .children(None, false)?
        .into_iter()
        .map(|c| (c.id.0, c.name))
        .collect();
    let name_of = |id: Option<&str>| {
        id.and_then(|i| names.get(i).cloned())
            .unwrap_or_else(|| "—".to_owned())
    };
    let mut ids: Vec<&DocId> = before.keys().collect();
    ids.sort();
    for id in ids {
        let old = before.get(id).cloned().flatten();
        // Left out of the import (not this member's), or purged after it.
        if a.store().doc(id)?.is_none() {
            continue;
        }
        if old.is_none()
            && let DocId::Child(c) = id
        {
            out.new_children.push(name_of(Some(c.as_str())));
        }
        let (old_records, old_conflicts) = old.unwrap_or_default();
        let Some(doc) = a.store().doc(id)? else {
            continue;
        };
        for m in metas(doc) {
            if old_records.contains(m.id.as_str()) {
                continue;
            }
            out.new_records.push(NewRecord {
                kind: m.kind().map_or("未知类型", |k| k.label()).to_owned(),
                child: name_of(m.child.as_deref()),
                author: school.member_name(&m.author),
                role: role_label(&m.author_role),
                date: m.happened_on.clone(),
                id: m.id.0,
            });
        }
        for c in conflicts::list(doc) {
            if old_conflicts.contains(&c.dotted()) {
                continue;
            }
            out.new_conflicts.push(NewConflict {
                child: name_of(id.child().map(|c| c.as_str())),
                path: c.dotted(),
                label: c.label,
                values: c.values,
            });
        }
    }
    out.new_records
        .sort_by(|x, y| (&x.date, &x.id).cmp(&(&y.date, &y.id)));
    Ok(out)
}

/// The line that says how many documents of a bundle were left out.
pub fn dropped_line(n: usize) -> String {
    format!("已略过 {n} 份此设备无权保存的档案（使用者无权查看，未写入本机）。")
}

/// The import report as text.
pub fn render_import(r: &Imported) -> String {
    let mut s = render_import_body(r);
    for line in super::network::not_kept_lines(&r.not_kept) {
        s.push_str(&line);
        s.push('\n');
    }
    s
}

fn render_import_body(r: &Imported) -> String {
    let mut s = String::new();
    if r.dropped > 0 {
        s.push_str(&dropped_line(r.dropped));
        s.push('\n');
    }
    if r.purged > 0 {
        s.push_str(&format!(
            "已从本机删除 {} 份使用者不再负责的档案。\n",
            r.purged
        ));
    }
    if r.not_taken > 0 {
        let why = r
            .not_taken_reason
            .as_deref()
            .unwrap_or("不符合学校的规则")
            .trim_end_matches('。');
        let later = r.deferred.min(r.not_taken);
        let stale = r.stale.min(r.not_taken - later);
        let refused = r.not_taken - later - stale;
        s.push_str(&format!(
            "有 {} 处修改没有导入（第一处的原因：{why}）。\n",
            r.not_taken
        ));
        if refused > 0 {
            s.push_str(&format!(
                "  其中 {refused} 处被拒绝，已隔离待查，见 shouwang quarantine。\n"
            ));
        }
        if later > 0 {
            s.push_str(&format!(
                "  其中 {later} 处暂未导入：它所依据的内容本机还没有、是对方转交的其他设备的修改，或已超过每日上限。\n"
            ));
        }
        if stale > 0 {
            s.push_str(&format!(
                "  其中 {stale} 处写在学校重整之前的旧档案上：对方收到新档案后，这些记录会重新带上。\n"
            ));
        }
    }
    if r.new_changes == 0 {
        if r.not_taken == 0 && r.purged == 0 {
            s.push_str(&format!(
                "没有新内容：文件中的 {} 份档案本机都已是最新，档案未改变。\n",
                r.documents - r.dropped
            ));
        }
        return s;
    }
    s.push_str(&format!(
        "导入完成：文件中有 {} 份档案，其中 {} 份有新内容（共 {} 处修改）。\n",
        r.documents, r.changed, r.new_changes
    ));
    if r.school_changed {
        s.push_str("学校信息有更新（成员、班级、结对或规则）。\n");
    }
    if !r.new_children.is_empty() {
        s.push_str(&format!(
            "新增学生档案 {} 份：{}\n",
            r.new_children.len(),
            r.new_children.join("、")
        ));
    }
    if !r.new_records.is_empty() {
        s.push_str(&format!("新增记录 {} 条：\n", r.new_records.len()));
        for n in &r.new_records {
            s.push_str(&format!(
                "  {} {} · {} · {}（{}）\n",
                n.date, n.kind, n.child, n.author, n.role
            ));
        }
    }
    if !r.new_conflicts.is_empty() {
        s.push_str(&format!(
            "出现冲突 {} 处（两边的值都已保留，请核实后用 resolve 解决）：\n",
            r.new_conflicts.len()
        ));
        for c in &r.new_conflicts {
            s.push_str(&format!(
                "  {} {}：{}\n",
                c.child,
                c.label,
                c.values.join(" / ")
            ));
        }
    }
    s
}

pub fn import(ctx: &mut Ctx, path: &Path) -> Result<()> {
    let mut a = ctx.open()?;
    let (bytes, bundle) = load_bundle(&mut a, "数据文件", path)?;
    let r = import_bundle(&mut a, &bytes, &bundle)?;
    if ctx.json {
        return ctx.json(&r);
    }
    ctx.text(render_import(&r))
}

/// `shouwang audit`: the access logs this device holds, checked.
pub fn audit(ctx: &mut Ctx, args: &crate::cli::AuditArgs) -> Result<()> {
    let mut a = ctx.open()?;
    if ctx.json {
        let mut log = a.audit_log()?;
        if let Some(m) = &args.member {
            let id = a.find_member(m)?.id;
            log.entries.retain(|e| e.member == id.as_str());
        }
        if let Some(c) = &args.child {
            let id = a.find_child(c)?;
            log.entries.retain(|e| e.target == id.as_str());
        }
        return ctx.json(&log);
    }
    let (lines, problems) = a.audit_lines(args.member.as_deref(), args.child.as_deref())?;
    if problems.is_empty() {
        ctx.line(format!(
            "查阅记录 {} 条，核对无误（未被改动）。",
            lines.len()
        ))?;
    } else {
        ctx.line(format!("⚠ 查阅记录有被改动的迹象：{}", problems.join("；")))?;
    }
    for e in &lines {
        let why = e
            .why
            .as_deref()
            .map(|w| format!("  理由：{w}"))
            .unwrap_or_default();
        ctx.line(format!(
            "{}  {}  {}：{}（设备 {}）{why}",
            crate::output::local_time(e.at),
            e.member,
            e.what,
            e.target,
            e.device,
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Imported, render_import};

    /// Work an import could not carry over into a re-based file is said, one line each, even
    /// when the import brought nothing else.
    #[test]
    fn an_import_says_what_it_did_not_keep() {
        let said = render_import(&Imported {
            documents: 2,
            not_kept: vec!["王晓雨的谈心记录（2026-11-25）未能保留：监护人已撤回同意。".into()],
            ..Imported::default()
        });
        assert!(said.contains("没有保留"), "{said}");
        assert!(
            said.contains("  王晓雨的谈心记录（2026-11-25）未能保留"),
            "{said}"
        );
    }

    /// What an import says is true of what it did: a file that only dropped a file she may
    /// no longer see did change the device; changes it did not take are told apart by what
    /// happens to them.
    #[test]
    fn an_import_report_says_what_happened() {
        let purged = render_import(&Imported {
            documents: 3,
            purged: 1,
            ..Imported::default()
        });
        assert!(purged.contains("删除 1 份"), "{purged}");
        assert!(!purged.contains("未改变"), "{purged}");

        let reason =
            Some("今天从这位成员收到的修改已超过每日上限（16 MB），明天再同步或导入".into());
        let deferred = render_import(&Imported {
            documents: 2,
            not_taken: 3,
            deferred: 3,
            not_taken_reason: reason.clone(),
            ..Imported::default()
        });
        assert!(
            deferred.contains("暂未导入") && deferred.contains("明天"),
            "{deferred}"
        );
        assert!(!deferred.contains("quarantine"), "{deferred}");
        let stale = render_import(&Imported {
            documents: 2,
            not_taken: 2,
            stale: 2,
            not_taken_reason: Some("旧档案".into()),
            ..Imported::default()
        });
        assert!(
            stale.contains("重整") && !stale.contains("quarantine"),
            "{stale}"
        );
        let mixed = render_import(&Imported {
            documents: 2,
            not_taken: 3,
            deferred: 1,
            not_taken_reason: reason,
            ..Imported::default()
        });
        assert!(
            mixed.contains("其中 2 处被拒绝") && mixed.contains("其中 1 处暂未导入"),
            "{mixed}"
        );
    }
}
