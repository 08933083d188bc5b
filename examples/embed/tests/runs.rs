//! The embedding example runs and shows what a host sees.

#[test]
fn the_embedding_example_runs() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir-embed-example"))
        .output()
        .expect("run the example");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("succeeded"), "{text}");
    assert!(text.contains("[show] hi from the host"), "{text}");
    assert!(text.contains("started make"), "{text}");
}
