//! § 78 holistic plans: `bro.v1.PlanService` over the case ledger, the
//! plan on the wire ([`wire`]), the parents' page ([`page`]) served through
//! signed links ([`links`]) by [`http`]. A plan is never stored as such: it
//! is its events (`plan_prepared` of kind § 78, `plan_coordinator_named`,
//! `plan_goals_updated`, consents in scope `bl78`) assembled with the rest of
//! its case by `bro_rules::holistic` whenever it is read or distributed.

pub mod http;
pub mod links;
pub mod page;
pub mod wire;

use std::sync::Arc;

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::plan_service_server::PlanService;
use bro_domain::{Case, CaseId, ConsentScope, Date, Event, EventKind, PartyId, PlanKind, Violations};
use bro_rules::coordination::CoordinationPolicy;
use bro_rules::holistic::{self, HolisticPlan};
use bro_store::{AppendEvents, CaseLedger};
use sha2::Digest as _;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::access::policy::{self, Grant, Rpc, Target};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::paging;

/// A plan as read: the case it was assembled from (at the version asked
/// for), the plan, and its version.
pub struct Loaded {
    /// The case (at the version read).
    pub case: Arc<Case>,
    /// Its projection.
    pub projection: pb::Case,
    /// The plan.
    pub plan: HolisticPlan,
    /// The plan's version (the sequence of its latest change).
    pub version: u64,
    /// The day it was evaluated on.
    pub evaluated_on: Date,
}

/// Reads plans from the ledger; shared by the service and the page server.
#[derive(Clone)]
pub struct PlanReader {
    ledger: Arc<CaseLedger>,
    coordination: Arc<CoordinationPolicy>,
    clock: Arc<dyn Clock>,
}

fn not_found(name: String) -> ApiError {
    ApiError::NotFound { reason: "HOLISTIC_PLAN_NOT_FOUND", name }
}

impl PlanReader {
    /// A reader over `ledger`, checking plans by `coordination`.
    pub fn new(ledger: Arc<CaseLedger>, coordination: Arc<CoordinationPolicy>, clock: Arc<dyn Clock>) -> Self {
        PlanReader { ledger, coordination, clock }
    }

    /// Plan `plan_id` of `case_id`, now (`version` 0) or as recorded after
    /// case event `version`, evaluated on today (or on that event's day).
    pub async fn load(&self, case_id: &CaseId, plan_id: &str, version: u64) -> Result<Loaded, ApiError> {
        let name = wire::plan_name(case_id, plan_id);
        let current = self.ledger.state(case_id).await?;
        let mut history = self.ledger.history(case_id).await?;
        history.retain(|e| e.sequence <= current.version);
        let versions = holistic::versions(&current, &history, plan_id);
        let created = versions.first().map(|v| v.sequence).ok_or_else(|| not_found(name.clone()))?;
        let (case, history, on) = if version == 0 || version == current.version {
            (current.clone(), history, self.clock.today())
        } else {
            if version < created || version > current.version {
                return Err(Violations::one(
                    "version",
                    format!("the plan has versions from {created} to {}; {version} is outside", current.version),
                )
                .into());
            }
            history.retain(|e| e.sequence <= version);
            let then = Case::replay(case_id.clone(), &history).map_err(|(i, v)| {
                bro_store::StoreError::Corrupt(format!(
                    "history of case {case_id} does not replay at event {}: {v}",
                    i + 1
                ))
            })?;
            let day = history.iter().find(|e| e.sequence == version).map(|e| crate::clock::danish_date(e.record_time));
            (Arc::new(then), history, day.unwrap_or_else(|| self.clock.today()))
        };
        let holders: Vec<PartyId> = case.custody_holders.iter().map(|p| p.party_id.clone()).collect();
        let (evaluation, _) = crate::obligations::evaluate(&holders, &history, on);
        let plan =
            holistic::assemble(&case, plan_id, &self.coordination, Some(&evaluation)).ok_or_else(|| not_found(name))?;
        let upto = if version == 0 { current.version } else { version };
        let version = versions.iter().map(|v| v.sequence).filter(|s| *s <= upto).max().unwrap_or(created);
        let projection = convert::case_to_pb(&case);
        Ok(Loaded { case, projection, plan, version, evaluated_on: on })
    }
}

