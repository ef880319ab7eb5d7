//! The care file's sections and the kinds of care record (DOMAIN.md §1).
//!
//! Each section of a child's file (基本情况, 联系卡, 三特, private identity and flags) and each
//! record kind is one [`FieldSpec`] list. Adding a record kind is adding a variant here.

use serde::Serialize;

use crate::forms::{FieldKind as K, FieldSpec as F};
use crate::roles::Role;

const SEX: K = K::Choice(&[("male", "男"), ("female", "女")]);
const AWAY: K = K::Choice(&[
    ("father", "父亲外出"),
    ("mother", "母亲外出"),
    ("both", "父母均外出"),
]);
const RELATIVE: K = K::Choice(&[
    ("father", "父亲"),
    ("mother", "母亲"),
    ("both", "父母"),
    ("guardian", "监护人"),
]);
const CHANNEL: K = K::Choice(&[
    ("phone", "电话"),
    ("video", "视频"),
    ("wechat", "微信/QQ"),
    ("letter", "书信"),
]);

/// Which document a section or record lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocPart {
    /// `child/<id>`: shared with the child's carers.
    Child,
    /// `child/<id>/private`: 班主任, leadership and the archivist only.
    Private,
    /// `child/<id>/staff`: 班主任, leadership and the archivist only, under the basic consent
    /// (fields a carer does not need: see [`Section::staff`]).
    Staff,
    /// `class/<id>`: class-level logs.
    Class,
}

/// A section of a child's file: a map in the document with a fixed form.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Section {
    /// Map key in the document.
    pub key: &'static str,
    pub label: &'static str,
    pub part: DocPart,
    #[serde(skip)]
    pub fields: &'static [F],
    /// Fields of a shared section kept in the staff part instead (least collection per role,
    /// ARCHITECTURE.md "Who receives what").
    #[serde(skip)]
    pub staff: &'static [&'static str],
}

impl Section {
    /// The part of the file `field` lives in. `split`: whether the school's files are split by
    /// role (`school.split_for_roles`); before, a school made by an older build keeps every
    /// field of the shared sections in the shared file.
    pub fn part_of(&self, field: &str, split: bool) -> DocPart {
        match self.part {
            DocPart::Staff if !split => DocPart::Child,
            DocPart::Child if split && self.staff.contains(&field) => DocPart::Staff,
            p => p,
        }
    }
}

