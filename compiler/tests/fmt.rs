//! The formatter over every example and fixture: idempotent, never changes
//! the parsed tree, keeps every comment, and is a no-op on the examples.

mod common;

use std::path::{Path, PathBuf};
use weir_compiler::fmt::format_source;
use weir_compiler::syntax::lexer::{P, Tok, lex};

fn all_sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut stack = vec![
        root.parent().unwrap().join("examples"),
        root.join("tests/ui"),
    ];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "weir") {
                out.push((
                    p.clone(),
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn tokens(src: &str) -> Vec<Tok> {
    lex("", src)
        .tokens
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| !matches!(t, Tok::P(P::Comma | P::Semi)))
        .collect()
}

#[test]
fn formatting_is_idempotent_and_preserves_tree_and_comments() {
    let mut formatted = 0;
    for (path, src) in all_sources() {
        let Ok(once) = format_source("f.weir", &src) else {
            continue;
        };
        formatted += 1;
        let twice = format_source("f.weir", &once).expect("formatted output parses");
        assert_eq!(once, twice, "not idempotent: {}", path.display());
        assert_eq!(
            tokens(&src),
            tokens(&once),
            "tree changed: {}",
            path.display()
        );
        let c0: Vec<String> = lex("", &src)
            .comments
            .into_iter()
            .map(|c| c.text.trim_end().to_owned())
            .collect();
        let c1: Vec<String> = lex("", &once)
            .comments
            .into_iter()
            .map(|c| c.text.trim_end().to_owned())
            .collect();
        assert_eq!(c0, c1, "comments changed: {}", path.display());
    }
    assert!(formatted >= 8, "only {formatted} sources formatted");
}

#[test]
fn examples_are_already_formatted() {
    for (path, src) in all_sources() {
        if !path.to_string_lossy().contains("examples") {
            continue;
        }
        assert_eq!(
            format_source("f.weir", &src).unwrap(),
            src,
            "{} is not formatted",
            path.display()
        );
    }
}

#[test]
fn formatter_normalises_layout() {
    let src = "pipeline ci{ let a=step \"a\"{run:\"x\",retries:2}\n\n\n// keep me\nstep \"b\" { run: [\"echo\", \"${a.ok}\"]; after: [a] } // trailing\n}";
    let out = format_source("f.weir", src).unwrap();
    assert_eq!(
        out,
        "pipeline ci {\n  let a = step \"a\" {\n    run: \"x\"\n    retries: 2\n  }\n\n  // keep me\n  step \"b\" {\n    run: [\"echo\", \"${a.ok}\"]\n    after: [a]\n  } // trailing\n}\n"
    );
}
