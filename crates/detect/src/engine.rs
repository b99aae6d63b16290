//! The engine (STUB: interface only).

use floodwall_wire::FlowRecord;

use crate::{AttackEvent, DetectConfig};

/// Counters about the engine itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub records: u64,
    /// Records that touched no monitored network.
    pub records_unmonitored: u64,
    pub hosts_tracked: u64,
    pub prefixes_tracked: u64,
    pub attacks_active: u64,
}

pub struct Engine {
    config: DetectConfig,
    stats: EngineStats,
}

impl Engine {
    pub fn new(config: DetectConfig) -> Result<Engine, String> {
        config.validate()?;
        Ok(Engine {
            config,
            stats: EngineStats::default(),
        })
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// Accounts records. Telemetry time advances with the records' `time_ms`; crossing a bucket
    /// boundary closes the bucket and runs detection, appending events.
    pub fn ingest(&mut self, records: &[FlowRecord], _events: &mut Vec<AttackEvent>) {
        self.stats.records += records.len() as u64;
    }

    /// Advances telemetry time without records (a live collector that went quiet).
    pub fn tick(&mut self, _now_ms: u64, _events: &mut Vec<AttackEvent>) {}

    /// End of input: closes the open bucket and ends every active attack.
    pub fn finish(&mut self, _events: &mut Vec<AttackEvent>) {}

    pub fn stats(&self) -> EngineStats {
        self.stats.clone()
    }
}
