//! The parents' plan pages over HTTP. `GET /plan/{token}` opens a link
//! ([`super::links`]): it is exchanged for a short-lived session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind https) and the browser
//! moves on to `GET /plan`, which shows the plan of the parent the link was
//! made for; nothing else is served. A link a caseworker revoked, or one
//! that what was recorded since revokes (agreement withdrawn, the plan
//! updated or replaced), opens nothing, and its sessions end. Every look,
//! and every refused link, leaves an audit record before the answer leaves.
//! Pages are never cached, never framed, send no referrer and run no script.
//!
//! Requests are rate-limited per client address and per link. Behind a
//! proxy, the client's address is taken from `X-Forwarded-For` only when the
//! connection comes from a configured trusted proxy ([`TrustedProxies`]);
//! otherwise every parent would share the proxy's one bucket, and a few
//! dozen junk requests would lock out every valid link.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest as _;

use super::links::{self, LinkError, PlanLink};
use super::page;
use super::reader::PlanReader;
use crate::access::audit::{AuditTrail, page_record};
use crate::access::ratelimit::{Buckets, RateLimit};
use crate::clock::Clock;

/// The session cookie's name.
const SESSION_COOKIE: &str = "bro_plan";

/// Addresses (single, or networks as `address/prefix`) whose
/// `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `10.0.0.5`, `10.0.0.0/8`, `::1`, `fd00::/8`; names what is wrong.
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let parse = |entry: &str| -> Option<(IpAddr, u8)> {
            let (addr, prefix) = entry.split_once('/').unwrap_or((entry, ""));
            let addr: IpAddr = addr.trim().parse().ok()?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = if prefix.is_empty() { max } else { prefix.trim().parse().ok().filter(|p| *p <= max)? };
            Some((addr, prefix))
        };
        entries
            .iter()
            .map(|e| parse(e).ok_or_else(|| format!("trusted proxy {e:?} is not an address or address/prefix")))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether `ip` is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|(net, prefix)| same_prefix(*net, ip, *prefix))
    }

    /// The client of a request that came from `peer`: the nearest address
    /// in `X-Forwarded-For` that is not a trusted proxy, when `peer` is one;
    /// otherwise `peer` itself.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            match hop.parse::<IpAddr>() {
                Ok(ip) if self.contains(ip) => continue,
                Ok(ip) => return ip,
                // What the proxy could not vouch for is not believed.
                Err(_) => return peer,
            }
        }
        peer
    }
}

/// Whether `a` and `b` share their first `prefix` bits (false across families).
fn same_prefix(a: IpAddr, b: IpAddr, prefix: u8) -> bool {
    let (a, b, bits): (u128, u128, u32) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (a.into(), b.into(), 128),
        _ => return false,
    };
    let prefix = u32::from(prefix).min(bits);
    prefix == 0 || (a ^ b) >> (bits - prefix) == 0
}

/// A client's rate-limit key: its address, or for IPv6 its /64 (one
/// household's network hands out many addresses).
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => format!("page:client:{v4}"),
        IpAddr::V6(v6) => format!("page:client:{:x}", u128::from(v6) >> 64),
    }
}

/// What the page server needs.
pub struct PlanPages {
    reader: PlanReader,
    keys: Arc<bro_store::Keyring>,
    trail: AuditTrail,
    clock: Arc<dyn Clock>,
    /// Per client address.
    clients: Buckets,
    /// Per link (its case, plan and parent), however many addresses use it.
    links: Buckets,
    proxies: TrustedProxies,
    /// Whether the session cookie is `Secure` (the pages are linked as https).
    secure: bool,
    csp: HeaderValue,
}

