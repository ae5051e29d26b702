//! The memory a login burst leaves behind: each Argon2id hash takes a 19 MiB block, and the
//! allocator must give it back afterwards instead of keeping one per burst thread.
mod common;
use common::*;
use serde_json::json;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_logins_leaves_no_hashing_memory_behind() {
    // The default hash parameters (the harness makes them cheap for speed).
    let s = Server::start(&[
        ("SEKISHO_PASSWORDS__ARGON2_MEMORY_KIB", "19456"),
        ("SEKISHO_PASSWORDS__ARGON2_ITERATIONS", "2"),
        ("SEKISHO_PASSWORDS__HASH_CONCURRENCY", "2"),
    ]);
    s.create_user("burst", PASSWORD);
    let login = async || {
        s.post_json(
            "/api/token/",
            json!({"username": "burst", "password": PASSWORD}),
        )
        .await
        .status
    };
    assert_eq!(login().await, 200);
    let before = rss_kib(s.pid());
    let burst: Vec<_> = (0..48).map(|_| login()).collect();
    for status in futures::future::join_all(burst).await {
        assert_eq!(status, 200);
    }
    let after = rss_kib(s.pid());
    // 48 hashes of 19 MiB ran, two at a time. The hasher keeps one working buffer per
    // concurrent hash (the warm-up made the first, counted in `before`), so at most one more
    // block stays, plus slack; glibc's default kept several hundred MiB here.
    assert!(
        after < before + (19 + 16) * 1024,
        "RSS grew from {before} KiB to {after} KiB after the burst"
    );
}
