//! The gate every RPC passes (a tower layer on the gRPC server): it
//! authenticates the caller (a client certificate pinned to a configured
//! system, or a bearer token), refuses persons below NSIS "betydelig",
//! requires a purpose, applies the per-client rate limit, puts the
//! [`Caller`] into the request, and — after the service has answered —
//! appends the call's audit record before the answer leaves. Refusals are
//! audited too. Health checking and reflection pass without credentials.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bro_api::v1 as pb;
use bro_store::Keyring;
use tonic::Code;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::audit::{AuditTrail, call_record};
use super::jwt::{JwtVerifier, TokenSubject};
use super::policy::Rpc;
use super::ratelimit::{Buckets, RateLimit};
use super::{Assurance, AuditDraft, Caller, PURPOSE_HEADER, Principal, Purpose};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::systems::Systems;

/// Decides who is calling.
pub struct Authenticator {
    jwt: Option<JwtVerifier>,
    systems: Arc<Systems>,
}

impl Authenticator {
    /// Tokens checked by `jwt` (none: only client certificates are accepted).
    pub fn new(jwt: Option<JwtVerifier>, systems: Arc<Systems>) -> Self {
        Authenticator { jwt, systems }
    }

    /// The caller of a request with these headers and peer certificates.
    pub async fn authenticate(
        &self,
        headers: &http::HeaderMap,
        peer_certificate: Option<&[u8]>,
    ) -> Result<(Principal, Option<bro_domain::Timestamp>), String> {
        let bearer = headers.get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
        if let Some(der) = peer_certificate {
            let fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref());
            if let Some(system) = self.systems.by_certificate(&fingerprint) {
                return Ok((Principal::System(system.name.clone()), None));
            }
            if bearer.is_none() {
                return Err(format!(
                    "the client certificate (SHA-256 {}…) is not configured for any system",
                    &fingerprint[..16]
                ));
            }
        }
        let Some(bearer) = bearer else {
            return Err(
                "no credentials: present a configured client certificate or an `authorization: Bearer` token".into()
            );
        };
        let token = bearer
            .strip_prefix("Bearer ")
            .or_else(|| bearer.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or("the authorization header is not `Bearer <token>`")?;
        let jwt = self.jwt.as_ref().ok_or("bearer tokens are not accepted: no identity provider is configured")?;
        let (subject, until) = jwt.verify_until(token).await.map_err(|e| e.to_string())?;
        let principal = match subject {
            TokenSubject::Person(person) => Principal::Person(person),
            TokenSubject::Client(client_id) => self
                .systems
                .by_client_id(&client_id)
                .map(|s| Principal::System(s.name.clone()))
                .ok_or_else(|| "the token's client is not configured as a system".to_owned())?,
        };
        Ok((principal, Some(until)))
    }
}

/// What the gate needs.
pub struct GateState {
    /// Authentication.
    pub authenticator: Authenticator,
    /// Where records go.
    pub trail: AuditTrail,
    /// Keyed hashes of people.
    pub keys: Arc<Keyring>,
    /// The clock for record times.
    pub clock: Arc<dyn Clock>,
    buckets: Buckets,
}

impl GateState {
    /// The gate's state.
    pub fn new(
        authenticator: Authenticator,
        trail: AuditTrail,
        keys: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        limit: RateLimit,
    ) -> Self {
        GateState { authenticator, trail, keys, clock, buckets: Buckets::new(limit) }
    }
}

/// The tower layer.
#[derive(Clone)]
pub struct Gate {
    state: Arc<GateState>,
}

impl Gate {
    /// A gate over `state`.
    pub fn new(state: Arc<GateState>) -> Self {
        Gate { state }
    }
}

impl<S> tower::Layer<S> for Gate {
    type Service = GateService<S>;
    fn layer(&self, inner: S) -> GateService<S> {
        GateService { inner, state: self.state.clone() }
    }
}

/// The gate in front of one service stack.
#[derive(Clone)]
pub struct GateService<S> {
    inner: S,
    state: Arc<GateState>,
}

/// The gRPC name of a code, as audit records spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/") || path.starts_with("/grpc.reflection.")
}

fn peer(extensions: &http::Extensions) -> (Option<SocketAddr>, Option<Vec<u8>>) {
    if let Some(tls) = extensions.get::<TlsConnectInfo<TcpConnectInfo>>() {
        let leaf = tls.peer_certs().and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()));
        return (tls.get_ref().remote_addr(), leaf);
    }
    (extensions.get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr), None)
}

struct Admitted {
    caller: Caller,
}

