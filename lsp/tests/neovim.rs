//! The language server in a real Neovim: `nvim --headless` runs
//! tests/editors/nvim_e2e.lua, which starts this crate's `weir-lsp` through
//! the editor setup in editors/neovim/weir.lua, opens a file with a mistake,
//! and writes the diagnostics, a hover and a completion it got as JSON.
//!
//! Neovim must be on PATH: tests/run.sh installs it. Without it this test
//! fails; it never skips.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// examples/hello with one deliberate mistake: `${greeting}` is undefined.
const FIXTURE: &str = include_str!("../../tests/editors/fixture/pipeline.weir");
/// The Lua script, relative to the repository root (where Neovim runs).
const SCRIPT: &str = "tests/editors/nvim_e2e.lua";
/// How many seconds Neovim may take in all before it is killed.
const DEADLINE_SECS: u64 = 60;

/// A scratch directory, removed when the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn find_nvim() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join("nvim");
        if candidate.is_file() {
            return Some(candidate);
        }
    }
    None
}

/// Reads a child's pipe to the end on a thread; the receiver gets the text.
fn drain(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// The 0-based line and column of the first `needle` in the fixture, plus `shift`.
fn position_of(needle: &str, shift: usize) -> (u64, u64) {
    FIXTURE
        .lines()
        .enumerate()
        .find_map(|(line, text)| {
            text.find(needle)
                .map(|col| (line as u64, (col + shift) as u64))
        })
        .unwrap_or_else(|| panic!("the fixture has no {needle:?}"))
}

#[test]
fn neovim_shows_diagnostics_hover_and_completion() {
    let Some(nvim) = find_nvim() else {
        panic!(
            "Neovim (`nvim`) is not on PATH. Run tests/run.sh, which installs it \
             (apt-get install neovim), or install Neovim 0.7 or newer yourself."
        );
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the lsp crate lives in the repository")
        .to_path_buf();
    assert!(repo.join(SCRIPT).is_file(), "{SCRIPT} is missing");

    let scratch =
        Scratch(std::env::temp_dir().join(format!("weir-nvim-e2e-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    let project = scratch.0.join("project");
    std::fs::create_dir_all(&project).expect("create the project directory");
    std::fs::write(project.join("pipeline.weir"), FIXTURE).expect("write the fixture");
    let result_path = scratch.0.join("result.json");

    let mut cmd = Command::new(nvim);
    cmd.args(["--headless", "--clean", "-n", "-c"])
        .arg(format!("luafile {SCRIPT}"))
        .current_dir(repo)
        .env("WEIR_LSP", env!("CARGO_BIN_EXE_weir-lsp"))
        .env("WEIR_E2E_ROOT", project)
        .env("WEIR_E2E_FILE", "pipeline.weir")
        .env("WEIR_E2E_OUT", &result_path)
        .env("WEIR_E2E_HOVER", "message}")
        .env("WEIR_E2E_COMPLETE", "${greet.")
        .env("WEIR_E2E_DIAGNOSTICS", "1")
        .env("WEIR_E2E_TIMEOUT", "20000")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Keep Neovim's logs and state out of the user's home.
    for (var, dir) in [
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_STATE_HOME", "state"),
        ("XDG_CACHE_HOME", "cache"),
    ] {
        cmd.env(var, scratch.0.join("xdg").join(dir));
    }
    let mut child = cmd.spawn().expect("start nvim");
    let stdout = drain(child.stdout.take().expect("nvim's stdout"));
    let stderr = drain(child.stderr.take().expect("nvim's stderr"));

    let deadline = Duration::from_secs(DEADLINE_SECS);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for nvim") {
            break Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output =
        |rx: &mpsc::Receiver<String>| rx.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    let (out_text, err_text) = (output(&stdout), output(&stderr));
    let Some(status) = status else {
        panic!(
            "nvim did not finish within {DEADLINE_SECS} s and was killed\n\
             stdout:\n{out_text}\nstderr:\n{err_text}"
        );
    };
    assert!(
        status.success(),
        "nvim failed ({status})\nstdout:\n{out_text}\nstderr:\n{err_text}"
    );

    let text = std::fs::read_to_string(&result_path).unwrap_or_else(|e| {
        panic!(
            "nvim wrote no {}: {e}\nstderr:\n{err_text}",
            result_path.display()
        )
    });
    let result: Value = serde_json::from_str(&text).expect("the result is JSON");

    // Exactly one diagnostic: the undefined name, where it is.
    let diagnostics = result["diagnostics"]
        .as_array()
        .expect("diagnostics is a list");
    assert_eq!(
        diagnostics.len(),
        1,
        "expected one diagnostic, got {result:#}"
    );
    let d = &diagnostics[0];
    assert_eq!(d["code"], "E0101", "{result:#}");
    assert_eq!(d["severity"], 1, "an error: {result:#}");
    let message = d["message"].as_str().expect("a message");
    assert!(
        message.starts_with("cannot find `greeting` in this scope"),
        "{result:#}"
    );
    let (line, col) = position_of("${greeting}", 2);
    assert_eq!(d["range"]["start"]["line"], line, "{result:#}");
    assert_eq!(d["range"]["start"]["character"], col, "{result:#}");
    assert_eq!(d["range"]["end"]["line"], line, "{result:#}");
    assert_eq!(
        d["range"]["end"]["character"],
        col + "greeting".len() as u64,
        "{result:#}"
    );

    // Hover on `message` in `${message}`: its type and its doc comment.
    let hover = result["hover"]["contents"].as_str().expect("a hover");
    assert!(hover.contains("message: str"), "hover: {hover:?}");
    assert!(
        hover.contains("The text that the step \"greet\" writes."),
        "hover: {hover:?}"
    );

    // Completion after `${greet.`: the step's outputs and run-time fields.
    let labels: Vec<&str> = result["completion"]["labels"]
        .as_array()
        .expect("completion labels")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for want in ["greeting", "audience", "ok", "exit_code"] {
        assert!(
            labels.contains(&want),
            "no completion {want:?} in {labels:?}"
        );
    }
}
