//! NetFlow v9 and IPFIX (STUB).
use std::net::IpAddr;

use crate::{Context, DecodeError, ExporterCounters, FlowRecord, Limits, Summary};

pub struct TemplateDecoder {
    _limits: Limits,
}

impl TemplateDecoder {
    pub fn new(limits: Limits) -> Self {
        TemplateDecoder { _limits: limits }
    }

    pub fn decode_v9(
        &mut self,
        _ctx: &Context,
        _datagram: &[u8],
        _out: &mut Vec<FlowRecord>,
        _counters: &mut ExporterCounters,
    ) -> Result<Summary, DecodeError> {
        Err(DecodeError::UnknownVersion)
    }

    pub fn decode_ipfix(
        &mut self,
        _ctx: &Context,
        _datagram: &[u8],
        _out: &mut Vec<FlowRecord>,
        _counters: &mut ExporterCounters,
    ) -> Result<Summary, DecodeError> {
        Err(DecodeError::UnknownVersion)
    }

    /// Drops data sets held longer than `pending_max_age_ms`, reporting (exporter, data sets dropped).
    pub fn expire(&mut self, _now_ms: u64, _on_drop: &mut dyn FnMut(IpAddr, u64)) {}

    pub fn template_count(&self) -> usize {
        0
    }

    pub fn pending_bytes(&self) -> usize {
        0
    }
}
