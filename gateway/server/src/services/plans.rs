//! `bro.v1.PlanService`: § 78 holistic plans — proposed from the case,
//! created, read at any version, updated, agreed to and withdrawn from,
//! their conflicts and versions, and links to a parent's own page. Changes
//! are events of the case; reads assemble the plan
//! ([`crate::plans::reader`]).

use bro_api::convert;
use bro_api::v1 as pb;
use bro_api::v1::plan_service_server::PlanService;
use bro_domain::{Case, CaseId, ConsentScope, Date, Event, EventKind, PartyId, PlanKind, Violations};
use bro_rules::holistic;
use bro_store::AppendEvents;
use sha2::Digest as _;

use crate::access::Caller;
use crate::access::policy::{Grant, Rpc};
use crate::context::{Context, grpc_service};
use crate::error::ApiError;
use crate::names;
use crate::paging;
use crate::plans::links;
use crate::plans::reader::{PlanReader, not_found};

/// The service.
pub struct PlanApi {
    ctx: Context,
    reader: PlanReader,
    pages_base_url: Option<String>,
}

fn optional_date(field: &str, date: Option<&pb::Date>, today: Date) -> Result<Date, Violations> {
    match date {
        None => Ok(today),
        Some(_) => convert::date_from_pb(field, date),
    }
}

/// A plan id from a request id, so that a retried create names the same plan.
fn plan_id_for(request_id: &str) -> String {
    let digest = sha2::Sha256::digest(request_id.as_bytes());
    format!("hp-{}", hex::encode(&digest[..5]))
}

/// The parents plan `plan_id` covers; NOT_FOUND if the case has no such plan.
fn covers<'a>(case: &'a Case, plan_id: &str) -> Result<&'a [PartyId], ApiError> {
    case.plans
        .iter()
        .find(|p| p.plan_id == plan_id && p.kind == PlanKind::Bl78)
        .map(|p| p.covers.as_slice())
        .ok_or_else(|| not_found(bro_api::plan::plan_name(&case.id, plan_id)))
}

/// The covered parent `raw` of a plan, or a violation naming `field`.
fn covered(case: &Case, plan_id: &str, field: &str, raw: &str) -> Result<PartyId, ApiError> {
    let holder = convert::party_id(field, raw)?;
    if !covers(case, plan_id)?.contains(&holder) {
        return Err(Violations::one(field, format!("{holder} is not covered by the plan")).into());
    }
    Ok(holder)
}

/// Every custody holder `raw` names, each once, checked against the case.
fn custody_holders(case: &Case, raw: &[String]) -> Result<Vec<PartyId>, ApiError> {
    let mut out = Vec::new();
    for (i, raw) in raw.iter().enumerate() {
        let field = format!("covers[{i}]");
        let holder = convert::party_id(&field, raw)?;
        if case.custody_holder(&holder).is_none() {
            return Err(Violations::one(field, format!("the case has no custody holder \"{holder}\"")).into());
        }
        if !out.contains(&holder) {
            out.push(holder);
        }
    }
    Ok(out)
}

impl PlanApi {
    /// The service; links point at `pages_base_url` when the gateway serves plan pages.
    pub fn new(ctx: Context, pages_base_url: Option<String>) -> Self {
        let reader = PlanReader::new(ctx.ledger.clone(), ctx.coordination.clone(), ctx.clock.clone());
        PlanApi { ctx, reader, pages_base_url }
    }

