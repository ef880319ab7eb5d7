//! Asking for what is missing, in Chinese, when a person is at the terminal.
//!
//! Prompts go to stderr so that stdout stays clean. Each answer is checked at once with the
//! field's own rules and asked again if it is wrong. When stdin is not a terminal nothing is
//! asked: the command fails naming the first missing field instead.

use std::io::{BufRead, IsTerminal, Write};

use shouwang_core::bundle::seal::Passphrase;
use shouwang_core::dates::parse_date;
use shouwang_core::forms::{FieldKind, FieldSpec};

use crate::error::{CliError, Result};

/// Whether a person can be asked (stdin is a terminal).
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// How to fill in a field, shown after its label.
fn hint(spec: &FieldSpec) -> String {
    match spec.kind {
        FieldKind::Choice(choices) => {
            let labels: Vec<&str> = choices.iter().map(|(_, l)| *l).collect();
            format!("（可选：{}）", labels.join("、"))
        }
        FieldKind::Bool => "（是/否）".to_owned(),
        FieldKind::Date => "（如 2025-11-18）".to_owned(),
        FieldKind::Int { min, max } => format!("（{min}到{max}之间的整数）"),
        FieldKind::Decimal { min, max } => format!("（{min}到{max}之间的数字）"),
        FieldKind::Phone => "（电话号码）".to_owned(),
        FieldKind::Text | FieldKind::Line => String::new(),
    }
}

/// Asks one line; `None` at the end of input.
fn ask_line(question: &str) -> Result<Option<String>> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question}：")?;
    err.flush()?;
    drop(err);
    let mut line = String::new();
    let n = std::io::stdin().lock().read_line(&mut line)?;
    if n == 0 {
        eprintln!();
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\n', '\r']).to_owned()))
}

/// Asks until the answer is non-empty and `check` accepts it.
fn ask_until(
    question: &str,
    what: &str,
    mut check: impl FnMut(&str) -> Result<()>,
) -> Result<String> {
    loop {
        let Some(answer) = ask_line(question)? else {
            return Err(CliError::msg(format!("输入已结束，没有填写{what}")));
        };
        if answer.trim().is_empty() {
            eprintln!("  {what}不能为空，请重新输入。");
            continue;
        }
        match check(&answer) {
            Ok(()) => return Ok(answer),
            Err(e) => eprintln!("  {e}（请重新输入）"),
        }
    }
}

/// Asks for the date a thing happened; an empty answer means `today`.
pub fn ask_date(today: &str) -> Result<String> {
    loop {
        let Some(answer) = ask_line(&format!("日期（如 2025-11-18，直接回车为今天 {today}）"))?
        else {
            return Err(CliError::msg("输入已结束，没有填写日期"));
        };
        let answer = if answer.trim().is_empty() {
            today.to_owned()
        } else {
            answer
        };
        match parse_date("日期", &answer) {
            Ok(_) => return Ok(answer),
            Err(e) => eprintln!("  {e}（请重新输入）"),
        }
    }
}

/// Asks for a field of a form, showing its Chinese label.
pub fn ask_field(spec: &FieldSpec) -> Result<String> {
    let question = format!("{}{}", spec.label, hint(spec));
    ask_until(&question, spec.label, |s| {
        spec.parse(s).map(|_| ()).map_err(CliError::from)
    })
}

/// Asks for a free-form value (a child's name) that `check` verifies.
pub fn ask_value(label: &str, check: impl FnMut(&str) -> Result<()>) -> Result<String> {
    ask_until(label, label, check)
}

/// Asks for the passphrase of a file that sets up a new device.
pub fn ask_passphrase(label: &str) -> Result<Passphrase> {
    let answer = ask_until(label, "口令", |s| {
        Passphrase::parse(s).map(|_| ()).map_err(CliError::from)
    })?;
    Ok(Passphrase::parse(&answer)?)
}

/// Tells the person what is about to be asked.
pub fn announce(text: &str) {
    eprintln!("{text}");
}
