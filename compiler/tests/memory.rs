//! Parsing keeps no memory behind: the language server parses on every
//! edit for hours, so a few kilobytes kept per parse would add up.

fn rss_kib() -> u64 {
    weir_compiler::generated::proc_status_kib(None, "VmRSS:").expect("VmRSS in /proc/self/status")
}

#[test]
fn repeated_parses_do_not_grow_memory() {
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello/pipeline.weir"),
    )
    .expect("the hello example");
    let broken = src.replacen('}', "", 1);
    // Warm up: allocator pools, lazily built tables.
    for _ in 0..200 {
        drop(weir_compiler::syntax::parse("a.weir", &src));
    }
    let before = rss_kib();
    for _ in 0..1000 {
        // Both paths: the fast one, and the one with rich errors.
        drop(weir_compiler::syntax::parse("a.weir", &src));
        drop(weir_compiler::syntax::parse("b.weir", &broken));
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        grown < 8 * 1024,
        "2,000 parses grew the process by {grown} KiB"
    );
}
