//! The bits of the conntrack mark the table may use ([`CtMarkBits`]); a compile takes them in
//! [`crate::NodeOptions`] and the naming and render passes read them from the IR.
//!
//! The table writes a checked connection's peer class into these bits only
//! (`ct mark set ct mark and ~MASK or CLASS`) and masks every read
//! (`ct mark and MASK . meta l4proto . th dport`), so the other bits of `ct mark`, whoever set
//! them, pass through unchanged.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// A contiguous range of bits of the conntrack mark, given as its mask (`0xffff0000`: bits 16 to
/// 31), that the table may use for the peer class of a connection being checked.
///
/// A range of `k` bits holds `2^k - 1` peer classes per direction besides class 0 (matches no
/// peer); at least [`CtMarkBits::MIN_BITS`] bits are required.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CtMarkBits {
    mask: u32,
}

/// Why a conntrack mark range is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CtMarkBitsError {
    /// The text is neither a hexadecimal mask nor a `FIRST-LAST` bit range.
    #[error("{0:?} is not a conntrack mark range: give a mask like 0xffff0000 or bits like 16-31")]
    Syntax(String),
    /// The set bits of the mask are not one contiguous run.
    #[error("conntrack mark mask 0x{0:08x} is not one contiguous run of bits")]
    NotContiguous(u32),
    /// Too few bits to hold a useful number of peer classes.
    #[error("conntrack mark mask 0x{0:08x} has {1} bits; at least {min} are needed", min = CtMarkBits::MIN_BITS)]
    TooNarrow(u32, u32),
}

impl CtMarkBits {
    /// The default: the upper 16 bits (`0xffff0000`), 65,535 classes per direction. The lower half
    /// is where people and tools put small marks by hand (`ct mark set 0x1`, Istio's `0xfff`
    /// connection-mark bits), so it is left to them.
    pub const DEFAULT: CtMarkBits = CtMarkBits { mask: 0xffff_0000 };

    /// The narrowest range accepted (255 classes per direction).
    pub const MIN_BITS: u32 = 8;

    /// The range of the bits set in `mask`.
    pub fn new(mask: u32) -> Result<Self, CtMarkBitsError> {
        let bits = mask.count_ones();
        if bits < Self::MIN_BITS {
            return Err(CtMarkBitsError::TooNarrow(mask, bits));
        }
        let run = mask >> mask.trailing_zeros();
        if run & run.wrapping_add(1) != 0 {
            return Err(CtMarkBitsError::NotContiguous(mask));
        }
        Ok(CtMarkBits { mask })
    }

    /// The mask of the range.
    pub fn mask(self) -> u32 {
        self.mask
    }

    /// How many peer classes other than class 0 fit.
    pub fn capacity(self) -> u32 {
        self.mask >> self.mask.trailing_zeros()
    }

    /// The mark value of class slot `slot` (1 to [`CtMarkBits::capacity`]).
    pub(crate) fn value(self, slot: u32) -> u32 {
        slot << self.mask.trailing_zeros()
    }
}

impl Default for CtMarkBits {
    fn default() -> Self {
        CtMarkBits::DEFAULT
    }
}

impl fmt::Display for CtMarkBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.mask)
    }
}

impl FromStr for CtMarkBits {
    type Err = CtMarkBitsError;

    /// `0xffff0000` (a mask) or `16-31` (first and last bit, inclusive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CtMarkBitsError::Syntax(s.to_string());
        let t = s.trim();
        if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
            let mask = u32::from_str_radix(hex, 16).map_err(|_| syntax())?;
            return CtMarkBits::new(mask);
        }
        let (first, last) = t.split_once('-').ok_or_else(syntax)?;
        let first: u32 = first.trim().parse().map_err(|_| syntax())?;
        let last: u32 = last.trim().parse().map_err(|_| syntax())?;
        if first > last || last > 31 {
            return Err(syntax());
        }
        let width = last - first + 1;
        let run = if width == 32 {
            u32::MAX
        } else {
            (1u32 << width) - 1
        };
        CtMarkBits::new(run << first)
    }
}

/// More peer classes in one direction than the range holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClassOverflow {
    /// The direction whose classes do not fit.
    pub(crate) direction: netpol_core::Direction,
    /// Classes other than class 0 the direction needs.
    pub(crate) classes: usize,
    /// What the range holds.
    pub(crate) capacity: u32,
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_read_as_a_mask_or_as_first_and_last_bit() {
        assert_eq!("0xffff0000".parse(), Ok(CtMarkBits::DEFAULT));
        assert_eq!("16-31".parse(), Ok(CtMarkBits::DEFAULT));
        let low: CtMarkBits = "0-7".parse().unwrap();
        assert_eq!((low.mask(), low.capacity(), low.value(1)), (0xff, 255, 1));
        let all: CtMarkBits = "0-31".parse().unwrap();
        assert_eq!(all.mask(), u32::MAX);
        assert_eq!(CtMarkBits::DEFAULT.value(1), 0x0001_0000);
        assert_eq!(CtMarkBits::DEFAULT.to_string(), "0xffff0000");
    }

    #[test]
    fn unusable_ranges_are_refused_with_the_reason() {
        assert_eq!(
            "0x00f0f000".parse::<CtMarkBits>(),
            Err(CtMarkBitsError::NotContiguous(0x00f0_f000))
        );
        assert_eq!(
            "0x0000000f".parse::<CtMarkBits>(),
            Err(CtMarkBitsError::TooNarrow(0xf, 4))
        );
        for bad in ["", "ffff", "0xg", "31-16", "16-32", "a-b"] {
            assert!(
                matches!(bad.parse::<CtMarkBits>(), Err(CtMarkBitsError::Syntax(_))),
                "{bad}"
            );
        }
    }
}
