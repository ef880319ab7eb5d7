//! Guardian consent (监护人同意) to what the school records about a child (《儿童个人信息网络保护规定》
//! 第9–10条), and the gate every write of a child's file passes.
//!
//! Consent is kept in the child's shared file, as scalar keys of its `profile` map (so no new
//! top-level map, which only the genesis change may create, and no nested map two devices
//! could create apart): who gave it (`consent_guardian`, `consent_relation`), when
//! (`consent_date`), what it covers (`consent_covers`: `basic`, `private`, `photos`, joined by
//! commas), the paper form's number (`consent_form`), and a withdrawal of each cover, a key of
//! its own (`consent_withdrawn:private` = `2026-11-18 王秀英`: the date, a space, who). A
//! withdrawal with no grant before it is a guardian's objection (拒绝): a guardian who never
//! signed can still say no, and it binds as a withdrawal does.
//!
//! Every grant also writes `consent_recorded`, a new value each time (see [`RECORDED`]).
//!
//! Recording consent again replaces the grant and deletes the withdrawals of what it covers,
//! nothing else; a withdrawal writes the keys of what it withdraws, nothing else. So a grant
//! and a withdrawal made apart both stand when they meet: a delete takes away only the values
//! its device had seen, and a withdrawal written meanwhile is kept. (Older builds kept one
//! list, `consent_withdrawn_on`, `_by`, `_covers`: a withdrawal and a partial grant made apart
//! were two values of one key, and one of the guardian's decisions was lost. Such a list is
//! still read, as withdrawals of each cover it names, and the next consent write moves it to
//! the keys.) The trust rules refuse a change that lifts a withdrawal without granting what
//! it covers ([`lifted_without_grant`]).
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
/// A new value at every grant (a time-ordered random id), so that a grant's change always
/// writes it, even a form entered again unchanged: automerge writes nothing for a value put
/// again the same, and a change lifting a withdrawal must carry its grant.
pub const RECORDED: &str = "consent_recorded";
/// The keys of a withdrawal as older builds kept it: one list for every cover (read, and
/// moved to [`withdrawn_key`]s by the next consent write).
pub const WITHDRAWN_ON: &str = "consent_withdrawn_on";
pub const WITHDRAWN_BY: &str = "consent_withdrawn_by";
pub const WITHDRAWN_COVERS: &str = "consent_withdrawn_covers";
/// The prefix of every withdrawal key, in either layout.
pub const WITHDRAWN_PREFIX: &str = "consent_withdrawn";

/// The key of the withdrawal of `cover`.
pub fn withdrawn_key(cover: Cover) -> String {
    format!("{WITHDRAWN_PREFIX}:{}", cover.key())
}

/// The value of a withdrawal key: the date, a space, who.
pub fn withdrawn_value(date: &str, by: &str) -> String {
    format!("{date} {by}")
}
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

impl Withdrawal {
    /// Withdrawals of single covers as one per date and person, in date order.
    fn grouped(mut entries: Vec<(Cover, String, String)>) -> Vec<Withdrawal> {
        entries.sort_by(|a, b| (&a.1, &a.2, a.0).cmp(&(&b.1, &b.2, b.0)));
        let mut out: Vec<Withdrawal> = Vec::new();
        for (c, date, by) in entries {
            match out.last_mut() {
                Some(w) if w.date == date && w.by == by => {
                    if !w.covers.contains(&c) {
                        w.covers.push(c);
                    }
                }
                _ => out.push(Withdrawal {
                    date,
                    by,
                    covers: vec![c],
                }),
            }
        }
        out
    }
}

/// A child's consent as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consent {
    pub guardian: String,
    pub relation: String,
    pub date: String,
    pub covers: Vec<Cover>,
    pub form: String,
    /// Everything withdrawn, with the latest withdrawal's date and who gave it.
    pub withdrawn: Option<Withdrawal>,
    /// The withdrawals one by one (per date and person, in date order).
    pub withdrawals: Vec<Withdrawal>,
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
        let verb = if self.is_objection() {
            "拒绝"
        } else {
            "撤回"
        };
        for w in &self.withdrawals {
            s.push_str(&format!(
                "；{} 于 {} {verb}：{}",
                w.by,
                w.date,
                Cover::labels(&w.covers)
            ));
        }
        s
    }

    /// The withdrawal of `cover`, if it was withdrawn.
    pub fn withdrawal_of(&self, cover: Cover) -> Option<&Withdrawal> {
        self.withdrawals
            .iter()
            .rev()
            .find(|w| w.covers.contains(&cover))
    }
}

