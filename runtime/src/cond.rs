//! Evaluation of the plan's run-time expressions ([`Cond`]) once the steps
//! they read have run: the same operators as the language, on JSON values.

use serde_json::Value;
use std::collections::BTreeMap;
use weir_compiler::plan::{Cond, Segment};

/// What is known about finished nodes.
#[derive(Default, Debug, Clone)]
pub struct Facts {
    /// Node id to value outputs.
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Node id to (ok, exit code).
    pub status: BTreeMap<String, (bool, i32)>,
    /// Node id to report kind (`tests`, `coverage`, `findings`) to report JSON.
    pub reports: BTreeMap<String, BTreeMap<String, Value>>,
    /// Declared types of value outputs, to read `int` and `bool` values.
    pub value_types: BTreeMap<(String, String), String>,
}

/// Why a run-time expression could not be evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

pub fn eval(c: &Cond, facts: &Facts) -> Result<Value, Unavailable> {
    Ok(match c {
        Cond::Lit(v) => v.clone(),
        Cond::Output { node, name } => {
            let raw = facts.values.get(node).and_then(|m| m.get(name)).ok_or_else(|| Unavailable(format!("output `{name}` of `{node}` is not available (the step did not run or did not write it)")))?;
            match facts
                .value_types
                .get(&(node.clone(), name.clone()))
                .map(String::as_str)
            {
                Some("int") => raw.trim().parse::<i64>().map(Value::from).map_err(|_| {
                    Unavailable(format!(
                        "output `{name}` of `{node}` should be an int, got `{raw}`"
                    ))
                })?,
                Some("bool") => match raw.trim() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(Unavailable(format!(
                            "output `{name}` of `{node}` should be true or false, got `{raw}`"
                        )));
                    }
                },
                _ => Value::String(raw.clone()),
            }
        }
        Cond::Status { node, field } => {
            let (ok, code) = facts
                .status
                .get(node)
                .ok_or_else(|| Unavailable(format!("`{node}` has not run")))?;
            if field == "ok" {
                Value::Bool(*ok)
            } else {
                Value::from(*code)
            }
        }
        Cond::Report {
            node,
            report,
            field,
        } => {
            let r = facts
                .reports
                .get(node)
                .and_then(|m| m.get(report))
                .ok_or_else(|| Unavailable(format!("`{node}` produced no `{report}` report")))?;
            r.get(field).cloned().ok_or_else(|| {
                Unavailable(format!(
                    "the `{report}` report of `{node}` has no `{field}`"
                ))
            })?
        }
        Cond::Not(x) => Value::Bool(!truthy(&eval(x, facts)?)),
        Cond::Neg(x) => match eval(x, facts)? {
            Value::Number(n) => n.as_i64().map_or_else(
                || Value::from(-n.as_f64().unwrap_or(0.0)),
                |i| Value::from(-i),
            ),
            other => other,
        },
        Cond::Concat(segs) => Value::String(render(segs, facts, false)?),
        Cond::Binary { op, left, right } => {
            let l = eval(left, facts)?;
            if op == "&&" && !truthy(&l) {
                return Ok(Value::Bool(false));
            }
            if op == "||" && truthy(&l) {
                return Ok(Value::Bool(true));
            }
            if op == "??" && !l.is_null() {
                return Ok(l);
            }
            let r = eval(right, facts)?;
            binary(op, &l, &r)
        }
    })
}

pub fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn binary(op: &str, l: &Value, r: &Value) -> Value {
    match op {
        "==" => Value::Bool(equal(l, r)),
        "!=" => Value::Bool(!equal(l, r)),
        "<" | "<=" | ">" | ">=" => {
            let ord = match (num(l), num(r), l.as_str(), r.as_str()) {
                (Some(a), Some(b), _, _) => a.partial_cmp(&b),
                (_, _, Some(a), Some(b)) => Some(a.cmp(b)),
                _ => None,
            };
            Value::Bool(ord.is_some_and(|o| match op {
                "<" => o.is_lt(),
                "<=" => o.is_le(),
                ">" => o.is_gt(),
                _ => o.is_ge(),
            }))
        }
        "&&" => Value::Bool(truthy(l) && truthy(r)),
        "||" => Value::Bool(truthy(l) || truthy(r)),
        "in" => match r {
            Value::Array(items) => Value::Bool(items.iter().any(|i| equal(i, l))),
            Value::String(s) => Value::Bool(l.as_str().is_some_and(|x| s.contains(x))),
            _ => Value::Bool(false),
        },
        "??" => r.clone(),
        "+" | "-" | "*" | "/" => match (l, r) {
            (Value::String(a), Value::String(b)) if op == "+" => Value::String(format!("{a}{b}")),
            _ => match (l.as_i64(), r.as_i64(), num(l), num(r)) {
                (Some(a), Some(b), _, _) => match op {
                    "+" => Value::from(a.saturating_add(b)),
                    "-" => Value::from(a.saturating_sub(b)),
                    "*" => Value::from(a.saturating_mul(b)),
                    _ => Value::from(if b == 0 { 0 } else { a / b }),
                },
                (_, _, Some(a), Some(b)) => Value::from(match op {
                    "+" => a + b,
                    "-" => a - b,
                    "*" => a * b,
                    _ => {
                        if b == 0.0 {
                            0.0
                        } else {
                            a / b
                        }
                    }
                }),
                _ => Value::Null,
            },
        },
        _ => Value::Null,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Renders segments to text; `shell` quotes values marked for quoting.
pub fn render(segs: &[Segment], facts: &Facts, shell: bool) -> Result<String, Unavailable> {
    let mut out = String::new();
    for s in segs {
        match s {
            Segment::Text(t) => out.push_str(t),
            Segment::Value { value, quote } => {
                let v = text(&eval(value, facts)?);
                if shell && *quote {
                    out.push_str(&weir_compiler::plan::shell_quote(&v));
                } else {
                    out.push_str(&v);
                }
            }
        }
    }
    Ok(out)
}
