//! Shared pieces of the integration tests: crafted captures, a collector running in-process, and
//! real exporter processes started from Debian's packages (installed by `scripts/test`).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;

pub mod mitigation;
pub mod scenario;
pub mod telemetry;
use floodwall_daemon::sources::pcap::PcapWriter;
use floodwall_daemon::sources::udp::{CollectorStats, UdpSource, UdpSourceConfig};
use floodwall_daemon::sources::RecordBatch;
use floodwall_wire::FlowRecord;

/// A fresh directory for one test's files, removed when the test passes and kept (with the
/// exporters' logs) when it fails.
pub struct TestDir(PathBuf);

impl std::ops::Deref for TestDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

pub fn test_dir(name: &str) -> TestDir {
    let dir = std::env::temp_dir().join(format!("floodwall-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the test directory");
    TestDir(dir)
}

/// Panics with an install hint when an external tool is missing: a missing exporter is a broken
/// test environment, never a reason to pass.
pub fn require_tool(tool: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/bin"] {
        let path = Path::new(dir).join(tool);
        if path.exists() {
            return path;
        }
    }
    panic!("{tool} is not installed: run scripts/test, which installs the Debian packages the tests need");
}

/// One crafted packet: when it was seen and its Ethernet frame.
pub struct Frame {
    pub ts_us: u64,
    pub bytes: Vec<u8>,
}

/// Writes a classic pcap of `frames`.
pub fn write_pcap(path: &Path, frames: &[Frame]) {
    let file = std::fs::File::create(path).expect("creating the pcap");
    let mut writer = PcapWriter::new(std::io::BufWriter::new(file)).expect("writing the pcap");
    for frame in frames {
        writer
            .frame(frame.ts_us, &frame.bytes)
            .expect("writing the pcap");
    }
    writer.finish().expect("writing the pcap");
}

const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// A flow of the crafted capture: its key and how many packets of which IP length it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub protocol: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

pub struct CraftedFlow {
    pub key: FlowKey,
    pub packets: u64,
    /// Length of each IP packet (header included).
    pub ip_len: u64,
    /// Length of each Ethernet frame as captured (no FCS).
    pub frame_len: u64,
    pub tcp_flags: u8,
}

/// The traffic every exporter test feeds: a UDP flow to a DNS port, a SYN flood, ICMP echo and an
/// IPv6 UDP flow. Packet counts are even so 1-in-2 periodic sampling scales back exactly.
/// Serialises an etherparse packet builder with its payload.
macro_rules! build {
    ($builder:expr, $payload:expr) => {{
        let builder = $builder;
        let payload: &[u8] = $payload;
        let mut bytes = Vec::with_capacity(builder.size(payload.len()));
        builder
            .write(&mut bytes, payload)
            .expect("building a packet");
        bytes
    }};
}