    /// A plan of a caller's case as the caller may see it.
    async fn read(&self, caller: &Caller, rpc: Rpc, name: &str, version: u64) -> Result<pb::HolisticPlan, ApiError> {
        let (case_id, plan_id) = names::plan_name("name", name)?;
        let (_, grant) = self.ctx.authorize_case(caller, rpc, &case_id).await?;
        if matches!(grant, Grant::Sector(_)) && version != 0 {
            let why = "another sector's system reads a plan as it is now, within the consents that hold now";
            caller.refused(why);
            return Err(ApiError::PermissionDenied(why.into()));
        }
        let loaded = self.reader.load(&case_id, &plan_id, version).await?;
        let plan = match grant {
            Grant::Full => loaded.plan.clone(),
            Grant::Sector(view) => {
                let shared: Vec<PartyId> = loaded
                    .case
                    .shared_custody_holders(view.scope(), self.ctx.clock.today())
                    .map(|p| p.party_id.clone())
                    .collect();
                loaded.plan.sector_view(view.sector(), view.scope(), &shared).ok_or_else(|| {
                    let why = "the plan is not in force, or no parent it covers shares with this system";
                    caller.refused(why);
                    ApiError::PermissionDenied(why.into())
                })?
            }
        };
        caller.concerns_holders(&loaded.case, &plan.covers);
        Ok(loaded.to_pb(&plan))
    }

    /// Appends plan events for a caller (none: nothing to change), then reads
    /// the plan back.
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
            let request_id = names::write_request_id(request_id)?;
            let now = self.ctx.clock.now();
            let audit = self.ctx.audit_write(caller).await?;
            let append =
                AppendEvents { expected_version, audit, ..AppendEvents::new(case_id.clone(), events, request_id, now) };
            self.ctx.ledger.append(append).await?;
        }
        let loaded = self.reader.load(&case_id, plan_id, 0).await?;
        caller.concerns_holders(&loaded.case, &loaded.plan.covers);
        Ok(loaded.to_pb(&loaded.plan))
    }

    /// The consent (scope `bl78`) that records a parent's agreement to a plan.
    fn agreement(holder: PartyId, on: Date, given: bool) -> Result<Event, ApiError> {
        let scope = ConsentScope::parse("scope", ConsentScope::BL78)?;
        let kind = if given {
            EventKind::ConsentGiven { custody_holder: holder, scope }
        } else {
            EventKind::ConsentWithdrawn { custody_holder: holder, scope }
        };
        Ok(Event { occurred_on: on, source: None, kind })
    }
}

