//! [`ShouwangError`]: the one error the apps see, converted from the core's and the
//! transport's errors here and nowhere else.
//!
//! Each variant says what the app should do; `msg` is always a complete Simplified Chinese
//! sentence that can be shown as it is. It never carries personal data: the core's messages
//! name the field or file at fault, never the value a person typed into a phone or ID field,
//! and network failures are reduced to fixed sentences (the transport's own details are in
//! English and may name addresses).

use shouwang_core::Error as CoreError;
use shouwang_relay::device::{CERTIFICATE_EXPIRED, is_certificate_expired};
use shouwang_relay::transport::TransportError;

/// No store at the path, or one cut off while joining: what to do on a phone (the core's
/// sentence speaks of creating a school, the office's task).
const NOT_JOINED: &str = "这台手机还没有加入学校，请用学校发的邀请码（扫描二维码）加入";

/// The file at the store's path is not a store (the core's sentence names the command line's
/// `--store`).
const NOT_A_STORE: &str =
    "手机上的守望数据文件已损坏，无法打开；请联系学校管理员重新发邀请码，用它重新加入学校";

/// How a colleague's device's refusal is reported (`shouwang_relay::handshake::refused_by_peer`).
const PEER_REFUSED: &str = "对方设备拒绝了同步：";

/// The longest refusal from the other side shown as it came, in characters: our own are one
/// sentence.
const MAX_SHOWN_REASON: usize = 120;

/// Said instead of a reason from the other side that is not one of this app's Chinese
/// sentences: a stranger on the same Wi-Fi may put any text there.
const UNSHOWN_REFUSAL: &str = "对方拒绝了连接，没有给出可以显示的原因；请确认对方是本校成员的设备";

/// Whether `reason`, sent by the other side, reads as one of this app's own refusals: a short
/// Chinese sentence with no English, no line breaks (`shouwang_core::error::untranslated`).
fn shown_reason(reason: &str) -> bool {
    // Nothing to call or visit: no run of three or more Latin letters or digits (a web
    // address, a phone number), no `/` or `@`. Our own sentences name at most a digit.
    let mut run = 0;
    let addressless = reason.chars().all(|c| {
        run = if c.is_ascii_alphanumeric() {
            run + 1
        } else {
            0
        };
        run < 3 && c != '/' && c != '@'
    });
    !reason.trim().is_empty()
        && addressless
        && reason.chars().count() <= MAX_SHOWN_REASON
        && !reason.chars().any(char::is_control)
        && shouwang_core::error::untranslated(reason).is_empty()
}

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
    /// been wiped, and every later call on this client fails with `Revoked`. Close the client,
    /// delete the store's key from the keystore and show the message; the device can only
    /// enroll again with a new invite. A background or live sync that learns it reports
    /// `SyncUpdate.Revoked` and stops.
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

    /// What every call answers once the school revoked this device.
    pub(crate) fn revoked() -> ShouwangError {
        ShouwangError::Revoked {
            msg: CoreError::Revoked.to_string(),
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
            CoreError::NotInitialised => ShouwangError::NotEnrolled {
                msg: NOT_JOINED.into(),
            },
            CoreError::NotEnrolled => ShouwangError::NotEnrolled { msg },
            CoreError::Locked => ShouwangError::Locked { msg },
            CoreError::Revoked => ShouwangError::Revoked { msg },
            CoreError::NotAStore => ShouwangError::Storage {
                msg: NOT_A_STORE.into(),
            },
            CoreError::Corrupt(_)
            | CoreError::Damaged { .. }
            | CoreError::StoreTooNew { .. }
            | CoreError::Storage(_)
            | CoreError::Document(_)
            | CoreError::Io(_) => ShouwangError::Storage { msg },
        }
    }
}

impl ShouwangError {
    /// What a failed sync with another member's device (or a stranger's, on the same Wi-Fi)
    /// shows: as any network error, except that a device saying this one's certificate
    /// expired is believed only if it did (`own_expired`). A stranger could close with those
    /// words to send the teacher to her administrator for nothing.
    pub(crate) fn from_peer(e: TransportError, own_expired: bool) -> ShouwangError {
        if is_certificate_expired(&e) && !own_expired {
            return ShouwangError::NotPermitted {
                msg: UNSHOWN_REFUSAL.into(),
            };
        }
        e.into()
    }
}

