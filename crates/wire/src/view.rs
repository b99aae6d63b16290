//! The one way this crate defines a zero-copy view over wire bytes, in the style of smoltcp's
//! `wire` module.
//!
//! Every header and record view (NetFlow v5/v9, IPFIX, sFlow XDR structures, packet headers)
//! needs the same things: a wrapper over `T: AsRef<[u8]>`, a constructor that checks the fixed
//! part is present and returns the module's typed error, and getters reading big-endian values at
//! fixed offsets. Writing that by hand per view let the copies drift (some had `new_unchecked`,
//! some `into_inner`, some a `MIN_LEN`); one macro keeps them identical.
//!
//! ```text
//! view! {
//!     /// Doc of the view.
//!     pub struct Packet, min_len = HEADER_LEN, error = DecodeError;
//!     /// Doc of the getter.
//!     pub fn version -> u16 = field::VERSION;
//!     fn ver_ihl -> u8 = field::VER_IHL; // private raw field behind a hand-written getter
//! }
//! ```
//!
//! The error type must have a `Truncated` variant. Getters read through [`crate::be::FromBe`],
//! so past the end they return zero instead of panicking (`new_checked` makes that unreachable
//! for fields within `min_len`). Getters that derive a value (masks, shifts, variable-length
//! payloads) are written by hand in a separate `impl` next to the invocation.

macro_rules! view {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident, min_len = $min_len:expr, error = $error:ident;
        $(
            $(#[$field_meta:meta])*
            $field_vis:vis fn $field:ident -> $ty:ty = $at:expr;
        )*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        // Every view gets the same constructors, so a private one may leave some unused.
        #[allow(dead_code)]
        impl<T: AsRef<[u8]>> $name<T> {
            /// Bytes of the fixed part: what [`Self::new_checked`] requires.
            pub const MIN_LEN: usize = $min_len;

            /// Wraps `buffer` without checking its length; getters past the end read as zero.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps `buffer` after [`Self::check_len`].
            pub fn new_checked(buffer: T) -> Result<Self, $error> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// `Err(Truncated)` when the buffer is shorter than the fixed part.
            pub fn check_len(&self) -> Result<(), $error> {
                if self.buffer.as_ref().len() < Self::MIN_LEN {
                    Err($error::Truncated)
                } else {
                    Ok(())
                }
            }

            pub fn into_inner(self) -> T {
                self.buffer
            }

            #[inline(always)]
            fn bytes(&self) -> &[u8] {
                self.buffer.as_ref()
            }
        }

        impl<T: AsRef<[u8]>> $name<T> {
            $(
                $(#[$field_meta])*
                #[inline]
                $field_vis fn $field(&self) -> $ty {
                    <$ty as $crate::be::FromBe>::read_at(self.bytes(), $at)
                }
            )*
        }
    };
}

pub(crate) use view;

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use crate::DecodeError;

    mod field {
        pub const KIND: usize = 0;
        pub const PORT: usize = 2;
        pub const ADDRESS: usize = 4;
        pub const LEN: usize = 8;
    }

    view! {
        /// A made-up 8-byte header.
        struct Probe, min_len = field::LEN, error = DecodeError;
        fn kind -> u8 = field::KIND;
        fn port -> u16 = field::PORT;
        fn address -> Ipv4Addr = field::ADDRESS;
        fn past_the_end -> u32 = field::LEN;
    }

    #[test]
    fn reads_fields_big_endian_and_checks_the_fixed_part() {
        let bytes = [7, 0, 0x01, 0xbb, 192, 0, 2, 1];
        let probe = Probe::new_checked(&bytes[..]).unwrap();
        assert_eq!(probe.kind(), 7);
        assert_eq!(probe.port(), 443);
        assert_eq!(probe.address(), Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(probe.past_the_end(), 0);
        assert_eq!(probe.into_inner(), &bytes[..]);
        assert_eq!(
            Probe::new_checked(&bytes[..7]).unwrap_err(),
            DecodeError::Truncated
        );
        assert_eq!(Probe::new_unchecked(&bytes[..1]).port(), 0);
    }
}
