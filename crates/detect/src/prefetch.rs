//! A cache prefetch hint: ingest looks a few records ahead and asks for the memory it will need,
//! so the cache misses of many records overlap instead of queueing one after another.

/// Hints the CPU to bring the cache line of `p` into cache. No effect on results.
#[inline(always)]
pub(crate) fn prefetch<T>(p: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no architectural effect; SSE is baseline on x86_64.
    #[allow(unused_unsafe)]
    unsafe {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((p as *const T).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
