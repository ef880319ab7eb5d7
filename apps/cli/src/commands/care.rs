//! Care records: record KIND, record edit, record void, record progress.
//!
//! Before anything is written, every given value is checked, and what is missing (the child,
//! the date, required fields) is asked for at a terminal or reported by name otherwise.

use shouwang_core::doc::DocId;
use shouwang_core::forms::{FieldSpec, parse_fields};
use shouwang_core::kinds::{DocPart, PROGRESS_FIELDS, RecordKind};
use shouwang_core::{Archive, Error, RecordInput};

use super::{Ctx, key_values, today};
use crate::cli::RecordAddArgs;
use crate::error::{CliError, Result};
use crate::prompt;

/// Parses a record kind by key or Chinese name, listing the choices when unknown.
pub fn parse_kind(raw: &str) -> Result<RecordKind> {
    RecordKind::parse(raw).ok_or_else(|| {
        let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.label()).collect();
        CliError::Core(Error::invalid(
            "记录类型",
            format!("没有“{}”，可选：{}", raw.trim(), names.join("、")),
        ))
    })
}

/// Whether the field has a non-empty value among `given` (by key or label).
fn has_value(spec: &FieldSpec, given: &[(String, String)]) -> bool {
    given
        .iter()
        .rev()
        .find(|(k, _)| k == spec.key || k == spec.label)
        .is_some_and(|(_, v)| !v.trim().is_empty())
}

/// Fills in the date and the required fields of `form`: asks at a terminal, otherwise fails
/// naming the first one missing.
fn complete(
    form: &'static [FieldSpec],
    date: Option<String>,
    mut given: Vec<(String, String)>,
    interactive: bool,
) -> Result<(String, Vec<(String, String)>)> {
    // Values that were given must be valid before anyone is asked for more.
    parse_fields(form, &given, true)?;
    let date = match date.filter(|d| !d.trim().is_empty()) {
        Some(d) => {
            shouwang_core::dates::parse_date("日期", &d)?;
            d
        }
        None if interactive => prompt::ask_date(&today().format("%Y-%m-%d").to_string())?,
        None => return Err(Error::Missing("日期（请用 --date 填写）".into()).into()),
    };
    for spec in form.iter().filter(|f| f.required) {
        if has_value(spec, &given) {
            continue;
        }
        if !interactive {
            return Err(Error::Missing(format!(
                "{}（请用 --field {}=… 填写）",
                spec.label, spec.key
            ))
            .into());
        }
        let v = prompt::ask_field(spec)?;
        given.push((spec.key.to_owned(), v));
    }
    Ok((date, given))
}

/// The child (or class) a new record is about, asked for when missing at a terminal.
fn target(
    a: &mut Archive,
    kind: RecordKind,
    args: &RecordAddArgs,
    interactive: bool,
) -> Result<(Option<String>, Option<String>)> {
    if kind.part() == DocPart::Class {
        let class = match &args.class {
            Some(c) => c.clone(),
            None if interactive => prompt::ask_value("班级", |s| {
                a.find_class(s).map(|_| ()).map_err(CliError::from)
            })?,
            None => return Err(Error::Missing("班级（请用 --class 填写）".into()).into()),
        };
        let id = a.find_class(&class)?.id;
        may_write(a, kind, &DocId::Class(id))?;
        return Ok((None, Some(class)));
    }
    let child = match &args.child {
        Some(c) => c.clone(),
        None if interactive => prompt::ask_value("学生（姓名、学籍号或编号）", |s| {
            a.find_child(s).map(|_| ()).map_err(CliError::from)
        })?,
        None => return Err(Error::Missing("学生（请用 --child 填写）".into()).into()),
    };
    let id = a.find_child(&child)?;
    let doc = match kind.part() {
        DocPart::Private => DocId::Private(id),
        _ => DocId::Child(id),
    };
    may_write(a, kind, &doc)?;
    Ok((Some(child), None))
}

/// Refuses early, before anyone types a whole record, what the core would refuse at the end:
/// a kind this member's roles may not write, or a child this member does not care for.
fn may_write(a: &mut Archive, kind: RecordKind, doc: &DocId) -> Result<()> {
    let me = a.me()?;
    if !me
        .roles
        .iter()
        .any(|r| kind.writers().contains(r) || r.administers())
    {
        return Err(
            Error::NotPermitted(format!("{}不能填写{}", me.role_labels(), kind.label())).into(),
        );
    }
    if !a.may_see(&me, doc)? {
        return Err(Error::NotPermitted(format!(
            "{}（{}）不负责这名学生的这部分档案",
            me.name,
            me.role_labels()
        ))
        .into());
    }
    Ok(())
}

pub fn add(ctx: &mut Ctx, args: &RecordAddArgs) -> Result<()> {
    let interactive = prompt::interactive();
    let kind = match args.kind.as_deref() {
        Some(k) => parse_kind(k)?,
        None if interactive => {
            let names: Vec<&str> = RecordKind::ALL.iter().map(|k| k.label()).collect();
            let k = prompt::ask_value(&format!("记录类型（{}）", names.join("、")), |s| {
                parse_kind(s).map(|_| ())
            })?;
            parse_kind(&k)?
        }
        None => {
            return Err(CliError::msg(
                "缺少记录类型，例如：shouwang record 家访 --child 王小明 --date 2025-11-18（用 record --help 查看全部类型）",
            ));
        }
    };
    let given = key_values(&args.fields)?;
    // Check what was typed before opening anything or asking anything.
    parse_fields(kind.fields(), &given, true)?;
    let mut a = ctx.open()?;
    let (child, class) = target(&mut a, kind, args, interactive)?;
    if interactive
        && (args.date.is_none()
            || kind
                .fields()
                .iter()
                .any(|f| f.required && !has_value(f, &given)))
    {
        prompt::announce(&format!("填写{}（缺少的项目逐项输入）：", kind.label()));
    }
    let (date, fields) = complete(kind.fields(), args.date.clone(), given, interactive)?;
    let id = a.add_record(&RecordInput {
        kind: kind.key().to_owned(),
        child,
        class,
        date,
        fields,
    })?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id, "kind": kind.key() }));
    }
    ctx.line(format!("已保存{}，编号 {}", kind.label(), id))
}

pub fn edit(ctx: &mut Ctx, id: &str, date: Option<&str>, fields: &[String]) -> Result<()> {
    let kv = key_values(fields)?;
    let mut a = ctx.open()?;
    a.edit_record(id, date, &kv)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id.trim() }));
    }
    ctx.line(format!("已修改记录 {}", id.trim()))
}

pub fn void(ctx: &mut Ctx, id: &str, reason: &str) -> Result<()> {
    let mut a = ctx.open()?;
    a.void_record(id, reason)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id.trim(), "reason": reason.trim() }));
    }
    ctx.line(format!(
        "已作废记录 {}（原因：{}）。记录仍保留在档案中，标明已作废。",
        id.trim(),
        reason.trim()
    ))
}

pub fn progress(ctx: &mut Ctx, plan: &str, date: Option<&str>, fields: &[String]) -> Result<()> {
    let given = key_values(fields)?;
    parse_fields(PROGRESS_FIELDS, &given, true)?;
    let interactive = prompt::interactive();
    let mut a = ctx.open()?;
    a.find_record(plan)?;
    let (date, fields) = complete(PROGRESS_FIELDS, date.map(str::to_owned), given, interactive)?;
    let id = a.add_progress(plan, &date, &fields)?;
    if ctx.json {
        return ctx.json(&serde_json::json!({ "id": id, "plan": plan.trim() }));
    }
    ctx.line(format!("已添加进步档案，编号 {id}"))
}
