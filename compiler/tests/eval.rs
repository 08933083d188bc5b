//! Evaluation semantics, asserted on the plan.

use std::collections::BTreeMap;
use weir_compiler::eval::EvalInput;
use weir_compiler::plan::{Command, Cond, Plan, Segment};

fn plan_with(src: &str, params: &[(&str, &str)]) -> Plan {
    let mut files = BTreeMap::new();
    files.insert("ci.weir".to_owned(), src.to_owned());
    let input = EvalInput {
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    };
    let (plan, diags) = weir_compiler::compile(&files, &input);
    assert!(diags.is_empty(), "{diags:#?}");
    plan.unwrap()
}

fn script(plan: &Plan, id: &str) -> String {
    let n = plan.nodes.iter().find(|n| n.id == id).unwrap();
    match n.command.as_ref().unwrap() {
        Command::Shell { script } => script
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.clone(),
                Segment::Value { .. } => "<rt>".to_owned(),
            })
            .collect(),
        Command::Argv { .. } => panic!("argv"),
    }
}

#[test]
fn interpolation_quotes_hostile_text_as_one_shell_word() {
    let src = "param title: str = \"\"\npipeline ci {\n  step \"echo\" { run: \"echo ${title}\" }\n  step \"words\" { run: \"ls ${[\"a b\", \"c\"]}\" }\n}\n";
    for hostile in [
        "\"; touch /tmp/pwned; echo \"",
        "$(id)",
        "`id`",
        "a\nb",
        "it's",
        "&&|;<>*?[]{}~",
    ] {
        let plan = plan_with(src, &[("title", hostile)]);
        let s = script(&plan, "echo");
        let quoted = format!("'{}'", hostile.replace('\'', "'\\''"));
        assert_eq!(s, format!("echo {quoted}"), "for {hostile:?}");
    }
    let plan = plan_with(src, &[("title", "plain")]);
    assert_eq!(script(&plan, "echo"), "echo plain");
    assert_eq!(script(&plan, "words"), "ls 'a b' c");
}

#[test]
fn raw_splices_unquoted() {
    let plan = plan_with(
        "pipeline ci { step \"r\" { run: \"echo ${raw(\"$HOME\")}\" } }",
        &[],
    );
    assert_eq!(script(&plan, "r"), "echo $HOME");
}

#[test]
fn record_defaults_are_filled_in() {
    let src = "type Target = { triple: str, profile: str = \"release\" }\nfn build(t: Target) -> Step { step \"build ${t.triple}\" { run: \"cargo build --profile ${t.profile}\" } }\npipeline ci { build({ triple: \"x86\" }) }\n";
    let plan = plan_with(src, &[]);
    assert_eq!(script(&plan, "build-x86"), "cargo build --profile release");
}

#[test]
fn an_approval_statement_orders_every_later_step_in_its_block() {
    let src = "param env: str = \"dev\"\npipeline ci {\n  step \"build\" { run: \"make\" }\n  stage deploy {\n    if env == \"prod\" { approval \"release\" { min: 2, not_author: true } }\n    step \"deploy\" { run: \"deploy\" }\n  }\n  step \"notify\" { run: \"notify\" }\n}\n";
    let plan = plan_with(src, &[("env", "prod")]);
    let deploy = plan.nodes.iter().find(|n| n.id == "deploy").unwrap();
    assert_eq!(deploy.needs, vec!["release".to_owned()]);
    let notify = plan.nodes.iter().find(|n| n.id == "notify").unwrap();
    assert!(notify.needs.is_empty(), "the barrier ends with its stage");
    let approval = plan
        .nodes
        .iter()
        .find(|n| n.id == "release")
        .unwrap()
        .approval
        .clone()
        .unwrap();
    assert_eq!((approval.min, approval.not_author), (2, true));
    let plan = plan_with(src, &[("env", "dev")]);
    assert!(plan.nodes.iter().all(|n| n.kind != "approval"));
}

