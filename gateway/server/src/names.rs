//! What clients name things with, checked in one place: request ids (the
//! idempotency keys of every write) and the resource names of the pipeline
//! (`deliveries/{id}`, `unmatchedMessages/{id}`, `rejections/{id}`) and of
//! holistic plans (`cases/{case}/holisticPlans/{plan}`).

use bro_domain::{CaseId, Violations};

/// Longest accepted request id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Prefixes of the request ids the gateway writes under itself (ingested
/// messages, resolved unmatched messages); a client may not use them.
const RESERVED_PREFIXES: [&str; 2] = ["ingest:", "resolve-"];

/// A request id as a client sent it: `None` when it sent none; refused
/// unless it is 1 to [`MAX_REQUEST_ID_LEN`] of letters, digits, `-`, `_`,
/// `.`, `:`.
pub fn request_id(raw: &str) -> Result<Option<&str>, Violations> {
    if raw.is_empty() {
        return Ok(None);
    }
    let ok = raw.len() <= MAX_REQUEST_ID_LEN
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !ok {
        return Err(Violations::one(
            "request_id",
            format!("use 1 to {MAX_REQUEST_ID_LEN} of letters, digits, '-', '_', '.', ':' (a UUID is ideal)"),
        ));
    }
    Ok(Some(raw))
}

/// The request id of a client's write: its own, or a fresh one when it sent
/// none (no idempotency then); the gateway's reserved prefixes are refused.
pub fn write_request_id(raw: &str) -> Result<String, Violations> {
    match request_id(raw)? {
        None => Ok(format!("gen-{}", uuid::Uuid::new_v4())),
        Some(id) if RESERVED_PREFIXES.iter().any(|p| id.starts_with(p)) => {
            Err(Violations::one("request_id", "the prefixes \"ingest:\" and \"resolve-\" are reserved for the gateway"))
        }
        Some(id) => Ok(id.to_owned()),
    }
}

/// A request id the call cannot do without (ingest: a retried message must be
/// known as the same message).
pub fn required_request_id(raw: &str) -> Result<&str, Violations> {
    request_id(raw)?.ok_or_else(|| {
        Violations::one(
            "request_id",
            format!("is required: 1 to {MAX_REQUEST_ID_LEN} of letters, digits, '-', '_', '.', ':'"),
        )
    })
}

/// The id in a resource name `{prefix}{id}`: one path segment of at most 64
/// bytes.
pub fn id_in<'a>(field: &str, prefix: &str, name: &'a str) -> Result<&'a str, Violations> {
    name.strip_prefix(prefix).filter(|id| !id.is_empty() && id.len() <= 64 && !id.contains('/')).ok_or_else(|| {
        Violations::one(field, format!("{:?} is not a name of the form {prefix}{{id}}", bro_domain::truncate(name, 80)))
    })
}

/// `deliveries/{id}`: a delivery id is a UUID's letters, digits and dashes.
pub fn delivery_id(name: &str) -> Result<&str, Violations> {
    id_in("name", "deliveries/", name)
        .ok()
        .filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .ok_or_else(|| {
            Violations::one(
                "name",
                format!("{:?} is not a name of the form deliveries/{{id}}", bro_domain::truncate(name, 80)),
            )
        })
}

/// `cases/{case}/holisticPlans/{plan}`.
pub fn plan_name(field: &str, name: &str) -> Result<(CaseId, String), Violations> {
    let bad = || Violations::one(field, "must be cases/{case}/holisticPlans/{plan}");
    let (case, plan) = name.split_once("/holisticPlans/").ok_or_else(bad)?;
    let case_id = CaseId::from_resource_name(field, case)?;
    bro_domain::check_id(field, plan).map_err(|_| bad())?;
    Ok((case_id, plan.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_checked_and_gateway_prefixes_reserved() {
        assert_eq!(write_request_id("create-1").expect("valid"), "create-1");
        assert!(write_request_id("").expect("generated").starts_with("gen-"));
        for reserved in ["ingest:psykiatri:abc", "resolve-0193"] {
            let err = write_request_id(reserved).expect_err("reserved");
            assert!(err.to_string().contains("reserved"), "{err}");
        }
        assert!(write_request_id("has space").is_err());
    }

    #[test]
    fn one_rule_for_every_request_id() {
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        for bad in ["has space", "slash/ed", "ünicode", long.as_str()] {
            assert!(request_id(bad).is_err(), "{bad}");
            assert!(write_request_id(bad).is_err(), "{bad}");
            assert!(required_request_id(bad).is_err(), "{bad}");
        }
        assert_eq!(request_id(""), Ok(None));
        assert!(required_request_id("").expect_err("required").to_string().contains("is required"));
        assert_eq!(required_request_id("in-1:a.b_c"), Ok("in-1:a.b_c"));
    }

    #[test]
    fn resource_names_are_one_segment() {
        assert_eq!(delivery_id("deliveries/0193-ab"), Ok("0193-ab"));
        for bad in ["deliveries/", "deliveries/a/b", "delivery/x", "deliveries/a_b"] {
            assert!(delivery_id(bad).is_err(), "{bad}");
        }
        assert_eq!(id_in("name", "rejections/", "rejections/r1"), Ok("r1"));
        assert!(id_in("name", "rejections/", "rejections/r1/x").is_err());
        let (case, plan) = plan_name("name", "cases/c1/holisticPlans/hp-1").expect("valid");
        assert_eq!((case.as_str(), plan.as_str()), ("c1", "hp-1"));
        assert!(plan_name("name", "cases/c1/plans/hp-1").is_err());
    }
}