/// The service.
pub struct PlanApi {
    reader: PlanReader,
    systems: Arc<crate::pipeline::Systems>,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    keys: Arc<bro_store::Keyring>,
    pages_base_url: Option<String>,
}

/// `cases/{case}/holisticPlans/{plan}`.
fn parse_plan_name(field: &str, name: &str) -> Result<(CaseId, String), Violations> {
    let bad = || Violations::one(field, "must be cases/{case}/holisticPlans/{plan}");
    let (case, plan) = name.split_once("/holisticPlans/").ok_or_else(bad)?;
    let case_id = CaseId::from_resource_name(field, case)?;
    bro_domain::check_id(field, plan).map_err(|_| bad())?;
    Ok((case_id, plan.to_owned()))
}

fn optional_date(field: &str, date: Option<&pb::Date>, today: Date) -> Result<Date, Violations> {
    match date {
        None => Ok(today),
        Some(_) => convert::date_from_pb(field, date),
    }
}

impl PlanApi {
    /// The service; links point at `pages_base_url` when the gateway serves plan pages.
    pub fn new(
        reader: PlanReader,
        systems: Arc<crate::pipeline::Systems>,
        metrics: Arc<Metrics>,
        keys: Arc<bro_store::Keyring>,
        pages_base_url: Option<String>,
    ) -> Self {
        let clock = reader.clock.clone();
        PlanApi { reader, systems, clock, metrics, keys, pages_base_url }
    }

    /// Loads the case, notes it and its people for the audit record (a
    /// plan's calls narrow that to the parents it covers), and asks the policy.
    async fn authorize(&self, caller: &Caller, rpc: Rpc, case_id: &CaseId) -> Result<(Arc<Case>, Grant), ApiError> {
        let state = self.reader.ledger.state(case_id).await?;
        caller.concerns_case(&state);
        let grant = policy::authorize(&caller.principal, &self.systems, rpc, Target::Case(&state))
            .inspect_err(|d| caller.refused(&d.0))?;
        Ok((state, grant))
    }

    /// A plan of a caller's case as the caller may see it.
    async fn read(&self, caller: &Caller, rpc: Rpc, name: &str, version: u64) -> Result<pb::HolisticPlan, ApiError> {
        let (case_id, plan_id) = parse_plan_name("name", name)?;
        let (_, grant) = self.authorize(caller, rpc, &case_id).await?;
        if matches!(grant, Grant::Sector { .. }) && version != 0 {
            let why = "another sector's system reads a plan as it is now, within the consents that hold now";
            caller.refused(why);
            return Err(ApiError::PermissionDenied(why.into()));
        }
        let loaded = self.reader.load(&case_id, &plan_id, version).await?;
        let name = wire::plan_name(&case_id, &plan_id);
        let plan = match grant {
            Grant::Full => loaded.plan,
            Grant::Sector { sector, scope } => {
                let shared: Vec<PartyId> =
                    loaded.case.shared_custody_holders(&scope).map(|p| p.party_id.clone()).collect();
                let sector = convert::sector_from_pb(sector)
                    .ok_or_else(|| ApiError::PermissionDenied("the system has no sector".into()))?;
                loaded.plan.sector_view(sector, &scope, &shared).ok_or_else(|| {
                    let why = "the plan is not in force, or no parent it covers shares with this system";
                    caller.refused(why);
                    ApiError::PermissionDenied(why.into())
                })?
            }
        };
        caller.concerns_holders(&loaded.case, &plan.covers);
        let mut out = wire::plan_to_pb(&plan, name, &loaded.projection, loaded.version);
        out.evaluated_on = Some(convert::date_to_pb(loaded.evaluated_on));
        Ok(out)
    }

