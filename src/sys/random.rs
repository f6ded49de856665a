//! Kernel randomness, fetched in batches: WebSocket masking keys and handshake nonces
//! must be unpredictable (RFC 6455 §5.3), DNS ids and backoff jitter should be.

use std::io;

const POOL: usize = 256;

/// A buffer of bytes from `getrandom(2)`, refilled when spent.
pub struct Random {
    pool: [u8; POOL],
    used: usize,
}

impl Random {
    pub fn new() -> io::Result<Random> {
        let mut r = Random {
            pool: [0; POOL],
            used: POOL,
        };
        r.refill()?;
        Ok(r)
    }

    fn refill(&mut self) -> io::Result<()> {
        let mut filled = 0;
        while filled < POOL {
            filled += rustix::rand::getrandom(
                &mut self.pool[filled..],
                rustix::rand::GetRandomFlags::empty(),
            )?;
        }
        self.used = 0;
        Ok(())
    }

    /// Fills `out` with random bytes. getrandom(2) on a booted kernel does not fail; if it
    /// ever does, the previous pool is reused rather than stopping the task.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(POOL) {
            if self.used + chunk.len() > POOL && self.refill().is_err() {
                self.used = 0;
            }
            chunk.copy_from_slice(&self.pool[self.used..self.used + chunk.len()]);
            self.used += chunk.len();
        }
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0; N];
        self.fill(&mut b);
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_ne_bytes(self.bytes())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_ne_bytes(self.bytes())
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
