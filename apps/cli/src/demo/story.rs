//! What the two devices write while offline: records modelled on DOMAIN.md's narratives
//! (a home visit over field paths, a call with a father working away, weekly 爱心妈妈 talks),
//! and the same guardian's phone number changed to two different values.

use shouwang_core::{Archive, RecordInput};

use crate::error::Result;

/// The number device A writes (the father's word) and the one device B writes (the
/// grandmother's).
pub(super) const PHONE_FROM_FATHER: &str = "13956241178";
pub(super) const PHONE_FROM_GRANDMOTHER: &str = "15855643290";

pub(super) fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn record(
    a: &mut Archive,
    kind: &str,
    child: &str,
    date: &str,
    fields: &[(&str, &str)],
) -> Result<()> {
    a.add_record(&RecordInput {
        kind: kind.to_owned(),
        child: Some(child.to_owned()),
        class: None,
        date: date.to_owned(),
        fields: kv(fields),
    })?;
    Ok(())
}

/// Device A: the 班主任's week of records, written offline.
pub(super) fn write_a(a: &mut Archive, x: &str, y: &str) -> Result<()> {
    record(
        a,
        "家访",
        x,
        "2025-11-17",
        &[
            (
                "purpose",
                "期中考试后了解孩子在家的学习和生活情况，反馈考试成绩",
            ),
            ("met_with", "奶奶"),
            ("child_present", "是"),
            ("lives_with", "奶奶"),
            (
                "situation",
                "父母都在江苏昆山的电子厂打工，春节才回家。奶奶六十七岁，有高血压，家里还种着三亩麦子。",
            ),
            (
                "notes",
                "放学后跟孩子一起走了四十多分钟田埂路到家。孩子回家先写作业，字比上学期工整。奶奶说孩子晚上常抱着手机等妈妈的视频电话，等不到就不肯睡；奶奶不识字，作业辅导不了。",
            ),
            (
                "feedback",
                "建议奶奶每晚九点前督促孩子睡觉；和孩子约定每周六晚上与妈妈视频；数学作业有困难第二天到办公室问老师。",
            ),
        ],
    )?;
    record(
        a,
        "电话记录",
        x,
        "2025-11-18",
        &[
            ("with_whom", "父亲"),
            ("channel", "电话"),
            (
                "study",
                "期中考试语文82分、数学76分，比上学期有进步，应用题还要加强。",
            ),
            ("mental", "想妈妈，上课偶尔走神，和同学相处融洽。"),
            (
                "advice",
                "请父母每周固定时间给孩子打电话，多问问学习，多表扬。",
            ),
            (
                "notes",
                "与孩子父亲通话约十五分钟。父亲说厂里年底赶货，腊月二十左右才能回家，答应每周六晚上和孩子视频。父亲说奶奶换了手机号，告诉了老师新号码。",
            ),
        ],
    )?;
    record(
        a,
        "谈心",
        x,
        "2025-11-19",
        &[
            ("study", "说数学应用题读不懂题目，愿意每天多读两道题。"),
            ("emotion", "说起过年爸爸妈妈回来就很高兴。"),
            ("friends", "和同桌是好朋友，课间一起跳绳。"),
            (
                "notes",
                "课后在办公室谈心二十分钟。孩子最想让妈妈回来看“六一”文艺汇演。鼓励孩子把想说的话写进日记，周末视频时讲给妈妈听。",
            ),
        ],
    )?;
    record(
        a,
        "谈心",
        y,
        "2025-11-20",
        &[
            ("emotion", "担心爷爷的病，这几天有些低落。"),
            (
                "notes",
                "孩子最近作业拖拉。谈心中了解到爷爷住院，家里只有奶奶，晚上没人督促。已和任课老师商量，放学后留校完成作业再回家。",
            ),
        ],
    )?;
    a.edit_child(x, "guardian", &kv(&[("phone", PHONE_FROM_FATHER)]))?;
    Ok(())
}

/// Device B: the 爱心妈妈's weekly talks and a visit, written offline.
pub(super) fn write_b(b: &mut Archive, x: &str, z: &str) -> Result<()> {
    record(
        b,
        "谈心",
        x,
        "2025-11-16",
        &[
            (
                "study",
                "数学应用题不太会，约好周三放学后在留守儿童之家一起做题。",
            ),
            ("life", "会自己洗袜子、叠被子，奶奶夸孩子懂事。"),
            ("emotion", "说起妈妈时眼圈红了，想让妈妈回来过生日。"),
            ("friends", "和同桌关系好，没有和同学闹矛盾。"),
            ("health", "有点咳嗽，已提醒奶奶带孩子去村卫生室看看。"),
            (
                "notes",
                "周日下午在留守儿童之家聊了半个小时，一起读了一本绘本。孩子说这周在学校得了一朵小红花。",
            ),
        ],
    )?;
    record(
        b,
        "家访",
        x,
        "2025-11-19",
        &[
            ("purpose", "看望临时监护人，反馈孩子一周的情况"),
            ("met_with", "奶奶"),
            ("child_present", "否"),
            (
                "notes",
                "孩子还没放学，只见到了奶奶。送去一件棉袄和两本课外书。奶奶说她换了新手机，旧号码停用了，新号码请老师们记下来。",
            ),
            (
                "feedback",
                "提醒奶奶天冷给孩子加衣，咳嗽不见好要及时去卫生室。",
            ),
        ],
    )?;
    record(
        b,
        "谈心",
        z,
        "2025-11-16",
        &[
            ("study", "语文生字听写全对。"),
            ("emotion", "情绪稳定，爱笑。"),
            (
                "notes",
                "孩子说爸爸上周打电话说过年给她买新书包。一起叠了千纸鹤，约好下周给妈妈写一封信。",
            ),
        ],
    )?;
    b.edit_child(x, "guardian", &kv(&[("phone", PHONE_FROM_GRANDMOTHER)]))?;
    Ok(())
}
