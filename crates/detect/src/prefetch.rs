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

/// Maps in the pages behind `region` with one system call instead of one page fault per 4 KiB
/// page as ingest first writes each new host entry (a page fault is costly under virtualisation).
/// Only a hint: where unsupported it does nothing, and the pages fault in as usual.
pub(crate) fn populate<T>(region: &mut [std::mem::MaybeUninit<T>]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let start = region.as_ptr() as usize;
        let end = start + std::mem::size_of_val(region);
        let (first, last) = ((start + PAGE - 1) & !(PAGE - 1), end & !(PAGE - 1));
        if last > first {
            // SAFETY: the page-aligned range lies inside `region`, spare capacity of a live
            // allocation; MADV_POPULATE_WRITE only faults pages in (contents stay zero/unchanged)
            // and fails harmlessly (ignored) on kernels older than 5.14.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = region;
}