    /// Appends plan events for a caller, then reads the plan back.
    async fn change(
        &self,
        caller: &Caller,
        case_id: CaseId,
        plan_id: &str,
        events: Vec<Event>,
        etag: &str,
        request_id: &str,
    ) -> Result<pb::HolisticPlan, ApiError> {
        if !events.is_empty() {
            let expected_version = match etag {
                "" => None,
                etag => Some(convert::version_from_etag("etag", etag)?),
            };
            let request_id = crate::case_service::request_id(request_id)?;
            self.reader
                .ledger
                .append(AppendEvents {
                    expected_version,
                    ..AppendEvents::new(case_id.clone(), events, request_id, self.clock.now())
                })
                .await?;
        }
        let loaded = self.reader.load(&case_id, plan_id, 0).await?;
        caller.concerns_holders(&loaded.case, &loaded.plan.covers);
        let mut out =
            wire::plan_to_pb(&loaded.plan, wire::plan_name(&case_id, plan_id), &loaded.projection, loaded.version);
        out.evaluated_on = Some(convert::date_to_pb(loaded.evaluated_on));
        Ok(out)
    }

    /// The covered parent `raw` of a plan, or a violation naming `field`.
    fn covered(case: &Case, plan_id: &str, field: &str, raw: &str) -> Result<PartyId, ApiError> {
        let holder = convert::party_id(field, raw)?;
        if !Self::covers(case, plan_id)?.contains(&holder) {
            return Err(Violations::one(field, format!("{holder} is not covered by the plan")).into());
        }
        Ok(holder)
    }
}

/// A plan id from a request id, so that a retried create names the same plan.
fn plan_id_for(request_id: &str) -> String {
    let digest = sha2::Sha256::digest(request_id.as_bytes());
    format!("hp-{}", hex::encode(&digest[..5]))
}

