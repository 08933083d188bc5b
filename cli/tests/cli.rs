//! End-to-end tests of the `weir` binary on the real examples and on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn weir(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .output()
        .expect("run weir")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && std::fs::read_dir(p)
                    .unwrap()
                    .any(|f| f.unwrap().path().extension().is_some_and(|x| x == "weir"))
        })
        .collect();
    v.sort();
    v
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("weir-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A temporary project of one file, `ci.weir`.
fn project(name: &str, src: &str) -> PathBuf {
    let d = tmp(name);
    std::fs::write(d.join("ci.weir"), src).unwrap();
    d
}

/// `weir ARGS` in `dir`, its standard output and error piped to this test.
fn spawn_piped(args: &[&str], dir: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

const CTX: &[&str] = &[
    "--git-branch",
    "main",
    "--git-sha",
    "0123456789abcdef",
    "--event",
    "push",
];

#[test]
fn every_example_checks_clean_formats_as_a_no_op_and_plans() {
    let ex = examples();
    assert!(ex.len() >= 5, "expected the five examples, found {ex:?}");
    for dir in ex {
        let d = dir.to_str().unwrap();
        let out = weir(&["check", d], &root());
        assert!(
            out.status.success(),
            "check {d}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = weir(&["fmt", "--check", d], &root());
        assert!(
            out.status.success(),
            "fmt --check {d}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let mut args = vec!["plan", d, "--json"];
        args.extend(CTX);
        let out = weir(&args, &root());
        assert!(
            out.status.success(),
            "plan {d}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(plan["schema"], "weir.plan/v1");
        assert!(!plan["nodes"].as_array().unwrap().is_empty());
    }
}

#[test]
fn plan_json_is_byte_identical_across_runs_and_file_orders() {
    let dir = root().join("examples/node-monorepo");
    let a = dir.join("pipeline.weir");
    let b = dir.join("lib/node.weir");
    let run = |files: &[&Path]| {
        let mut args: Vec<String> = vec!["plan".into()];
        args.extend(files.iter().map(|p| p.to_string_lossy().into_owned()));
        args.push("--json".into());
        args.extend(CTX.iter().map(|s| (*s).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = weir(&args, &dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let first = run(&[&a, &b]);
    let second = run(&[&a, &b]);
    let reordered = run(&[&b, &a]);
    assert_eq!(first, second);
    assert_eq!(first, reordered);
    // The directory form lists files itself; it must agree too.
    let out = weir(
        &[
            "plan",
            "--json",
            "--git-branch",
            "main",
            "--git-sha",
            "0123456789abcdef",
            "--event",
            "push",
        ],
        &dir,
    );
    assert_eq!(first, out.stdout);
}

#[test]
fn graph_renders_dot_and_mermaid() {
    let d = root().join("examples/hello");
    let out = weir(
        &[
            "graph",
            d.to_str().unwrap(),
            "--graph-format",
            "dot",
            "--git-branch",
            "main",
            "--git-sha",
            "x",
        ],
        &root(),
    );
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph \"hello\""), "{dot}");
    assert!(dot.contains("\"greet\" -> \"show\""), "{dot}");
    let out = weir(
        &[
            "graph",
            d.to_str().unwrap(),
            "--graph-format",
            "mermaid",
            "--git-branch",
            "main",
            "--git-sha",
            "x",
        ],
        &root(),
    );
    let m = String::from_utf8(out.stdout).unwrap();
    assert!(
        m.starts_with("flowchart LR") && m.contains("greet --> show"),
        "{m}"
    );
}

#[test]
fn explain_prints_a_code_page_and_refuses_unknown_codes() {
    let out = weir(&["explain", "E0203"], &root());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("# E0203 unknown-step-output"));
    let out = weir(&["explain", "E9999"], &root());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn init_scaffolds_a_pipeline_that_checks_clean_and_never_overwrites() {
    let d = tmp("init");
    assert!(weir(&["init"], &d).status.success());
    let out = weir(&["check"], &d);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = weir(&["init"], &d);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[test]
fn bad_paths_and_flags_exit_2_with_a_message() {
    let d = tmp("badpaths");
    let out = weir(&["check", "missing.weir"], &d);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let out = weir(&["check", "empty"], &d);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0501"));
    let out = weir(&["check", "--no-such-flag"], &d);
    assert_eq!(out.status.code(), Some(2));
    let out = weir(
        &["plan", "--param", "novalue"],
        &root().join("examples/hello"),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_params_and_pipelines_are_diagnostics_with_exit_1() {
    let d = root().join("examples/promotion");
    let cases: &[(&[&str], &str)] = &[
        (&["plan", "--param", "nope=1"], "E0305"),
        (&["plan", "--param", "env=qa"], "E0306"),
        (&["plan", "--param", "replicas=many"], "E0306"),
        (&["plan", "--pipeline", "relase"], "E0304"),
    ];
    for (args, code) in cases {
        let out = weir(args, &d);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(code), "{args:?} should report {code}: {err}");
        assert!(out.stdout.is_empty(), "no partial plan on stdout");
    }
    let out = weir(&["plan", "--pipeline", "relase"], &d);
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `release`"));
}

fn expect_diagnostics_not_panic(name: &str, bytes: &[u8]) {
    let d = tmp(name);
    std::fs::write(d.join("input.weir"), bytes).unwrap();
    let out = weir(&["check", "input.weir"], &d);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{name}: expected diagnostics and exit 1, got {:?}: {}",
        out.status.code(),
        &err[..err.len().min(2000)]
    );
    assert!(!err.contains("panicked"), "{name} panicked: {err}");
    assert!(
        err.contains("[E") && err.contains("Error:"),
        "{name}: no diagnostic in {}",
        &err[..err.len().min(2000)]
    );
}

#[test]
fn hostile_inputs_give_diagnostics_never_panics() {
    // Invalid UTF-8.
    expect_diagnostics_not_panic("utf8", b"pipeline ci { step \"a\xff\xfe\" { run: \"x\" } }");
    // 10,000-deep nesting of every bracket kind, and a 10,000-deep chain.
    expect_diagnostics_not_panic(
        "parens",
        format!("let x = {}1{}", "(".repeat(10_000), ")".repeat(10_000)).as_bytes(),
    );
    expect_diagnostics_not_panic(
        "lists",
        format!("let x = {}{}", "[".repeat(10_000), "]".repeat(10_000)).as_bytes(),
    );
    expect_diagnostics_not_panic(
        "blocks",
        format!(
            "fn f() -> int {}1{}",
            "{ if true ".repeat(10_000),
            " }".repeat(10_000)
        )
        .as_bytes(),
    );
    expect_diagnostics_not_panic(
        "chain",
        format!("let x = 1{}", " + 1".repeat(10_000)).as_bytes(),
    );
    expect_diagnostics_not_panic(
        "unary",
        format!("let x = {}true", "!".repeat(10_000)).as_bytes(),
    );
    expect_diagnostics_not_panic(
        "interp",
        format!("let x = {}", "\"${".repeat(5_000)).as_bytes(),
    );
    // A 5 MB file of steps with one mistake at the end.
    let mut big = String::from("pipeline ci {\n");
    let mut i = 0;
    while big.len() < 5_000_000 {
        big.push_str(&format!("  step \"s{i}\" {{ run: \"echo {i}\" }}\n"));
        i += 1;
    }
    big.push_str("  step \"bad\" { run: 1 }\n}\n");
    expect_diagnostics_not_panic("big", big.as_bytes());
    // Random bytes, seeded so a failure reproduces.
    let mut seed: u64 = 0x5eed;
    for round in 0..30 {
        let mut bytes = Vec::new();
        for _ in 0..2000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.push((seed & 0xff) as u8);
        }
        bytes.extend_from_slice(b"\n@");
        expect_diagnostics_not_panic(&format!("random{round}"), &bytes);
    }
}

#[test]
fn mutated_examples_give_diagnostics_never_panics() {
    let mut seed: u64 = 42;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for dir in examples() {
        let src = std::fs::read(dir.join("pipeline.weir")).unwrap();
        for k in 0..12 {
            let mut m = src.clone();
            // Delete a span, duplicate a span, or drop in a stray byte.
            let a = (next() as usize) % m.len();
            let b = (a + 1 + (next() as usize) % 40).min(m.len());
            match k % 3 {
                0 => {
                    m.drain(a..b);
                }
                1 => {
                    let piece: Vec<u8> = m[a..b].to_vec();
                    m.splice(a..a, piece);
                }
                _ => m.insert(a, b"{}[]()\"$@#"[(next() as usize) % 10]),
            }
            m.extend_from_slice(b"\nlet = \n");
            expect_diagnostics_not_panic(
                &format!("mut-{}-{k}", dir.file_name().unwrap().to_string_lossy()),
                &m,
            );
        }
    }
}

#[test]
fn plan_reads_the_branch_and_commit_from_git_unless_given() {
    let d = project(
        "git-context",
        "pipeline ci {\n  step \"hi\" { run: \"echo ${git.branch}\" }\n}\n",
    );
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(&d)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    git(&["init", "-q", "-b", "release-7"]);
    git(&["add", "ci.weir"]);
    git(&["commit", "-q", "-m", "first"]);
    let sha = git(&["rev-parse", "HEAD"]);
    let context = |args: &[&str]| {
        let out = weir(&[&["plan", "--json"], args].concat(), &d);
        assert!(out.status.success(), "{out:?}");
        let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            plan["context"]["git_branch"].as_str().unwrap().to_owned(),
            plan["context"]["git_sha"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(context(&[]), ("release-7".to_owned(), sha.clone()));
    assert_eq!(
        context(&["--git-branch", "main"]),
        ("main".to_owned(), sha.clone())
    );
    assert_eq!(
        context(&["--git-sha", "abc"]),
        ("release-7".to_owned(), "abc".to_owned())
    );
    // Outside a repository: empty, not an error.
    let outside = tmp("no-git");
    std::fs::copy(d.join("ci.weir"), outside.join("ci.weir")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plan", "--json"])
        .current_dir(&outside)
        .env("GIT_CEILING_DIRECTORIES", outside.parent().unwrap())
        .output()
        .expect("run weir");
    assert!(out.status.success(), "{out:?}");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["context"]["git_sha"], "");
    assert_eq!(plan["context"]["git_branch"], "");
}

#[test]
fn output_cut_short_by_the_reader_ends_quietly_and_a_full_disk_is_an_error() {
    use std::io::Read;
    let dir = project("closed-pipe", &weir_compiler::generated::pipeline(2000));
    // `weir plan --json | head -c 100`: the reader goes away after a few
    // bytes of a plan far larger than the pipe's buffer.
    let mut child = spawn_piped(&["plan", "--json"], &dir);
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    assert!(head.starts_with(b"{"));
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");

    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["plan", "--json"])
        .current_dir(&dir)
        .env("NO_COLOR", "1")
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot write the output"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Every command that writes to standard output ends quietly when its
/// reader goes away, not with a panic.
#[test]
fn commands_end_quietly_when_the_reader_of_their_output_is_gone() {
    let dir = project(
        "closed-reader",
        "pipeline ci {\n  step \"a\" { run: 42 }\n}\n",
    );
    for args in [
        &["explain", "E0101"][..],
        &["check", "--format", "json"][..],
        &["plan", "--format", "json"][..],
    ] {
        // A reader that is gone before the first write: stdout is a pipe
        // whose other end is closed.
        let mut child = spawn_piped(args, &dir);
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}: {stderr}");
    }
}
