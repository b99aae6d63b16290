//! What the kernel says about another process and its sockets: CPU time and peak memory from
//! `/proc/PID/{stat,status}`, a UDP socket's drop counter from `/proc/net/udp`. Each reader has
//! a pure parser beside it, tested on real samples of those files.

use std::io;

/// CPU time of a process (all its threads), seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
}

impl CpuTimes {
    pub fn total(&self) -> f64 {
        self.user + self.system
    }

    /// The time used since `earlier`.
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// User and system CPU seconds of process `pid`, from `/proc/PID/stat`.
pub fn cpu_times(pid: u32) -> io::Result<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (user, system) = parse_stat_cpu_ticks(&stat).ok_or_else(|| invalid("/proc/PID/stat"))?;
    let per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
    Ok(CpuTimes {
        user: user as f64 / per_second,
        system: system as f64 / per_second,
    })
}

/// utime and stime (clock ticks) from the text of `/proc/PID/stat`. The command name in
/// parentheses may hold spaces and parentheses, so fields are counted after the last `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file; `rest` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime, stime))
}

/// CPU time of one thread of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadCpu {
    pub tid: u32,
    /// The thread's name as the kernel keeps it (`comm`: at most 15 bytes).
    pub name: String,
    /// User and system time as `stat` counts them, in whole clock ticks (10 ms).
    pub ticks: CpuTimes,
    /// Seconds on a CPU as the scheduler counts them (nanoseconds), when the kernel keeps it.
    pub runtime: Option<f64>,
}

/// CPU time of every live thread of process `pid`, from `/proc/PID/task/TID/{comm,stat,schedstat}`.
/// A thread that ends while it is read is left out.
///
/// The total is the scheduler's nanosecond run time (`schedstat`) when the kernel keeps it;
/// `stat`'s tick counts (10 ms each) only split it into user and system.
pub fn thread_cpu_times(pid: u32) -> io::Result<Vec<ThreadCpu>> {
    let per_second = rustix::param::clock_ticks_per_second().max(1) as f64;
    let mut threads = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let dir = entry.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue;
        };
        let Some((user, system)) = parse_stat_cpu_ticks(&stat) else {
            continue;
        };
        let ticks = CpuTimes {
            user: user as f64 / per_second,
            system: system as f64 / per_second,
        };
        let runtime = std::fs::read_to_string(dir.join("schedstat"))
            .ok()
            .and_then(|s| parse_schedstat_ns(&s))
            .map(|ns| ns as f64 / 1e9);
        threads.push(ThreadCpu {
            tid,
            name: name.trim_end().to_string(),
            ticks,
            runtime,
        });
    }
    Ok(threads)
}

/// The first field of `/proc/.../schedstat`: nanoseconds the task has run on a CPU.
pub fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `total` seconds split into user and system in the proportion of `ticks` (all user when
/// no tick was counted yet).
fn split_like(total: f64, ticks: &CpuTimes) -> CpuTimes {
    let system_share = if ticks.total() > 0.0 {
        ticks.system / ticks.total()
    } else {
        0.0
    };
    CpuTimes {
        user: total * (1.0 - system_share),
        system: total * system_share,
    }
}

/// The CPU used between two snapshots of [`thread_cpu_times`] by the threads whose name starts
/// with `prefix` (threads are matched by id; one born in between counts from zero).
pub fn threads_cpu_since(before: &[ThreadCpu], after: &[ThreadCpu], prefix: &str) -> CpuTimes {
    let mut used = CpuTimes::default();
    for thread in after.iter().filter(|t| t.name.starts_with(prefix)) {
        let earlier = before.iter().find(|t| t.tid == thread.tid);
        let ticks = thread
            .ticks
            .since(&earlier.map_or(CpuTimes::default(), |t| t.ticks));
        let delta = match (thread.runtime, earlier.map_or(Some(0.0), |t| t.runtime)) {
            (Some(now), Some(then)) => split_like((now - then).max(0.0), &ticks),
            _ => ticks,
        };
        used.user += delta.user;
        used.system += delta.system;
    }
    used
}

/// Peak resident set size (VmHWM) of process `pid`, bytes.
pub fn peak_rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_kib(&status, "VmHWM")
        .map(|kib| kib * 1024)
        .ok_or_else(|| invalid("/proc/PID/status"))
}

/// A `kB` field of `/proc/PID/status` (`VmHWM`, `VmRSS`), in KiB.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// A UDP socket bound to 127.0.0.1:`port`, as `/proc/net/udp` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpSocketRow {
    /// Bytes waiting in the receive queue.
    pub rx_queue: u64,
    /// Datagrams the kernel dropped for this socket (full buffer, bad checksum).
    pub drops: u64,
}

