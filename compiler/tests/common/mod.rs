//! Shared helpers: load a fixture (a file or a folder of files) and render
//! its diagnostics exactly as the terminal shows them, colour off.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use weir_compiler::diagnostics::render::{TerminalOptions, render_terminal};
use weir_compiler::eval::EvalInput;

pub fn load_fixture(path: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    if path.is_dir() {
        let mut stack = vec![path.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "weir") {
                    let rel = p
                        .strip_prefix(path)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.insert(
                        rel,
                        String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                    );
                }
            }
        }
    } else {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(
            name,
            String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned(),
        );
    }
    files
}

/// Plan arguments from a `// args: --pipeline X --param k=v` header.
pub fn fixture_args(files: &BTreeMap<String, String>) -> Option<EvalInput> {
    let mut input = EvalInput::default();
    let mut found = false;
    for text in files.values() {
        for line in text.lines().take(3) {
            let Some(rest) = line.trim().strip_prefix("// args:") else {
                continue;
            };
            found = true;
            let words: Vec<&str> = rest.split_whitespace().collect();
            let mut i = 0;
            while i < words.len() {
                match words[i] {
                    "--pipeline" => input.pipeline = words.get(i + 1).map(|s| (*s).to_owned()),
                    "--param" => {
                        if let Some((k, v)) = words.get(i + 1).and_then(|w| w.split_once('=')) {
                            input.params.push((k.to_owned(), v.to_owned()));
                        }
                    }
                    _ => {}
                }
                i += 2;
            }
        }
    }
    found.then_some(input)
}

/// Checks a fixture, and plans it when it has no check errors (so that
/// evaluation and policy diagnostics show too). Returns the rendering.
pub fn diagnose(
    files: &BTreeMap<String, String>,
) -> (String, Vec<weir_compiler::diagnostics::Diagnostic>) {
    let mut session = weir_compiler::Session::new();
    session.set_files(files);
    let mut diags = session.check();
    if !diags
        .iter()
        .any(weir_compiler::diagnostics::Diagnostic::is_error)
    {
        let input = fixture_args(files).unwrap_or_default();
        let has_pipeline = files.values().any(|t| t.contains("pipeline "));
        if has_pipeline || input.pipeline.is_some() {
            let (_, d) = session.plan(&input);
            diags = d;
        }
    }
    (
        render_terminal(&diags, files, TerminalOptions { color: false }),
        diags,
    )
}
