//! Masking what an adapter says before it reaches a log, a rejection reason
//! or `last_error`: an adapter is third-party code that may echo personal
//! data from the message it was given.
//!
//! Two rules, both applied to log lines and trap texts (an adapter's own
//! refusals are deliberate text, written with the SDK's echo masking):
//! - any run of six or more digits (a CPR number in any of its spellings)
//!   becomes `*`s ([`bro_domain::mask_digit_runs`]);
//! - any word that looks like a name (a capital letter followed by lower-case
//!   letters) and also occurs as a word in the call's input becomes `***`.
//!   The host does not know the input's format, so it errs on the side of
//!   masking: in XML it skips markup, in every format it counts words of
//!   text and string values. A name the adapter made up is not the
//!   message's and stays.

use std::collections::HashSet;
use std::sync::OnceLock;

/// Masks text from an adapter against the input of one call. The input's
/// words are collected only if some text needs masking.
pub(crate) struct Masker<'a> {
    input: &'a [u8],
    markup: bool,
    words: OnceLock<HashSet<String>>,
}

/// What a masked name is replaced with.
const MASKED_NAME: &str = "***";

impl<'a> Masker<'a> {
    /// A masker for a call whose input is `input`, of `content_type`.
    pub(crate) fn new(input: &'a [u8], content_type: &str) -> Masker<'a> {
        Masker { input, markup: content_type.contains("xml"), words: OnceLock::new() }
    }

    /// `text` with CPR-like digit runs and the input's name-like words masked.
    pub(crate) fn mask(&self, text: &str) -> String {
        let text = bro_domain::mask_digit_runs(text);
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(start) = rest.find(|c: char| c.is_alphanumeric()) {
            out.push_str(&rest[..start]);
            let word_len = rest[start..].find(|c: char| !is_word_char(c)).unwrap_or(rest.len() - start);
            let word = &rest[start..start + word_len];
            if looks_like_name(word) && self.input_words().contains(word) {
                out.push_str(MASKED_NAME);
            } else {
                out.push_str(word);
            }
            rest = &rest[start + word_len..];
        }
        out.push_str(rest);
        out
    }

    fn input_words(&self) -> &HashSet<String> {
        self.words.get_or_init(|| name_like_words(self.input, self.markup))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '\'' | '_')
}

/// A capital letter, at least one lower-case letter, and nothing but letters,
/// `-` and `'`: `Mette`, `Testesen`, `Hansen-Olsen`; not `BIN01`, `XML`,
/// `Fuld_Tid` (a code), `a`.
fn looks_like_name(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(char::is_uppercase)
        && word.chars().any(char::is_lowercase)
        && word.chars().all(|c| c.is_alphabetic() || c == '-' || c == '\'')
}

/// The name-like words of an input read as (lossy) UTF-8, skipping markup
/// (`<…>`) when the input is XML.
fn name_like_words(input: &[u8], markup: bool) -> HashSet<String> {
    let text = String::from_utf8_lossy(input);
    let mut words = HashSet::new();
    let mut in_tag = false;
    let mut word = String::new();
    for c in text.chars() {
        if markup && c == '<' {
            in_tag = true;
        }
        if !in_tag && is_word_char(c) {
            word.push(c);
            continue;
        }
        if looks_like_name(&word) {
            words.insert(std::mem::take(&mut word));
        }
        word.clear();
        if markup && c == '>' {
            in_tag = false;
        }
    }
    if looks_like_name(&word) {
        words.insert(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_input_and_digit_runs_are_masked_and_nothing_else() {
        let input = "<Patient><name>Mette Testesen</name><cpr>0101901234</cpr><Note>Hansen-Olsen</Note></Patient>";
        let masker = Masker::new(input.as_bytes(), "application/xml");
        assert_eq!(
            masker.mask("panicked: no address for Mette Testesen (010190-1234) in Patient, BIN01; Hansen-Olsen"),
            "panicked: no address for *** *** (******-****) in Patient, BIN01; ***"
        );
        // A name the adapter made up, and markup names, stay.
        assert_eq!(masker.mask("Jens said hello to Note"), "Jens said hello to Note");
        let codes = Masker::new(b"<tag>Fuld_Tid</tag><code>Mette2</code>", "application/xml");
        assert_eq!(codes.mask("\"Fuld_Tid\" and Mette2 are codes"), "\"Fuld_Tid\" and Mette2 are codes");
        let json = Masker::new(br#"{"given": "Mette", "family": "Testesen"}"#, "application/json");
        assert_eq!(json.mask("bad name Mette"), "bad name ***");
        assert_eq!(json.mask(""), "");
    }
}
