//! Erasing a child's file (issue 11): on a guardian's request, after 转学 once the file is
//! handed over, or at the end of retention.
//!
//! The erasure is a school fact, `school.erasures/<child id> = {on, reason, by, also}` (`also`:
//! the ids her other 学籍号 would make, [`crate::school::Erasure::also`]), written by an
//! administrator (the trust rules refuse it from anyone else, and refuse deleting it). It is the
//! only trace of the child the school keeps: the child id, the date, the reason and who. Once a
//! device's school document records it, the child's documents are outside every member's scope
//! ([`super::scope::may_see`]): the device purges them ([`crate::store::Store::purge`], the
//! freed pages overwritten), sessions neither offer nor accept them, bundle imports drop them,
//! and a change into them is refused from anyone, whatever school state it declares.

use automerge::{ROOT, ReadDoc};
use serde::Serialize;

use super::Archive;
use crate::doc::DocId;
use crate::doc::access::map_at;
use crate::error::{Error, Result};
use crate::ids::ChildId;
use crate::school::{self, Erasure, Pairing};

/// Words a roster or a form puts in a name column that name nobody: kinship terms and fillers.
const NOT_A_NAME: &[&str] = &[
    "婆婆",
    "公公",
    "嘎婆",
    "嘎公",
    "家婆",
    "家公",
    "弟弟",
    "妹妹",
    "父母",
    "家长",
    "本人",
    "同上",
    "奶奶",
    "爷爷",
    "外婆",
    "外公",
    "姥姥",
    "姥爷",
    "父亲",
    "母亲",
    "爸爸",
    "妈妈",
    "叔叔",
    "婶婶",
    "伯伯",
    "伯母",
    "舅舅",
    "舅妈",
    "姑姑",
    "姑父",
    "姨妈",
    "姨父",
    "阿姨",
    "哥哥",
    "姐姐",
    "祖父",
    "祖母",
    "外祖父",
    "外祖母",
    "不详",
    "未知",
    "暂无",
    "没有",
    "不知道",
];

/// What erasing a child's file did on this device.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureReport {
    pub child: ChildId,
    /// Active pairings with the child, now ended.
    pub pairings_ended: usize,
    /// Documents removed from this device.
    pub purged: usize,
}

