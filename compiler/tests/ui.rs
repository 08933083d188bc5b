//! UI tests: every fixture under `tests/ui/` is checked (and planned when it
//! checks clean), and its diagnostics are snapshotted exactly as the
//! terminal renders them. Fixtures under `ui/ok/` must produce none.
//! Review changes with `cargo insta review`.

mod common;

use std::path::Path;
use weir_compiler::diagnostics::Code;

fn fixtures() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let mut out = Vec::new();
    for area in std::fs::read_dir(&root).unwrap() {
        let area = area.unwrap().path();
        if !area.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&area).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() || p.extension().is_some_and(|x| x == "weir") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn ui_fixtures_render_as_snapshotted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let all = fixtures();
    assert!(
        all.len() >= 60,
        "expected at least 60 fixtures, found {}",
        all.len()
    );
    let mut problems: Vec<String> = Vec::new();
    for path in all {
        let files = common::load_fixture(&path);
        let (rendered, diags) = common::diagnose(&files);
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace(['/', '\\'], "__")
            .replace(".weir", "");
        if path.starts_with(root.join("ok")) {
            if !diags.is_empty() {
                problems.push(format!(
                    "{} should be clean, got:\n{rendered}",
                    path.display()
                ));
            }
            continue;
        }
        if diags.is_empty() {
            problems.push(format!("{} produced no diagnostic", path.display()));
            continue;
        }
        let mut sources = String::new();
        for (name, text) in &files {
            sources.push_str(&format!("--- {name}\n{text}\n"));
        }
        insta::with_settings!({ snapshot_path => "ui_snapshots", prepend_module_to_snapshot => false, description => sources, omit_expression => true }, {
            insta::assert_snapshot!(rel, rendered);
        });
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Codes that a single source fixture cannot produce, each tested elsewhere:
/// E0007/E0008/E0501 come from loading files (cli tests), E0301 from plans
/// built by a host (`plan_validate.rs`), E9001 is a bug report.
const NOT_FROM_FIXTURES: &[&str] = &["E0007", "E0008", "E0501", "E0301", "E9001"];

#[test]
fn every_code_has_a_fixture_and_docs() {
    let mut seen = std::collections::BTreeSet::new();
    for path in fixtures() {
        let files = common::load_fixture(&path);
        let (_, diags) = common::diagnose(&files);
        for d in diags {
            seen.insert(d.code);
        }
    }
    let mut missing = Vec::new();
    for c in Code::ALL {
        assert!(
            c.docs()
                .starts_with(&format!("# {} {}", c.as_str(), c.name())),
            "docs of {c} must start with its code and name"
        );
        if !seen.contains(c) && !NOT_FROM_FIXTURES.contains(&c.as_str()) {
            missing.push(c.as_str());
        }
    }
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
}
