//! Forms: the typed fields of profiles and care records.
//!
//! A form is a static list of [`FieldSpec`]s. The same list drives validation of user input
//! (every message in Chinese, naming the field), the layout of the automerge document (one map
//! key per field; free text as automerge Text), the CLI's prompts and the FFI's field lists, so a
//! record kind is described once.

use chrono::NaiveDate;
use serde::Serialize;

use crate::dates::parse_date;
use crate::error::{Error, Result};

/// What a field holds and how it is stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    /// Free text, stored as automerge Text so concurrent edits merge character-wise.
    Text,
    /// A short line (a name, an address), stored as a string: concurrent edits are a conflict.
    Line,
    /// A phone number.
    Phone,
    /// A calendar date, stored as `YYYY-MM-DD`.
    Date,
    /// A whole number within bounds.
    Int { min: i64, max: i64 },
    /// A decimal number within bounds (height, vision).
    Decimal { min: f64, max: f64 },
    /// Yes or no.
    Bool,
    /// One of a fixed set of `(key, Chinese label)` choices; stored as the key.
    Choice(&'static [(&'static str, &'static str)]),
}

/// One field of a form.
#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    /// Key in the document.
    pub key: &'static str,
    /// Chinese label shown to people.
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
}

impl FieldSpec {
    /// A required field.
    pub const fn req(key: &'static str, label: &'static str, kind: FieldKind) -> Self {
        FieldSpec {
            key,
            label,
            kind,
            required: true,
        }
    }

    /// An optional field.
    pub const fn opt(key: &'static str, label: &'static str, kind: FieldKind) -> Self {
        FieldSpec {
            key,
            label,
            kind,
            required: false,
        }
    }

    /// Parses what a person typed into a value of this field's kind. Control characters (an
    /// ANSI escape sequence, a stray newline in a one-line field) are refused: they would
    /// rewrite the screen of whoever lists the value later.
    pub fn parse(&self, raw: &str) -> Result<FieldValue> {
        let s = raw.trim();
        if s.is_empty() && !matches!(self.kind, FieldKind::Text) {
            return Err(Error::Missing(self.label.to_owned()));
        }
        match self.kind {
            FieldKind::Text => {
                check_text(self.label, raw)?;
                let text = raw.trim_end();
                if text.chars().count() > MAX_NOTE_CHARS {
                    return Err(Error::invalid(
                        self.label,
                        format!(
                            "太长了（{} 字），一项最多{MAX_NOTE_CHARS}字；可以分成几条记录",
                            text.chars().count()
                        ),
                    ));
                }
                Ok(FieldValue::Text(text.to_owned()))
            }
            FieldKind::Line => {
                check_line(self.label, s, 200)?;
                Ok(FieldValue::Str(s.to_owned()))
            }
            FieldKind::Phone => parse_phone(self.label, s).map(FieldValue::Str),
            FieldKind::Date => parse_date(self.label, s).map(FieldValue::Date),
            FieldKind::Int { min, max } => {
                let n: i64 = s
                    .parse()
                    .map_err(|_| Error::invalid(self.label, format!("“{s}”不是整数")))?;
                if !(min..=max).contains(&n) {
                    return Err(Error::invalid(self.label, format!("应在{min}到{max}之间")));
                }
                Ok(FieldValue::Int(n))
            }
            FieldKind::Decimal { min, max } => {
                let n: f64 = s
                    .parse()
                    .map_err(|_| Error::invalid(self.label, format!("“{s}”不是数字")))?;
                if !n.is_finite() || n < min || n > max {
                    return Err(Error::invalid(self.label, format!("应在{min}到{max}之间")));
                }
                Ok(FieldValue::F64(n))
            }
            FieldKind::Bool => match s {
                "是" | "有" | "y" | "yes" | "true" | "1" | "Y" | "√" => {
                    Ok(FieldValue::Bool(true))
                }
                "否" | "无" | "n" | "no" | "false" | "0" | "N" | "×" => {
                    Ok(FieldValue::Bool(false))
                }
                _ => Err(Error::invalid(self.label, "请填“是”或“否”")),
            },
            FieldKind::Choice(choices) => choices
                .iter()
                .find(|(k, l)| *k == s || *l == s)
                .map(|(k, _)| FieldValue::Str((*k).to_owned()))
                .ok_or_else(|| {
                    let labels: Vec<&str> = choices.iter().map(|(_, l)| *l).collect();
                    Error::invalid(self.label, format!("可选：{}", labels.join("、")))
                }),
        }
    }

