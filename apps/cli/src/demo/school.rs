//! The school office's part: members, the roster import, 三特 flags and pairings.

use std::path::Path;

use shouwang_core::roles::Role;
use shouwang_core::{Archive, roster};

use super::people::{
    ARCHIVIST, CLASS_A, CLASSES, COUNSELLOR, HEAD_TEACHERS, Kid, LEADERS, LOVE_MOTHERS, MOTHER_B,
    Names, Rng, SUBJECT_TEACHERS, make_kids, roster_csv,
};
use super::story::kv;
use crate::commands::Ctx;
use crate::error::{Result, write_file_atomic};

/// Head teachers who also pair with children of other classes.
const ALSO_PAIRING: [&str; 2] = ["蒋峰", "姬广奎"];

/// Pairings (§1.14): `(carer, class index, children to skip, children to take)`. Leadership
/// ≥4 each, pairing teachers 2–3, one 爱心妈妈 per child, the 爱心辅导员 1–2.
const PAIRINGS: [(&str, usize, usize, usize); 15] = [
    (LEADERS[0], 7, 0, 2),
    (LEADERS[0], 8, 0, 2),
    (LEADERS[1], 9, 0, 2),
    (LEADERS[1], 10, 0, 2),
    (ALSO_PAIRING[0], 0, 3, 2),
    (ALSO_PAIRING[1], 1, 3, 2),
    (SUBJECT_TEACHERS[0], 10, 4, 3),
    (SUBJECT_TEACHERS[1], 11, 4, 3),
    // 刘桂兰 (device B): three children of 三年级(1)班 and two of 三年级(2)班.
    (MOTHER_B, CLASS_A, 0, 3),
    (MOTHER_B, CLASS_A + 1, 0, 2),
    (LOVE_MOTHERS[1], 1, 0, 4),
    (LOVE_MOTHERS[2], 2, 0, 4),
    (LOVE_MOTHERS[3], 3, 0, 4),
    (COUNSELLOR, 6, 6, 1),
    (COUNSELLOR, 7, 6, 1),
];

/// Builds the school on the office computer and says what it holds. Returns the children.
pub(super) fn build(ctx: &mut Ctx, dir: &Path, admin: &mut Archive) -> Result<Vec<Kid>> {
    let mut rng = Rng(0x5348_4F55_5741_4E47);
    let mut names = Names::new();
    for c in CLASSES {
        admin.add_class(c, None)?;
    }
    for leader in LEADERS {
        admin.add_member(leader, &[Role::Leadership], None, Some(&rng.mobile()))?;
    }
    for (class, teacher) in CLASSES.iter().zip(HEAD_TEACHERS) {
        let roles: &[Role] = if ALSO_PAIRING.contains(&teacher) {
            &[Role::HeadTeacher, Role::PairingTeacher]
        } else {
            &[Role::HeadTeacher]
        };
        admin.add_member(teacher, roles, Some(class), Some(&rng.mobile()))?;
    }
    for t in SUBJECT_TEACHERS {
        let roles = [Role::SubjectTeacher, Role::PairingTeacher];
        admin.add_member(t, &roles, None, Some(&rng.mobile()))?;
    }
    for m in LOVE_MOTHERS {
        admin.add_member(m, &[Role::LoveMother], None, Some(&rng.mobile()))?;
    }
    admin.add_member(COUNSELLOR, &[Role::Counsellor], None, Some(&rng.mobile()))?;

    // The roster goes through the real path: a registry CSV file, read and imported.
    let kids = make_kids(&mut rng, &mut names)?;
    let csv_path = dir.join("roster.csv");
    write_file_atomic("名单文件", &csv_path, roster_csv(&kids).as_bytes())?;
    let rows = roster::read_file(&csv_path)?;
    let report = admin.import_roster(&rows)?;

    // 三特 flags for a few children, as the census home visits would find them (§1.16).
    for (i, k) in kids.iter().enumerate().filter(|(i, _)| i % 37 == 5) {
        let flag = ["hardship", "talent", "special_needs"][i % 3];
        admin.edit_child(&k.student_no, "flags", &kv(&[(flag, "是")]))?;
    }

    for (carer, class, skip, take) in PAIRINGS {
        for k in kids
            .iter()
            .filter(|k| k.class == CLASSES[class])
            .skip(skip)
            .take(take)
        {
            admin.pair(carer, &k.student_no, None)?;
        }
    }

    let school = admin.school()?;
    ctx.line(format!(
        "学校：{}（{}），亲情电话 {}",
        school.name,
        school.town,
        school.hotline.as_deref().unwrap_or("—")
    ))?;
    ctx.line(format!(
        "班级 {} 个；成员 {} 人（校长{}、{}，档案管理员{}，班主任{}人，任课教师{}人，爱心妈妈{}人，爱心辅导员1人）",
        school.classes.len(),
        school.members.len(),
        LEADERS[0],
        LEADERS[1],
        ARCHIVIST,
        HEAD_TEACHERS.len(),
        SUBJECT_TEACHERS.len(),
        LOVE_MOTHERS.len()
    ))?;
    ctx.line(format!(
        "名单 {} 经学籍表导入：{} 行，新建学生档案 {} 份；结对帮扶 {} 对",
        csv_path.display(),
        report.rows,
        report.new_children,
        school.pairings.len()
    ))?;
    Ok(kids)
}
