//! Guardian consent and the school's 个人信息保护负责人: recording, withdrawing, requiring
//! (the model and the gate are in [`crate::consent`]).

use automerge::ROOT;

use super::Archive;
use super::care::consent_error;
use crate::consent::{self, Consent, Cover};
use crate::dates::parse_date;
use crate::doc::DocId;
use crate::doc::access::{get_str, map_at, put_str};
use crate::error::{Error, Result};
use crate::ids::ChildId;
use crate::school::{self, PrivacyOfficer};

/// A guardian's consent as the 班主任 enters it from the paper form.
#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    /// The guardian's name.
    pub guardian: String,
    /// Their relation to the child (奶奶, 父亲, …).
    pub relation: String,
    /// The date on the form.
    pub date: String,
    /// What it covers: `basic`, `private`, `photos` (or 基本档案、隐私部分、照片), comma-separated.
    pub covers: String,
    /// The paper form's number.
    pub form: String,
}

/// A withdrawal of consent.
#[derive(Debug, Clone, Default)]
pub struct WithdrawalInput {
    pub date: String,
    /// Who withdrew it (the guardian's name).
    pub by: String,
    /// What is withdrawn, as for [`ConsentInput::covers`].
    pub covers: String,
}

fn required(field: &str, value: &str) -> Result<String> {
    let v = value.trim();
    if v.is_empty() {
        Err(Error::Missing(field.to_owned()))
    } else if v.chars().count() > 50 {
        Err(Error::invalid(field, "太长了（最多50个字）"))
    } else {
        Ok(v.to_owned())
    }
}

fn covers(field: &str, raw: &str) -> Result<Vec<Cover>> {
    let list = Cover::parse_list(raw).map_err(|bad| {
        Error::invalid(
            field,
            format!("没有“{bad}”，可选：basic(基本档案)、private(隐私部分)、photos(照片)"),
        )
    })?;
    if list.is_empty() {
        return Err(Error::Missing(field.to_owned()));
    }
    Ok(list)
}

impl Archive {
    /// The consent a child's file records now.
    pub(crate) fn consent_of(&mut self, child: &ChildId) -> Result<Option<Consent>> {
        Ok(self
            .store
            .doc(&DocId::Child(child.clone()))?
            .and_then(|d| consent::read(d, None)))
    }

    /// The consent a child's file records (`None`: none yet).
    pub fn consent(&mut self, child: &str) -> Result<Option<Consent>> {
        let child = self.find_child(child)?;
        let me = self.me()?;
        self.require_care(&me, &DocId::Child(child.clone()))?;
        self.consent_of(&child)
    }

    /// Refuses new content in `doc` of `child` that the guardian's consent does not allow
    /// (the rule every device applies on arrival, [`crate::trust::consent_refusal`]).
    pub(crate) fn require_consent_for(&mut self, child: &ChildId, doc: &DocId) -> Result<()> {
        let school = self.school()?;
        let auth = crate::trust::AuthState {
            school: &school,
            child_class: self.class_of(child)?,
            consent: self.consent_of(child)?,
        };
        match crate::trust::consent_refusal(&auth, doc) {
            Some(reason) => Err(consent_error(&reason, &auth)),
            None => Ok(()),
        }
    }

    fn require_consent_recorder(&mut self, child: &ChildId) -> Result<()> {
        let me = self.me()?;
        let school = self.school()?;
        let auth = crate::trust::AuthState {
            school: &school,
            child_class: self.class_of(child)?,
            consent: None,
        };
        if crate::trust::may_record_consent(&auth, &me) {
            Ok(())
        } else {
            Err(Error::NotPermitted(format!(
                "{}（{}）不能登记这名学生的监护人同意，需要班主任、校长或档案管理员",
                me.name,
                me.role_labels()
            )))
        }
    }

