//! [`Live`]: a value the whole server reads and a configuration reload replaces.
//!
//! Readers take a snapshot (`load`, an `Arc` clone under a read lock held for nanoseconds) and
//! keep using it for the request at hand; a reload `store`s the new value, which the next
//! `load` sees. A request in flight finishes with the value it started with.

use std::sync::{Arc, PoisonError, RwLock};

/// A shared, replaceable value. Clones share it.
#[derive(Debug, Default)]
pub struct Live<T>(Arc<RwLock<Arc<T>>>);

impl<T> Clone for Live<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Live<T> {
    pub fn new(value: T) -> Self {
        Self(Arc::new(RwLock::new(Arc::new(value))))
    }

    /// The current value.
    pub fn load(&self) -> Arc<T> {
        Arc::clone(&self.0.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replaces the value for every holder of this `Live` (and its clones).
    pub fn store(&self, value: T) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_outlives_a_store_and_clones_see_the_new_value() {
        let live = Live::new(vec![1]);
        let other = live.clone();
        let before = live.load();
        other.store(vec![2]);
        assert_eq!(*before, vec![1]);
        assert_eq!(*live.load(), vec![2]);
    }
}