/// Why a write of `cover` for a child is not allowed, or `None` if it is. `required`: the
/// school requires consent ([`crate::school::SchoolView::consent_required`]).
pub fn gate(required: bool, consent: Option<&Consent>, cover: Cover) -> Option<String> {
    if let Some(c) = consent
        && c.is_withdrawn(cover)
    {
        let w = c
            .withdrawal_of(cover)
            .map(|w| w.date.as_str())
            .unwrap_or("");
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
    let (withdrawn, withdrawals) = withdrawals(&s);
    if s(COVERS).is_none() && withdrawn.is_none() {
        return None;
    }
    Some(Consent {
        guardian: s(GUARDIAN).unwrap_or_default(),
        relation: s(RELATION).unwrap_or_default(),
        date: s(DATE).unwrap_or_default(),
        covers,
        form: s(FORM).unwrap_or_default(),
        withdrawn,
        withdrawals,
    })
}

/// The withdrawals the profile's keys record, in either layout: all of them as one (every
/// cover withdrawn, with the latest date and who gave it), and one by one. An older build's
/// list adds its covers to the keys' (while both are there: written apart by two builds); it
/// never hides them, even naming nothing this build knows.
fn withdrawals(s: &impl Fn(&str) -> Option<String>) -> (Option<Withdrawal>, Vec<Withdrawal>) {
    let mut entries: Vec<(Cover, String, String)> = Vec::new();
    let legacy = s(WITHDRAWN_ON).map(|date| (date, s(WITHDRAWN_BY).unwrap_or_default()));
    if let Some((date, by)) = &legacy {
        for c in s(WITHDRAWN_COVERS)
            .unwrap_or_default()
            .split(',')
            .filter_map(Cover::parse)
        {
            entries.push((c, date.clone(), by.clone()));
        }
    }
    for c in Cover::ALL {
        if let Some(v) = s(&withdrawn_key(c)) {
            let (date, by) = v.split_once(' ').unwrap_or((v.as_str(), ""));
            entries.push((c, date.to_owned(), by.to_owned()));
        }
    }
    let latest = entries
        .iter()
        .max_by(|a, b| a.1.cmp(&b.1))
        .map(|(_, date, by)| (date.clone(), by.clone()))
        .or(legacy);
    let Some((date, by)) = latest else {
        return (None, Vec::new());
    };
    let mut covers: Vec<Cover> = entries.iter().map(|(c, _, _)| *c).collect();
    covers.sort();
    covers.dedup();
    (
        Some(Withdrawal { date, by, covers }),
        Withdrawal::grouped(entries),
    )
}

/// The covers a change lifted a withdrawal of without granting them: withdrawn in `before`
/// (the file at the change's dependencies), neither withdrawn nor covered by the grant in
/// `after` (the file as the change left it), or covered by a grant the change did not write
/// (`granted`: whether it wrote a grant, [`RECORDED`] or, from older builds, a changed
/// `consent_covers`, date or form). Empty for an honest write.
pub fn lifted_without_grant(
    before: Option<&Consent>,
    after: Option<&Consent>,
    granted: bool,
) -> Vec<Cover> {
    let Some(w) = before.and_then(|c| c.withdrawn.as_ref()) else {
        return Vec::new();
    };
    w.covers
        .iter()
        .copied()
        .filter(|c| !after.is_some_and(|a| a.is_withdrawn(*c)))
        .filter(|c| !(granted && after.is_some_and(|a| a.covers.contains(c))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(covers: &[Cover], withdrawn: &[Cover]) -> Consent {
        let w = (!withdrawn.is_empty()).then(|| Withdrawal {
            date: "2026-11-01".into(),
            by: "王秀英".into(),
            covers: withdrawn.to_vec(),
        });
        Consent {
            guardian: "王秀英".into(),
            relation: "奶奶".into(),
            date: "2026-09-01".into(),
            covers: covers.to_vec(),
            form: "1".into(),
            withdrawals: w.iter().cloned().collect(),
            withdrawn: w,
        }
    }

    /// A profile with `keys`, read back.
    fn read_profile(keys: &[(&str, &str)]) -> Option<Consent> {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        let p = doc
            .put_object(automerge::ROOT, "profile", automerge::ObjType::Map)
            .unwrap();
        for (k, v) in keys {
            doc.put(&p, *k, *v).unwrap();
        }
        read(&doc, None)
    }

    #[test]
    fn withdrawals_read_in_either_layout_as_one() {
        use Cover::*;
        let old = read_profile(&[
            (COVERS, "basic,private"),
            (WITHDRAWN_ON, "2026-11-01"),
            (WITHDRAWN_BY, "王秀英"),
            (WITHDRAWN_COVERS, "private,photos"),
        ])
        .unwrap();
        assert_eq!(
            old.withdrawn.as_ref().unwrap().covers,
            vec![Private, Photos]
        );
        let private = withdrawn_key(Private);
        let basic = withdrawn_key(Basic);
        let new = read_profile(&[
            (COVERS, "basic,private"),
            (&private, "2026-11-01 王秀英"),
            (&basic, "2026-11-18 李桂兰"),
        ])
        .unwrap();
        assert_eq!(
            new.withdrawn,
            Some(Withdrawal {
                date: "2026-11-18".into(),
                by: "李桂兰".into(),
                covers: vec![Basic, Private],
            }),
            "the latest date and who gave it"
        );
        assert!(!new.covers(Basic) && !new.covers(Private));
        // One by one, each with its own date and person.
        assert!(
            new.line().ends_with(
                "；王秀英 于 2026-11-01 撤回：隐私部分；李桂兰 于 2026-11-18 撤回：基本档案"
            ),
            "{}",
            new.line()
        );
        assert!(
            gate(false, Some(&new), Private)
                .unwrap()
                .contains("2026-11-01")
        );
        // Both at once (an older build's list not moved yet): every cover either names.
        let both = read_profile(&[
            (WITHDRAWN_ON, "2026-11-01"),
            (WITHDRAWN_COVERS, "photos"),
            (&basic, "2026-11-18 李桂兰"),
        ])
        .unwrap();
        assert!(both.is_objection());
        assert_eq!(both.withdrawn.unwrap().covers, vec![Basic, Photos]);
        // An older build's list naming nothing known hides nothing.
        let junk = read_profile(&[
            (WITHDRAWN_ON, "2026-11-01"),
            (WITHDRAWN_COVERS, "none"),
            (&private, "2026-11-18 李桂兰"),
        ])
        .unwrap();
        assert_eq!(junk.withdrawn.unwrap().covers, vec![Private]);
        let nothing = read_profile(&[(WITHDRAWN_ON, "2026-11-01")]).unwrap();
        assert_eq!(nothing.withdrawn.unwrap().covers, Vec::<Cover>::new());
        assert_eq!(read_profile(&[]), None);
    }

    #[test]
    fn a_withdrawal_is_lifted_only_by_a_grant_of_it() {
        use Cover::*;
        let before = consent(&[Basic, Private], &[Private, Photos]);
        // A grant of the private part, written by the change: lifts it.
        let granted = consent(&[Private], &[Photos]);
        assert!(lifted_without_grant(Some(&before), Some(&granted), true).is_empty());
        // The same state, but the grant was not the change's own: refused.
        assert_eq!(
            lifted_without_grant(Some(&before), Some(&granted), false),
            vec![Private]
        );
        // Every withdrawal cleared by a grant of the basic file: refused for the others.
        let cleared = consent(&[Basic], &[]);
        assert_eq!(
            lifted_without_grant(Some(&before), Some(&cleared), true),
            vec![Private, Photos]
        );
        // Nothing withdrawn before: nothing to lift.
        assert!(lifted_without_grant(None, Some(&cleared), false).is_empty());
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
