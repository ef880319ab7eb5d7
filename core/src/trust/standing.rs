//! A member's *standing*: what the school gives one member to write (roles, whether active, the
//! classes they head, their class, their active pairings), and what of it a later school state
//! took away.
//!
//! A change is judged against the school state it declares (module docs), so a member who lost
//! part of their standing while offline (the office gave the class to another 班主任, ended a
//! pairing) can still write, on a phone that has not heard, what that earlier state allowed.
//! Refusing such a change on the replicas that have heard would make honest replicas diverge
//! (one that has not heard yet takes it, and the member's later work rests on it), so every
//! replica takes it; one whose school document now says otherwise also judges it against
//! [`as_of`]: the declared state with this member's standing replaced by today's. A change that
//! judgement refuses is listed for an administrator to review (`store::admit`, the `outdated`
//! table; `shouwang quarantine`), never refused.

use crate::ids::{ClassId, MemberId, PairingId};
use crate::school::SchoolView;

/// The declared school state `declared` with `member`'s standing cut down to what `now` still
/// gives them, and what was cut, in Chinese (one phrase each). None when `now` takes nothing
/// away (gains do not matter: the change was already allowed without them).
pub fn as_of(
    declared: &SchoolView,
    now: &SchoolView,
    member: &MemberId,
) -> Option<(SchoolView, Vec<String>)> {
    let was = declared.member(member)?;
    let is = now.member(member)?;
    let mut lost = Vec::new();
    let roles: Vec<_> = was
        .roles
        .iter()
        .copied()
        .filter(|r| !is.roles.contains(r))
        .collect();
    for r in &roles {
        lost.push(format!("已不再担任{}", r.label()));
    }
    let deactivated = was.active && !is.active;
    if deactivated {
        lost.push("已被停用".to_owned());
    }
    let heads = |v: &SchoolView| -> Vec<ClassId> {
        v.classes
            .iter()
            .filter(|c| c.head_teacher.as_ref() == Some(member))
            .map(|c| c.id.clone())
            .collect()
    };
    let now_heads = heads(now);
    let lost_heads: Vec<ClassId> = heads(declared)
        .into_iter()
        .filter(|c| !now_heads.contains(c))
        .collect();
    for c in &lost_heads {
        let name = declared.class(c).map_or(c.as_str(), |c| c.name.as_str());
        lost.push(format!("已不再是{name}的班主任"));
    }
    let class_lost = was.class_id.is_some() && was.class_id != is.class_id;
    let pairings = |v: &SchoolView| -> Vec<PairingId> {
        v.pairings
            .iter()
            .filter(|p| &p.carer == member && p.active)
            .map(|p| p.id.clone())
            .collect()
    };
    let now_pairings = pairings(now);
    let ended: Vec<PairingId> = pairings(declared)
        .into_iter()
        .filter(|p| !now_pairings.contains(p))
        .collect();
    if !ended.is_empty() {
        lost.push(format!("有 {} 个结对已结束", ended.len()));
    }
    if lost.is_empty() && !class_lost {
        return None;
    }
    let mut view = declared.clone();
    for m in view.members.iter_mut().filter(|m| &m.id == member) {
        m.roles.retain(|r| !roles.contains(r));
        m.active &= !deactivated;
        if class_lost {
            m.class_id.clone_from(&is.class_id);
        }
    }
    for c in view
        .classes
        .iter_mut()
        .filter(|c| lost_heads.contains(&c.id))
    {
        c.head_teacher = None;
    }
    for p in view.pairings.iter_mut().filter(|p| ended.contains(&p.id)) {
        p.active = false;
    }
    if lost.is_empty() {
        lost.push("所在班级已调整".to_owned());
    }
    Some((view, lost))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ids::ChildId;
    use crate::roles::Role;
    use crate::rules::RuleSettings;
    use crate::school::{ClassInfo, Member, Pairing};

    fn school() -> SchoolView {
        let member = |id: &str, roles: &[Role], class: Option<&str>| Member {
            id: MemberId(id.into()),
            name: id.into(),
            roles: roles.to_vec(),
            class_id: class.map(|c| ClassId(c.into())),
            phone: None,
            active: true,
        };
        SchoolView {
            name: "郭庄小学".into(),
            town: "丁里镇".into(),
            hotline: None,
            privacy_officer: None,
            consent_required: false,
            split_for_roles: true,
            classes: vec![ClassInfo {
                id: ClassId("k1".into()),
                name: "三年级(1)班".into(),
                head_teacher: Some(MemberId("wang".into())),
            }],
            members: vec![
                member("wang", &[Role::HeadTeacher], Some("k1")),
                member("liu", &[Role::LoveMother], None),
            ],
            pairings: vec![Pairing {
                id: PairingId("p1".into()),
                carer: MemberId("liu".into()),
                child: ChildId("c1".into()),
                role: Role::LoveMother,
                active: true,
            }],
            devices: Vec::new(),
            rules: RuleSettings::default(),
            erasures: Vec::new(),
            rebases: Vec::new(),
            departures: Vec::new(),
        }
    }

    #[test]
    fn nothing_lost_gives_nothing() {
        let s = school();
        let mut later = s.clone();
        later.members[1].roles.push(Role::ProxyParent);
        assert!(as_of(&s, &later, &MemberId("liu".into())).is_none());
        assert!(as_of(&s, &s, &MemberId("wang".into())).is_none());
    }

    #[test]
    fn a_class_given_to_another_head_is_cut() {
        let s = school();
        let mut later = s.clone();
        later.classes[0].head_teacher = Some(MemberId("han".into()));
        later.members[0].roles.clear();
        later.members[0].class_id = None;
        let (view, lost) = as_of(&s, &later, &MemberId("wang".into())).unwrap();
        assert_eq!(view.classes[0].head_teacher, None);
        assert!(view.members[0].roles.is_empty());
        assert_eq!(view.members[0].class_id, None);
        assert!(
            lost.iter().any(|l| l.contains("三年级(1)班的班主任")),
            "{lost:?}"
        );
        // The rest of the declared state is left as it was.
        assert_eq!(view.pairings, s.pairings);
    }

    #[test]
    fn an_ended_pairing_is_cut() {
        let s = school();
        let mut later = s.clone();
        later.pairings[0].active = false;
        let (view, lost) = as_of(&s, &later, &MemberId("liu".into())).unwrap();
        assert!(!view.pairings[0].active);
        assert_eq!(lost, vec!["有 1 个结对已结束".to_owned()]);
    }

    #[test]
    fn a_deactivated_member_is_cut() {
        let s = school();
        let mut later = s.clone();
        later.members[1].active = false;
        let (view, lost) = as_of(&s, &later, &MemberId("liu".into())).unwrap();
        assert!(!view.members[1].active);
        assert_eq!(lost, vec!["已被停用".to_owned()]);
    }
}
