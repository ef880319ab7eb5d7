//! Guardian consent (监护人同意) to what the school records about a child (《儿童个人信息网络保护规定》
//! 第9–10条), and the gate every write of a child's file passes.
//!
//! Consent is kept in the child's shared file, as scalar keys of its `profile` map (so no new
//! top-level map, which only the genesis change may create, and no nested map two devices
//! could create apart): who gave it (`consent_guardian`, `consent_relation`), when
//! (`consent_date`), what it covers (`consent_covers`: `basic`, `private`, `photos`, joined by
//! commas), the paper form's number (`consent_form`), and a withdrawal (`consent_withdrawn_on`,
//! `consent_withdrawn_by`, `consent_withdrawn_covers`). A withdrawal with no grant before it is
//! a guardian's objection (拒绝): a guardian who never signed can still say no, and it binds as
//! a withdrawal does. Recording consent again replaces the grant and clears the withdrawal. Concurrent values are a conflict like any field's, and every
//! replica reads the same winner.
//!
//! [`gate`] is the one rule, applied by the local API before writing and by the trust rules on
//! arrival (against the child file at the change's dependencies, or, for the private part, at
//! the child heads the change declares), so it decides the same everywhere:
//! - what a withdrawal covers cannot be written any more (new records, section fields);
//! - the private part needs consent covering `private` once the school requires consent
//!   ([`crate::school::SchoolView::consent_required`], set by an administrator; a school's
//!   private parts written before that stay as they are and are accepted on arrival).

use automerge::{ChangeHash, ReadDoc};
use serde::Serialize;

use crate::doc;
use crate::doc::access::Version;

/// Profile keys of the consent.
pub const GUARDIAN: &str = "consent_guardian";
pub const RELATION: &str = "consent_relation";
pub const DATE: &str = "consent_date";
pub const COVERS: &str = "consent_covers";
pub const FORM: &str = "consent_form";
pub const WITHDRAWN_ON: &str = "consent_withdrawn_on";
pub const WITHDRAWN_BY: &str = "consent_withdrawn_by";
pub const WITHDRAWN_COVERS: &str = "consent_withdrawn_covers";
/// The prefix every consent key shares (the trust rules give these keys their own writers).
pub const PREFIX: &str = "consent_";

/// What a consent covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cover {
    /// The shared care file: 基本情况, 联系卡, 三特 and care records.
    Basic,
    /// The private part: 身份证号, 学籍号, the private flags, 心理辅导记录, 个别教育管理方案.
    Private,
    /// Photos (not recorded yet; the consent can already cover them).
    Photos,
}

impl Cover {
    pub const ALL: [Cover; 3] = [Cover::Basic, Cover::Private, Cover::Photos];

    pub fn key(self) -> &'static str {
        match self {
            Cover::Basic => "basic",
            Cover::Private => "private",
            Cover::Photos => "photos",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Cover::Basic => "基本档案",
            Cover::Private => "隐私部分",
            Cover::Photos => "照片",
        }
    }

    /// By key or Chinese label.
    pub fn parse(s: &str) -> Option<Cover> {
        let s = s.trim();
        Cover::ALL
            .into_iter()
            .find(|c| c.key() == s || c.label() == s)
    }

    /// A comma-separated list (`basic,private`, `基本档案、隐私部分`), sorted and without
    /// repeats; the error is the first entry that is not one.
    pub fn parse_list(s: &str) -> Result<Vec<Cover>, String> {
        let mut out = Vec::new();
        for part in s
            .split([',', '，', '、'])
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let c = Cover::parse(part).ok_or_else(|| part.to_owned())?;
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The stored form of a list.
    pub fn join(list: &[Cover]) -> String {
        list.iter().map(|c| c.key()).collect::<Vec<_>>().join(",")
    }

    /// The Chinese form of a list.
    pub fn labels(list: &[Cover]) -> String {
        list.iter()
            .map(|c| c.label())
            .collect::<Vec<_>>()
            .join("、")
    }
}

/// A withdrawal of consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withdrawal {
    pub date: String,
    pub by: String,
    pub covers: Vec<Cover>,
}

/// A child's consent as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub guardian: String,
    pub relation: String,
    pub date: String,
    pub covers: Vec<Cover>,
    pub form: String,
    pub withdrawn: Option<Withdrawal>,
}

impl Consent {
    /// Whether `c` is covered now (granted and not withdrawn).
    pub fn covers(&self, c: Cover) -> bool {
        self.covers.contains(&c) && !self.is_withdrawn(c)
    }

    /// Whether `c` was withdrawn.
    pub fn is_withdrawn(&self, c: Cover) -> bool {
        self.withdrawn
            .as_ref()
            .is_some_and(|w| w.covers.contains(&c))
    }

    /// What is covered now.
    pub fn effective(&self) -> Vec<Cover> {
        Cover::ALL.into_iter().filter(|c| self.covers(*c)).collect()
    }

