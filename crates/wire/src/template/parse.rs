//! Parsing template and options template sets: the field specifiers of each template record, in
//! the NetFlow v9 and IPFIX encodings (they differ in the options header, the scope count and
//! IPFIX enterprise numbers), handed to the cache to install or withdraw.

use super::{DomainKey, Flavor, TemplateDecoder, ENTERPRISE_BIT, MIN_DATA_SET_ID, SET_HEADER_LEN};
use crate::be::{u16_at, u32_at};
use crate::{DecodeError, ExporterCounters, FlowRecord};

/// One field specifier of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    /// Information element id / v9 field type, without the enterprise bit.
    pub id: u16,
    /// Bytes in each record, or [`VARIABLE_LENGTH`](super::VARIABLE_LENGTH) (IPFIX).
    pub length: u16,
    /// Private enterprise number of an enterprise-specific IPFIX element.
    pub enterprise: Option<u32>,
}

impl FieldSpec {
    pub const fn new(id: u16, length: u16) -> Self {
        FieldSpec {
            id,
            length,
            enterprise: None,
        }
    }

    /// Bytes this specifier takes in a template record.
    fn encoded_len(&self) -> usize {
        if self.enterprise.is_some() {
            8
        } else {
            4
        }
    }

    pub fn emit(&self, buf: &mut Vec<u8>) {
        match self.enterprise {
            Some(number) => {
                buf.extend_from_slice(&(self.id | ENTERPRISE_BIT).to_be_bytes());
                buf.extend_from_slice(&self.length.to_be_bytes());
                buf.extend_from_slice(&number.to_be_bytes());
            }
            None => {
                buf.extend_from_slice(&self.id.to_be_bytes());
                buf.extend_from_slice(&self.length.to_be_bytes());
            }
        }
    }
}

/// Iterates the field specifiers of a template record (`bytes` holds exactly the specifiers).
#[derive(Debug, Clone)]
pub(super) struct FieldSpecs<'a> {
    pub(super) flavor: Flavor,
    pub(super) bytes: &'a [u8],
}

impl Iterator for FieldSpecs<'_> {
    type Item = FieldSpec;

    fn next(&mut self) -> Option<FieldSpec> {
        let raw_id = u16_at(self.bytes, 0);
        let length = u16_at(self.bytes.get(..4)?, 2);
        let enterprise = self.flavor == Flavor::Ipfix && raw_id & ENTERPRISE_BIT != 0;
        let spec = FieldSpec {
            id: if enterprise {
                raw_id & !ENTERPRISE_BIT
            } else {
                raw_id
            },
            length,
            enterprise: if enterprise {
                Some(u32_at(self.bytes.get(..8)?, 4))
            } else {
                None
            },
        };
        self.bytes = self.bytes.get(spec.encoded_len()..).unwrap_or_default();
        Some(spec)
    }
}

/// Splits `count` field specifiers off the front of `bytes`: (specifiers, rest).
fn split_specs(flavor: Flavor, bytes: &[u8], count: usize) -> Option<(&[u8], &[u8])> {
    let mut at = 0usize;
    for _ in 0..count {
        let raw_id = u16_at(bytes.get(at..at.checked_add(4)?)?, 0);
        let len = if flavor == Flavor::Ipfix && raw_id & ENTERPRISE_BIT != 0 {
            8
        } else {
            4
        };
        at = at.checked_add(len)?;
        if at > bytes.len() {
            return None;
        }
    }
    Some((bytes.get(..at)?, bytes.get(at..)?))
}

impl TemplateDecoder {
    /// Parses a template or options template set, learning or withdrawing each template in it.
    pub(super) fn learn_templates(
        &mut self,
        key: DomainKey,
        mut set: &[u8],
        options: bool,
        now_ms: u64,
        out: &mut Vec<FlowRecord>,
        counters: &mut ExporterCounters,
    ) {
        let flavor = key.flavor;
        // Each iteration consumes at least 4 bytes; a shorter tail is padding.
        while set.len() >= SET_HEADER_LEN {
            let template_id = u16_at(set, 0);
            let second = u16_at(set, 2);
            if template_id == 0 && second == 0 {
                break; // zero padding
            }
            // (header length, field count or byte length, scope field count)
            let (header_len, scope_count, specs_and_rest) = match (flavor, options) {
                (Flavor::Ipfix, _) if second == 0 => {
                    self.withdraw(key, template_id, options, counters);
                    set = set.get(4..).unwrap_or_default();
                    continue;
                }
                (Flavor::NetflowV9, false) | (Flavor::Ipfix, false) => (
                    4,
                    0,
                    split_specs(
                        flavor,
                        set.get(4..).unwrap_or_default(),
                        usize::from(second),
                    ),
                ),
                (Flavor::Ipfix, true) => {
                    let scope = usize::from(u16_at(set, 4));
                    let specs = set
                        .get(6..)
                        .and_then(|rest| split_specs(flavor, rest, usize::from(second)));
                    if scope == 0 {
                        counters.count_error(DecodeError::BadTemplate);
                        let Some((_, rest)) = specs else { return };
                        set = rest;
                        continue;
                    }
                    (6, scope, specs)
                }
                (Flavor::NetflowV9, true) => {
                    let scope_len = usize::from(second);
                    let option_len = usize::from(u16_at(set, 4));
                    if set.len() < 6 || scope_len % 4 != 0 || option_len % 4 != 0 {
                        counters.count_error(DecodeError::BadTemplate);
                        return;
                    }
                    let specs = set
                        .get(6..)
                        .and_then(|rest| split_specs(flavor, rest, (scope_len + option_len) / 4));
                    (6, scope_len / 4, specs)
                }
            };
            let Some((specs, rest)) = specs_and_rest else {
                // The fields run past the set: nothing after them can be trusted.
                counters.count_error(DecodeError::BadTemplate);
                return;
            };
            let layout = set.get(..header_len + specs.len()).unwrap_or_default();
            set = rest;
            if template_id < MIN_DATA_SET_ID {
                counters.count_error(DecodeError::BadTemplate);
                continue;
            }
            self.install(
                key,
                template_id,
                layout,
                specs,
                scope_count,
                options,
                now_ms,
                counters,
            );
            if !self.pending.is_empty() {
                self.release_pending(key, template_id, out, counters);
            }
        }
    }
}