    /// Shows a stored value to a person (choice keys become labels, booleans 是/否).
    pub fn display(&self, value: &FieldValue) -> String {
        match (self.kind, value) {
            (FieldKind::Choice(choices), FieldValue::Str(k)) => choices
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, l)| (*l).to_owned())
                .unwrap_or_else(|| k.clone()),
            _ => value.to_string(),
        }
    }
}

/// Validates a phone number: 7–15 digits, optional leading `+`, spaces and hyphens allowed
/// (`0564-4552466`, `138 0000 0000`). Returned without spaces.
pub fn parse_phone(label: &str, s: &str) -> Result<String> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = compact.chars().filter(char::is_ascii_digit).count();
    let shape_ok = compact
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || c == '-' || (c == '+' && i == 0));
    if !shape_ok || !(7..=15).contains(&digits) {
        return Err(Error::invalid(label, "不是有效的电话号码"));
    }
    if compact.starts_with('1') && digits != 11 && !compact.contains('-') {
        return Err(Error::invalid(label, "手机号应为11位"));
    }
    Ok(compact)
}

/// The longest note (one free-text field of a record), in characters. A 家访 or 谈心 on the
/// seeds' paper forms fills one page, a few hundred characters; 5,000 is several pages, and
/// keeps a year of a child's records small enough to open at once on a cheap phone
/// (BENCHMARKS §13).
pub const MAX_NOTE_CHARS: usize = 5_000;

/// The longest name of a member (and of the administrator a school is set up with), in
/// characters. The office console refuses a longer login name before it looks it up.
pub const MAX_MEMBER_NAME_CHARS: usize = 50;

/// A typed value of a field.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    Text(String),
    Str(String),
    Int(i64),
    F64(f64),
    Bool(bool),
    Date(NaiveDate),
}

impl FieldValue {
    /// Whether this is an empty string (a note left blank or cleared).
    pub fn is_empty_text(&self) -> bool {
        matches!(self, FieldValue::Text(t) | FieldValue::Str(t) if t.is_empty())
    }
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Text(s) | FieldValue::Str(s) => f.write_str(s),
            FieldValue::Int(n) => write!(f, "{n}"),
            FieldValue::F64(n) => write!(f, "{n}"),
            FieldValue::Bool(b) => f.write_str(if *b { "是" } else { "否" }),
            FieldValue::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
        }
    }
}

/// Validates `(key, raw)` pairs against a form. Unknown keys, and (unless `partial`, for an edit
/// of some fields) required fields that are missing or empty, are refused; the first problem is
/// reported. Returns the parsed values in form order.
pub fn parse_fields(
    form: &'static [FieldSpec],
    raw: &[(String, String)],
    partial: bool,
) -> Result<Vec<(&'static FieldSpec, FieldValue)>> {
    for (key, _) in raw {
        if !form.iter().any(|f| f.key == key || f.label == key) {
            let known: Vec<&str> = form.iter().map(|f| f.key).collect();
            return Err(Error::invalid(
                key,
                format!("没有这一项，可填：{}", known.join("、")),
            ));
        }
    }
    let mut out = Vec::new();
    for spec in form {
        let given = raw
            .iter()
            .rev()
            .find(|(k, _)| k == spec.key || k == spec.label);
        match given {
            Some((_, v)) if !v.trim().is_empty() => out.push((spec, spec.parse(v)?)),
            Some(_) if spec.required => return Err(Error::Missing(spec.label.to_owned())),
            Some(_) if matches!(spec.kind, FieldKind::Text) => {
                out.push((spec, FieldValue::Text(String::new())))
            }
            Some(_) => {}
            None if spec.required && !partial => {
                return Err(Error::Missing(spec.label.to_owned()));
            }
            None => {}
        }
    }
    Ok(out)
}

