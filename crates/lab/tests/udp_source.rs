//! The UDP collector hands a trickle of telemetry over within milliseconds. A lab test: the
//! telemetry comes from the lab's synthetic workload, which the daemon library does not link.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use floodwall_daemon::clock::unix_ms;
use floodwall_daemon::sources::udp::{UdpSource, UdpSourceConfig};
use floodwall_daemon::sources::RecordBatch;
use floodwall_lab::bench::synthetic::Workload;
use floodwall_wire::Protocol;

/// Telemetry trickling in (one sFlow datagram every 2 ms, never idle long enough for the
/// receive timeout) reaches the consumer within milliseconds, not when 1024 records have
/// gathered (~200 ms here) or the stats interval (250 ms) comes round.
#[test]
fn a_trickle_is_handed_over_within_milliseconds() {
    let (output, batches) = crossbeam_channel::bounded::<RecordBatch>(64);
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

fn collector(
    recv_buffer_bytes: usize,
) -> (
    UdpSource,
    crossbeam_channel::Receiver<RecordBatch>,
    crossbeam_channel::Sender<RecordBatch>,
) {
    let (output, batches) = crossbeam_channel::bounded(4096);
    let (recycle, recycled) = crossbeam_channel::bounded(64);
    let source = UdpSource::start(
        &UdpSourceConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            recv_buffer_bytes,
            ..Default::default()
        },
        output,
        recycled,
    )
    .unwrap();
    (source, batches, recycle)
}

/// A burst from two exporters arrives whole: every record, each exporter's in the order its
/// datagrams were sent, in batches that never outgrow the buffers they are recycled in.
#[test]
fn batches_keep_every_record_in_order_per_exporter() {
    // 32 MiB asked for (as root the kernel grants it): the burst fits even if the collector
    // thread does not run while it is sent.
    let (source, batches, recycle) = collector(32 << 20);
    let target = source.local_addrs()[0];
    let workload = Workload::generate(Protocol::SflowV5, 64, unix_ms());
    let exporters = [
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        UdpSocket::bind("127.0.0.2:0").unwrap(),
    ];
    // sFlow records name the agent, not the UDP source: the second exporter's datagrams say
    // agent 192.0.2.2 (the IPv4 agent address is bytes 8..12 of the header).
    let agents = [[192, 0, 2, 1], [192, 0, 2, 2]];
    let datagram = |agent: usize, i: usize| {
        let mut bytes = workload.datagrams[i % 64].bytes.clone();
        bytes[8..12].copy_from_slice(&agents[agent]);
        bytes
    };
    let per_exporter = 400;
    for i in 0..per_exporter {
        for (agent, exporter) in exporters.iter().enumerate() {
            exporter.send_to(&datagram(agent, i), target).unwrap();
        }
    }
    let expected = 2 * per_exporter as u64 * workload.datagrams[0].records as u64;
    let mut records = Vec::new();
    let mut largest = 0;
    // Bounded in count and time: the collector hands over within MAX_HOLD once it drains.
    for _ in 0..10_000 {
        let Ok(batch) = batches.recv_timeout(Duration::from_secs(5)) else {
            break;
        };
        largest = largest.max(batch.records.len());
        records.extend(
            batch
                .records
                .iter()
                .map(|r| (r.exporter, r.datagram, r.dst)),
        );
        let _ = recycle.try_send(batch);
        if records.len() as u64 >= expected {
            break;
        }
    }
    let stats = source.stop();
    assert_eq!(stats.kernel_drops(), 0);
    assert_eq!(stats.listeners[0].datagrams, 2 * per_exporter as u64);
    assert_eq!(records.len() as u64, expected);
    assert!(
        largest < floodwall_daemon::sources::udp::RECORDS_PER_BATCH + 64,
        "a batch of {largest} records"
    );
    for (agent, exporter) in exporters.iter().enumerate() {
        let ip = std::net::IpAddr::from(agents[agent]);
        let theirs: Vec<_> = records.iter().filter(|r| r.0 == ip).collect();
        assert_eq!(theirs.len() as u64, expected / 2);
        // The decoder numbers datagrams as they come: an exporter's records never go back.
        assert!(theirs.windows(2).all(|w| w[0].1 <= w[1].1));
        // And each datagram's samples are those it carried, in the order it carried them.
        let mut decoder = floodwall_wire::Decoder::default();
        let mut sent = Vec::new();
        let source = exporter.local_addr().unwrap().ip();
        for i in 0..per_exporter {
            let _ = decoder.decode(source, 0, &datagram(agent, i), &mut sent);
        }
        let sent: Vec<_> = sent.iter().map(|r| r.dst).collect();
        assert_eq!(theirs.iter().map(|r| r.2).collect::<Vec<_>>(), sent);
    }
}

/// A datagram longer than a receive slot is cut, counted as truncated and as a decode error
/// of its exporter; the collector goes on with the next one.
#[test]
fn an_oversized_datagram_is_counted_and_the_next_one_decoded() {
    let (source, batches, _recycle) = collector(4 << 20);
    let target = source.local_addrs()[0];
    let workload = Workload::generate(Protocol::SflowV5, 1, unix_ms());
    let good = &workload.datagrams[0];
    let exporter = UdpSocket::bind("127.0.0.1:0").unwrap();
    let oversized = vec![0xff; floodwall_daemon::sources::recvmmsg::SLOT + 1000];
    // A good datagram first: a source is admitted to the exporter table by one.
    for datagram in [&good.bytes, &oversized, &good.bytes] {
        exporter.send_to(datagram, target).unwrap();
    }
    let mut records = 0;
    for _ in 0..100 {
        let Ok(batch) = batches.recv_timeout(Duration::from_secs(5)) else {
            break;
        };
        records += batch.records.len() as u32;
        if records >= 2 * good.records {
            break;
        }
    }
    let stats = source.stop();
    assert_eq!(records, 2 * good.records);
    assert_eq!(stats.listeners[0].datagrams, 3);
    assert_eq!(stats.listeners[0].truncated, 1);
    let ip = exporter.local_addr().unwrap().ip();
    assert_eq!(stats.exporters[&ip].datagrams, 3);
    assert_eq!(stats.exporters[&ip].total_errors(), 1);
}
