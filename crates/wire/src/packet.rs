//! Packet headers (STUB: to be replaced by the real implementation).
use std::net::IpAddr;

/// What the headers of one packet say, as far as they could be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Headers {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
    pub tcp_flags: u8,
    pub fragment: bool,
    pub ttl: u8,
    pub ip_len: u16,
    /// Offset of the L4 payload within the input, when the L4 header was complete.
    pub payload_offset: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    NotIp,
    Truncated,
}

pub fn parse_ethernet(_frame: &[u8]) -> Result<Headers, HeaderError> {
    Err(HeaderError::NotIp)
}

pub fn parse_ip(_packet: &[u8]) -> Result<Headers, HeaderError> {
    Err(HeaderError::NotIp)
}

pub fn parse_ethertype(
    _ethertype: u16,
    _payload: &[u8],
    _base: usize,
) -> Result<Headers, HeaderError> {
    Err(HeaderError::NotIp)
}
