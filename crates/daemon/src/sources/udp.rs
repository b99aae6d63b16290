//! UDP collectors: one thread per listening socket receives datagrams in batches, decodes them
//! with its own [`Decoder`] and hands record batches to the pipeline over a bounded channel.
//!
//! A full channel blocks the receiver, so overload shows up as kernel drops (counted from
//! `SO_MEMINFO`), never as unbounded queues in Floodwall.
//!
//! What a datagram costs is mostly the kernel's: a system call and a wake-up per `recvmmsg`,
//! a copy per datagram. So each call should take a batch: after a partial one the receiver
//! lets the next gather for a moment (`Gather`), and nothing else is done per datagram but
//! decoding into the batch being filled (no clock read, socket option or allocation).

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::clock::unix_ms;

use anyhow::{Context as _, Result};
use crossbeam_channel::Receiver;
use floodwall_wire::{Decoder, ExporterCounters, FlowRecord, Limits};
use ipnet::IpNet;
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};

use super::recvmmsg::{kernel_drops, RecvBatch, BATCH};
use super::{BatchOutput, RecordBatch};

/// Default ports; the protocol is told from each datagram, so any port takes any protocol.
pub const DEFAULT_SFLOW_PORT: u16 = 6343;
pub const DEFAULT_NETFLOW_PORT: u16 = 2055;
pub const DEFAULT_IPFIX_PORT: u16 = 4739;

/// How the collectors listen.
#[derive(Debug, Clone)]
pub struct UdpSourceConfig {
    pub listen: Vec<SocketAddr>,
    /// SO_RCVBUF asked of the kernel (it may cap it at net.core.rmem_max; SO_RCVBUFFORCE is
    /// tried first when running with CAP_NET_ADMIN).
    pub recv_buffer_bytes: usize,
    /// Exporters allowed to send; empty allows every address.
    pub allowed_exporters: Vec<IpNet>,
    pub limits: Limits,
}

