//! Obligations on read, and the worklist from its index.
//!
//! A case's obligations depend on the day, so they are computed by the
//! rules engine when read ([`Worklist::evaluated_case`], as `GetCase`
//! answers). The worklist — every due obligation of a municipality, and the cases that
//! have one — would need every case evaluated on every call; instead the
//! store keeps an index ([`bro_store::WorklistEntry`]): per case, its open
//! and overdue obligations as evaluated on a day and the first day that
//! evaluation may stop holding (the rules' `next_change`). Every append
//! makes its case's entry stale in the append's own transaction; the
//! [`Worklist`] re-evaluates the stale entries of a municipality before it
//! reads the index (so an answer is always what evaluating every case would
//! give), and a background task re-evaluates cases soon after they change,
//! so a read seldom finds much to do.

use std::collections::HashSet;
use std::sync::Arc;

use bro_api::v1 as pb;
use bro_domain::{CaseId, Date, PartyId};
use bro_rules::{EvaluatedHistory, Status as DutyState};
use bro_store::{
    CaseLedger, CaseQuery, DueItem, DueQuery, DueStatus, LedgerError, StoreError, WorklistEntry, due_sort_key,
};
use prost::Message;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;

/// Stale cases evaluated per round of a refresh (one store transaction each).
const REFRESH_BATCH: usize = 256;
/// Most changed cases the background task evaluates in one go.
const CHANGE_BATCH: usize = 1024;
/// How long the background task gathers changes before it evaluates the
/// cases they touched.
const REFRESH_DELAY: std::time::Duration = std::time::Duration::from_secs(1);

/// The rules' evaluation of a stored case on `today`, consistent with the
/// case's version (events appended since it was read are left out).
pub async fn evaluation_of(ledger: &CaseLedger, case: &pb::Case, today: Date) -> Result<EvaluatedHistory, LedgerError> {
    let id = CaseId::from_resource_name("name", &case.name)
        .map_err(|v| StoreError::Corrupt(format!("stored case name: {v}")))?;
    let mut history = ledger.history(&id).await?;
    history.retain(|e| e.sequence <= case.version as u64);
    let holders: Vec<PartyId> =
        case.custody_holders.iter().filter_map(|p| PartyId::parse("party_id", &p.party_id).ok()).collect();
    Ok(bro_rules::evaluate_history(&holders, &history, today))
}

/// How many cases' evaluations [`Worklist::evaluated_case`] keeps.
const EVALUATIONS_KEPT: usize = 4096;

/// One case's evaluation, and the version of the case it is of.
struct KeptEvaluation {
    version: i64,
    evaluated: EvaluatedHistory,
}

impl KeptEvaluation {
    /// Whether this is the evaluation of `case` on `today`: same version,
    /// and no day since it was made on which it may have changed.
    fn holds_for(&self, case: &pb::Case, today: Date) -> bool {
        let evaluation = &self.evaluated.evaluation;
        self.version == case.version
            && evaluation.today <= today
            && evaluation.next_change.is_none_or(|until| today < until)
    }
}

/// The revision of the rules and of the stored form of their results: an
/// index entry of another revision is evaluated again.
pub fn revision() -> String {
    let sets: Vec<&str> = bro_rules::RuleSet::all().iter().map(|set| set.id()).collect();
    format!("{}+engine-{}+bro-{}", sets.join(","), bro_rules::ENGINE_REVISION, env!("CARGO_PKG_VERSION"))
}

/// The index entry of a case as evaluated.
fn index_entry(
    case_id: &CaseId,
    case: &pb::Case,
    evaluated: &EvaluatedHistory,
    today: Date,
    revision: &str,
) -> WorklistEntry {
    let wire = bro_api::evaluation::obligations_to_pb(evaluated);
    let items = evaluated
        .evaluation
        .obligations
        .iter()
        .zip(wire)
        .enumerate()
        .filter(|(_, (o, _))| matches!(o.status, DutyState::Open | DutyState::Overdue))
        .map(|(position, (o, wire))| DueItem {
            sort_key: due_sort_key(o.due, case_id, position),
            overdue: o.status == DutyState::Overdue,
            due_on: o.due,
            obligation: wire.encode_to_vec(),
        })
        .collect();
    WorklistEntry {
        case_id: case_id.clone(),
        version: case.version as u64,
        municipality_cvr: case.placing_municipality.as_ref().map(|m| m.cvr.clone()).unwrap_or_default(),
        revision: revision.to_owned(),
        evaluated_on: today,
        valid_until: evaluated.evaluation.next_change,
        items,
    }
}

