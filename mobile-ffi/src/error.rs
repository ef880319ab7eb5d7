//! [`ShouwangError`]: the one error the apps see, converted from the core's and the
//! transport's errors here and nowhere else.
//!
//! Each variant says what the app should do; `msg` is always a complete Simplified Chinese
//! sentence that can be shown as it is. It never carries personal data: the core's messages
//! name the field or file at fault, never the value a person typed into a phone or ID field,
//! and network failures are reduced to fixed sentences (the transport's own details are in
//! English and may name addresses).

use shouwang_core::Error as CoreError;
use shouwang_relay::transport::TransportError;

/// Why a call failed. In Kotlin this is `ShouwangException` with one subclass per variant;
/// `e.msg` (and `toString()`) is the Chinese sentence to show. (uniffi's generated `message`
/// property lists the fields as `name=value` and is meant for logs.)
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[uniffi::export(Display)]
pub enum ShouwangError {
    /// A value entered is not acceptable (a bad date, an ID-card number failing its check
    /// digit, a required field left empty). `field` is the Chinese label of the field at
    /// fault: show the message beside it. Nothing was written.
    #[error("{msg}")]
    InvalidInput { field: String, msg: String },
    /// The child, record, class or conflict named does not exist on this device (or no
    /// longer does): refresh the screen.
    #[error("{msg}")]
    NotFound { msg: String },
    /// This device has not joined the school server with an invite (or has no store yet):
    /// ask for an invite and call `ShouwangClient.join`.
    #[error("{msg}")]
    NotEnrolled { msg: String },
    /// This member may not do this (another teacher's record, a private file, a kind of
    /// record the role does not write), or the school server refused the device.
    #[error("{msg}")]
    NotPermitted { msg: String },
    /// The school revoked this device (reported as lost, or its member left): the store has
    /// been wiped. Close the client, delete the store's key from the keystore and show the
    /// message; the device can only enroll again with a new invite.
    #[error("{msg}")]
    Revoked { msg: String },
    /// The key does not open the store: the keystore's key was lost or is not this store's.
    #[error("{msg}")]
    Locked { msg: String },
    /// The store could not be read or written (disk full, damaged file, a newer app's
    /// store). Nothing was written.
    #[error("{msg}")]
    Storage { msg: String },
    /// The school server or the other device could not be reached, or the connection broke.
    /// Everything received so far is kept; try again later.
    #[error("{msg}")]
    Network { msg: String },
    /// The operation was stopped before it finished (the client was closing). Everything
    /// written so far is consistent.
    #[error("{msg}")]
    Cancelled { msg: String },
    /// A bug: please report it.
    #[error("{msg}")]
    Internal { msg: String },
}

impl ShouwangError {
    pub(crate) fn cancelled() -> ShouwangError {
        ShouwangError::Cancelled {
            msg: "操作已取消".into(),
        }
    }

    pub(crate) fn internal() -> ShouwangError {
        ShouwangError::Internal {
            msg: "内部错误，请重试；如果反复出现，请联系学校管理员".into(),
        }
    }

    pub(crate) fn invalid(field: &str, msg: String) -> ShouwangError {
        ShouwangError::InvalidInput {
            field: field.to_owned(),
            msg,
        }
    }

    /// The Chinese message (every variant has one).
    pub fn message(&self) -> &str {
        match self {
            ShouwangError::InvalidInput { msg, .. }
            | ShouwangError::NotFound { msg }
            | ShouwangError::NotEnrolled { msg }
            | ShouwangError::NotPermitted { msg }
            | ShouwangError::Locked { msg }
            | ShouwangError::Revoked { msg }
            | ShouwangError::Storage { msg }
            | ShouwangError::Network { msg }
            | ShouwangError::Cancelled { msg }
            | ShouwangError::Internal { msg } => msg,
        }
    }
}

impl From<CoreError> for ShouwangError {
    fn from(e: CoreError) -> Self {
        let msg = e.to_string();
        match e {
            CoreError::InvalidInput { field, .. } => ShouwangError::InvalidInput { field, msg },
            CoreError::Missing(field) => ShouwangError::InvalidInput { field, msg },
            CoreError::Ambiguous { what, .. } => ShouwangError::InvalidInput {
                field: what.to_owned(),
                msg,
            },
            // The core names the key looked up; to a person an id means nothing, and a name
            // would be personal data.
            CoreError::NotFound { what, .. } => ShouwangError::NotFound {
                msg: format!("找不到这个{what}，可能已被删除或还没有同步到本机，请刷新后再试"),
            },
            CoreError::NotPermitted(_) | CoreError::WrongSchool => {
                ShouwangError::NotPermitted { msg }
            }
            CoreError::NotInitialised | CoreError::NotEnrolled => {
                ShouwangError::NotEnrolled { msg }
            }
            CoreError::Locked => ShouwangError::Locked { msg },
            CoreError::Revoked => ShouwangError::Revoked { msg },
            CoreError::Corrupt(_)
            | CoreError::NotAStore
            | CoreError::Damaged { .. }
            | CoreError::StoreTooNew { .. }
            | CoreError::Storage(_)
            | CoreError::Document(_)
            | CoreError::Io(_) => ShouwangError::Storage { msg },
        }
    }
}