#[tonic::async_trait]
impl PlanService for PlanApi {
    async fn propose_holistic_plan(
        &self,
        request: Request<pb::ProposeHolisticPlanRequest>,
    ) -> Result<Response<pb::ProposeHolisticPlanResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("ProposeHolisticPlan", async {
                let caller = caller?;
                let case_id = CaseId::from_resource_name("parent", &req.parent)?;
                let (case, _) = self.authorize(&caller, Rpc::ProposeHolisticPlan, &case_id).await?;
                let mut covers = Vec::new();
                for (i, raw) in req.covers.iter().enumerate() {
                    let field = format!("covers[{i}]");
                    let holder = convert::party_id(&field, raw)?;
                    if case.custody_holder(&holder).is_none() {
                        return Err(
                            Violations::one(field, format!("the case has no custody holder \"{holder}\"")).into()
                        );
                    }
                    if !covers.contains(&holder) {
                        covers.push(holder);
                    }
                }
                if covers.is_empty() {
                    covers = holistic::default_covers(&case);
                }
                let today = self.clock.today();
                let mut history = self.reader.ledger.history(&case_id).await?;
                history.retain(|e| e.sequence <= case.version);
                let holders: Vec<PartyId> = case.custody_holders.iter().map(|p| p.party_id.clone()).collect();
                let (evaluation, _) = crate::obligations::evaluate(&holders, &history, today);
                let plan = holistic::propose(&case, &covers, today, &self.reader.coordination, Some(&evaluation));
                let mut out = wire::plan_to_pb(&plan, String::new(), &convert::case_to_pb(&case), 0);
                out.evaluated_on = Some(convert::date_to_pb(today));
                Ok(pb::ProposeHolisticPlanResponse { holistic_plan: Some(out) })
            })
            .await
    }

    async fn create_holistic_plan(
        &self,
        request: Request<pb::CreateHolisticPlanRequest>,
    ) -> Result<Response<pb::CreateHolisticPlanResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("CreateHolisticPlan", async {
                let caller = caller?;
                let case_id = CaseId::from_resource_name("parent", &req.parent)?;
                let (case, _) = self.authorize(&caller, Rpc::CreateHolisticPlan, &case_id).await?;
                let request_id = crate::case_service::request_id(&req.request_id)?;
                let plan_id = match req.holistic_plan_id.as_str() {
                    "" => plan_id_for(&request_id),
                    id => {
                        bro_domain::check_id("holistic_plan_id", id)?;
                        id.to_owned()
                    }
                };
                if req.covers.is_empty() {
                    return Err(Violations::one(
                        "covers",
                        "name the custody holders the plan covers: one or both parents",
                    )
                    .into());
                }
                let covers = req
                    .covers
                    .iter()
                    .enumerate()
                    .map(|(i, h)| convert::party_id(&format!("covers[{i}]"), h))
                    .collect::<Result<Vec<_>, _>>()?;
                for (i, holder) in covers.iter().enumerate() {
                    if case.custody_holder(holder).is_none() {
                        let why = format!("the case has no custody holder \"{holder}\"");
                        return Err(Violations::one(format!("covers[{i}]"), why).into());
                    }
                }
                let goals = convert::goals_from_pb(&req.goals)?;
                case.check_goal_holders(PlanKind::Bl78, &covers, &goals)?;
                let on = optional_date("prepared_on", req.prepared_on.as_ref(), self.clock.today())?;
                let mut events = vec![Event {
                    occurred_on: on,
                    source: None,
                    kind: EventKind::PlanPrepared { plan_id: plan_id.clone(), kind: PlanKind::Bl78, covers, goals },
                }];
                if req.coordinator.is_some() {
                    let coordinator = convert::coordinator_from_pb("coordinator", req.coordinator.as_ref())?;
                    events.push(Event {
                        occurred_on: on,
                        source: None,
                        kind: EventKind::PlanCoordinatorNamed { plan_id: plan_id.clone(), coordinator },
                    });
                }
                let plan = self.change(&caller, case_id, &plan_id, events, "", &request_id).await?;
                tracing::info!(plan = %plan.name, "holistic plan created");
                Ok(pb::CreateHolisticPlanResponse { holistic_plan: Some(plan) })
            })
            .await
    }

    async fn get_holistic_plan(
        &self,
        request: Request<pb::GetHolisticPlanRequest>,
    ) -> Result<Response<pb::GetHolisticPlanResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("GetHolisticPlan", async {
                let caller = caller?;
                if req.version < 0 {
                    return Err(Violations::one("version", "is negative").into());
                }
                let plan = self.read(&caller, Rpc::GetHolisticPlan, &req.name, req.version as u64).await?;
                Ok(pb::GetHolisticPlanResponse { holistic_plan: Some(plan) })
            })
            .await
    }

    async fn list_holistic_plans(
        &self,
        request: Request<pb::ListHolisticPlansRequest>,
    ) -> Result<Response<pb::ListHolisticPlansResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("ListHolisticPlans", async {
                let caller = caller?;
                let case_id = CaseId::from_resource_name("parent", &req.parent)?;
                let (case, _) = self.authorize(&caller, Rpc::ListHolisticPlans, &case_id).await?;
                let mut holistic_plans = Vec::new();
                for plan in case.plans.iter().filter(|p| p.kind == PlanKind::Bl78) {
                    let loaded = self.reader.load(&case_id, &plan.plan_id, 0).await?;
                    let mut out = wire::plan_to_pb(
                        &loaded.plan,
                        wire::plan_name(&case_id, &plan.plan_id),
                        &loaded.projection,
                        loaded.version,
                    );
                    out.evaluated_on = Some(convert::date_to_pb(loaded.evaluated_on));
                    holistic_plans.push(out);
                }
                Ok(pb::ListHolisticPlansResponse { holistic_plans })
            })
            .await
    }

    async fn update_holistic_plan(
        &self,
        request: Request<pb::UpdateHolisticPlanRequest>,
    ) -> Result<Response<pb::UpdateHolisticPlanResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("UpdateHolisticPlan", async {
                let caller = caller?;
                let plan = req.holistic_plan.ok_or_else(|| Violations::one("holistic_plan", "is required"))?;
                let (case_id, plan_id) = parse_plan_name("holistic_plan.name", &plan.name)?;
                let (case, _) = self.authorize(&caller, Rpc::UpdateHolisticPlan, &case_id).await?;
                Self::covers(&case, &plan_id)?;
                let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
                if paths.is_empty() {
                    return Err(Violations::one("update_mask", "name what to update: goals and/or coordinator").into());
                }
                let on = optional_date("updated_on", req.updated_on.as_ref(), self.clock.today())?;
                let mut events = Vec::new();
                for (i, path) in paths.iter().enumerate() {
                    let kind = match path.as_str() {
                        "goals" => {
                            let goals = convert::goals_from_pb(&plan.goals).map_err(|v| v.within("holistic_plan"))?;
                            let covers = Self::covers(&case, &plan_id)?;
                            case.check_goal_holders(PlanKind::Bl78, covers, &goals)
                                .map_err(|v| v.within("holistic_plan"))?;
                            EventKind::PlanGoalsUpdated { plan_id: plan_id.clone(), goals }
                        }
                        "coordinator" => EventKind::PlanCoordinatorNamed {
                            plan_id: plan_id.clone(),
                            coordinator: convert::coordinator_from_pb(
                                "holistic_plan.coordinator",
                                plan.coordinator.as_ref(),
                            )?,
                        },
                        other => {
                            return Err(Violations::one(
                                format!("update_mask.paths[{i}]"),
                                format!(
                                    "{:?} cannot be updated; use goals or coordinator",
                                    bro_domain::mask_digit_runs(other)
                                ),
                            )
                            .into());
                        }
                    };
                    if events.iter().any(|e: &Event| e.kind.type_name() == kind.type_name()) {
                        return Err(Violations::one(format!("update_mask.paths[{i}]"), "is named twice").into());
                    }
                    events.push(Event { occurred_on: on, source: None, kind });
                }
                let plan = self.change(&caller, case_id, &plan_id, events, &plan.etag, &req.request_id).await?;
                Ok(pb::UpdateHolisticPlanResponse { holistic_plan: Some(plan) })
            })
            .await
    }

    async fn record_plan_agreement(
        &self,
        request: Request<pb::RecordPlanAgreementRequest>,
    ) -> Result<Response<pb::RecordPlanAgreementResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("RecordPlanAgreement", async {
                let caller = caller?;
                let (case_id, plan_id) = parse_plan_name("name", &req.name)?;
                let (case, _) = self.authorize(&caller, Rpc::RecordPlanAgreement, &case_id).await?;
                let holder = Self::covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
                let on = optional_date("agreed_on", req.agreed_on.as_ref(), self.clock.today())?;
                // An agreement that already holds is not recorded twice.
                let holds = case.consents.iter().any(|c| {
                    c.custody_holder == holder && c.scope.as_str() == ConsentScope::BL78 && c.withdrawn_on.is_none()
                });
                let events = if holds {
                    Vec::new()
                } else {
                    vec![Event {
                        occurred_on: on,
                        source: None,
                        kind: EventKind::ConsentGiven {
                            custody_holder: holder,
                            scope: ConsentScope::parse("scope", ConsentScope::BL78)?,
                        },
                    }]
                };
                let plan = self.change(&caller, case_id, &plan_id, events, "", &req.request_id).await?;
                Ok(pb::RecordPlanAgreementResponse { holistic_plan: Some(plan) })
            })
            .await
    }

    async fn withdraw_plan_agreement(
        &self,
        request: Request<pb::WithdrawPlanAgreementRequest>,
    ) -> Result<Response<pb::WithdrawPlanAgreementResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("WithdrawPlanAgreement", async {
                let caller = caller?;
                let (case_id, plan_id) = parse_plan_name("name", &req.name)?;
                let (case, _) = self.authorize(&caller, Rpc::WithdrawPlanAgreement, &case_id).await?;
                let holder = Self::covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
                let on = optional_date("withdrawn_on", req.withdrawn_on.as_ref(), self.clock.today())?;
                let event = Event {
                    occurred_on: on,
                    source: None,
                    kind: EventKind::ConsentWithdrawn {
                        custody_holder: holder,
                        scope: ConsentScope::parse("scope", ConsentScope::BL78)?,
                    },
                };
                let plan = self.change(&caller, case_id, &plan_id, vec![event], "", &req.request_id).await?;
                tracing::info!(plan = %plan.name, "agreement to a holistic plan withdrawn");
                Ok(pb::WithdrawPlanAgreementResponse { holistic_plan: Some(plan) })
            })
            .await
    }

    async fn list_plan_conflicts(
        &self,
        request: Request<pb::ListPlanConflictsRequest>,
    ) -> Result<Response<pb::ListPlanConflictsResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("ListPlanConflicts", async {
                let caller = caller?;
                let plan = self.read(&caller, Rpc::ListPlanConflicts, &req.name, 0).await?;
                Ok(pb::ListPlanConflictsResponse { conflicts: plan.conflicts, evaluated_on: plan.evaluated_on })
            })
            .await
    }

    async fn list_holistic_plan_versions(
        &self,
        request: Request<pb::ListHolisticPlanVersionsRequest>,
    ) -> Result<Response<pb::ListHolisticPlanVersionsResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("ListHolisticPlanVersions", async {
                let caller = caller?;
                let (case_id, plan_id) = parse_plan_name("name", &req.name)?;
                let (case, _) = self.authorize(&caller, Rpc::ListHolisticPlanVersions, &case_id).await?;
                let limit = paging::page_size(req.page_size, 100)?;
                let scope = format!("plan-versions|{}", req.name);
                let after = paging::decode_token(&req.page_token, &scope)?;
                let mut history = self.reader.ledger.history(&case_id).await?;
                history.retain(|e| e.sequence <= case.version);
                let all = holistic::versions(&case, &history, &plan_id);
                if all.is_empty() {
                    return Err(not_found(wire::plan_name(&case_id, &plan_id)));
                }
                let page: Vec<_> = all.iter().filter(|v| v.sequence > after).take(limit + 1).collect();
                let next_page_token = match page.get(limit) {
                    Some(_) => paging::encode_token(&scope, page[limit - 1].sequence),
                    None => String::new(),
                };
                let versions = page.into_iter().take(limit).map(wire::version_to_pb).collect();
                Ok(pb::ListHolisticPlanVersionsResponse { versions, next_page_token })
            })
            .await
    }

    async fn create_plan_link(
        &self,
        request: Request<pb::CreatePlanLinkRequest>,
    ) -> Result<Response<pb::CreatePlanLinkResponse>, Status> {
        let caller = Caller::of(&request);
        let req = request.into_inner();
        self.metrics
            .observe("CreatePlanLink", async {
                let caller = caller?;
                let (case_id, plan_id) = parse_plan_name("name", &req.name)?;
                let (case, _) = self.authorize(&caller, Rpc::CreatePlanLink, &case_id).await?;
                let holder = Self::covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
                let days = match req.valid_days {
                    0 => 30,
                    d if (1..=links::MAX_VALID_DAYS).contains(&i64::from(d)) => i64::from(d),
                    _ => {
                        return Err(Violations::one(
                            "valid_days",
                            format!("must be 1 to {} days", links::MAX_VALID_DAYS),
                        )
                        .into());
                    }
                };
                let Some(base) = &self.pages_base_url else {
                    return Err(ApiError::FailedPrecondition {
                        reason: "PLAN_PAGES_DISABLED",
                        message: "this gateway serves no plan pages: configure pages_listen".into(),
                    });
                };
                // The record names only the parent the link is for.
                caller.concerns_holders(&case, std::slice::from_ref(&holder));
                let expires = self.clock.now() + chrono::Duration::days(days);
                let token =
                    links::issue(&self.keys, &links::PlanLink { case_id, plan_id, custody_holder: holder, expires });
                Ok(pb::CreatePlanLinkResponse {
                    url: format!("{}/plan/{token}", base.trim_end_matches('/')),
                    expire_time: Some(convert::timestamp_to_pb(expires)),
                })
            })
            .await
    }
}

impl PlanApi {
    /// The parents plan `plan_id` covers; NOT_FOUND if the case has no such plan.
    fn covers<'a>(case: &'a Case, plan_id: &str) -> Result<&'a [PartyId], ApiError> {
        case.plans
            .iter()
            .find(|p| p.plan_id == plan_id && p.kind == PlanKind::Bl78)
            .map(|p| p.covers.as_slice())
            .ok_or_else(|| not_found(wire::plan_name(&case.id, plan_id)))
    }
}
