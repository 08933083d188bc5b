//! The incremental invariant: editing one file re-parses only that file.

use std::collections::BTreeMap;
use std::sync::Arc;

#[test]
fn editing_one_file_reuses_the_parse_of_the_others() {
    let mut files = BTreeMap::new();
    files.insert(
        "a.weir".to_owned(),
        "pipeline ci {\n  step \"a\" { run: \"true\" }\n}\n".to_owned(),
    );
    files.insert(
        "lib.weir".to_owned(),
        "pub fn greet() -> str { \"hi\" }\n".to_owned(),
    );
    let mut s = weir_compiler::Session::new();
    s.set_files(&files);
    assert!(s.check().is_empty());
    let lib_before = s.parsed("lib.weir").unwrap();
    let a_before = s.parsed("a.weir").unwrap();

    files.insert(
        "a.weir".to_owned(),
        "pipeline ci {\n  step \"a\" { run: 1 }\n}\n".to_owned(),
    );
    s.set_files(&files);
    let diags = s.check();
    assert_eq!(diags.len(), 1, "{diags:?}");
    assert!(
        Arc::ptr_eq(&lib_before, &s.parsed("lib.weir").unwrap()),
        "lib.weir was parsed again"
    );
    assert!(
        !Arc::ptr_eq(&a_before, &s.parsed("a.weir").unwrap()),
        "a.weir kept a stale parse"
    );

    // Setting identical texts changes nothing.
    let a_now = s.parsed("a.weir").unwrap();
    s.set_files(&files);
    assert!(Arc::ptr_eq(&a_now, &s.parsed("a.weir").unwrap()));
    assert_eq!(s.check(), diags);
}

#[test]
fn removing_and_adding_files_updates_the_project() {
    let mut files = BTreeMap::new();
    files.insert(
        "a.weir".to_owned(),
        "use \"b.weir\" as b\npipeline ci { step b.name { run: \"true\" } }\n".to_owned(),
    );
    files.insert(
        "b.weir".to_owned(),
        "pub let name = \"from-b\"\n".to_owned(),
    );
    let mut s = weir_compiler::Session::new();
    s.set_files(&files);
    assert!(s.check().is_empty());
    files.remove("b.weir");
    s.set_files(&files);
    let d = s.check();
    assert!(
        d.iter()
            .any(|d| d.code == weir_compiler::diagnostics::Code::UnknownModule),
        "{d:?}"
    );
    files.insert("b.weir".to_owned(), "pub let name = \"again\"\n".to_owned());
    s.set_files(&files);
    assert!(s.check().is_empty());
    let (plan, _) = s.plan(&weir_compiler::eval::EvalInput::default());
    assert_eq!(plan.unwrap().nodes[0].name, "again");
}

#[test]
fn an_edit_cancels_queries_on_older_snapshots() {
    let mut files = BTreeMap::new();
    files.insert(
        "a.weir".to_owned(),
        "pipeline ci {\n  step \"a\" { run: \"true\" }\n}\n".to_owned(),
    );
    let mut s = weir_compiler::Session::new();
    s.set_files(&files);
    let snap = s.snapshot();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        ready_tx.send(()).unwrap();
        // By now the edit below has raised the cancellation flag and waits
        // for this snapshot to be dropped.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| snap.checked()));
        drop(snap);
        match r {
            Ok(_) => false,
            Err(p) => weir_compiler::is_cancelled(&*p),
        }
    });
    ready_rx.recv().unwrap();
    files.insert(
        "a.weir".to_owned(),
        "pipeline ci {\n  step \"a\" { run: 1 }\n}\n".to_owned(),
    );
    // Blocks until the reader has unwound and dropped its snapshot.
    s.set_files(&files);
    assert!(reader.join().unwrap(), "the stale query was not cancelled");
    // The session answers for the new text.
    assert_eq!(s.check().len(), 1);
    // A fresh snapshot sees the edit.
    assert_eq!(s.snapshot().checked().unwrap().diagnostics.len(), 1);
}

/// A project whose main pipeline is large enough for an editor's session
/// to keep statement checks: steps that read earlier steps, int lets that
/// read earlier lets, stages that bind in the pipeline's scope, calls into
/// another file, and module items every statement depends on.
fn memo_project() -> BTreeMap<String, String> {
    let mut main = String::from(
        "use \"lib.weir\" as lib\nenum Env { dev, prod }\nparam env: Env = Env.dev\nlet region = \"eu\"\n\npipeline big {\n  on push()\n",
    );
    for i in 0..260 {
        let line = match i % 5 {
            0 => format!(
                "  let s{i} = step \"s {i}\" {{ run: \"echo ${{region}} {i}\", outputs: {{ out: file(\"o{i}\") }}, when: env == Env.dev }}\n"
            ),
            1 => format!("  let n{i} = {i} * 2\n"),
            2 if i > 10 => format!(
                "  let t{i} = step \"t {i}\" {{ run: \"echo ${{n{}}}\", inputs: [s{}.out] }}\n",
                i - 1,
                i - 7
            ),
            3 => format!("  stage st{i} {{\n    let u{i} = lib.job(\"u {i}\")\n  }}\n"),
            _ => format!(
                "  step \"e {i}\" {{ run: \"true\", after: [s{}] }}\n",
                i - i % 5
            ),
        };
        main.push_str(&line);
    }
    main.push_str("}\n\npipeline small {\n  step \"one\" { run: \"true\" }\n}\n");
    let lib = "pub fn job(name: str) -> Step {\n  step name { run: \"make ${name}\" }\n}\n";
    BTreeMap::from([
        ("main.weir".to_owned(), main),
        ("lib.weir".to_owned(), lib.to_owned()),
    ])
}

