//! A member's standing shrinks while her phone is away (issue 9), end to end on the real
//! `shouwang` binary against the school hub: the office gives the class to another 班主任 and
//! ends the 爱心妈妈's pairing; offline, each still records for a child that is no longer
//! theirs. When they sync, what they typed reaches the school (nothing a person typed is
//! silently lost), the office sees it listed for review with what the member no longer holds,
//! and the phones then drop the files they may no longer see.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failure

mod common;

use common::hub::{TwoPhones, ok, record};
use shouwang_tests::fixtures::{holds_text, raw_store};

#[test]
fn story_work_done_offline_after_losing_a_class_or_a_pairing_reaches_the_school_for_review() {
    let school = TwoPhones::join();
    let (teacher, mother) = (school.teacher.clone(), school.mother.clone());
    let office = school.office();

    // 1. While both phones are away, the office gives the class to 韩老师 and ends the
    //    爱心妈妈's pairing with 王小雨.
    office.ok(&["member", "add", "韩老师", "--role", "班主任"]);
    office.ok(&["class", "head", "三年级(1)班", "--head", "韩老师"]);
    office.ok(&["pair", "--carer", "刘桂兰", "--child", "王小雨", "--end"]);

    // 2. Offline, each records as before.
    record(&teacher, "家访", "赵子涵", "离线家访：爷爷腿脚不好");
    record(&mother, "谈心", "王小雨", "离线谈心：想爸爸了");

    // 3. They sync: what they typed reaches the school.
    ok(&teacher, &["sync"]);
    ok(&mother, &["sync"]);
    let visit = office.ok(&["child", "show", "赵子涵"]);
    assert!(visit.contains("离线家访"), "{visit}");
    let talk = office.ok(&["child", "show", "王小雨"]);
    assert!(talk.contains("离线谈心"), "{talk}");

    // 4. The office sees both, listed for review with what each no longer holds.
    let review = office.ok(&["quarantine"]);
    assert!(review.contains("职责调整"), "{review}");
    assert!(
        review.contains("王瑞侠") && review.contains("已不再是三年级(1)班的班主任"),
        "{review}"
    );
    assert!(
        review.contains("刘桂兰") && review.contains("结对已结束"),
        "{review}"
    );
    assert!(review.contains("没有被拒绝的修改"), "{review}");
    // Where each came from, for people: the phone that sent it, not its raw id.
    assert!(review.contains("来源：王瑞侠（设备 "), "{review}");
    assert!(review.contains("来源：刘桂兰（设备 "), "{review}");

    // 5. The phones no longer hold the files that are not theirs any more.
    ok(&teacher, &["sync"]);
    ok(&mother, &["sync"]);
    for (phone, text) in [(&teacher, "离线家访"), (&mother, "离线谈心")] {
        assert!(!holds_text(&raw_store(phone), text), "{}", phone.display());
    }
}
