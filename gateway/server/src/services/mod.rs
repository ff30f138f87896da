//! The gRPC services, one file each: [`cases`] (`CaseService`; its letters
//! and appointments, resources of their own, in [`case_items`]),
//! [`obligations`] (`ObligationService`, the worklist), [`plans`]
//! (`PlanService`), [`ingest`] (`IngestService` and its inbox),
//! [`deliveries`] (`DeliveryService` and the pull transport), [`audit`]
//! (`AuditService`) and [`adapters`] (`AdapterService`, the adapters' health). Each handler runs through `Context::handle`, asks the
//! policy about what it touches, and leaves the work to the layers below.

pub mod adapters;
pub mod audit;
pub mod case_items;
pub mod cases;
pub mod deliveries;
pub mod ingest;
pub mod obligations;
pub mod plans;
