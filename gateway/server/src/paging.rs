//! AIP-158 page tokens and the AIP-160 filter subset `ListCases` accepts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bro_domain::{Violations, check_cvr};

/// Default and largest page sizes.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The page size a request asks for, defaulted and checked.
pub fn page_size(requested: i32, default: usize) -> Result<usize, Violations> {
    match requested {
        0 => Ok(default),
        n if n < 0 => Err(Violations::one("page_size", format!("{n} is negative"))),
        n => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

/// An opaque page token: the position to continue after, bound to the
/// request's other parameters (`scope`) so it cannot be replayed against a
/// different query.
pub fn encode_token(scope: &str, position: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1\n{scope}\n{position}"))
}

/// Decodes a page token made by [`encode_token`] for the same `scope`.
pub fn decode_token(token: &str, scope: &str) -> Result<u64, Violations> {
    if token.is_empty() {
        return Ok(0);
    }
    let bad = || Violations::one("page_token", "is not a page token this server issued for this query");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("v1"), Some(s), Some(pos)) if s == scope => pos.parse().map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// A page token that continues after a sort key (keyset paging over a
/// text key), bound to `scope` as [`encode_token`]'s are.
pub fn encode_key_token(scope: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k1\n{scope}\n{key}"))
}

/// Decodes a token made by [`encode_key_token`] for the same `scope`; the
/// empty token starts from the beginning (the empty key).
pub fn decode_key_token(token: &str, scope: &str) -> Result<String, Violations> {
    if token.is_empty() {
        return Ok(String::new());
    }
    let bad = || Violations::one("page_token", "is not a page token this server issued for this query");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let mut parts = text.splitn(3, '\n');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("k1"), Some(s), Some(key)) if s == scope && !key.is_empty() => Ok(key.to_owned()),
        _ => Err(bad()),
    }
}

/// The parsed `ListCases` filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseFilter {
    /// `placing_municipality = "<cvr>"`.
    pub placing_municipality: Option<String>,
    /// `obligations = "due"` (open or overdue), `"open"` or `"overdue"`:
    /// only cases with such an obligation on the server's today.
    pub obligations: Option<ObligationFilter>,
}

/// Which obligations a case must have to be listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObligationFilter {
    /// Open or overdue.
    Due,
    /// Open (not yet past due).
    Open,
    /// Past due and not met.
    Overdue,
}

/// Parses `field = "value" [AND field = "value" ...]` with fields from `allowed`.
pub fn parse_terms(filter: &str, allowed: &[&str]) -> Result<Vec<(String, String)>, Violations> {
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(Vec::new());
    }
    if filter.len() > 1024 {
        return Err(Violations::one("filter", "is longer than 1024 bytes"));
    }
    let tokens = tokenize(filter)?;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let (field, value) = match (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(Token::Word(f)), Some(Token::Equals), Some(Token::Quoted(v))) => (f.clone(), v.clone()),
            _ => {
                return Err(Violations::one("filter", "expected terms of the form field = \"value\" joined by AND"));
            }
        };
        if !allowed.contains(&field.as_str()) {
            return Err(Violations::one(
                "filter",
                format!("unknown field {field:?}; the supported fields are {allowed:?}"),
            ));
        }
        out.push((field, value));
        i += 3;
        match tokens.get(i) {
            None => return Ok(out),
            Some(Token::Word(w)) if w == "AND" => i += 1,
            Some(_) => return Err(Violations::one("filter", "terms must be joined by AND")),
        }
    }
}

/// Parses `field = "value" [AND field = "value" ...]`. Supported fields:
/// `placing_municipality` and `obligations` (`due`, `open`, `overdue`).
pub fn parse_case_filter(filter: &str) -> Result<CaseFilter, Violations> {
    let mut out = CaseFilter::default();
    let filter = filter.trim();
    if filter.is_empty() {
        return Ok(out);
    }
    if filter.len() > 1024 {
        return Err(Violations::one("filter", "is longer than 1024 bytes"));
    }
    let tokens = tokenize(filter)?;
    let mut i = 0;
    loop {
        let (field, value) = match (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(Token::Word(f)), Some(Token::Equals), Some(Token::Quoted(v))) => (f.as_str(), v.clone()),
            _ => {
                return Err(Violations::one(
                    "filter",
                    "expected terms of the form field = \"value\" joined by AND, e.g. placing_municipality = \"29189846\"",
                ));
            }
        };
        match field {
            "placing_municipality" => {
                check_cvr("filter.placing_municipality", &value)?;
                out.placing_municipality = Some(value);
            }
            "obligations" => {
                out.obligations = Some(match value.as_str() {
                    "due" => ObligationFilter::Due,
                    "open" => ObligationFilter::Open,
                    "overdue" => ObligationFilter::Overdue,
                    other => {
                        return Err(Violations::one(
                            "filter.obligations",
                            format!("{other:?} is not one of \"due\", \"open\", \"overdue\""),
                        ));
                    }
                });
            }
            other => {
                return Err(Violations::one(
                    "filter",
                    format!("unknown field {other:?}; the supported fields are placing_municipality and obligations"),
                ));
            }
        }
        i += 3;
        match tokens.get(i) {
            None => return Ok(out),
            Some(Token::Word(w)) if w == "AND" => i += 1,
            Some(_) => return Err(Violations::one("filter", "terms must be joined by AND")),
        }
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Equals,
    Quoted(String),
}

fn tokenize(s: &str) -> Result<Vec<Token>, Violations> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '=' {
            chars.next();
            out.push(Token::Equals);
        } else if c == '"' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => return Err(Violations::one("filter", "a quoted value is not closed")),
                }
            }
            out.push(Token::Quoted(value));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let mut word = String::new();
            while let Some(&c) = chars.peek().filter(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == '.') {
                word.push(c);
                chars.next();
            }
            out.push(Token::Word(word));
        } else {
            return Err(Violations::one("filter", format!("unexpected character {c:?}")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(parse_case_filter("").unwrap(), CaseFilter::default());
        let f = parse_case_filter(r#"placing_municipality = "29189846""#).unwrap();
        assert_eq!(f.placing_municipality.as_deref(), Some("29189846"));
        assert!(parse_case_filter(r#"colour = "red""#).unwrap_err().to_string().contains("unknown field"));
        assert!(parse_case_filter(r#"placing_municipality = "x"#).is_err());
        assert!(parse_case_filter(r#"placing_municipality = "123""#).is_err());
        assert!(parse_case_filter(r#"placing_municipality = "29189846" OR x = "y""#).is_err());
        let f = parse_case_filter(r#"placing_municipality = "29189846" AND obligations = "overdue""#).unwrap();
        assert_eq!(f.obligations, Some(ObligationFilter::Overdue));
        assert!(parse_case_filter(r#"obligations = "late""#).is_err());
    }

    #[test]
    fn tokens_are_bound_to_their_query() {
        let t = encode_token("cases|a", 42);
        assert_eq!(decode_token(&t, "cases|a").unwrap(), 42);
        assert!(decode_token(&t, "cases|b").is_err());
        assert!(decode_token("garbage!", "cases|a").is_err());
        assert_eq!(decode_token("", "x").unwrap(), 0);
        let k = encode_key_token("due|a", "02026\u{1f}c1");
        assert_eq!(decode_key_token(&k, "due|a").unwrap(), "02026\u{1f}c1");
        assert!(decode_key_token(&k, "due|b").is_err());
        assert!(decode_key_token(&t, "cases|a").is_err(), "a position token is not a key token");
        assert_eq!(decode_key_token("", "x").unwrap(), "");
    }
}
