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

    /// The school revoked this device (a lost phone, a member who left): the hub refuses it,
    /// and the device wipes its store.
    #[error("这台设备已被学校停用，本机上的档案已清除；如有疑问请联系学校管理员")]
    Revoked,

    /// No store has been set up at this location yet.
    #[error("这台设备还没有建立档案库，请先创建学校或导入学校文件")]
    NotInitialised,

    /// SQLite failed.
    #[error("存储出错：{0}")]
    Storage(#[from] rusqlite::Error),

    /// Automerge failed on a document we wrote ourselves: a bug or corrupt data.
    #[error("文档出错：{0}")]
    Document(#[from] automerge::AutomergeError),

    /// Reading or writing a file failed.
    #[error("读写文件失败：{0}")]
    Io(#[from] std::io::Error),
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
