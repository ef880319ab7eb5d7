//! The demo school's people: staff names, and children generated from common surnames and
//! given-name characters by a seeded generator, written out as a registry roster.

use std::collections::HashSet;

use shouwang_core::id_card::check_char;

use crate::error::{CliError, Result};

pub(super) const CLASSES: [&str; 12] = [
    "一年级(1)班",
    "一年级(2)班",
    "二年级(1)班",
    "二年级(2)班",
    "三年级(1)班",
    "三年级(2)班",
    "四年级(1)班",
    "四年级(2)班",
    "五年级(1)班",
    "五年级(2)班",
    "六年级(1)班",
    "六年级(2)班",
];

/// Children per class (341 in all).
const CLASS_SIZES: [usize; 12] = [27, 28, 29, 28, 30, 27, 29, 28, 31, 26, 30, 28];

/// 班主任 per class: the 郭庄 teachers of DOMAIN §8.2, then invented names.
pub(super) const HEAD_TEACHERS: [&str; 12] = [
    "晁月静",
    "陈华",
    "武秀梅",
    "姬广奎",
    "王瑞侠",
    "朱安喜",
    "蒋峰",
    "高秀云",
    "李建设",
    "周丽华",
    "孙长海",
    "杜文娟",
];

/// The 班主任 holding device A, and the class index.
pub(super) const TEACHER_A: &str = "王瑞侠";
pub(super) const CLASS_A: usize = 4;
/// The 爱心妈妈 holding device B.
pub(super) const MOTHER_B: &str = "刘桂兰";
pub(super) const LOVE_MOTHERS: [&str; 4] = [MOTHER_B, "陈秀英", "杨春梅", "赵玉珍"];
pub(super) const COUNSELLOR: &str = "何春燕";
/// The leadership group (000-A L8): 组长 and 副组长.
pub(super) const LEADERS: [&str; 2] = ["张长友", "王玉波"];
/// Subject teachers who are also 帮扶教师 (invented).
pub(super) const SUBJECT_TEACHERS: [&str; 2] = ["赵春燕", "许志刚"];
pub(super) const ARCHIVIST: &str = "陶淑芬";

/// Names from the seeds' private narratives: never generated (DOMAIN §8.3).
const FORBIDDEN: [&str; 5] = ["柳宏斌", "张冬月", "梁秋丽", "邱兰", "李素华"];

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "朱", "马", "胡", "郭",
    "何", "高", "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾",
    "田", "董", "袁", "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任",
    "沈", "姚", "卢", "姜", "崔", "钟", "汪", "范", "金", "石", "贾", "夏", "付", "方", "白", "邹",
    "孟", "秦", "邱", "江", "尹", "薛", "段", "侯", "史", "顾", "毛", "郝", "邵", "武", "戴", "孔",
    "常", "晁", "姬",
];
const BOY_CHARS: &[&str] = &[
    "浩", "宇", "轩", "博", "文", "俊", "杰", "明", "磊", "鑫", "晨", "阳", "天", "泽", "睿", "航",
    "昊", "然", "辰", "逸", "凯", "伟", "志", "鹏", "硕", "家", "乐", "锦", "星", "诚", "瑞", "豪",
    "嘉", "梓", "子", "一", "佳", "思", "安", "康",
];
const GIRL_CHARS: &[&str] = &[
    "欣", "怡", "涵", "雨", "萱", "诗", "琪", "子", "思", "佳", "悦", "可", "馨", "雅", "婷", "梦",
    "瑶", "静", "雪", "晴", "若", "心", "语", "芸", "紫", "彤", "妍", "婉", "月", "桐", "蕊", "晓",
    "一", "安", "梓", "嘉",
];
const OLD_MEN: &[&str] = &[
    "建国", "国华", "德明", "长林", "保田", "振华", "庆丰", "永福", "守成", "广田",
];
const OLD_WOMEN: &[&str] = &[
    "桂英", "秀兰", "玉兰", "凤英", "金凤", "玉珍", "翠兰", "桂芝", "秀珍", "兰英",
];
const FATHERS: &[&str] = &[
    "军", "伟", "强", "磊", "勇", "涛", "刚", "海", "峰", "斌", "亮", "超", "建华", "永强", "红军",
];
const MOTHERS: &[&str] = &[
    "丽", "娟", "敏", "燕", "芳", "霞", "红", "萍", "艳", "玲", "海燕", "丽娜", "春燕", "小红",
];
const VILLAGES: &[&str] = &[
    "郭庄村",
    "丁里村",
    "前营村",
    "后楼村",
    "西湖村",
    "大王村",
    "小李庄村",
    "陈圩村",
];
const MOBILE_PREFIXES: &[&str] = &[
    "139", "138", "135", "136", "137", "150", "151", "152", "157", "158", "159", "182", "187",
    "188", "130", "131", "155", "156", "185", "186", "133", "153", "180", "189", "177",
];
/// Administrative-division code used for the invented ID numbers.
const REGION: &str = "341302";

/// A small deterministic generator (SplitMix64), so the demo is the same every run.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub(super) fn mobile(&mut self) -> String {
        format!(
            "{}{:08}",
            self.pick(MOBILE_PREFIXES),
            self.next() % 100_000_000
        )
    }
}

/// A generated child, as one roster row.
#[derive(Debug, Clone)]
pub(super) struct Kid {
    pub(super) student_no: String,
    pub(super) name: String,
    male: bool,
    birth: chrono::NaiveDate,
    id_card: String,
    pub(super) class: &'static str,
    address: String,
    guardian: String,
    relation: &'static str,
    guardian_phone: String,
    father: String,
    father_phone: String,
    mother: String,
    mother_phone: String,
    away: &'static str,
    boarding: bool,
}

