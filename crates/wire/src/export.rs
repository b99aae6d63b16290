//! The exporter side of NetFlow v9 and IPFIX: builds messages with template, options template,
//! options data (sampling interval) and data sets, for golden tests and the scenario simulator.
//!
//! Values are written at whatever length the template gives a field (big-endian, truncated), so
//! reduced-size encodings, enterprise fields and variable-length fields can all be produced.

use std::net::IpAddr;

use crate::template::{ie, FieldSpec, Flavor, SET_HEADER_LEN, VARIABLE_LENGTH};
use crate::{ipfix, netflow_v9};

/// A flow as an exporter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub tcp_flags: u8,
    /// Unscaled (sampled) counts.
    pub bytes: u64,
    pub packets: u64,
    pub in_if: u32,
    pub out_if: u32,
    /// Unix milliseconds of the first and last packet.
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The exporter's clock at export time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportClock {
    pub unix_secs: u32,
    /// Milliseconds since the exporter booted (NetFlow v9 header; sysUpTime timestamps).
    pub sys_uptime_ms: u32,
}

impl ExportClock {
    /// Unix milliseconds at which sysUpTime was 0.
    pub fn boot_ms(&self) -> u64 {
        (u64::from(self.unix_secs) * 1000).saturating_sub(u64::from(self.sys_uptime_ms))
    }

    fn uptime_at(&self, unix_ms: u64) -> u64 {
        u64::from(unix_ms.wrapping_sub(self.boot_ms()) as u32)
    }
}

/// A template as plain values: scope fields make it an options template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRepr {
    pub id: u16,
    pub scope: Vec<FieldSpec>,
    pub fields: Vec<FieldSpec>,
}

/// Content written into the variable-length and enterprise fields of [`TemplateRepr::exotic`].
const INTERFACE_NAME: &[u8] = b"xe-0/0/0";
const JUNIPER_PEN: u32 = 2636;

impl TemplateRepr {
    /// A data template with addresses of one family, ports, protocol, TCP flags, bytes, packets,
    /// interfaces and start/end times (sysUpTime for v9, Unix ms for IPFIX).
    pub fn standard(flavor: Flavor, id: u16, ipv6: bool) -> Self {
        let v9 = flavor == Flavor::NetflowV9;
        let (src, dst, addr_len) = if ipv6 {
            (ie::IPV6_SRC_ADDR, ie::IPV6_DST_ADDR, 16)
        } else {
            (ie::IPV4_SRC_ADDR, ie::IPV4_DST_ADDR, 4)
        };
        let counter_len = if v9 { 4 } else { 8 };
        let mut fields = vec![
            FieldSpec::new(src, addr_len),
            FieldSpec::new(dst, addr_len),
            FieldSpec::new(ie::L4_SRC_PORT, 2),
            FieldSpec::new(ie::L4_DST_PORT, 2),
            FieldSpec::new(ie::PROTOCOL, 1),
            FieldSpec::new(ie::TCP_FLAGS, if v9 { 1 } else { 2 }),
            FieldSpec::new(ie::OCTET_DELTA_COUNT, counter_len),
            FieldSpec::new(ie::PACKET_DELTA_COUNT, counter_len),
            FieldSpec::new(ie::INPUT_SNMP, if v9 { 2 } else { 4 }),
            FieldSpec::new(ie::OUTPUT_SNMP, if v9 { 2 } else { 4 }),
        ];
        if v9 {
            fields.push(FieldSpec::new(ie::FIRST_SWITCHED, 4));
            fields.push(FieldSpec::new(ie::LAST_SWITCHED, 4));
        } else {
            fields.push(FieldSpec::new(ie::FLOW_START_MILLISECONDS, 8));
            fields.push(FieldSpec::new(ie::FLOW_END_MILLISECONDS, 8));
        }
        TemplateRepr {
            id,
            scope: Vec::new(),
            fields,
        }
    }

    /// The IPFIX IPv4 standard template plus an enterprise-specific field, a variable-length
    /// interfaceName and a variable-length enterprise field: all must be skipped by length.
    pub fn exotic(id: u16) -> Self {
        let mut template = Self::standard(Flavor::Ipfix, id, false);
        let enterprise = |id, length| FieldSpec {
            id,
            length,
            enterprise: Some(JUNIPER_PEN),
        };
        template.fields.insert(2, enterprise(1, 4));
        template
            .fields
            .insert(5, FieldSpec::new(ie::INTERFACE_NAME, VARIABLE_LENGTH));
        template.fields.push(enterprise(2, VARIABLE_LENGTH));
        template
    }

