//! Generated pipelines of any size, for benchmarks (compiler, language
//! server, runtime) to share one shape.

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
