//! Stable diagnostic codes. A code never changes meaning once published; each
//! has a kebab-case name and a documentation page under `docs/codes/` that
//! `weir explain CODE` prints.

use super::Severity;
use serde::{Serialize, Serializer};

macro_rules! codes {
    ($($variant:ident = $code:literal, $name:literal, $sev:ident, $summary:literal;)*) => {
        /// Every diagnostic Weir can report.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant),* }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];
            /// The stable code, such as `E0101`.
            pub fn as_str(self) -> &'static str { match self { $(Code::$variant => $code),* } }
            /// The kebab-case name, such as `unknown-name`.
            pub fn name(self) -> &'static str { match self { $(Code::$variant => $name),* } }
            pub fn default_severity(self) -> Severity { match self { $(Code::$variant => Severity::$sev),* } }
            /// One line saying what the code means.
            pub fn summary(self) -> &'static str { match self { $(Code::$variant => $summary),* } }
            /// The documentation page printed by `weir explain`.
            pub fn docs(self) -> &'static str {
                match self { $(Code::$variant => include_str!(concat!("../../docs/codes/", $code, ".md"))),* }
            }
        }
    };
}

codes! {
    SyntaxError = "E0001", "syntax-error", Error, "the parser met a token it did not expect";
    UnterminatedString = "E0002", "unterminated-string", Error, "a string literal has no closing quote";
    InvalidCharacter = "E0003", "invalid-character", Error, "a character that cannot start any token";
    InvalidLiteral = "E0004", "invalid-literal", Error, "a number, duration, size or percentage that is out of range or malformed";
    NestingTooDeep = "E0005", "nesting-too-deep", Error, "brackets or expressions nested deeper than the parser allows";
    InvalidEscape = "E0006", "invalid-escape", Error, "an unknown escape sequence in a string";
    InvalidUtf8 = "E0007", "invalid-utf8", Error, "a source file is not valid UTF-8";
    FileTooLarge = "E0008", "file-too-large", Error, "a source file is larger than the compiler accepts";
    UnknownName = "E0101", "unknown-name", Error, "a name that no declaration in scope defines";
    DuplicateDefinition = "E0102", "duplicate-definition", Error, "two declarations with the same name in one scope";
    UnknownModule = "E0103", "unknown-module", Error, "a `use` of a path module that does not exist";
    ImportCycle = "E0104", "import-cycle", Error, "modules that import each other in a cycle";
    UnknownStdModule = "E0105", "unknown-std-module", Error, "a `use std.x` of a standard-library module that does not exist";
    VersionedModuleUnavailable = "E0106", "versioned-module-unavailable", Error, "a versioned module import with no lock entry to resolve it";
    PluginUnavailable = "E0107", "plugin-unavailable", Error, "a WASM plugin import that cannot be resolved yet";
    UnknownMember = "E0108", "unknown-member", Error, "a module has no member of that name";
    PrivateMember = "E0109", "private-member", Error, "a module member that is not `pub` used from another module";
    TypeMismatch = "E0201", "type-mismatch", Error, "a value of one type where another type is expected";
    UnknownField = "E0202", "unknown-field", Error, "a record or report has no field of that name";
    UnknownStepOutput = "E0203", "unknown-step-output", Error, "a step has no output of that name";
    MissingArgument = "E0204", "missing-argument", Error, "a call omits a parameter that has no default";
    UnknownArgument = "E0205", "unknown-argument", Error, "a named argument that the function does not take";
    TooManyArguments = "E0206", "too-many-arguments", Error, "more positional arguments than parameters";
    DuplicateArgument = "E0207", "duplicate-argument", Error, "the same parameter given twice in one call";
    NotCallable = "E0208", "not-callable", Error, "a call on a value that is not a function";
    NonExhaustiveMatch = "E0209", "non-exhaustive-match", Error, "a `match` that does not cover every enum variant";
    UnknownVariant = "E0210", "unknown-variant", Error, "an enum has no variant of that name";
    RuntimeValueAtPlanTime = "E0211", "runtime-value-at-plan-time", Error, "a value that exists only when steps run, used where the plan needs it";
    SecretAsText = "E0212", "secret-as-text", Error, "a `Secret` interpolated into text or used as a plain value";
    MissingReport = "E0213", "missing-report", Error, "a report read from a step that does not declare it";
    UnknownStepField = "E0214", "unknown-step-field", Error, "a field that steps, gates or approvals do not have";
    MissingStepField = "E0215", "missing-step-field", Error, "a required field (such as `run`) is missing";
    InvalidOperands = "E0216", "invalid-operands", Error, "an operator applied to values of types it does not accept";
    ConditionNotBool = "E0217", "condition-not-bool", Error, "a condition that is not a `bool`";
    UnknownType = "E0218", "unknown-type", Error, "a type name that no declaration defines";
    MissingRecordField = "E0219", "missing-record-field", Error, "a record literal omits a field its type requires";
    OptionalNotHandled = "E0220", "optional-not-handled", Error, "an optional value (`T?`) used where a `T` is required";
    SecretMisuse = "E0221", "secret-misuse", Error, "a `Secret` used in env, a condition, a cache key or an output";
    UnreachableArm = "W0222", "unreachable-arm", Warning, "a `match` arm that can never be taken";
    InvalidCron = "E0223", "invalid-cron", Error, "a schedule trigger whose cron expression is malformed";
    InvalidGlob = "E0224", "invalid-glob", Error, "a path pattern that is not a valid glob";
    UnknownTrigger = "E0225", "unknown-trigger", Error, "a trigger kind that Weir does not know";
    DuplicateField = "E0226", "duplicate-field", Error, "the same field given twice";
    RecursiveFunctionNeedsType = "E0227", "recursive-function-needs-type", Error, "a recursive function without a declared return type";
    NotIterable = "E0228", "not-iterable", Error, "`for` over a value that is not a list";
    UnusedValue = "W0229", "unused-value", Warning, "a statement computes a plain value that is then thrown away";
    ShortSecretName = "W0230", "invalid-secret-name", Warning, "a secret or environment name that is not a portable variable name";
    DependencyCycle = "E0301", "dependency-cycle", Error, "steps that depend on each other in a cycle";
    DuplicateStepName = "E0302", "duplicate-step-name", Error, "two steps with the same name in one pipeline";
    RecursionLimit = "E0303", "recursion-limit", Error, "evaluation recursed deeper than the limit";
    UnknownPipeline = "E0304", "unknown-pipeline", Error, "no pipeline of the requested name";
    UnknownParam = "E0305", "unknown-param", Error, "a `--param` that no `param` declaration names";
    InvalidParamValue = "E0306", "invalid-param-value", Error, "a `--param` value that does not parse as the declared type";
    MissingParam = "E0307", "missing-param", Error, "a `param` without a default that was not given";
    NoPipeline = "E0308", "no-pipeline", Error, "the project declares no pipeline, or several and none was chosen";
    EvaluationError = "E0309", "evaluation-error", Error, "a plan-time computation failed (division by zero, overflow)";
    EmptyStepName = "E0310", "invalid-step-name", Error, "a step name that is empty or has characters ids cannot carry";
    PolicyViolation = "E0401", "policy-violation", Error, "a pipeline breaks a `policy` declared for it";
    NoSourceFiles = "E0501", "no-source-files", Error, "a directory holds no `.weir` files";
    Internal = "E9001", "internal-error", Error, "a bug in Weir itself";
}

impl Code {
    /// Looks a code up by its stable code (`E0101`) or its name (`unknown-name`).
    pub fn parse(s: &str) -> Option<Code> {
        let s = s.trim();
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s) || c.name() == s)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}
