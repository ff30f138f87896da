//! § 78 holistic plans as they are read and shown: [`reader`] assembles a
//! plan from its case's events (now, or at any earlier version); [`page`] is
//! the parents' page in plain Danish, served through sealed, expiring
//! [`links`] by the loopback page server [`http`]. (`PlanService`, which
//! changes plans, is one of the services.)

pub mod http;
pub mod links;
pub mod page;
pub mod reader;
