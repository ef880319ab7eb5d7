//! The auth state a change declares, carried in its message.
//!
//! A change's message is what people see in the file's history (新增家访记录). A change to a
//! document other than `school` appends, after a record separator (U+001E), the heads of the
//! school document the device held when it wrote:
//!
//! ```text
//! 新增家访记录␞s=<hash>,<hash>
//! 修改身份信息␞s=<hash>␞c=<hash>          (a private part: also the child file's heads)
//! ```
//!
//! The message is part of the change's hash, so the declaration travels unaltered.

use automerge::ChangeHash;

use crate::store::{heads_text, parse_heads};

const SEP: char = '\u{1e}';

/// The heads a change declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Declared {
    /// The school document's heads.
    pub school: Option<Vec<ChangeHash>>,
    /// The child's shared file's heads (changes to a private part).
    pub child: Option<Vec<ChangeHash>>,
}

/// `message` with the declared heads appended.
pub fn declare(message: &str, school: &[ChangeHash], child: Option<&[ChangeHash]>) -> String {
    let mut out = format!("{message}{SEP}s={}", heads_text(school));
    if let Some(c) = child {
        out.push(SEP);
        out.push_str("c=");
        out.push_str(&heads_text(c));
    }
    out
}

impl Declared {
    /// The heads declared in a change's message. A malformed declaration declares nothing.
    pub fn parse(message: Option<&str>) -> Declared {
        let mut out = Declared::default();
        let Some(message) = message else {
            return out;
        };
        for part in message.split(SEP).skip(1) {
            if let Some(h) = part.strip_prefix("s=") {
                out.school = parse_heads(h);
            } else if let Some(h) = part.strip_prefix("c=") {
                out.child = parse_heads(h);
            }
        }
        out
    }
}

/// `message` with one more part, `<tag>=<value>`, after the declaration (a part
/// [`Declared::parse`] does not read: older versions skip it).
pub fn with_part(message: &str, tag: &str, value: &str) -> String {
    format!("{message}{SEP}{tag}={value}")
}

/// The value of a message's part `<tag>=` ([`with_part`]), if it has one.
pub fn part<'a>(message: &'a str, tag: &str) -> Option<&'a str> {
    message
        .split(SEP)
        .skip(1)
        .find_map(|p| p.strip_prefix(tag)?.strip_prefix('='))
}

/// The part of a change's message people read.
pub fn display_message(message: &str) -> &str {
    message.split(SEP).next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declaration_round_trips_and_is_hidden_from_people() {
        let h: ChangeHash = "0f".repeat(32).parse().unwrap();
        let m = declare("新增家访记录", &[h], None);
        assert_eq!(display_message(&m), "新增家访记录");
        let d = Declared::parse(Some(&m));
        assert_eq!(d.school, Some(vec![h]));
        assert_eq!(d.child, None);
        let m = declare("修改身份信息", &[h], Some(&[h]));
        assert_eq!(Declared::parse(Some(&m)).child, Some(vec![h]));
        assert_eq!(Declared::parse(Some("旧版本的修改")), Declared::default());
        let m = with_part(&m, "k", "ab:3");
        assert_eq!(part(&m, "k"), Some("ab:3"));
        assert_eq!(part(&m, "s"), Some(h.to_string().as_str()));
        assert_eq!(part(&m, "x"), None);
        assert_eq!(Declared::parse(Some(&m)).child, Some(vec![h]), "still read");
        assert_eq!(display_message(&m), "修改身份信息");
        assert_eq!(
            Declared::parse(Some("x\u{1e}s=zz")).school,
            None,
            "a malformed declaration declares nothing"
        );
    }
}