impl From<TransportError> for ShouwangError {
    fn from(e: TransportError) -> Self {
        let network = |m: &str| ShouwangError::Network { msg: m.into() };
        match e {
            TransportError::Conversation(core) => core.into(),
            TransportError::Refused(reason) => ShouwangError::NotPermitted {
                msg: format!("对方拒绝了连接：{reason}"),
            },
            TransportError::Connect(_) => network("连接不上学校服务器或对方设备，请检查网络后再试"),
            TransportError::Bind(_) => network("无法使用网络，请检查手机的网络设置后再试"),
            TransportError::Io(_) | TransportError::Truncated | TransportError::Redialed => {
                network("连接中断，已收到的内容都已保存，请稍后再试")
            }
            TransportError::Idle => network("连接长时间没有活动，已断开，请稍后再试"),
            TransportError::ShuttingDown => network("对方正在关闭，请稍后再试"),
            e @ (TransportError::Protocol(_) | TransportError::FrameTooLarge { .. }) => {
                ShouwangError::Network { msg: e.to_string() }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_errors_map_to_actionable_variants_with_the_core_message() {
        let e: ShouwangError = CoreError::invalid("日期", "“2026-02-30”不是有效日期").into();
        assert_eq!(
            e,
            ShouwangError::InvalidInput {
                field: "日期".into(),
                msg: "日期填写有误：“2026-02-30”不是有效日期".into()
            }
        );
        let e: ShouwangError = CoreError::Missing("情况记录".into()).into();
        assert!(matches!(e, ShouwangError::InvalidInput { ref field, .. } if field == "情况记录"));
        let e: ShouwangError = CoreError::NotEnrolled.into();
        assert!(matches!(e, ShouwangError::NotEnrolled { .. }), "{e:?}");
        let e: ShouwangError = CoreError::NotPermitted("只能修改自己填写的记录".into()).into();
        assert!(matches!(e, ShouwangError::NotPermitted { .. }));
        let e: ShouwangError = CoreError::not_found("学生", "c1f0e2d3王小雨").into();
        assert!(matches!(e, ShouwangError::NotFound { .. }), "{e:?}");
        assert!(e.message().contains("学生"), "{e}");
        assert!(
            !e.message().contains("王小雨") && !e.message().contains("c1f0"),
            "{e}"
        );
        let e: ShouwangError = CoreError::Locked.into();
        assert_eq!(e.message(), "档案库已加密，密钥不对，无法打开");
    }

    #[test]
    fn network_errors_are_fixed_chinese_sentences() {
        let e: ShouwangError = TransportError::Connect("timed out at 10.0.0.1:3341".into()).into();
        assert!(matches!(e, ShouwangError::Network { .. }));
        assert!(!e.message().contains("10.0.0.1"), "{e}");
        let e: ShouwangError = TransportError::Refused("邀请码已经用过".into()).into();
        assert!(matches!(e, ShouwangError::NotPermitted { .. }));
    }

    /// Every variant the apps see, produced from the core's and the transport's errors as they
    /// happen (the wrapped ones with their libraries' English), held to the one rule of
    /// `shouwang_core::error::untranslated`. The `match` lists every variant, so adding one
    /// without a case does not compile; the test fails if a variant is never produced.
    #[test]
    fn every_error_reads_in_chinese() {
        let core = vec![
            CoreError::invalid("日期", "“2026-02-30”不是有效日期"),
            CoreError::Missing("情况记录".into()),
            CoreError::not_found("学生", "王小雨"),
            CoreError::Ambiguous {
                what: "学生",
                key: "王小雨".into(),
            },
            CoreError::NotPermitted("只能修改自己填写的记录".into()),
            CoreError::NotEnrolled,
            CoreError::Corrupt("数据文件不完整".into()),
            CoreError::WrongSchool,
            CoreError::StoreTooNew {
                found: 99,
                supported: 9,
            },
            CoreError::Locked,
            CoreError::NotAStore,
            CoreError::Revoked,
            CoreError::Damaged {
                what: "学校信息".into(),
                doc: "school".into(),
            },
            CoreError::NotInitialised,
            // The core's own test holds every SQLite and automerge failure to the rule; the
            // message here is the core's (`msg = e.to_string()`).
            CoreError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "timed out",
            )),
            CoreError::Io(std::io::Error::from_raw_os_error(28)),
        ];
        let mut all: Vec<ShouwangError> = core.into_iter().map(ShouwangError::from).collect();
        for detail in [
            "timed out",
            "connection lost",
            "Address already in use",
            "tls alert",
        ] {
            all.extend([
                TransportError::Protocol(detail.into()).into(),
                TransportError::Connect(detail.into()).into(),
                TransportError::Io(detail.into()).into(),
                TransportError::Bind(detail.into()).into(),
            ]);
        }
        all.extend([
            TransportError::Conversation(CoreError::Revoked).into(),
            TransportError::Refused("邀请码已经用过".into()).into(),
            TransportError::FrameTooLarge { len: 9, max: 1 }.into(),
            TransportError::Truncated.into(),
            TransportError::Idle.into(),
            TransportError::ShuttingDown.into(),
            ShouwangError::cancelled(),
            ShouwangError::internal(),
        ]);
        let mut seen = std::collections::BTreeSet::new();
        for e in &all {
            seen.insert(match e {
                ShouwangError::InvalidInput { .. } => "InvalidInput",
                ShouwangError::NotFound { .. } => "NotFound",
                ShouwangError::NotEnrolled { .. } => "NotEnrolled",
                ShouwangError::NotPermitted { .. } => "NotPermitted",
                ShouwangError::Revoked { .. } => "Revoked",
                ShouwangError::Locked { .. } => "Locked",
                ShouwangError::Storage { .. } => "Storage",
                ShouwangError::Network { .. } => "Network",
                ShouwangError::Cancelled { .. } => "Cancelled",
                ShouwangError::Internal { .. } => "Internal",
            });
            assert_eq!(e.message(), e.to_string());
        }
        shouwang_core::error::check_translated(&all).unwrap();
        assert_eq!(seen.len(), 10, "variants never produced: {seen:?}");
    }
}