    /// An options template whose data carries the sampling interval (and, for IPFIX, the
    /// exporter's systemInitTimeMilliseconds).
    pub fn sampling_options(flavor: Flavor, id: u16) -> Self {
        match flavor {
            Flavor::NetflowV9 => TemplateRepr {
                id,
                scope: vec![FieldSpec::new(ie::V9_SCOPE_SYSTEM, 4)],
                fields: vec![FieldSpec::new(ie::SAMPLING_INTERVAL, 4)],
            },
            Flavor::Ipfix => TemplateRepr {
                id,
                scope: vec![FieldSpec::new(ie::OBSERVATION_DOMAIN_ID, 4)],
                fields: vec![
                    FieldSpec::new(ie::SAMPLING_INTERVAL, 4),
                    FieldSpec::new(ie::SYSTEM_INIT_TIME_MILLISECONDS, 8),
                ],
            },
        }
    }

    pub fn is_options(&self) -> bool {
        !self.scope.is_empty()
    }

    /// Appends the template record (without set header).
    pub fn emit(&self, flavor: Flavor, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.id.to_be_bytes());
        let count = self.scope.len() + self.fields.len();
        match (flavor, self.is_options()) {
            (_, false) => buf.extend_from_slice(&(count as u16).to_be_bytes()),
            (Flavor::Ipfix, true) => {
                buf.extend_from_slice(&(count as u16).to_be_bytes());
                buf.extend_from_slice(&(self.scope.len() as u16).to_be_bytes());
            }
            (Flavor::NetflowV9, true) => {
                buf.extend_from_slice(&((self.scope.len() * 4) as u16).to_be_bytes());
                buf.extend_from_slice(&((self.fields.len() * 4) as u16).to_be_bytes());
            }
        }
        for spec in self.scope.iter().chain(&self.fields) {
            spec.emit(buf);
        }
    }
}

/// Builds one NetFlow v9 export packet or IPFIX message, set by set.
#[derive(Debug)]
pub struct MessageWriter {
    flavor: Flavor,
    clock: ExportClock,
    domain: u32,
    buf: Vec<u8>,
    /// Records written, for the v9 header count.
    records: u16,
}

impl MessageWriter {
    pub fn new(flavor: Flavor, clock: ExportClock, sequence: u32, domain: u32) -> Self {
        let mut buf = Vec::with_capacity(1500);
        match flavor {
            Flavor::NetflowV9 => netflow_v9::HeaderRepr {
                count: 0,
                sys_uptime: clock.sys_uptime_ms,
                unix_secs: clock.unix_secs,
                sequence,
                source_id: domain,
            }
            .emit(&mut buf),
            Flavor::Ipfix => ipfix::HeaderRepr {
                length: 0,
                export_time: clock.unix_secs,
                sequence,
                domain_id: domain,
            }
            .emit(&mut buf),
        }
        MessageWriter {
            flavor,
            clock,
            domain,
            buf,
            records: 0,
        }
    }

    /// Writes `templates`: data templates in a template set, options templates in an options
    /// template set (each set only if it has members).
    pub fn templates(&mut self, templates: &[&TemplateRepr]) -> &mut Self {
        for (options, set_id) in [
            (false, self.flavor.template_set_id()),
            (true, self.flavor.options_template_set_id()),
        ] {
            let mut members = templates
                .iter()
                .filter(|t| t.is_options() == options)
                .peekable();
            if members.peek().is_none() {
                continue;
            }
            let start = self.begin_set(set_id);
            for template in members {
                template.emit(self.flavor, &mut self.buf);
                self.records = self.records.saturating_add(1);
            }
            self.end_set(start);
        }
        self
    }

    /// IPFIX template withdrawal (2 / 3 withdraw all templates / options templates).
    pub fn withdrawal(&mut self, template_id: u16, options: bool) -> &mut Self {
        let set_id = if options {
            self.flavor.options_template_set_id()
        } else {
            self.flavor.template_set_id()
        };
        let start = self.begin_set(set_id);
        self.buf.extend_from_slice(&template_id.to_be_bytes());
        self.buf.extend_from_slice(&0u16.to_be_bytes());
        self.end_set(start);
        self
    }

    /// Writes a data set of `flows` in the layout of `template`.
    pub fn flows(&mut self, template: &TemplateRepr, flows: &[Flow]) -> &mut Self {
        let start = self.begin_set(template.id);
        for flow in flows {
            for spec in &template.fields {
                self.field(
                    spec,
                    flow_value(spec.id, flow, &self.clock),
                    flow_address(spec, flow),
                );
            }
            self.records = self.records.saturating_add(1);
        }
        self.end_set(start);
        self
    }

