//! [`SealedStore`]: any backend, with every blob that holds personal data —
//! events, case projections and snapshots, queued and rendered deliveries, inbox messages,
//! the worklist's obligations (a party id may be anything a client chose) —
//! encrypted before it reaches the backend ([`Keyring::seal`], each bound to
//! its row so a blob cannot be moved to another) and opened on the way back.
//! The backend's own columns (ids, CVR numbers, states, times) stay clear:
//! they carry no CPR number or name. People are looked up by keyed hash
//! ([`Keyring::person_key`]), never by a clear identifier, and a request's
//! fingerprint is stored keyed ([`Keyring::keyed_fingerprint`]), so the
//! database alone cannot confirm a guessed message.

use std::sync::Arc;

use async_trait::async_trait;
use bro_domain::{CaseId, Timestamp};

use crate::{
    AppendBatch, AppendOutcome, CaseQuery, ClaimedDelivery, Delivery, DeliveryLease, DeliveryQuery, DeliveryUpdate,
    DueQuery, EventStore, InboxEntry, InboxPut, InboxQuery, InboxState, Keyring, LeaseToken, NewDelivery,
    RequestRecord, SourceKey, StoreError, StoredCase, StoredDueItem, StoredEvent, StoredSnapshot, WorklistEntry,
};

/// A backend whose personal data is sealed at rest.
pub struct SealedStore {
    inner: Arc<dyn EventStore>,
    keys: Arc<Keyring>,
}

impl SealedStore {
    /// Seals what goes into `inner` with `keys`.
    pub fn new(inner: Arc<dyn EventStore>, keys: Arc<Keyring>) -> Self {
        SealedStore { inner, keys }
    }

    /// The keyed hashes of the people in a projection (custody holders, child);
    /// none if it is not a `bro.v1.Case`.
    fn person_keys(&self, projection: &[u8]) -> Vec<Vec<u8>> {
        use prost::Message as _;
        let Ok(case) = CasePeople::decode(projection) else { return Vec::new() };
        let ids = case
            .custody_holders
            .iter()
            .filter_map(|p| p.identifier.as_ref())
            .chain(case.child.as_ref().and_then(|c| c.identifier.as_ref()));
        let mut keys: Vec<Vec<u8>> = ids.filter_map(|id| self.keys.identifier_key(id)).collect();
        keys.sort();
        keys.dedup();
        keys
    }

    fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.keys
            .open(context.as_bytes(), sealed)
            .map_err(|e| StoreError::Corrupt(format!("{context}: {e} (key id {})", self.keys.key_id())))
    }

    fn seal_event(&self, case: &CaseId, mut e: StoredEvent) -> StoredEvent {
        e.payload = self.keys.seal(event_context(case, e.sequence).as_bytes(), &e.payload);
        e
    }

    fn open_event(&self, case: &CaseId, mut e: StoredEvent) -> Result<StoredEvent, StoreError> {
        e.payload = self.open(&event_context(case, e.sequence), &e.payload)?;
        Ok(e)
    }

    fn seal_case(&self, mut c: StoredCase) -> StoredCase {
        c.projection = self.keys.seal(case_context(&c.case_id, c.version).as_bytes(), &c.projection);
        c
    }

    fn open_case(&self, mut c: StoredCase) -> Result<StoredCase, StoreError> {
        c.projection = self.open(&case_context(&c.case_id, c.version), &c.projection)?;
        Ok(c)
    }

    fn seal_delivery(&self, mut d: NewDelivery) -> NewDelivery {
        d.payload =
            self.keys.seal(delivery_context("delivery", &d.delivery_id, &d.system, &d.case_id).as_bytes(), &d.payload);
        d
    }

    fn open_delivery(&self, mut d: Delivery) -> Result<Delivery, StoreError> {
        d.new.payload = self
            .open(&delivery_context("delivery", &d.new.delivery_id, &d.new.system, &d.new.case_id), &d.new.payload)?;
        if let Some((content_type, body)) = d.rendered.take() {
            d.rendered = Some((
                content_type,
                self.open(&delivery_context("rendered", &d.new.delivery_id, &d.new.system, &d.new.case_id), &body)?,
            ));
        }
        Ok(d)
    }

    fn seal_inbox(&self, mut e: InboxEntry) -> InboxEntry {
        e.body = self.keys.seal(format!("inbox-body/{}", e.entry_id).as_bytes(), &e.body);
        e.batch = self.keys.seal(format!("inbox-batch/{}", e.entry_id).as_bytes(), &e.batch);
        e
    }

    fn open_inbox(&self, mut e: InboxEntry) -> Result<InboxEntry, StoreError> {
        e.body = self.open(&format!("inbox-body/{}", e.entry_id), &e.body)?;
        e.batch = self.open(&format!("inbox-batch/{}", e.entry_id), &e.batch)?;
        Ok(e)
    }
}

/// The people of a `bro.v1.Case` (its fields 4 and 5) and nothing else:
/// decoding skips the rest of the projection instead of building it.
#[derive(Clone, PartialEq, prost::Message)]
struct CasePeople {
    #[prost(message, optional, tag = "4")]
    child: Option<bro_proto::v1::Child>,
    #[prost(message, repeated, tag = "5")]
    custody_holders: Vec<bro_proto::v1::Party>,
}

