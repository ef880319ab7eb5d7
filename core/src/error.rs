//! The core's error type.
//!
//! Every variant's `Display` is a complete sentence in Simplified Chinese that can be shown to a
//! teacher as it is: it names the field or the file at fault and never echoes personal data
//! (a phone number, an ID number) back. The CLI prints it as one line; the FFI layer maps the
//! variants onto its own small error enum.

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

    /// SQLite failed.
    #[error("存储出错：{}", storage_text(.0))]
    Storage(#[from] rusqlite::Error),

    /// Automerge failed on a document we wrote ourselves: a bug or corrupt data.
    #[error("文档出错：{0}")]
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

    /// Shorthand for an [`Error::NotFound`].
    pub fn not_found(what: &'static str, key: impl fmt::Display) -> Self {
        Error::NotFound {
            what,
            key: key.to_string(),
        }
    }
}
