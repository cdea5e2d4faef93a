//! The binaries' allocator: mimalloc, with two options set before anything is allocated.
//! glibc's malloc and free were a third of the handler's instructions (docs/benchmarks-log.md, "The allocator, the engine's maps and the reports"); mimalloc's
//! defaults, though, doubled the peak resident memory of a large event (50 MB instead of 24 at
//! Lambda's 6 MB payload): it commits whole arenas and returns freed pages only after a second.
//! With arenas committed on demand and freed pages returned after 5 ms, the peak is glibc's again
//! and the CPU stays mimalloc's. The first arena is made by the first allocation, before `main`,
//! so the options are set by a constructor that runs before it: [`use_mimalloc!`] declares both.

use libmimalloc_sys as sys;

// The positions of the options in mimalloc's `mi_option_e` (the same in its v2 and v3); the
// crate names only some of them. The test checks them against the library linked.
const ARENA_EAGER_COMMIT: sys::mi_option_t = 4;
const PURGE_DELAY: sys::mi_option_t = 15;

pub use mimalloc::MiMalloc;

/// Declares mimalloc the global allocator, configured by [`configure_mimalloc_early!`]. One line
/// in each binary and bench.
#[macro_export]
macro_rules! use_mimalloc {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::allocator::MiMalloc = $crate::allocator::MiMalloc;

        $crate::configure_mimalloc_early!();
    };
}

/// The constructor that runs [`configure`] before the first allocation (Linux and macOS;
/// elsewhere call it first in `main`). On its own where mimalloc is wrapped (the memory bench).
#[macro_export]
macro_rules! configure_mimalloc_early {
    () => {
        #[used]
        #[cfg_attr(target_os = "linux", unsafe(link_section = ".init_array"))]
        #[cfg_attr(target_os = "macos", unsafe(link_section = "__DATA,__mod_init_func"))]
        static CONFIGURE_ALLOCATOR: extern "C" fn() = {
            extern "C" fn configure() {
                $crate::allocator::configure();
            }
            configure
        };
    };
}

/// Sets the options. Run by the constructor that [`configure_mimalloc_early!`] declares; a value
/// set in the environment (`MIMALLOC_…`) is overridden.
pub fn configure() {
    // SAFETY: mimalloc's options are plain integers, set atomically; any value is valid.
    unsafe {
        sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        sys::mi_option_set(PURGE_DELAY, 5);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_positions_are_those_of_the_mimalloc_linked() {
        // Their defaults say which options they are (2: only where the OS overcommits; 1,000 ms in
        // mimalloc 3). The tests do not declare the allocator, so nothing has set them yet.
        // SAFETY: reading an option has no precondition.
        let (eager, delay) = unsafe {
            (
                sys::mi_option_get(ARENA_EAGER_COMMIT),
                sys::mi_option_get(PURGE_DELAY),
            )
        };
        assert_eq!((eager, delay), (2, 1_000));
        configure();
        // SAFETY: as above.
        let (eager, delay) = unsafe {
            (
                sys::mi_option_get(ARENA_EAGER_COMMIT),
                sys::mi_option_get(PURGE_DELAY),
            )
        };
        assert_eq!((eager, delay), (0, 5));
    }
}