    /// Writes one options data record of a [`TemplateRepr::sampling_options`] template.
    pub fn sampling(&mut self, template: &TemplateRepr, rate: u32) -> &mut Self {
        let start = self.begin_set(template.id);
        for spec in &template.scope {
            let value = if spec.id == ie::OBSERVATION_DOMAIN_ID {
                u64::from(self.domain)
            } else {
                0
            };
            self.field(spec, value, None);
        }
        for spec in &template.fields {
            let value = match spec.id {
                ie::SAMPLING_INTERVAL | ie::FLOW_SAMPLER_RANDOM_INTERVAL => u64::from(rate),
                ie::SYSTEM_INIT_TIME_MILLISECONDS => self.clock.boot_ms(),
                _ => 0,
            };
            self.field(spec, value, None);
        }
        self.records = self.records.saturating_add(1);
        self.end_set(start);
        self
    }

    /// Writes a set with arbitrary content (hostile-input tests).
    pub fn raw_set(&mut self, set_id: u16, body: &[u8]) -> &mut Self {
        let start = self.begin_set(set_id);
        self.buf.extend_from_slice(body);
        self.end_set(start);
        self
    }

    /// Patches the header (v9 record count / IPFIX length) and returns the message.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.buf);
        let patch = match self.flavor {
            Flavor::NetflowV9 => self.records,
            Flavor::Ipfix => u16::try_from(buf.len()).unwrap_or(u16::MAX),
        };
        if let Some(slot) = buf.get_mut(2..4) {
            slot.copy_from_slice(&patch.to_be_bytes());
        }
        buf
    }

    fn begin_set(&mut self, set_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&set_id.to_be_bytes());
        self.buf.extend_from_slice(&[0, 0]);
        start
    }

    /// Pads the set to 4 bytes (as v9 requires and IPFIX allows) and writes its length.
    fn end_set(&mut self, start: usize) {
        while !(self.buf.len() - start).is_multiple_of(4) {
            self.buf.push(0);
        }
        let len = u16::try_from(self.buf.len() - start).unwrap_or(u16::MAX);
        if let Some(slot) = self.buf.get_mut(start + 2..start + SET_HEADER_LEN) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
    }

    fn field(&mut self, spec: &FieldSpec, value: u64, address: Option<IpAddr>) {
        if spec.length == VARIABLE_LENGTH && self.flavor == Flavor::Ipfix {
            self.buf.push(INTERFACE_NAME.len() as u8);
            self.buf.extend_from_slice(INTERFACE_NAME);
            return;
        }
        match address {
            Some(IpAddr::V4(ip)) if spec.length == 4 => self.buf.extend_from_slice(&ip.octets()),
            Some(IpAddr::V6(ip)) if spec.length == 16 => self.buf.extend_from_slice(&ip.octets()),
            _ => {
                let value = if spec.enterprise.is_some() { 0 } else { value };
                for byte in (0..u32::from(spec.length)).rev() {
                    self.buf
                        .push(value.checked_shr(8 * byte).unwrap_or(0) as u8);
                }
            }
        }
    }
}

fn flow_address(spec: &FieldSpec, flow: &Flow) -> Option<IpAddr> {
    match (spec.enterprise, spec.id) {
        (None, ie::IPV4_SRC_ADDR | ie::IPV6_SRC_ADDR) => Some(flow.src),
        (None, ie::IPV4_DST_ADDR | ie::IPV6_DST_ADDR) => Some(flow.dst),
        _ => None,
    }
}

fn flow_value(id: u16, flow: &Flow, clock: &ExportClock) -> u64 {
    match id {
        ie::OCTET_DELTA_COUNT | ie::OUT_BYTES | ie::OCTET_TOTAL_COUNT => flow.bytes,
        ie::PACKET_DELTA_COUNT | ie::OUT_PKTS | ie::PACKET_TOTAL_COUNT => flow.packets,
        ie::PROTOCOL => u64::from(flow.protocol),
        ie::TCP_FLAGS => u64::from(flow.tcp_flags),
        ie::L4_SRC_PORT => u64::from(flow.src_port),
        ie::L4_DST_PORT => u64::from(flow.dst_port),
        ie::INPUT_SNMP => u64::from(flow.in_if),
        ie::OUTPUT_SNMP => u64::from(flow.out_if),
        ie::FIRST_SWITCHED => clock.uptime_at(flow.start_ms),
        ie::LAST_SWITCHED => clock.uptime_at(flow.end_ms),
        ie::FLOW_START_SECONDS => flow.start_ms / 1000,
        ie::FLOW_END_SECONDS => flow.end_ms / 1000,
        ie::FLOW_START_MILLISECONDS => flow.start_ms,
        ie::FLOW_END_MILLISECONDS => flow.end_ms,
        _ => 0,
    }
}
