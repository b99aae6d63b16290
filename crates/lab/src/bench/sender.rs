//! The load generator: sends a [`Stream`] of datagrams to a collector with `sendmmsg(2)`, paced by
//! a token bucket against the monotonic clock, and always bounded in both time and count.

use std::io::{self, IoSlice};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use rustix::net::{sendmmsg, MMsgHdr, SendAncillaryBuffer, SendFlags};
use serde::{Deserialize, Serialize};

use super::stream::{LatencySchedule, Stream, SAMPLES_PER_DATAGRAM};
use super::Rate;

/// Most datagrams per `sendmmsg` call.
pub const MAX_BATCH: usize = 64;
/// Hard ceiling on the datagram count of an unpaced run, per second of its duration: far above
/// what one core can push through loopback, so it bounds a runaway without limiting a real run.
pub const UNPACED_MAX_PER_SECOND: f64 = 5e6;
/// Refused sends (nobody listening) tolerated before giving up.
const MAX_REFUSED: u64 = 1000;

/// What to send, where, and when to stop.
#[derive(Debug, Clone, Copy)]
pub struct SendPlan {
    pub target: SocketAddr,
    pub rate: Rate,
    pub duration: Duration,
    pub max_datagrams: u64,
}

impl SendPlan {
    /// A plan sending for `duration` at `rate`, also capped at rate × duration datagrams (so a
    /// late start cannot make it overshoot) or, unpaced, [`UNPACED_MAX_PER_SECOND`] × duration.
    pub fn new(target: SocketAddr, rate: Rate, duration: Duration) -> Self {
        let per_second = rate.per_second().unwrap_or(UNPACED_MAX_PER_SECOND);
        SendPlan {
            target,
            rate,
            duration,
            max_datagrams: (per_second * duration.as_secs_f64()).ceil() as u64,
        }
    }
}

/// What a sender did; printed by `bench send` as one JSON line and read back by `bench ingest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendReport {
    pub protocol: String,
    /// Datagrams per second asked for; `None` when unpaced.
    pub target_rate: Option<f64>,
    pub datagrams: u64,
    /// Flow records (sFlow samples) in the datagrams sent.
    pub records: u64,
    pub bytes: u64,
    pub seconds: f64,
    /// Datagrams per second actually sent.
    pub achieved_rate: f64,
    /// `sendmmsg` calls that failed (ECONNREFUSED, ENOBUFS) and were retried.
    pub send_errors: u64,
}

