//! Announce-only BGP speaker: sessions to several peers (RFC 4271 FSM, active side), MP-BGP
//! for IPv4/IPv6 unicast and FlowSpec, and the routes Floodwall's mitigations hold.
//!
//! Design:
//! - One thread per peer owns its TCP session; a second, per-connection thread only reads and
//!   frames the peer's bytes. Both feed one channel, so the session thread waits on a single
//!   queue for peer messages, table changes, timers (the receive timeout) and shutdown.
//! - The Adj-RIB-Out is one shared table keyed by (family, NLRI bytes). `announce`/`withdraw`
//!   change it under a short lock and poke the peer threads; they never block on the network.
//! - Each session remembers what it has sent. Syncing is a diff of the table against that
//!   memory, 10 ms after the first change, so a burst of changes collapses into a few packed
//!   UPDATEs, a reconnect is the same code path as a change (everything is "new"), and a rule
//!   changed under the same NLRI replaces it.
//! - The FSM (`fsm.rs`) is pure: bytes and messages in, actions out, so the fuzz target drives
//!   exactly the code that reads peer input. Encoding of UPDATEs is ours (`encode.rs`); OPEN,
//!   NOTIFICATION, message framing/decoding and FlowSpec NLRI are `rustbgpd-wire`'s.
//! - Graceful Restart (RFC 4724) only as the restarting side: we advertise the capability so a
//!   helper keeps our routes when we close without withdrawing (`shutdown(keep = true)`), and
//!   we send End-of-RIB after every initial table so it can drop what we no longer hold.

#![forbid(unsafe_code)]

mod encode;
mod fsm;
mod peer;
mod speaker;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use floodwall_mitigate::Rule;

pub use encode::RuleError;
pub use speaker::Speaker;

/// An address family and sub-family a session can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    Ipv4Unicast,
    Ipv6Unicast,
    /// AFI 1, SAFI 133 (RFC 8955).
    Ipv4FlowSpec,
    /// AFI 2, SAFI 133 (RFC 8956).
    Ipv6FlowSpec,
}

impl Family {
    pub const ALL: [Family; 4] = [
        Family::Ipv4Unicast,
        Family::Ipv6Unicast,
        Family::Ipv4FlowSpec,
        Family::Ipv6FlowSpec,
    ];

    /// The configuration name: `ipv4-unicast`, `ipv6-unicast`, `ipv4-flowspec`, `ipv6-flowspec`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
            Family::Ipv4FlowSpec => "ipv4-flowspec",
            Family::Ipv6FlowSpec => "ipv6-flowspec",
        }
    }

    pub(crate) fn afi(self) -> u16 {
        match self {
            Family::Ipv4Unicast | Family::Ipv4FlowSpec => 1,
            Family::Ipv6Unicast | Family::Ipv6FlowSpec => 2,
        }
    }

    pub(crate) fn safi(self) -> u8 {
        match self {
            Family::Ipv4Unicast | Family::Ipv6Unicast => 1,
            Family::Ipv4FlowSpec | Family::Ipv6FlowSpec => 133,
        }
    }

    pub(crate) fn from_afi_safi(afi: u16, safi: u8) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.afi() == afi && f.safi() == safi)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Family {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Family::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                "unknown address family `{s}`: use ipv4-unicast, ipv6-unicast, ipv4-flowspec or ipv6-flowspec"
            )
            })
    }
}

/// Settings shared by every session of one speaker.
#[derive(Debug, Clone)]
pub struct SpeakerConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time; the session uses the smaller of ours and the peer's, keepalives
    /// every third of it. 0 disables both; 1 and 2 are not allowed by RFC 4271 (rounded to 3).
    pub hold_time: Duration,
    /// First wait before reconnecting after a failed attempt or a lost session; doubles per
    /// failure up to `connect_retry_max`.
    pub connect_retry_min: Duration,
    pub connect_retry_max: Duration,
    /// Advertise Graceful Restart (RFC 4724) with this restart time in seconds (max 4095), so
    /// that a helper keeps our routes while Floodwall restarts.
    pub graceful_restart: Option<u16>,
}

impl SpeakerConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> SpeakerConfig {
        SpeakerConfig {
            local_as,
            router_id,
            hold_time: Duration::from_secs(90),
            connect_retry_min: Duration::from_secs(1),
            connect_retry_max: Duration::from_secs(60),
            graceful_restart: None,
        }
    }
}

