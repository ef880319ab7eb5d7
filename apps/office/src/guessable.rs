//! What makes a new console password guessable: checked when one is set (the CLI's
//! `office-password`, the console's own form), so that a member's account, which opens her
//! children's files, is not the first guess of a script trying a list.
//!
//! The lock-outs (`auth.rs`) slow guessing to a few thousand tries a day per member; a
//! password from the top of the lists, or of a shape people pick when told "at least eight",
//! falls to that within a day. So, as NIST SP 800-63B §5.1.1.2 asks of a password's verifier,
//! a new one is compared with the most common passwords (those leaked Chinese lists put first)
//! and refused if it is one (or one with up to four characters added), or is one character, a run (`12345678`, `abcdefgh`, `87654321`),
//! a short block repeated (`123123123`, `5201314520`), a keyboard row, or a date
//! (`20150305`, a birthday). Anything else of eight characters or more is taken: no rule of
//! "a digit and a capital" (which users meet with `Password1`).

/// The most common passwords of Chinese users, lowercased (beyond the shapes checked below).
const COMMON: &[&str] = &[
    "password",
    "password1",
    "passw0rd",
    "p@ssw0rd",
    "iloveyou",
    "woaini1314",
    "woaini520",
    "woaini123",
    "5201314",
    "52013145201314",
    "1314520",
    "13145200",
    "a123456",
    "a1234567",
    "a12345678",
    "a123456789",
    "aa123456",
    "aa12345678",
    "abc123456",
    "abc12345",
    "abcd1234",
    "qq123456",
    "qq5201314",
    "1qaz2wsx",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "qwer1234",
    "asdf1234",
    "zxcv1234",
    "123456abc",
    "123456aa",
    "123456789a",
    "12345678a",
    "1234qwer",
    "1234abcd",
    "admin123",
    "admin888",
    "admin123456",
    "administrator",
    "root1234",
    "test1234",
    "welcome1",
    "sunshine",
    "princess",
    "football",
    "baseball",
    "superman",
    "dragon123",
    "shouwang",
    "shouwang123",
    "xuexiao123",
    "laoshi123",
    "zhongguo",
    "woaizhongguo",
    "147258369",
    "159357123",
    "147852369",
    "741852963",
    "1472583690",
    "123654789",
    "123698745",
    "987456321",
    "110110110",
    "789456123",
    "147147147",
];

/// Keyboard rows and columns people walk along.
const WALKS: &[&str] = &[
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "1qaz2wsx3edc4rfv",
    "qazwsxedc",
    "1234567890",
];

/// Why `password` is guessable, as a Chinese clause for "密码填写有误：…", or `None`.
pub(crate) fn why_guessable(password: &str) -> Option<&'static str> {
    let lower = password.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    // One of them, or one with up to four characters added before or after (`password2026`,
    // `5201314520`): what a list tries next.
    let near = |c: &&str| {
        lower.chars().count() <= c.chars().count() + 4
            && (lower.starts_with(*c) || lower.ends_with(*c))
    };
    if COMMON.iter().any(near) {
        return Some("这是最常被猜到的密码之一，请换一个别人猜不到的");
    }
    if chars.windows(2).all(|w| w[0] == w[1]) {
        return Some("全是同一个字符，很容易被猜到，请换一个");
    }
    if is_run(&chars) {
        return Some("是连续的数字或字母，很容易被猜到，请换一个");
    }
    if repeats_a_short_block(&chars) {
        return Some("是一小段内容的重复，很容易被猜到，请换一个");
    }
    if WALKS.iter().any(|w| w.contains(lower.as_str()))
        || WALKS
            .iter()
            .any(|w| w.chars().rev().collect::<String>().contains(lower.as_str()))
    {
        return Some("是键盘上连着的一排键，很容易被猜到，请换一个");
    }
    if is_date(&chars) {
        return Some("像是一个日期（比如生日），很容易被猜到，请换一个");
    }
    None
}

/// Each character one after the one before, or one before it (`12345678`, `hgfedcba`).
fn is_run(chars: &[char]) -> bool {
    let step = |d: i64| {
        chars
            .windows(2)
            .all(|w| i64::from(u32::from(w[1])) - i64::from(u32::from(w[0])) == d)
    };
    chars.len() > 1 && (step(1) || step(-1))
}

/// A block of at most four characters over and over (`123123123`, `abababab`, `5201520152`).
fn repeats_a_short_block(chars: &[char]) -> bool {
    (1..=4.min(chars.len() / 2)).any(|n| chars.iter().enumerate().all(|(i, c)| *c == chars[i % n]))
}

/// Eight digits that read as a date: `yyyymmdd` (1900–2099) or `ddmmyyyy`/`mmddyyyy`.
fn is_date(chars: &[char]) -> bool {
    if chars.len() != 8 || !chars.iter().all(char::is_ascii_digit) {
        return false;
    }
    let n = |a: usize, b: usize| -> u32 {
        chars[a..b]
            .iter()
            .fold(0, |acc, c| acc * 10 + c.to_digit(10).unwrap_or(0))
    };
    let year = |y: u32| (1900..=2099).contains(&y);
    let day_month = |d: u32, m: u32| (1..=31).contains(&d) && (1..=12).contains(&m);
    (year(n(0, 4)) && day_month(n(6, 8), n(4, 6)))
        || (year(n(4, 8)) && (day_month(n(0, 2), n(2, 4)) || day_month(n(2, 4), n(0, 2))))
}

#[cfg(test)]
mod tests {
    use super::why_guessable;

    #[test]
    fn the_passwords_a_list_tries_first_are_refused() {
        for p in [
            "12345678",
            "123456789",
            "87654321",
            "abcdefgh",
            "88888888",
            "11111111",
            "00000000",
            "123123123",
            "5201314520",
            "abababab",
            "password",
            "PassWord",
            "woaini1314",
            "1qaz2wsx",
            "qwertyuiop",
            "asdfghjk",
            "poiuytre",
            "20150305",
            "05032015",
            "a123456789",
            "147258369",
            "password2026",
            "!woaini1314",
        ] {
            assert!(why_guessable(p).is_some(), "{p} was taken");
        }
    }

    #[test]
    fn a_password_of_no_known_shape_is_taken() {
        for p in [
            "郭庄小学2026办公室",
            "郭庄小学2027办公室",
            "丁里镇的杏花开了",
            "correct horse battery",
            "wrx-7731-kmq",
            "20151305x",
            "19991399",
        ] {
            assert_eq!(why_guessable(p), None, "{p} was refused");
        }
    }
}
