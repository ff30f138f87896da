//! Input echoed in an error without personal data: an adapter's errors reach
//! logs and operators, so a value from a message is clipped, any run of six
//! or more digits (it could be a CPR number) becomes `…`, and a value that
//! does not look like a code (a name typed into a code field) is not echoed
//! at all.

/// A value from the input, fit to echo in an error: at most `max`
/// characters, control characters dropped, runs of six or more digits
/// replaced by `…`.
pub fn masked(text: &str, max: usize) -> String {
    let clipped: String = text.chars().filter(|c| !c.is_control()).take(max).collect();
    let mut out = String::with_capacity(clipped.len());
    let mut digits = String::new();
    // A trailing space flushes the last run of digits; it is popped again below.
    for c in clipped.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        out.push_str(if digits.len() >= 6 { "…" } else { &digits });
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// A code from the input in double quotes, masked as [`masked`] does — or
/// the note `(a value that is not a code)` when it is empty, longer than 60
/// characters, or has a character that is neither alphanumeric nor one of
/// the format's `punctuation`.
pub fn quoted_code(text: &str, punctuation: &[char]) -> String {
    let code_like = !text.is_empty()
        && text.chars().count() <= 60
        && text.chars().all(|c| c.is_alphanumeric() || punctuation.contains(&c));
    if code_like { format!("\"{}\"", masked(text, 60)) } else { "(a value that is not a code)".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_are_masked_and_text_clipped() {
        assert_eq!(masked("Patient/2207921238", 60), "Patient/…");
        assert_eq!(masked("12345 123456", 60), "12345 …");
        assert_eq!(masked("a\u{7}bcdef", 3), "abc");
        assert_eq!(masked("2024-05-01\n", 40), "2024-05-01");
        assert_eq!(masked("", 10), "");
    }

    #[test]
    fn only_codes_are_quoted() {
        let punctuation = ['-', '_', '.', ':', '/', '+'];
        assert_eq!(quoted_code("løntilskud", &punctuation), "\"løntilskud\"");
        assert_eq!(quoted_code("x0507880000", &punctuation), "\"x…\"");
        assert_eq!(quoted_code("Mette Testesen", &punctuation), "(a value that is not a code)");
        assert_eq!(quoted_code("a#b", &punctuation), "(a value that is not a code)");
        assert_eq!(quoted_code("a#b", &['#']), "\"a#b\"");
        assert_eq!(quoted_code("", &punctuation), "(a value that is not a code)");
    }
}
