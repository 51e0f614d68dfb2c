//! A fixed-length bitset over u64 words, with the few whole-set operations the analyzer's inner
//! loops need (OR of an AND, word-level iteration) and nothing else.

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Bits {
    words: Vec<u64>,
    len: usize,
}

impl Bits {
    pub(crate) fn new(len: usize) -> Self {
        Bits {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub(crate) fn full(len: usize) -> Self {
        let mut b = Bits {
            words: vec![u64::MAX; len.div_ceil(64)],
            len,
        };
        b.trim();
        b
    }

    /// Clears the bits past `len` in the last word, so equality and counting stay exact.
    fn trim(&mut self) {
        let rem = self.len % 64;
        if rem != 0 {
            if let Some(last) = self.words.last_mut() {
                *last &= (1u64 << rem) - 1;
            }
        }
    }

    pub(crate) fn set(&mut self, i: usize) {
        if let Some(w) = self.words.get_mut(i / 64) {
            *w |= 1u64 << (i % 64);
        }
    }

    pub(crate) fn get(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }

    pub(crate) fn or_assign(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    pub(crate) fn and_assign(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= b;
        }
    }

    /// `self |= a & b`.
    pub(crate) fn or_and(&mut self, a: &Bits, b: &Bits) {
        for ((x, y), z) in self.words.iter_mut().zip(&a.words).zip(&b.words) {
            *x |= y & z;
        }
    }

    /// `self |= a & b & c`.
    pub(crate) fn or_and3(&mut self, a: &Bits, b: &Bits, c: &Bits) {
        for (((x, y), z), w) in self
            .words
            .iter_mut()
            .zip(&a.words)
            .zip(&b.words)
            .zip(&c.words)
        {
            *x |= y & z & w;
        }
    }

    /// `self = (self & and) | or`, over words (the tiers' answers are stored as words).
    pub(crate) fn and_or_words(&mut self, and: &[u64], or: &[u64]) {
        for ((x, a), o) in self.words.iter_mut().zip(and).zip(or) {
            *x = (*x & a) | o;
        }
    }

    /// `self &= !other`.
    pub(crate) fn and_not_assign(&mut self, other: &Bits) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// `self = a & !b`.
    pub(crate) fn assign_and_not(&mut self, a: &Bits, b: &Bits) {
        for ((x, y), z) in self.words.iter_mut().zip(&a.words).zip(&b.words) {
            *x = y & !z;
        }
    }

    /// Every bit below `len` flipped.
    pub(crate) fn complement(&self) -> Bits {
        let mut b = Bits {
            words: self.words.iter().map(|w| !w).collect(),
            len: self.len,
        };
        b.trim();
        b
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    pub(crate) fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
    }

    pub(crate) fn words(&self) -> &[u64] {
        &self.words
    }

    pub(crate) fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let t = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(wi * 64 + t)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_sets_only_the_bits_below_len() {
        let b = Bits::full(70);
        assert_eq!(b.ones().count(), 70);
        assert!(b.get(69));
        assert!(!b.get(70));
        assert_eq!(Bits::full(64).ones().count(), 64);
    }

    #[test]
    fn or_and_combines_word_by_word() {
        let mut a = Bits::new(130);
        let mut b = Bits::new(130);
        let mut c = Bits::new(130);
        b.set(1);
        b.set(129);
        c.set(129);
        c.set(5);
        a.or_and(&b, &c);
        assert_eq!(a.ones().collect::<Vec<_>>(), vec![129]);
    }
}