impl PartialEq for Section {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Section {}

/// 基本情况 (§1.1, §1.2).
pub const PROFILE: Section = Section {
    key: "profile",
    label: "基本情况",
    part: DocPart::Child,
    fields: &[
        F::req("name", "姓名", K::Line),
        F::opt("sex", "性别", SEX),
        F::opt("birth_date", "出生日期", K::Date),
        F::opt("class_id", "班级", K::Line),
        F::opt("boarding", "寄宿", K::Bool),
        F::opt("parents_away", "外出务工", AWAY),
        F::opt("address", "家庭住址", K::Line),
        F::opt("lives_with", "与谁生活", K::Line),
    ],
    staff: &[],
};

/// The parents' employer details: the 班主任 and administrators need them (DOMAIN.md §1.1 field
/// list B, §5.1), a carer who phones the parents does not.
const PARENT_STAFF: &[&str] = &["work_place", "employer", "employer_phone"];

const PARENT_FIELDS: &[F] = &[
    F::opt("name", "姓名", K::Line),
    F::opt("phone", "电话", K::Phone),
    F::opt("work_place", "务工地址", K::Line),
    F::opt("employer", "务工单位", K::Line),
    F::opt("employer_phone", "单位电话", K::Phone),
];

/// 联系卡: father (§1.3).
pub const FATHER: Section = Section {
    key: "father",
    label: "父亲",
    part: DocPart::Child,
    fields: PARENT_FIELDS,
    staff: PARENT_STAFF,
};

/// 联系卡: mother.
pub const MOTHER: Section = Section {
    key: "mother",
    label: "母亲",
    part: DocPart::Child,
    fields: PARENT_FIELDS,
    staff: PARENT_STAFF,
};

/// 联系卡: guardian or entrusted guardian (§1.1 field list B).
pub const GUARDIAN: Section = Section {
    key: "guardian",
    label: "监护人",
    part: DocPart::Child,
    fields: &[
        F::opt("name", "姓名", K::Line),
        F::opt("relation", "关系", K::Line),
        F::opt("occupation", "职业", K::Line),
        F::opt("address", "住址", K::Line),
        F::opt("phone", "电话", K::Phone),
        F::opt("age", "年龄", K::Int { min: 14, max: 110 }),
        F::opt("health", "身体状况", K::Line),
    ],
    // The guardian's personal data (DOMAIN.md §5.1): a carer visiting needs the name, relation,
    // address and phone only.
    staff: &["occupation", "age", "health"],
};

/// 三特 (§1.16): three independent flags.
pub const SANTE: Section = Section {
    key: "flags",
    label: "三特",
    part: DocPart::Staff,
    fields: &[
        F::opt("hardship", "特困生", K::Bool),
        F::opt("talent", "特长生", K::Bool),
        F::opt("special_needs", "残障生/特殊学生", K::Bool),
    ],
    staff: &[],
};

/// Private identity (§1.2, §5.1).
pub const IDENTITY: Section = Section {
    key: "identity",
    label: "身份信息",
    part: DocPart::Private,
    fields: &[
        F::opt("id_card", "身份证号", K::Line),
        F::opt("student_no", "学籍号", K::Line),
    ],
    staff: &[],
};

/// Private flags (§1.4, §5.1).
pub const PRIVATE_FLAGS: Section = Section {
    key: "private_flags",
    label: "特别关注",
    part: DocPart::Private,
    fields: &[
        F::opt("suspected_illegal", "涉嫌违法", K::Bool),
        F::opt("disciplinary", "纪律处分", K::Bool),
        F::opt("psychological", "心理问题", K::Bool),
        F::opt("study_decline", "学习严重滑坡", K::Bool),
    ],
    staff: &[],
};

/// Every section, in display order.
pub const SECTIONS: [Section; 7] = [
    PROFILE,
    FATHER,
    MOTHER,
    GUARDIAN,
    SANTE,
    IDENTITY,
    PRIVATE_FLAGS,
];

/// Finds a section by key or Chinese label (`guardian`, `监护人`).
pub fn section(key: &str) -> Option<Section> {
    SECTIONS
        .into_iter()
        .find(|s| s.key == key || s.label == key)
}

/// A kind of care record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// 家访记录 (§1.6).
    HomeVisit,
    /// 谈心记录 (§1.4, §1.9).
    Talk,
    /// 电话记录 with parents working away (§1.7).
    ParentCall,
    /// 走访记录 (§1.10).
    FieldVisit,
    /// 亲情电话 / 视频 (§1.8).
    FamilyCall,
    /// 活动登记 (§1.15 item 4).
    Activity,
    /// 成长特殊事迹 (§1.15 item 6).
    Highlight,
    /// 健康体检 (§1.18).
    HealthCheck,
    /// 学习帮扶计划, with 进步档案 entries (§1.13).
    StudyPlan,
    /// 亲情书信 (§1.24).
    Letter,
    /// 心理辅导记录 (private, §1.20).
    Counselling,
    /// 个别教育管理方案 (private, §1.5).
    EducationPlan,
    /// 班级关爱活动记录 (class log, §1.15 item 5).
    ClassActivity,
}

impl RecordKind {
    /// Every kind, in display order.
    pub const ALL: [RecordKind; 13] = [
        RecordKind::HomeVisit,
        RecordKind::Talk,
        RecordKind::ParentCall,
        RecordKind::FieldVisit,
        RecordKind::FamilyCall,
        RecordKind::Activity,
        RecordKind::Highlight,
        RecordKind::HealthCheck,
        RecordKind::StudyPlan,
        RecordKind::Letter,
        RecordKind::Counselling,
        RecordKind::EducationPlan,
        RecordKind::ClassActivity,
    ];

