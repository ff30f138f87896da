//! Identifiers and validated strings: case ids, party ids, consent scopes,
//! and person identifiers that never print in clear.

use std::fmt;

use crate::Violations;

/// Longest free-text field bro accepts (names, reasons, goals), in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Longest identifier (ids, scopes, system names), in bytes.
pub const MAX_ID_LEN: usize = 63;

/// Checks a short id: 1–63 of `a-z`, `0-9`, `-`, `_`, starting with a letter or digit.
pub fn check_id(field: &str, value: &str) -> Result<(), Violations> {
    let ok = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else if value.is_empty() {
        Err(Violations::one(field, "is required"))
    } else {
        Err(Violations::one(
            field,
            format!(
                "{:?} is not a valid id: use 1 to {MAX_ID_LEN} lowercase letters, digits, '-' or '_'",
                truncate(value, 80)
            ),
        ))
    }
}

/// Checks a free-text field's length.
pub fn check_text(field: &str, value: &str) -> Result<(), Violations> {
    if value.len() > MAX_TEXT_LEN {
        Err(Violations::one(field, format!("is {} bytes long; at most {MAX_TEXT_LEN} are allowed", value.len())))
    } else {
        Ok(())
    }
}

/// Masks every run of six or more digits, counting digits joined by single
/// separators (`-`, space, `.`, `/`) as one run — a CPR number written
/// `0101901234`, `010190-1234` or `01 01 90 12 34` — for text from outside (an
/// adapter's error, a receiver's answer) before it is logged, stored or
/// returned. Separators inside a masked run are kept.
pub fn mask_digit_runs(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run: digits, and single separators between digits.
        let start = i;
        let mut end = i;
        let mut digits = 0;
        while end < chars.len() {
            if chars[end].is_ascii_digit() {
                digits += 1;
                end += 1;
            } else if matches!(chars[end], '-' | ' ' | '.' | '/')
                && chars.get(end + 1).is_some_and(char::is_ascii_digit)
            {
                end += 1;
            } else {
                break;
            }
        }
        for &c in &chars[start..end] {
            out.push(if digits >= 6 && c.is_ascii_digit() { '*' } else { c });
        }
        i = end;
    }
    out
}

/// Shortens a string for an error message, on a char boundary.
pub fn truncate(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        pub struct $name(String);

        impl $name {
            /// Parses and checks an id; `field` names it in the error.
            pub fn parse(field: &str, value: &str) -> Result<Self, Violations> {
                check_id(field, value)?;
                Ok($name(value.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// The id of a case: the `{case}` in `cases/{case}`.
    CaseId
);
string_id!(
    /// The id of a party (custody holder) within a case, e.g. `parent-1`.
    PartyId
);

impl CaseId {
    /// The resource name `cases/{case}`.
    pub fn resource_name(&self) -> String {
        format!("cases/{}", self.0)
    }

    /// Parses a resource name `cases/{case}`.
    pub fn from_resource_name(field: &str, name: &str) -> Result<Self, Violations> {
        match name.strip_prefix("cases/") {
            Some(id) => CaseId::parse(field, id),
            None if name.is_empty() => Err(Violations::one(field, "is required")),
            None => Err(Violations::one(
                field,
                format!("{:?} is not a case name of the form cases/{{case}}", truncate(name, 80)),
            )),
        }
    }
}

/// Which register a person identifier comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PersonIdKind {
    /// A CPR number.
    Cpr,
    /// A replacement CPR number (erstatnings-CPR).
    ReplacementCpr,
}

/// A person identifier. Its `Debug` and `Display` never show the value: it is
/// personal data. Use [`PersonId::expose`] where the clear value is needed.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PersonId {
    kind: PersonIdKind,
    value: String,
}

impl PersonId {
    /// Parses and checks a person identifier. A CPR number is ten digits whose
    /// first six are a date (DDMMYY); the modulus-11 check is not applied
    /// (numbers issued since 2007 need not pass it). A replacement CPR number
    /// is ten letters or digits.
    pub fn parse(field: &str, kind: PersonIdKind, value: &str) -> Result<Self, Violations> {
        let value = value.trim();
        let ok = match kind {
            PersonIdKind::Cpr => {
                let digits = value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit());
                digits && {
                    let day: u32 = value[0..2].parse().unwrap_or(0);
                    let month: u32 = value[2..4].parse().unwrap_or(0);
                    (1..=31).contains(&day) && (1..=12).contains(&month)
                }
            }
            PersonIdKind::ReplacementCpr => value.len() == 10 && value.bytes().all(|b| b.is_ascii_alphanumeric()),
        };
        if !ok {
            // The value itself is never echoed: it may be a real CPR number.
            let what = match kind {
                PersonIdKind::Cpr => "is not a CPR number (ten digits, DDMMYY first)",
                PersonIdKind::ReplacementCpr => "is not a replacement CPR number (ten letters or digits)",
            };
            return Err(Violations::one(field, format!("{what}; the value is withheld")));
        }
        Ok(PersonId { kind, value: value.to_owned() })
    }

    /// The kind of identifier.
    pub fn kind(&self) -> PersonIdKind {
        self.kind
    }

    /// The register's name: `cpr` or `replacement_cpr` (for keyed hashes).
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            PersonIdKind::Cpr => "cpr",
            PersonIdKind::ReplacementCpr => "replacement_cpr",
        }
    }

    /// The identifier in clear. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// A masked form for logs and messages: kind and no digits.
    pub fn masked(&self) -> &'static str {
        match self.kind {
            PersonIdKind::Cpr => "CPR ******-****",
            PersonIdKind::ReplacementCpr => "replacement CPR **********",
        }
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.masked())
    }
}