/// A page of the worklist: the due obligations and the key to continue after.
pub struct DuePage {
    /// The obligations, in worklist order.
    pub obligations: Vec<pb::DueObligation>,
    /// The last item's sort key, when more may follow.
    pub next_after: Option<String>,
}

/// The worklist over the index.
pub struct Worklist {
    ledger: Arc<CaseLedger>,
    clock: Arc<dyn Clock>,
    revision: String,
    /// One refresh at a time: two would evaluate the same stale cases.
    refreshing: tokio::sync::Mutex<()>,
    /// The latest evaluation of recently read cases: a case read again at
    /// the same version, before its next change day, is not evaluated again.
    kept: std::sync::Mutex<std::collections::HashMap<CaseId, Arc<KeptEvaluation>>>,
}

impl Worklist {
    /// The worklist of `ledger`'s cases, for the days `clock` tells.
    pub fn new(ledger: Arc<CaseLedger>, clock: Arc<dyn Clock>) -> Self {
        Worklist {
            ledger,
            clock,
            revision: revision(),
            refreshing: tokio::sync::Mutex::new(()),
            kept: Default::default(),
        }
    }

    /// `case` with its obligations and advisories on `today`; its history
    /// is read and evaluated only if no kept evaluation of this version
    /// still holds on `today`.
    pub async fn evaluated_case(&self, case: pb::Case, today: Date) -> Result<pb::Case, LedgerError> {
        let id = CaseId::from_resource_name("name", &case.name)
            .map_err(|v| StoreError::Corrupt(format!("stored case name: {v}")))?;
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(&id).cloned();
        let kept = match kept.filter(|k| k.holds_for(&case, today)) {
            Some(kept) => kept,
            None => {
                let evaluated = evaluation_of(&self.ledger, &case, today).await?;
                let fresh = Arc::new(KeptEvaluation { version: case.version, evaluated });
                let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if kept.len() >= EVALUATIONS_KEPT && !kept.contains_key(&id) {
                    // Forget an arbitrary one: a miss costs one evaluation.
                    if let Some(any) = kept.keys().next().cloned() {
                        kept.remove(&any);
                    }
                }
                kept.insert(id, fresh.clone());
                fresh
            }
        };
        Ok(bro_api::evaluation::with_evaluation(case, &kept.evaluated, today))
    }

    /// Makes every entry of another revision stale (once, at start-up).
    pub async fn reset(&self) -> Result<u64, StoreError> {
        self.ledger.store().reset_worklist(&self.revision).await
    }