impl PlanPages {
    /// Pages from `reader`, opened with `keys`, audited in `trail`; the
    /// client addresses of requests from `proxies` are taken from their
    /// `X-Forwarded-For`; `secure` when the pages are linked as https.
    pub fn new(
        reader: PlanReader,
        keys: Arc<bro_store::Keyring>,
        trail: AuditTrail,
        clock: Arc<dyn Clock>,
        proxies: TrustedProxies,
        secure: bool,
    ) -> Self {
        let style_hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(page::STYLE.as_bytes()));
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        PlanPages {
            reader,
            keys,
            trail,
            clock,
            clients: Buckets::new(RateLimit { per_second: 2.0, burst: 30.0 }),
            links: Buckets::new(RateLimit { per_second: 0.5, burst: 20.0 }),
            proxies,
            secure,
            csp: HeaderValue::from_str(&csp).expect("the policy is ASCII"),
        }
    }

    /// The router: `GET /plan/{token}` opens a link, `GET /plan` shows the page.
    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/plan/{token}", axum::routing::get(open_link))
            .route("/plan", axum::routing::get(show))
            .with_state(self)
    }

    fn respond(&self, status: StatusCode, html: String) -> Response {
        let mut response = (status, html).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        headers.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
        response
    }

    async fn audit(&self, case: String, person_keys: Vec<Vec<u8>>, outcome: &str, detail: &str) -> bool {
        let record = page_record(case, person_keys, outcome, detail, self.clock.now());
        match self.trail.record(record).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "the audit record of a plan page was not written; the page is not shown");
                false
            }
        }
    }

    fn too_many(&self) -> Response {
        self.respond(
            StatusCode::TOO_MANY_REQUESTS,
            page::render_error("For mange forsøg", "Vent et øjeblik, og prøv igen."),
        )
    }

    /// Whether the client of a request may make one more.
    fn client_allowed(&self, peer: IpAddr, headers: &HeaderMap) -> bool {
        self.clients.allow(&client_key(self.proxies.client(peer, headers)), self.clock.now())
    }

    /// Whether a link may be used once more.
    fn link_allowed(&self, link: &PlanLink) -> bool {
        let key: String = link.revocation_key(&self.keys).iter().map(|b| format!("{b:02x}")).collect();
        self.links.allow(&format!("page:link:{key}"), self.clock.now())
    }

    /// Why `link` no longer works, if it was revoked: by a caseworker since
    /// it was made, or by what was recorded in the case since.
    async fn revoked(&self, link: &PlanLink) -> Result<Option<&'static str>, crate::error::ApiError> {
        let store = self.reader.store();
        if let Some(at) = store.plan_links_revoked_at(&link.revocation_key(&self.keys)).await?
            && at >= link.made
        {
            return Ok(Some("the link was revoked"));
        }
        let history = self.reader.history(&link.case_id).await?;
        Ok(bro_rules::holistic::link_revoked_by(&history, &link.plan_id, &link.custody_holder, link.made_at_version))
    }

    /// A link (or a session's link) that may be used now: within its rate,
    /// and not revoked; otherwise the answer to give.
    async fn check_link(&self, link: &PlanLink) -> Result<(), Response> {
        if !self.link_allowed(link) {
            return Err(self.too_many());
        }
        match self.revoked(link).await {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(self.refuse_revoked(link, why).await),
            Err(e) => {
                tracing::warn!(error = %e, "a plan link could not be checked");
                Err(self.unavailable())
            }
        }
    }

    /// The refusal of a revoked link: audited, the session cleared.
    async fn refuse_revoked(&self, link: &PlanLink, why: &str) -> Response {
        if !self.audit(link.case_id.resource_name(), Vec::new(), "PERMISSION_DENIED", why).await {
            return self.unavailable();
        }
        let mut response = self.respond(
            StatusCode::GONE,
            page::render_error(
                "Linket virker ikke længere",
                "Linket er trukket tilbage. Bed din koordinator eller sagsbehandler om et nyt.",
            ),
        );
        response.headers_mut().insert(header::SET_COOKIE, self.cookie("", 0));
        response
    }

    /// The session cookie with `value`, lasting `seconds`.
    fn cookie(&self, value: &str, seconds: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie =
            format!("{SESSION_COOKIE}={value}; Path=/plan; Max-Age={seconds}; HttpOnly; SameSite=Strict{secure}");
        HeaderValue::from_str(&cookie).expect("a sealed value is base64url")
    }

    fn unavailable(&self) -> Response {
        self.respond(
            StatusCode::SERVICE_UNAVAILABLE,
            page::render_error("Siden kan ikke vises lige nu", "Prøv igen om lidt, eller kontakt din koordinator."),
        )
    }
}

/// The refusal of a link or session that does not open (audited).
async fn refuse_unopened(pages: &PlanPages, e: LinkError, session: bool) -> Response {
    let (status, heading, text) = match (e, session) {
        (LinkError::Expired, false) => (
            StatusCode::GONE,
            "Linket er udløbet",
            "Linket til planen virker ikke længere. Bed din koordinator eller sagsbehandler om et nyt.",
        ),
        (LinkError::Invalid, false) => (
            StatusCode::NOT_FOUND,
            "Linket virker ikke",
            "Tjek, at du har hele linket med. Ellers kan din koordinator eller sagsbehandler sende dig et nyt.",
        ),
        (_, true) => (
            StatusCode::UNAUTHORIZED,
            "Åbn linket igen",
            "Af hensyn til dine oplysninger skal du åbne linket til planen igen.",
        ),
    };
    let detail = if session { format!("session: {e}") } else { e.to_string() };
    if !pages.audit(String::new(), Vec::new(), "UNAUTHENTICATED", &detail).await {
        return pages.unavailable();
    }
    pages.respond(status, page::render_error(heading, text))
}

