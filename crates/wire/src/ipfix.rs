//! IPFIX (RFC 7011) message header. Sets are decoded by [`crate::template`], which IPFIX shares
//! with NetFlow v9.

use crate::be::{u16_at, u32_at};
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

/// A read-only view of an IPFIX message.
#[derive(Debug, Clone, Copy)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    pub fn new_checked(buffer: T) -> Result<Self, DecodeError> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    pub fn check_len(&self) -> Result<(), DecodeError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(DecodeError::Truncated)
        } else {
            Ok(())
        }
    }

    pub fn version(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::VERSION)
    }
    /// Message length including this header.
    pub fn length(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::LENGTH)
    }
    /// Seconds since the Unix epoch at export.
    pub fn export_time(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::EXPORT_TIME)
    }
    /// Data records sent in this observation domain before this message (IPFIX counts records).
    pub fn sequence(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SEQUENCE)
    }
    pub fn domain_id(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::DOMAIN_ID)
    }
    /// The sets after the header, up to the declared length or the end of the buffer.
    pub fn payload(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
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
