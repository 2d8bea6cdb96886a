//! A global allocator that counts allocations, for tests and benchmarks that promise "no
//! allocation per packet": `#[global_allocator] static A: CountingAlloc = CountingAlloc;` in the
//! test binary, then [`this_thread`] (the test's own thread; the harness allocates on others
//! meanwhile) or [`total`] around the code measured.

// `GlobalAlloc` is an unsafe trait; this is the one allocator the tests share (workspace lints).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forwards to the system allocator, counting allocations and reallocations.
pub struct CountingAlloc;

static TOTAL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    TOTAL.fetch_add(1, Ordering::Relaxed);
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = THIS_THREAD.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards unchanged to the system allocator, which upholds the contract;
// counting touches only an atomic and a const-initialised thread-local (no allocation).
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations in the whole process so far.
pub fn total() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Allocations on the calling thread so far.
pub fn this_thread() -> u64 {
    THIS_THREAD.with(Cell::get)
}