    /// Records a guardian's consent from the paper form: the child's 班主任 or an
    /// administrator. Replaces an earlier grant, and lifts a withdrawal as far as the new grant
    /// covers it: what was withdrawn and is not granted again stays withdrawn.
    pub fn record_consent(&mut self, child: &str, input: &ConsentInput) -> Result<()> {
        let child = self.find_child(child)?;
        self.require_consent_recorder(&child)?;
        let guardian = required("监护人", &input.guardian)?;
        let relation = required("与学生关系", &input.relation)?;
        let date = parse_date("同意日期", &input.date)?;
        let list = covers("同意范围", &input.covers)?;
        let form = required("同意书编号", &input.form)?;
        let message = format!("登记监护人同意：{}", Cover::labels(&list));
        let recorded = crate::ids::RecordId::new(chrono::Utc::now().timestamp_millis());
        let doc = DocId::Child(child);
        self.store.write(|b| {
            b.touched_subject(&doc);
            b.change_judged(&doc, false, &message, |tx| {
                let p = map_at(tx, &ROOT, "profile")
                    .ok_or_else(|| Error::Corrupt("档案结构".into()))?;
                put_str(tx, &p, consent::GUARDIAN, &guardian)?;
                put_str(tx, &p, consent::RELATION, &relation)?;
                put_str(tx, &p, consent::DATE, &date.format("%Y-%m-%d").to_string())?;
                put_str(tx, &p, consent::COVERS, &Cover::join(&list))?;
                // A new value every time: the change carries its grant even when the form is
                // entered again unchanged (`trust::rules`, `check_consent_lifts`).
                put_str(tx, &p, consent::RECORDED, recorded.as_str())?;
                put_str(tx, &p, consent::FORM, &form)?;
                // The withdrawals of what it grants are lifted, each its own key (read inside
                // the write: a withdrawal synced a moment ago included); the others stay.
                move_withdrawal_list(tx, &p)?;
                for c in &list {
                    let k = consent::withdrawn_key(*c);
                    if automerge::ReadDoc::get(tx, &p, k.as_str())?.is_some() {
                        automerge::transaction::Transactable::delete(tx, &p, k.as_str())?;
                    }
                }
                Ok(())
            })
        })
    }

    /// Records that the guardian withdrew consent (all or part of it), or, where none was
    /// recorded, objects to the school recording it (拒绝): from then on nothing new of what it
    /// covers is written, on any device. Returns the hint about erasing what the file already
    /// holds (erasure itself is `child erase`).
    pub fn withdraw_consent(&mut self, child: &str, input: &WithdrawalInput) -> Result<String> {
        let child = self.find_child(child)?;
        self.require_consent_recorder(&child)?;
        let date = parse_date("撤回日期", &input.date)?;
        let by = required("撤回人", &input.by)?;
        let named = covers("撤回范围", &input.covers)?;
        let mut list = named.clone();
        let current = self.consent_of(&child)?;
        if let Some(w) = current.as_ref().and_then(|c| c.withdrawn.as_ref()) {
            list.extend(w.covers.iter().copied());
            list.sort();
            list.dedup();
        }
        let granted = current.as_ref().is_some_and(|c| !c.covers.is_empty());
        let (verb, message) = if granted {
            ("撤回", format!("登记撤回同意：{}", Cover::labels(&list)))
        } else {
            (
                "监护人拒绝",
                format!("登记监护人拒绝：{}", Cover::labels(&list)),
            )
        };
        let doc = DocId::Child(child.clone());
        self.store.write(|b| {
            b.touched_subject(&doc);
            b.change_judged(&doc, false, &message, |tx| {
                let p = map_at(tx, &ROOT, "profile")
                    .ok_or_else(|| Error::Corrupt("档案结构".into()))?;
                move_withdrawal_list(tx, &p)?;
                // Only what this withdrawal names: a key written again would take the place
                // of a grant's delete made meanwhile on another device.
                let value = consent::withdrawn_value(&date.format("%Y-%m-%d").to_string(), &by);
                for c in &named {
                    put_str(tx, &p, &consent::withdrawn_key(*c), &value)?;
                }
                Ok(())
            })
        })?;
        let kept = if named.contains(&Cover::Basic) {
            "这名学生的档案此后只由学校管理员保留，其他老师和志愿者的设备把已写的内容交给学校后删除；"
        } else if named.contains(&Cover::Private) {
            "隐私部分此后只由学校管理员保留，其他老师的设备把已写的内容交给学校后删除；"
        } else {
            ""
        };
        Ok(format!(
            "已登记{verb}（{}）：此后不能再新增这些内容。{kept}{}。",
            Cover::labels(&list),
            super::care::ERASE_ADVICE
        ))
    }

