//! NetFlow v9 (RFC 3954) packet header. Flowsets are decoded by [`crate::template`], which NetFlow
//! v9 shares with IPFIX.

use crate::view::view;
use crate::DecodeError;

pub const VERSION: u16 = 9;
pub const HEADER_LEN: usize = 20;

mod field {
    pub const VERSION: usize = 0;
    pub const COUNT: usize = 2;
    pub const SYS_UPTIME: usize = 4;
    pub const UNIX_SECS: usize = 8;
    pub const SEQUENCE: usize = 12;
    pub const SOURCE_ID: usize = 16;
}

view! {
    /// A read-only view of a NetFlow v9 export packet.
    pub struct Packet, min_len = HEADER_LEN, error = DecodeError;
    pub fn version -> u16 = field::VERSION;
    /// Records (template + data) the exporter claims to have sent; vendors get it wrong, so the
    /// decoder never uses it as a loop bound.
    pub fn count -> u16 = field::COUNT;
    /// Milliseconds since the exporter booted, at export time.
    pub fn sys_uptime -> u32 = field::SYS_UPTIME;
    pub fn unix_secs -> u32 = field::UNIX_SECS;
    /// Export packets sent by this source id (v9 counts packets, not records).
    pub fn sequence -> u32 = field::SEQUENCE;
    pub fn source_id -> u32 = field::SOURCE_ID;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The flowsets after the header.
    pub fn payload(&self) -> &[u8] {
        self.bytes().get(HEADER_LEN..).unwrap_or_default()
    }
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderRepr {
    pub count: u16,
    pub sys_uptime: u32,
    pub unix_secs: u32,
    pub sequence: u32,
    pub source_id: u32,
}

impl HeaderRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, DecodeError> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(DecodeError::UnknownVersion);
        }
        Ok(HeaderRepr {
            count: packet.count(),
            sys_uptime: packet.sys_uptime(),
            unix_secs: packet.unix_secs(),
            sequence: packet.sequence(),
            source_id: packet.source_id(),
        })
    }

    /// Appends the 20-byte header.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&VERSION.to_be_bytes());
        buf.extend_from_slice(&self.count.to_be_bytes());
        buf.extend_from_slice(&self.sys_uptime.to_be_bytes());
        buf.extend_from_slice(&self.unix_secs.to_be_bytes());
        buf.extend_from_slice(&self.sequence.to_be_bytes());
        buf.extend_from_slice(&self.source_id.to_be_bytes());
    }
}
