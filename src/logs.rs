//! The log targets eddy's own lines are filed under, beyond the module paths `tracing` gives
//! by default: the lines a person watching a running eddy filters on
//! (`EDDY_LOG=eddy=info,eddy::unrouted=debug`), each with the ids it concerns as fields
//! (`event_id`, `delivery_id`, `handler`, `attempt`, `source`, `reason`).

/// A failed attempt, with the time of its retry (warn), and a delivery declared dead (error).
pub const ATTEMPTS: &str = "eddy::attempts";
/// A webhook refused: unknown source, signature, size, or content (warn).
pub const WEBHOOKS: &str = "eddy::webhooks";
/// An event no handler's routes match, so nothing will run for it (debug).
pub const UNROUTED: &str = "eddy::unrouted";
/// A handler file that does not load, at start or at a reload (error).
pub const HANDLERS: &str = "eddy::handlers";
