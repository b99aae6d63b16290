//! Detection settings (STUB: to be completed). Deserialized from the `[detection]` part of
//! floodwall.toml; every field has a documented default.

use ipnet::IpNet;
use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Monitored networks (IPv4 and IPv6). Traffic to them is incoming, from them outgoing.
    pub networks: Vec<IpNet>,
}

impl DetectConfig {
    /// Checks what serde cannot: overlapping definitions, impossible values.
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
