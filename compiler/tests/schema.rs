//! Every example's plan validates against the published JSON Schema.

mod common;

use std::path::Path;
use weir_compiler::eval::EvalInput;
use weir_compiler::plan::Context;

#[test]
fn every_example_plan_validates_against_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("docs/plan.schema.json")).unwrap())
            .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut n = 0;
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let dir = e.unwrap().path();
        let files = common::load_fixture(&dir);
        if files.is_empty() {
            continue;
        }
        let input = EvalInput {
            context: Context {
                git_branch: "main".into(),
                git_sha: "abc".into(),
                git_tag: Some("v1.0.0".into()),
                event_kind: "push".into(),
                event_actor: "dev".into(),
            },
            ..Default::default()
        };
        let (plan, diags) = weir_compiler::compile(&files, &input);
        assert!(diags.is_empty(), "{}: {diags:?}", dir.display());
        let json: serde_json::Value = serde_json::from_str(&plan.unwrap().to_json()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&json)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", dir.display());
        n += 1;
    }
    assert!(n >= 5);
}
