//! What counts as a long number in text a person typed: a 身份证号, a 学籍号, a phone number.
//!
//! One rule, used twice: a reason that stays in the school document for good (an erasure's, a
//! re-basing's) is refused when it holds one ([`holds_long_number`]), and the access log takes
//! each one out of a reason it keeps ([`without_long_numbers`]).
//!
//! A long number is ten digits or more (a date has 8), however it is typed: full-width digits
//! count as digits, and up to three separators (spaces, a tab, dashes, dots, slashes,
//! underscores, half- or full-width) join groups of three digits or more ("139 0564 0001",
//! "139.0564.0001", "0564-4552466", "340521 20170305 002X"), never the short groups of a date or
//! a time ("2026-11-01 10:30", "2026.11.01"). A word of ASCII letters and digits holding ten
//! digits or more is one too, and a number found takes the letters of its word with it (an
//! ID's check letter X, a 学籍号's G).

use std::ops::Range;

/// Separators that may join groups of digits.
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '\u{3000}'
            | '-'
            | '－'
            | '‐'
            | '–'
            | '—'
            | '.'
            | '．'
            | '·'
            | '・'
            | '/'
            | '／'
            | '_'
            | '＿'
    )
}

/// The most separators between two groups of one number.
const MAX_GAP: usize = 3;

/// The shortest group after which a separator still continues the number.
const MIN_JOINED_GROUP: usize = 3;

/// The fewest digits that make a long number.
const LONG: usize = 10;

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || ('０'..='９').contains(&c)
}

/// Byte ranges of `text` holding a long number, in order, not overlapping.
fn long_numbers(text: &str) -> Vec<Range<usize>> {
    let mut found: Vec<Range<usize>> = Vec::new();
    // The number being read: where it started, where its last digit ends, how many digits.
    let mut run: Option<(usize, usize, usize)> = None;
    let (mut group, mut last_group, mut gap) = (0, 0, 0);
    let mut finish = |run: &mut Option<(usize, usize, usize)>| {
        if let Some((start, end, total)) = run.take()
            && total >= LONG
        {
            found.push(start..end);
        }
    };
    for (i, c) in text.char_indices() {
        if is_digit(c) {
            if gap > 0 && last_group < MIN_JOINED_GROUP {
                finish(&mut run);
            }
            gap = 0;
            group += 1;
            let end = i + c.len_utf8();
            run = Some(match run {
                Some((start, _, total)) => (start, end, total + 1),
                None => (i, end, 1),
            });
        } else if is_separator(c) && run.is_some() && gap < MAX_GAP {
            if gap == 0 {
                last_group = group;
                group = 0;
            }
            gap += 1;
        } else {
            finish(&mut run);
            (group, last_group, gap) = (0, 0, 0);
        }
    }
    finish(&mut run);
    // Words of ASCII letters and digits with ten digits or more (digits among letters).
    let mut word: Option<(usize, usize)> = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        if c.is_ascii_alphanumeric() {
            word.get_or_insert((i, 0)).1 += usize::from(c.is_ascii_digit());
        } else if let Some((start, digits)) = word.take()
            && digits >= LONG
        {
            found.push(start..i);
        }
    }
    // Each found number takes the letters and digits of its word, then overlaps merge.
    let bytes = text.as_bytes();
    for r in &mut found {
        while r.start > 0 && bytes[r.start - 1].is_ascii_alphanumeric() {
            r.start -= 1;
        }
        while r.end < bytes.len() && bytes[r.end].is_ascii_alphanumeric() {
            r.end += 1;
        }
    }
    found.sort_by_key(|r| r.start);
    let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
    for r in found {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Whether `text` holds a long number (see the module's rule).
pub(crate) fn holds_long_number(text: &str) -> bool {
    !long_numbers(text).is_empty()
}

/// `text` with every long number (see the module's rule) replaced by `＊`.
pub(crate) fn without_long_numbers(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for r in long_numbers(text) {
        out.push_str(&text[at..r.start]);
        out.push('＊');
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::{holds_long_number, without_long_numbers};

    /// A number of ten digits or more is found however a person types it; a date, a time, a
    /// date range or a count is not one.
    #[test]
    fn a_long_number_is_found_however_typed_and_a_date_is_not_one() {
        for number in [
            "电话13905640001",
            "电话 139 0564 0001",
            "电话139-0564-0001",
            "电话：0564-4552466",
            "电话１３９０５６４０００１",
            "G34052120170305002X",
            "身份证 340521 20170305 002X",
            "电话139.0564.0001",
            "电话139·0564·0001",
            "电话139\t0564\t0001",
            "电话139 - 0564 - 0001",
            "电话139／0564／0001",
            "电话１３９－０５６４－０００１",
        ] {
            assert!(holds_long_number(number), "{number}");
        }
        for other in [
            "2026年12月7日",
            "2026-11-01 10:30",
            "2026.11.01 10:30",
            "2026/11/01",
            "2026-11-01至2026-11-30",
            "2026-11-01—2026-11-30",
            "2026-11-01-2026-11-30",
            "2026.11.01-2026.11.30",
            "共 3 名学生，10 条记录",
            "更正身份证号和姓名",
        ] {
            assert!(!holds_long_number(other), "{other}");
        }
    }

    /// The access log's redaction takes out exactly what the reason check refuses: every long
    /// number however typed, with the letters of its word (an ID's X, a 学籍号's G), and
    /// nothing else.
    #[test]
    fn redaction_takes_out_what_the_check_finds_and_only_that() {
        for (typed, kept) in [
            (
                "电话 139.0564.0001，身份证 340521 20170305 002X，学籍号G34052120170305002X。",
                "电话 ＊，身份证 ＊，学籍号＊。",
            ),
            ("家长电话１３９－０５６４－０００１", "家长电话＊"),
            (
                "2026-11-01 10:30 家访，共 3 人",
                "2026-11-01 10:30 家访，共 3 人",
            ),
        ] {
            assert_eq!(without_long_numbers(typed), kept, "{typed}");
        }
    }
}
