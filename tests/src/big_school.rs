//! 郭庄小学 at full size, for the reconnect storm (`relay/benches/storm.rs`, BENCHMARKS §7):
//! 200 members (班主任, 任课教师, 帮扶教师, 爱心妈妈, 代理家长, 爱心辅导员), 240 children in 12
//! classes and 720 pairings, planned from fixed seeds so every run has the same school
//! ([`plan_school`]); the school set up in a hub's data directory ([`set_up_school`]: classes,
//! members, the roster, pairings); the 家访 and 谈心 each member writes ([`record_input`]); and
//! the check that a hub's store holds every record written exactly once ([`verify_records`]).
//!
//! Names are drawn from the lists below and never name a real person of DOMAIN.md §8.3
//! (`FORBIDDEN`); 学籍号 are `G34152220` + five digits ([`student_no`]).

use std::collections::{HashMap, HashSet};

use shouwang_core::RecordInput;
use shouwang_core::archive::SchoolSetup;
use shouwang_core::roles::Role;
use shouwang_core::roster::parse_table;
use shouwang_relay::server::{self, DataDir};

use crate::roster::{self, ChildRow, Column};
use crate::seeded::Xorshift;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "胡", "朱", "高", "林",
    "何", "郭", "马", "罗", "宋", "郑", "谢", "韩", "唐", "冯", "于", "董", "程", "曹", "袁", "邓",
    "许", "沈", "彭", "吕", "苏", "卢", "蒋", "蔡", "贾", "丁", "魏", "薛", "叶", "余", "潘", "杜",
    "戴", "夏", "钟", "汪", "田", "任", "姜", "范", "方", "石", "姚", "谭",
];
/// Women's given names (爱心妈妈, and some teachers).
const WOMEN: &[&str] = &[
    "桂兰", "秀英", "玉梅", "丽娟", "春燕", "红霞", "淑芬", "美玲", "海燕", "凤英", "金凤", "秀珍",
    "雪梅", "晓红", "玉兰", "素芳", "月娥", "翠萍", "荣华", "玉珍", "巧云", "兰英", "小燕", "慧敏",
    "爱华", "秋菊", "冬梅", "彩霞", "红梅", "丽萍",
];
/// Men's given names.
const MEN: &[&str] = &[
    "建国", "志强", "国庆", "文斌", "海涛", "永军", "明亮", "建华", "春生", "立新", "卫东", "德胜",
    "光明", "晓东", "宏伟", "家明", "少华", "振宇", "学军", "忠良", "长青", "志刚", "小军", "新民",
    "世平", "保国", "如海", "广平", "宏亮", "俊峰",
];
/// Children's given names (disjoint from the adults').
const CHILDREN: &[&str] = &[
    "子涵", "雨桐", "浩然", "梓萱", "欣怡", "一诺", "宇轩", "思远", "俊杰", "佳怡", "梦琪", "嘉豪",
    "天佑", "雨泽", "诗涵", "若曦", "晨阳", "家乐", "可馨", "博文", "子墨", "明轩", "欣然", "语嫣",
    "浩宇", "紫萱", "俊熙", "乐瑶", "锦程", "雨萱", "思琪", "一鸣", "安琪", "梓航", "文博", "昊天",
    "欣妍", "子轩", "舒窈", "沐阳",
];
/// DOMAIN.md §8.3: real people in sensitive narratives, never fixtures.
const FORBIDDEN: &[&str] = &["柳宏斌", "张冬月", "梁秋丽", "邱兰", "李素华"];

const GRADES: &[&str] = &["一", "二", "三", "四", "五", "六"];
pub const CLASSES: usize = 12;
pub const CHILDREN_PER_CLASS: usize = 20;

fn unique_name(rng: &mut Xorshift, given: &[&str], taken: &mut HashSet<String>) -> String {
    loop {
        let name = format!("{}{}", rng.pick(SURNAMES), rng.pick(given));
        if !FORBIDDEN.contains(&name.as_str()) && taken.insert(name.clone()) {
            return name;
        }
    }
}

pub fn class_name(i: usize) -> String {
    format!("{}年级({})班", GRADES[i / 2], i % 2 + 1)
}

pub fn student_no(child: usize) -> String {
    format!("G34152220{:05}", 15_000 + child * 7)
}