fn event_context(case: &CaseId, sequence: u64) -> String {
    format!("event/{case}/{sequence}")
}

/// A projection is bound to its case and version: an older one put back fails to open.
fn case_context(case: &CaseId, version: u64) -> String {
    format!("case/{case}/{version}")
}

/// A snapshot is bound to its case and the version it holds.
fn snapshot_context(case: &CaseId, version: u64) -> String {
    format!("snapshot/{case}/{version}")
}

/// A worklist item is bound to its case and its place in the worklist.
fn due_item_context(case_id: &CaseId, sort_key: &str) -> String {
    format!("due/{case_id}/{sort_key}")
}

/// A delivery is bound to its id, receiving system and case: redirected, it fails to open.
fn delivery_context(what: &str, delivery_id: &str, system: &str, case_id: &CaseId) -> String {
    format!("{what}/{delivery_id}/{system}/{case_id}")
}

#[async_trait]
impl EventStore for SealedStore {
    async fn append(&self, mut batch: AppendBatch) -> Result<AppendOutcome, StoreError> {
        let case = batch.case_id.clone();
        if batch.person_keys.is_empty() {
            batch.person_keys = self.person_keys(&batch.projection.projection);
        }
        batch.events = std::mem::take(&mut batch.events).into_iter().map(|e| self.seal_event(&case, e)).collect();
        batch.projection = self.seal_case(batch.projection);
        if let Some(snapshot) = &mut batch.snapshot {
            snapshot.state = self.keys.seal(snapshot_context(&case, snapshot.version).as_bytes(), &snapshot.state);
        }
        batch.deliveries = std::mem::take(&mut batch.deliveries).into_iter().map(|d| self.seal_delivery(d)).collect();
        batch.request.fingerprint = self.keys.keyed_fingerprint(&batch.request.request_id, &batch.request.fingerprint);
        self.inner.append(batch).await
    }

    async fn find_request(&self, request_id: &str) -> Result<Option<RequestRecord>, StoreError> {
        self.inner.find_request(request_id).await
    }

    fn fingerprint_matches(&self, record: &RequestRecord, fingerprint: &[u8]) -> bool {
        self.keys.fingerprint_matches(&record.request_id, &record.fingerprint, fingerprint)
    }

    async fn read_events(
        &self,
        case_id: &CaseId,
        after_sequence: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let events = self.inner.read_events(case_id, after_sequence, limit).await?;
        events.into_iter().map(|e| self.open_event(case_id, e)).collect()
    }

    async fn case_version(&self, case_id: &CaseId) -> Result<Option<u64>, StoreError> {
        self.inner.case_version(case_id).await
    }

    async fn get_snapshot(&self, case_id: &CaseId) -> Result<Option<StoredSnapshot>, StoreError> {
        let Some(mut snapshot) = self.inner.get_snapshot(case_id).await? else { return Ok(None) };
        snapshot.state = self.open(&snapshot_context(case_id, snapshot.version), &snapshot.state)?;
        Ok(Some(snapshot))
    }

