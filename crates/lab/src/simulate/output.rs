//! Sampled packets → telemetry datagrams, with the wire crate's own encoders.
//!
//! sFlow: one flow sample per sampled packet, carrying its first 128 bytes as a raw IPv4 header
//! record (header protocol 11, so the frame length is the IP packet's length and sFlow, NetFlow
//! and IPFIX account the same bytes). NetFlow v9 / IPFIX: sampled packets aggregated into flow
//! records per (src, dst, protocol, ports) and export interval (1 s, or sooner when the cache is
//! full), the sampling interval announced in options data with the templates.
//!
//! Buffers are reused: no allocation per sampled packet.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use anyhow::Result;
use floodwall_wire::export::{ExportClock, Flow, MessageWriter, TemplateRepr};
use floodwall_wire::packet::{internet_checksum, PacketRepr, TransportRepr};
use floodwall_wire::sflow::{
    header_protocol, DatagramRepr, FlowDataRepr, FlowSampleRepr, SampleRepr,
};
use floodwall_wire::template::Flavor;

use super::model::{Packet, SLICE_MS};
use super::scenario::Format;

/// Where datagrams go: a capture file, a paced UDP socket, or a test's decoder.
pub trait Sink {
    /// One telemetry datagram sent at `ts_us` (Unix microseconds).
    fn datagram(&mut self, ts_us: u64, bytes: &[u8]) -> Result<()>;
}

/// The UDP port telemetry of each format is sent to, as exporters default.
pub fn collector_port(format: Format) -> u16 {
    match format {
        Format::Sflow => 6343,
        Format::Netflow9 => 2055,
        Format::Ipfix => 4739,
    }
}

/// Bytes of each sampled packet an sFlow agent copies (the usual default).
const HEADER_BYTES: usize = 128;
/// Flow samples per sFlow datagram: 7 × ~192 bytes fits a 1500-byte MTU.
const SAMPLES_PER_DATAGRAM: usize = 7;
/// The exporter booted a day before the scenario (flow times never precede boot).
const UPTIME_AT_START_MS: u64 = 86_400_000;
/// Flow records per NetFlow v9 / IPFIX data datagram (34- / 55-byte records in ~1400 bytes).
const V9_RECORDS: usize = 40;
const IPFIX_RECORDS: usize = 25;
/// Flows held before the cache is exported early (a router's cache is bounded too).
const FLOW_CACHE: usize = 65_536;
/// Templates and sampling options are re-sent this often, as exporters do.
const TEMPLATE_EVERY_MS: u64 = 10_000;
const TEMPLATE_ID: u16 = 256;
const OPTIONS_ID: u16 = 257;
/// ifIndex of the uplink (where incoming traffic enters) and of the customer side.
const IF_UPLINK: u32 = 1;
const IF_CUSTOMERS: u32 = 2;

/// A telemetry encoder: packets in, datagrams out to a sink.
pub enum Encoder {
    Sflow(SflowEncoder),
    Template(TemplateEncoder),
}

impl Encoder {
    pub fn new(format: Format, exporter: Ipv4Addr, sampling: u32, start_ms: u64) -> Self {
        match format {
            Format::Sflow => Encoder::Sflow(SflowEncoder::new(exporter, sampling, start_ms)),
            Format::Netflow9 => {
                Encoder::Template(TemplateEncoder::new(Flavor::NetflowV9, sampling, start_ms))
            }
            Format::Ipfix => {
                Encoder::Template(TemplateEncoder::new(Flavor::Ipfix, sampling, start_ms))
            }
        }
    }

    pub fn packet(&mut self, p: &Packet, sink: &mut dyn Sink) -> Result<()> {
        match self {
            Encoder::Sflow(e) => e.packet(p, sink),
            Encoder::Template(e) => e.packet(p, sink),
        }
    }

