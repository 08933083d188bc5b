//! Weir's static types.

use std::fmt;

/// Report kinds a step declares, as a bit set.
pub const REPORT_JUNIT: u8 = 1;
pub const REPORT_COVERAGE: u8 = 2;
pub const REPORT_SARIF: u8 = 4;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ty {
    Int,
    Bool,
    Str,
    Duration,
    Size,
    Percent,
    List(Box<Ty>),
    /// A record; `name` is set for declared `type`s.
    Record {
        name: Option<String>,
        fields: Vec<(String, Ty)>,
    },
    Enum(String),
    Optional(Box<Ty>),
    /// The type of `none` before it meets an optional.
    NoneLit,
    Secret,
    Dir,
    File,
    /// A list element that is a `Dir` or a `File` (as `inputs:` takes).
    Artifact,
    Step(StepTy),
    Gate,
    Approval,
    /// Reports (`junit(...)` and friends); the bit set says which kinds.
    Reports(u8),
    Raw,
    Fn(String),
    Module(String),
    /// An enum type used as a value (`Env` in `Env.dev`).
    EnumType(String),
    Unit,
    /// Stands where an error was already reported: fits everything, silently.
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct StepTy {
    /// Declared outputs; `None` for a step whose outputs are not known here
    /// (the annotation `Step`). Shared: every use of a step's name copies
    /// its type.
    pub outputs: Option<std::sync::Arc<Vec<(String, Ty)>>>,
    pub reports: u8,
}

/// A type plus whether the value exists only at run time.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Typed {
    pub ty: Ty,
    pub rt: bool,
}

impl Typed {
    pub fn plan(ty: Ty) -> Self {
        Typed { ty, rt: false }
    }
    pub fn run(ty: Ty) -> Self {
        Typed { ty, rt: true }
    }
    pub fn error() -> Self {
        Typed {
            ty: Ty::Error,
            rt: false,
        }
    }
}

impl Ty {
    pub fn is_error(&self) -> bool {
        matches!(self, Ty::Error)
    }
    pub fn test_report() -> Ty {
        Ty::Record {
            name: Some("TestReport".into()),
            fields: vec![
                ("total".into(), Ty::Int),
                ("passed".into(), Ty::Int),
                ("failed".into(), Ty::Int),
                ("skipped".into(), Ty::Int),
            ],
        }
    }
    pub fn coverage() -> Ty {
        Ty::Record {
            name: Some("Coverage".into()),
            fields: vec![
                ("lines".into(), Ty::Percent),
                ("branches".into(), Ty::Percent),
            ],
        }
    }
    pub fn findings() -> Ty {
        Ty::Record {
            name: Some("Findings".into()),
            fields: vec![
                ("errors".into(), Ty::Int),
                ("warnings".into(), Ty::Int),
                ("notes".into(), Ty::Int),
                ("total".into(), Ty::Int),
            ],
        }
    }
    pub fn git() -> Ty {
        Ty::Record {
            name: Some("Git".into()),
            fields: vec![
                ("branch".into(), Ty::Str),
                ("sha".into(), Ty::Str),
                ("tag".into(), Ty::Optional(Box::new(Ty::Str))),
            ],
        }
    }
    pub fn event() -> Ty {
        Ty::Record {
            name: Some("Event".into()),
            fields: vec![("kind".into(), Ty::Str), ("actor".into(), Ty::Str)],
        }
    }
    /// What a policy sees of a step.
    pub fn step_view() -> Ty {
        let strs = || Ty::List(Box::new(Ty::Str));
        Ty::Record {
            name: Some("StepInfo".into()),
            fields: vec![
                ("name".into(), Ty::Str),
                ("kind".into(), Ty::Str),
                ("pipeline".into(), Ty::Str),
                ("stage".into(), Ty::Str),
                ("image".into(), Ty::Str),
                ("environment".into(), Ty::Str),
                ("labels".into(), strs()),
                ("secrets".into(), strs()),
                ("depends_on".into(), strs()),
                ("approved".into(), Ty::Bool),
                ("gated".into(), Ty::Bool),
            ],
        }
    }