/// The handlers, each run by [`Context::handle`] through the table below.
impl PlanApi {
    async fn propose_holistic_plan(
        &self,
        caller: Caller,
        req: pb::ProposeHolisticPlanRequest,
    ) -> Result<pb::ProposeHolisticPlanResponse, ApiError> {
        let case_id = CaseId::from_resource_name("parent", &req.parent)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::ProposeHolisticPlan, &case_id).await?;
        let mut covers = custody_holders(&case, &req.covers)?;
        if covers.is_empty() {
            covers = holistic::default_covers(&case);
        }
        let today = self.ctx.clock.today();
        let mut history = self.ctx.ledger.history(&case_id).await?;
        history.retain(|e| e.sequence <= case.version);
        let holders: Vec<PartyId> = case.custody_holders.iter().map(|p| p.party_id.clone()).collect();
        let evaluated = bro_rules::evaluate_history(&holders, &history, today);
        let coordination = &self.ctx.coordination;
        let plan = holistic::propose(&case, &covers, today, coordination, Some(&evaluated.evaluation));
        let mut out = bro_api::plan::plan_to_pb(&plan, String::new(), &case, 0);
        out.evaluated_on = Some(convert::date_to_pb(today));
        Ok(pb::ProposeHolisticPlanResponse { holistic_plan: Some(out) })
    }

    async fn create_holistic_plan(
        &self,
        caller: Caller,
        req: pb::CreateHolisticPlanRequest,
    ) -> Result<pb::CreateHolisticPlanResponse, ApiError> {
        let case_id = CaseId::from_resource_name("parent", &req.parent)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::CreateHolisticPlan, &case_id).await?;
        let request_id = names::write_request_id(&req.request_id)?;
        let plan_id = match req.holistic_plan_id.as_str() {
            "" => plan_id_for(&request_id),
            id => {
                bro_domain::check_id("holistic_plan_id", id)?;
                id.to_owned()
            }
        };
        if req.covers.is_empty() {
            let why = "name the custody holders the plan covers: one or both parents";
            return Err(Violations::one("covers", why).into());
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
        let on = optional_date("prepared_on", req.prepared_on.as_ref(), self.ctx.clock.today())?;
        let prepared = EventKind::PlanPrepared { plan_id: plan_id.clone(), kind: PlanKind::Bl78, covers, goals };
        let mut events = vec![Event { occurred_on: on, source: None, kind: prepared }];
        if req.coordinator.is_some() {
            let coordinator = convert::coordinator_from_pb("coordinator", req.coordinator.as_ref())?;
            let named = EventKind::PlanCoordinatorNamed { plan_id: plan_id.clone(), coordinator };
            events.push(Event { occurred_on: on, source: None, kind: named });
        }
        let plan = self.change(&caller, case_id, &plan_id, events, "", &request_id).await?;
        tracing::info!(plan = %plan.name, "holistic plan created");
        Ok(pb::CreateHolisticPlanResponse { holistic_plan: Some(plan) })
    }

    async fn get_holistic_plan(
        &self,
        caller: Caller,
        req: pb::GetHolisticPlanRequest,
    ) -> Result<pb::GetHolisticPlanResponse, ApiError> {
        if req.version < 0 {
            return Err(Violations::one("version", "is negative").into());
        }
        let plan = self.read(&caller, Rpc::GetHolisticPlan, &req.name, req.version as u64).await?;
        Ok(pb::GetHolisticPlanResponse { holistic_plan: Some(plan) })
    }

    async fn list_holistic_plans(
        &self,
        caller: Caller,
        req: pb::ListHolisticPlansRequest,
    ) -> Result<pb::ListHolisticPlansResponse, ApiError> {
        let case_id = CaseId::from_resource_name("parent", &req.parent)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::ListHolisticPlans, &case_id).await?;
        let mut holistic_plans = Vec::new();
        for plan in case.plans.iter().filter(|p| p.kind == PlanKind::Bl78) {
            let loaded = self.reader.load(&case_id, &plan.plan_id, 0).await?;
            holistic_plans.push(loaded.to_pb(&loaded.plan));
        }
        Ok(pb::ListHolisticPlansResponse { holistic_plans })
    }

    async fn update_holistic_plan(
        &self,
        caller: Caller,
        req: pb::UpdateHolisticPlanRequest,
    ) -> Result<pb::UpdateHolisticPlanResponse, ApiError> {
        let plan = req.holistic_plan.ok_or_else(|| Violations::one("holistic_plan", "is required"))?;
        let (case_id, plan_id) = names::plan_name("holistic_plan.name", &plan.name)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::UpdateHolisticPlan, &case_id).await?;
        covers(&case, &plan_id)?;
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            return Err(Violations::one("update_mask", "name what to update: goals and/or coordinator").into());
        }
        let on = optional_date("updated_on", req.updated_on.as_ref(), self.ctx.clock.today())?;
        let mut events = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            let kind = match path.as_str() {
                "goals" => {
                    let goals = convert::goals_from_pb(&plan.goals).map_err(|v| v.within("holistic_plan"))?;
                    case.check_goal_holders(PlanKind::Bl78, covers(&case, &plan_id)?, &goals)
                        .map_err(|v| v.within("holistic_plan"))?;
                    EventKind::PlanGoalsUpdated { plan_id: plan_id.clone(), goals }
                }
                "coordinator" => EventKind::PlanCoordinatorNamed {
                    plan_id: plan_id.clone(),
                    coordinator: convert::coordinator_from_pb("holistic_plan.coordinator", plan.coordinator.as_ref())?,
                },
                other => {
                    let why =
                        format!("{:?} cannot be updated; use goals or coordinator", bro_domain::mask_digit_runs(other));
                    return Err(Violations::one(format!("update_mask.paths[{i}]"), why).into());
                }
            };
            if events.iter().any(|e: &Event| e.kind.type_name() == kind.type_name()) {
                return Err(Violations::one(format!("update_mask.paths[{i}]"), "is named twice").into());
            }
            events.push(Event { occurred_on: on, source: None, kind });
        }
        let plan = self.change(&caller, case_id, &plan_id, events, &plan.etag, &req.request_id).await?;
        Ok(pb::UpdateHolisticPlanResponse { holistic_plan: Some(plan) })
    }

    async fn record_plan_agreement(
        &self,
        caller: Caller,
        req: pb::RecordPlanAgreementRequest,
    ) -> Result<pb::RecordPlanAgreementResponse, ApiError> {
        let (case_id, plan_id) = names::plan_name("name", &req.name)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::RecordPlanAgreement, &case_id).await?;
        let holder = covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
        let on = optional_date("agreed_on", req.agreed_on.as_ref(), self.ctx.clock.today())?;
        // An agreement that already holds is not recorded twice.
        let holds = case
            .consents
            .iter()
            .any(|c| c.custody_holder == holder && c.scope.as_str() == ConsentScope::BL78 && c.withdrawn_on.is_none());
        let events = if holds { Vec::new() } else { vec![Self::agreement(holder, on, true)?] };
        let plan = self.change(&caller, case_id, &plan_id, events, "", &req.request_id).await?;
        Ok(pb::RecordPlanAgreementResponse { holistic_plan: Some(plan) })
    }

    async fn withdraw_plan_agreement(
        &self,
        caller: Caller,
        req: pb::WithdrawPlanAgreementRequest,
    ) -> Result<pb::WithdrawPlanAgreementResponse, ApiError> {
        let (case_id, plan_id) = names::plan_name("name", &req.name)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::WithdrawPlanAgreement, &case_id).await?;
        let holder = covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
        let on = optional_date("withdrawn_on", req.withdrawn_on.as_ref(), self.ctx.clock.today())?;
        let events = vec![Self::agreement(holder, on, false)?];
        let plan = self.change(&caller, case_id, &plan_id, events, "", &req.request_id).await?;
        tracing::info!(plan = %plan.name, "agreement to a holistic plan withdrawn");
        Ok(pb::WithdrawPlanAgreementResponse { holistic_plan: Some(plan) })
    }

    async fn list_plan_conflicts(
        &self,
        caller: Caller,
        req: pb::ListPlanConflictsRequest,
    ) -> Result<pb::ListPlanConflictsResponse, ApiError> {
        let plan = self.read(&caller, Rpc::ListPlanConflicts, &req.name, 0).await?;
        Ok(pb::ListPlanConflictsResponse { conflicts: plan.conflicts, evaluated_on: plan.evaluated_on })
    }

    async fn list_holistic_plan_versions(
        &self,
        caller: Caller,
        req: pb::ListHolisticPlanVersionsRequest,
    ) -> Result<pb::ListHolisticPlanVersionsResponse, ApiError> {
        let (case_id, plan_id) = names::plan_name("name", &req.name)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::ListHolisticPlanVersions, &case_id).await?;
        let limit = paging::page_size(req.page_size, 100)?;
        let scope = format!("plan-versions|{}", req.name);
        let after = paging::decode_token(&req.page_token, &scope)?;
        let mut history = self.ctx.ledger.history(&case_id).await?;
        history.retain(|e| e.sequence <= case.version);
        let all = holistic::versions(&case, &history, &plan_id);
        if all.is_empty() {
            return Err(not_found(bro_api::plan::plan_name(&case_id, &plan_id)));
        }
        let page: Vec<_> = all.iter().filter(|v| v.sequence > after).take(limit + 1).collect();
        let next_page_token = match page.get(limit) {
            Some(_) => paging::encode_token(&scope, page[limit - 1].sequence),
            None => String::new(),
        };
        let versions = page.into_iter().take(limit).map(bro_api::plan::version_to_pb).collect();
        Ok(pb::ListHolisticPlanVersionsResponse { versions, next_page_token })
    }

    async fn create_plan_link(
        &self,
        caller: Caller,
        req: pb::CreatePlanLinkRequest,
    ) -> Result<pb::CreatePlanLinkResponse, ApiError> {
        let (case_id, plan_id) = names::plan_name("name", &req.name)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::CreatePlanLink, &case_id).await?;
        let holder = covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
        let days = match req.valid_days {
            0 => 30,
            d if (1..=links::MAX_VALID_DAYS).contains(&i64::from(d)) => i64::from(d),
            _ => {
                let why = format!("must be 1 to {} days", links::MAX_VALID_DAYS);
                return Err(Violations::one("valid_days", why).into());
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
        let now = self.ctx.clock.now();
        let expires = now + chrono::Duration::days(days);
        let link = links::PlanLink {
            case_id,
            plan_id,
            custody_holder: holder,
            expires,
            made: now,
            made_at_version: case.version,
        };
        let token = links::issue(&self.ctx.keys, &link);
        Ok(pb::CreatePlanLinkResponse {
            url: format!("{}/plan/{token}", base.trim_end_matches('/')),
            expire_time: Some(convert::timestamp_to_pb(expires)),
        })
    }
}