    /// Key stored in documents and used on the command line.
    pub fn key(self) -> &'static str {
        match self {
            RecordKind::HomeVisit => "home_visit",
            RecordKind::Talk => "talk",
            RecordKind::ParentCall => "parent_call",
            RecordKind::FieldVisit => "field_visit",
            RecordKind::FamilyCall => "family_call",
            RecordKind::Activity => "activity",
            RecordKind::Highlight => "highlight",
            RecordKind::HealthCheck => "health_check",
            RecordKind::StudyPlan => "study_plan",
            RecordKind::Letter => "letter",
            RecordKind::Counselling => "counselling",
            RecordKind::EducationPlan => "education_plan",
            RecordKind::ClassActivity => "class_activity",
        }
    }

    /// Chinese name.
    pub fn label(self) -> &'static str {
        match self {
            RecordKind::HomeVisit => "家访记录",
            RecordKind::Talk => "谈心记录",
            RecordKind::ParentCall => "电话记录",
            RecordKind::FieldVisit => "走访记录",
            RecordKind::FamilyCall => "亲情电话",
            RecordKind::Activity => "活动登记",
            RecordKind::Highlight => "成长特殊事迹",
            RecordKind::HealthCheck => "健康体检",
            RecordKind::StudyPlan => "学习帮扶计划",
            RecordKind::Letter => "亲情书信",
            RecordKind::Counselling => "心理辅导记录",
            RecordKind::EducationPlan => "个别教育管理方案",
            RecordKind::ClassActivity => "班级关爱活动记录",
        }
    }

    /// Parses a key, a Chinese name, or the name without 记录 (`家访`).
    pub fn parse(s: &str) -> Option<RecordKind> {
        let s = s.trim();
        RecordKind::ALL
            .into_iter()
            .find(|k| k.key() == s || k.label() == s || k.label().trim_end_matches("记录") == s)
    }

    /// Which document the record goes in.
    pub fn part(self) -> DocPart {
        match self {
            RecordKind::Counselling | RecordKind::EducationPlan => DocPart::Private,
            RecordKind::ClassActivity => DocPart::Class,
            _ => DocPart::Child,
        }
    }

    /// Who may write this kind (leadership and the archivist may write every kind).
    pub fn writers(self) -> &'static [Role] {
        use Role::*;
        match self {
            RecordKind::Counselling | RecordKind::EducationPlan => &[HeadTeacher],
            RecordKind::ClassActivity => &[HeadTeacher, SubjectTeacher, PairingTeacher],
            RecordKind::StudyPlan => &[HeadTeacher, SubjectTeacher, PairingTeacher],
            RecordKind::ParentCall => &[HeadTeacher, SubjectTeacher, PairingTeacher, ProxyParent],
            _ => &[
                HeadTeacher,
                SubjectTeacher,
                PairingTeacher,
                LoveMother,
                ProxyParent,
                Counsellor,
            ],
        }
    }

    /// The record's form. Every kind has a required `notes` text.
    pub fn fields(self) -> &'static [F] {
        match self {
            RecordKind::HomeVisit => HOME_VISIT_FIELDS,
            RecordKind::Talk => TALK_FIELDS,
            RecordKind::ParentCall => PARENT_CALL_FIELDS,
            RecordKind::FieldVisit => FIELD_VISIT_FIELDS,
            RecordKind::FamilyCall => FAMILY_CALL_FIELDS,
            RecordKind::Activity => ACTIVITY_FIELDS,
            RecordKind::Highlight => HIGHLIGHT_FIELDS,
            RecordKind::HealthCheck => HEALTH_CHECK_FIELDS,
            RecordKind::StudyPlan => STUDY_PLAN_FIELDS,
            RecordKind::Letter => LETTER_FIELDS,
            RecordKind::Counselling => COUNSELLING_FIELDS,
            RecordKind::EducationPlan => EDUCATION_PLAN_FIELDS,
            RecordKind::ClassActivity => CLASS_ACTIVITY_FIELDS,
        }
    }
}

const HOME_VISIT_FIELDS: &[F] = &[
    F::opt("purpose", "家访目的", K::Text),
    F::opt("met_with", "接待人", K::Line),
    F::opt("child_present", "孩子在场", K::Bool),
    F::opt("lives_with", "与谁生活", K::Line),
    F::opt("situation", "家庭情况", K::Text),
    F::req("notes", "情况记录", K::Text),
    F::opt("feedback", "反馈与建议", K::Text),
];

const TALK_FIELDS: &[F] = &[
    F::opt("study", "学习", K::Text),
    F::opt("life", "生活", K::Text),
    F::opt("emotion", "情绪", K::Text),
    F::opt("friends", "交友", K::Text),
    F::opt("health", "身体", K::Text),
    F::req("notes", "谈话内容", K::Text),
];

const PARENT_CALL_FIELDS: &[F] = &[
    F::req("with_whom", "联系对象", RELATIVE),
    F::opt("channel", "方式", CHANNEL),
    F::opt("study", "学习情况", K::Text),
    F::opt("mental", "心理状况", K::Text),
    F::opt("advice", "建议", K::Text),
    F::req("notes", "通话内容", K::Text),
];

