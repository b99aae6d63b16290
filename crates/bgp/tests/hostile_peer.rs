//! What no real daemon will send on request: garbage, wrong OPENs and silence. The "peer" is a
//! TCP listener in the test that speaks raw BGP bytes.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use floodwall_bgp::{SessionState, Speaker};
use rustbgpd_wire::{
    decode_message, encode_message, Afi, Capability, Message, NotificationCode, OpenMessage, Safi,
};
use support::*;

fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn accept(listener: &TcpListener, within: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + within;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the speaker did not connect");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn read_message(stream: &mut TcpStream) -> Message {
    let mut header = [0u8; 19];
    stream.read_exact(&mut header).expect("reading a header");
    let len = usize::from(u16::from_be_bytes([header[16], header[17]]));
    let mut bytes = header.to_vec();
    bytes.resize(len, 0);
    stream.read_exact(&mut bytes[19..]).expect("reading a body");
    decode_message(&mut Bytes::from(bytes), 4096).expect("the speaker sent valid BGP")
}

fn send(stream: &mut TcpStream, message: &Message) {
    stream.write_all(&encode_message(message).unwrap()).unwrap();
}

fn open(asn: u32, hold_time: u16) -> Message {
    Message::Open(OpenMessage {
        version: 4,
        my_as: asn as u16,
        hold_time,
        bgp_identifier: "192.0.2.77".parse().unwrap(),
        capabilities: vec![
            Capability::MultiProtocol {
                afi: Afi::Ipv4,
                safi: Safi::Unicast,
            },
            Capability::FourOctetAs { asn },
        ],
    })
}

/// Reads until a NOTIFICATION; returns (code, subcode).
fn notification(stream: &mut TcpStream) -> (u8, u8) {
    loop {
        if let Message::Notification(n) = read_message(stream) {
            return (n.code.as_u8(), n.subcode);
        }
    }
}

#[test]
fn malformed_input_gets_a_notification_is_counted_and_the_speaker_reconnects() {
    let listener = listen();
    let speaker = Speaker::start(
        speaker_config(),
        vec![peer("hostile", listener.local_addr().unwrap())],
    );

    // 1. A garbage marker after a good OPEN: Message Header Error / Connection Not Synchronized.
    let mut stream = accept(&listener, Duration::from_secs(5));
    let Message::Open(ours) = read_message(&mut stream) else {
        panic!("the speaker must open with OPEN")
    };
    assert_eq!(ours.four_byte_as(), SPEAKER_AS);
    send(&mut stream, &open(DAEMON_AS, 90));
    assert!(matches!(read_message(&mut stream), Message::Keepalive));
    let mut garbage = encode_message(&Message::Keepalive).unwrap().to_vec();
    garbage[0] = 0;
    stream.write_all(&garbage).unwrap();
    assert_eq!(notification(&mut stream), (1, 1));
    drop(stream);
    assert!(speaker.wait_for(Duration::from_secs(5), |s| s[0].malformed_messages == 1));

    // 2. The speaker comes back (backoff) and refuses an OPEN from the wrong AS.
    let mut stream = accept(&listener, Duration::from_secs(5));
    assert!(matches!(read_message(&mut stream), Message::Open(_)));
    send(&mut stream, &open(64999, 90));
    assert_eq!(
        notification(&mut stream),
        (NotificationCode::OpenMessage.as_u8(), 2)
    );
    drop(stream);

    // 3. A length field beyond the message limit.
    let mut stream = accept(&listener, Duration::from_secs(5));
    assert!(matches!(read_message(&mut stream), Message::Open(_)));
    let mut too_long = [0xffu8; 19].to_vec();
    too_long[16..18].copy_from_slice(&5000u16.to_be_bytes());
    too_long[18] = 2;
    stream.write_all(&too_long).unwrap();
    assert_eq!(notification(&mut stream), (1, 2));
    drop(stream);

    // 4. An UPDATE before the session is up: FSM error.
    let mut stream = accept(&listener, Duration::from_secs(5));
    assert!(matches!(read_message(&mut stream), Message::Open(_)));
    send(
        &mut stream,
        &Message::Update(rustbgpd_wire::UpdateMessage {
            withdrawn_routes: Bytes::new(),
            path_attributes: Bytes::new(),
            nlri: Bytes::new(),
        }),
    );
    assert_eq!(
        notification(&mut stream),
        (NotificationCode::FsmError.as_u8(), 1)
    );

    assert!(speaker.wait_for(Duration::from_secs(5), |s| s[0].malformed_messages == 4));
    let status = &speaker.status()[0];
    assert_eq!(status.sessions_established, 0);
    assert!(status.last_error.is_some());
    speaker.shutdown(false);
}

