//! The parents' plan pages over HTTP: `GET /plan/{token}` shows the plan of
//! the parent the link was made for ([`super::links`]), and nothing else is
//! served. Every look, and every refused link, leaves an audit record before
//! the answer leaves, like any other access. Pages are never cached, never
//! framed, send no referrer (the link is the key) and run no script.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest as _;

use super::links::{self, LinkError};
use super::page;
use super::reader::PlanReader;
use crate::access::audit::{AuditTrail, page_record};
use crate::access::ratelimit::{Buckets, RateLimit};
use crate::clock::Clock;

/// What the page server needs.
pub struct PlanPages {
    reader: PlanReader,
    keys: Arc<bro_store::Keyring>,
    trail: AuditTrail,
    clock: Arc<dyn Clock>,
    buckets: Buckets,
    csp: HeaderValue,
}

impl PlanPages {
    /// Pages from `reader`, opened with `keys`, audited in `trail`.
    pub fn new(reader: PlanReader, keys: Arc<bro_store::Keyring>, trail: AuditTrail, clock: Arc<dyn Clock>) -> Self {
        let style_hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(page::STYLE.as_bytes()));
        let csp = format!(
            "default-src 'none'; style-src 'sha256-{style_hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        );
        PlanPages {
            reader,
            keys,
            trail,
            clock,
            buckets: Buckets::new(RateLimit { per_second: 2.0, burst: 30.0 }),
            csp: HeaderValue::from_str(&csp).expect("the policy is ASCII"),
        }
    }

    /// The router: `GET /plan/{token}`.
    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new().route("/plan/{token}", axum::routing::get(show)).with_state(self)
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

    fn unavailable(&self) -> Response {
        self.respond(
            StatusCode::SERVICE_UNAVAILABLE,
            page::render_error("Siden kan ikke vises lige nu", "Prøv igen om lidt, eller kontakt din koordinator."),
        )
    }
}

async fn show(
    State(pages): State<Arc<PlanPages>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
) -> Response {
    if !pages.buckets.allow(&format!("page:{}", peer.ip()), pages.clock.now()) {
        return pages.respond(
            StatusCode::TOO_MANY_REQUESTS,
            page::render_error("For mange forsøg", "Vent et øjeblik, og prøv igen."),
        );
    }
    let now = pages.clock.now();
    let link = match links::open(&pages.keys, &token, now) {
        Ok(link) => link,
        Err(e) => {
            let (status, heading, text) = match e {
                LinkError::Expired => (
                    StatusCode::GONE,
                    "Linket er udløbet",
                    "Linket til planen virker ikke længere. Bed din koordinator eller sagsbehandler om et nyt.",
                ),
                LinkError::Invalid => (
                    StatusCode::NOT_FOUND,
                    "Linket virker ikke",
                    "Tjek, at du har hele linket med. Ellers kan din koordinator eller sagsbehandler sende dig et nyt.",
                ),
            };
            if !pages.audit(String::new(), Vec::new(), "UNAUTHENTICATED", &e.to_string()).await {
                return pages.unavailable();
            }
            return pages.respond(status, page::render_error(heading, text));
        }
    };
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
