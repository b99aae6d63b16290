//! Decode errors. Each is a fixed kind so collectors can count them per exporter without allocating.

use std::fmt;

macro_rules! error_kinds {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// Why a datagram (or the rest of it) could not be decoded.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum DecodeError {
            $(#[doc = $doc] $variant,)*
        }

        impl DecodeError {
            /// Every kind, in counter-index order.
            pub const ALL: &'static [DecodeError] = &[$(DecodeError::$variant,)*];
            /// Number of kinds: the size of a per-kind counter array.
            pub const COUNT: usize = Self::ALL.len();

            /// Stable snake_case name, used in metrics labels and logs.
            pub const fn name(self) -> &'static str {
                match self { $(DecodeError::$variant => $name,)* }
            }

            /// Index into a `[u64; DecodeError::COUNT]` counter array.
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

error_kinds! {
    Truncated => "truncated", "The datagram ends before a header or a length it declares.";
    UnknownVersion => "unknown_version", "Not sFlow v5, NetFlow v5/v9 or IPFIX.";
    BadLength => "bad_length", "A length field is zero where it must not be, loops, or overruns its container.";
    BadCount => "bad_count", "A record or sample count disagrees with the bytes present.";
    BadTemplate => "bad_template", "A template or options template is malformed (no fields, bad field length, too many fields).";
    BadAddress => "bad_address", "An address type that is neither IPv4 nor IPv6.";
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::error::Error for DecodeError {}