    /// The end of a generator slice at `now_us`: nothing is held across it.
    pub fn slice_end(&mut self, now_us: u64, sink: &mut dyn Sink) -> Result<()> {
        match self {
            Encoder::Sflow(e) => e.flush(sink),
            Encoder::Template(e) => {
                // Flows are exported at each second's end (the active timeout of a 1-s cache).
                if (now_us / 1000).is_multiple_of(1000) {
                    e.export(now_us / 1000, sink)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Datagrams written so far.
    pub fn datagrams(&self) -> u64 {
        match self {
            Encoder::Sflow(e) => u64::from(e.datagram_seq),
            Encoder::Template(e) => e.datagrams,
        }
    }
}

pub struct SflowEncoder {
    repr: DatagramRepr,
    /// Samples filled in `repr.samples` (the rest of the pool is parked in `spare`).
    filled: usize,
    spare: Vec<SampleRepr>,
    sampling: u32,
    boot_ms: u64,
    /// Flow samples so far per data source (uplink, customer interface): sFlow numbers samples
    /// and counts the sample pool per source id, not per agent.
    sample_seq: [u32; 2],
    datagram_seq: u32,
    last_us: u64,
    buf: Vec<u8>,
}

impl SflowEncoder {
    fn new(exporter: Ipv4Addr, sampling: u32, start_ms: u64) -> Self {
        let sample = SampleRepr::Flow(FlowSampleRepr {
            expanded: false,
            sequence: 0,
            source_id_type: 0,
            source_id_index: IF_UPLINK,
            sampling_rate: sampling,
            sample_pool: 0,
            drops: 0,
            input: IF_UPLINK,
            output: IF_CUSTOMERS,
            records: vec![FlowDataRepr::RawHeader {
                protocol: header_protocol::IPV4,
                frame_length: 0,
                stripped: 0,
                header: Vec::with_capacity(HEADER_BYTES),
            }],
        });
        SflowEncoder {
            repr: DatagramRepr {
                agent: IpAddr::V4(exporter),
                sub_agent_id: 0,
                sequence: 0,
                uptime_ms: 0,
                samples: vec![sample; SAMPLES_PER_DATAGRAM],
            },
            filled: 0,
            spare: Vec::with_capacity(SAMPLES_PER_DATAGRAM),
            sampling,
            boot_ms: start_ms.saturating_sub(UPTIME_AT_START_MS),
            sample_seq: [0; 2],
            datagram_seq: 0,
            last_us: 0,
            buf: Vec::with_capacity(1500),
        }
    }

    fn packet(&mut self, p: &Packet, sink: &mut dyn Sink) -> Result<()> {
        let seq = &mut self.sample_seq[usize::from(p.outgoing)];
        *seq = seq.wrapping_add(1);
        let seq = *seq;
        let Some(SampleRepr::Flow(sample)) = self.repr.samples.get_mut(self.filled) else {
            return Ok(());
        };
        sample.sequence = seq;
        sample.sample_pool = seq.wrapping_mul(self.sampling);
        (sample.input, sample.output) = if p.outgoing {
            (IF_CUSTOMERS, IF_UPLINK)
        } else {
            (IF_UPLINK, IF_CUSTOMERS)
        };
        sample.source_id_index = sample.input;
        if let Some(FlowDataRepr::RawHeader {
            frame_length,
            header,
            ..
        }) = sample.records.first_mut()
        {
            *frame_length = u32::from(p.size);
            header.clear();
            write_header(p, header);
        }
        self.filled += 1;
        self.last_us = p.time_us;
        if self.filled == SAMPLES_PER_DATAGRAM {
            self.flush(sink)?;
        }
        Ok(())
    }

    /// Sends the filled samples as one datagram, stamped with the last sample's time.
    fn flush(&mut self, sink: &mut dyn Sink) -> Result<()> {
        if self.filled == 0 {
            return Ok(());
        }
        while self.repr.samples.len() > self.filled {
            if let Some(s) = self.repr.samples.pop() {
                self.spare.push(s);
            }
        }
        self.datagram_seq = self.datagram_seq.wrapping_add(1);
        self.repr.sequence = self.datagram_seq;
        self.repr.uptime_ms = (self.last_us / 1000).saturating_sub(self.boot_ms) as u32;
        self.buf.clear();
        self.repr.emit(&mut self.buf);
        let result = sink.datagram(self.last_us, &self.buf);
        self.repr.samples.append(&mut self.spare);
        self.filled = 0;
        result
    }
}

/// Packet `p` as an Ethernet frame carrying the first [`HEADER_BYTES`] of its IPv4 packet (the
/// IP total length says its real size): for raw-packet captures, where each frame is one 1:1
/// record (`floodwall replay --capture-mode packets`). `scratch` is reused.
pub fn write_frame(p: &Packet, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00]);
    scratch.clear();
    write_header(p, scratch);
    out.extend_from_slice(scratch);
}

/// The first [`HEADER_BYTES`] of packet `p` as an IPv4 packet, its total length saying the real
/// size. GRE packets carry the Mirai `greip` / `greeth` inner headers.
fn write_header(p: &Packet, out: &mut Vec<u8>) {
    let transport = match p.protocol {
        6 => TransportRepr::Tcp {
            src_port: p.src_port,
            dst_port: p.dst_port,
            flags: p.tcp_flags,
        },
        17 => TransportRepr::Udp {
            src_port: p.src_port,
            dst_port: p.dst_port,
        },
        1 => TransportRepr::Icmp {
            msg_type: (p.dst_port >> 8) as u8,
            code: p.dst_port as u8,
        },
        protocol => TransportRepr::Other { protocol },
    };
    let mut repr = PacketRepr {
        ethernet: None,
        src: IpAddr::V4(p.src),
        dst: IpAddr::V4(p.dst),
        ttl: p.ttl,
        transport,
        payload_len: 0,
    };
    let headers = repr.buffer_len();
    repr.payload_len = usize::from(p.size)
        .saturating_sub(headers)
        .min(HEADER_BYTES.saturating_sub(headers));
    repr.emit(out);
    if p.protocol == 47 {
        write_gre_payload(p, &mut out[headers..]);
    }
    // Mirai's scanner sets the sequence number to the destination address (`tcph->seq =
    // iph->daddr`): what tells its probes from other SYNs in a sampled header.
    if p.seq_dst && p.protocol == 6 {
        if let Some(seq) = out.get_mut(24..28) {
            seq.copy_from_slice(&p.dst.octets());
        }
    }
    // The header says the packet's real length, not the bytes copied.
    if out.len() >= 20 {
        out[2..4].copy_from_slice(&p.size.max(headers as u16).to_be_bytes());
        out[10..12].copy_from_slice(&[0, 0]);
        let sum = internet_checksum(&out[..20]);
        out[10..12].copy_from_slice(&sum.to_be_bytes());
    }
}

/// GRE (no options) + inner [Ethernet +] IPv4 + UDP, as much as fits.
fn write_gre_payload(p: &Packet, payload: &mut [u8]) {
    let mut inner = [0u8; 4 + 14 + 28];
    let ethertype: u16 = if p.gre_eth { 0x6558 } else { 0x0800 };
    inner[2..4].copy_from_slice(&ethertype.to_be_bytes());
    let mut at = 4;
    if p.gre_eth {
        inner[at..at + 14].copy_from_slice(&[2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00]);
        at += 14;
    }
    let inner_len = usize::from(p.size).saturating_sub(20 + at) as u16;
    inner[at] = 0x45;
    inner[at + 2..at + 4].copy_from_slice(&inner_len.to_be_bytes());
    inner[at + 8] = 64;
    inner[at + 9] = 17;
    inner[at + 12..at + 16].copy_from_slice(&p.src.octets());
    inner[at + 16..at + 20].copy_from_slice(&p.dst.octets());
    // Mirai randomises the inner ports; the outer packet has none, so reuse the time's bits.
    inner[at + 20..at + 22].copy_from_slice(&((p.time_us as u16) | 1024).to_be_bytes());
    inner[at + 22..at + 24].copy_from_slice(&((p.time_us >> 16) as u16 | 1).to_be_bytes());
    inner[at + 24..at + 26].copy_from_slice(&inner_len.saturating_sub(20).to_be_bytes());
    let n = payload.len().min(at + 28);
    payload[..n].copy_from_slice(&inner[..n]);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    src_port: u16,
    dst_port: u16,
}

pub struct TemplateEncoder {
    flavor: Flavor,
    sampling: u32,
    boot_ms: u64,
    template: TemplateRepr,
    options: TemplateRepr,
    /// Flows of the current interval in first-seen order (deterministic export order).
    flows: Vec<Flow>,
    index: HashMap<FlowKey, usize>,
    sequence: u32,
    datagrams: u64,
    next_templates_ms: u64,
    last_ms: u64,
}

impl TemplateEncoder {
    fn new(flavor: Flavor, sampling: u32, start_ms: u64) -> Self {
        TemplateEncoder {
            flavor,
            sampling,
            boot_ms: start_ms.saturating_sub(UPTIME_AT_START_MS),
            template: TemplateRepr::standard(flavor, TEMPLATE_ID, false),
            options: TemplateRepr::sampling_options(flavor, OPTIONS_ID),
            flows: Vec::with_capacity(FLOW_CACHE),
            index: HashMap::with_capacity(FLOW_CACHE),
            sequence: 0,
            datagrams: 0,
            next_templates_ms: start_ms,
            last_ms: start_ms,
        }
    }

    fn packet(&mut self, p: &Packet, sink: &mut dyn Sink) -> Result<()> {
        let ms = p.time_us / 1000;
        self.last_ms = ms;
        let key = FlowKey {
            src: p.src,
            dst: p.dst,
            protocol: p.protocol,
            src_port: p.src_port,
            dst_port: p.dst_port,
        };
        if let Some(&i) = self.index.get(&key) {
            let flow = &mut self.flows[i];
            flow.packets += 1;
            flow.bytes += u64::from(p.size);
            flow.tcp_flags |= p.tcp_flags;
            flow.end_ms = ms;
        } else {
            if self.flows.len() >= FLOW_CACHE {
                // Cache full: export now, as a router does, stamped with this moment.
                self.export(ms + 1, sink)?;
            }
            let (in_if, out_if) = if p.outgoing {
                (IF_CUSTOMERS, IF_UPLINK)
            } else {
                (IF_UPLINK, IF_CUSTOMERS)
            };
            self.index.insert(key, self.flows.len());
            self.flows.push(Flow {
                src: IpAddr::V4(p.src),
                dst: IpAddr::V4(p.dst),
                src_port: p.src_port,
                dst_port: p.dst_port,
                protocol: p.protocol,
                tcp_flags: p.tcp_flags,
                bytes: u64::from(p.size),
                packets: 1,
                in_if,
                out_if,
                start_ms: ms,
                end_ms: ms,
            });
        }
        Ok(())
    }

    fn clock(&self, export_ms: u64) -> ExportClock {
        // sysUpTime from the whole second the header carries, so that boot time (and with it
        // every v9 flow time) comes out exact.
        let unix_secs = export_ms / 1000;
        ExportClock {
            unix_secs: u32::try_from(unix_secs).unwrap_or(u32::MAX),
            sys_uptime_ms: (unix_secs * 1000).saturating_sub(self.boot_ms) as u32,
        }
    }

    fn next_sequence(&mut self, records: usize) -> u32 {
        // NetFlow v9 numbers export packets (RFC 3954 §5.1); IPFIX numbers the data records
        // sent before the message (RFC 7011 §3.1), options data records included.
        let sequence = self.sequence;
        self.sequence = match self.flavor {
            Flavor::NetflowV9 => sequence.wrapping_add(1),
            Flavor::Ipfix => sequence.wrapping_add(records as u32),
        };
        sequence
    }

    /// Exports every cached flow at `export_ms` (templates first when due).
    fn export(&mut self, export_ms: u64, sink: &mut dyn Sink) -> Result<()> {
        let clock = self.clock(export_ms);
        if export_ms >= self.next_templates_ms {
            // The sampling options record is a data record: counting it as none made every
            // later IPFIX message look one record behind, a sequence reset to the decoder.
            let sequence = self.next_sequence(1);
            let bytes = MessageWriter::new(self.flavor, clock, sequence, 0)
                .templates(&[&self.template])
                .templates(&[&self.options])
                .sampling(&self.options, self.sampling)
                .finish();
            sink.datagram(export_ms * 1000, &bytes)?;
            self.datagrams += 1;
            self.next_templates_ms = export_ms + TEMPLATE_EVERY_MS;
        }
        let per_datagram = match self.flavor {
            Flavor::NetflowV9 => V9_RECORDS,
            Flavor::Ipfix => IPFIX_RECORDS,
        };
        let flows = std::mem::take(&mut self.flows);
        for chunk in flows.chunks(per_datagram) {
            let sequence = self.next_sequence(chunk.len());
            let bytes = MessageWriter::new(self.flavor, clock, sequence, 0)
                .flows(&self.template, chunk)
                .finish();
            sink.datagram(export_ms * 1000, &bytes)?;
            self.datagrams += 1;
        }
        self.flows = flows;
        self.flows.clear();
        self.index.clear();
        Ok(())
    }
}

/// Milliseconds of one generator slice (for callers pacing by slice).
pub const SLICE_US: u64 = SLICE_MS * 1000;