    /// The consent as the projection keeps it (`p_children.consent`): what it covers now, then
    /// each cover withdrawn prefixed with `-` (`basic,-private`; an objection is
    /// `-basic,-private`). A cover in neither has not been decided on.
    pub fn projected(&self) -> String {
        let mut keys: Vec<String> = self
            .effective()
            .iter()
            .map(|c| c.key().to_owned())
            .collect();
        if let Some(w) = &self.withdrawn {
            keys.extend(w.covers.iter().map(|c| format!("-{}", c.key())));
        }
        keys.join(",")
    }

    /// Whether this is an objection: a withdrawal recorded with no grant before it.
    pub fn is_objection(&self) -> bool {
        self.covers.is_empty() && self.withdrawn.is_some()
    }

    /// The consent in one Chinese line, as a child's file shows it.
    pub fn line(&self) -> String {
        let mut s = if self.covers.is_empty() {
            "未登记同意".to_owned()
        } else {
            format!(
                "{}（{}）于 {} 同意：{}；同意书编号 {}",
                self.guardian,
                self.relation,
                self.date,
                Cover::labels(&self.covers),
                self.form
            )
        };
        if let Some(w) = &self.withdrawn {
            let verb = if self.is_objection() {
                "拒绝"
            } else {
                "撤回"
            };
            s.push_str(&format!(
                "；{} 于 {} {verb}：{}",
                w.by,
                w.date,
                Cover::labels(&w.covers)
            ));
        }
        s
    }
}

/// Why a write of `cover` for a child is not allowed, or `None` if it is. `required`: the
/// school requires consent ([`crate::school::SchoolView::consent_required`]).
pub fn gate(required: bool, consent: Option<&Consent>, cover: Cover) -> Option<String> {
    if let Some(c) = consent
        && c.is_withdrawn(cover)
    {
        let w = c.withdrawn.as_ref().map(|w| w.date.as_str()).unwrap_or("");
        return Some(if c.is_objection() {
            format!(
                "监护人已于{w}拒绝学校记录{}，不能再新增或修改",
                cover.label()
            )
        } else {
            format!(
                "监护人已于{w}撤回对{}的同意，不能再新增或修改",
                cover.label()
            )
        });
    }
    if required && cover == Cover::Private && !consent.is_some_and(|c| c.covers(cover)) {
        return Some(format!("这名学生还没有监护人对{}的同意", cover.label()));
    }
    None
}

/// The consent a child's shared file records, at `heads` (now if `None`). `None` if neither a
/// consent nor an objection was ever recorded.
pub fn read<D: ReadDoc>(child_doc: &D, heads: Option<&[ChangeHash]>) -> Option<Consent> {
    let profile = doc::map_at_path(child_doc, &["profile"])?;
    // Every field below is read from one pass over the profile (`Fields`), not a seek each:
    // this runs for every record written and every change judged.
    let fields = Version::of(child_doc, heads).fields(&profile);
    let s = |k: &str| fields.str(k);
    let list = |k: &str| {
        s(k).map(|v| {
            v.split(',')
                .filter_map(Cover::parse)
                .collect::<Vec<Cover>>()
        })
    };
    let covers = list(COVERS).unwrap_or_default();
    if s(COVERS).is_none() && s(WITHDRAWN_ON).is_none() {
        return None;
    }
    let withdrawn = s(WITHDRAWN_ON).map(|date| Withdrawal {
        date,
        by: s(WITHDRAWN_BY).unwrap_or_default(),
        covers: list(WITHDRAWN_COVERS).unwrap_or_default(),
    });
    Some(Consent {
        guardian: s(GUARDIAN).unwrap_or_default(),
        relation: s(RELATION).unwrap_or_default(),
        date: s(DATE).unwrap_or_default(),
        covers,
        form: s(FORM).unwrap_or_default(),
        withdrawn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(covers: &[Cover], withdrawn: &[Cover]) -> Consent {
        Consent {
            guardian: "王秀英".into(),
            relation: "奶奶".into(),
            date: "2026-09-01".into(),
            covers: covers.to_vec(),
            form: "1".into(),
            withdrawn: (!withdrawn.is_empty()).then(|| Withdrawal {
                date: "2026-11-01".into(),
                by: "王秀英".into(),
                covers: withdrawn.to_vec(),
            }),
        }
    }

    #[test]
    fn the_gate() {
        use Cover::*;
        assert!(gate(false, None, Private).is_none(), "not required: legacy");
        assert!(gate(true, None, Private).is_some());
        assert!(gate(true, None, Basic).is_none());
        assert!(gate(true, Some(&consent(&[Basic], &[])), Private).is_some());
        assert!(gate(true, Some(&consent(&[Basic, Private], &[])), Private).is_none());
        let w = consent(&[Basic, Private], &[Private]);
        assert!(
            gate(false, Some(&w), Private).is_some(),
            "a withdrawal binds always"
        );
        assert!(gate(true, Some(&w), Basic).is_none());
        let objection = consent(&[], &[Basic, Private]);
        assert!(objection.is_objection());
        assert!(
            gate(false, Some(&objection), Basic).is_some(),
            "an objection binds"
        );
        assert!(gate(false, Some(&objection), Photos).is_none());
        assert_eq!(
            Cover::parse_list("隐私部分, basic").unwrap(),
            vec![Basic, Private]
        );
        assert_eq!(Cover::parse_list("basic,all").unwrap_err(), "all");
    }
}