/// The handlers, each run by [`Context::handle`] through the table below.
impl PlanApi {
    async fn revoke_plan_links(
        &self,
        caller: Caller,
        req: pb::RevokePlanLinksRequest,
    ) -> Result<pb::RevokePlanLinksResponse, ApiError> {
        let (case_id, plan_id) = names::plan_name("name", &req.name)?;
        let (case, _) = self.ctx.authorize_case(&caller, Rpc::RevokePlanLinks, &case_id).await?;
        let holder = covered(&case, &plan_id, "custody_holder", &req.custody_holder)?;
        caller.concerns_holders(&case, std::slice::from_ref(&holder));
        let now = self.ctx.clock.now();
        // Every link made for this parent and plan so far, whatever its expiry.
        let link = links::PlanLink {
            case_id,
            plan_id,
            custody_holder: holder,
            expires: now,
            made: now,
            made_at_version: case.version,
        };
        self.ctx.store().revoke_plan_links(&link.revocation_key(&self.ctx.keys), now).await?;
        tracing::info!(case = %link.case_id, plan = %link.plan_id, "plan page links revoked");
        Ok(pb::RevokePlanLinksResponse { revoke_time: Some(convert::timestamp_to_pb(now)) })
    }
}

grpc_service! {
    PlanService, PlanApi {
        rpc ProposeHolisticPlan => propose_holistic_plan(pb::ProposeHolisticPlanRequest) -> pb::ProposeHolisticPlanResponse;
        rpc CreateHolisticPlan => create_holistic_plan(pb::CreateHolisticPlanRequest) -> pb::CreateHolisticPlanResponse;
        rpc GetHolisticPlan => get_holistic_plan(pb::GetHolisticPlanRequest) -> pb::GetHolisticPlanResponse;
        rpc ListHolisticPlans => list_holistic_plans(pb::ListHolisticPlansRequest) -> pb::ListHolisticPlansResponse;
        rpc UpdateHolisticPlan => update_holistic_plan(pb::UpdateHolisticPlanRequest) -> pb::UpdateHolisticPlanResponse;
        rpc RecordPlanAgreement => record_plan_agreement(pb::RecordPlanAgreementRequest) -> pb::RecordPlanAgreementResponse;
        rpc WithdrawPlanAgreement => withdraw_plan_agreement(pb::WithdrawPlanAgreementRequest)
            -> pb::WithdrawPlanAgreementResponse;
        rpc ListPlanConflicts => list_plan_conflicts(pb::ListPlanConflictsRequest) -> pb::ListPlanConflictsResponse;
        rpc ListHolisticPlanVersions => list_holistic_plan_versions(pb::ListHolisticPlanVersionsRequest)
            -> pb::ListHolisticPlanVersionsResponse;
        rpc CreatePlanLink => create_plan_link(pb::CreatePlanLinkRequest) -> pb::CreatePlanLinkResponse;
        rpc RevokePlanLinks => revoke_plan_links(pb::RevokePlanLinksRequest) -> pb::RevokePlanLinksResponse;
    }
}
