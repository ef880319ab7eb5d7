//! Rule settings: the numbers the due lists and compliance figures count against.
//!
//! Defaults come from the seeds (DOMAIN.md §3); a school edits them in its `school` document's
//! `rules` map, one key per rule, so two devices changing two different rules both apply.

use serde::Serialize;

use crate::error::{Error, Result};

/// One adjustable rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RuleDef {
    pub key: &'static str,
    pub label: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
    /// Where the default comes from.
    pub source: &'static str,
}

/// Every rule.
pub const RULES: [RuleDef; 7] = [
    RuleDef {
        key: "home_visits_per_week",
        label: "每位教师每周家访次数",
        default: 2,
        min: 0,
        max: 20,
        source: "郭庄小学：每星期对留守儿童家访不低于2次 (000-A L16)",
    },
    RuleDef {
        key: "head_teacher_talks_per_month",
        label: "班主任每月与每名留守儿童谈心次数",
        default: 1,
        min: 0,
        max: 10,
        source: "班主任每月与留守儿童谈心一次 (000-B2 L136)",
    },
    RuleDef {
        key: "love_mother_talks_per_week",
        label: "爱心妈妈每周谈心次数",
        default: 1,
        min: 0,
        max: 7,
        source: "爱心妈妈每周与留守儿童谈一次心 (001-3 L165)",
    },
    RuleDef {
        key: "counsellor_visits_per_month",
        label: "爱心辅导员每月走访次数",
        default: 2,
        min: 0,
        max: 10,
        source: "爱心辅导员必须一个月走访儿童两次 (004-C L51)",
    },
    RuleDef {
        key: "parent_contact_days",
        label: "班主任与外出家长联系间隔(天)",
        default: 14,
        min: 0,
        max: 90,
        source: "每两周同留守儿童的家长通一次电话 (001-2 L71)",
    },
    RuleDef {
        key: "proxy_parent_visit_days",
        label: "代理家长家访间隔(天)",
        default: 14,
        min: 0,
        max: 90,
        source: "代理家长每两个星期家访一次 (002-4 L113)",
    },
    RuleDef {
        key: "retention_years",
        label: "离校学生档案保存年限(年)",
        default: 3,
        min: 1,
        max: 30,
        source: "DOMAIN.md 没有规定；默认离校后保存 3 年再审核删除 (ARCHITECTURE.md)",
    },
];

/// The rules in force at a school. A value of 0 turns a due-work rule off (the retention has
/// no off: its minimum is 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleSettings {
    pub home_visits_per_week: i64,
    pub head_teacher_talks_per_month: i64,
    pub love_mother_talks_per_week: i64,
    pub counsellor_visits_per_month: i64,
    pub parent_contact_days: i64,
    pub proxy_parent_visit_days: i64,
    /// How many years a left child's file is kept after the leave date before it is listed
    /// for review and erasure (`Archive::due_for_erasure`). Not a due-work rule.
    pub retention_years: i64,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings::from_lookup(|_| None)
    }
}

impl RuleSettings {
    /// Builds the settings from stored values, taking the default for anything missing or out of
    /// range.
    pub fn from_lookup(get: impl Fn(&str) -> Option<i64>) -> Self {
        let v = |i: usize| {
            let r = RULES[i];
            get(r.key)
                .filter(|n| (r.min..=r.max).contains(n))
                .unwrap_or(r.default)
        };
        RuleSettings {
            home_visits_per_week: v(0),
            head_teacher_talks_per_month: v(1),
            love_mother_talks_per_week: v(2),
            counsellor_visits_per_month: v(3),
            parent_contact_days: v(4),
            proxy_parent_visit_days: v(5),
            retention_years: v(6),
        }
    }

    /// The value of a rule by key.
    pub fn get(&self, key: &str) -> Option<i64> {
        Some(match key {
            "home_visits_per_week" => self.home_visits_per_week,
            "head_teacher_talks_per_month" => self.head_teacher_talks_per_month,
            "love_mother_talks_per_week" => self.love_mother_talks_per_week,
            "counsellor_visits_per_month" => self.counsellor_visits_per_month,
            "parent_contact_days" => self.parent_contact_days,
            "proxy_parent_visit_days" => self.proxy_parent_visit_days,
            "retention_years" => self.retention_years,
            _ => return None,
        })
    }
}

/// Validates a rule change from a person: known key (or label), value in range.
pub fn parse_rule(key: &str, raw: &str) -> Result<(&'static RuleDef, i64)> {
    let def = RULES
        .iter()
        .find(|r| r.key == key || r.label == key)
        .ok_or_else(|| {
            let keys: Vec<&str> = RULES.iter().map(|r| r.key).collect();
            Error::invalid("规则", format!("没有“{key}”，可选：{}", keys.join("、")))
        })?;
    let n: i64 = raw
        .trim()
        .parse()
        .map_err(|_| Error::invalid(def.label, "应为整数"))?;
    if !(def.min..=def.max).contains(&n) {
        return Err(Error::invalid(
            def.label,
            format!("应在{}到{}之间", def.min, def.max),
        ));
    }
    Ok((def, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_seeds_and_bad_values_fall_back() {
        let d = RuleSettings::default();
        assert_eq!(d.home_visits_per_week, 2);
        assert_eq!(d.counsellor_visits_per_month, 2);
        assert_eq!(d.parent_contact_days, 14);
        let s = RuleSettings::from_lookup(|k| (k == "home_visits_per_week").then_some(999));
        assert_eq!(s.home_visits_per_week, 2);
        assert!(parse_rule("home_visits_per_week", "3").is_ok());
        assert!(parse_rule("home_visits_per_week", "-1").is_err());
        assert!(parse_rule("nap_time", "1").is_err());
    }
}
