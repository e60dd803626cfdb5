//! Buffers handed back by the stage that consumed them, for reuse by the stage that fills
//! them: no allocator churn of large blocks, and memory stays at what is in flight.

use std::sync::{Arc, Mutex};

/// Buffers kept for reuse; more than this are freed.
const KEEP: usize = 64;

#[derive(Clone)]
pub struct Pool {
    bufs: Arc<Mutex<Vec<Vec<u8>>>>,
    fresh: fn() -> Vec<u8>,
}

impl Pool {
    /// A pool that makes a new buffer with `fresh` when none is waiting.
    pub fn new(fresh: fn() -> Vec<u8>) -> Pool {
        Pool {
            bufs: Arc::default(),
            fresh,
        }
    }

    /// A buffer as its last user gave it back (length and contents kept), or a fresh one.
    pub fn take(&self) -> Vec<u8> {
        let v = self.bufs.lock().unwrap_or_else(|p| p.into_inner()).pop();
        v.unwrap_or_else(self.fresh)
    }

    pub fn give(&self, v: Vec<u8>) {
        let mut bufs = self.bufs.lock().unwrap_or_else(|p| p.into_inner());
        if bufs.len() < KEEP {
            bufs.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_as_given_and_fresh_ones_from_the_maker() {
        let pool = Pool::new(|| vec![7u8; 3]);
        assert_eq!(pool.take(), vec![7, 7, 7]);
        pool.give(vec![1, 2]);
        assert_eq!(pool.take(), vec![1, 2]);
        for _ in 0..KEEP + 5 {
            pool.give(Vec::new());
        }
        assert_eq!(pool.bufs.lock().unwrap().len(), KEEP);
    }
}