impl Default for UdpSourceConfig {
    fn default() -> Self {
        UdpSourceConfig {
            listen: default_listen_addrs(),
            recv_buffer_bytes: 32 << 20,
            allowed_exporters: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// sFlow, NetFlow and IPFIX default ports on both IPv4 and IPv6 wildcard addresses.
pub fn default_listen_addrs() -> Vec<SocketAddr> {
    [DEFAULT_SFLOW_PORT, DEFAULT_NETFLOW_PORT, DEFAULT_IPFIX_PORT]
        .into_iter()
        .flat_map(|port| {
            [
                SocketAddr::from(([0, 0, 0, 0], port)),
                SocketAddr::from(([0u16; 8], port)),
            ]
        })
        .collect()
}

/// Counters of one listening socket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerStats {
    pub local: Option<SocketAddr>,
    pub datagrams: u64,
    /// Datagrams from addresses outside the allow-list, dropped before decoding.
    pub not_allowed: u64,
    /// Datagrams longer than a receive slot, cut short (then usually a decode error).
    pub truncated: u64,
    /// Datagrams the kernel dropped because the socket buffer was full.
    pub kernel_drops: u64,
    /// Receive buffer the kernel actually granted.
    pub recv_buffer_bytes: usize,
}

/// Everything the collectors have counted, merged across sockets. Sources outside the
/// decoders' exporter tables (datagrams from new sources that were not well-formed, evicted
/// exporters) are counted under 0.0.0.0.
#[derive(Debug, Clone, Default)]
pub struct CollectorStats {
    pub listeners: Vec<ListenerStats>,
    pub exporters: BTreeMap<IpAddr, ExporterCounters>,
}

impl CollectorStats {
    pub fn totals(&self) -> ExporterCounters {
        let mut total = ExporterCounters::default();
        for counters in self.exporters.values() {
            total.accumulate(counters);
        }
        total
    }

    pub fn kernel_drops(&self) -> u64 {
        self.listeners.iter().map(|l| l.kernel_drops).sum()
    }

    pub fn not_allowed(&self) -> u64 {
        self.listeners.iter().map(|l| l.not_allowed).sum()
    }
}

#[derive(Default)]
struct SharedStats {
    listeners: Vec<ListenerStats>,
    exporters: Vec<BTreeMap<IpAddr, ExporterCounters>>,
}

/// Running collectors. Dropping it (or calling [`UdpSource::stop`]) stops the threads.
pub struct UdpSource {
    local_addrs: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<Mutex<SharedStats>>,
}

/// How often a receiver wakes up with nothing to do, to notice shutdown.
const RECV_TIMEOUT: Duration = Duration::from_millis(100);
/// How often a receiver publishes its counters.
const STATS_INTERVAL: Duration = Duration::from_millis(250);
/// Records per batch handed downstream. A hand-over (a channel send, at most one wake-up of the
/// engine) per 1024 records costs about 2 ns a record, so larger batches would save little and
/// multiply what the pipeline's queue of batches (256 live) can hold.
pub const RECORDS_PER_BATCH: usize = 1024;
/// Longest a partial batch is held once the socket has nothing more queued: low-rate telemetry
/// (a small network, a quiet exporter) reaches the engine within milliseconds instead of when
/// 1024 records have gathered or the stats interval comes round, which delayed detection by up
/// to 250 ms. Under load the socket never drains and batches stay full.
const MAX_HOLD: Duration = Duration::from_millis(5);

impl UdpSource {
    /// Binds every address and starts one receiver thread per socket. Record batches go to
    /// `output`; empty vectors coming back on `recycle` are reused, so steady state allocates nothing.
    pub fn start(
        config: &UdpSourceConfig,
        output: impl Into<BatchOutput>,
        recycle: Receiver<RecordBatch>,
    ) -> Result<UdpSource> {
        let output = output.into();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(SharedStats::default()));
        let mut sockets = Vec::new();
        for addr in &config.listen {
            sockets.push(bind(*addr, config.recv_buffer_bytes)?);
        }
        let mut local_addrs = Vec::new();
        let mut threads = Vec::new();
        for (index, (socket, granted)) in sockets.into_iter().enumerate() {
            let local = socket.local_addr().ok();
            local_addrs.extend(local);
            {
                let mut shared = stats.lock().expect("stats lock");
                shared.listeners.push(ListenerStats {
                    local,
                    recv_buffer_bytes: granted,
                    ..Default::default()
                });
                shared.exporters.push(BTreeMap::new());
            }
            let receiver = Listener {
                index,
                socket,
                granted_buffer: granted,
                decoder: Decoder::new(config.limits),
                allowed: config.allowed_exporters.clone(),
                output: output.clone(),
                recycle: recycle.clone(),
                stop: stop.clone(),
                stats: stats.clone(),
            };
            let name = format!(
                "collector-{}",
                local.map_or(index.to_string(), |a| a.to_string())
            );
            threads.push(
                std::thread::Builder::new()
                    .name(name)
                    .spawn(move || receiver.run())
                    .context("spawning a collector thread")?,
            );
        }
        Ok(UdpSource {
            local_addrs,
            stop,
            threads,
            stats,
        })
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// A snapshot of the counters, at most `STATS_INTERVAL` old.
    pub fn stats(&self) -> CollectorStats {
        let shared = self.stats.lock().expect("stats lock");
        let mut exporters = BTreeMap::<IpAddr, ExporterCounters>::new();
        for map in &shared.exporters {
            for (ip, counters) in map {
                exporters.entry(*ip).or_default().accumulate(counters);
            }
        }
        CollectorStats {
            listeners: shared.listeners.clone(),
            exporters,
        }
    }

    /// Stops the receivers and waits for them; their last counters are published first.
    pub fn stop(mut self) -> CollectorStats {
        self.shutdown();
        self.stats()
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for UdpSource {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn bind(addr: SocketAddr, recv_buffer: usize) -> Result<(UdpSocket, usize)> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(SockProtocol::UDP))
        .with_context(|| format!("creating a UDP socket for {addr}"))?;
    if addr.is_ipv6() {
        // Separate IPv4 and IPv6 sockets may share a port number.
        socket.set_only_v6(true)?;
    }
    if force_recv_buffer(&socket, recv_buffer).is_err() {
        // Without CAP_NET_ADMIN the kernel caps this at net.core.rmem_max.
        let _ = socket.set_recv_buffer_size(recv_buffer);
    }
    socket.set_read_timeout(Some(RECV_TIMEOUT))?;
    socket.bind(&addr.into()).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::AddrInUse {
            " (the port is in use: is another collector, or another Floodwall, running? pick another port: `[collector] listen` in the configuration, or --listen for `floodwall flows`)"
        } else if e.kind() == io::ErrorKind::PermissionDenied {
            " (ports below 1024 need CAP_NET_BIND_SERVICE)"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on UDP {addr}: {e}{hint}")
    })?;
    let granted = socket.recv_buffer_size().unwrap_or(0);
    let socket: UdpSocket = socket.into();
    kernel_drops(&socket).with_context(|| format!("reading the drop counter of {addr}"))?;
    Ok((socket, granted))
}

/// SO_RCVBUFFORCE: a receive buffer above net.core.rmem_max, allowed with CAP_NET_ADMIN.
fn force_recv_buffer(socket: &Socket, bytes: usize) -> io::Result<()> {
    // The kernel doubles the value for its bookkeeping, hence the halving.
    let value = (bytes / 2).min(libc::c_int::MAX as usize);
    Ok(rustix::net::sockopt::set_socket_recv_buffer_size_force(
        socket, value,
    )?)
}

/// Longest the receiver lets datagrams gather in the socket between two `recvmmsg` calls: as
/// long as a partial batch may be held, so telemetry still reaches the engine within
/// milliseconds. Shorter caps cost more wake-ups at low rates (each ~20 µs on this VM).
const MAX_GATHER: Duration = MAX_HOLD;
/// Shorter waits are not worth the sleep's own system call.
const MIN_GATHER: Duration = Duration::from_micros(50);
/// How often the arrival rate is re-estimated.
const RATE_WINDOW: Duration = Duration::from_millis(10);
/// Kernel bytes a queued datagram costs beyond its payload (skb, rounding): a generous guess, so
/// the estimate of what fits in the buffer errs small.
const QUEUE_OVERHEAD: usize = 1024;

/// Interrupt moderation for one socket. Blocking in `recvmmsg` wakes the thread for the first
/// datagram, so a steady stream of datagrams arriving one by one (many exporters, each sending
/// evenly) costs a wake-up and a system call per datagram. Once the arrival rate is known,
/// the receiver instead sleeps after a partial batch until about a batch has gathered (at most
/// [`MAX_GATHER`], and never more than a quarter of the socket buffer), so each call takes a
/// batch. A full batch means more is queued: no wait. When telemetry stops, the rate estimate
/// goes stale for one window at most and the blocking receive takes over again.
struct Gather {
    window_start: Instant,
    window_datagrams: usize,
    window_bytes: usize,
    /// Datagrams per second over the last full window.
    rate: f64,
    /// Payload bytes per datagram over the last full window.
    mean_len: f64,
    /// A quarter of the receive buffer, bytes.
    budget: usize,
}

impl Gather {
    fn new(granted_buffer: usize, now: Instant) -> Gather {
        Gather {
            window_start: now,
            window_datagrams: 0,
            window_bytes: 0,
            rate: 0.0,
            mean_len: 0.0,
            budget: granted_buffer / 4,
        }
    }

    /// After a `recvmmsg` that returned `n` datagrams of `bytes` payload at `now`: how long to
    /// let the next batch gather, if at all.
    fn after_batch(&mut self, n: usize, bytes: usize, now: Instant) -> Option<Duration> {
        self.window_datagrams += n;
        self.window_bytes += bytes;
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            self.rate = self.window_datagrams as f64 / elapsed.as_secs_f64();
            self.mean_len = self.window_bytes as f64 / self.window_datagrams.max(1) as f64;
            self.window_start = now;
            self.window_datagrams = 0;
            self.window_bytes = 0;
        }
        if n >= BATCH || self.rate <= 0.0 {
            return None;
        }
        let fits = self.budget as f64 / (self.mean_len + QUEUE_OVERHEAD as f64);
        let want = (BATCH as f64).min(fits);
        let wait = Duration::try_from_secs_f64(want / self.rate)
            .map_or(MAX_GATHER, |wait| wait.min(MAX_GATHER));
        (wait >= MIN_GATHER).then_some(wait)
    }
}

// One socket's receive loop.
struct Listener {
    index: usize,
    socket: UdpSocket,
    /// Receive buffer the kernel granted, bytes: bounds how much may gather in it.
    granted_buffer: usize,
    decoder: Decoder,
    allowed: Vec<IpNet>,
    output: BatchOutput,
    recycle: Receiver<RecordBatch>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<SharedStats>>,
}

impl Listener {
    fn run(mut self) {
        let mut batch = RecvBatch::new();
        let mut records = Vec::with_capacity(RECORDS_PER_BATCH * 2);
        let mut local = ListenerStats::default();
        let mut gather = Gather::new(self.granted_buffer, Instant::now());
        let mut last_publish = Instant::now();
        // When the oldest record of `records` arrived, and whether the socket's receive timeout
        // is shortened to MAX_HOLD so a held partial batch is handed over in time. The short
        // timeout stays while telemetry flows (switching per batch cost two system calls each)
        // and goes back to RECV_TIMEOUT once the socket has been idle with nothing held.
        let mut held_since: Option<Instant> = None;
        let mut short_timeout = false;
        'receive: while !self.stop.load(Ordering::Relaxed) {
            let now = match batch.recv(&self.socket) {
                Ok(n) => {
                    // One clock read of each kind per system call, none per datagram.
                    let arrived = Instant::now();
                    let now_ms = unix_ms();
                    let mut bytes = 0usize;
                    for i in 0..n {
                        let Some((source, datagram, truncated)) = batch.datagram(i) else {
                            continue;
                        };
                        local.datagrams += 1;
                        local.truncated += u64::from(truncated);
                        bytes += datagram.len();
                        let exporter = source.ip();
                        if !self.allowed.is_empty()
                            && !self.allowed.iter().any(|net| net.contains(&exporter))
                        {
                            local.not_allowed += 1;
                            continue;
                        }
                        // Errors are counted per exporter inside the decoder.
                        let _ = self
                            .decoder
                            .decode(exporter, now_ms, datagram, &mut records);
                        // Handed over as soon as full, so a batch never outgrows its buffer.
                        if records.len() >= RECORDS_PER_BATCH && !self.flush(&mut records) {
                            break 'receive;
                        }
                    }
                    if records.is_empty() {
                        held_since = None;
                    } else {
                        held_since.get_or_insert(arrived);
                    }
                    let drained = n < BATCH;
                    let stale = drained && held_since.is_some_and(|t| arrived - t >= MAX_HOLD);
                    if stale {
                        if !self.flush(&mut records) {
                            break;
                        }
                        held_since = None;
                    }
                    if drained && !records.is_empty() && !short_timeout {
                        let _ = self.socket.set_read_timeout(Some(MAX_HOLD));
                        short_timeout = true;
                    }
                    if let Some(wait) = gather.after_batch(n, bytes, arrived) {
                        std::thread::sleep(wait);
                    }
                    arrived
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    // Idle: hand over what we have so quiet periods are not delayed.
                    if !records.is_empty() {
                        if !self.flush(&mut records) {
                            break;
                        }
                        held_since = None;
                    } else if short_timeout {
                        let _ = self.socket.set_read_timeout(Some(RECV_TIMEOUT));
                        short_timeout = false;
                    }
                    Instant::now()
                }
                Err(_) => {
                    std::thread::sleep(RECV_TIMEOUT);
                    Instant::now()
                }
            };
            if now - last_publish >= STATS_INTERVAL {
                if !records.is_empty() {
                    if !self.flush(&mut records) {
                        break;
                    }
                    held_since = None;
                }
                self.publish(&mut local);
                last_publish = now;
            }
        }
        if !records.is_empty() {
            let _ = self.flush(&mut records);
        }
        self.publish(&mut local);
    }

