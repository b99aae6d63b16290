//! Capture files (pcap and pcapng, read in pure Rust): either captured telemetry datagrams, decoded
//! by the same [`Decoder`] as live traffic, or raw packet captures, where each packet becomes a
//! 1:1 record. Time comes from the capture, so replays are deterministic.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use anyhow::{Context as _, Result};
use floodwall_wire::packet::{self, Headers};
use floodwall_wire::{proto, Decoder, FlowRecord, Protocol};
use pcap_parser::data::{get_packetdata, PacketData};
use pcap_parser::pcapng::Block;
use pcap_parser::{Linktype, PcapBlockOwned, PcapError};

/// What the packets of a capture are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaptureMode {
    /// Per packet: a UDP payload that is a well-formed telemetry datagram is decoded as
    /// telemetry, anything else counts as a raw packet.
    #[default]
    Auto,
    /// Only telemetry datagrams; other packets are counted and skipped.
    Telemetry,
    /// Only raw packets, each one a 1:1 record (even UDP packets that look like telemetry).
    Packets,
}

/// Counters of one capture read.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptureStats {
    pub packets: u64,
    pub telemetry_datagrams: u64,
    pub raw_packets: u64,
    /// Packets that were neither (non-IP, unsupported link type, or non-telemetry in telemetry mode).
    pub skipped: u64,
    pub records: u64,
    /// The file ends in the middle of a packet record that starts at this byte: what came
    /// before was read, the cut-off record was not (a capture copied or written while running).
    pub truncated_at: Option<u64>,
}

impl CaptureStats {
    /// `N packets (N telemetry datagrams, N raw packets, N skipped), N records`, and where the
    /// file is cut off if it is.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} packets ({} telemetry datagrams, {} raw packets, {} skipped), {} records",
            self.packets, self.telemetry_datagrams, self.raw_packets, self.skipped, self.records
        );
        if let Some(at) = self.truncated_at {
            s.push_str(&format!(", cut off mid-packet at byte {at}"));
        }
        s
    }

    /// The warning for a capture that ends mid-packet, if it does.
    pub fn truncation_warning(&self, name: &str) -> Option<String> {
        self.truncated_at.map(|at| {
            format!(
                "{name} ends in the middle of a packet record (at byte {at}): {} packets were read, the rest of the file is missing",
                self.packets
            )
        })
    }
}

/// Why a capture cannot be read, in words: where, and what is wrong there (`packets`: how many
/// packets were read before).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{name} is not a pcap or pcapng capture (it does not start like one); floodwall reads captures written by tcpdump, tshark or dumpcap")]
    NotACapture { name: String },
    #[error("{name} is too short to be a capture: it ends inside the file header")]
    HeaderCutOff { name: String },
    #[error("{name}: damaged at byte {offset}, {}: a record there claims to be larger than {} MiB", after(*packets), READ_BUFFER >> 20)]
    RecordTooLarge {
        name: String,
        offset: u64,
        packets: u64,
    },
    #[error("{name}: damaged at byte {offset}, {}: the record there is malformed (its length fields disagree)", after(*packets))]
    Malformed {
        name: String,
        offset: u64,
        packets: u64,
    },
    #[error("{name}: cannot read at byte {offset}, {}", after(*packets))]
    Read {
        name: String,
        offset: u64,
        packets: u64,
    },
}

/// `after packet N` (numbered from 1, as tshark numbers frames), or before the first.
fn after(packets: u64) -> String {
    match packets {
        0 => "before the first packet".into(),
        n => format!("after packet {n}"),
    }
}

/// Exporter address given to records made from raw packets: there was no exporter.
pub const RAW_CAPTURE_EXPORTER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

const READ_BUFFER: usize = 1 << 20;