/// Names already used, so every generated person is distinct and none is forbidden.
pub(super) struct Names(HashSet<String>);

impl Names {
    pub(super) fn new() -> Self {
        let mut used: HashSet<String> = FORBIDDEN.iter().map(|s| (*s).to_owned()).collect();
        used.extend(HEAD_TEACHERS.iter().map(|s| (*s).to_owned()));
        used.extend(LOVE_MOTHERS.iter().map(|s| (*s).to_owned()));
        used.extend(LEADERS.iter().map(|s| (*s).to_owned()));
        used.extend(SUBJECT_TEACHERS.iter().map(|s| (*s).to_owned()));
        used.insert(COUNSELLOR.to_owned());
        used.insert(ARCHIVIST.to_owned());
        Names(used)
    }

    /// A fresh name: `surname` (or a random one) and a given name from `make`.
    fn fresh(
        &mut self,
        rng: &mut Rng,
        surname: Option<&str>,
        mut make: impl FnMut(&mut Rng) -> String,
    ) -> String {
        loop {
            let s = surname.map_or_else(|| rng.pick(SURNAMES).to_owned(), str::to_owned);
            let name = format!("{s}{}", make(rng));
            if self.0.insert(name.clone()) {
                return name;
            }
        }
    }
}

fn child_given(rng: &mut Rng, male: bool) -> String {
    let chars = if male { BOY_CHARS } else { GIRL_CHARS };
    if rng.chance(15) {
        rng.pick(chars).to_owned()
    } else {
        let a = rng.pick(chars);
        let mut b = rng.pick(chars);
        while b == a {
            b = rng.pick(chars);
        }
        format!("{a}{b}")
    }
}

pub(super) fn make_kids(rng: &mut Rng, names: &mut Names) -> Result<Vec<Kid>> {
    let mut kids = Vec::new();
    for (ci, (&class, &size)) in CLASSES.iter().zip(CLASS_SIZES.iter()).enumerate() {
        let grade = (ci / 2) as i32 + 1;
        // Grade 1 in autumn 2025: born 2018-09-01 .. 2019-08-31.
        let start = chrono::NaiveDate::from_ymd_opt(2019 - grade, 9, 1)
            .ok_or_else(|| CliError::msg("演示数据日期有误"))?;
        for _ in 0..size {
            let male = rng.chance(52);
            let surname = rng.pick(SURNAMES);
            let name = names.fresh(rng, Some(surname), |r| child_given(r, male));
            let birth = start + chrono::Days::new(rng.below(365) as u64);
            let seq = (rng.below(499) * 2 + usize::from(male)) % 1000;
            let body = format!("{REGION}{}{seq:03}", birth.format("%Y%m%d"));
            let check = check_char(&body).ok_or_else(|| CliError::msg("演示数据身份证号有误"))?;
            let id_card = format!("{body}{check}");
            let away = match rng.below(100) {
                0..=54 => "父母",
                55..=89 => "父亲",
                _ => "母亲",
            };
            let father = names.fresh(rng, Some(surname), |r| r.pick(FATHERS).to_owned());
            let mother = names.fresh(rng, None, |r| r.pick(MOTHERS).to_owned());
            let (father_phone, mother_phone) = (rng.mobile(), rng.mobile());
            let (guardian, relation, guardian_phone) = match away {
                "父亲" => (mother.clone(), "母亲", mother_phone.clone()),
                "母亲" => (father.clone(), "父亲", father_phone.clone()),
                _ => match rng.below(4) {
                    0 => (
                        names.fresh(rng, Some(surname), |r| r.pick(OLD_MEN).to_owned()),
                        "爷爷",
                        rng.mobile(),
                    ),
                    1 | 2 => (
                        names.fresh(rng, None, |r| r.pick(OLD_WOMEN).to_owned()),
                        "奶奶",
                        rng.mobile(),
                    ),
                    _ => (
                        names.fresh(rng, None, |r| r.pick(OLD_WOMEN).to_owned()),
                        "外婆",
                        rng.mobile(),
                    ),
                },
            };
            kids.push(Kid {
                student_no: format!("G{id_card}"),
                name,
                male,
                birth,
                id_card,
                class,
                address: format!("丁里镇{}{}组", rng.pick(VILLAGES), rng.below(12) + 1),
                guardian,
                relation,
                guardian_phone,
                father,
                father_phone,
                mother,
                mother_phone,
                away,
                boarding: grade == 6 && rng.chance(30),
            });
        }
    }
    Ok(kids)
}

const ROSTER_HEADER: [&str; 16] = [
    "学籍号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "班级",
    "家庭住址",
    "监护人",
    "与监护人关系",
    "联系电话",
    "父亲姓名",
    "父亲电话",
    "母亲姓名",
    "母亲电话",
    "外出务工",
    "寄宿",
];

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The roster as a registry CSV file.
pub(super) fn roster_csv(kids: &[Kid]) -> String {
    let mut s = ROSTER_HEADER.join(",");
    s.push('\n');
    for k in kids {
        let birth = k.birth.format("%Y-%m-%d").to_string();
        let cells = [
            k.student_no.as_str(),
            &k.name,
            if k.male { "男" } else { "女" },
            &birth,
            &k.id_card,
            k.class,
            &k.address,
            &k.guardian,
            k.relation,
            &k.guardian_phone,
            &k.father,
            &k.father_phone,
            &k.mother,
            &k.mother_phone,
            k.away,
            if k.boarding { "是" } else { "否" },
        ];
        let row: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        s.push_str(&row.join(","));
        s.push('\n');
    }
    s
}
