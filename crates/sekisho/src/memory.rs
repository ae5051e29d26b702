//! Allocator settings for a process that hashes passwords.
//!
//! Each Argon2id hash allocates one block of `passwords.argon2_memory_kib` (19 MiB by default)
//! and frees it when done. glibc serves the first such block with `mmap`, then raises its mmap
//! threshold to the freed block's size, so every later block comes from a heap arena and stays
//! in the process after it is freed: measured on the release binary, RSS grew from 12 MB to
//! 130 MB after 20 logins and to 360–715 MB after 128–256 concurrent ones, and stayed there.
//! A fixed threshold of 128 KiB (glibc's initial value) keeps large blocks on `mmap`, so each
//! is returned to the system when freed; small allocations are unaffected. So that this does
//! not cost a page fault per 4 KiB of every hash, the hasher keeps its working memory between
//! hashes (`sekisho_core::login::password`), as many buffers as hashes run at once.

/// Applied once at start, before any thread is spawned.
pub fn return_large_blocks_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads
    // exist, and the value is one glibc documents for M_MMAP_THRESHOLD.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