/// Sends `stream` in order, cycling through its ring, until the plan's time or count runs out.
///
/// Batches carry at most 1 ms of traffic at the target rate (and at most [`MAX_BATCH`]), so a
/// paced sender's bursts stay small next to the collector's socket buffer.
pub fn send(stream: &mut impl Stream, plan: &SendPlan) -> io::Result<SendReport> {
    let ring = stream.ring_len();
    if ring == 0 {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty stream"));
    }
    let socket = connect(plan.target)?;
    let mut records_of = vec![0u32; ring];

    let batch = plan
        .rate
        .per_second()
        .map_or(MAX_BATCH, |r| ((r / 1000.0) as usize).clamp(1, MAX_BATCH));
    let mut bucket = plan
        .rate
        .per_second()
        .map(|rate| TokenBucket::new(rate, batch));
    let started = Instant::now();
    let deadline = started + plan.duration;
    let (mut next, mut datagrams, mut records, mut bytes, mut send_errors) = (0, 0u64, 0, 0, 0);
    // Datagrams of the ring made ready for the batch being sent: `next..prepared`.
    let mut prepared = 0;
    loop {
        let now = Instant::now();
        let left = plan.max_datagrams.saturating_sub(datagrams);
        if now >= deadline || left == 0 {
            break;
        }
        let want = batch
            .min(ring - next)
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        if let Some(wait) = bucket.as_mut().and_then(|b| b.wait_for(want, now)) {
            std::thread::sleep(wait.min(deadline - now));
            continue;
        }
        let first = prepared.max(next);
        for (slot, records) in records_of
            .iter_mut()
            .enumerate()
            .take(next + want)
            .skip(first)
        {
            *records = stream.prepare(slot, datagrams + (slot - next) as u64);
        }
        prepared = next + want;
        let datagrams_of_batch = (next..next + want).map(|slot| stream.datagram(slot));
        let sent = match send_batch(&socket, datagrams_of_batch) {
            Ok(sent) => sent,
            Err(error) => {
                send_errors += 1;
                retry_after_error(error, send_errors)?;
                continue;
            }
        };
        for (slot, &count) in records_of.iter().enumerate().skip(next).take(sent) {
            records += u64::from(count);
            bytes += stream.datagram(slot).len() as u64;
        }
        datagrams += sent as u64;
        if let Some(bucket) = bucket.as_mut() {
            bucket.take(sent);
        }
        next = (next + sent) % ring;
        if next == 0 {
            prepared = 0;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(SendReport {
        protocol: stream.protocol().to_string(),
        target_rate: plan.rate.per_second(),
        datagrams,
        records,
        bytes,
        seconds,
        achieved_rate: datagrams as f64 / seconds.max(1e-9),
        send_errors,
    })
}

/// What the latency sender did; its last line of output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleReport {
    pub datagrams: u64,
    pub records: u64,
    pub attack_samples: u64,
    pub seconds: f64,
    /// Unix time in µs just before the first datagram carrying an attack sample was sent.
    pub attack_sent_unix_us: Option<u64>,
    pub send_errors: u64,
}

/// Sends a latency schedule to every target (each datagram to all of them, in turns so no
/// target is always first) until `duration` has passed. Calls `on_attack` with the Unix time
/// in µs just before the first datagram carrying an attack sample goes out.
pub fn send_schedule(
    schedule: &mut LatencySchedule,
    targets: &[SocketAddr],
    duration: Duration,
    mut on_attack: impl FnMut(u64),
) -> io::Result<ScheduleReport> {
    let sockets = targets
        .iter()
        .map(|&t| connect(t))
        .collect::<io::Result<Vec<_>>>()?;
    if sockets.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "no target"));
    }
    let started = Instant::now();
    let mut report = ScheduleReport {
        datagrams: 0,
        records: 0,
        attack_samples: 0,
        seconds: 0.0,
        attack_sent_unix_us: None,
        send_errors: 0,
    };
    loop {
        let datagram = schedule.next_datagram();
        if datagram.due > duration {
            break;
        }
        if let Some(wait) = datagram.due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
        if datagram.attack_samples > 0 && report.attack_sent_unix_us.is_none() {
            let now = unix_us();
            report.attack_sent_unix_us = Some(now);
            on_attack(now);
        }
        let first = report.datagrams as usize % sockets.len();
        for i in 0..sockets.len() {
            if let Err(error) = sockets[(first + i) % sockets.len()].send(&datagram.bytes) {
                report.send_errors += 1;
                if error.raw_os_error() != Some(libc::ECONNREFUSED)
                    || report.send_errors >= MAX_REFUSED
                {
                    return Err(error);
                }
            }
        }
        report.datagrams += 1;
        report.records += SAMPLES_PER_DATAGRAM as u64;
        report.attack_samples += u64::from(datagram.attack_samples);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Microseconds since the Unix epoch.
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// A UDP socket on loopback connected to `target`.
pub fn connect(target: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if target.is_ipv4() {
        ([127, 0, 0, 1], 0).into()
    } else {
        (std::net::Ipv6Addr::LOCALHOST, 0).into()
    };
    let socket = UdpSocket::bind(local)?;
    socket.connect(target)?;
    Ok(socket)
}

/// Sends `datagrams` on a connected socket with one `sendmmsg` call; how many went out.
fn send_batch<'a>(
    socket: &UdpSocket,
    datagrams: impl Iterator<Item = &'a [u8]>,
) -> io::Result<usize> {
    let iovs: Vec<IoSlice<'_>> = datagrams.map(IoSlice::new).collect();
    // No address (the socket is connected) and no control data; each header borrows its own.
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut headers: Vec<MMsgHdr<'_>> = iovs
        .iter()
        .zip(controls.iter_mut())
        .map(|(iov, control)| MMsgHdr::new(std::slice::from_ref(iov), control))
        .collect();
    Ok(sendmmsg(socket, &mut headers, SendFlags::empty())?)
}

/// Whether a failed `sendmmsg` may be retried: refused sends (nobody listening yet) up to
/// [`MAX_REFUSED`] times, full buffers and interruptions after a short pause; anything else is
/// the caller's error.
fn retry_after_error(error: io::Error, errors_so_far: u64) -> io::Result<()> {
    match error.raw_os_error() {
        Some(libc::ECONNREFUSED) if errors_so_far < MAX_REFUSED => Ok(()),
        Some(libc::ENOBUFS | libc::EAGAIN | libc::EINTR) => {
            std::thread::sleep(Duration::from_micros(50));
            Ok(())
        }
        _ => Err(error),
    }
}

/// Refuses any target but loopback: generated telemetry describes attacks, and only a collector
/// on this machine is meant to hear it.
pub fn require_loopback(target: SocketAddr) -> io::Result<()> {
    if target.ip().is_loopback() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to send to {target}: telemetry is only sent to a collector on loopback \
                 (127.0.0.0/8 or [::1])"
            ),
        ))
    }
}

