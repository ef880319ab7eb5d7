//! Roles of the adults around a child (DOMAIN.md §2).

use serde::Serialize;

use crate::error::{Error, Result};

/// A role a member of the school holds. A member may hold several (a 班主任 is often also a
/// 帮扶教师).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 校长 / 领导组: plans, inspects, sees everything.
    Leadership,
    /// 档案管理员 (专人): keeps the archive, sees everything.
    Archivist,
    /// 班主任: the class archive, monthly talks, parent calls.
    HeadTeacher,
    /// 任课教师: study-assistance plans.
    SubjectTeacher,
    /// 帮扶教师: paired children, frequent talks and visits.
    PairingTeacher,
    /// 爱心妈妈: one per child, a talk every week.
    LoveMother,
    /// 代理家长: visits every two weeks.
    ProxyParent,
    /// 爱心辅导员 (community): 1–2 children, two visits a month.
    Counsellor,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 8] = [
        Role::Leadership,
        Role::Archivist,
        Role::HeadTeacher,
        Role::SubjectTeacher,
        Role::PairingTeacher,
        Role::LoveMother,
        Role::ProxyParent,
        Role::Counsellor,
    ];

    /// The key stored in documents.
    pub fn key(self) -> &'static str {
        match self {
            Role::Leadership => "leadership",
            Role::Archivist => "archivist",
            Role::HeadTeacher => "head_teacher",
            Role::SubjectTeacher => "subject_teacher",
            Role::PairingTeacher => "pairing_teacher",
            Role::LoveMother => "love_mother",
            Role::ProxyParent => "proxy_parent",
            Role::Counsellor => "counsellor",
        }
    }

    /// The Chinese name.
    pub fn label(self) -> &'static str {
        match self {
            Role::Leadership => "校长/领导组",
            Role::Archivist => "档案管理员",
            Role::HeadTeacher => "班主任",
            Role::SubjectTeacher => "任课教师",
            Role::PairingTeacher => "帮扶教师",
            Role::LoveMother => "爱心妈妈",
            Role::ProxyParent => "代理家长",
            Role::Counsellor => "爱心辅导员",
        }
    }

    /// Parses a key or a Chinese name (`班主任`, `head_teacher`, `校长`, `领导组` …).
    pub fn parse(s: &str) -> Result<Role> {
        let s = s.trim();
        let found = Role::ALL
            .into_iter()
            .find(|r| r.key() == s || r.label() == s || r.label().split('/').any(|part| part == s));
        found
            .or(match s {
                "科任教师" => Some(Role::SubjectTeacher),
                "结对老师" | "结对教师" => Some(Role::PairingTeacher),
                "辅导员" => Some(Role::Counsellor),
                "管理员" => Some(Role::Archivist),
                _ => None,
            })
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.label()).collect();
                Error::invalid(
                    "角色",
                    format!("“{s}”不是已知角色，可选：{}", names.join("、")),
                )
            })
    }

    /// Whether the role is held by a teacher (the ≥2 家访 a week rule applies to teachers).
    pub fn is_teacher(self) -> bool {
        matches!(
            self,
            Role::HeadTeacher | Role::SubjectTeacher | Role::PairingTeacher
        )
    }

    /// Whether the role may see and write `child/<id>/private` (DOMAIN.md §5.3).
    pub fn sees_private(self) -> bool {
        matches!(self, Role::Leadership | Role::Archivist | Role::HeadTeacher)
    }

    /// Whether the role may hold `child/<id>/staff` (the 三特 flags, the parents' employers, the
    /// guardian's health, age and occupation): the same roles as the private part today, under
    /// the basic consent rather than the private one, and not logged on opening.
    pub fn sees_staff(self) -> bool {
        matches!(self, Role::Leadership | Role::Archivist | Role::HeadTeacher)
    }

    /// Whether the role runs the school (members, classes, rules, roster).
    pub fn administers(self) -> bool {
        matches!(self, Role::Leadership | Role::Archivist)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_keys_and_chinese_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.key()).unwrap(), r);
            assert_eq!(Role::parse(r.label()).unwrap(), r);
        }
        assert_eq!(Role::parse("校长").unwrap(), Role::Leadership);
        assert_eq!(Role::parse("科任教师").unwrap(), Role::SubjectTeacher);
        let e = Role::parse("门卫").unwrap_err().to_string();
        assert!(e.contains("不是已知角色"), "{e}");
    }
}
