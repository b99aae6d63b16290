//! Everything that reads what a peer sends: framing of the byte stream, decoding, and the
//! session state machine from OpenSent on. No I/O and no clocks here (the session thread owns
//! timers), so the fuzz target exercises exactly this code.

use std::net::Ipv4Addr;
use std::time::Duration;

use bytes::Bytes;
use rustbgpd_wire::{
    decode_message, peek_message_length, Afi, Capability, DecodeError, GracefulRestartFamily,
    Message, NotificationCode, NotificationMessage, OpenMessage, Safi,
};

use crate::encode::MAX_MESSAGE;
use crate::{Family, SessionState};

/// Cuts a TCP byte stream into BGP messages.
#[derive(Default)]
pub(crate) struct MessageReader {
    buffer: Vec<u8>,
}

impl MessageReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete message, `Ok(None)` when more bytes are needed. After an error the
    /// stream cannot be resynchronised: the caller must close the session.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let Some(len) = peek_message_length(&self.buffer, MAX_MESSAGE as u16)? else {
            return Ok(None);
        };
        let len = usize::from(len);
        if self.buffer.len() < len {
            return Ok(None);
        }
        let mut frame = Bytes::copy_from_slice(&self.buffer[..len]);
        self.buffer.drain(..len);
        decode_message(&mut frame, MAX_MESSAGE as u16).map(Some)
    }
}

/// What this side offers in OPEN.
#[derive(Debug, Clone)]
pub(crate) struct LocalOpen {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub hold_time: u16,
    pub families: Vec<Family>,
    pub graceful_restart: Option<u16>,
    pub remote_as: u32,
}

fn afi_safi(family: Family) -> (Afi, Safi) {
    match family {
        Family::Ipv4Unicast => (Afi::Ipv4, Safi::Unicast),
        Family::Ipv6Unicast => (Afi::Ipv6, Safi::Unicast),
        Family::Ipv4FlowSpec => (Afi::Ipv4, Safi::FlowSpec),
        Family::Ipv6FlowSpec => (Afi::Ipv6, Safi::FlowSpec),
    }
}

impl LocalOpen {
    pub fn message(&self) -> OpenMessage {
        let mut capabilities: Vec<Capability> = self
            .families
            .iter()
            .map(|&f| {
                let (afi, safi) = afi_safi(f);
                Capability::MultiProtocol { afi, safi }
            })
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs { asn: self.local_as });
        if let Some(restart_time) = self.graceful_restart {
            capabilities.push(Capability::GracefulRestart {
                // Only a receiving helper's state matters to us; we never wait for the
                // peer's End-of-RIB (we take no routes), so R stays clear.
                restart_state: false,
                // RFC 8538 N bit clear: a NOTIFICATION (our shutdown without `keep`) ends
                // the session the classic way, routes withdrawn.
                notification: false,
                restart_time: restart_time.min(4095),
                families: self
                    .families
                    .iter()
                    .map(|&f| {
                        let (afi, safi) = afi_safi(f);
                        // Forwarding state is the routers', which keep it: our routes are
                        // policy, not forwarding. Set so helpers retain them (RFC 4724 §4.2).
                        GracefulRestartFamily {
                            afi,
                            safi,
                            forwarding_preserved: true,
                        }
                    })
                    .collect(),
            });
        }
        OpenMessage {
            version: 4,
            my_as: u16::try_from(self.local_as).unwrap_or(23456),
            hold_time: self.hold_time,
            bgp_identifier: self.router_id,
            capabilities,
        }
    }
}

/// What both OPENs agreed on.
#[derive(Debug, Clone)]
pub(crate) struct Negotiated {
    /// Zero: no hold timer and no keepalives.
    pub hold_time: Duration,
    pub families: Vec<Family>,
    pub four_octet_as: bool,
    pub ibgp: bool,
}

impl Negotiated {
    pub fn keepalive_interval(&self) -> Option<Duration> {
        (!self.hold_time.is_zero()).then(|| self.hold_time / 3)
    }
}

/// What the session thread must do after an input.
#[derive(Debug)]
pub(crate) enum Step {
    Nothing,
    /// The peer's OPEN was acceptable: send KEEPALIVE, now in OpenConfirm.
    Confirm,
    /// Now Established: send the table and End-of-RIB.
    Established,
    /// The peer asked for our routes of this family again (ROUTE-REFRESH).
    Refresh(Family),
    /// Send this NOTIFICATION (if any) and close. `malformed` counts a peer error.
    Close {
        notification: Option<NotificationMessage>,
        reason: String,
        malformed: bool,
    },
}

