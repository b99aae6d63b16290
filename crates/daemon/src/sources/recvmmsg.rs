//! Batched UDP receive: one `recvmmsg(2)` system call fills up to `BATCH` datagrams, and the
//! kernel's per-socket drop counter (`SO_RXQ_OVFL`) rides along as ancillary data.
//!
//! The daemon's one module with `unsafe`: rustix (1.1) wraps neither `recvmmsg` nor the
//! `SO_RXQ_OVFL` option, so both go through libc, and the control messages and socket addresses
//! the kernel fills in are read through raw pointers. Each block says why it holds.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Bytes per datagram slot: larger than any jumbo-frame telemetry datagram; longer ones are cut
/// and counted as truncated.
pub const SLOT: usize = 16 * 1024;
/// Room for one `SO_RXQ_OVFL` control message per datagram.
const CONTROL: usize = 64;

/// Reusable buffers for `recvmmsg`. Allocated once; receiving allocates nothing.
pub struct RecvBatch {
    data: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    control: Vec<u8>,
    headers: Vec<libc::mmsghdr>,
    received: usize,
    /// Kernel drop counter of the socket as last reported (cumulative since the socket opened).
    pub kernel_drops: u32,
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        RecvBatch {
            data: vec![0; BATCH * SLOT],
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all-zero is valid.
            addrs: vec![unsafe { zeroed() }; BATCH],
            iovecs: vec![unsafe { zeroed() }; BATCH],
            control: vec![0; BATCH * CONTROL],
            headers: vec![unsafe { zeroed() }; BATCH],
            received: 0,
            kernel_drops: 0,
        }
    }

    /// Blocks until at least one datagram arrives (or the socket's receive timeout passes), then
    /// takes every datagram already queued, up to `BATCH`. Returns how many were received.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            self.iovecs[i] = libc::iovec {
                iov_base: self.data[i * SLOT..].as_mut_ptr().cast(),
                iov_len: SLOT,
            };
            let header = &mut self.headers[i].msg_hdr;
            header.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            header.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            header.msg_iov = &mut self.iovecs[i];
            header.msg_iovlen = 1;
            header.msg_control = self.control[i * CONTROL..].as_mut_ptr().cast();
            header.msg_controllen = CONTROL as _;
            header.msg_flags = 0;
            self.headers[i].msg_len = 0;
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
        for i in 0..self.received {
            if let Some(drops) = self.rxq_overflow(i) {
                self.kernel_drops = drops;
            }
        }
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

    fn rxq_overflow(&self, i: usize) -> Option<u32> {
        let header = &self.headers[i].msg_hdr;
        // SAFETY: the kernel filled msg_control/msg_controllen for this message; the CMSG macros
        // walk within that buffer and return null at its end.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(header);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SO_RXQ_OVFL
                {
                    let value = libc::CMSG_DATA(cmsg).cast::<u32>().read_unaligned();
                    return Some(value);
                }
                cmsg = libc::CMSG_NXTHDR(header, cmsg);
            }
        }
        None
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

/// Asks the kernel to report the socket's drop counter with each datagram.
pub fn enable_drop_counter(socket: &impl AsRawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a plain setsockopt with a pointer to a c_int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RXQ_OVFL,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
