//! Plan invariants that the evaluator guarantees by construction are still
//! checked for plans a host builds or edits through the API.

mod common;

use std::collections::BTreeMap;
use weir_compiler::diagnostics::Code;
use weir_compiler::eval::EvalInput;

#[test]
fn a_cycle_in_a_host_edited_plan_names_every_node() {
    let mut files = BTreeMap::new();
    files.insert("ci.weir".to_owned(), "pipeline ci {\n  let a = step \"a\" { run: \"true\" }\n  let b = step \"b\" { run: \"true\", after: [a] }\n  step \"c\" { run: \"true\", after: [b] }\n}\n".to_owned());
    let (plan, diags) = weir_compiler::compile(&files, &EvalInput::default());
    assert!(diags.is_empty(), "{diags:?}");
    let mut plan = plan.unwrap();
    assert!(plan.validate().is_empty());
    plan.nodes[0].needs.push("c".into());
    let problems = plan.validate();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, Code::DependencyCycle);
    assert!(
        problems[0].message.contains("`a` → `b` → `c`"),
        "{}",
        problems[0].message
    );
    assert_eq!(problems[0].labels.len(), 2);
}

#[test]
fn plans_round_trip_through_json() {
    for dir in [
        "hello",
        "rust-service",
        "promotion",
        "python-release",
        "node-monorepo",
    ] {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(dir);
        let files = common::load_fixture(&root);
        let (plan, diags) = weir_compiler::compile(&files, &EvalInput::default());
        assert!(diags.is_empty(), "{dir}: {diags:?}");
        let plan = plan.unwrap();
        let back: weir_compiler::plan::Plan = serde_json::from_str(&plan.to_json()).unwrap();
        assert_eq!(back, plan, "{dir}");
    }
}
