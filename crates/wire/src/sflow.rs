//! sFlow v5 (STUB).
use crate::{Context, DecodeError, ExporterCounters, FlowRecord, Summary};

pub fn decode(
    _ctx: &Context,
    _datagram: &[u8],
    _out: &mut Vec<FlowRecord>,
    _counters: &mut ExporterCounters,
) -> Result<Summary, DecodeError> {
    Err(DecodeError::UnknownVersion)
}
