//! Links to a parent's plan page. A link carries, sealed with the gateway's
//! sealing key (XChaCha20-Poly1305, bound to this use), the case, the plan,
//! the parent, an expiry, and when it was made (the time and the case's
//! version): it cannot be forged, altered or read, names nobody in clear,
//! and stops working when it expires or is revoked — by a caseworker, or by
//! what is recorded in the case after it was made. Whoever holds it can read
//! the page until then, so it goes to the parent only.
//!
//! A link is opened once: the page server exchanges it for a session
//! ([`issue_session`]), a short-lived cookie sealed the same way, so the
//! token does not stay in the address bar, the history or a shared screen.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bro_domain::{CaseId, PartyId, Timestamp};
use bro_store::Keyring;

/// What sealed data of a link is bound to.
const CONTEXT: &[u8] = b"bro/plan-link/v2";
/// What sealed data of a session is bound to.
const SESSION_CONTEXT: &[u8] = b"bro/plan-session/v1";
/// How long a session opened with a link lasts (at most until the link expires).
pub const SESSION_MINUTES: i64 = 15;
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
    /// When it was made (to the millisecond): a revocation at or after this
    /// time stops it.
    pub made: Timestamp,
    /// The case's version when it was made: what is recorded after may revoke it.
    pub made_at_version: u64,
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

impl PlanLink {
    /// The keyed hash its revocations are stored under: the case, the plan
    /// and the parent, so revoking stops every link made for them so far.
    pub fn revocation_key(&self, keys: &Keyring) -> Vec<u8> {
        let named = format!("{}\n{}\n{}", self.case_id.as_str(), self.plan_id, self.custody_holder.as_str());
        keys.person_key("plan-link", &named)
    }

    fn payload(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.case_id.as_str(),
            self.plan_id,
            self.custody_holder.as_str(),
            self.expires.timestamp(),
            self.made.timestamp_millis(),
            self.made_at_version
        )
    }

    /// Reads what [`PlanLink::payload`] wrote, and what follows it.
    fn parse<'a>(text: &'a str) -> Result<(PlanLink, std::str::Split<'a, char>), LinkError> {
        let mut parts = text.split('\n');
        let mut next = || parts.next().ok_or(LinkError::Invalid);
        let (case, plan, holder, expires, made, version) = (next()?, next()?, next()?, next()?, next()?, next()?);
        let expires =
            expires.parse::<i64>().ok().and_then(|s| Timestamp::from_timestamp(s, 0)).ok_or(LinkError::Invalid)?;
        let made = made.parse::<i64>().ok().and_then(Timestamp::from_timestamp_millis).ok_or(LinkError::Invalid)?;
        let link = PlanLink {
            case_id: CaseId::parse("case", case).map_err(|_| LinkError::Invalid)?,
            plan_id: plan.to_owned(),
            custody_holder: PartyId::parse("custody_holder", holder).map_err(|_| LinkError::Invalid)?,
            expires,
            made,
            made_at_version: version.parse().map_err(|_| LinkError::Invalid)?,
        };
        Ok((link, parts))
    }
}

/// The token of a link.
pub fn issue(keys: &Keyring, link: &PlanLink) -> String {
    URL_SAFE_NO_PAD.encode(keys.seal(CONTEXT, link.payload().as_bytes()))
}

/// Opens a sealed value of `context` into its text.
fn unseal(keys: &Keyring, context: &[u8], token: &str) -> Result<String, LinkError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(LinkError::Invalid);
    }
    let sealed = URL_SAFE_NO_PAD.decode(token).map_err(|_| LinkError::Invalid)?;
    let plain = keys.open(context, &sealed).map_err(|_| LinkError::Invalid)?;
    String::from_utf8(plain).map_err(|_| LinkError::Invalid)
}

/// Opens a token at `now`.
pub fn open(keys: &Keyring, token: &str, now: Timestamp) -> Result<PlanLink, LinkError> {
    let text = unseal(keys, CONTEXT, token)?;
    let (link, mut rest) = PlanLink::parse(&text)?;
    if rest.next().is_some() {
        return Err(LinkError::Invalid);
    }
    if now >= link.expires {
        return Err(LinkError::Expired);
    }
    Ok(link)
}

/// A session for `link` opened at `now`: the cookie's value, and when it
/// ends ([`SESSION_MINUTES`] later, or when the link expires if sooner).
pub fn issue_session(keys: &Keyring, link: &PlanLink, now: Timestamp) -> (String, Timestamp) {
    let ends = (now + chrono::Duration::minutes(SESSION_MINUTES)).min(link.expires);
    let payload = format!("{}\n{}", link.payload(), ends.timestamp());
    (URL_SAFE_NO_PAD.encode(keys.seal(SESSION_CONTEXT, payload.as_bytes())), ends)
}

/// Opens a session cookie's value at `now`: the link it was opened with.
pub fn open_session(keys: &Keyring, value: &str, now: Timestamp) -> Result<PlanLink, LinkError> {
    let text = unseal(keys, SESSION_CONTEXT, value)?;
    let (link, mut rest) = PlanLink::parse(&text)?;
    let ends = rest
        .next()
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| Timestamp::from_timestamp(s, 0))
        .ok_or(LinkError::Invalid)?;
    if rest.next().is_some() {
        return Err(LinkError::Invalid);
    }
    if now >= ends || now >= link.expires {
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
            made: Timestamp::from_timestamp_millis(1_999_000_000_123).expect("time"),
            made_at_version: 7,
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
    fn a_session_lasts_minutes_never_past_its_link_and_is_no_link() {
        let keys = keys();
        let now = Timestamp::from_timestamp(1_999_999_000, 0).expect("time");
        let (cookie, ends) = issue_session(&keys, &link(), now);
        assert_eq!(ends, now + chrono::Duration::minutes(SESSION_MINUTES));
        assert_eq!(open_session(&keys, &cookie, now), Ok(link()), "the link it was opened with, made time and all");
        assert_eq!(open_session(&keys, &cookie, ends), Err(LinkError::Expired));
        assert_eq!(open(&keys, &cookie, now), Err(LinkError::Invalid), "a session is not a link");
        assert_eq!(open_session(&keys, &issue(&keys, &link()), now), Err(LinkError::Invalid), "nor a link a session");
        let late = link().expires - chrono::Duration::minutes(1);
        let (_, ends) = issue_session(&keys, &link(), late);
        assert_eq!(ends, link().expires, "never past the link");
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
