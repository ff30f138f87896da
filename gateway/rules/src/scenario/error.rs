//! What can be wrong with a scenario file, each error naming where.

use bro_domain::{Date, Violations};

/// A scenario that cannot be read. Its `Display` names the place (e.g.
/// `events[3].basis`) and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The text is not JSON.
    #[error("malformed JSON: {message}")]
    Json {
        /// Line of the problem, 1-based.
        line: usize,
        /// Column of the problem, 1-based.
        column: usize,
        /// The parser's description, with the line and column.
        message: String,
    },
    /// A required field is absent.
    #[error("{path}: is required")]
    MissingField {
        /// Where, e.g. `events[2].basis`.
        path: String,
    },
    /// A field the format does not have (likely a typo).
    #[error("{path}: unknown field (expected {expected})")]
    UnknownField {
        /// Where, e.g. `events[2].custody_hodler`.
        path: String,
        /// The fields allowed there.
        expected: String,
    },
    /// An event `type` the format does not have.
    #[error("events[{index}]: unknown event type {type_name:?}")]
    UnknownEventType {
        /// The event's index.
        index: usize,
        /// The type given (shortened if long).
        type_name: String,
    },
    /// A custody holder not listed in `custody_holders`.
    #[error("{path}: {value:?} is not one of the custody holders {known:?}")]
    UnknownCustodyHolder {
        /// Where.
        path: String,
        /// The id given (shortened if long).
        value: String,
        /// The scenario's custody holders.
        known: Vec<String>,
    },
    /// An event dated before the one listed before it.
    #[error("events[{index}].at: {date} is before the previous event's date {previous}; events must be in date order")]
    OutOfOrder {
        /// The event's index.
        index: usize,
        /// Its date.
        date: Date,
        /// The previous event's date.
        previous: Date,
    },
    /// A value of the wrong kind or outside its choices.
    #[error("{path}: {problem}")]
    Invalid {
        /// Where.
        path: String,
        /// What is wrong, naming the value.
        problem: String,
    },
}

impl ScenarioError {
    /// An [`ScenarioError::Invalid`] at `path`.
    pub(crate) fn invalid(path: &str, problem: impl Into<String>) -> Self {
        ScenarioError::Invalid { path: path.to_owned(), problem: problem.into() }
    }

    /// The first of the domain's violations, as an [`ScenarioError::Invalid`]
    /// at the violation's field (the domain is given full paths).
    pub(crate) fn from_violations(path: &str, violations: &Violations) -> Self {
        match violations.0.first() {
            Some(first) => ScenarioError::invalid(&first.field, first.description.clone()),
            None => ScenarioError::invalid(path, "is not valid"),
        }
    }
}
