//! Batched UDP receive: one `recvmmsg(2)` system call fills up to `BATCH` datagrams into buffers
//! set up once; the kernel's per-socket drop counter is read apart from the datagrams
//! (`SO_MEMINFO`), a few times a second, instead of riding along with each one as ancillary data.
//!
//! The daemon's one module with `unsafe`: rustix (1.1) wraps neither `recvmmsg` nor
//! `SO_MEMINFO`, so both go through libc, and the socket addresses the kernel fills in are read
//! through raw pointers. Each block says why it holds.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

/// Datagrams per system call. The collector lets about this many gather before it calls (see
/// `udp.rs`), so the call's fixed cost and the thread's wake-up are shared by this many.
pub const BATCH: usize = 128;
/// Bytes per datagram slot: larger than any jumbo-frame telemetry datagram; longer ones are cut
/// and counted as truncated.
pub const SLOT: usize = 16 * 1024;

/// Reusable buffers for `recvmmsg`. Allocated and wired together once; receiving allocates
/// nothing and rewrites only what the kernel changed.
pub struct RecvBatch {
    // The headers point into the other buffers: boxed slices, never resized, so their heap
    // addresses stay put when the struct moves.
    data: Box<[u8]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovecs: Box<[libc::iovec]>,
    headers: Box<[libc::mmsghdr]>,
    received: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        let mut batch = RecvBatch {
            data: vec![0; BATCH * SLOT].into_boxed_slice(),
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all-zero is valid.
            addrs: vec![unsafe { zeroed() }; BATCH].into_boxed_slice(),
            iovecs: vec![unsafe { zeroed() }; BATCH].into_boxed_slice(),
            headers: vec![unsafe { zeroed() }; BATCH].into_boxed_slice(),
            received: 0,
        };
        for i in 0..BATCH {
            batch.iovecs[i] = libc::iovec {
                iov_base: batch.data[i * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let header = &mut batch.headers[i].msg_hdr;
            header.msg_name = (&mut batch.addrs[i] as *mut libc::sockaddr_storage).cast();
            header.msg_iov = &mut batch.iovecs[i];
            header.msg_iovlen = 1;
        }
        batch
    }

    /// Blocks until at least one datagram arrives (or the socket's receive timeout passes), then
    /// takes every datagram already queued, up to `BATCH`. Returns how many were received.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        // The kernel shortens the address length to what it wrote (16 for IPv4): restore it so
        // an IPv6 source fits next time. Everything else it changes is output only.
        for header in &mut self.headers[..] {
            header.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every pointer in `headers` points into buffers owned by `self` that outlive the
        // call, with the lengths given; the kernel writes at most those lengths.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.headers.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.received = 0;
            return Err(io::Error::last_os_error());
        }
        self.received = n as usize;
        Ok(self.received)
    }

    /// Datagram `i` of the last batch: source address, payload, and whether it was cut short.
    pub fn datagram(&self, i: usize) -> Option<(SocketAddr, &[u8], bool)> {
        if i >= self.received {
            return None;
        }
        let header = &self.headers[i];
        let len = (header.msg_len as usize).min(SLOT);
        let truncated = header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let source = sockaddr_to_std(&self.addrs[i])?;
        Some((source, &self.data[i * SLOT..i * SLOT + len], truncated))
    }
}

fn sockaddr_to_std(addr: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match addr.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 =
                unsafe { &*(addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            // A dual-stack socket reports IPv4 exporters as ::ffff:a.b.c.d; name them as IPv4.
            Some(SocketAddr::new(
                ip.to_canonical(),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// `SO_MEMINFO` (Linux 4.6): the libc crate does not name it; 55 in asm-generic and on x86.
const SO_MEMINFO: libc::c_int = 55;
/// Fields of `SO_MEMINFO` up to and including `SK_MEMINFO_DROPS`.
const MEMINFO_FIELDS: usize = libc::SK_MEMINFO_DROPS as usize + 1;

/// Datagrams the kernel has dropped for this socket since it opened (its buffer was full): the
/// counter `SO_RXQ_OVFL` would attach to every datagram, asked for once.
pub fn kernel_drops(socket: &impl AsRawFd) -> io::Result<u32> {
    let mut info = [0u32; MEMINFO_FIELDS];
    let mut len = size_of::<[u32; MEMINFO_FIELDS]>() as libc::socklen_t;
    // SAFETY: a plain getsockopt writing at most `len` bytes into `info`, which has them.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let index = libc::SK_MEMINFO_DROPS as usize;
    // An older kernel that fills fewer fields leaves the drop count out.
    if (len as usize) < (index + 1) * size_of::<u32>() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "SO_MEMINFO without a drop count",
        ));
    }
    Ok(info[index])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::time::Duration;

    fn receiver(addr: &str) -> UdpSocket {
        let socket = UdpSocket::bind(addr).unwrap();
        // Never blocks a test for long: everything it reads was sent before.
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        socket
    }

    #[test]
    fn a_batch_keeps_order_sources_and_marks_cut_datagrams() {
        let v4 = receiver("127.0.0.1:0");
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let oversized = vec![7u8; SLOT + 100];
        for payload in [&b"first"[..], &oversized, b"third"] {
            sender.send_to(payload, v4.local_addr().unwrap()).unwrap();
        }
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 3 {
            let n = batch.recv(&v4).unwrap();
            for i in 0..n {
                let (source, payload, truncated) = batch.datagram(i).unwrap();
                got.push((source, payload.to_vec(), truncated));
            }
            assert!(batch.datagram(n).is_none());
        }
        let from = sender.local_addr().unwrap();
        assert_eq!(got[0], (from, b"first".to_vec(), false));
        assert_eq!(got[1], (from, vec![7u8; SLOT], true));
        assert_eq!(got[2], (from, b"third".to_vec(), false));

        // The same buffers, after an IPv4 source shortened the address length, still take a
        // whole IPv6 address.
        let Ok(v6) = UdpSocket::bind("[::1]:0") else {
            return; // no IPv6 loopback on this machine
        };
        v6.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let sender6 = UdpSocket::bind("[::1]:0").unwrap();
        sender6.send_to(b"six", v6.local_addr().unwrap()).unwrap();
        assert_eq!(batch.recv(&v6).unwrap(), 1);
        let (source, payload, truncated) = batch.datagram(0).unwrap();
        assert_eq!(
            (source, payload, truncated),
            (sender6.local_addr().unwrap(), &b"six"[..], false)
        );
    }

    #[test]
    fn datagrams_the_kernel_dropped_are_counted() {
        let socket = receiver("127.0.0.1:0");
        rustix::net::sockopt::set_socket_recv_buffer_size(&socket, 4096).unwrap();
        assert_eq!(kernel_drops(&socket).unwrap(), 0);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let sent = 200u32;
        for _ in 0..sent {
            sender
                .send_to(&[1u8; 1000], socket.local_addr().unwrap())
                .unwrap();
        }
        // Loopback delivers (or drops) in softirq context, almost always before send_to
        // returns; read until every datagram is accounted for, within bounds.
        socket.set_nonblocking(true).unwrap();
        let mut batch = RecvBatch::new();
        let mut received = 0;
        let mut drops = 0;
        for _ in 0..5000 {
            while let Ok(n) = batch.recv(&socket) {
                received += n as u32;
            }
            drops = kernel_drops(&socket).unwrap();
            if received + drops >= sent {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(drops > 0, "a 4 KiB buffer held all {sent} datagrams");
        assert_eq!(received + drops, sent);
    }
}