/// Reads a whole capture file. Records are appended to `records`; `on_records` is called whenever
/// at least `flush_at` are buffered (and once at the end), and should drain the vector.
pub fn read_capture(
    path: &Path,
    mode: CaptureMode,
    decoder: &mut Decoder,
    records: &mut Vec<FlowRecord>,
    flush_at: usize,
    on_records: impl FnMut(&mut Vec<FlowRecord>) -> Result<()>,
) -> Result<CaptureStats> {
    let file =
        File::open(path).with_context(|| format!("cannot open capture {}", path.display()))?;
    read_capture_from(
        file,
        &path.display().to_string(),
        mode,
        decoder,
        records,
        flush_at,
        on_records,
    )
}

/// [`read_capture`] from any reader (a progress-reporting wrapper, say); `name` is for errors.
pub fn read_capture_from(
    input: impl Read + Send,
    name: &str,
    mode: CaptureMode,
    decoder: &mut Decoder,
    records: &mut Vec<FlowRecord>,
    flush_at: usize,
    mut on_records: impl FnMut(&mut Vec<FlowRecord>) -> Result<()>,
) -> Result<CaptureStats> {
    let name = name.to_string();
    let mut reader = match pcap_parser::create_reader(READ_BUFFER, BufReader::new(input)) {
        Ok(reader) => reader,
        Err(PcapError::Incomplete(_) | PcapError::UnexpectedEof | PcapError::Eof) => {
            return Err(CaptureError::HeaderCutOff { name }.into())
        }
        Err(_) => return Err(CaptureError::NotACapture { name }.into()),
    };
    let mut stats = CaptureStats::default();
    // Bytes consumed so far: where the next block starts, for errors.
    let mut position = 0u64;
    // pcapng: link type and time resolution per interface, in order of description blocks.
    let mut interfaces: Vec<(Linktype, u64, i64)> = Vec::new();
    let mut legacy: (Linktype, u64) = (Linktype::ETHERNET, 1_000_000);
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(header) => {
                        let nanos = matches!(header.magic_number, 0xa1b2_3c4d | 0x4d3c_b2a1);
                        legacy = (
                            header.network,
                            if nanos { 1_000_000_000 } else { 1_000_000 },
                        );
                    }
                    PcapBlockOwned::Legacy(frame) => {
                        let ts_ms = u64::from(frame.ts_sec) * 1000
                            + u64::from(frame.ts_usec) * 1000 / legacy.1;
                        let data = &frame.data[..(frame.caplen as usize).min(frame.data.len())];
                        handle_packet(
                            data,
                            frame.origlen,
                            legacy.0,
                            ts_ms,
                            mode,
                            decoder,
                            records,
                            &mut stats,
                        );
                    }
                    PcapBlockOwned::NG(Block::SectionHeader(_)) => interfaces.clear(),
                    PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                        let resolution = idb.ts_resolution().unwrap_or(1_000_000).max(1);
                        interfaces.push((idb.linktype, resolution, idb.ts_offset()));
                    }
                    PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                        let (linktype, resolution, ts_offset) = interfaces
                            .get(epb.if_id as usize)
                            .copied()
                            .unwrap_or((Linktype::ETHERNET, 1_000_000, 0));
                        let (secs, frac) = epb.decode_ts(ts_offset as u64, resolution);
                        let ts_ms = u64::from(secs) * 1000 + u64::from(frac) * 1000 / resolution;
                        let data = &epb.data[..(epb.caplen as usize).min(epb.data.len())];
                        handle_packet(
                            data,
                            epb.origlen,
                            linktype,
                            ts_ms,
                            mode,
                            decoder,
                            records,
                            &mut stats,
                        );
                    }
                    PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                        let linktype = interfaces.first().map_or(Linktype::ETHERNET, |i| i.0);
                        handle_packet(
                            spb.data,
                            spb.origlen,
                            linktype,
                            0,
                            mode,
                            decoder,
                            records,
                            &mut stats,
                        );
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
                position += offset as u64;
                if records.len() >= flush_at {
                    on_records(records)?;
                }
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => {
                if reader.refill().is_err() {
                    stats.truncated_at = Some(position);
                    break;
                }
                if reader.reader_exhausted() && reader.data().is_empty() {
                    break;
                }
                if reader.reader_exhausted() {
                    // Data left that can never complete: a cut-off last block.
                    stats.truncated_at = Some(position);
                    break;
                }
            }
            Err(PcapError::UnexpectedEof) => {
                stats.truncated_at = Some(position);
                break;
            }
            Err(e) => {
                let (offset, packets) = (position, stats.packets);
                // The parser's own error carries the raw bytes: never shown.
                return Err(match e {
                    PcapError::BufferTooSmall => CaptureError::RecordTooLarge {
                        name,
                        offset,
                        packets,
                    },
                    PcapError::ReadError => CaptureError::Read {
                        name,
                        offset,
                        packets,
                    },
                    _ => CaptureError::Malformed {
                        name,
                        offset,
                        packets,
                    },
                }
                .into());
            }
        }
    }
    on_records(records)?;
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
fn handle_packet(
    data: &[u8],
    orig_len: u32,
    linktype: Linktype,
    ts_ms: u64,
    mode: CaptureMode,
    decoder: &mut Decoder,
    records: &mut Vec<FlowRecord>,
    stats: &mut CaptureStats,
) {
    stats.packets += 1;
    let parsed = match get_packetdata(data, linktype, data.len()) {
        Some(PacketData::L2(frame)) => packet::parse_ethernet(frame).map(|h| (h, frame)),
        Some(PacketData::L3(ethertype, l3)) => {
            packet::parse_ethertype(ethertype, l3, 0).map(|h| (h, l3))
        }
        _ => {
            stats.skipped += 1;
            return;
        }
    };
    let Ok((headers, bytes)) = parsed else {
        stats.skipped += 1;
        return;
    };
    if mode != CaptureMode::Packets {
        if let Some(datagram) = telemetry_payload(&headers, bytes) {
            let before = records.len();
            // Decode errors are counted per exporter inside the decoder.
            let _ = decoder.decode(headers.src, ts_ms, datagram, records);
            stats.telemetry_datagrams += 1;
            stats.records += (records.len() - before) as u64;
            return;
        }
    }
    if mode == CaptureMode::Telemetry {
        stats.skipped += 1;
        return;
    }
    let mut record = FlowRecord::empty(RAW_CAPTURE_EXPORTER);
    headers.apply(&mut record);
    record.time_ms = ts_ms;
    record.packets = 1;
    record.bytes = u64::from(orig_len.max(data.len() as u32));
    records.push(record);
    stats.raw_packets += 1;
    stats.records += 1;
}

