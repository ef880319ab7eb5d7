//! A small deterministic generator (xorshift64*) whose sequence is fixed by its seed alone, on
//! every machine and with every version of the `rand` crate: the large school of
//! [`crate::big_school`] (its names, roster and records) and the storm bench's retry jitter
//! depend on it. Not for anything that must be unpredictable.

/// xorshift64* over a 64-bit state; the state must not be 0.
#[derive(Debug, Clone)]
pub struct Xorshift(pub u64);

impl Xorshift {
    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0; slightly biased for large `n`, which does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// One of `from` (not empty).
    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}
