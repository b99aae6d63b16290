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