pub fn crafted_traffic(start_s: u64) -> (Vec<Frame>, Vec<CraftedFlow>) {
    let mut frames = Vec::new();
    let mut flows = Vec::new();
    let mut ts_us = start_s * 1_000_000;
    let mut push = |frames: &mut Vec<Frame>, bytes: Vec<u8>| {
        ts_us += 10_000;
        frames.push(Frame { ts_us, bytes });
    };
    let v4 = |a: [u8; 4]| IpAddr::from(a);

    // UDP 198.51.100.1:40000 -> 203.0.113.10:53, 10 x 100-byte payload.
    for _ in 0..10 {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([198, 51, 100, 1], [203, 0, 113, 10], 61)
            .udp(40000, 53);
        push(&mut frames, build!(builder, &[0x55; 100]));
    }
    flows.push(CraftedFlow {
        key: FlowKey {
            src: v4([198, 51, 100, 1]),
            dst: v4([203, 0, 113, 10]),
            protocol: 17,
            src_port: 40000,
            dst_port: 53,
        },
        packets: 10,
        ip_len: 128,
        frame_len: 142,
        tcp_flags: 0,
    });
    // TCP SYN 198.51.100.2:12345 -> 203.0.113.20:80, 4 packets.
    for seq in 0..4 {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([198, 51, 100, 2], [203, 0, 113, 20], 50)
            .tcp(12345, 80, 1000 + seq, 64240)
            .syn();
        push(&mut frames, build!(builder, &[]));
    }
    flows.push(CraftedFlow {
        key: FlowKey {
            src: v4([198, 51, 100, 2]),
            dst: v4([203, 0, 113, 20]),
            protocol: 6,
            src_port: 12345,
            dst_port: 80,
        },
        packets: 4,
        ip_len: 40,
        frame_len: 54,
        tcp_flags: 0x02,
    });
    // ICMP echo request 198.51.100.3 -> 203.0.113.30, 2 x 56-byte payload.
    for seq in 0..2 {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv4([198, 51, 100, 3], [203, 0, 113, 30], 64)
            .icmpv4_echo_request(7, seq);
        push(&mut frames, build!(builder, &[0x11; 56]));
    }
    flows.push(CraftedFlow {
        key: FlowKey {
            src: v4([198, 51, 100, 3]),
            dst: v4([203, 0, 113, 30]),
            protocol: 1,
            src_port: 0,
            dst_port: 8 << 8,
        },
        packets: 2,
        ip_len: 84,
        frame_len: 98,
        tcp_flags: 0,
    });
    // IPv6 UDP 2001:db8::1:5000 -> 2001:db8::2:6000, 6 x 50-byte payload.
    let (s6, d6): (std::net::Ipv6Addr, std::net::Ipv6Addr) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    for _ in 0..6 {
        let builder = PacketBuilder::ethernet2(MAC_A, MAC_B)
            .ipv6(s6.octets(), d6.octets(), 47)
            .udp(5000, 6000);
        push(&mut frames, build!(builder, &[0x66; 50]));
    }
    flows.push(CraftedFlow {
        key: FlowKey {
            src: IpAddr::V6(s6),
            dst: IpAddr::V6(d6),
            protocol: 17,
            src_port: 5000,
            dst_port: 6000,
        },
        packets: 6,
        ip_len: 98,
        frame_len: 112,
        tcp_flags: 0,
    });
    (frames, flows)
}

/// A collector on an ephemeral loopback port, gathering every record it decodes.
pub struct TestCollector {
    pub addr: SocketAddr,
    source: Option<UdpSource>,
    records: Arc<Mutex<Vec<FlowRecord>>>,
    stop: Arc<AtomicBool>,
    drain: Option<JoinHandle<()>>,
}

impl TestCollector {
    pub fn start() -> Self {
        Self::start_with(UdpSourceConfig {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            recv_buffer_bytes: 4 << 20,
            ..Default::default()
        })
    }

    pub fn start_with(config: UdpSourceConfig) -> Self {
        let (tx, rx) = crossbeam_channel::bounded::<RecordBatch>(64);
        let (_recycle_tx, recycle_rx) = crossbeam_channel::bounded(1);
        let source = UdpSource::start(&config, tx, recycle_rx).expect("starting the collector");
        let addr = source.local_addrs()[0];
        let records = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let drain = {
            let (records, stop) = (records.clone(), stop.clone());
            std::thread::spawn(move || loop {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(batch) => records.lock().unwrap().extend(batch.records),
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                    Err(_) if stop.load(Ordering::SeqCst) => break,
                    Err(_) => {}
                }
            })
        };
        TestCollector {
            addr,
            source: Some(source),
            records,
            stop,
            drain: Some(drain),
        }
    }

    /// Waits until the records gathered so far satisfy `done`, at most `timeout`.
    pub fn wait_until(&self, timeout: Duration, done: impl Fn(&[FlowRecord]) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if done(&self.records.lock().unwrap()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        done(&self.records.lock().unwrap())
    }

    /// Lets in-flight datagrams arrive, stops, and returns every record and the counters.
    pub fn finish(mut self, settle: Duration) -> (Vec<FlowRecord>, CollectorStats) {
        std::thread::sleep(settle);
        let stats = self.source.take().expect("running").stop();
        self.stop.store(true, Ordering::SeqCst);
        if let Some(drain) = self.drain.take() {
            drain.join().unwrap();
        }
        let records = std::mem::take(&mut *self.records.lock().unwrap());
        (records, stats)
    }
}

/// Per-flow totals of decoded records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub records: u64,
    pub packets: u64,
    pub bytes: u64,
    pub tcp_flags: u8,
    pub sampling_rates: Vec<u32>,
}

