//! A mitigation: one rule held in the network on behalf of one attack (or an operator).

use serde::{Deserialize, Serialize};

use crate::rule::Rule;

/// One rule the network holds, why, and since when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Mitigation {
    /// Stable: `<attack_id>-blackhole`, `<attack_id>-flowspec`, or `manual-<target>-<kind>`.
    pub id: String,
    /// The attack it answers; `None` for a manual mitigation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attack_id: Option<String>,
    pub hostgroup: String,
    pub rule: Rule,
    /// Estimated share of the attack's packets the rule matches (0..=1), from its fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Estimated share of the target's traffic before the attack the rule also matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collateral: Option<f64>,
    /// When it was put in place (Unix ms).
    pub since: u64,
    /// Recorded but not announced (`[mitigation] dry_run`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}
