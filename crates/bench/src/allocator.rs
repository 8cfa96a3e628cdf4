//! The allocator of each process the harness runs. A hub child uses jemalloc, as the shipped
//! `switchyard` binary does; the baselines (bare server, load generator, direct client, sink)
//! keep the system allocator they were measured with in every earlier round, so that a ratio
//! compares with the rounds before it. `SWITCHYARD_BENCH_ALLOCATOR=system` or `=jemalloc` puts
//! every process of a run on one allocator (a hub child inherits the setting), for the A/B.
//!
//! The choice is made once, at the process's first allocation (before `main`, on one thread),
//! from the environment read without allocating, and never changes: every block is freed by
//! the allocator that made it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{CStr, c_char};
use std::sync::atomic::{AtomicU8, Ordering};

use tikv_jemallocator::Jemalloc;

/// The variable a hub child is started with.
pub const VARIABLE: &str = "SWITCHYARD_BENCH_ALLOCATOR";

unsafe extern "C" {
    // The C library's, which std links already; unlike `std::env::var_os` it does not allocate.
    fn getenv(name: *const c_char) -> *const c_char;
}

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const JEMALLOC: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

fn choice() -> u8 {
    let chosen = CHOICE.load(Ordering::Relaxed);
    if chosen != UNDECIDED {
        return chosen;
    }
    // SAFETY: a NUL-terminated name; the value is read before any thread could change the
    // environment (the first allocation precedes `main`).
    let value = unsafe { getenv(c"SWITCHYARD_BENCH_ALLOCATOR".as_ptr()) };
    let jemalloc = !value.is_null() && unsafe { CStr::from_ptr(value) }.to_bytes() == b"jemalloc";
    let chosen = if jemalloc { JEMALLOC } else { SYSTEM };
    CHOICE.store(chosen, Ordering::Relaxed);
    chosen
}

/// System or jemalloc, as [`choice`] decided for this process.
pub struct Chosen;

// SAFETY: every call goes to the one allocator chosen for the whole process.
unsafe impl GlobalAlloc for Chosen {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match choice() {
            JEMALLOC => unsafe { Jemalloc.alloc(layout) },
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match choice() {
            JEMALLOC => unsafe { Jemalloc.alloc_zeroed(layout) },
            _ => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match choice() {
            JEMALLOC => unsafe { Jemalloc.dealloc(ptr, layout) },
            _ => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match choice() {
            JEMALLOC => unsafe { Jemalloc.realloc(ptr, layout, new_size) },
            _ => unsafe { System.realloc(ptr, layout, new_size) },
        }
    }
}