impl GateState {
    async fn admit(
        &self,
        headers: &http::HeaderMap,
        rpc: Option<Rpc>,
        (addr, certificate): (Option<SocketAddr>, Option<Vec<u8>>),
        draft: &Arc<Mutex<AuditDraft>>,
        principal_out: &mut Option<Principal>,
        purpose_out: &mut String,
    ) -> Result<Admitted, ApiError> {
        let now = self.clock.now();
        let address_key = format!("address:{}", addr.map(|a| a.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0])));
        let (principal, credential_until) = match self.authenticator.authenticate(headers, certificate.as_deref()).await
        {
            Ok(p) => p,
            Err(reason) => {
                if !self.buckets.allow(&address_key, now) {
                    return Err(ApiError::ResourceExhausted("too many calls; slow down".into()));
                }
                return Err(ApiError::Unauthenticated(reason));
            }
        };
        *principal_out = Some(principal.clone());
        if !self.buckets.allow(&principal.key(), now) {
            return Err(ApiError::ResourceExhausted(
                "too many calls from this client; slow down and retry after a short pause".into(),
            ));
        }
        if let Principal::Person(person) = &principal
            && person.assurance < Assurance::Substantial
        {
            return Err(ApiError::PermissionDenied(
                "personal data needs a login at NSIS assurance level \"betydelig\" (substantial) or higher".into(),
            ));
        }
        let purposes = || Purpose::ALL.map(|(_, n)| n).join(", ");
        let purpose = match headers.get(PURPOSE_HEADER).map(|v| v.to_str().unwrap_or("?")) {
            None => {
                return Err(ApiError::PermissionDenied(format!(
                    "no purpose stated: every call that touches personal data needs the `{PURPOSE_HEADER}` header ({})",
                    purposes()
                )));
            }
            Some(raw) => Purpose::parse(raw).ok_or_else(|| {
                ApiError::PermissionDenied(format!("`{PURPOSE_HEADER}` must be one of: {}", purposes()))
            })?,
        };
        *purpose_out = purpose.as_str().to_owned();
        if let Some(rpc) = rpc
            && !super::policy::purposes(rpc).contains(&purpose)
        {
            return Err(ApiError::PermissionDenied(format!(
                "{rpc:?} is not for the purpose {:?}; it serves: {}",
                purpose.as_str(),
                super::policy::purposes(rpc).iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
        let caller = Caller::new(principal, purpose, self.keys.clone(), draft.clone()).valid_until(credential_until);
        Ok(Admitted { caller })
    }

    fn record(
        &self,
        path: &str,
        principal: Option<&Principal>,
        purpose: String,
        draft: &Arc<Mutex<AuditDraft>>,
        code: Code,
        message: Option<&str>,
    ) -> pb::AuditRecord {
        let mut draft = draft.lock().map(|d| d.clone()).unwrap_or_default();
        let detail = if !draft.detail.is_empty() {
            std::mem::take(&mut draft.detail)
        } else if code != Code::Ok {
            bro_domain::mask_digit_runs(message.unwrap_or_default()).chars().take(300).collect()
        } else {
            String::new()
        };
        let data_kind = data_kind_of(path);
        call_record(self.clock.now(), path, principal, purpose, draft, data_kind, (code_name(code), detail))
    }
}

/// The kind of data an RPC touches, by its path (`unknown` for no RPC of bro's).
fn data_kind_of(path: &str) -> &'static str {
    Rpc::from_path(path).map_or("unknown", Rpc::data_kind)
}

fn grpc_code<B>(response: &http::Response<B>) -> (Code, Option<String>) {
    let headers = response.headers();
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
        .unwrap_or(Code::Ok);
    let message = headers.get("grpc-message").and_then(|v| v.to_str().ok()).map(percent_decode);
    (code, message)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl<S, ResBody> tower::Service<http::Request<tonic::body::Body>> for GateService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        // The call runs in its own task: if the client cancels or the deadline
        // drops this future, the service still finishes and the record is written.
        let call = tokio::spawn(async move {
            let path = request.uri().path().to_owned();
            if exempt(&path) {
                return inner.call(request).await;
            }
            let draft = Arc::new(Mutex::new(AuditDraft::default()));
            let mut principal = None;
            let mut purpose = String::new();
            let headers = request.headers().clone();
            let peer = peer(request.extensions());
            let admitted =
                state.admit(&headers, Rpc::from_path(&path), peer, &draft, &mut principal, &mut purpose).await;
            let (answer, code, message) = match admitted {
                Err(refusal) => {
                    let status: tonic::Status = refusal.into();
                    tracing::info!(method = %path, code = ?status.code(), reason = %status.message(), "call refused at the gate");
                    let (code, message) = (status.code(), status.message().to_owned());
                    (Err(status), code, Some(message))
                }
                Ok(Admitted { caller }) => {
                    request.extensions_mut().insert(caller.with_method(&path, data_kind_of(&path)));
                    let response = inner.call(request).await?;
                    let (code, message) = grpc_code(&response);
                    (Ok(response), code, message)
                }
            };
            let record = state.record(&path, principal.as_ref(), purpose, &draft, code, message.as_deref());
            if let Err(e) = state.trail.record(record).await {
                tracing::error!(error = %e, method = %path, "audit record not written; the answer is withheld");
                return Ok(ApiError::audit_unavailable().into_http());
            }
            Ok(answer.unwrap_or_else(|status| status.into_http()))
        });
        Box::pin(async move {
            match call.await {
                Ok(result) => result,
                Err(e) => {
                    tracing::error!(error = %e, "a call's task failed");
                    Ok(ApiError::Internal("the call failed".into()).into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b%25c"), "a b%c");
        assert_eq!(percent_decode("trailing%2"), "trailing%2");
    }
}
