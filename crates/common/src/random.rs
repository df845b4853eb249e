//! Random numbers for seeds and for the simulator's deliberate misbehaviour, from the
//! OS-seeded keys std gives every `HashMap` (no wall clock, no extra crate). Not for secrets.

use std::hash::{BuildHasher, RandomState};

/// A fresh random number; each call gives another.
pub fn u64() -> u64 {
    RandomState::new().hash_one(0u8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn calls_give_different_numbers() {
        let drawn: std::collections::BTreeSet<u64> = (0..32).map(|_| super::u64()).collect();
        assert!(drawn.len() > 30, "{drawn:?}");
    }
}
