//! Error recovery: independent mistakes are all reported, one typo gives one
//! diagnostic, and the rest of the file is still checked.

use std::collections::BTreeMap;
use weir_compiler::diagnostics::Code;

fn check(src: &str) -> Vec<(Code, u32)> {
    let mut files = BTreeMap::new();
    files.insert("ci.weir".to_owned(), src.to_owned());
    weir_compiler::check(&files)
        .into_iter()
        .map(|d| (d.code, d.primary.span.start))
        .collect()
}

#[test]
fn three_independent_syntax_errors_are_all_reported() {
    let src = "pipeline ci {\n  step \"a\" { run: \"x\" timeout = 5m }\n  step \"b\" { run: \"y\", retries: }\n  let c = 1 + * 2\n  step \"d\" { run: \"ok\" }\n}\n";
    let d = check(src);
    assert_eq!(
        d.iter().filter(|(c, _)| *c == Code::SyntaxError).count(),
        3,
        "{d:?}"
    );
    // FIXME: a field list cut short by a syntax error still reports the
    // step's missing `run` (E0215); the checker should know the body was partial.
    assert!(
        d.iter().all(|(c, _)| matches!(
            c,
            Code::SyntaxError | Code::MissingStepField | Code::UnusedValue
        )),
        "{d:?}"
    );
}

#[test]
fn a_typo_in_one_item_leaves_the_others_checked() {
    // A syntax error in the first function, a type error in the pipeline.
    let src = "fn f( -> int { 1 }\npipeline ci {\n  step \"a\" { run: 42 }\n}\n";
    let d = check(src);
    assert!(d.iter().any(|(c, _)| *c == Code::SyntaxError), "{d:?}");
    assert!(d.iter().any(|(c, _)| *c == Code::TypeMismatch), "{d:?}");
}

#[test]
fn one_misspelt_name_gives_one_diagnostic_not_a_cascade() {
    let src = "pipeline ci {\n  let build = step \"build\" { run: \"make\", outputs: { bin: file(\"app\") } }\n  step \"test\" { run: \"./${biuld.bin}\", inputs: [biuld.bin], after: [biuld] }\n}\n";
    let d = check(src);
    assert_eq!(d.len(), 3, "one per use, no follow-on errors: {d:?}");
    assert!(d.iter().all(|(c, _)| *c == Code::UnknownName));
}

#[test]
fn unterminated_string_is_one_diagnostic() {
    let d = check("pipeline ci {\n  step \"a { run: \"x\" }\n}\n");
    assert!(!d.is_empty());
    assert!(
        d.iter()
            .filter(|(c, _)| *c == Code::UnterminatedString)
            .count()
            <= 1,
        "{d:?}"
    );
}

/// A field given again points at its first occurrence, whether the step
/// has a few fields (looked through) or many (kept in a map).
#[test]
fn a_repeated_step_field_points_at_its_first_occurrence_however_many_fields() {
    for unknown in [0usize, 3, 40, 2_000] {
        let mut body = String::from("run: \"a\"\n");
        for i in 0..unknown {
            body.push_str(&format!("    extra_{i}: 1\n"));
        }
        body.push_str("    run: \"b\"\n    run: \"c\"\n");
        let src = format!("pipeline ci {{\n  step \"s\" {{\n    {body}  }}\n}}\n");
        let mut files = BTreeMap::new();
        files.insert("ci.weir".to_owned(), src.clone());
        let diags = weir_compiler::check(&files);
        let dups: Vec<_> = diags
            .iter()
            .filter(|d| d.code == Code::DuplicateField)
            .collect();
        assert_eq!(dups.len(), 2, "{unknown} unknown fields");
        let first = src.find("run: \"a\"").unwrap() as u32;
        for d in dups {
            let earlier = d.labels.iter().map(|l| l.span.start).collect::<Vec<_>>();
            assert_eq!(earlier, [first], "{unknown} unknown fields: {d:?}");
        }
        assert_eq!(
            diags
                .iter()
                .filter(|d| d.code == Code::UnknownStepField)
                .count(),
            unknown
        );
    }
}