    /// Whether a value of type `self` may stand where `expected` is wanted.
    pub fn fits(&self, expected: &Ty) -> bool {
        match (self, expected) {
            (Ty::Error, _) | (_, Ty::Error) => true,
            (a, b) if a == b => true,
            (Ty::NoneLit, Ty::Optional(_)) => true,
            (a, Ty::Optional(b)) => a.fits(b),
            (Ty::List(a), Ty::List(b)) => a.fits(b),
            (Ty::Step(_), Ty::Step(StepTy { outputs: None, .. })) => true,
            (Ty::Reports(_), Ty::Reports(_)) => true,
            (Ty::Dir | Ty::File, Ty::Artifact) => true,
            (
                Ty::Record {
                    fields: fa,
                    name: na,
                },
                Ty::Record {
                    fields: fb,
                    name: nb,
                },
            ) => {
                (na.is_none() || nb.is_none() || na == nb)
                    && fb
                        .iter()
                        .all(|(n, t)| fa.iter().any(|(m, u)| m == n && u.fits(t)))
                    && fa.len() == fb.len()
            }
            _ => false,
        }
    }

    /// The common type of two branches or list elements, if any.
    pub fn unify(a: &Ty, b: &Ty) -> Option<Ty> {
        match (a, b) {
            (Ty::Error, x) | (x, Ty::Error) => Some(x.clone()),
            (Ty::NoneLit, Ty::Optional(_)) => Some(b.clone()),
            (Ty::Optional(_), Ty::NoneLit) => Some(a.clone()),
            (Ty::NoneLit, x) | (x, Ty::NoneLit) if !matches!(x, Ty::NoneLit) => {
                Some(Ty::Optional(Box::new(x.clone())))
            }
            (Ty::Reports(x), Ty::Reports(y)) => Some(Ty::Reports(x | y)),
            (Ty::Dir | Ty::File | Ty::Artifact, Ty::Dir | Ty::File | Ty::Artifact) if a != b => {
                Some(Ty::Artifact)
            }
            (Ty::Step(x), Ty::Step(y)) => Some(if x == y {
                a.clone()
            } else {
                Ty::Step(StepTy {
                    outputs: None,
                    reports: x.reports & y.reports,
                })
            }),
            (Ty::List(x), Ty::List(y)) => Ty::unify(x, y).map(|t| Ty::List(Box::new(t))),
            _ if a == b => Some(a.clone()),
            _ if a.fits(b) => Some(b.clone()),
            _ if b.fits(a) => Some(a.clone()),
            _ => None,
        }
    }

    pub fn is_node(&self) -> bool {
        matches!(self, Ty::Step(_) | Ty::Gate | Ty::Approval)
    }
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Int => f.write_str("int"),
            Ty::Bool => f.write_str("bool"),
            Ty::Str => f.write_str("str"),
            Ty::Duration => f.write_str("duration"),
            Ty::Size => f.write_str("size"),
            Ty::Percent => f.write_str("percent"),
            Ty::List(t) => write!(f, "list[{t}]"),
            Ty::Record { name: Some(n), .. } => f.write_str(n),
            Ty::Record { name: None, fields } => {
                f.write_str("{ ")?;
                for (i, (n, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {t}")?;
                }
                f.write_str(" }")
            }
            Ty::Enum(n) | Ty::EnumType(n) => f.write_str(n),
            Ty::Optional(t) => write!(f, "{t}?"),
            Ty::NoneLit => f.write_str("none"),
            Ty::Secret => f.write_str("Secret"),
            Ty::Dir => f.write_str("Dir"),
            Ty::File => f.write_str("File"),
            Ty::Artifact => f.write_str("Dir | File"),
            Ty::Step(_) => f.write_str("Step"),
            Ty::Gate => f.write_str("Gate"),
            Ty::Approval => f.write_str("Approval"),
            Ty::Reports(_) => f.write_str("Report"),
            Ty::Raw => f.write_str("Raw"),
            Ty::Fn(n) => write!(f, "fn {n}"),
            Ty::Module(m) => write!(f, "module \"{m}\""),
            Ty::Unit => f.write_str("nothing"),
            Ty::Error => f.write_str("{unknown}"),
        }
    }
}
