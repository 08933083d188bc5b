//! Support for benchmarks and memory tests: generated pipelines of any size
//! (the compiler and language-server benchmarks share one shape) and the
//! process's memory figures.

/// A pipeline of `n` steps in layers of 50: each step reads an output of a
/// step in the layer before, has env, a matrix-like name and a condition.
pub fn pipeline(n: usize) -> String {
    let mut s = String::from(
        "enum Env { dev, prod }\nparam env: Env = Env.dev\n\ndefault pipeline gen {\n  on push(branches: [\"main\"])\n",
    );
    for i in 0..n {
        let dep = if i >= 50 {
            format!("\n    inputs: [s{}.out]", i - 50)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "  let s{i} = step \"step {i}\" {{\n    run: \"echo {i} > out/{i}.txt\"\n    env: {{ INDEX: \"{i}\" }}\n    outputs: {{ out: file(\"out/{i}.txt\") }}{dep}\n    when: env == Env.dev\n    timeout: 5m\n  }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS:`, `VmHWM:`), for the
/// benchmarks and tests that report memory; `None` for this process.
pub fn proc_status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    std::fs::read_to_string(path).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    })
}