/// Sends a stream of datagrams, each at its due time (scenario time compressed by `speed`) and
/// never faster than `max_rate` datagrams per second, in `sendmmsg` batches of datagrams that
/// are due together. Loopback only. Bounded by its input: it sends each datagram once.
pub struct PacedSender {
    socket: UdpSocket,
    bucket: TokenBucket,
    speed: f64,
    /// Wall-clock instant of scenario time `origin_us`.
    started: Instant,
    origin_us: Option<u64>,
    batch: Vec<Vec<u8>>,
    filled: usize,
    pub datagrams: u64,
    pub send_errors: u64,
    /// How far behind schedule the last datagram went (the rate cap stretched time).
    pub max_lag: Duration,
}

impl PacedSender {
    pub fn new(target: SocketAddr, speed: f64, max_rate: f64) -> io::Result<Self> {
        require_loopback(target)?;
        if !(speed.is_finite() && speed > 0.0 && max_rate.is_finite() && max_rate > 0.0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "speed and rate must be positive",
            ));
        }
        let socket = connect(target)?;
        let batch = ((max_rate / 1000.0) as usize).clamp(1, MAX_BATCH);
        Ok(PacedSender {
            socket,
            bucket: TokenBucket::new(max_rate, batch),
            speed,
            started: Instant::now(),
            origin_us: None,
            batch: (0..batch).map(|_| Vec::with_capacity(1500)).collect(),
            filled: 0,
            datagrams: 0,
            send_errors: 0,
            max_lag: Duration::ZERO,
        })
    }

    /// Queues `bytes`, due at scenario time `ts_us`; sends what is due.
    pub fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> io::Result<()> {
        let origin = *self.origin_us.get_or_insert_with(|| {
            self.started = Instant::now();
            ts_us
        });
        let due = self.started
            + Duration::from_secs_f64(ts_us.saturating_sub(origin) as f64 / 1e6 / self.speed);
        let now = Instant::now();
        if due > now + Duration::from_millis(1) {
            self.flush()?;
            std::thread::sleep(due - Instant::now().min(due));
        } else {
            self.max_lag = self.max_lag.max(now.saturating_duration_since(due));
        }
        if self.filled == self.batch.len() {
            self.flush()?;
        }
        let slot = &mut self.batch[self.filled];
        slot.clear();
        slot.extend_from_slice(bytes);
        self.filled += 1;
        Ok(())
    }

    /// Sends every queued datagram, within the rate cap.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut next = 0;
        while next < self.filled {
            let want = self.filled - next;
            if let Some(wait) = self.bucket.wait_for(want, Instant::now()) {
                std::thread::sleep(wait);
                continue;
            }
            let queued = self.batch[next..self.filled].iter().map(Vec::as_slice);
            let sent = match send_batch(&self.socket, queued) {
                Ok(sent) => sent,
                Err(error) => {
                    self.send_errors += 1;
                    retry_after_error(error, self.send_errors)?;
                    continue;
                }
            };
            self.bucket.take(sent);
            self.datagrams += sent as u64;
            next += sent;
        }
        self.filled = 0;
        Ok(())
    }
}

/// Tokens accrue at the target rate up to two batches' worth, so a late wake-up is made up with
/// one extra batch but a long stall never turns into a burst.
struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, batch: usize) -> Self {
        TokenBucket {
            rate,
            capacity: 2.0 * batch as f64,
            tokens: batch as f64,
            last: Instant::now(),
        }
    }

    /// How long until `n` datagrams may go, or `None` if they may go now.
    fn wait_for(&mut self, n: usize, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        let missing = n as f64 - self.tokens;
        (missing > 0.0).then(|| Duration::from_secs_f64(missing / self.rate))
    }

    fn take(&mut self, n: usize) {
        self.tokens -= n as f64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::synthetic::Workload;
    use floodwall_wire::Protocol;

    /// A paced send to a local socket stops at its count, near the target rate, and every
    /// datagram arrives intact.
    #[test]
    fn paced_send_is_bounded_and_delivers() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let workload = Workload::generate(Protocol::NetflowV5, 7, 1_700_000_000_000);
        let plan = SendPlan::new(
            receiver.local_addr().unwrap(),
            Rate::PerSecond(500.0),
            Duration::from_millis(100),
        );
        assert_eq!(plan.max_datagrams, 50);
        let report = send(&mut workload.clone(), &plan).unwrap();
        // The last datagram is due just before the deadline; a slow wake-up may miss it.
        assert!((1..=50).contains(&report.datagrams), "{report:?}");
        assert_eq!(report.records, report.datagrams * 30);
        assert!(report.seconds > 0.07 && report.seconds < 5.0, "{report:?}");
        let mut buf = [0u8; 2048];
        for i in 0..report.datagrams as usize {
            let n = receiver.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &workload.datagrams[i % 7].bytes[..]);
        }
    }
}