/// Finds a field of a form by key or label.
pub fn field<'a>(form: &'a [FieldSpec], key: &str) -> Option<&'a FieldSpec> {
    form.iter().find(|f| f.key == key || f.label == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    static FORM: [FieldSpec; 4] = [
        FieldSpec::req("notes", "记录内容", FieldKind::Text),
        FieldSpec::opt("phone", "电话", FieldKind::Phone),
        FieldSpec::opt("age", "年龄", FieldKind::Int { min: 0, max: 120 }),
        FieldSpec::opt(
            "who",
            "对象",
            FieldKind::Choice(&[("father", "父亲"), ("mother", "母亲")]),
        ),
    ];

    fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn parses_by_key_or_label_and_maps_choices() {
        let got = parse_fields(
            &FORM,
            &kv(&[
                ("记录内容", "奶奶说孩子最近很乖"),
                ("who", "母亲"),
                ("age", "67"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].1, FieldValue::Str("mother".into()));
        assert_eq!(FORM[3].display(&got[2].1), "母亲");
    }

    #[test]
    fn refuses_missing_unknown_and_bad_values() {
        let e = parse_fields(&FORM, &kv(&[("age", "5")]), false).unwrap_err();
        assert_eq!(e.to_string(), "缺少必填项：记录内容");
        assert!(parse_fields(&FORM, &kv(&[("age", "5")]), true).is_ok());
        let e = parse_fields(&FORM, &kv(&[("notes", "x"), ("shoe", "1")]), false).unwrap_err();
        assert!(e.to_string().contains("没有这一项"), "{e}");
        let e = parse_fields(&FORM, &kv(&[("notes", "x"), ("age", "200")]), false).unwrap_err();
        assert_eq!(e.to_string(), "年龄填写有误：应在0到120之间");
        let e = parse_fields(&FORM, &kv(&[("notes", "x"), ("phone", "12ab")]), false).unwrap_err();
        assert!(e.to_string().starts_with("电话填写有误"), "{e}");
    }

    #[test]
    fn a_note_longer_than_the_cap_is_refused_in_chinese() {
        let spec = FieldSpec::req("notes", "情况记录", FieldKind::Text);
        let at_cap = "字".repeat(MAX_NOTE_CHARS);
        assert_eq!(
            spec.parse(&at_cap).unwrap(),
            FieldValue::Text(at_cap.clone())
        );
        let e = spec.parse(&format!("{at_cap}多")).unwrap_err().to_string();
        assert!(e.starts_with("情况记录填写有误：太长了（5001 字）"), "{e}");
    }

    #[test]
    fn phone_numbers() {
        assert_eq!(parse_phone("电话", "138 0000 1234").unwrap(), "13800001234");
        assert_eq!(parse_phone("电话", "0564-4552466").unwrap(), "0564-4552466");
        assert!(parse_phone("电话", "1380000123").is_err());
        assert!(parse_phone("电话", "110").is_err());
    }
}

/// Checks a one-line value a person typed (a name, a place): no control characters (newlines,
/// ANSI escape sequences), at most `max` characters.
pub fn check_line(label: &str, s: &str, max: usize) -> Result<()> {
    if s.chars().any(char::is_control) {
        return Err(Error::invalid(label, "不能含有换行或控制字符"));
    }
    if s.chars().count() > max {
        return Err(Error::invalid(label, format!("太长了，最多{max}个字")));
    }
    Ok(())
}

/// Checks free text (a note): line breaks and tabs are fine, other control characters (an ANSI
/// escape sequence) are not.
pub fn check_text(label: &str, s: &str) -> Result<()> {
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Error::invalid(label, "不能含有控制字符"));
    }
    Ok(())
}

#[cfg(test)]
mod hygiene {
    use super::*;

    #[test]
    fn control_characters_are_refused_where_people_would_see_them() {
        assert!(check_line("姓名", "王瑞侠", 50).is_ok());
        for bad in ["王\u{1b}[31m瑞侠", "王\n瑞侠", "王\t瑞侠", "\u{7}"] {
            let e = check_line("姓名", bad, 50).unwrap_err().to_string();
            assert!(e.contains("控制字符"), "{e}");
        }
        assert!(check_line("姓名", &"王".repeat(51), 50).is_err());
        assert!(check_text("备注", "第一行\n第二行\t缩进").is_ok());
        assert!(check_text("备注", "红字\u{1b}[31m").is_err());
    }
}
