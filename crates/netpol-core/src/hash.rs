//! One fast non-cryptographic hasher (the FxHash multiply-rotate mix) for the interning tables of
//! the analyzer and the compiler, where SipHash costs more than the work it guards. Nothing may
//! depend on the iteration order of a map built with it.

use std::hash::{BuildHasherDefault, Hasher};

/// The FxHash mix over 64-bit words.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// `HashMap<K, V, FxBuildHasher>` hashes with [`FxHasher`].
pub type FxBuildHasher = BuildHasherDefault<FxHasher>;
