//! Which children a list shows: the filters shared by the office console's 学生 page and
//! `shouwang children` (a pure test on [`ChildRow`]; who may see which child is decided before,
//! by the archive's scope rules).

use super::ChildRow;
use crate::error::{Error, Result};

/// The 三特 flags as [`ChildRow::flags`] names them, with the keys the CLI also accepts.
const FLAGS: [(&str, &str); 3] = [
    ("hardship", "特困生"),
    ("talent", "特长生"),
    ("special", "特殊学生"),
];

/// Which parents work away, as stored (`parents_away`), with the words also accepted.
const AWAY: [(&str, &[&str]); 3] = [
    ("father", &["父亲", "父亲外出"]),
    ("mother", &["母亲", "母亲外出"]),
    ("both", &["父母", "父母均外出"]),
];

/// A filter on a list of children. Every part is optional (`None`, or empty text, passes
/// every child); a child is shown when it passes every part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildFilter {
    /// Part of the child's name or 编号.
    pub text: Option<String>,
    /// The class, by name.
    pub class: Option<String>,
    /// Which parents work away: `father`, `mother` or `both`.
    pub away: Option<String>,
    /// One 三特 flag: 特困生, 特长生 or 特殊学生.
    pub flag: Option<String>,
}

/// `s` trimmed, unless that leaves nothing.
fn given(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

impl ChildFilter {
    /// A filter from what a person typed: blank parts are dropped, a flag may be given by its
    /// key (`hardship`) or label (特困生) and the parents away by key (`father`) or in Chinese
    /// (父亲, 父亲外出); anything else is refused.
    pub fn parse(
        text: Option<&str>,
        class: Option<&str>,
        away: Option<&str>,
        flag: Option<&str>,
    ) -> Result<ChildFilter> {
        let away = given(away)
            .map(|a| {
                AWAY.iter()
                    .find(|(k, words)| *k == a || words.contains(&a))
                    .map(|(k, _)| (*k).to_owned())
                    .ok_or_else(|| Error::invalid("外出务工", "请填 父亲、母亲 或 父母"))
            })
            .transpose()?;
        let flag = given(flag)
            .map(|f| {
                FLAGS
                    .iter()
                    .find(|(k, l)| *k == f || *l == f)
                    .map(|(_, l)| (*l).to_owned())
                    .ok_or_else(|| Error::invalid("三特", "请填 特困生、特长生 或 特殊学生"))
            })
            .transpose()?;
        Ok(ChildFilter {
            text: given(text).map(str::to_owned),
            class: given(class).map(str::to_owned),
            away,
            flag,
        })
    }

    /// Whether no part is set (every child passes).
    pub fn is_empty(&self) -> bool {
        [&self.text, &self.class, &self.away, &self.flag]
            .iter()
            .all(|p| given(p.as_deref()).is_none())
    }

    /// Whether `row` passes every part that is set.
    pub fn matches(&self, row: &ChildRow) -> bool {
        let text = given(self.text.as_deref())
            .is_none_or(|q| row.name.contains(q) || row.id.as_str().contains(q));
        let class =
            given(self.class.as_deref()).is_none_or(|c| row.class_name.as_deref() == Some(c));
        let away =
            given(self.away.as_deref()).is_none_or(|a| row.parents_away.as_deref() == Some(a));
        let flag = given(self.flag.as_deref()).is_none_or(|f| row.flags.contains(&f));
        text && class && away && flag
    }

    /// The rows that pass, in their order.
    pub fn apply(&self, rows: Vec<ChildRow>) -> Vec<ChildRow> {
        rows.into_iter().filter(|r| self.matches(r)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::ids::ChildId;

    fn row(
        id: &str,
        name: &str,
        class: Option<&str>,
        away: Option<&str>,
        flags: &[&'static str],
    ) -> ChildRow {
        ChildRow {
            id: ChildId(id.to_owned()),
            name: name.to_owned(),
            class_name: class.map(str::to_owned),
            sex: None,
            parents_away: away.map(str::to_owned),
            flags: flags.to_vec(),
            records: 0,
            last_record: None,
        }
    }

    fn rows() -> Vec<ChildRow> {
        vec![
            row(
                "c1aa",
                "王小雨",
                Some("三年级(1)班"),
                Some("both"),
                &["特困生"],
            ),
            row("c2bb", "赵子涵", Some("三年级(1)班"), Some("father"), &[]),
            row(
                "c3cc",
                "李思远",
                Some("四年级(2)班"),
                Some("father"),
                &["特长生", "特困生"],
            ),
            row("c4dd", "孙浩然", None, None, &[]),
        ]
    }

    fn names(f: &ChildFilter) -> Vec<String> {
        f.apply(rows()).into_iter().map(|r| r.name).collect()
    }

    #[test]
    fn an_empty_filter_passes_every_child_in_order() {
        let f = ChildFilter::default();
        assert!(f.is_empty());
        assert_eq!(names(&f), ["王小雨", "赵子涵", "李思远", "孙浩然"]);
        let blank = ChildFilter::parse(Some(" "), Some(""), None, Some("  ")).unwrap();
        assert!(blank.is_empty());
        assert_eq!(blank, ChildFilter::default());
        // Blank parts set by hand pass too.
        let f = ChildFilter {
            text: Some(" ".into()),
            class: Some(String::new()),
            ..ChildFilter::default()
        };
        assert!(f.is_empty());
        assert_eq!(names(&f).len(), 4);
    }

    #[test]
    fn each_part_narrows_the_list_and_all_parts_must_hold() {
        let by =
            |text, class, away, flag| names(&ChildFilter::parse(text, class, away, flag).unwrap());
        assert_eq!(by(Some("小"), None, None, None), ["王小雨"]);
        assert_eq!(
            by(Some("c3"), None, None, None),
            ["李思远"],
            "part of the 编号"
        );
        assert_eq!(
            by(None, Some("三年级(1)班"), None, None),
            ["王小雨", "赵子涵"]
        );
        assert!(
            by(None, Some("三年级"), None, None).is_empty(),
            "a class is named whole"
        );
        assert_eq!(by(None, None, Some("father"), None), ["赵子涵", "李思远"]);
        assert_eq!(by(None, None, Some("父亲"), None), ["赵子涵", "李思远"]);
        assert_eq!(by(None, None, Some("父母均外出"), None), ["王小雨"]);
        assert_eq!(by(None, None, None, Some("特困生")), ["王小雨", "李思远"]);
        assert_eq!(by(None, None, None, Some("talent")), ["李思远"]);
        assert_eq!(
            by(None, Some("三年级(1)班"), Some("father"), Some("特困生")),
            Vec::<String>::new()
        );
        assert_eq!(
            by(
                Some("李"),
                Some("四年级(2)班"),
                Some("父亲"),
                Some("特长生")
            ),
            ["李思远"]
        );
    }

    #[test]
    fn unknown_words_are_refused_with_what_is_accepted() {
        let e = ChildFilter::parse(None, None, Some("grandma"), None).unwrap_err();
        assert!(e.to_string().contains("父亲、母亲 或 父母"), "{e}");
        let e = ChildFilter::parse(None, None, None, Some("三好学生")).unwrap_err();
        assert!(e.to_string().contains("特困生、特长生 或 特殊学生"), "{e}");
        // Set by hand to a value no child has, a part simply matches nothing.
        let f = ChildFilter {
            flag: Some("三好学生".into()),
            ..ChildFilter::default()
        };
        assert!(names(&f).is_empty());
    }
}
