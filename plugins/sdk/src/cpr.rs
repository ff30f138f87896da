//! CPR numbers (the Danish personal identification number) as bro keeps
//! them: ten digits, no hyphen. Modulus 11 is not checked, since numbers
//! issued since 2007 need not pass it.

/// A CPR number as ten digits: trimmed, one hyphen after the six-digit date allowed.
pub fn normalise(text: &str) -> Option<String> {
    let text = text.trim();
    let digits: String = match text.split_once('-') {
        Some((date, serial)) if date.len() == 6 && serial.len() == 4 => format!("{date}{serial}"),
        Some(_) => return None,
        None => text.to_owned(),
    };
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// Whether a normalised CPR number starts with a day 01–31 and a month 01–12.
pub fn is_dated(digits: &str) -> bool {
    let two = |i: usize| digits.get(i..i + 2).and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    (1..=31).contains(&two(0)) && (1..=12).contains(&two(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_normalised_to_ten_digits() {
        assert_eq!(normalise(" 050788-0000 ").as_deref(), Some("0507880000"));
        assert_eq!(normalise("2207921238").as_deref(), Some("2207921238"));
        assert_eq!(normalise("22079212381"), None);
        assert_eq!(normalise("2207-921238"), None);
        assert_eq!(normalise("0101A90X12"), None);
    }

    #[test]
    fn the_date_part_is_checked_apart() {
        assert!(is_dated("2207921238"));
        assert!(!is_dated("3213921238"));
        assert!(!is_dated("0000921238"));
    }
}