#[test]
fn run_time_conditions_are_kept_as_trees_and_plan_time_ones_are_folded() {
    let src = "pipeline ci {\n  let t = step \"test\" { run: \"t\", reports: [junit(\"j.xml\")] }\n  gate \"q\" { require t.tests.failed == 0 else \"tests failed\" }\n  step \"s\" { run: \"x\", when: 1 + 1 == 2 }\n  stage late when git.branch == \"main\" { step \"deploy\" { run: \"d\" } }\n}\n";
    let plan = plan_with(src, &[]);
    let q = plan.nodes.iter().find(|n| n.id == "q").unwrap();
    assert_eq!(q.needs, vec!["test".to_owned()]);
    match &q.requires[0].cond {
        Cond::Binary { op, left, .. } => {
            assert_eq!(op, "==");
            assert!(
                matches!(&**left, Cond::Report { node, report, field } if node == "test" && report == "tests" && field == "failed")
            );
        }
        other => panic!("{other:?}"),
    }
    let s = plan.nodes.iter().find(|n| n.id == "s").unwrap();
    assert_eq!(s.when, Some(Cond::Lit(serde_json::Value::Bool(true))));
    // The branch is empty here, so the stage is folded to false and its steps skipped.
    let d = plan.nodes.iter().find(|n| n.id == "deploy").unwrap();
    assert_eq!(d.when, Some(Cond::Lit(serde_json::Value::Bool(false))));
}

#[test]
fn outputs_create_edges_through_inputs_and_interpolation() {
    let src = "pipeline ci {\n  let b = step \"build\" { run: \"make\", outputs: { bin: file(\"out/app\"), v: value(str) } }\n  step \"a\" { run: \"./x\", inputs: [b.bin] }\n  step \"c\" { run: \"echo ${b.v}\" }\n  step \"d\" { run: \"cat ${b.bin}\" }\n}\n";
    let plan = plan_with(src, &[]);
    for id in ["a", "c", "d"] {
        assert_eq!(
            plan.nodes.iter().find(|n| n.id == id).unwrap().needs,
            vec!["build".to_owned()],
            "{id}"
        );
    }
    assert_eq!(script(&plan, "c"), "echo <rt>");
    assert_eq!(script(&plan, "d"), "cat out/app");
}

#[test]
fn secrets_appear_in_the_plan_by_name_only() {
    let plan = plan_with(
        "pipeline ci { step \"p\" { run: \"publish\", secrets: { TOKEN: secret(\"PYPI_TOKEN\") } } }",
        &[],
    );
    let json = plan.to_json();
    assert!(json.contains("\"TOKEN\": \"PYPI_TOKEN\""), "{json}");
}

/// `plan` evaluates beside the type check and stops the evaluation when the
/// check fails: an evaluation told to stop gives no plan, and a program
/// with a type error gives the check's diagnostics and no plan.
#[test]
fn an_evaluation_told_to_stop_gives_no_plan() {
    use std::sync::atomic::AtomicBool;
    let src = "pipeline ci {\n  step \"a\" { run: \"true\" }\n}\n";
    let mut parsed = BTreeMap::new();
    parsed.insert(
        "ci.weir".to_owned(),
        std::sync::Arc::new(weir_compiler::syntax::parse("ci.weir", src)),
    );
    let mut diags = Vec::new();
    let program = weir_compiler::resolve::resolve(&parsed, &mut diags);
    assert!(diags.is_empty(), "{diags:?}");
    let input = EvalInput::default();
    let go = AtomicBool::new(false);
    let stop = AtomicBool::new(true);
    let plan = weir_compiler::eval::evaluate_unless(&program, &input, &mut diags, &go);
    assert_eq!(plan.map(|p| p.nodes.len()), Some(1));
    let plan = weir_compiler::eval::evaluate_unless(&program, &input, &mut diags, &stop);
    assert!(plan.is_none() && diags.is_empty(), "{diags:?}");

    let mut files = BTreeMap::new();
    files.insert(
        "ci.weir".to_owned(),
        "pipeline ci {\n  step \"a\" { run: 1 + \"x\" }\n}\n".to_owned(),
    );
    let (plan, diags) = weir_compiler::compile(&files, &input);
    assert!(plan.is_none());
    assert!(
        diags
            .iter()
            .any(weir_compiler::diagnostics::Diagnostic::is_error),
        "{diags:?}"
    );
}
