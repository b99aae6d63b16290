//! The learnt baselines across restarts: `[state] dir/baselines.bin`, written atomically every
//! few minutes and at shutdown, read at start.
//!
//! A restart must not cost the engine its warm-up (minutes during which per-host and per-prefix
//! baselines cannot alarm) nor make it relearn a busy prefix's normal. The file is versioned and
//! checksummed: a missing, truncated, edited or foreign file is reported and ignored — the
//! engine learns again — never a crash and never half-read.
//!
//! Format (little-endian): magic `FWBASE`, version u16 (1), saved-at Unix seconds u64, host
//! count u64, prefix count u64; per host: family u8 (4 or 6), address 16 bytes, incoming and
//! outgoing state; per prefix: family, address, prefix length u8, state; a state is mean and
//! mean absolute deviation of packets/s and bits/s (4 × f32) and seconds learnt (u32); last, the
//! CRC-32 of everything before it.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use floodwall_detect::{BaselineState, Baselines};
use ipnet::IpNet;

const MAGIC: &[u8; 6] = b"FWBASE";
const VERSION: u16 = 1;
const HEADER: usize = 6 + 2 + 8 + 8 + 8;
const STATE: usize = 4 * 4 + 4;
const HOST: usize = 1 + 16 + 2 * STATE;
const PREFIX: usize = 1 + 16 + 1 + STATE;
const FILE_NAME: &str = "baselines.bin";

/// Why a saved file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Read(#[from] crate::state_file::ReadError),
    #[error("{0} is not a Floodwall baselines file")]
    NotBaselines(PathBuf),
    #[error("{0} has version {1}; this Floodwall reads version {VERSION}")]
    Version(PathBuf, u16),
    #[error("{0} is damaged: {1}")]
    Damaged(PathBuf, &'static str),
}

/// Where the baselines of state directory `dir` live.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The file's bytes for `baselines`, saved at `saved_at_s`.
pub fn encode(baselines: &Baselines, saved_at_s: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        HEADER + baselines.hosts.len() * HOST + baselines.prefixes.len() * PREFIX + 4,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&saved_at_s.to_le_bytes());
    out.extend_from_slice(&(baselines.hosts.len() as u64).to_le_bytes());
    out.extend_from_slice(&(baselines.prefixes.len() as u64).to_le_bytes());
    for (addr, states) in &baselines.hosts {
        put_addr(&mut out, *addr);
        states.iter().for_each(|s| put_state(&mut out, s));
    }
    for (net, state) in &baselines.prefixes {
        put_addr(&mut out, net.addr());
        out.push(net.prefix_len());
        put_state(&mut out, state);
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The baselines in `bytes` (the contents of `path`, named in errors) and when they were saved.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<(Baselines, u64), LoadError> {
    let damaged = |why| LoadError::Damaged(path.to_path_buf(), why);
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(LoadError::NotBaselines(path.to_path_buf()));
    }
    if bytes.len() < HEADER + 4 {
        return Err(damaged("truncated header"));
    }
    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
    if version != VERSION {
        return Err(LoadError::Version(path.to_path_buf(), version));
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
        return Err(damaged("checksum mismatch (truncated or edited)"));
    }
    let mut r = Reader(&body[8..]);
    let saved_at = r.u64();
    let (hosts, prefixes) = (r.u64(), r.u64());
    let expected = hosts.checked_mul(HOST as u64).and_then(|h| {
        prefixes
            .checked_mul(PREFIX as u64)
            .and_then(|p| h.checked_add(p))
    });
    if expected != Some(r.0.len() as u64) {
        return Err(damaged("entry counts do not match its size"));
    }
    let mut out = Baselines::default();
    for _ in 0..hosts {
        let addr = r.addr().ok_or_else(|| damaged("bad address family"))?;
        out.hosts.push((addr, [r.state(), r.state()]));
    }
    for _ in 0..prefixes {
        let addr = r.addr().ok_or_else(|| damaged("bad address family"))?;
        let net = IpNet::new(addr, r.u8()).map_err(|_| damaged("bad prefix length"))?;
        out.prefixes.push((net, r.state()));
    }
    Ok((out, saved_at))
}

/// Reads the baselines of state directory `dir`; `Ok(None)` when there are none yet.
/// Never blocks: a FIFO or another non-regular file at the path is refused (the next save
/// replaces it).
pub fn load(dir: &Path) -> Result<Option<(Baselines, u64)>, LoadError> {
    let path = path(dir);
    match crate::state_file::read(&path)? {
        Some(bytes) => decode(&path, &bytes).map(Some),
        None => Ok(None),
    }
}

/// Writes the baselines of state directory `dir` atomically (a temporary file, synced, then
/// renamed over the old one): a crash mid-write leaves the previous file.
pub fn save(dir: &Path, baselines: &Baselines, saved_at_s: u64) -> std::io::Result<()> {
    let bytes = encode(baselines, saved_at_s);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    // Whatever is at the temporary path goes first: opening a FIFO there would block.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path(dir))?;
    // The rename itself must reach the disk.
    std::fs::File::open(dir)?.sync_all()
}

