//! Children's personal information through the app's API, on the real hub: the office (the
//! hub's own archive, opened with its data key as the console would) names the 个人信息保护负责人
//! and requires consent; the 班主任's phone sees both, records the grandmother's consent and
//! then her withdrawal, and its next 心理辅导记录 is refused; the 爱心妈妈's phone is reported
//! lost and the report lists the one child she cares for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use shouwang_core::roles::Role;
use shouwang_ffi::ShouwangError;
use shouwang_ffi::privacy::{ConsentDraft, WithdrawalDraft};
use shouwang_ffi::types::{DueRule, FieldInput, RecordDraft};

#[test]
fn consent_officer_and_a_lost_phone_through_the_app_api() {
    let hub = common::Hub::start();
    let office = hub.office();
    office
        .set_privacy_officer("王玉波".into(), "13805640099".into())
        .unwrap();
    office.require_consent().unwrap();
    let teacher = hub.join("t.db", "王瑞侠", Role::HeadTeacher, "王老师的手机");
    let mother = hub.join("m.db", "刘桂兰", Role::LoveMother, "刘桂兰的手机");
    let me = teacher.me().unwrap();
    assert_eq!(me.privacy_officer.unwrap().name, "王玉波");
    assert!(me.consent_required);
    let child = teacher
        .children(true)
        .unwrap()
        .into_iter()
        .find(|c| c.name == "王小雨")
        .unwrap()
        .id;
    let due = teacher.due(Some("2026-11-20".into()), false).unwrap();
    assert!(
        due.iter()
            .any(|d| d.rule == DueRule::GuardianConsent && d.child_id.as_ref() == Some(&child))
    );

    let counselling = |date: &str| RecordDraft {
        kind: "心理辅导记录".into(),
        child_id: Some(child.clone()),
        class_id: None,
        date: date.into(),
        fields: vec![FieldInput {
            key: "notes".into(),
            value: "想妈妈".into(),
        }],
    };
    assert!(matches!(
        teacher.add_record(counselling("2026-11-01")),
        Err(ShouwangError::NotPermitted { .. })
    ));
    teacher
        .record_consent(
            child.clone(),
            ConsentDraft {
                guardian: "王秀英".into(),
                relation: "奶奶".into(),
                date: "2026-09-01".into(),
                covers: vec!["basic".into(), "private".into()],
                form: "TY-2026-017".into(),
            },
        )
        .unwrap();
    teacher.add_record(counselling("2026-11-02")).unwrap();
    let file = teacher.child_file(child.clone()).unwrap();
    assert_eq!(file.consent.unwrap().effective, vec!["basic", "private"]);
    assert_eq!(file.privacy_officer.unwrap().name, "王玉波");
    let hint = teacher
        .withdraw_consent(
            child.clone(),
            WithdrawalDraft {
                date: "2026-11-10".into(),
                by: "王秀英".into(),
                covers: vec!["private".into()],
            },
        )
        .unwrap();
    // What she reads on her phone names who does what, never a command line to type.
    let typed = |text: &str| text.contains("shouwang") || text.contains("--");
    assert!(hint.contains("管理员删除") && !typed(&hint), "{hint}");
    match teacher.add_record(counselling("2026-11-12")) {
        Err(ShouwangError::NotPermitted { msg }) => {
            assert!(msg.contains("撤回") && !typed(&msg), "{msg}")
        }
        other => panic!("{other:?}"),
    }
    let c = teacher.child_file(child.clone()).unwrap().consent.unwrap();
    assert!(!c.objection);
    assert!(
        c.summary.contains("王秀英 于 2026-11-10 撤回：隐私部分"),
        "{}",
        c.summary
    );

    // A lost phone: only administrators report it.
    let code = mother.device_code().unwrap();
    assert!(matches!(
        teacher.report_lost_device(code.clone()),
        Err(ShouwangError::NotPermitted { .. })
    ));
    let report = office.report_lost_device(code).unwrap();
    assert_eq!(report.member, "刘桂兰");
    let names: Vec<&str> = report.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["王小雨"]);
    assert!(report.registered_at.is_some());
    drop((teacher, mother, office));
}
