//! The core's error type.
//!
//! Every variant's `Display` is a complete sentence in Simplified Chinese that can be shown to a
//! teacher as it is: it names the field or the file at fault and never echoes personal data
//! (a phone number, an ID number) back. The CLI prints it as one line; the FFI layer maps the
//! variants onto its own small error enum.
//!
//! [`untranslated`] is the rule every message shown to a person meets (no English reaches a
//! teacher); each crate's tests apply it to every error it can show.

use std::fmt;

/// Result alias used throughout the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-entered value is not acceptable. `field` is the Chinese field label.
    #[error("{field}填写有误：{reason}")]
    InvalidInput { field: String, reason: String },

    /// A required field was left empty.
    #[error("缺少必填项：{0}")]
    Missing(String),

    /// A child, member, class or record that the user named does not exist.
    #[error("找不到{what}：{key}")]
    NotFound { what: &'static str, key: String },

    /// A name matches more than one entity; the user has to be more specific.
    #[error("“{key}”对应多个{what}，请改用编号")]
    Ambiguous { what: &'static str, key: String },

    /// The action is not allowed for this member or in this state.
    #[error("不允许此操作：{0}")]
    NotPermitted(String),

    /// A bundle, store or document could not be decoded.
    #[error("文件已损坏或不完整：{0}")]
    Corrupt(String),

    /// A bundle from another school.
    #[error("这个文件属于另一所学校，不能导入")]
    WrongSchool,

    /// The store was written by a newer version of the app.
    #[error("数据库版本 {found} 比本程序支持的版本 {supported} 新，请升级守望")]
    StoreTooNew { found: i64, supported: i64 },

    /// The store is encrypted and the key given does not open it (or none was given).
    #[error("档案库已加密，密钥不对，无法打开")]
    Locked,

    /// The file is not a store at all (neither a plain one nor, by its size, an encrypted one).
    #[error("这个文件不是守望的档案库，请检查 --store 指定的文件")]
    NotAStore,

    /// The school revoked this device (a lost phone, a member who left): the hub refuses it,
    /// and the device wipes its store.
    #[error("这台设备已被学校停用，本机上的档案已清除；如有疑问请联系学校管理员")]
    Revoked,

    /// One document in this device's store is damaged (its bytes no longer load): the rest of
    /// the store is readable, and a sync with the hub fetches the document again.
    #[error("本机档案库中的{what}已损坏，其他档案不受影响；联网同步后会从学校服务器重新取回")]
    Damaged { what: String, doc: String },

    /// No store has been set up at this location yet.
    #[error("这台设备还没有建立档案库，请先创建学校或导入学校文件")]
    NotInitialised,

    /// The store was set up without an invite (from a file, or as an office archive), so it
    /// has no network identity and cannot sync with the school's server.
    #[error("这台设备还没有通过邀请码加入学校服务器，请先用邀请码加入")]
    NotEnrolled,

    /// SQLite failed.
    #[error("存储出错：{}", storage_text(.0))]
    Storage(#[from] rusqlite::Error),

    /// Automerge failed on a document we wrote ourselves: a bug or corrupt data. (automerge's
    /// own text is English: it stays in `Debug`, for developers.)
    #[error("文档出错：档案数据不一致，没有保存；请重试，如果反复出现，请联系学校管理员")]
    Document(#[from] automerge::AutomergeError),

    /// Reading or writing a file failed.
    #[error("读写文件失败：{}", io_text(.0))]
    Io(#[from] std::io::Error),
}

/// What a SQLite failure means for the person holding the phone, in Chinese (SQLite's own
/// text is English and says nothing to a teacher).
fn storage_text(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            C::ReadOnly => {
                "档案库文件是只读的，不能保存（请检查文件权限，或存储卡是否写保护）".into()
            }
            C::DiskFull => "存储空间已满，没有保存。请清理出空间后再试".into(),
            C::DatabaseBusy | C::DatabaseLocked => "档案库正被另一个程序使用，请稍后再试".into(),
            C::DatabaseCorrupt => "档案库文件已损坏".into(),
            C::NotADatabase => "这个文件不是档案库，或已加密".into(),
            C::CannotOpen => "无法打开档案库文件（请检查路径和权限）".into(),
            C::PermissionDenied => "没有权限读写档案库文件".into(),
            C::SystemIoFailure => "读写存储时出错（存储卡或磁盘可能有问题，或空间已满）".into(),
            C::OutOfMemory => "内存不足".into(),
            C::TooBig => "内容太大，无法保存".into(),
            C::ConstraintViolation => "数据不一致，没有保存".into(),
            _ => format!("数据库错误（代码 {}）", f.extended_code),
        },
        rusqlite::Error::QueryReturnedNoRows => "找不到需要的数据".into(),
        _ => "数据库操作失败".into(),
    }
}

/// What an I/O failure means, in Chinese (the system's own text is English).
pub fn io_text(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "文件或文件夹不存在".into(),
        K::PermissionDenied => "没有权限".into(),
        K::AlreadyExists => "文件已经存在".into(),
        K::StorageFull => "存储空间已满".into(),
        K::ReadOnlyFilesystem => "存储是只读的".into(),
        K::IsADirectory => "这是一个文件夹，不是文件".into(),
        K::NotADirectory => "路径中有一项不是文件夹".into(),
        K::InvalidData | K::UnexpectedEof => "文件内容不完整或格式不对".into(),
        K::TimedOut => "等待超时".into(),
        K::Interrupted => "操作被中断".into(),
        K::OutOfMemory => "内存不足".into(),
        K::FileTooLarge => "文件太大".into(),
        K::InvalidFilename => "文件名无效".into(),
        _ => match e.raw_os_error() {
            Some(code) => format!("系统错误（代码 {code}）"),
            None => "系统错误".into(),
        },
    }
}

impl Error {
    /// Shorthand for an [`Error::InvalidInput`].
    pub fn invalid(field: impl fmt::Display, reason: impl fmt::Display) -> Self {
        Error::InvalidInput {
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    /// A store path that already holds an archive, which a new one would overwrite. The
    /// path is not named: on a phone it is the app's private directory, which the user has no
    /// use for (whoever chose the path, on a computer, knows it).
    pub fn archive_exists() -> Self {
        Error::NotPermitted("这里已经有一个档案库，不会覆盖它".into())
    }

    /// Shorthand for an [`Error::NotFound`].
    pub fn not_found(what: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            what,
            key: key.to_string(),
        }
    }
}

/// Proper terms a Chinese message may carry as they are: file formats and their extensions,
/// programs and standards a teacher meets by these names. Matched case-insensitively.
#[rustfmt::skip]
pub const ALLOWED_TERMS: &[&str] = &[
    "CSV", "UTF", "Excel", "WPS", "xlsx", "xls", "xlsm", "ods", "txt", "JSON", "TOML", "ID",
    "SQLite", "SQLCipher", "Wi", "Fi", "IP", "HTTP", "HTTPS", "URL", "QR", "PNG", "USB", "PDF",
    "swb", "db", "key", "toml", "shouwang", "GB", "MB", "KB",
    // The school server's parts and signals its operator meets by these names.
    "iroh", "hub", "Ctrl", "SIGTERM", "UDP", "TCP", "TLS", "PEM", "SHA",
];

/// The English in a message meant for a person, by the rule every crate's tests apply
/// (issue 12: no English reaches the user): an empty list if `text` is Simplified Chinese.
///
/// The text must hold at least one Chinese character. Then every ASCII word must be one of:
/// a proper term of [`ALLOWED_TERMS`]; a single letter; a word with a digit in it (a number, an
/// id, `G101`, an invite's `shouwang1`); a long hex id. A run of characters between spaces and
/// Chinese punctuation with a `/` or `\\` is a path or an address, a run starting with `-` a command-line flag (`--store`), one
/// in capitals with `_` an environment variable (`SHOUWANG_STORE`), one ending in a dot and a
/// known extension a file name (`hub-data.key`): all are what the user types or sees on disk as
/// they are. Anything else, `error`, `timed`, `readonly`, `school`, is English that reached the
/// user, and is returned.
pub fn untranslated(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if !text.chars().any(is_chinese) {
        found.push(format!("(no Chinese) {text}"));
    }
    // Chunks end at spaces and Chinese punctuation (a path runs on through the Chinese in a
    // file name: `/tmp/郭庄小学.backup`).
    for chunk in text.split(|c: char| c.is_whitespace() || is_chinese_punctuation(c)) {
        let env_var = chunk.contains('_')
            && chunk
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        // A file name: a known extension after a dot (`hub-data.key`, `名单.xlsx`'s tail).
        let file_name = chunk.rsplit_once('.').is_some_and(|(name, ext)| {
            !name.is_empty() && ALLOWED_TERMS.iter().any(|t| t.eq_ignore_ascii_case(ext))
        });
        if chunk.contains('/')
            || chunk.contains('\\')
            || chunk.starts_with('-')
            || env_var
            || file_name
        {
            continue;
        }
        // Flags inside a chunk (`<--lan-addr <地址>|--local-only>`, `--field=…`).
        let chunk = without_flags(chunk);
        for word in chunk.split(|c: char| !c.is_ascii_alphanumeric()) {
            let hex_id = word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit());
            if word.len() <= 1
                || word.bytes().any(|b| b.is_ascii_digit())
                || hex_id
                || ALLOWED_TERMS.iter().any(|t| t.eq_ignore_ascii_case(word))
            {
                continue;
            }
            found.push(word.to_owned());
        }
    }
    found
}

/// Every message of `errors` held to [`untranslated`]: how many there were, or the first one
/// with English in it, and its English. The tests of each crate check their errors with it.
pub fn check_translated<E: fmt::Debug + fmt::Display>(
    errors: impl IntoIterator<Item = E>,
) -> std::result::Result<usize, String> {
    let mut checked = 0;
    for e in errors {
        let text = e.to_string();
        let english = untranslated(&text);
        if !english.is_empty() {
            return Err(format!("{e:?} → {text}: {english:?}"));
        }
        checked += 1;
    }
    Ok(checked)
}

/// The keys a person types on the command line and that messages offer back (`可选：summary、
/// registry…`, `请用 --field notes=… 填写`): record kinds and their fields, the sections of a
/// child's file and theirs, progress fields, roles, consent scopes, reports and rules. Taken
/// from the tables that define them, so a new key is here without being listed. A caller of
/// [`untranslated`] on a message that may name them leaves them out first, as the user's own
/// words.
pub fn input_keys() -> Vec<&'static str> {
    use crate::kinds::{PROGRESS_FIELDS, RecordKind, SECTIONS};
    let mut keys = Vec::new();
    for kind in RecordKind::ALL {
        keys.push(kind.key());
        keys.extend(kind.fields().iter().map(|f| f.key));
    }
    for section in SECTIONS {
        keys.push(section.key);
        keys.extend(section.fields.iter().map(|f| f.key));
    }
    keys.extend(PROGRESS_FIELDS.iter().map(|f| f.key));
    keys.extend(crate::roles::Role::ALL.iter().map(|r| r.key()));
    keys.extend(crate::consent::Cover::ALL.iter().map(|c| c.key()));
    keys.extend(crate::reports::REPORTS.iter().map(|r| r.key));
    keys.extend(crate::rules::RULES.iter().map(|r| r.key));
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// [`untranslated`], with the user's own words left out first: what the person typed (names,
/// paths, `key=value`'s key), commands' names, [`input_keys`]. Each is taken out where it stands
/// as a whole word (`-f` is not taken out of `--field`), longest first.
pub fn untranslated_except(text: &str, words: &[&str]) -> Vec<String> {
    let mut words: Vec<&str> = words.iter().copied().filter(|w| !w.is_empty()).collect();
    words.sort_by_key(|w| std::cmp::Reverse(w.len()));
    let rest = words
        .iter()
        .fold(text.to_owned(), |t, w| without_word(&t, w));
    untranslated(&rest)
}

/// `text` with each whole-word occurrence of `word` blanked.
fn without_word(text: &str, word: &str) -> String {
    let wordy = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let (starts_wordy, ends_wordy) = (wordy(word.chars().next()), wordy(word.chars().last()));
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(word) {
        let before = rest[..at].chars().last().or_else(|| out.chars().last());
        let after = rest[at + word.len()..].chars().next();
        out.push_str(&rest[..at]);
        if (starts_wordy && wordy(before)) || (ends_wordy && wordy(after)) {
            out.push_str(word);
        } else {
            out.push(' ');
        }
        rest = &rest[at + word.len()..];
    }
    out.push_str(rest);
    out
}

/// `chunk` without its `--flag`s.
fn without_flags(chunk: &str) -> String {
    let mut out = String::new();
    let mut rest = chunk;
    while let Some(at) = rest.find("--") {
        out.push_str(&rest[..at]);
        let flag = rest[at..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len() - at);
        out.push(' ');
        rest = &rest[at + flag..];
    }
    out.push_str(rest);
    out
}

fn is_chinese_punctuation(c: char) -> bool {
    matches!(c, '\u{2010}'..='\u{206f}' | '\u{3000}'..='\u{303f}' | '\u{ff00}'..='\u{ffef}')
}

fn is_chinese(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_rule_finds_english_and_lets_proper_terms_be() {
        assert!(untranslated("找不到学生：王小雨").is_empty());
        assert!(untranslated("请用 Excel 或 WPS 另存为 .xlsx 或 CSV UTF-8 再导入").is_empty());
        assert!(untranslated("请检查 --store 指定的文件：/tmp/x/shouwang.db").is_empty());
        assert!(untranslated("学生档案（编号 0a1b2c3d4e5f6a7b）已损坏").is_empty());
        assert!(untranslated("也可用环境变量 SHOUWANG_STORE 指定").is_empty());
        assert!(untranslated("如学校服务器的 hub-data.key").is_empty());
        assert!(untranslated("错误：/tmp/x/郭庄小学.backup 已存在，不会覆盖").is_empty());
        assert!(!untranslated("郭庄小学.backup 已存在").is_empty());
        assert!(!untranslated("文档出错：invalid op").is_empty());
        assert!(!untranslated("shoe填写有误").is_empty());
        assert!(untranslated("用法：shouwang <--pick <序号>|--value <值>>").is_empty());
        assert!(untranslated_except("shoe填写有误", &["shoe"]).is_empty());
        assert!(untranslated_except("（请用 --field notes=… 填写）", &["-f", "notes"]).is_empty());
        assert!(!untranslated_except("shoes填写有误", &["shoe"]).is_empty());
        assert!(!untranslated("如学校服务器的 hub-data").is_empty());
        for (text, word) in [
            ("存储出错：attempt to write a readonly database", "readonly"),
            (
                "名单文件：Xlsx error: Zip error: invalid Zip archive",
                "Zip",
            ),
            ("连接失败：timed out", "timed"),
            (
                "文件已损坏或不完整：school：对方发来的档案数据已损坏",
                "school",
            ),
            ("thread 'main' panicked at src/x.rs:1:1", "panicked"),
        ] {
            let found = untranslated(text);
            assert!(found.iter().any(|w| w == word), "{text}: {found:?}");
        }
        assert!(!untranslated("database is locked").is_empty());
    }

    /// One error of every variant, each variant that wraps another library's error with what
    /// that library reports in English. The `match` lists every variant: adding one without a
    /// case here does not compile.
    fn every_error() -> Vec<Error> {
        use rusqlite::ffi;
        let sqlite = |code: i32, text: &str| {
            Error::Storage(rusqlite::Error::SqliteFailure(
                ffi::Error::new(code),
                Some(text.to_owned()),
            ))
        };
        let mut all = vec![
            Error::invalid("出生日期", "“2025-02-30”不是有效日期"),
            Error::Missing("姓名".into()),
            Error::not_found("学生", "张不在"),
            Error::Ambiguous {
                what: "学生",
                key: "王小雨".into(),
            },
            Error::NotPermitted("只有班主任可以修改".into()),
            Error::Corrupt("数据文件不完整".into()),
            Error::WrongSchool,
            Error::StoreTooNew {
                found: 99,
                supported: 9,
            },
            Error::Locked,
            Error::NotAStore,
            Error::Revoked,
            Error::Damaged {
                what: "学校信息".into(),
                doc: "school".into(),
            },
            Error::NotInitialised,
            Error::NotEnrolled,
            Error::Document(automerge::AutomergeError::InvalidOp(
                automerge::ObjType::Map,
            )),
        ];
        // SQLite, as it fails: every primary result code, with SQLite's English text.
        for code in 1..=28 {
            all.push(sqlite(code, "attempt to write a readonly database"));
        }
        all.push(sqlite(ffi::SQLITE_IOERR_SHORT_READ, "disk I/O error"));
        all.push(Error::Storage(rusqlite::Error::QueryReturnedNoRows));
        all.push(Error::Storage(rusqlite::Error::InvalidColumnName(
            "no such column".into(),
        )));
        all.push(Error::Storage(rusqlite::Error::ExecuteReturnedResults));
        // The system, as it fails: every kind of I/O error, with the system's English text.
        use std::io::ErrorKind as K;
        for kind in [
            K::NotFound,
            K::PermissionDenied,
            K::ConnectionRefused,
            K::ConnectionReset,
            K::ConnectionAborted,
            K::NotConnected,
            K::AddrInUse,
            K::AddrNotAvailable,
            K::BrokenPipe,
            K::AlreadyExists,
            K::WouldBlock,
            K::InvalidInput,
            K::InvalidData,
            K::TimedOut,
            K::WriteZero,
            K::Interrupted,
            K::Unsupported,
            K::UnexpectedEof,
            K::OutOfMemory,
            K::Other,
            K::StorageFull,
            K::ReadOnlyFilesystem,
            K::IsADirectory,
            K::NotADirectory,
            K::FileTooLarge,
            K::InvalidFilename,
        ] {
            all.push(Error::Io(std::io::Error::new(kind, "timed out")));
        }
        // EACCES, ENOSPC, EROFS, EIO.
        for os in [13, 28, 30, 5] {
            all.push(Error::Io(std::io::Error::from_raw_os_error(os)));
        }
        for e in &all {
            // Every variant has a case: a new one must be added above.
            match e {
                Error::InvalidInput { .. }
                | Error::Missing(_)
                | Error::NotFound { .. }
                | Error::Ambiguous { .. }
                | Error::NotPermitted(_)
                | Error::Corrupt(_)
                | Error::WrongSchool
                | Error::StoreTooNew { .. }
                | Error::Locked
                | Error::NotAStore
                | Error::Revoked
                | Error::Damaged { .. }
                | Error::NotInitialised
                | Error::NotEnrolled
                | Error::Storage(_)
                | Error::Document(_)
                | Error::Io(_) => {}
            }
        }
        all
    }

    #[test]
    fn every_error_reads_in_chinese() {
        check_translated(every_error()).unwrap();
    }
}