pub(crate) struct Fsm {
    pub local: LocalOpen,
    pub state: SessionState,
    pub negotiated: Option<Negotiated>,
}

fn notification(code: NotificationCode, subcode: u8) -> Option<NotificationMessage> {
    Some(NotificationMessage::new(code, subcode, Bytes::new()))
}

impl Fsm {
    /// A session whose OPEN has just been sent.
    pub fn open_sent(local: LocalOpen) -> Fsm {
        Fsm {
            local,
            state: SessionState::OpenSent,
            negotiated: None,
        }
    }

    /// A message that failed to decode.
    pub fn on_decode_error(&mut self, error: &DecodeError) -> Step {
        let (code, subcode, data) = error.to_notification();
        self.state = SessionState::Idle;
        Step::Close {
            notification: Some(NotificationMessage::new(code, subcode, data)),
            reason: format!("malformed message from the peer: {error}"),
            malformed: true,
        }
    }

    pub fn on_message(&mut self, message: Message) -> Step {
        let step = match (self.state, message) {
            (_, Message::Notification(n)) => Step::Close {
                notification: None,
                reason: format!(
                    "peer sent NOTIFICATION {}/{} ({})",
                    n.code.as_u8(),
                    n.subcode,
                    rustbgpd_wire::notification::description(n.code, n.subcode)
                ),
                malformed: false,
            },
            (SessionState::OpenSent, Message::Open(open)) => self.on_open(&open),
            (SessionState::OpenConfirm, Message::Keepalive) => {
                self.state = SessionState::Established;
                Step::Established
            }
            (SessionState::Established, Message::Keepalive | Message::Update(_)) => {
                // Announce-only: what the peer announces to us is not used.
                Step::Nothing
            }
            (SessionState::Established, Message::RouteRefresh(refresh)) => {
                match Family::from_afi_safi(refresh.afi_raw, refresh.safi_raw) {
                    Some(family)
                        if self
                            .negotiated
                            .as_ref()
                            .is_some_and(|n| n.families.contains(&family)) =>
                    {
                        Step::Refresh(family)
                    }
                    // RFC 2918 §4: ignore a refresh for a family not negotiated.
                    _ => Step::Nothing,
                }
            }
            (state, message) => {
                // RFC 6608 subcodes: 1 OpenSent, 2 OpenConfirm, 3 Established.
                let subcode = match state {
                    SessionState::OpenSent => 1,
                    SessionState::OpenConfirm => 2,
                    _ => 3,
                };
                Step::Close {
                    notification: notification(NotificationCode::FsmError, subcode),
                    reason: format!("unexpected {message} in state {state}"),
                    malformed: true,
                }
            }
        };
        if matches!(step, Step::Close { .. }) {
            self.state = SessionState::Idle;
        }
        step
    }