    /// The entry of one case as it is now, evaluated for `today`; `None`
    /// if there is no such case.
    async fn evaluate(&self, case_id: &CaseId, today: Date) -> Result<Option<WorklistEntry>, LedgerError> {
        let case = match self.ledger.get(case_id).await {
            Ok(case) => case,
            Err(LedgerError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let evaluated = evaluation_of(&self.ledger, &case, today).await?;
        Ok(Some(index_entry(case_id, &case, &evaluated, today, &self.revision)))
    }

    /// Evaluates `cases` for `today` and stores their entries (each only if
    /// its case has not changed meanwhile).
    async fn store_entries(&self, cases: &[CaseId], today: Date) -> Result<usize, LedgerError> {
        let mut entries = Vec::with_capacity(cases.len());
        for case_id in cases {
            entries.extend(self.evaluate(case_id, today).await?);
        }
        Ok(self.ledger.store().put_worklist(entries).await?)
    }

    /// Brings every stale entry of a municipality up to `today`. A case
    /// that changes while it is evaluated stays stale and is tried once per
    /// call; its next read finds it again.
    pub async fn refresh(&self, municipality_cvr: &str, today: Date) -> Result<(), LedgerError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let mut tried: HashSet<CaseId> = HashSet::new();
        loop {
            let stale =
                self.ledger.store().stale_worklist(municipality_cvr, today, tried.len() + REFRESH_BATCH).await?;
            let new: Vec<CaseId> = stale.into_iter().filter(|c| tried.insert(c.clone())).take(REFRESH_BATCH).collect();
            if new.is_empty() {
                return Ok(());
            }
            self.store_entries(&new, today).await?;
        }
    }

    /// A page of a municipality's due obligations on `today`, from the index.
    pub async fn due_page(
        &self,
        municipality_cvr: &str,
        status: DueStatus,
        due_on_or_before: Option<Date>,
        after_key: String,
        limit: usize,
        today: Date,
    ) -> Result<DuePage, LedgerError> {
        self.refresh(municipality_cvr, today).await?;
        let query = DueQuery {
            municipality_cvr: municipality_cvr.to_owned(),
            status,
            due_on_or_before,
            after_key,
            // One more than asked: whether another page follows.
            limit: limit + 1,
        };
        let mut items = self.ledger.store().due_items(&query).await?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next_after = more.then(|| items.last().map(|i| i.item.sort_key.clone())).flatten();
        let obligations = items
            .into_iter()
            .map(|stored| {
                let obligation = pb::Obligation::decode(stored.item.obligation.as_slice())
                    .map_err(|e| StoreError::Corrupt(format!("worklist item of case {}: {e}", stored.case_id)))?;
                Ok(pb::DueObligation { case: stored.case_id.resource_name(), obligation: Some(obligation) })
            })
            .collect::<Result<_, LedgerError>>()?;
        Ok(DuePage { obligations, next_after })
    }

    /// Cases of a municipality with a `due` obligation on `today`, in
    /// creation order after `after_ordinal`, and the ordinal to continue after.
    pub async fn cases_page(
        &self,
        municipality_cvr: &str,
        due: DueStatus,
        after_ordinal: u64,
        limit: usize,
        today: Date,
    ) -> Result<(Vec<pb::Case>, Option<u64>), LedgerError> {
        self.refresh(municipality_cvr, today).await?;
        let query =
            CaseQuery { municipality_cvr: Some(municipality_cvr.to_owned()), due: Some(due), after_ordinal, limit };
        self.ledger.list(&query).await
    }

    /// Re-evaluates cases a while after they change, so that reads find
    /// their entries fresh; ends when `stopping` is cancelled. Changes are
    /// gathered for [`REFRESH_DELAY`] first, so a case appended to many
    /// times is evaluated once per delay, not once per append (an
    /// evaluation reads the whole history). A change missed (the feed
    /// lagged) costs only the next read's refresh.
    pub async fn run(
        self: Arc<Self>,
        mut changes: broadcast::Receiver<Arc<bro_store::CaseChange>>,
        stopping: CancellationToken,
    ) {
        loop {
            let first = tokio::select! {
                _ = stopping.cancelled() => return,
                change = changes.recv() => change,
            };
            let mut changed: Vec<CaseId> = Vec::new();
            match first {
                // Another replica's change is re-evaluated by that replica.
                Ok(change) if change.remote => continue,
                Ok(change) => changed.push(change.case_id.clone()),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
            tokio::select! {
                _ = stopping.cancelled() => return,
                _ = tokio::time::sleep(REFRESH_DELAY) => {}
            }
            while changed.len() < CHANGE_BATCH {
                match changes.try_recv() {
                    Ok(change) if !change.remote && !changed.contains(&change.case_id) => {
                        changed.push(change.case_id.clone())
                    }
                    Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            if let Err(e) = self.store_entries(&changed, self.clock.today()).await {
                tracing::warn!(error = %e, cases = changed.len(), "re-evaluating changed cases for the worklist failed");
            }
        }
    }
}
