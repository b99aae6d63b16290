//! Where flow records come from: UDP collectors (live) and capture files (replay).

pub mod pcap;
pub mod recvmmsg;
pub mod udp;
