//! Resident identity card numbers (公民身份号码), GB 11643-1999.
//!
//! An 18-character number: a 6-digit administrative-division code, an 8-digit birth date
//! (`YYYYMMDD`), a 3-digit sequence (odd for men, even for women) and a check character computed
//! with ISO 7064 MOD 11-2 over the first 17 digits: weights `2^(17-i) mod 11`, sum mod 11 mapped
//! through `1 0 X 9 8 7 6 5 4 3 2`.

use chrono::NaiveDate;

use crate::error::{Error, Result};

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
const FIELD: &str = "身份证号";

/// A validated 18-character identity number, upper-case `X`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdCardNumber(String);

impl IdCardNumber {
    /// Validates `raw` (spaces ignored, lower-case `x` accepted).
    pub fn parse(raw: &str) -> Result<Self> {
        let s: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if s.chars().count() != 18 {
            return Err(Error::invalid(FIELD, "应为18位"));
        }
        let chars: Vec<char> = s.chars().collect();
        let mut sum = 0u32;
        for (i, c) in chars[..17].iter().enumerate() {
            let d = c
                .to_digit(10)
                .ok_or_else(|| Error::invalid(FIELD, "前17位只能是数字"))?;
            sum += d * WEIGHTS[i];
        }
        let expected = CHECK[(sum % 11) as usize];
        if chars[17] != expected {
            return Err(Error::invalid(FIELD, "校验位不正确，请核对号码"));
        }
        let birth: String = chars[6..14].iter().collect();
        if NaiveDate::parse_from_str(&birth, "%Y%m%d").is_err() {
            return Err(Error::invalid(FIELD, "出生日期部分不是有效日期"));
        }
        Ok(IdCardNumber(s))
    }

    /// The number as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The birth date encoded in the number.
    pub fn birth_date(&self) -> Option<NaiveDate> {
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").ok()
    }

    /// The number with the birth date and sequence hidden, for lists: `340321********1234`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }
}

/// Computes the check character for 17 digits (used by fixtures to make valid numbers).
pub fn check_char(first17: &str) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0u32;
    for (i, c) in first17.chars().enumerate() {
        sum += c.to_digit(10)? * WEIGHTS[i];
    }
    Some(CHECK[(sum % 11) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_valid_number_and_lower_case_x() {
        // The GB 11643 worked example.
        let id = IdCardNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert!(IdCardNumber::parse("11010519491231002x").is_ok());
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31));
        assert_eq!(id.masked(), "110105********002X");
    }

    #[test]
    fn rejects_wrong_check_digit_length_and_date() {
        assert!(IdCardNumber::parse("110105194912310021").is_err());
        assert!(IdCardNumber::parse("11010519491231002").is_err());
        assert!(IdCardNumber::parse("1101051949123100AX").is_err());
        // 2015-02-30 with a correct check character is still refused.
        let body = "34032120150230001";
        let full = format!("{body}{}", check_char(body).unwrap());
        let err = IdCardNumber::parse(&full).unwrap_err().to_string();
        assert!(err.contains("出生日期"), "{err}");
    }

    #[test]
    fn check_char_roundtrips() {
        let body = "34032120150612001";
        let full = format!("{body}{}", check_char(body).unwrap());
        assert!(IdCardNumber::parse(&full).is_ok());
    }
}