/// What a consent covers: `bl32` (§ 32 stk. 2), `bl78` (§ 78 replacement) or
/// a sharing scope `share:{recipient}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct ConsentScope(String);

impl ConsentScope {
    /// Consent to § 32 stk. 1 measures.
    pub const BL32: &'static str = "bl32";
    /// Consent to a § 78 holistic plan replacing the § 77 plan.
    pub const BL78: &'static str = "bl78";

    /// Parses and checks a scope.
    pub fn parse(field: &str, value: &str) -> Result<Self, Violations> {
        let ok = value == Self::BL32
            || value == Self::BL78
            || value.strip_prefix("share:").is_some_and(|r| check_id("", r).is_ok());
        if ok {
            Ok(ConsentScope(value.to_owned()))
        } else if value.is_empty() {
            Err(Violations::one(field, "is required"))
        } else {
            Err(Violations::one(
                field,
                format!(
                    "{:?} is not a consent scope: use \"bl32\", \"bl78\" or \"share:{{recipient}}\"",
                    truncate(value, 80)
                ),
            ))
        }
    }

    /// The scope as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConsentScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks a CVR number: eight digits.
pub fn check_cvr(field: &str, value: &str) -> Result<(), Violations> {
    if value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else if value.is_empty() {
        Err(Violations::one(field, "is required"))
    } else {
        Err(Violations::one(field, format!("{:?} is not a CVR number (eight digits)", truncate(value, 40))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digit_runs_are_masked() {
        assert_eq!(
            mask_digit_runs("patient 0101901234 at 12:30, EAN 5790000120400"),
            "patient ********** at 12:30, EAN *************"
        );
        assert_eq!(mask_digit_runs("010190-1234 seen"), "******-**** seen");
        assert_eq!(mask_digit_runs("cpr 01 01 90 12 34."), "cpr ** ** ** ** **.");
        assert_eq!(mask_digit_runs("0101901234"), "**********");
        assert_eq!(mask_digit_runs("HTTP 503, 12345 bytes"), "HTTP 503, 12345 bytes");
        assert_eq!(mask_digit_runs("on 2026-03-02"), "on ****-**-**", "dates go too: better than a CPR number");
    }

    #[test]
    fn person_id_never_prints_in_clear() {
        let id = PersonId::parse("x", PersonIdKind::Cpr, "0101001234").unwrap();
        assert_eq!(format!("{id:?} {id}"), "CPR ******-**** CPR ******-****");
        let err = PersonId::parse("x", PersonIdKind::Cpr, "3213001234").unwrap_err();
        assert!(!err.to_string().contains("3213001234"), "{err}");
    }

    #[test]
    fn ids_and_scopes() {
        assert!(CaseId::parse("id", "case-1").is_ok());
        assert!(CaseId::parse("id", "Case 1").is_err());
        assert!(CaseId::parse("id", "").is_err());
        assert!(CaseId::from_resource_name("name", "cases/abc").is_ok());
        assert!(CaseId::from_resource_name("name", "case/abc").is_err());
        assert!(ConsentScope::parse("s", "share:jobcenter").is_ok());
        assert!(ConsentScope::parse("s", "share:").is_err());
        assert!(ConsentScope::parse("s", "everything").is_err());
        assert!(check_cvr("c", "29189846").is_ok());
        assert!(check_cvr("c", "2918984").is_err());
    }
}
