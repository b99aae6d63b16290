//! The UDP collector hands a trickle of telemetry over within milliseconds. A lab test: the
//! telemetry comes from the lab's synthetic workload, which the daemon library does not link.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use floodwall_daemon::clock::unix_ms;
use floodwall_daemon::sources::udp::{UdpSource, UdpSourceConfig};
use floodwall_lab::bench::synthetic::Workload;
use floodwall_wire::Protocol;

/// Telemetry trickling in (one sFlow datagram every 2 ms, never idle long enough for the
/// receive timeout) reaches the consumer within milliseconds, not when 1024 records have
/// gathered (~200 ms here) or the stats interval (250 ms) comes round.
#[test]
fn a_trickle_is_handed_over_within_milliseconds() {
    let (output, batches) = crossbeam_channel::bounded(64);
    let (_recycle, recycled) = crossbeam_channel::bounded(64);
    let source = UdpSource::start(
        &UdpSourceConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            ..Default::default()
        },
        output,
        recycled,
    )
    .unwrap();
    let target = source.local_addrs()[0];
    let workload = Workload::generate(Protocol::SflowV5, 4, unix_ms());
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let started = Instant::now();
    let mut first_batch = None;
    for i in 0..100 {
        sender
            .send_to(&workload.datagrams[i % 4].bytes, target)
            .unwrap();
        if first_batch.is_none() && batches.try_recv().is_ok() {
            first_batch = Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let first_batch = first_batch.or_else(|| {
        batches
            .recv_timeout(Duration::from_secs(1))
            .ok()
            .map(|_| started.elapsed())
    });
    source.stop();
    let first_batch = first_batch.expect("a batch arrived");
    assert!(
        first_batch < Duration::from_millis(100),
        "first batch after {first_batch:?}"
    );
}