/// One BGP neighbour we connect to.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    /// For logs and status.
    pub name: String,
    pub address: SocketAddr,
    pub remote_as: u32,
    /// Source address to bind before connecting (the address the peer is configured for).
    pub local_address: Option<IpAddr>,
    /// Families offered in OPEN; the session carries those the peer offers too.
    pub families: Vec<Family>,
}

/// Where a session stands (RFC 4271 §8.2.2; Active is folded into Connect, as we only
/// connect and never listen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    Idle,
    Connect,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for SessionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            SessionState::Idle => "idle",
            SessionState::Connect => "connect",
            SessionState::OpenSent => "open-sent",
            SessionState::OpenConfirm => "open-confirm",
            SessionState::Established => "established",
        };
        f.write_str(name)
    }
}

/// A snapshot of one peer's session.
#[derive(Debug, Clone)]
pub struct PeerStatus {
    pub name: String,
    pub address: SocketAddr,
    pub state: SessionState,
    pub established_since: Option<SystemTime>,
    /// Families both sides offered, valid while Established.
    pub families: Vec<Family>,
    /// UPDATE messages with routes or withdrawals sent over the speaker's lifetime (all
    /// sessions; End-of-RIB markers not counted).
    pub updates_sent: u64,
    /// Routes the peer holds from us now (our Adj-RIB-Out as sent on this session).
    pub routes_advertised: usize,
    /// How many times the session was Established.
    pub sessions_established: u64,
    /// Messages from the peer that failed to decode or broke the FSM; each one was answered
    /// with a NOTIFICATION and closed the session.
    pub malformed_messages: u64,
    pub last_error: Option<String>,
}

/// Feeds `data` through everything that reads a peer's bytes: the framer, in pieces whose
/// sizes come from the data, then each decoded message into a session state machine that has
/// just sent its OPEN. Returns how many messages the session accepted before it closed or the
/// data ran out. For the `bgp_messages` fuzz target; panics only on a broken invariant.
#[doc(hidden)]
pub fn read_peer_input(data: &[u8]) -> usize {
    use fsm::{Fsm, LocalOpen, MessageReader, Step};
    let Some((&piece, data)) = data.split_first() else {
        return 0;
    };
    let mut fsm = Fsm::open_sent(LocalOpen {
        local_as: 65001,
        router_id: Ipv4Addr::new(192, 0, 2, 9),
        hold_time: 90,
        families: Family::ALL.to_vec(),
        graceful_restart: Some(120),
        remote_as: 65000,
    });
    let mut reader = MessageReader::default();
    let mut accepted = 0;
    for chunk in data.chunks(usize::from(piece) + 1) {
        reader.push(chunk);
        loop {
            let step = match reader.next_message() {
                Ok(Some(message)) => fsm.on_message(message),
                Ok(None) => break,
                Err(error) => fsm.on_decode_error(&error),
            };
            match step {
                Step::Close { .. } => {
                    assert_eq!(fsm.state, SessionState::Idle);
                    return accepted;
                }
                Step::Established | Step::Refresh(_) => assert!(fsm.negotiated.is_some()),
                Step::Confirm => assert!(fsm.negotiated.as_ref().is_some_and(|n| n
                    .hold_time
                    .as_secs()
                    != 1
                    && n.hold_time.as_secs() != 2)),
                Step::Nothing => {}
            }
            accepted += 1;
        }
    }
    accepted
}

/// Whether two rules are the same route to BGP (same family and NLRI): announcing one
/// replaces the other, withdrawing either removes both.
pub fn same_route(a: &Rule, b: &Rule) -> bool {
    matches!((encode::nlri(a), encode::nlri(b)), (Ok(a), Ok(b)) if a == b)
}

/// The family a rule is announced in.
pub fn family_of(rule: &Rule) -> Family {
    match rule {
        Rule::Blackhole { prefix, .. } if prefix.addr().is_ipv4() => Family::Ipv4Unicast,
        Rule::Blackhole { .. } => Family::Ipv6Unicast,
        Rule::Filter { filter, .. } if filter.destination.addr().is_ipv4() => Family::Ipv4FlowSpec,
        Rule::Filter { .. } => Family::Ipv6FlowSpec,
    }
}