    /// From now on, the private part of every child's file needs guardian consent
    /// (administrators; cannot be undone). Private parts already written stay as they are.
    pub fn require_consent(&mut self) -> Result<()> {
        self.require_admin()?;
        if self.school()?.consent_required {
            return Ok(());
        }
        self.store.write(|b| {
            b.change(&DocId::School, false, "要求监护人同意", |tx| {
                school::require_consent(tx)
            })
        })
    }

    /// Names the school's 个人信息保护负责人 and their phone (administrators).
    pub fn set_privacy_officer(&mut self, name: &str, phone: &str) -> Result<()> {
        self.require_admin()?;
        let name = required("个人信息保护负责人", name)?;
        let phone = crate::forms::parse_phone("联系电话", phone)?;
        let officer = PrivacyOfficer {
            name,
            phone: Some(phone),
        };
        if self.school()?.privacy_officer.as_ref() == Some(&officer) {
            return Ok(());
        }
        self.store.write(|b| {
            b.change(
                &DocId::School,
                false,
                "设置个人信息保护负责人",
                |tx| school::set_privacy_officer(tx, &officer),
            )
        })
    }

    /// Whether the child's private part already holds exactly the row's 学籍号 and 身份证号
    /// (so withholding them changes nothing and is not worth reporting).
    pub(super) fn holds_identity(
        &mut self,
        id: &ChildId,
        row: &crate::roster::RosterRow,
    ) -> Result<bool> {
        let Some(doc) = self.store.doc(&DocId::Private(id.clone()))? else {
            return Ok(false);
        };
        let identity = map_at(doc, &ROOT, crate::kinds::IDENTITY.key);
        let held = |k: &str| identity.as_ref().and_then(|o| get_str(doc, o, k));
        Ok(row
            .student_no
            .as_ref()
            .is_none_or(|v| held("student_no").as_ref() == Some(v))
            && row
                .id_card
                .as_ref()
                .is_none_or(|v| held("id_card").as_ref() == Some(v)))
    }
}

/// Moves a withdrawal kept as one list by older builds (`consent::WITHDRAWN_COVERS`) to a key
/// per cover, where a later grant lifts only what it covers ([`crate::consent`]). A cover that
/// already has its key keeps it.
fn move_withdrawal_list(
    tx: &mut automerge::transaction::Transaction<'_>,
    p: &automerge::ObjId,
) -> Result<()> {
    use automerge::ReadDoc;
    use automerge::transaction::Transactable;
    let Some(date) = get_str(tx, p, consent::WITHDRAWN_ON) else {
        return Ok(());
    };
    let by = get_str(tx, p, consent::WITHDRAWN_BY).unwrap_or_default();
    let covers = get_str(tx, p, consent::WITHDRAWN_COVERS).unwrap_or_default();
    if covers
        .split(',')
        .filter(|c| !c.trim().is_empty())
        .any(|c| Cover::parse(c).is_none())
    {
        // Not written by any build (an older one named only the covers it knew): left as it
        // is, read beside the keys.
        return Ok(());
    }
    for c in covers.split(',').filter_map(Cover::parse) {
        let k = consent::withdrawn_key(c);
        if tx.get(p, k.as_str())?.is_none() {
            put_str(tx, p, &k, &consent::withdrawn_value(&date, &by))?;
        }
    }
    for k in [
        consent::WITHDRAWN_ON,
        consent::WITHDRAWN_BY,
        consent::WITHDRAWN_COVERS,
    ] {
        if tx.get(p, k)?.is_some() {
            tx.delete(p, k)?;
        }
    }
    Ok(())
}