const FIELD_VISIT_FIELDS: &[F] = &[
    F::opt("life", "生活", K::Text),
    F::opt("study", "学习", K::Text),
    F::opt("mental", "心理状况", K::Text),
    F::opt("help", "提供的帮助", K::Text),
    F::req("notes", "走访情况", K::Text),
];

const FAMILY_CALL_FIELDS: &[F] = &[
    F::opt("channel", "方式", CHANNEL),
    F::opt("parent", "通话对象", RELATIVE),
    F::opt("minutes", "时长(分钟)", K::Int { min: 0, max: 600 }),
    F::opt("appointment", "预约", K::Bool),
    F::req("notes", "备注", K::Text),
];

const ACTIVITY_FIELDS: &[F] = &[
    F::req("name", "活动名称", K::Line),
    F::opt("role", "担任", K::Line),
    F::opt("award", "获奖", K::Line),
    F::req("notes", "表现", K::Text),
];

const HIGHLIGHT_FIELDS: &[F] = &[
    F::req("title", "事迹", K::Line),
    F::req("notes", "详细经过", K::Text),
];

const HEALTH_CHECK_FIELDS: &[F] = &[
    F::opt(
        "height_cm",
        "身高(cm)",
        K::Decimal {
            min: 50.0,
            max: 230.0,
        },
    ),
    F::opt(
        "weight_kg",
        "体重(kg)",
        K::Decimal {
            min: 8.0,
            max: 200.0,
        },
    ),
    F::opt("blood_pressure", "血压", K::Line),
    F::opt("vision_left", "左眼视力", K::Decimal { min: 3.0, max: 5.5 }),
    F::opt(
        "vision_right",
        "右眼视力",
        K::Decimal { min: 3.0, max: 5.5 },
    ),
    F::opt(
        "lung_capacity",
        "肺活量(ml)",
        K::Int {
            min: 200,
            max: 8000,
        },
    ),
    F::opt(
        "chest_cm",
        "胸围(cm)",
        K::Decimal {
            min: 30.0,
            max: 150.0,
        },
    ),
    F::opt("ent", "五官检查", K::Line),
    F::opt("examiner", "体检单位", K::Line),
    F::req("notes", "结论", K::Text),
];

const STUDY_PLAN_FIELDS: &[F] = &[
    F::req("subject", "科目", K::Line),
    F::req("schedule", "帮扶时间", K::Line),
    F::opt("helper", "学习帮手", K::Line),
    F::opt("stage_goal", "阶段性效果", K::Text),
    F::req("notes", "帮扶内容", K::Text),
];

const LETTER_FIELDS: &[F] = &[
    F::opt("occasion", "时机", K::Line),
    F::opt("to_whom", "写给", RELATIVE),
    F::opt("sent", "已寄出", K::Bool),
    F::req("notes", "备注", K::Text),
];

const COUNSELLING_FIELDS: &[F] = &[F::req("notes", "辅导记录", K::Text)];

const EDUCATION_PLAN_FIELDS: &[F] = &[
    F::req(
        "reason",
        "原因",
        K::Choice(&[
            ("study_decline", "学习严重滑坡"),
            ("personality", "人格发展不健全"),
            ("moral", "道德发展失范"),
            ("illegal", "涉嫌违法"),
        ]),
    ),
    F::opt("measures", "矫治和帮助措施", K::Text),
    F::req("notes", "方案内容", K::Text),
];

const CLASS_ACTIVITY_FIELDS: &[F] = &[
    F::req("title", "活动名称", K::Line),
    F::opt("organiser", "组织者", K::Line),
    F::opt("participants", "参加人数", K::Int { min: 0, max: 5000 }),
    F::req("notes", "活动内容", K::Text),
];

/// The form of a 进步档案 entry under a 学习帮扶计划.
pub const PROGRESS_FIELDS: &[F] = &[
    F::opt("result", "阶段成绩", K::Line),
    F::req("notes", "进步情况", K::Text),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_notes_and_parses_from_its_names() {
        for k in RecordKind::ALL {
            assert!(
                k.fields().iter().any(|f| f.key == "notes" && f.required),
                "{k:?}"
            );
            assert_eq!(RecordKind::parse(k.key()), Some(k));
            assert_eq!(RecordKind::parse(k.label()), Some(k));
        }
        assert_eq!(RecordKind::parse("家访"), Some(RecordKind::HomeVisit));
        assert_eq!(RecordKind::parse("谈心"), Some(RecordKind::Talk));
        assert_eq!(section("监护人"), Some(GUARDIAN));
    }
}
