//! Links to a parent's plan page. A link carries, sealed with the gateway's
//! sealing key (XChaCha20-Poly1305, bound to this use), the case, the plan,
//! the parent and an expiry: it cannot be forged, altered or read, names
//! nobody in clear, and stops working when it expires. Whoever holds it can
//! read the page until then, so it goes to the parent only.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bro_domain::{CaseId, PartyId, Timestamp};
use bro_store::Keyring;

/// What sealed data of a link is bound to.
const CONTEXT: &[u8] = b"bro/plan-link/v1";
/// Longest token accepted (a real one is about 150 characters).
pub const MAX_TOKEN_LEN: usize = 512;
/// Longest a link may work.
pub const MAX_VALID_DAYS: i64 = 90;

/// What a link opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanLink {
    /// The case.
    pub case_id: CaseId,
    /// The holistic plan.
    pub plan_id: String,
    /// The parent it is for.
    pub custody_holder: PartyId,
    /// When it stops working.
    pub expires: Timestamp,
}

/// Why a link does not open (safe to show: names nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link this gateway made, or changed.
    #[error("the link is not valid")]
    Invalid,
    /// It was valid, and has expired.
    #[error("the link has expired")]
    Expired,
}

/// The token of a link.
pub fn issue(keys: &Keyring, link: &PlanLink) -> String {
    let payload = format!(
        "{}\n{}\n{}\n{}",
        link.case_id.as_str(),
        link.plan_id,
        link.custody_holder.as_str(),
        link.expires.timestamp()
    );
    URL_SAFE_NO_PAD.encode(keys.seal(CONTEXT, payload.as_bytes()))
}

/// Opens a token at `now`.
pub fn open(keys: &Keyring, token: &str, now: Timestamp) -> Result<PlanLink, LinkError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(LinkError::Invalid);
    }
    let sealed = URL_SAFE_NO_PAD.decode(token).map_err(|_| LinkError::Invalid)?;
    let plain = keys.open(CONTEXT, &sealed).map_err(|_| LinkError::Invalid)?;
    let text = String::from_utf8(plain).map_err(|_| LinkError::Invalid)?;
    let mut parts = text.split('\n');
    let (Some(case), Some(plan), Some(holder), Some(expires), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(LinkError::Invalid);
    };
    let expires =
        expires.parse::<i64>().ok().and_then(|s| Timestamp::from_timestamp(s, 0)).ok_or(LinkError::Invalid)?;
    let link = PlanLink {
        case_id: CaseId::parse("case", case).map_err(|_| LinkError::Invalid)?,
        plan_id: plan.to_owned(),
        custody_holder: PartyId::parse("custody_holder", holder).map_err(|_| LinkError::Invalid)?,
        expires,
    };
    if now >= link.expires {
        return Err(LinkError::Expired);
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keyring {
        Keyring::parse(&Keyring::generate()).expect("key")
    }

    fn link() -> PlanLink {
        PlanLink {
            case_id: CaseId::parse("c", "case-1").expect("id"),
            plan_id: "hp-1".into(),
            custody_holder: PartyId::parse("p", "parent-1").expect("id"),
            expires: Timestamp::from_timestamp(2_000_000_000, 0).expect("time"),
        }
    }

    #[test]
    fn a_link_opens_until_it_expires_and_only_with_its_key() {
        let keys = keys();
        let token = issue(&keys, &link());
        assert!(token.len() < 200, "{}", token.len());
        assert!(!token.contains("parent-1") && !token.contains("case-1"), "nothing in clear");
        let before = Timestamp::from_timestamp(1_999_999_999, 0).expect("time");
        assert_eq!(open(&keys, &token, before), Ok(link()));
        assert_eq!(open(&keys, &token, link().expires), Err(LinkError::Expired));
        assert_eq!(open(&self::keys(), &token, before), Err(LinkError::Invalid), "another gateway's key");
    }

    #[test]
    fn changed_or_junk_tokens_do_not_open() {
        let keys = keys();
        let token = issue(&keys, &link());
        let now = Timestamp::from_timestamp(1_000, 0).expect("time");
        let mut changed = token.clone().into_bytes();
        changed[40] = if changed[40] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(changed).expect("ascii");
        for bad in [changed.as_str(), "", "not base64!", "AAAA", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(open(&keys, bad, now), Err(LinkError::Invalid), "{bad:.20}");
        }
    }
}