#[test]
fn a_silent_peer_is_dropped_when_the_hold_timer_expires() {
    let listener = listen();
    let mut config = speaker_config();
    config.hold_time = Duration::from_secs(3);
    let speaker = Speaker::start(config, vec![peer("silent", listener.local_addr().unwrap())]);
    let mut stream = accept(&listener, Duration::from_secs(5));
    assert!(matches!(read_message(&mut stream), Message::Open(_)));
    // The peer proposes 30 s; 3 s (ours) must win.
    send(&mut stream, &open(DAEMON_AS, 30));
    send(&mut stream, &Message::Keepalive);
    assert!(speaker.wait_established(Duration::from_secs(5)));
    let established = Instant::now();
    // From now on the peer says nothing. Our keepalives (every second) keep coming until the
    // hold timer fires.
    let mut keepalives = 0;
    let code = loop {
        match read_message(&mut stream) {
            Message::Keepalive => keepalives += 1,
            // End-of-RIB.
            Message::Update(_) => {}
            Message::Notification(n) => break (n.code.as_u8(), n.subcode),
            other => panic!("unexpected {other}"),
        }
    };
    let after = established.elapsed();
    assert_eq!(code, (NotificationCode::HoldTimerExpired.as_u8(), 0));
    assert!(
        after >= Duration::from_millis(2500) && after < Duration::from_secs(5),
        "{after:?}"
    );
    assert!(keepalives >= 2, "{keepalives} keepalives");
    assert!(speaker.wait_for(Duration::from_secs(5), |s| s[0].state
        != SessionState::Established));
    assert_eq!(
        speaker.status()[0].last_error.as_deref(),
        Some("hold timer expired")
    );
    speaker.shutdown(false);
}

/// The IPv4 unicast prefixes an UPDATE announces and withdraws.
fn unicast(message: Message) -> (Vec<String>, Vec<String>) {
    let Message::Update(update) = message else {
        panic!("expected an UPDATE, got {message}")
    };
    let parsed = update.parse(true, false, &[]).unwrap();
    let show = |entries: &[rustbgpd_wire::Ipv4NlriEntry]| {
        entries
            .iter()
            .map(|e| format!("{}/{}", e.prefix.addr, e.prefix.len))
            .collect()
    };
    (show(&parsed.announced), show(&parsed.withdrawn))
}

#[test]
fn hold_time_zero_means_no_keepalives_and_route_refresh_resends_the_table() {
    let listener = listen();
    let speaker = Speaker::start(
        speaker_config(),
        vec![peer("quiet", listener.local_addr().unwrap())],
    );
    speaker.announce(&blackhole("198.51.100.70/32")).unwrap();
    let mut stream = accept(&listener, Duration::from_secs(5));
    assert!(matches!(read_message(&mut stream), Message::Open(_)));
    send(&mut stream, &open(DAEMON_AS, 0));
    assert!(matches!(read_message(&mut stream), Message::Keepalive));
    send(&mut stream, &Message::Keepalive);
    let route = vec!["198.51.100.70/32".to_string()];
    assert_eq!(unicast(read_message(&mut stream)), (route.clone(), vec![]));
    // End-of-RIB for the only family negotiated: an empty UPDATE.
    assert_eq!(unicast(read_message(&mut stream)), (vec![], vec![]));

    // Hold time 0: nothing more arrives, and the session stays up.
    stream
        .set_read_timeout(Some(Duration::from_millis(2500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let quiet = stream.read(&mut byte);
    assert!(
        quiet.as_ref().is_err_and(|e| matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        )),
        "{quiet:?}"
    );
    assert_eq!(speaker.status()[0].state, SessionState::Established);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

    send(
        &mut stream,
        &Message::RouteRefresh(rustbgpd_wire::RouteRefreshMessage {
            afi_raw: 1,
            subtype_raw: 0,
            safi_raw: 1,
            orf: None,
        }),
    );
    assert_eq!(unicast(read_message(&mut stream)), (route.clone(), vec![]));

    speaker.shutdown(false);
    assert_eq!(unicast(read_message(&mut stream)), (vec![], route));
    assert_eq!(
        notification(&mut stream),
        (NotificationCode::Cease.as_u8(), 2)
    );
}
