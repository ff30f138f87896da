//! The one place where errors become gRPC statuses: a `google.rpc.Status`
//! with `ErrorInfo` (a stable reason) and, for bad input, `BadRequest` field
//! violations — every refusal, the gate's included. Messages never carry
//! personal data: the domain withholds CPR values from its violations, and
//! backend details are logged, not returned. (A tidy test fails on a
//! `Status` built anywhere else.)

use bro_domain::Violations;
use bro_store::{LedgerError, StoreError};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every bro error.
pub const ERROR_DOMAIN: &str = "bro.v1";

/// An error an RPC returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request breaks the API's or the model's rules.
    #[error("{0}")]
    Invalid(Violations),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// An ingested message was refused and stored as a rejection.
    #[error("message rejected: {reason}")]
    Rejected {
        /// `rejections/{id}`.
        rejection: String,
        /// Why (no personal data).
        reason: String,
    },
    /// A pipeline resource does not exist.
    #[error("{name} does not exist")]
    NotFound {
        /// A stable reason, e.g. `DELIVERY_NOT_FOUND`.
        reason: &'static str,
        /// The resource name.
        name: String,
    },
    /// The resource is not in a state that allows the call.
    #[error("{message}")]
    FailedPrecondition {
        /// A stable reason.
        reason: &'static str,
        /// What is wrong and what to do.
        message: String,
    },
    /// No caller could be authenticated.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller may not make this call.
    #[error("{0}")]
    PermissionDenied(String),
    /// The caller sent too many calls.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A part the call needs is unavailable (an adapter quarantined, a store closing).
    #[error("{message}")]
    Unavailable {
        /// A stable reason.
        reason: &'static str,
        /// What is unavailable.
        message: String,
    },
    /// A part the call needs is busy or resting for a known while (an
    /// adapter's slots full, the adapter quarantined, the sender throttled):
    /// `UNAVAILABLE` with a `RetryInfo` saying when to try again.
    #[error("{message}")]
    RetryLater {
        /// A stable reason.
        reason: &'static str,
        /// What is busy, and why.
        message: String,
        /// When to try again.
        retry_after: std::time::Duration,
    },
    /// The gateway failed in a way the caller cannot mend (a call's task died).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The audit log cannot be written: no answer (or write) goes ahead
    /// without its record.
    pub fn audit_unavailable() -> ApiError {
        ApiError::Unavailable {
            reason: "AUDIT_UNAVAILABLE",
            message: "the audit log cannot be written; retry later".into(),
        }
    }

    /// The error as the HTTP response of a gRPC call (for the gate, which
    /// answers before any service does).
    pub fn into_http<B: Default>(self) -> http::Response<B> {
        Status::from(self).into_http()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Ledger(LedgerError::Store(e))
    }
}

impl From<Violations> for ApiError {
    fn from(v: Violations) -> Self {
        ApiError::Invalid(v)
    }
}

fn with_info(code: Code, message: String, reason: &str, metadata: Vec<(&str, String)>) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(
        reason,
        ERROR_DOMAIN,
        metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<std::collections::HashMap<_, _>>(),
    );
    Status::with_error_details(code, message, details)
}