impl From<TransportError> for ShouwangError {
    fn from(e: TransportError) -> Self {
        let network = |m: &str| ShouwangError::Network { msg: m.into() };
        // Final: background and live sync stop (`client::is_final`).
        if is_certificate_expired(&e) {
            return ShouwangError::NotPermitted {
                msg: CERTIFICATE_EXPIRED.into(),
            };
        }
        match e {
            TransportError::Conversation(CoreError::NotPermitted(m))
                if m.starts_with(PEER_REFUSED) =>
            {
                let reason = &m[PEER_REFUSED.len()..];
                ShouwangError::NotPermitted {
                    msg: if shown_reason(reason) {
                        CoreError::NotPermitted(m.clone()).to_string()
                    } else {
                        UNSHOWN_REFUSAL.into()
                    },
                }
            }
            TransportError::Conversation(core) => core.into(),
            TransportError::Refused(reason) => ShouwangError::NotPermitted {
                msg: if shown_reason(&reason) {
                    format!("对方拒绝了连接：{reason}")
                } else {
                    UNSHOWN_REFUSAL.into()
                },
            },
            TransportError::Connect(_) => network("连接不上学校服务器或对方设备，请检查网络后再试"),
            TransportError::Bind(_) => network("无法使用网络，请检查手机的网络设置后再试"),
            TransportError::Io(_) | TransportError::Truncated | TransportError::Redialed => {
                network("连接中断，已收到的内容都已保存，请稍后再试")
            }
            TransportError::Idle => network("连接长时间没有活动，已断开，请稍后再试"),
            TransportError::ShuttingDown => network("对方正在关闭，请稍后再试"),
            TransportError::Protocol(detail) if !shown_reason(&detail) => {
                network("对方不符合通信协议，连接已断开")
            }
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

    /// What a phone shows names no command-line flag and no task of the office (创建学校).
    #[test]
    fn a_missing_or_damaged_store_says_what_to_do_on_a_phone() {
        for (e, variant) in [
            (CoreError::NotInitialised, "NotEnrolled"),
            (CoreError::NotAStore, "Storage"),
        ] {
            let e = ShouwangError::from(e);
            let m = e.message();
            assert!(!m.contains("--") && !m.contains("创建学校"), "{m}");
            match (&e, variant) {
                (ShouwangError::NotEnrolled { .. }, "NotEnrolled") => {
                    assert!(m.contains("邀请码"), "{m}")
                }
                (ShouwangError::Storage { .. }, "Storage") => {
                    assert!(m.contains("损坏") && m.contains("邀请码"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// A device met directly that closes with "your certificate expired" is believed only if
    /// this device's certificate did expire.
    #[test]
    fn a_peer_saying_the_certificate_expired_is_believed_only_if_it_did() {
        let said = || TransportError::Refused(CERTIFICATE_EXPIRED.into());
        let stranger = ShouwangError::from_peer(said(), false);
        assert_eq!(stranger.message(), UNSHOWN_REFUSAL, "{stranger}");
        let true_word = ShouwangError::from_peer(said(), true);
        assert_eq!(true_word.message(), CERTIFICATE_EXPIRED, "{true_word}");
        let other =
            ShouwangError::from_peer(TransportError::Refused("邀请码已经用过".into()), false);
        assert!(other.message().contains("邀请码已经用过"), "{other}");
    }

    /// A stranger's device on the same Wi-Fi chooses the reason it closes with: only a short
    /// Chinese sentence of the kind this app sends is shown; anything else, a fixed one.
    #[test]
    fn a_strangers_reason_is_not_shown() {
        let ours = ShouwangError::from(TransportError::Refused(
            "不允许此操作：成员证书属于另一所学校".into(),
        ));
        assert!(ours.message().contains("另一所学校"), "{ours}");
        let long = "请".repeat(MAX_SHOWN_REASON + 1);
        for reason in [
            "Visit http://evil.example to claim your prize".to_owned(),
            "请立即访问 evil.example 领取补贴".to_owned(),
            "请访问http://evil.example领取补贴".to_owned(),
            "请拨打13812345678领取补贴".to_owned(),
            "中奖了\n请回拨".to_owned(),
            long.clone(),
            String::new(),
        ] {
            for e in [
                TransportError::Refused(reason.clone()),
                TransportError::Conversation(shouwang_relay::handshake::refused_by_peer(&reason)),
                TransportError::Protocol(reason.clone()),
            ] {
                let shown = ShouwangError::from(e);
                let m = shown.message();
                assert!(
                    !m.contains("evil")
                        && !m.contains("中奖")
                        && !m.contains("1381234")
                        && !m.contains(&long[..30]),
                    "{m}"
                );
                assert!(shouwang_core::error::untranslated(m).is_empty(), "{m}");
            }
        }
        // A colleague's own refusal is still said.
        let said = ShouwangError::from(TransportError::Conversation(
            shouwang_relay::handshake::refused_by_peer("不允许此操作：对方不是本校成员"),
        ));
        assert!(said.message().contains("对方不是本校成员"), "{said}");
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