    fn on_open(&mut self, open: &OpenMessage) -> Step {
        let reject = |subcode: u8, reason: String| Step::Close {
            notification: notification(NotificationCode::OpenMessage, subcode),
            reason,
            malformed: true,
        };
        let remote_as = open.four_byte_as();
        if remote_as != self.local.remote_as {
            return reject(
                2,
                format!(
                    "peer is AS {remote_as}, configured as AS {}",
                    self.local.remote_as
                ),
            );
        }
        if open.bgp_identifier.is_unspecified() {
            return reject(3, "peer's BGP identifier is 0.0.0.0".into());
        }
        if open.hold_time == 1 || open.hold_time == 2 {
            return reject(6, format!("peer's hold time {} s", open.hold_time));
        }
        let offered: Vec<(Afi, Safi)> = open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::MultiProtocol { afi, safi } => Some((*afi, *safi)),
                _ => None,
            })
            .collect();
        let families: Vec<Family> = self
            .local
            .families
            .iter()
            .copied()
            .filter(|&f| {
                // RFC 4760 §8: a peer without any MP capability speaks IPv4 unicast only.
                offered.contains(&afi_safi(f)) || (offered.is_empty() && f == Family::Ipv4Unicast)
            })
            .collect();
        let four_octet_as = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs { .. }));
        let hold = self.local.hold_time.min(open.hold_time);
        self.negotiated = Some(Negotiated {
            hold_time: Duration::from_secs(u64::from(hold)),
            families,
            four_octet_as,
            ibgp: remote_as == self.local.local_as,
        });
        self.state = SessionState::OpenConfirm;
        Step::Confirm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustbgpd_wire::encode_message;

    fn local() -> LocalOpen {
        LocalOpen {
            local_as: 65001,
            router_id: Ipv4Addr::new(192, 0, 2, 9),
            hold_time: 90,
            families: vec![Family::Ipv4Unicast, Family::Ipv6FlowSpec],
            graceful_restart: Some(120),
            remote_as: 65000,
        }
    }

    fn open(asn: u32, hold: u16, capabilities: Vec<Capability>) -> Message {
        Message::Open(OpenMessage {
            version: 4,
            my_as: u16::try_from(asn).unwrap_or(23456),
            hold_time: hold,
            bgp_identifier: Ipv4Addr::new(192, 0, 2, 1),
            capabilities,
        })
    }

    #[test]
    fn hold_time_is_the_smaller_and_families_the_common_ones() {
        let mut fsm = Fsm::open_sent(local());
        let step = fsm.on_message(open(
            65000,
            30,
            vec![
                Capability::MultiProtocol {
                    afi: Afi::Ipv6,
                    safi: Safi::FlowSpec,
                },
                Capability::MultiProtocol {
                    afi: Afi::Ipv6,
                    safi: Safi::Unicast,
                },
                Capability::FourOctetAs { asn: 65000 },
            ],
        ));
        assert!(matches!(step, Step::Confirm));
        let n = fsm.negotiated.clone().unwrap();
        assert_eq!(n.hold_time, Duration::from_secs(30));
        assert_eq!(n.keepalive_interval(), Some(Duration::from_secs(10)));
        assert_eq!(n.families, [Family::Ipv6FlowSpec]);
        assert!(n.four_octet_as && !n.ibgp);
        assert!(matches!(
            fsm.on_message(Message::Keepalive),
            Step::Established
        ));
        assert_eq!(fsm.state, SessionState::Established);
    }

    #[test]
    fn a_wrong_as_or_hold_time_is_refused_with_an_open_error() {
        for (asn, hold, subcode) in [(65002, 90, 2), (65000, 2, 6)] {
            let mut fsm = Fsm::open_sent(local());
            match fsm.on_message(open(asn, hold, vec![])) {
                Step::Close {
                    notification: Some(n),
                    malformed: true,
                    ..
                } => {
                    assert_eq!(n.code, NotificationCode::OpenMessage);
                    assert_eq!(n.subcode, subcode);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_update_before_established_is_an_fsm_error() {
        let mut fsm = Fsm::open_sent(local());
        let update = Message::Update(rustbgpd_wire::UpdateMessage {
            withdrawn_routes: Bytes::new(),
            path_attributes: Bytes::new(),
            nlri: Bytes::new(),
        });
        assert!(matches!(
            fsm.on_message(update),
            Step::Close { notification: Some(n), .. } if n.code == NotificationCode::FsmError
        ));
    }

    #[test]
    fn the_reader_frames_split_and_joined_messages_and_rejects_a_bad_marker() {
        let keepalive = encode_message(&Message::Keepalive).unwrap();
        let open = encode_message(&open(65000, 90, vec![])).unwrap();
        let stream = [keepalive.as_ref(), open.as_ref(), keepalive.as_ref()].concat();
        let mut reader = MessageReader::default();
        let mut messages = Vec::new();
        for byte in &stream {
            reader.push(std::slice::from_ref(byte));
            while let Some(m) = reader.next_message().unwrap() {
                messages.push(m);
            }
        }
        assert_eq!(messages.len(), 3);
        assert!(matches!(messages[1], Message::Open(_)));

        let mut bad = keepalive.to_vec();
        bad[3] = 0;
        let mut reader = MessageReader::default();
        reader.push(&bad);
        let error = reader.next_message().unwrap_err();
        let mut fsm = Fsm::open_sent(local());
        assert!(matches!(
            fsm.on_decode_error(&error),
            Step::Close { notification: Some(n), malformed: true, .. }
                if n.code == NotificationCode::MessageHeader && n.subcode == 1
        ));
    }
}
