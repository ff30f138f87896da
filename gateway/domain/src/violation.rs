//! Field violations: what is wrong with an input, and where.

use std::fmt;

/// One problem with an input, located by a field path such as
/// `events[2].support_person_approved.custody_holder`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Dotted field path, relative to what was validated.
    pub field: String,
    /// What is wrong, in a sentence that names the offending value (masked if
    /// it is personal data).
    pub description: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation { field: field.into(), description: description.into() }
    }

    /// The same violation, with `prefix` put before its field path.
    #[must_use]
    pub fn within(mut self, prefix: &str) -> Self {
        self.field = join_path(prefix, &self.field);
        self
    }
}

/// Joins two field paths with a dot, leaving out empty parts.
pub(crate) fn join_path(prefix: &str, field: &str) -> String {
    match (prefix.is_empty(), field.is_empty()) {
        (true, _) => field.to_owned(),
        (_, true) => prefix.to_owned(),
        _ if field.starts_with('[') => format!("{prefix}{field}"),
        _ => format!("{prefix}.{field}"),
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.description)
    }
}

/// A non-empty list of violations; the error type of every validation here.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Violations(pub Vec<Violation>);

impl Violations {
    /// A list with one violation.
    pub fn one(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violations(vec![Violation::new(field, description)])
    }

    /// The same violations, with `prefix` put before each field path.
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        Violations(self.0.into_iter().map(|v| v.within(prefix)).collect())
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// Collects violations while a value is checked field by field.
#[derive(Default)]
pub(crate) struct Collector(pub(crate) Vec<Violation>);

impl Collector {
    pub(crate) fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(Violation::new(field, description));
    }

    pub(crate) fn finish(self) -> Result<(), Violations> {
        if self.0.is_empty() { Ok(()) } else { Err(Violations(self.0)) }
    }
}
