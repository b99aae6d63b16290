//! IPFIX (RFC 7011) message header. Sets are decoded by [`crate::template`], which IPFIX shares
//! with NetFlow v9.

use crate::view::view;
use crate::DecodeError;

pub const VERSION: u16 = 10;
pub const HEADER_LEN: usize = 16;

mod field {
    pub const VERSION: usize = 0;
    pub const LENGTH: usize = 2;
    pub const EXPORT_TIME: usize = 4;
    pub const SEQUENCE: usize = 8;
    pub const DOMAIN_ID: usize = 12;
}

view! {
    /// A read-only view of an IPFIX message.
    pub struct Packet, min_len = HEADER_LEN, error = DecodeError;
    pub fn version -> u16 = field::VERSION;
    /// Message length including this header.
    pub fn length -> u16 = field::LENGTH;
    /// Seconds since the Unix epoch at export.
    pub fn export_time -> u32 = field::EXPORT_TIME;
    /// Data records sent in this observation domain before this message (IPFIX counts records).
    pub fn sequence -> u32 = field::SEQUENCE;
    pub fn domain_id -> u32 = field::DOMAIN_ID;
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// The sets after the header, up to the declared length or the end of the buffer.
    pub fn payload(&self) -> &[u8] {
        let bytes = self.bytes();
        let end = usize::from(self.length()).min(bytes.len());
        bytes.get(HEADER_LEN..end).unwrap_or_default()
    }
}

/// The header as plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeaderRepr {
    pub length: u16,
    pub export_time: u32,
    pub sequence: u32,
    pub domain_id: u32,
}

impl HeaderRepr {
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, DecodeError> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(DecodeError::UnknownVersion);
        }
        Ok(HeaderRepr {
            length: packet.length(),
            export_time: packet.export_time(),
            sequence: packet.sequence(),
            domain_id: packet.domain_id(),
        })
    }

    /// Appends the 16-byte header.
    pub fn emit(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&VERSION.to_be_bytes());
        buf.extend_from_slice(&self.length.to_be_bytes());
        buf.extend_from_slice(&self.export_time.to_be_bytes());
        buf.extend_from_slice(&self.sequence.to_be_bytes());
        buf.extend_from_slice(&self.domain_id.to_be_bytes());
    }
}