/// The UDP payload of a packet when it is a plausible telemetry datagram.
fn telemetry_payload<'a>(headers: &Headers, bytes: &'a [u8]) -> Option<&'a [u8]> {
    if headers.protocol != proto::UDP || headers.fragment {
        return None;
    }
    let payload = bytes.get(headers.payload_offset?..)?;
    looks_like_telemetry(payload).then_some(payload)
}

/// A cheap structural check, stricter than [`Protocol::detect`], so that an attack capture of
/// random UDP payloads is not mistaken for telemetry.
pub fn looks_like_telemetry(payload: &[u8]) -> bool {
    let u16_at = |i: usize| {
        payload
            .get(i..i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let u32_at = |i: usize| {
        payload
            .get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match Protocol::detect(payload) {
        // version 5, agent address type IPv4 or IPv6, a sample count that fits.
        Some(Protocol::SflowV5) => matches!(u32_at(4), Some(1 | 2)) && payload.len() >= 28,
        Some(Protocol::NetflowV5) => {
            matches!(u16_at(2), Some(count) if (1..=30).contains(&count) && payload.len() == 24 + 48 * count as usize)
        }
        // v9 header is 20 bytes, then flowsets of id 0/1 (templates) or >= 256 (data).
        Some(Protocol::NetflowV9) => {
            payload.len() >= 24
                && matches!(u16_at(20), Some(id) if id <= 1 || id >= 256)
                && matches!(u16_at(22), Some(len) if len >= 4 && len as usize <= payload.len() - 20)
        }
        // IPFIX carries its own message length.
        Some(Protocol::Ipfix) => u16_at(2) == Some(payload.len() as u16) && payload.len() >= 16,
        None => false,
    }
}

/// Writes a classic pcap (microsecond timestamps, Ethernet link type): the one writer behind the
/// benchmark captures, the scenario simulator and the integration tests' crafted captures.
pub struct PcapWriter<W: Write> {
    out: W,
}

/// Where captured telemetry datagrams go: the collector address the frames are addressed to.
const COLLECTOR: [u8; 4] = [192, 0, 2, 200];

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?; // version 2.4
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?; // GMT offset
        out.write_all(&0u32.to_le_bytes())?; // timestamp accuracy
        out.write_all(&65535u32.to_le_bytes())?; // snap length
        out.write_all(&1u32.to_le_bytes())?; // LINKTYPE_ETHERNET
        Ok(PcapWriter { out })
    }

    /// Writes one captured frame seen at `ts_us` (Unix microseconds).
    pub fn frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        self.record_header(ts_us, frame.len())?;
        self.out.write_all(frame)
    }

    /// Writes `datagram` as the payload of an Ethernet/IPv4/UDP frame from `exporter`:`src_port`
    /// to 192.0.2.200:`dst_port`, as a collector's capture would show it (checksums are zero:
    /// nothing reads them).
    pub fn udp(
        &mut self,
        ts_us: u64,
        exporter: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
        datagram: &[u8],
    ) -> io::Result<()> {
        let udp_len = u16::try_from(8 + datagram.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "datagram too long"))?;
        let ip_len = udp_len.saturating_add(20);
        self.record_header(ts_us, 14 + usize::from(ip_len))?;
        let mut head = [0u8; 42];
        head[..14].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
        head[14..16].copy_from_slice(&[0x45, 0]);
        head[16..18].copy_from_slice(&ip_len.to_be_bytes());
        head[18..24].copy_from_slice(&[0, 0, 0x40, 0, 64, 17]);
        head[26..30].copy_from_slice(&exporter.octets());
        head[30..34].copy_from_slice(&COLLECTOR);
        head[34..36].copy_from_slice(&src_port.to_be_bytes());
        head[36..38].copy_from_slice(&dst_port.to_be_bytes());
        head[38..40].copy_from_slice(&udp_len.to_be_bytes());
        self.out.write_all(&head)?;
        self.out.write_all(datagram)
    }

    fn record_header(&mut self, ts_us: u64, len: usize) -> io::Result<()> {
        let len = u32::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        self.out
            .write_all(&((ts_us / 1_000_000) as u32).to_le_bytes())?;
        self.out
            .write_all(&((ts_us % 1_000_000) as u32).to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())?;
        self.out.write_all(&len.to_le_bytes())
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the writer writes, the reader reads back: the datagram, its exporter and its time.
    #[test]
    fn written_udp_frames_read_back_as_telemetry() {
        use floodwall_wire::sflow::DatagramRepr;
        let datagram = DatagramRepr {
            agent: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)),
            sub_agent_id: 0,
            sequence: 1,
            uptime_ms: 0,
            samples: Vec::new(),
        }
        .to_vec();
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        writer
            .udp(
                1_760_000_000_250_000,
                Ipv4Addr::new(192, 0, 2, 7),
                50000,
                6343,
                &datagram,
            )
            .unwrap();
        let bytes = writer.finish().unwrap();
        let mut decoder = Decoder::default();
        let mut records = Vec::new();
        let stats = read_capture_from(
            &bytes[..],
            "memory",
            CaptureMode::Telemetry,
            &mut decoder,
            &mut records,
            1,
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!((stats.packets, stats.telemetry_datagrams), (1, 1));
        let exporter = decoder.exporter(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
        assert_eq!(exporter.map(|c| c.datagrams), Some(1));
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<CaptureStats> {
        let mut decoder = Decoder::default();
        let mut records = Vec::new();
        read_capture_from(
            bytes,
            "c.pcap",
            CaptureMode::Auto,
            &mut decoder,
            &mut records,
            1024,
            |r| {
                r.clear();
                Ok(())
            },
        )
    }

    fn legacy(frames: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [
            0xa1b2_c3d4u32.to_le_bytes().to_vec(),
            vec![2, 0, 4, 0],
            vec![0; 8],
        ] {
            out.extend(v);
        }
        out.extend(65535u32.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        for frame in frames {
            out.extend(1_700_000_000u32.to_le_bytes());
            out.extend(0u32.to_le_bytes());
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend_from_slice(frame);
        }
        out
    }

    fn pcapng(blocks: &[(u32, Vec<u8>, Option<u32>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, body, trailer) in blocks {
            let len = 12 + body.len() as u32;
            out.extend(kind.to_le_bytes());
            out.extend(len.to_le_bytes());
            out.extend(body);
            out.extend(trailer.unwrap_or(len).to_le_bytes());
        }
        out
    }

    /// Errors say what is wrong and where, in a line: never the parser's raw bytes (megabytes
    /// of `NomError([1, 1, …])`) nor its names (`Incomplete(N)`, `BufferTooSmall`).
    #[test]
    fn capture_errors_are_short_and_say_where() {
        let frame = [0u8; 60];
        let shb = (
            0x0A0D_0D0Au32,
            {
                let mut b = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
                b.extend([1, 0, 0, 0]);
                b.extend((-1i64).to_le_bytes());
                b
            },
            None,
        );
        let idb = (1u32, vec![1, 0, 0, 0, 0xff, 0xff, 0, 0], None);
        let mut huge = legacy(&[&frame]);
        huge.extend([0u8; 8]);
        huge.extend(50_000_000u32.to_le_bytes());
        huge.extend(50_000_000u32.to_le_bytes());
        huge.extend([0u8; 64]);
        let mut junk_block = pcapng(&[shb.clone(), idb.clone()]);
        junk_block.extend(vec![1u8; 3 << 20]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                vec![1u8; 3 << 20],
                "c.pcap is not a pcap or pcapng capture (it does not start like one); floodwall reads captures written by tcpdump, tshark or dumpcap",
            ),
            (
                legacy(&[])[..10].to_vec(),
                "c.pcap is too short to be a capture: it ends inside the file header",
            ),
            (
                huge,
                "c.pcap: damaged at byte 100, after packet 1: a record there claims to be larger than 1 MiB",
            ),
            (
                junk_block,
                "c.pcap: damaged at byte 48, before the first packet: a record there claims to be larger than 1 MiB",
            ),
            (
                pcapng(&[shb, idb, (6, vec![0; 20], Some(99))]),
                "c.pcap: damaged at byte 48, before the first packet: the record there is malformed (its length fields disagree)",
            ),
        ];
        for (bytes, want) in cases {
            let error = format!("{:#}", read(&bytes).unwrap_err());
            assert_eq!(error, want);
        }
    }

    /// A capture cut in the middle of a packet is read up to the cut, which is reported with
    /// where it is.
    #[test]
    fn a_cut_off_capture_reports_where_and_how_much_was_read() {
        let frame = [0u8; 60];
        let whole = legacy(&[&frame, &frame, &frame]);
        let stats = read(&whole[..whole.len() - 10]).unwrap();
        assert_eq!(stats.packets, 2);
        assert_eq!(stats.truncated_at, Some(24 + 2 * (16 + 60)));
        assert_eq!(
            stats.truncation_warning("c.pcap").unwrap(),
            "c.pcap ends in the middle of a packet record (at byte 176): 2 packets were read, the rest of the file is missing"
        );
        assert_eq!(read(&whole).unwrap().truncated_at, None);
    }
}