/// The socket bound to 127.0.0.1:`port`, if there is one.
pub fn loopback_udp_socket(port: u16) -> io::Result<Option<UdpSocketRow>> {
    Ok(parse_proc_net_udp(
        &std::fs::read_to_string("/proc/net/udp")?,
        port,
    ))
}

/// The row of `/proc/net/udp` for 127.0.0.1:`port` (also 0.0.0.0:`port`, which receives it).
pub fn parse_proc_net_udp(table: &str, port: u16) -> Option<UdpSocketRow> {
    let wanted = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !wanted.iter().any(|w| fields.get(1) == Some(&w.as_str())) {
            return None;
        }
        let rx_queue = fields
            .get(4)?
            .split(':')
            .nth(1)
            .and_then(|q| u64::from_str_radix(q, 16).ok())?;
        let drops = fields.get(12)?.parse().ok()?;
        Some(UdpSocketRow { rx_queue, drops })
    })
}

/// The 1-minute load average (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace().next()?.parse().ok()
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("unexpected {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks_skip_a_command_with_spaces() {
        let stat = "4487 (fast net) mon)) S 1 4487 4487 0 -1 4194560 289 0 0 0 417 35 0 0 20 0 \
                    9 0 1057466 1752068096 294822 18446744073709551615 1 1 0 0 0 0 0 4096 17 \
                    1 0 0 0 0 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some((417, 35)));
        assert_eq!(parse_stat_cpu_ticks("12 (x) S 1 2"), None);
        // This process has a stat file, and it has used some CPU by now.
        let before = cpu_times(std::process::id()).unwrap();
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(50) {
            std::hint::black_box(0);
        }
        let used = cpu_times(std::process::id()).unwrap().since(&before);
        assert!(
            used.total() > 0.0 && used.user >= 0.0 && used.system >= 0.0,
            "{used:?}"
        );
    }

    #[test]
    fn load_average_is_the_first_field() {
        assert_eq!(parse_loadavg("1.35 1.74 1.94 3/412 29345\n"), Some(1.35));
        assert_eq!(parse_loadavg(""), None);
        assert!(load_average().is_some());
    }

    #[test]
    fn status_fields_in_kib() {
        let status =
            "Name:\tfastnetmon\nVmPeak:\t 1711004 kB\nVmHWM:\t 1179288 kB\nVmRSS:\t  972824 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(1_179_288));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(972_824));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        assert!(peak_rss_bytes(std::process::id()).unwrap() > 1 << 20);
    }

    #[test]
    fn a_named_thread_is_charged_its_own_cpu_only() {
        assert_eq!(
            parse_schedstat_ns("109512021 10360790 226\n"),
            Some(109_512_021)
        );
        assert_eq!(parse_schedstat_ns(""), None);
        let before = thread_cpu_times(std::process::id()).unwrap();
        let spinner = std::thread::Builder::new()
            .name("cpu-probe-spin".into())
            .spawn(|| {
                let spin = std::time::Instant::now();
                while spin.elapsed() < std::time::Duration::from_millis(60) {
                    std::hint::black_box(0);
                }
                let threads = thread_cpu_times(std::process::id()).unwrap();
                assert!(threads.iter().any(|t| t.name == "cpu-probe-spin"));
                threads
            })
            .unwrap();
        let after = spinner.join().unwrap();
        let spun = threads_cpu_since(&before, &after, "cpu-probe");
        // It ran for its 60 ms of wall time, give or take what the scheduler took from it.
        assert!(
            spun.total() > 0.0 && spun.user >= 0.0 && spun.system >= 0.0,
            "{spun:?}"
        );
        assert_eq!(
            threads_cpu_since(&before, &after, "no-such-thread"),
            CpuTimes::default()
        );
    }

    #[test]
    fn proc_net_udp_row_of_a_loopback_port() {
        let table = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops            \n\
  451: 0100007F:3FB7 00000000:0000 07 00000000:00033F00 00:00000000 00000000     0        0 4183201 2 ffff8f0f5ab8a000 1234        \n\
  652: 00000000:18EB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4180001 2 ffff8f0f5ab8b000 0           \n";
        assert_eq!(
            parse_proc_net_udp(table, 0x3fb7),
            Some(UdpSocketRow {
                rx_queue: 0x33f00,
                drops: 1234
            })
        );
        assert_eq!(
            parse_proc_net_udp(table, 6379),
            Some(UdpSocketRow {
                rx_queue: 0,
                drops: 0
            })
        );
        assert_eq!(parse_proc_net_udp(table, 6343), None);
        // A socket this test binds shows up.
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        assert_eq!(loopback_udp_socket(port).unwrap().map(|r| r.drops), Some(0));
    }
}