fn invalid(violations: &Violations, reason: &str) -> Status {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, ERROR_DOMAIN, std::collections::HashMap::new());
    for v in &violations.0 {
        details.add_bad_request_violation(v.field.clone(), v.description.clone());
    }
    let first = violations.0.first().map(ToString::to_string).unwrap_or_default();
    let more = violations.0.len().saturating_sub(1);
    let message = if more == 0 {
        format!("invalid request: {first}")
    } else {
        format!("invalid request: {first} (and {more} more violation{})", if more == 1 { "" } else { "s" })
    };
    Status::with_error_details(Code::InvalidArgument, message, details)
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match err {
            ApiError::Invalid(v) => invalid(&v, "INVALID_REQUEST"),
            ApiError::Ledger(e) => ledger_status(e),
            ApiError::Rejected { rejection, reason } => with_info(
                Code::InvalidArgument,
                format!("message rejected ({rejection}): {reason}"),
                "MESSAGE_REJECTED",
                vec![("rejection", rejection)],
            ),
            ApiError::NotFound { reason, name } => {
                with_info(Code::NotFound, format!("{name} does not exist"), reason, vec![("name", name)])
            }
            ApiError::FailedPrecondition { reason, message } => {
                with_info(Code::FailedPrecondition, message, reason, vec![])
            }
            ApiError::Unavailable { reason, message } => with_info(Code::Unavailable, message, reason, vec![]),
            ApiError::RetryLater { reason, message, retry_after } => {
                let mut details = ErrorDetails::new();
                let millis = retry_after.as_millis().to_string();
                let metadata = std::collections::HashMap::from([("retry_after_ms".to_owned(), millis)]);
                details.set_error_info(reason, ERROR_DOMAIN, metadata).set_retry_info(Some(retry_after));
                Status::with_error_details(Code::Unavailable, message, details)
            }
            ApiError::Unauthenticated(message) => with_info(Code::Unauthenticated, message, "UNAUTHENTICATED", vec![]),
            ApiError::PermissionDenied(message) => {
                with_info(Code::PermissionDenied, message, "PERMISSION_DENIED", vec![])
            }
            ApiError::ResourceExhausted(message) => with_info(Code::ResourceExhausted, message, "RATE_LIMITED", vec![]),
            ApiError::Internal(message) => with_info(Code::Internal, message, "INTERNAL", vec![]),
        }
    }
}

fn ledger_status(err: LedgerError) -> Status {
    match err {
        LedgerError::NotFound(id) => with_info(
            Code::NotFound,
            format!("case {} does not exist", id.resource_name()),
            "CASE_NOT_FOUND",
            vec![("case", id.resource_name())],
        ),
        LedgerError::AlreadyExists(id) => with_info(
            Code::AlreadyExists,
            format!("case {} already exists", id.resource_name()),
            "CASE_ALREADY_EXISTS",
            vec![("case", id.resource_name())],
        ),
        LedgerError::Invalid(v) => invalid(&v, "INVALID_EVENTS"),
        LedgerError::EtagMismatch { case_id, expected, actual } => with_info(
            Code::Aborted,
            format!(
                "case {} has changed: the request's etag is for version {expected}, the case is at version {actual}; \
                 read it again and retry",
                case_id.resource_name()
            ),
            "ETAG_MISMATCH",
            vec![("case", case_id.resource_name()), ("etag", bro_api::convert::etag(actual))],
        ),
        LedgerError::RequestIdReused { request_id } => with_info(
            Code::FailedPrecondition,
            format!("request_id {request_id:?} was already used for a different request; use a new request_id"),
            "REQUEST_ID_REUSED",
            vec![("request_id", request_id)],
        ),
        LedgerError::Store(e) => store_status(e),
    }
}

fn store_status(err: StoreError) -> Status {
    match err {
        StoreError::Closed => {
            with_info(Code::Unavailable, "the gateway is shutting down".into(), "SHUTTING_DOWN", vec![])
        }
        StoreError::Corrupt(detail) => {
            tracing::error!(%detail, "stored data is damaged");
            with_info(Code::DataLoss, "stored case data could not be read".into(), "STORE_CORRUPT", vec![])
        }
        StoreError::Conflict { case_id, .. } => with_info(
            Code::Aborted,
            format!("case {} was changed concurrently; retry", case_id.resource_name()),
            "CONCURRENT_WRITE",
            vec![],
        ),
        e @ (StoreError::Backend(_) | StoreError::InvalidBatch(_)) => {
            tracing::error!(error = %e, "event store failed");
            with_info(Code::Unavailable, "the event store failed; retry later".into(), "STORE_UNAVAILABLE", vec![])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_bad_request_details() {
        let v = Violations(vec![
            bro_domain::Violation::new("events[0].occurred_on", "is required"),
            bro_domain::Violation::new("events[1].kind", "exactly one event kind must be set; none is"),
        ]);
        let status: Status = ApiError::Ledger(LedgerError::Invalid(v)).into();
        assert_eq!(status.code(), Code::InvalidArgument);
        expect_test::expect!["invalid request: events[0].occurred_on: is required (and 1 more violation)"]
            .assert_eq(status.message());
        let details = status.get_error_details();
        assert_eq!(details.error_info().unwrap().reason, "INVALID_EVENTS");
        let fields: Vec<_> = details.bad_request().unwrap().field_violations.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["events[0].occurred_on", "events[1].kind"]);
    }
}