pub fn aggregate(records: &[FlowRecord]) -> BTreeMap<FlowKey, Totals> {
    let mut totals: BTreeMap<FlowKey, Totals> = BTreeMap::new();
    for r in records {
        let key = FlowKey {
            src: r.src,
            dst: r.dst,
            protocol: r.protocol,
            src_port: r.src_port,
            dst_port: r.dst_port,
        };
        let t = totals.entry(key).or_default();
        t.records += 1;
        t.packets += r.packets;
        t.bytes += r.bytes;
        t.tcp_flags |= r.tcp_flags;
        if !t.sampling_rates.contains(&r.sampling_rate) {
            t.sampling_rates.push(r.sampling_rate);
        }
    }
    totals
}

/// Waits for a child process at most `timeout`; kills it (by its PID, which we started) if it
/// overstays, and fails the test.
pub fn wait_or_kill(child: &mut Child, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("polling a child") {
            Some(_) => return,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {timeout:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Sends SIGINT to a child we started in its own process group (and so to the helper processes
/// it forked), then waits for it.
pub fn interrupt_group(child: &mut Child, timeout: Duration, what: &str) {
    // `spawn_pmacctd` made the child the leader of its own group.
    let _ = rustix::process::kill_process_group(
        rustix::process::Pid::from_child(child),
        rustix::process::Signal::INT,
    );
    wait_or_kill(child, timeout, what);
}

pub fn spawn_logged(program: &Path, args: &[&str], log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("creating a log file");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()))
}

/// Runs softflowd over a capture, exporting to `collector`, until it has read the whole file
/// and exported every flow.
///
/// softflowd 1.1.0 reading a file blocks in accept() on its control socket between read
/// batches, so the control socket is poked with `softflowctl statistics` until it exits
/// (it expires and exports all flows at end of file).
pub fn run_softflowd(
    dir: &Path,
    pcap: &Path,
    collector: SocketAddr,
    version: &str,
    extra: &[&str],
) {
    let softflowd = require_tool("softflowd");
    let softflowctl = require_tool("softflowctl");
    let ctl = dir.join(format!("softflowd-{version}.ctl"));
    let pid = dir.join(format!("softflowd-{version}.pid"));
    let target = collector.to_string();
    let mut args = vec![
        "-d",
        "-r",
        pcap.to_str().unwrap(),
        "-n",
        &target,
        "-v",
        version,
        "-p",
        pid.to_str().unwrap(),
        "-c",
        ctl.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let mut child = spawn_logged(
        &softflowd,
        &args,
        &dir.join(format!("softflowd-{version}.log")),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("polling softflowd").is_none() && Instant::now() < deadline {
        if ctl.exists() {
            let _ = Command::new(&softflowctl)
                .args(["-c", ctl.to_str().unwrap(), "statistics"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    wait_or_kill(&mut child, Duration::from_secs(1), "softflowd");
}

/// Writes a pmacctd configuration reading `pcap` with one plugin, and runs it.
pub fn spawn_pmacctd(
    dir: &Path,
    name: &str,
    pcap: &Path,
    plugin_lines: &str,
    wait_at_eof: bool,
) -> Child {
    let pmacctd = require_tool("pmacctd");
    let config = dir.join(format!("{name}.conf"));
    let text = format!(
        "daemonize: false\npcap_savefile: {}\npcap_savefile_wait: {}\n{}\n",
        pcap.display(),
        wait_at_eof,
        plugin_lines
    );
    std::fs::write(&config, text).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(pmacctd)
        .args(["-f", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        // Its own process group, so a stop reaches the plugin processes too: pmacctd 1.7.7 whose
        // core alone is interrupted replays the capture to its sfprobe plugin.
        .process_group(0)
        .spawn()
        .expect("starting pmacctd")
}

/// One Ethernet/IPv4/UDP frame carrying a telemetry datagram from `exporter`.
pub fn udp_frame(exporter: [u8; 4], port: u16, datagram: &[u8], ts_us: u64) -> Frame {
    let builder = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 10])
        .ipv4(exporter, [192, 0, 2, 200], 64)
        .udp(50000, port);
    let mut bytes = Vec::new();
    builder.write(&mut bytes, datagram).unwrap();
    Frame { ts_us, bytes }
}
