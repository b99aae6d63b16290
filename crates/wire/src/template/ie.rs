//! Information element ids (IPFIX) and field type ids (NetFlow v9): the numbers are the same in
//! both. Kept apart from the field mapping (`slot`) because the exporter side uses them too.

pub const OCTET_DELTA_COUNT: u16 = 1;
pub const PACKET_DELTA_COUNT: u16 = 2;
pub const PROTOCOL: u16 = 4;
pub const TCP_FLAGS: u16 = 6;
pub const L4_SRC_PORT: u16 = 7;
pub const IPV4_SRC_ADDR: u16 = 8;
pub const INPUT_SNMP: u16 = 10;
pub const L4_DST_PORT: u16 = 11;
pub const IPV4_DST_ADDR: u16 = 12;
pub const OUTPUT_SNMP: u16 = 14;
pub const LAST_SWITCHED: u16 = 21;
pub const FIRST_SWITCHED: u16 = 22;
pub const OUT_BYTES: u16 = 23;
pub const OUT_PKTS: u16 = 24;
pub const IPV6_SRC_ADDR: u16 = 27;
pub const IPV6_DST_ADDR: u16 = 28;
pub const ICMP_TYPE_CODE_IPV4: u16 = 32;
pub const SAMPLING_INTERVAL: u16 = 34;
pub const FLOW_SAMPLER_RANDOM_INTERVAL: u16 = 50;
pub const MINIMUM_TTL: u16 = 52;
pub const MAXIMUM_TTL: u16 = 53;
pub const INTERFACE_NAME: u16 = 82;
pub const OCTET_TOTAL_COUNT: u16 = 85;
pub const PACKET_TOTAL_COUNT: u16 = 86;
pub const FRAGMENT_OFFSET: u16 = 88;
pub const ICMP_TYPE_CODE_IPV6: u16 = 139;
pub const OBSERVATION_DOMAIN_ID: u16 = 149;
pub const FLOW_START_SECONDS: u16 = 150;
pub const FLOW_END_SECONDS: u16 = 151;
pub const FLOW_START_MILLISECONDS: u16 = 152;
pub const FLOW_END_MILLISECONDS: u16 = 153;
pub const SYSTEM_INIT_TIME_MILLISECONDS: u16 = 160;
pub const FRAGMENT_FLAGS: u16 = 197;
pub const SAMPLING_PACKET_INTERVAL: u16 = 305;
pub const SAMPLING_PACKET_SPACE: u16 = 306;
pub const SAMPLING_SIZE: u16 = 309;
pub const SAMPLING_POPULATION: u16 = 310;
/// NetFlow v9 options scope type "System" (scope types are their own number space).
pub const V9_SCOPE_SYSTEM: u16 = 1;
