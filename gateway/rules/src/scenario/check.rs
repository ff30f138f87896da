//! Comparing an evaluation with a scenario's expectations, under the rules of
//! `shared/scenarios/README.md`.

use std::fmt::Display;

use bro_domain::PartyId;

use super::{ExpectedObligation, Scenario};
use crate::{Evaluation, Obligation, RuleId};

/// The differences between `evaluation` and what `scenario` expects, one
/// sentence each; empty when the evaluation passes.
///
/// The rules of the public format:
/// - per (rule, custody holder) pair, the engine must report exactly as many
///   obligations as `expect` lists (no custody holder: a duty of the case);
/// - within a pair, the engine's obligations are taken in trigger-date order
///   and the expected ones in file order, and each expected field that is
///   given (`status`, `due`, `met_on`, and the extension `trigger`) must match;
/// - every id in `expect_advisories` must be reported (others may be too).
pub fn check(scenario: &Scenario, evaluation: &Evaluation) -> Vec<String> {
    let mut differences = Vec::new();
    for (rule, holder) in pairs(scenario, evaluation) {
        let label = match holder {
            Some(holder) => format!("{rule} for {holder}"),
            None => format!("{rule} (case)"),
        };
        let expected: Vec<&ExpectedObligation> = scenario
            .expect
            .iter()
            .filter(|expected| expected.rule == rule && expected.custody_holder.as_ref() == holder)
            .collect();
        let mut reported: Vec<&Obligation> = evaluation
            .obligations
            .iter()
            .filter(|obligation| obligation.rule == rule && obligation.custody_holder.as_ref() == holder)
            .collect();
        reported.sort_by_key(|obligation| obligation.trigger);
        if expected.len() != reported.len() {
            let summary: Vec<String> = reported
                .iter()
                .map(|obligation| format!("triggered {} {}", obligation.trigger, obligation.status))
                .collect();
            differences.push(format!(
                "{label}: expected {} obligation(s), the engine reported {} [{}]",
                expected.len(),
                reported.len(),
                summary.join("; ")
            ));
        }
        for (number, (expected, reported)) in expected.iter().zip(&reported).enumerate() {
            let at = format!("{label} #{} (triggered {})", number + 1, reported.trigger);
            compare(&mut differences, &at, "trigger", expected.trigger, Some(reported.trigger));
            compare(&mut differences, &at, "status", expected.status, Some(reported.status));
            compare(&mut differences, &at, "due", expected.due, reported.due);
            compare(&mut differences, &at, "met_on", expected.met_on, reported.met_on);
        }
    }
    for id in &scenario.expect_advisories {
        if !evaluation.advisories.iter().any(|advisory| advisory.id == *id) {
            differences.push(format!("advisory {id}: expected, but the engine did not report it"));
        }
    }
    differences
}

/// Every (rule, custody holder) pair in the expectations or the evaluation:
/// those expected first, in file order, then any others the engine reported.
fn pairs<'a>(scenario: &'a Scenario, evaluation: &'a Evaluation) -> Vec<(RuleId, Option<&'a PartyId>)> {
    let mut pairs: Vec<(RuleId, Option<&PartyId>)> = Vec::new();
    let expected = scenario.expect.iter().map(|expected| (expected.rule, expected.custody_holder.as_ref()));
    let reported =
        evaluation.obligations.iter().map(|obligation| (obligation.rule, obligation.custody_holder.as_ref()));
    for pair in expected.chain(reported) {
        if !pairs.contains(&pair) {
            pairs.push(pair);
        }
    }
    pairs
}

/// Records a difference if `expected` is given and differs from `reported`.
fn compare<T: PartialEq + Display>(
    differences: &mut Vec<String>,
    at: &str,
    field: &str,
    expected: Option<T>,
    reported: Option<T>,
) {
    if let Some(expected) = expected
        && reported.as_ref() != Some(&expected)
    {
        let reported = reported.map_or_else(|| "none".to_owned(), |value| value.to_string());
        differences.push(format!("{at}: {field}: expected {expected}, got {reported}"));
    }
}
