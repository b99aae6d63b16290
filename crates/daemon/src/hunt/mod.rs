//! Hunting in the daemon: the `hunt` thread fed by the engine thread's record samples and the
//! bus, the C2 feeds read from files (and reloaded), the RPZ zone written, C2 null routes.

pub mod feeds;
pub mod routes;