fn put_addr(out: &mut Vec<u8>, addr: IpAddr) {
    match addr {
        IpAddr::V4(a) => {
            out.push(4);
            out.extend_from_slice(&a.to_ipv6_mapped().octets());
        }
        IpAddr::V6(a) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

fn put_state(out: &mut Vec<u8>, s: &BaselineState) {
    for v in [s.mean_pps, s.dev_pps, s.mean_bps, s.dev_bps] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&s.history.to_le_bytes());
}

/// A cursor over bytes whose length was checked beforehand.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("length checked")
    }

    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }

    fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.take())
    }

    fn addr(&mut self) -> Option<IpAddr> {
        let family = self.u8();
        let octets: [u8; 16] = self.take();
        match family {
            4 => Ipv6Addr::from(octets)
                .to_ipv4_mapped()
                .map(|a: Ipv4Addr| IpAddr::V4(a)),
            6 => Some(IpAddr::V6(Ipv6Addr::from(octets))),
            _ => None,
        }
    }

    fn state(&mut self) -> BaselineState {
        BaselineState {
            mean_pps: self.f32(),
            dev_pps: self.f32(),
            mean_bps: self.f32(),
            dev_bps: self.f32(),
            history: u32::from_le_bytes(self.take()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Baselines {
        let state = |m: f32| BaselineState {
            mean_pps: m,
            dev_pps: m / 10.0,
            mean_bps: m * 8000.0,
            dev_bps: m * 800.0,
            history: 600,
        };
        Baselines {
            hosts: vec![
                ("203.0.113.7".parse().unwrap(), [state(2000.0), state(10.0)]),
                ("2001:db8::7".parse().unwrap(), [state(5.0), state(0.0)]),
            ],
            prefixes: vec![("203.0.113.0/24".parse().unwrap(), state(50_000.0))],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample(), 1_760_000_000);
        let (back, at) = decode(Path::new("b"), &bytes).unwrap();
        assert_eq!((back, at), (sample(), 1_760_000_000));
    }

    #[test]
    fn damaged_files_are_refused_with_a_reason() {
        let bytes = encode(&sample(), 1);
        let p = Path::new("state/baselines.bin");
        let err = |b: &[u8]| decode(p, b).unwrap_err().to_string();
        assert!(err(b"").contains("not a Floodwall baselines file"));
        assert!(err(b"{\"hosts\": []}").contains("not a Floodwall baselines file"));
        assert!(err(&bytes[..bytes.len() - 1]).contains("checksum"));
        assert!(err(&bytes[..20]).contains("truncated header"));
        let mut edited = bytes.clone();
        edited[HEADER + 20] ^= 1;
        assert!(err(&edited).contains("checksum"));
        let mut newer = bytes.clone();
        newer[6] = 2;
        assert!(err(&newer).contains("version 2"));
        // A consistent checksum over inconsistent counts (a hostile edit) is still refused.
        let mut counts = bytes[..bytes.len() - 4].to_vec();
        counts[16] = 200;
        let crc = crc32fast::hash(&counts);
        counts.extend_from_slice(&crc.to_le_bytes());
        assert!(err(&counts).contains("entry counts"));
        // Every truncation is an error, never a panic.
        for n in 0..bytes.len() {
            assert!(decode(p, &bytes[..n]).is_err());
        }
    }

    /// The fuzz seed was written by hand from the format in the module docs (in Python): it
    /// decodes to what it says, so the docs describe the file.
    #[test]
    fn the_documented_format_decodes() {
        let seed = include_bytes!("../../../fuzz/seeds/baselines_file/two-hosts-one-prefix");
        let (back, at) = decode(Path::new("seed"), seed).unwrap();
        assert_eq!((back, at), (sample(), 1_760_000_000));
        assert_eq!(encode(&sample(), at), seed);
    }

    #[test]
    fn save_then_load_in_a_state_directory() {
        let dir = std::env::temp_dir().join(format!("fw-baselines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(load(&dir).unwrap().is_none());
        save(&dir, &sample(), 42).unwrap();
        assert_eq!(load(&dir).unwrap(), Some((sample(), 42)));
        assert!(!dir.join("baselines.bin.tmp").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// FIFOs at the file's and the temporary file's paths neither block a load nor a save.
    #[test]
    fn fifos_in_the_state_directory_block_neither_load_nor_save() {
        let dir = std::env::temp_dir().join(format!("fw-baselines-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["baselines.bin", "baselines.bin.tmp"] {
            let mode = rustix::fs::Mode::from_raw_mode(0o600);
            rustix::fs::mkfifoat(rustix::fs::CWD, dir.join(name), mode).unwrap();
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let d = dir.clone();
        std::thread::spawn(move || {
            let loaded = load(&d).map(|_| ()).map_err(|e| e.to_string());
            let saved = save(&d, &sample(), 7).map_err(|e| e.to_string());
            tx.send((loaded, saved, load(&d).map_err(|e| e.to_string())))
                .unwrap();
        });
        let (loaded, saved, again) = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("a FIFO in the state directory blocked");
        let why = loaded.unwrap_err();
        assert!(
            why.ends_with("baselines.bin is a FIFO, not a regular file"),
            "{why}"
        );
        saved.unwrap();
        assert_eq!(again.unwrap(), Some((sample(), 7)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