    async fn get_case(&self, case_id: &CaseId) -> Result<Option<StoredCase>, StoreError> {
        self.inner.get_case(case_id).await?.map(|c| self.open_case(c)).transpose()
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<StoredCase>, StoreError> {
        self.inner.list_cases(query).await?.into_iter().map(|c| self.open_case(c)).collect()
    }

    async fn find_source(&self, key: &SourceKey) -> Result<Option<RequestRecord>, StoreError> {
        self.inner.find_source(key).await
    }

    async fn find_cases_by_person(&self, person_key: &[u8]) -> Result<Vec<CaseId>, StoreError> {
        self.inner.find_cases_by_person(person_key).await
    }

    async fn enqueue_delivery(&self, delivery: NewDelivery) -> Result<(), StoreError> {
        self.inner.enqueue_delivery(self.seal_delivery(delivery)).await
    }

    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.inner.due_deliveries(now, limit).await?.into_iter().map(|d| self.open_delivery(d)).collect()
    }

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        expire_time: Timestamp,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let claimed = self.inner.claim_deliveries(holder, now, expire_time, limit).await?;
        claimed
            .into_iter()
            .map(|c| Ok(ClaimedDelivery { delivery: self.open_delivery(c.delivery)?, lease: c.lease }))
            .collect()
    }

    async fn renew_lease(&self, lease: &DeliveryLease, expire_time: Timestamp) -> Result<bool, StoreError> {
        self.inner.renew_lease(lease, expire_time).await
    }

    async fn release_lease(&self, system: &str, case_id: &CaseId, token: &LeaseToken) -> Result<(), StoreError> {
        self.inner.release_lease(system, case_id, token).await
    }

    async fn live_leases(&self, now: Timestamp) -> Result<Vec<DeliveryLease>, StoreError> {
        self.inner.live_leases(now).await
    }

    fn changes(&self) -> Option<tokio::sync::broadcast::Receiver<crate::StoreChange>> {
        self.inner.changes()
    }

    async fn claim_job(&self, job: &str, now: Timestamp, every: chrono::Duration) -> Result<bool, StoreError> {
        self.inner.claim_job(job, now, every).await
    }

    async fn revoke_plan_links(&self, link_key: &[u8], at: Timestamp) -> Result<(), StoreError> {
        self.inner.revoke_plan_links(link_key, at).await
    }

    async fn plan_links_revoked_at(&self, link_key: &[u8]) -> Result<Option<Timestamp>, StoreError> {
        self.inner.plan_links_revoked_at(link_key).await
    }

    fn pool_usage(&self) -> Option<crate::PoolUsage> {
        self.inner.pool_usage()
    }

    async fn update_delivery(&self, mut update: DeliveryUpdate) -> Result<bool, StoreError> {
        if let Some((content_type, body)) = update.rendered.take() {
            // Sealed for the delivery's system and case, as its payload is;
            // the backend applies the update only if they are the row's.
            let context = delivery_context("rendered", &update.delivery_id, &update.system, &update.case_id);
            update.rendered = Some((content_type, self.keys.seal(context.as_bytes(), &body)));
        }
        self.inner.update_delivery(update).await
    }

    async fn get_delivery(&self, delivery_id: &str) -> Result<Option<Delivery>, StoreError> {
        self.inner.get_delivery(delivery_id).await?.map(|d| self.open_delivery(d)).transpose()
    }

    async fn list_deliveries(&self, query: &DeliveryQuery) -> Result<Vec<Delivery>, StoreError> {
        self.inner.list_deliveries(query).await?.into_iter().map(|d| self.open_delivery(d)).collect()
    }

    async fn put_inbox(&self, entry: InboxEntry) -> Result<InboxPut, StoreError> {
        match self.inner.put_inbox(self.seal_inbox(entry)).await? {
            InboxPut::Inserted => Ok(InboxPut::Inserted),
            InboxPut::Existing(e) => Ok(InboxPut::Existing(Box::new(self.open_inbox(*e)?))),
        }
    }

    async fn find_inbox_by_request(&self, request_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.find_inbox_by_request(request_id).await?.map(|e| self.open_inbox(e)).transpose()
    }

    async fn get_inbox(&self, entry_id: &str) -> Result<Option<InboxEntry>, StoreError> {
        self.inner.get_inbox(entry_id).await?.map(|e| self.open_inbox(e)).transpose()
    }

    async fn list_inbox(&self, query: &InboxQuery) -> Result<Vec<InboxEntry>, StoreError> {
        self.inner.list_inbox(query).await?.into_iter().map(|e| self.open_inbox(e)).collect()
    }

    async fn close_inbox(&self, entry_id: &str, state: InboxState, now: Timestamp) -> Result<bool, StoreError> {
        self.inner.close_inbox(entry_id, state, now).await
    }

    async fn stale_worklist(
        &self,
        municipality_cvr: &str,
        today: bro_domain::Date,
        limit: usize,
    ) -> Result<Vec<CaseId>, StoreError> {
        self.inner.stale_worklist(municipality_cvr, today, limit).await
    }

    async fn put_worklist(&self, mut entries: Vec<WorklistEntry>) -> Result<usize, StoreError> {
        for entry in &mut entries {
            for item in &mut entry.items {
                let context = due_item_context(&entry.case_id, &item.sort_key);
                item.obligation = self.keys.seal(context.as_bytes(), &item.obligation);
            }
        }
        self.inner.put_worklist(entries).await
    }

    async fn reset_worklist(&self, revision: &str) -> Result<u64, StoreError> {
        self.inner.reset_worklist(revision).await
    }

    async fn due_items(&self, query: &DueQuery) -> Result<Vec<StoredDueItem>, StoreError> {
        let mut items = self.inner.due_items(query).await?;
        for stored in &mut items {
            let context = due_item_context(&stored.case_id, &stored.item.sort_key);
            stored.item.obligation = self.open(&context, &stored.item.obligation)?;
        }
        Ok(items)
    }

    fn observe_commits(&self, observer: std::sync::Arc<dyn crate::AppendObserver>) {
        self.inner.observe_commits(observer);
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}

#[cfg(test)]
mod tests {
    use bro_proto::v1 as pb;
    use prost::Message as _;

    use super::CasePeople;

    #[test]
    fn the_people_of_a_projection_decode_without_the_rest() {
        let id = |value: &str| {
            Some(pb::PersonIdentifier { kind: pb::PersonIdentifierKind::Cpr.into(), value: value.into() })
        };
        let case = pb::Case {
            name: "cases/c-1".into(),
            child: Some(pb::Child { identifier: id("0101200001"), journal_reference: "27.24.00".into() }),
            custody_holders: vec![pb::Party {
                party_id: "parent-1".into(),
                identifier: id("0101901234"),
                ..Default::default()
            }],
            revisions: vec![pb::Revision::default(); 3],
            correspondence_count: 7,
            ..Default::default()
        };
        let people = CasePeople::decode(case.encode_to_vec().as_slice()).expect("decodes");
        assert_eq!((people.child, people.custody_holders), (case.child, case.custody_holders));
    }
}
