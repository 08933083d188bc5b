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