impl Archive {
    /// Erases a child's file: records the erasure in the school document, ends the child's
    /// pairings, and purges the child's documents from this device. Every other device drops
    /// them when it learns of the erasure (the hub, a bundle, an administrator's device).
    /// Administrators only; the reason is required and may not name the child (it stays in
    /// the school document).
    pub fn erase_child(&mut self, child: &str, reason: &str) -> Result<ErasureReport> {
        let me = self.require_admin()?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(Error::Missing("删除原因".into()));
        }
        crate::forms::check_line("删除原因", reason, 200)?;
        let child = self.find_child(child)?;
        self.check_reason(&child, "删除原因", reason)?;
        let also = self.ids_by_her_numbers(&child)?;
        let erasure = Erasure {
            child: child.clone(),
            on: chrono::Local::now().date_naive().to_string(),
            reason: reason.to_owned(),
            by: me.id.clone(),
            also,
        };
        let ending: Vec<Pairing> = self
            .school()?
            .pairings
            .iter()
            .filter(|p| p.active && p.child == child)
            .map(|p| Pairing {
                active: false,
                ..p.clone()
            })
            .collect();
        self.store.write(|b| {
            b.upgrade_layout(&DocId::School)?;
            b.change(&DocId::School, false, "删除学生档案", |tx| {
                school::put_erasure(tx, &erasure)?;
                // The leave record goes with the file: the erasure is the only trace kept.
                school::remove_departure(tx, &erasure.child)?;
                ending.iter().try_for_each(|p| school::put_pairing(tx, p))
            })
        })?;
        let purged = self.purge_erased()?;
        Ok(ErasureReport {
            child,
            pairings_ended: ending.len(),
            purged,
        })
    }

    /// The ids a roster line with any 学籍号 `child`'s file held would make, keyed with the
    /// school secret, other than her id: kept with her erasure, so that no such line brings
    /// her back. Keyed only (none in a school without a secret yet): an unkeyed
    /// id gives the 学籍号 back in about a million tries, and the erasure record is in every
    /// member's school document for good.
    fn ids_by_her_numbers(&mut self, child: &ChildId) -> Result<Vec<ChildId>> {
        let numbers: Vec<String> = self
            .identifying_values(child)?
            .into_iter()
            .filter(|(what, _)| *what == "学籍号")
            .map(|(_, no)| no)
            .collect();
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        // The secret this device holds, not one made now: an administrator's device that has
        // not received the school's yet would make a second, and ids keyed with the one that
        // loses match nothing.
        let Some(secret) = self.school_secret()? else {
            return Ok(Vec::new());
        };
        let school = self.school_id.clone();
        let mut ids = Vec::new();
        for no in numbers {
            let id = ChildId::for_student(&secret, &school, &no);
            if id != *child && !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The erased children's records (id, date, reason, who), as the school document holds
    /// them.
    pub fn erasures(&mut self) -> Result<Vec<Erasure>> {
        Ok(self.school()?.erasures.clone())
    }

    /// Purges every document of an erased child this device still holds (see
    /// [`crate::store::Store::purge`]). Returns how many were removed. The hub runs it when its
    /// school document changes; devices purge them with everything else out of scope
    /// ([`Archive::purge_out_of_scope`]).
    pub fn purge_erased(&mut self) -> Result<usize> {
        let erased = self.store.erased_children()?;
        if erased.is_empty() {
            return Ok(0);
        }
        let mut gone: Vec<DocId> = self
            .store
            .held_doc_ids()?
            .into_iter()
            .filter(|d| d.child().is_some_and(|c| erased.contains(c)))
            .collect();
        // And what this store remembers having dropped of them (`purged`).
        for id in self.store.purged_marks()? {
            if id.child().is_some_and(|c| erased.contains(c)) && !gone.contains(&id) {
                gone.push(id);
            }
        }
        // A note of work not carried into her file (`carry::NOT_CARRIED`) no longer names
        // her, in the purge's own transaction, as when the erasure arrives from elsewhere.
        let noting = self
            .store
            .meta(crate::carry::NOT_CARRIED)?
            .is_some_and(|n| !n.is_empty());
        let rewrite = |was: &str, purged: &[DocId]| {
            crate::carry::notes_after_purge(was, &[], purged, &|c| erased.contains(c))
        };
        let noted = noting.then_some((
            crate::carry::NOT_CARRIED,
            &rewrite as &dyn Fn(&str, &[DocId]) -> String,
        ));
        self.store.purge_noting(&gone, &[], None, noted)
    }

    /// Refuses a reason that names the child or her family (it stays in the school document,
    /// which every member's device holds, for good): her name, 身份证号 or 学籍号, her
    /// parents' and guardian's names and phones, as the file holds them now or held them at
    /// any time since its last re-basing (a re-basing follows a correction: "原身份证号…录错"
    /// names the very value it removes), and any number of ten digits or more
    /// ([`super::long_numbers::holds_long_number`]).
    pub(crate) fn check_reason(
        &mut self,
        child: &ChildId,
        field: &str,
        reason: &str,
    ) -> Result<()> {
        const STAYS: &str = "这条记录会一直留在学校信息里";
        if let Some((what, _)) = self
            .identifying_values(child)?
            .into_iter()
            .find(|(_, v)| reason.contains(v.as_str()))
        {
            return Err(Error::invalid(
                field,
                format!("原因里写到了{what}（现在或以前登记的），请删去：{STAYS}"),
            ));
        }
        if super::long_numbers::holds_long_number(reason) {
            return Err(Error::invalid(
                field,
                format!("原因里不能写身份证号、学籍号或电话号码：{STAYS}"),
            ));
        }
        Ok(())
    }

    /// Every value the child's name, 身份证号 and 学籍号, and her parents' and guardian's names
    /// and phones, had in her file's history, as far as this device holds it (since its last
    /// re-basing), each with what it is. Not a kinship word or a filler a roster puts in a
    /// name column ("奶奶", "不详"): a reason may say "随奶奶迁居".
    pub(super) fn identifying_values(
        &mut self,
        child: &ChildId,
    ) -> Result<Vec<(&'static str, String)>> {
        let mut out = std::collections::BTreeSet::new();
        let mut read = |doc: &DocId, fields: &[(&str, &str, &'static str)]| -> Result<()> {
            let Some(d) = self.store.doc(doc)? else {
                return Ok(());
            };
            let hashes: Vec<automerge::ChangeHash> =
                d.get_changes_meta(&[]).iter().map(|c| c.hash).collect();
            for (section, key, what) in fields {
                let Some(obj) = map_at(d, &ROOT, section) else {
                    continue;
                };
                // A key ending in `*` names every key it begins, each value "date who" (a
                // consent withdrawal, `consent::withdrawn_key`): who is taken.
                let prefix = key.strip_suffix('*');
                for h in &hashes {
                    let keys: Vec<String> = match prefix {
                        Some(p) => d
                            .keys_at(&obj, &[*h])
                            .filter(|k| k.starts_with(p))
                            .collect(),
                        None => vec![(*key).to_owned()],
                    };
                    for k in &keys {
                        for (value, _) in d.get_all_at(&obj, k.as_str(), &[*h]).unwrap_or_default()
                        {
                            let Some(s) = value.as_str() else { continue };
                            let s = match prefix {
                                Some(_) => s.split_once(' ').map_or("", |(_, who)| who),
                                None => s,
                            };
                            out.insert((*what, s.trim().to_owned()));
                        }
                    }
                }
            }
            Ok(())
        };
        read(
            &DocId::Child(child.clone()),
            &[
                ("profile", "name", "学生的姓名"),
                ("profile", "address", "家庭住址"),
                ("profile", crate::consent::GUARDIAN, "签同意书的监护人"),
                ("profile", crate::consent::WITHDRAWN_BY, "撤回同意的监护人"),
                ("profile", "consent_withdrawn:*", "撤回同意的监护人"),
                ("father", "name", "父亲的姓名"),
                ("father", "phone", "父亲的电话"),
                ("mother", "name", "母亲的姓名"),
                ("mother", "phone", "母亲的电话"),
                ("guardian", "name", "监护人的姓名"),
                ("guardian", "phone", "监护人的电话"),
                ("guardian", "address", "监护人的住址"),
            ],
        )?;
        read(
            &DocId::Staff(child.clone()),
            &[
                ("father", "work_place", "父亲的务工地址"),
                ("father", "employer", "父亲的务工单位"),
                ("father", "employer_phone", "父亲的单位电话"),
                ("mother", "work_place", "母亲的务工地址"),
                ("mother", "employer", "母亲的务工单位"),
                ("mother", "employer_phone", "母亲的单位电话"),
            ],
        )?;
        read(
            &DocId::Private(child.clone()),
            &[
                ("identity", "id_card", "身份证号"),
                ("identity", "student_no", "学籍号"),
            ],
        )?;
        // A name is also found by its given name, what people call her ("小雨父母离异"):
        // the name without its surname (one character, or two for a compound surname).
        let given: Vec<(&'static str, String)> = out
            .iter()
            .filter_map(|(what, v)| Some((given_name_of(what)?, v.trim())))
            .flat_map(|(what, v)| {
                let chars: Vec<char> = v.chars().collect();
                (1..=2)
                    .filter(move |&skip| chars.len() >= skip + 2)
                    .map(move |skip| (what, v.chars().skip(skip).collect::<String>()))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.extend(given);
        // A value of one character would refuse nearly every reason. Longest first: a
        // reason holding a whole name is told it names the person, not her given name.
        let mut found: Vec<(&'static str, String)> = out
            .into_iter()
            .map(|(what, v)| (what, v.trim().to_owned()))
            .filter(|(what, v)| {
                v.chars().count() >= min_chars(what) && !NOT_A_NAME.contains(&v.as_str())
            })
            .collect();
        found.sort_by_key(|(_, v)| std::cmp::Reverse(v.chars().count()));
        Ok(found)
    }
}

/// The fewest characters a value of `what` must have to be looked for: a place of two ("广东",
/// "本村") or an employer of up to three ("务农") names nobody, and a reason may say "转学至广东".
fn min_chars(what: &str) -> usize {
    if what.contains("务工") {
        4
    } else if what.contains("住址") {
        // A village of three ("红星村") does name a family's home.
        3
    } else {
        2
    }
}

/// What a name's given name is called in a refusal, for each name [`Archive::check_reason`]
/// looks for.
fn given_name_of(what: &str) -> Option<&'static str> {
    Some(match what {
        "学生的姓名" => "学生的名字",
        "父亲的姓名" => "父亲的名字",
        "母亲的姓名" => "母亲的名字",
        "监护人的姓名" => "监护人的名字",
        _ => return None,
    })
}