#[test]
fn an_editors_check_replaying_kept_statements_is_a_fresh_check() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut files = memo_project();
    let mut editor = weir_compiler::Session::for_editor();
    editor.set_files(&files);
    assert_eq!(editor.check(), Vec::new());
    assert_eq!(editor.replayed_checks(), 0);
    let mut clean = files.clone();
    let mut with_errors = 0;
    for round in 0..150 {
        let text = files.get_mut("main.weir").unwrap();
        let lines: Vec<usize> = text.match_indices("\n  ").map(|(i, _)| i + 1).collect();
        let line = lines[rng.random_range(0..lines.len())];
        let at =
            weir_compiler::diagnostics::floor_char_boundary(text, rng.random_range(0..text.len()));
        match round % 10 {
            // A digit changed somewhere: most often inside one statement.
            0 | 1 => {
                if let Some(i) = text[at..].find(|c: char| c.is_ascii_digit()) {
                    text.replace_range((at + i)..=(at + i), ["3", "7"][round % 2]);
                }
            }
            // A binding renamed: its readers now fail.
            2 => {
                if let Some(i) = text[at..].find("let ") {
                    text.insert(at + i + 4, 'z');
                }
            }
            // A binding's type changed, or a name shadowed with another type.
            3 => {
                if let Some(i) = text[at..].find(" * 2") {
                    text.replace_range((at + i)..(at + i + 4), " > 2");
                }
            }
            4 => text.insert_str(line, &format!("  let s{} = \"shadow\"\n", round * 5)),
            // A statement removed or added.
            5 => {
                if let Some(end) = text[line..].find('\n') {
                    text.replace_range(line..=line + end, "");
                }
            }
            6 => text.insert_str(
                line,
                &format!("  let n{} = \"now a string\"\n", 1 + 5 * (round % 40)),
            ),
            // The project outside the body: a module item or the other file.
            7 => {
                let edit = [
                    ("let region = \"eu\"", "let region = 4"),
                    ("enum Env { dev, prod }", "enum Env { prod }"),
                    ("param env: Env = Env.dev", "param env: int = 1"),
                ][rng.random_range(0..3)];
                *text = text.replacen(edit.0, edit.1, 1);
            }
            8 => {
                let lib = files.get_mut("lib.weir").unwrap();
                *lib = if lib.contains("-> Step") {
                    lib.replacen("-> Step", "-> str", 1)
                } else {
                    lib.replacen("-> str", "-> Step", 1)
                };
            }
            // Typing: any character anywhere.
            _ => text.insert_str(
                at,
                ["a", "1", "{", "\"", " ", "é", "."][rng.random_range(0..7)],
            ),
        }
        editor.set_files(&files);
        let got = editor.check();
        assert_eq!(
            got,
            weir_compiler::check(&files),
            "round {round}:\n{}",
            files["main.weir"]
        );
        // Keep the project mostly valid: most edits that broke it are undone.
        if got.is_empty() {
            clean = files.clone();
        } else {
            with_errors += 1;
            if rng.random_range(0..3) > 0 {
                files = clean.clone();
            }
        }
    }
    // The edits did break things, and most statements were replayed.
    assert!(with_errors > 40, "{with_errors}");
    assert!(
        editor.replayed_checks() > 150 * 100,
        "{}",
        editor.replayed_checks()
    );
}

#[test]
fn stages_using_their_own_steps_are_replayed_and_forgotten_with_their_file() {
    let mut text = String::from("pipeline p {\n");
    for i in 0..250 {
        text.push_str(&format!(
            "  stage s{i} {{\n    let a{i} = step \"a{i}\" {{ run: \"echo {i}\" }}\n    step \"b{i}\" {{ run: \"true\", after: [a{i}] }}\n  }}\n"
        ));
    }
    text.push_str("}\n");
    let mut files = BTreeMap::from([("p.weir".to_owned(), text.clone())]);
    let mut s = weir_compiler::Session::for_editor();
    s.set_files(&files);
    assert_eq!(s.check(), Vec::new());
    files.insert(
        "p.weir".to_owned(),
        text.replacen("echo 7\"", "echo 8\"", 1),
    );
    s.set_files(&files);
    assert_eq!(s.check(), Vec::new());
    // Every stage but the edited one: its own `a` is not a read from
    // outside it.
    assert_eq!(s.replayed_checks(), 249);
    // The same text under another name: nothing of the old file is kept.
    let renamed = BTreeMap::from([("q.weir".to_owned(), files["p.weir"].clone())]);
    s.set_files(&renamed);
    assert_eq!(s.check(), Vec::new());
    assert_eq!(s.replayed_checks(), 249);
}
