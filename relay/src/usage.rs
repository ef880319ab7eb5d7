//! Help and command-line mistakes, in Chinese, for both binaries (`shouwang`, `shouwang-relay`).
//!
//! clap renders help with a few fixed English words; they are replaced here. A command-line
//! mistake becomes one Chinese line on stderr, like every other error.

use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Display width of a character in a terminal: 2 for CJK and full-width forms, else 1.
fn char_width(c: char) -> usize {
    let u = c as u32;
    let wide = matches!(u,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x20000..=0x3FFFD);
    if wide { 2 } else { 1 }
}

/// Display width of a string.
pub fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// clap's fixed English words and their Chinese replacements, longest first.
const WORDS: &[(&str, &str)] = &[
    (
        "Print this message or the help of the given subcommand(s)",
        "显示帮助（也可查看某个命令的帮助）",
    ),
    ("Print help", "显示帮助"),
    ("Print version", "显示版本"),
    ("Usage: ", "用法："),
    ("\n       shouwang", "\n      shouwang"),
    ("通用选项:", "通用选项："),
    ("Usage:", "用法："),
    ("Options:", "选项："),
    ("Arguments:", "参数："),
    ("Commands:", "命令："),
    ("[OPTIONS]", "[选项]"),
    ("<COMMAND>", "<命令>"),
    ("[COMMAND]", "[命令]"),
    ("[default: ", "[默认："),
];

/// Help text with clap's English words replaced and its columns aligned by display width.
pub fn localise(help: &str) -> String {
    let text = WORDS
        .iter()
        .fold(help.to_owned(), |s, (en, zh)| s.replace(en, zh));
    realign(&text)
}

/// Splits an indented help line into its left column (with the indent) and its description.
fn columns(line: &str) -> Option<(&str, &str)> {
    let indent = line.len() - line.trim_start().len();
    let gap = line[indent..].find("  ")? + indent;
    let help = line[gap..].trim_start();
    (!help.is_empty()).then(|| (&line[..gap], help))
}

/// clap pads its two-column lists by counting characters; Chinese characters are two columns
/// wide in a terminal, so each indented block is padded again by display width.
fn realign(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("  ") {
            out.push(lines[i].to_owned());
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && lines[i].starts_with("  ") {
            i += 1;
        }
        let block = &lines[start..i];
        let parts: Vec<Option<(&str, &str)>> = block.iter().map(|l| columns(l)).collect();
        let left = parts.iter().flatten().map(|(l, _)| width(l)).max();
        for (line, part) in block.iter().zip(&parts) {
            match (part, left) {
                (Some((l, h)), Some(w)) => {
                    out.push(format!("{l}{}{h}", " ".repeat(w - width(l) + 2)));
                }
                _ => out.push((*line).to_owned()),
            }
        }
    }
    out.join("\n")
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    e.get(kind).map(|v| match v {
        ContextValue::String(s) => s.clone(),
        ContextValue::Strings(v) => v.join("、"),
        other => other.to_string(),
    })
}

/// The Chinese sentence for a command-line mistake of the binary `bin`.
pub fn message(e: &clap::Error, bin: &str) -> String {
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
    let arg = localise(&arg);
    match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let suggestion = context(e, ContextKind::SuggestedSubcommand)
                .map(|s| format!("，是不是要用 {s}？"))
                .unwrap_or_else(|| format!("，请用 {bin} --help 查看可用命令"));
            let name = context(e, ContextKind::InvalidSubcommand).unwrap_or(value);
            format!("没有“{}”这个命令{}", name.trim(), suggestion)
        }
        ErrorKind::UnknownArgument => {
            let suggestion = context(e, ContextKind::SuggestedArg)
                .map(|s| format!("，是不是要用 {s}？"))
                .unwrap_or_else(|| "，请用 --help 查看用法".to_owned());
            format!("不认识的参数“{}”{}", arg.trim(), suggestion)
        }
        ErrorKind::MissingRequiredArgument => {
            // A required group shows as `<--pick <序号>|--value <值>>`.
            let arg = match arg.strip_prefix("<--").and_then(|a| a.strip_suffix('>')) {
                Some(group) => format!("--{}", group.replace('|', " 或 ")),
                None => arg,
            };
            format!("缺少参数：{arg}")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "缺少命令，请用 --help 查看可用命令".to_owned()
        }
        ErrorKind::ArgumentConflict => {
            let other = context(e, ContextKind::PriorArg).unwrap_or_default();
            format!("参数 {arg} 不能与 {} 同时使用", localise(&other))
        }
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            format!("参数 {arg} 的值“{value}”无效")
        }
        ErrorKind::NoEquals => format!("参数 {arg} 需要用 = 给出值"),
        ErrorKind::TooManyValues | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            format!("参数 {arg} 的值的个数不对")
        }
        ErrorKind::InvalidUtf8 => "参数中有无法识别的文字编码".to_owned(),
        _ => "命令行参数有误，请用 --help 查看用法".to_owned(),
    }
}

/// Prints help, the version, or a one-line mistake of the binary `bin`, and returns the exit
/// code.
pub fn report(e: &clap::Error, bin: &str) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print!("{}", localise(&e.render().to_string()));
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", localise(&e.render().to_string()));
            ExitCode::from(2)
        }
        _ => {
            eprintln!("错误：{}", message(e, bin).replace(['\r', '\n'], " "));
            ExitCode::from(2)
        }
    }
}