/// `GET /plan/{token}`: the link is exchanged for a session, and the
/// browser moves on to `/plan` without the token.
async fn open_link(
    State(pages): State<Arc<PlanPages>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if !pages.client_allowed(peer.ip(), &headers) {
        return pages.too_many();
    }
    let now = pages.clock.now();
    let link = match links::open(&pages.keys, &token, now) {
        Ok(link) => link,
        Err(e) => return refuse_unopened(&pages, e, false).await,
    };
    if let Err(refused) = pages.check_link(&link).await {
        return refused;
    }
    let (session, ends) = links::issue_session(&pages.keys, &link, now);
    let mut response = pages.respond(StatusCode::OK, page::render_opening());
    response.headers_mut().insert(header::SET_COOKIE, pages.cookie(&session, (ends - now).num_seconds().max(1)));
    response
}

/// The session cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// `GET /plan`: the plan of the session's parent.
async fn show(
    State(pages): State<Arc<PlanPages>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    if !pages.client_allowed(peer.ip(), &headers) {
        return pages.too_many();
    }
    let now = pages.clock.now();
    let opened = session_cookie(&headers).map_or(Err(LinkError::Invalid), |v| links::open_session(&pages.keys, v, now));
    let link = match opened {
        Ok(link) => link,
        Err(e) => return refuse_unopened(&pages, e, true).await,
    };
    if let Err(refused) = pages.check_link(&link).await {
        return refused;
    }
    let case_name = link.case_id.resource_name();
    let loaded = match pages.reader.load(&link.case_id, &link.plan_id, 0).await {
        Ok(loaded) => loaded,
        Err(crate::error::ApiError::NotFound { .. })
        | Err(crate::error::ApiError::Ledger(bro_store::LedgerError::NotFound(_))) => {
            if !pages.audit(case_name, Vec::new(), "NOT_FOUND", "the plan no longer exists").await {
                return pages.unavailable();
            }
            return pages.respond(
                StatusCode::NOT_FOUND,
                page::render_error("Planen findes ikke længere", "Kontakt din koordinator eller sagsbehandler."),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "a plan page could not be read");
            return pages.unavailable();
        }
    };
    let parent = loaded.case.custody_holder(&link.custody_holder);
    let person_keys: Vec<Vec<u8>> = parent
        .and_then(|p| p.identifier.as_ref())
        .map(|id| pages.keys.person_key(id.kind_name(), id.expose()))
        .into_iter()
        .collect();
    let (Some(parent), Some(view)) = (parent, loaded.plan.parent_view(&link.custody_holder)) else {
        if !pages
            .audit(case_name, person_keys, "PERMISSION_DENIED", "the parent is no longer covered by the plan")
            .await
        {
            return pages.unavailable();
        }
        return pages.respond(
            StatusCode::FORBIDDEN,
            page::render_error("Planen omfatter dig ikke længere", "Kontakt din koordinator eller sagsbehandler."),
        );
    };
    let html = page::render(&view, &parent.display_name, &loaded.case.placing_municipality, now);
    if !pages.audit(case_name, person_keys, "OK", "").await {
        return pages.unavailable();
    }
    pages.respond(StatusCode::OK, html)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", HeaderValue::from_str(value).expect("header"));
        headers
    }

    #[test]
    fn the_client_is_taken_from_a_trusted_proxys_forwarded_for_only() {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let proxies = TrustedProxies::parse(&["127.0.0.1".into(), "10.0.0.0/8".into()]).expect("parses");
        let headers = forwarded("203.0.113.9, 198.51.100.7, 10.1.2.3");
        assert_eq!(proxies.client(ip("127.0.0.1"), &headers), ip("198.51.100.7"), "the nearest untrusted hop");
        assert_eq!(proxies.client(ip("192.0.2.1"), &headers), ip("192.0.2.1"), "an untrusted peer's header is ignored");
        assert_eq!(proxies.client(ip("127.0.0.1"), &forwarded("junk")), ip("127.0.0.1"), "nothing to believe");
        assert_eq!(proxies.client(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &headers), ip("127.0.0.1"), "none trusted");
        let v6 = TrustedProxies::parse(&["fd00::/8".into()]).expect("parses");
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")) && !v6.contains(ip("10.0.0.1")));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.local".into()]).is_err());
        assert_eq!(client_key(ip("2001:db8::1")), client_key(ip("2001:db8::ffff")), "one bucket per /64");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; bro_plan=abc; b=2"));
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, HeaderValue::from_static("bro_planx=1"));
        assert_eq!(session_cookie(&headers), None);
    }
}