    /// Sends the batch downstream (routed to the engine's shards, when it has them) and takes
    /// a recycled buffer. False when the pipeline is gone.
    fn flush(&mut self, records: &mut Vec<FlowRecord>) -> bool {
        let mut batch = match self.recycle.try_recv() {
            Ok(batch) => batch,
            Err(_) => RecordBatch::with_capacity(RECORDS_PER_BATCH * 2),
        };
        batch.records.clear();
        std::mem::swap(&mut batch.records, records);
        self.output.send(batch).is_ok()
    }

    fn publish(&self, local: &mut ListenerStats) {
        if let Ok(drops) = kernel_drops(&self.socket) {
            local.kernel_drops = u64::from(drops);
        }
        let mut shared = self.stats.lock().expect("stats lock");
        let listener = &mut shared.listeners[self.index];
        listener.datagrams = local.datagrams;
        listener.not_allowed = local.not_allowed;
        listener.truncated = local.truncated;
        listener.kernel_drops = local.kernel_drops;
        let exporters = &mut shared.exporters[self.index];
        // Rebuilt, not updated: evicted exporters leave the table (their counters live on in
        // the overflow entry).
        exporters.clear();
        for (ip, counters) in self.decoder.exporters() {
            exporters.insert(ip, counters.clone());
        }
        if self.decoder.overflow() != &ExporterCounters::default() {
            exporters.insert(IpAddr::from([0u8; 4]), self.decoder.overflow().clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Telemetry of a known rate: `per_window` datagrams of 1,500 bytes each 10 ms window, in
    /// calls of `per_call`. Returns the wait after the last call.
    fn steady(
        gather: &mut Gather,
        t0: Instant,
        per_window: usize,
        per_call: usize,
    ) -> Option<Duration> {
        let mut wait = None;
        let calls = per_window / per_call;
        for call in 1..=calls {
            let at = t0 + RATE_WINDOW.mul_f64(call as f64 / calls as f64);
            wait = gather.after_batch(per_call, per_call * 1500, at);
        }
        wait
    }

    #[test]
    fn the_receiver_waits_for_about_a_batch_once_it_knows_the_rate() {
        let t0 = Instant::now();
        // No rate yet: no waiting.
        let mut gather = Gather::new(32 << 20, t0);
        assert_eq!(gather.after_batch(3, 4500, t0 + MS), None);
        // 100 k datagrams/s: a batch of 128 gathers in 1.28 ms.
        let mut gather = Gather::new(32 << 20, t0);
        let wait = steady(&mut gather, t0, 1000, 5).unwrap();
        assert!((wait.as_secs_f64() - 128e-5).abs() < 1e-6, "{wait:?}");
        // A full batch: more is queued, read again at once.
        assert_eq!(gather.after_batch(BATCH, BATCH * 1500, t0 + 11 * MS), None);
        // 1 k datagrams/s: a batch would take 128 ms; the wait stops at MAX_GATHER.
        let mut gather = Gather::new(32 << 20, t0);
        assert_eq!(steady(&mut gather, t0, 10, 1), Some(MAX_GATHER));
        // 20 M datagrams/s: a batch gathers faster than a sleep is worth.
        let mut gather = Gather::new(32 << 20, t0);
        assert_eq!(steady(&mut gather, t0, 200_000, 100), None);
    }

    #[test]
    fn the_wait_never_lets_more_than_a_quarter_of_the_buffer_fill() {
        let t0 = Instant::now();
        // 64 KiB granted: a quarter holds 16 KiB / (1,500 + overhead) = 6.5 datagrams.
        let mut gather = Gather::new(64 << 10, t0);
        let wait = steady(&mut gather, t0, 100, 2).unwrap();
        let rate = 100.0 / RATE_WINDOW.as_secs_f64();
        let queued_bytes = wait.as_secs_f64() * rate * (1500 + QUEUE_OVERHEAD) as f64;
        assert!(
            queued_bytes <= (16 << 10) as f64 + 1.0,
            "{wait:?}: {queued_bytes} bytes"
        );
        assert!(wait >= MIN_GATHER);
        // A buffer too small for even one datagram's worth: never wait.
        let mut gather = Gather::new(4 << 10, t0);
        assert_eq!(steady(&mut gather, t0, 1000, 5), None);
    }
}