/// One member of staff or volunteer, and the children they record for.
#[derive(Debug, Clone)]
pub struct MemberPlan {
    pub name: String,
    pub role: Role,
    /// The class a 班主任 heads.
    pub class: Option<usize>,
    /// Children (indexes) this member writes records for.
    pub children: Vec<usize>,
}

/// The school as planned: children's names (their index is their place in the roster) and the
/// members in plan order.
#[derive(Debug, Clone)]
pub struct SchoolPlan {
    pub children: Vec<String>,
    pub members: Vec<MemberPlan>,
}

/// 200 members: 12 班主任 (one per class), 24 任课教师, 24 帮扶教师, 80 爱心妈妈 (one per child),
/// 30 代理家长 and 30 爱心辅导员; 240 children in 12 classes. The members are interleaved by
/// role so that the first N of them (`STORM_DEVICES`) are a mix.
pub fn plan_school() -> SchoolPlan {
    let mut rng = Xorshift(0x5EED_2026_1123);
    let mut adults = HashSet::from(["张长友".to_owned()]);
    let mut kids = HashSet::new();
    let n_children = CLASSES * CHILDREN_PER_CLASS;
    let children: Vec<String> = (0..n_children)
        .map(|_| unique_name(&mut rng, CHILDREN, &mut kids))
        .collect();
    let mut groups: Vec<Vec<MemberPlan>> = Vec::new();
    let mut add = |role: Role, n: usize, per: usize, stride: usize, offset: usize| {
        let mut g = Vec::new();
        for k in 0..n {
            let given = if role == Role::LoveMother || k % 2 == 1 {
                WOMEN
            } else {
                MEN
            };
            let name = unique_name(&mut rng, given, &mut adults);
            let (class, kids) = if role == Role::HeadTeacher {
                let c: Vec<usize> =
                    (k * CHILDREN_PER_CLASS..(k + 1) * CHILDREN_PER_CLASS).collect();
                (Some(k), c)
            } else {
                let c = (0..per)
                    .map(|j| (offset + k * per * stride + j * stride) % n_children)
                    .collect();
                (None, c)
            };
            g.push(MemberPlan {
                name,
                role,
                class,
                children: kids,
            });
        }
        groups.push(g);
    };
    add(Role::HeadTeacher, CLASSES, 0, 0, 0);
    add(Role::SubjectTeacher, 24, 2, 5, 3);
    add(Role::PairingTeacher, 24, 3, 3, 1);
    add(Role::LoveMother, 80, 3, 1, 0);
    add(Role::ProxyParent, 30, 2, 4, 2);
    add(Role::Counsellor, 30, 2, 4, 0);
    // Interleave: one of each group in turn.
    let mut members = Vec::new();
    let mut iters: Vec<_> = groups.into_iter().map(Vec::into_iter).collect();
    loop {
        let mut any = false;
        for it in &mut iters {
            if let Some(m) = it.next() {
                members.push(m);
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    for n in children.iter().chain(members.iter().map(|m| &m.name)) {
        assert!(!FORBIDDEN.contains(&n.as_str()));
    }
    SchoolPlan { children, members }
}

const VISIT_PURPOSE: &[&str] = &[
    "了解孩子国庆后的学习和生活情况",
    "反馈期中考试成绩，商量下一步学习安排",
    "天气转凉，看看孩子的衣被是否备齐",
    "孩子最近上课走神，了解家里的情况",
    "核实监护人电话，更新联系卡",
    "了解孩子周末在家的作息",
];
const VISIT_MET: &[&str] = &["奶奶", "爷爷", "外婆", "外公", "姑姑", "母亲"];
const VISIT_LIVES: &[&str] = &["爷爷奶奶", "外公外婆", "母亲", "姑姑一家", "奶奶"];
const VISIT_SITUATION: &[&str] = &[
    "父母在外务工，家里种着几亩小麦，奶奶身体尚可",
    "父亲在合肥建筑工地，母亲在苏州电子厂，爷爷腿脚不便",
    "父母离家三年，过年才回来，外婆一人照顾两个孩子",
    "母亲在家照顾弟弟，父亲在浙江打工，家里新盖了平房",
    "爷爷奶奶年纪大，家里养了两头猪，经济比较紧张",
];
const VISIT_NOTES: &[&str] = &[
    "走了四十分钟田埂路到家，孩子正在写作业。",
    "奶奶说孩子晚上看电视到很晚，已提醒控制时间。",
    "孩子的数学作业订正得认真，语文背诵还需加强。",
    "家里新装了宽带，每周日晚上和妈妈视频。",
    "孩子说想爸爸了，约好期末爸爸回来开家长会。",
    "屋里收拾得干净，孩子的床铺换了厚被子。",
    "爷爷不识字，作业签字请邻居帮忙，已和班主任商量改为电话反馈。",
    "孩子主动拿出奖状给我看，情绪比上次开朗。",
    "孩子不在家，去地里帮奶奶收花生，向邻居了解了近况。",
    "外婆反映孩子放学后常去村口小卖部玩手机游戏。",
];
const VISIT_FEEDBACK: &[&str] = &[
    "建议每天固定时间完成作业，周末多读课外书。",
    "已把孩子在校表现告诉奶奶，请家里多鼓励。",
    "提醒注意用电用火安全，冬季不要让孩子独自在家。",
    "下次家访带几本适合孩子年级的课外书。",
    "请监护人每周和孩子父母通一次电话，说说孩子的进步。",
];
const TALK_STUDY: &[&str] = &[
    "这周数学单元测验考了86分，比上次进步",
    "英语单词默写错得多，约好每天课间背五个",
    "作文《我的妈妈》写得很用心，在班上读了",
    "上课举手比以前多了，字也写得工整了",
    "科学课做实验很积极，回家讲给奶奶听",
];
const TALK_LIFE: &[&str] = &[
    "住校生活已经适应，会自己洗袜子",
    "奶奶生病住院几天，这周自己做早饭",
    "周末帮爷爷剥花生、喂鸡",
    "天冷了，早上起不来，迟到过一次",
];
const TALK_EMOTION: &[&str] = &[
    "提到爸爸过年不回来，情绪有些低落",
    "心情不错，说起班里的拔河比赛很兴奋",
    "和同桌闹了别扭，有点委屈",
    "说想妈妈，哭了一会儿，后来平静下来",
];
const TALK_FRIENDS: &[&str] = &[
    "和同村的两个同学一起上下学",
    "交了新朋友，课间一起跳绳",
    "不太爱说话，课间常一个人",
];
const TALK_HEALTH: &[&str] = &[
    "感冒刚好，还有点咳嗽",
    "身体健康，饭量正常",
    "视力有下降，建议去镇卫生院检查",
];
const TALK_NOTES: &[&str] = &[
    "在留守儿童之家谈了二十分钟。",
    "约定下周一起读完《小英雄雨来》。",
    "鼓励孩子有心事就写在心理信箱里。",
    "帮孩子用亲情电话给妈妈打了电话，说了十分钟。",
    "表扬了孩子这周按时交作业，孩子很高兴。",
    "提醒孩子放学路上不要去河边玩水。",
    "孩子说奶奶的腿疼又犯了，放学后要早点回家帮忙。",
];

fn sentence(rng: &mut Xorshift, from: &[&str], n: usize) -> String {
    let mut out = String::new();
    let start = rng.below(from.len());
    for i in 0..n {
        out.push_str(from[(start + i * 3) % from.len()]);
    }
    out
}

/// The `k`-th new record of a member: teachers mostly visit, 爱心妈妈 mostly talk.
pub fn record_input(rng: &mut Xorshift, m: &MemberPlan, k: usize, child: &str) -> RecordInput {
    let visits = match m.role {
        Role::LoveMother => k.is_multiple_of(4),
        Role::Counsellor | Role::ProxyParent => k.is_multiple_of(2),
        _ => k % 3 != 2,
    };
    let date = format!("2026-11-{:02}", 2 + (k * 19 / 20));
    let f = |k: &str, v: String| (k.to_owned(), v);
    let fields = if visits {
        vec![
            f("purpose", rng.pick(VISIT_PURPOSE).to_owned()),
            f("met_with", rng.pick(VISIT_MET).to_owned()),
            f(
                "child_present",
                if rng.below(5) == 0 { "否" } else { "是" }.to_owned(),
            ),
            f("lives_with", rng.pick(VISIT_LIVES).to_owned()),
            f("situation", rng.pick(VISIT_SITUATION).to_owned()),
            f("notes", sentence(rng, VISIT_NOTES, 3)),
            f("feedback", rng.pick(VISIT_FEEDBACK).to_owned()),
        ]
    } else {
        vec![
            f("study", rng.pick(TALK_STUDY).to_owned()),
            f("life", rng.pick(TALK_LIFE).to_owned()),
            f("emotion", rng.pick(TALK_EMOTION).to_owned()),
            f("friends", rng.pick(TALK_FRIENDS).to_owned()),
            f("health", rng.pick(TALK_HEALTH).to_owned()),
            f("notes", sentence(rng, TALK_NOTES, 2)),
        ]
    };
    RecordInput {
        kind: if visits { "家访" } else { "谈心" }.into(),
        child: Some(child.to_owned()),
        class: None,
        date,
        fields,
    }
}

/// Creates the school in the hub's data directory, with classes, members, the roster and
/// pairings. Returns the member ids in plan order.
pub fn set_up_school(data: &DataDir, plan: &SchoolPlan) -> Vec<String> {
    let mut office = server::init_school(
        data,
        &SchoolSetup {
            hotline: Some("0564-4552466".into()),
            ..SchoolSetup::sample("学校服务器")
        },
    )
    .unwrap();
    let mut ids = vec![String::new(); plan.members.len()];
    // 班主任 first: a class names its head teacher.
    for (i, m) in plan.members.iter().enumerate() {
        if m.role == Role::HeadTeacher {
            ids[i] = office.add_member(&m.name, &[m.role], None, None).unwrap().0;
            office
                .add_class(&class_name(m.class.unwrap()), Some(&ids[i]))
                .unwrap();
        }
    }
    for (i, m) in plan.members.iter().enumerate() {
        if m.role != Role::HeadTeacher {
            ids[i] = office.add_member(&m.name, &[m.role], None, None).unwrap().0;
        }
    }
    let mut rng = Xorshift(0xC0FF_EE00_0564);
    let columns = [
        Column::StudentNo,
        Column::Name,
        Column::Class,
        Column::Sex,
        Column::Address,
        Column::Guardian,
        Column::GuardianRelation,
        Column::ParentsAway,
    ];
    let children = plan.children.iter().enumerate().map(|(c, name)| {
        let relation = ["祖母", "祖父", "外祖母", "母亲"][rng.below(4)];
        ChildRow {
            sex: if rng.below(2) == 0 { "男" } else { "女" }.into(),
            address: format!("丁里镇郭庄村{}组", 1 + rng.below(9)),
            guardian: format!("{}{}", rng.pick(SURNAMES), rng.pick(WOMEN)),
            guardian_relation: relation.into(),
            parents_away: ["父亲外出", "母亲外出", "父母均外出"][rng.below(3)].into(),
            ..ChildRow::new(
                student_no(c),
                name.clone(),
                class_name(c / CHILDREN_PER_CLASS),
            )
        }
    });
    let table = roster::table(&columns, children);
    office.import_roster(&parse_table(&table).unwrap()).unwrap();
    for (i, m) in plan.members.iter().enumerate() {
        if m.role == Role::HeadTeacher {
            continue;
        }
        for &c in &m.children {
            office.pair(&ids[i], &student_no(c), Some(m.role)).unwrap();
        }
    }
    ids
}

/// Opens the stopped hub's store and checks that every record the phones wrote is there exactly
/// once, both in the documents and in the projection, and nothing else is. Returns how many
/// of `written` were found.
pub fn verify_records(
    hub_db: &DataDir,
    plan: &SchoolPlan,
    written: &[String],
    total_expected: usize,
) -> usize {
    let mut hub = hub_db.open_archive().unwrap();
    let mut in_docs: HashMap<String, usize> = HashMap::new();
    for c in 0..plan.children.len() {
        for r in hub.child_file(&student_no(c)).unwrap().records {
            *in_docs.entry(r.meta.id.0).or_default() += 1;
        }
    }
    let mut in_rows: HashMap<String, usize> = HashMap::new();
    {
        let conn = hub.store().conn();
        let mut stmt = conn.prepare("SELECT record_id FROM p_records").unwrap();
        for id in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            *in_rows.entry(id.unwrap()).or_default() += 1;
        }
    }
    let mut once = 0;
    for id in written {
        let d = in_docs.get(id).copied().unwrap_or(0);
        let p = in_rows.get(id).copied().unwrap_or(0);
        assert_eq!((d, p), (1, 1), "record {id}: {d} in documents, {p} rows");
        once += 1;
    }
    let total: usize = in_docs.values().sum();
    assert_eq!(total, total_expected, "records in the hub's documents");
    assert!(in_docs.values().all(|&n| n == 1), "a record is duplicated");
    assert_eq!(in_rows.len(), total_expected, "records in p_records");
    once
}
