//! Writes seed inputs for the `bgp_messages` fuzz target: sessions as a peer would open them
//! (OPEN, KEEPALIVE, UPDATEs, ROUTE-REFRESH, NOTIFICATION), framed by `read_peer_input`'s
//! first byte (piece size - 1).
//!
//!     cargo run -p floodwall-bgp --example fuzz_seeds -- fuzz/seeds/bgp_messages

use bytes::Bytes;
use rustbgpd_wire::{
    encode_message, Afi, Capability, GracefulRestartFamily, Message, NotificationCode,
    NotificationMessage, OpenMessage, RouteRefreshMessage, Safi, UpdateMessage,
};

fn main() {
    let dir = std::env::args().nth(1).expect("usage: fuzz_seeds DIR");
    std::fs::create_dir_all(&dir).expect("creating the seed directory");
    let families = [
        (Afi::Ipv4, Safi::Unicast),
        (Afi::Ipv6, Safi::Unicast),
        (Afi::Ipv4, Safi::FlowSpec),
        (Afi::Ipv6, Safi::FlowSpec),
    ];
    let mut capabilities: Vec<Capability> = families
        .iter()
        .map(|&(afi, safi)| Capability::MultiProtocol { afi, safi })
        .collect();
    capabilities.push(Capability::FourOctetAs { asn: 65000 });
    capabilities.push(Capability::RouteRefresh);
    capabilities.push(Capability::GracefulRestart {
        restart_state: true,
        notification: true,
        restart_time: 120,
        families: families
            .iter()
            .map(|&(afi, safi)| GracefulRestartFamily {
                afi,
                safi,
                forwarding_preserved: false,
            })
            .collect(),
    });
    let open = Message::Open(OpenMessage {
        version: 4,
        my_as: 65000,
        hold_time: 90,
        bgp_identifier: "192.0.2.254".parse().unwrap(),
        capabilities,
    });
    // A route as gobgpd would reflect one: ORIGIN, AS_PATH [65000], NEXT_HOP, 198.51.100.0/24.
    let update = Message::Update(UpdateMessage {
        withdrawn_routes: Bytes::from_static(&[24, 203, 0, 113]),
        path_attributes: Bytes::from_static(&[
            0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe8, 0x40, 3, 4, 192, 0, 2, 1,
        ]),
        nlri: Bytes::from_static(&[24, 198, 51, 100]),
    });
    let refresh = Message::RouteRefresh(RouteRefreshMessage {
        afi_raw: 1,
        subtype_raw: 0,
        safi_raw: 133,
        orf: None,
    });
    let cease = Message::Notification(NotificationMessage::new(
        NotificationCode::Cease,
        2,
        Bytes::new(),
    ));
    let sessions: [(&str, u8, Vec<&Message>); 4] = [
        ("open-only", 255, vec![&open]),
        (
            "established",
            255,
            vec![
                &open,
                &Message::Keepalive,
                &update,
                &refresh,
                &Message::Keepalive,
            ],
        ),
        (
            "split",
            6,
            vec![&open, &Message::Keepalive, &update, &cease],
        ),
        (
            "byte-by-byte",
            0,
            vec![&open, &Message::Keepalive, &refresh],
        ),
    ];
    for (name, piece, messages) in sessions {
        let mut bytes = vec![piece];
        for message in messages {
            bytes.extend_from_slice(&encode_message(message).expect("encoding a seed"));
        }
        let accepted = floodwall_bgp::read_peer_input(&bytes);
        assert!(accepted > 0, "seed {name} is refused at once");
        println!("{name}: {accepted} messages accepted");
        std::fs::write(format!("{dir}/{name}"), bytes).expect("writing a seed");
    }
}
