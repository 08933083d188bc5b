//! Report parsers: JUnit XML, lcov, Cobertura XML and SARIF.
//!
//! A step that declares `reports: [junit(...), coverage(...), sarif(...)]`
//! gets the fields `tests`, `coverage` and `findings`; the runtime reads the
//! files after the step ran and parses them here. The XML formats are read
//! with a small, tolerant tag scanner (no DTDs, no namespaces beyond ignoring
//! prefixes, text content skipped); SARIF is read with `serde_json`.

use serde_json::{Map, Value};

/// The `tests` field of a step with a `junit(...)` report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct TestReport {
    pub total: i64,
    pub passed: i64,
    pub failed: i64,
    pub skipped: i64,
}

/// The `coverage` field of a step with a `coverage(...)` report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Coverage {
    /// Line coverage in hundredths of a percent, 8000 = 80%.
    pub lines: i64,
    /// Branch coverage in hundredths of a percent, 8000 = 80%.
    pub branches: i64,
}

/// The `findings` field of a step with a `sarif(...)` report.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Findings {
    pub errors: i64,
    pub warnings: i64,
    pub notes: i64,
    /// `errors + warnings + notes` (results of level `none` are not findings).
    pub total: i64,
}

const JUNIT_HINT: &str = "check the `junit(...)` path points at the XML report";
const LCOV_HINT: &str = "check the `coverage(...)` path points at an lcov tracefile (such as `lcov.info`), \
     or pass `format: \"cobertura\"` for a Cobertura XML report";
const COBERTURA_HINT: &str = "check the `coverage(..., format: \"cobertura\")` path points at a Cobertura XML report, \
     or use `format: \"lcov\"` for an lcov tracefile";
const SARIF_HINT: &str =
    "check the `sarif(...)` path points at the SARIF (JSON) output of the tool";

// ---------------------------------------------------------------------------
// JUnit

#[derive(Clone, Copy, PartialEq, Eq)]
enum CaseStatus {
    Passed,
    Failed,
    Skipped,
}

impl TestReport {
    fn record(&mut self, status: CaseStatus) {
        self.total += 1;
        match status {
            CaseStatus::Passed => self.passed += 1,
            CaseStatus::Failed => self.failed += 1,
            CaseStatus::Skipped => self.skipped += 1,
        }
    }
}

/// Parses a JUnit XML report.
///
/// Counts `<testcase>` elements at any depth of `<testsuites>`/`<testsuite>`:
/// a test case containing `<failure>` or `<error>` failed, one containing
/// `<skipped>` (and no failure) was skipped, any other passed. Comments,
/// CDATA sections and text are ignored; `<flakyFailure>`/`<rerunFailure>`
/// (retries) do not make a test case fail by themselves. A report that ends
/// inside a `<testsuite>` or `<testcase>` is treated as truncated (an error).
pub fn parse_junit(xml: &str) -> Result<TestReport, String> {
    let events = scan_xml(xml, JUNIT_HINT)?;
    let mut report = TestReport::default();
    let mut seen = false;
    let mut suites_open = 0usize;
    let mut current: Option<CaseStatus> = None;
    for event in &events {
        match event {
            Event::Start { name, empty, .. } => match local_name(name) {
                "testsuites" | "testsuite" => {
                    seen = true;
                    if !*empty {
                        suites_open += 1;
                    }
                }
                "testcase" => {
                    seen = true;
                    // Tolerate a missing `</testcase>` before the next one.
                    if let Some(open) = current.take() {
                        report.record(open);
                    }
                    if *empty {
                        report.record(CaseStatus::Passed);
                    } else {
                        current = Some(CaseStatus::Passed);
                    }
                }
                "failure" | "error" if current.is_some() => current = Some(CaseStatus::Failed),
                "skipped" if current == Some(CaseStatus::Passed) => {
                    current = Some(CaseStatus::Skipped);
                }
                _ => {}
            },
            Event::End { name } => match local_name(name) {
                "testcase" => {
                    if let Some(open) = current.take() {
                        report.record(open);
                    }
                }
                "testsuites" | "testsuite" => suites_open = suites_open.saturating_sub(1),
                _ => {}
            },
        }
    }
    if !seen {
        return Err(format!(
            "not a JUnit XML report: expected a JUnit XML file with <testsuite> or <testcase> elements; {JUNIT_HINT}"
        ));
    }
    if current.is_some() {
        return Err(format!(
            "the JUnit report ends inside a <testcase> element (no closing </testcase>), so it looks truncated; \
             make sure the test run finished writing it; {JUNIT_HINT}"
        ));
    }
    if suites_open > 0 {
        return Err(format!(
            "the JUnit report ends before its closing </testsuite>, so it looks truncated; \
             make sure the test run finished writing it; {JUNIT_HINT}"
        ));
    }
    Ok(report)
}

// ---------------------------------------------------------------------------
// lcov

#[derive(Default)]
struct LcovRecord {
    any: bool,
    lf: Option<u64>,
    lh: Option<u64>,
    brf: Option<u64>,
    brh: Option<u64>,
    da_found: u64,
    da_hit: u64,
    brda_found: u64,
    brda_hit: u64,
}

#[derive(Default)]
struct LcovTotals {
    records: u64,
    lines_found: u64,
    lines_hit: u64,
    branches_found: u64,
    branches_hit: u64,
}

impl LcovTotals {
    fn add(&mut self, rec: &LcovRecord) {
        self.records += 1;
        // `LF`/`LH` and `BRF`/`BRH` are the summary; tools that omit them
        // still list `DA` and `BRDA` lines.
        self.lines_found += rec.lf.unwrap_or(rec.da_found);
        self.lines_hit += rec.lh.unwrap_or(rec.da_hit);
        self.branches_found += rec.brf.unwrap_or(rec.brda_found);
        self.branches_hit += rec.brh.unwrap_or(rec.brda_hit);
    }
}

/// Parses an lcov tracefile.
///
/// Sums `LF`/`LH` (lines found/hit) and `BRF`/`BRH` (branches found/hit) over
/// all records (falling back to counting `DA`/`BRDA` lines for a record
/// without the summary lines). Records for the same file are summed, not
/// merged. When no lines (or branches) were found at all the percentage is
/// reported as 0, not 100%: a gate such as `coverage.lines >= 80%` then fails
/// rather than passing on an empty report.
pub fn parse_lcov(text: &str) -> Result<Coverage, String> {
    let mut totals = LcovTotals::default();
    let mut rec = LcovRecord::default();
    for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = idx + 1;
        if line.is_empty() {
            continue;
        }
        if line == "end_of_record" {
            totals.add(&rec);
            rec = LcovRecord::default();
            continue;
        }
        let key_value = line.split_once(':').filter(|(key, _)| {
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        });
        let Some((key, value)) = key_value else {
            return Err(format!(
                "line {lineno}: `{}` is not an lcov line (expected `KEY:VALUE` such as `SF:`, `DA:`, `LF:`, \
                 or `end_of_record`); {LCOV_HINT}",
                shorten(line)
            ));
        };
        let value = value.trim();
        match key {
            "LF" => rec.lf = Some(lcov_count(value, lineno, key)?),
            "LH" => rec.lh = Some(lcov_count(value, lineno, key)?),
            "BRF" => rec.brf = Some(lcov_count(value, lineno, key)?),
            "BRH" => rec.brh = Some(lcov_count(value, lineno, key)?),
            "DA" => {
                // DA:<line>,<hits>[,<checksum>]
                let hits = value.split(',').nth(1).map(str::trim);
                let hits = hits.and_then(|h| h.parse::<i64>().ok()).ok_or_else(|| {
                    format!(
                        "line {lineno}: `DA:{}` should be `DA:<line>,<hits>`; {LCOV_HINT}",
                        shorten(value)
                    )
                })?;
                rec.da_found += 1;
                if hits > 0 {
                    rec.da_hit += 1;
                }
            }
            "BRDA" => {
                // BRDA:<line>,<block>,<branch>,<taken or ->
                let taken = value.split(',').nth(3).map(str::trim);
                let hit = match taken {
                    Some("-") => false,
                    Some(t) => match t.parse::<i64>() {
                        Ok(n) => n > 0,
                        Err(_) => return Err(brda_error(lineno, value)),
                    },
                    None => return Err(brda_error(lineno, value)),
                };
                rec.brda_found += 1;
                if hit {
                    rec.brda_hit += 1;
                }
            }
            // TN, SF, FN, FNDA, FNF, FNH, VER and anything newer carry
            // nothing we report.
            _ => {}
        }
        rec.any = true;
    }
    if rec.any {
        // A last record without `end_of_record`.
        totals.add(&rec);
    }
    if totals.records == 0 {
        return Err(format!(
            "not an lcov tracefile: found no records (lines such as `SF:`, `LF:`, `LH:` and `end_of_record`); {LCOV_HINT}"
        ));
    }
    Ok(Coverage {
        lines: percent_of(totals.lines_hit, totals.lines_found),
        branches: percent_of(totals.branches_hit, totals.branches_found),
    })
}

fn lcov_count(value: &str, lineno: usize, key: &str) -> Result<u64, String> {
    value.parse::<u64>().map_err(|_| {
        format!(
            "line {lineno}: `{key}:{}` should be a non-negative whole number; {LCOV_HINT}",
            shorten(value)
        )
    })
}

fn brda_error(lineno: usize, value: &str) -> String {
    format!(
        "line {lineno}: `BRDA:{}` should be `BRDA:<line>,<block>,<branch>,<taken>` (taken a number or `-`); {LCOV_HINT}",
        shorten(value)
    )
}

/// `hit / found` in hundredths of a percent, rounded half up; 0 when nothing
/// was found.
fn percent_of(hit: u64, found: u64) -> i64 {
    if found == 0 {
        return 0;
    }
    let hit = u128::from(hit.min(found));
    let found = u128::from(found);
    let v = (hit * 20_000 + found) / (2 * found);
    i64::try_from(v).unwrap_or(10_000)
}

fn shorten(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}

// ---------------------------------------------------------------------------
// Cobertura

/// Parses a Cobertura XML report: the root
/// `<coverage line-rate="0.85" branch-rate="0.5" ...>`.
///
/// When the element also has `lines-valid`/`lines-covered` (and
/// `branches-valid`/`branches-covered`) with a non-zero total, the
/// percentage is computed from the counts (more precise than the rounded
/// rate). A missing `branch-rate` is 0.
pub fn parse_cobertura(xml: &str) -> Result<Coverage, String> {
    let events = scan_xml(xml, COBERTURA_HINT)?;
    let attrs = events
        .iter()
        .find_map(|event| match event {
            Event::Start { name, attrs, .. } if local_name(name) == "coverage" => Some(attrs),
            _ => None,
        })
        .ok_or_else(|| {
            format!("not a Cobertura XML report: found no <coverage line-rate=\"...\"> element; {COBERTURA_HINT}")
        })?;
    let lines = match counts(attrs, "lines-covered", "lines-valid") {
        Some(p) => p,
        None => match attr(attrs, "line-rate") {
            Some(rate) => parse_rate(rate, "line-rate")?,
            None => {
                return Err(format!(
                    "the <coverage> element has no `line-rate` attribute, so this is not a Cobertura report; {COBERTURA_HINT}"
                ));
            }
        },
    };
    let branches = match counts(attrs, "branches-covered", "branches-valid") {
        Some(p) => p,
        None => match attr(attrs, "branch-rate") {
            Some(rate) => parse_rate(rate, "branch-rate")?,
            None => 0,
        },
    };
    Ok(Coverage { lines, branches })
}

fn counts(attrs: &[(&str, String)], covered: &str, valid: &str) -> Option<i64> {
    let covered = attr(attrs, covered)?.trim().parse::<u64>().ok()?;
    let valid = attr(attrs, valid)?.trim().parse::<u64>().ok()?;
    (valid > 0).then(|| percent_of(covered, valid))
}

fn parse_rate(value: &str, name: &str) -> Result<i64, String> {
    let rate = value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r >= 0.0 && *r <= 1.000_001);
    match rate {
        Some(rate) => Ok(((rate * 10_000.0).round() as i64).clamp(0, 10_000)),
        None => Err(format!(
            "`{name}=\"{}\"` on <coverage> should be a fraction between 0 and 1 (such as 0.85); {COBERTURA_HINT}",
            shorten(value)
        )),
    }
}

// ---------------------------------------------------------------------------
// SARIF

/// Parses a SARIF log: counts `runs[].results[]` by level.
///
/// A result without `level` takes the SARIF default: `none` when it has a
/// `kind` other than `fail`, else the `defaultConfiguration.level` of its
/// rule (found by `ruleIndex` or `ruleId` in `tool.driver.rules`), else
/// `warning`. Results of level `none` are not findings; results with
/// `baselineState: "absent"` (fixed since the baseline) are skipped.
/// Suppressions are not taken into account.
pub fn parse_sarif(json: &str) -> Result<Findings, String> {
    let doc: Value = serde_json::from_str(json)
        .map_err(|e| format!("not a SARIF log: the file is not valid JSON ({e}); {SARIF_HINT}"))?;
    let runs = doc.get("runs").and_then(Value::as_array).ok_or_else(|| {
        format!("not a SARIF log: expected a JSON object with a `runs` array; {SARIF_HINT}")
    })?;
    let mut findings = Findings::default();
    for (ri, run) in runs.iter().enumerate() {
        let run_no = ri + 1;
        let results = match run.get("results") {
            None | Some(Value::Null) => continue,
            Some(Value::Array(results)) => results,
            Some(_) => {
                return Err(format!(
                    "run {run_no} of the SARIF log: `results` should be an array; {SARIF_HINT}"
                ));
            }
        };
        let rules = run
            .pointer("/tool/driver/rules")
            .and_then(Value::as_array)
            .map(Vec::as_slice);
        for (i, result) in results.iter().enumerate() {
            let result_no = i + 1;
            let Some(result) = result.as_object() else {
                return Err(format!(
                    "run {run_no}, result {result_no} of the SARIF log should be an object; {SARIF_HINT}"
                ));
            };
            if result.get("baselineState").and_then(Value::as_str) == Some("absent") {
                continue;
            }
            let level = match result.get("level") {
                Some(Value::String(level)) => level.as_str(),
                None | Some(Value::Null) => default_level(result, rules),
                Some(_) => {
                    return Err(format!(
                        "run {run_no}, result {result_no} of the SARIF log: `level` should be a string; {SARIF_HINT}"
                    ));
                }
            };
            match level {
                "error" => findings.errors += 1,
                "warning" => findings.warnings += 1,
                "note" => findings.notes += 1,
                "none" => continue,
                other => {
                    return Err(format!(
                        "run {run_no}, result {result_no} of the SARIF log has level `{}`; SARIF levels are \
                         `error`, `warning`, `note` and `none`; {SARIF_HINT}",
                        shorten(other)
                    ));
                }
            }
            findings.total += 1;
        }
    }
    Ok(findings)
}

fn default_level<'a>(result: &'a Map<String, Value>, rules: Option<&'a [Value]>) -> &'a str {
    if let Some(kind) = result.get("kind").and_then(Value::as_str)
        && kind != "fail"
    {
        return "none";
    }
    let rule = rules.and_then(|rules| {
        let by_index = result
            .get("ruleIndex")
            .and_then(Value::as_u64)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| rules.get(i));
        by_index.or_else(|| {
            let id = result.get("ruleId").and_then(Value::as_str)?;
            rules
                .iter()
                .find(|rule| rule.get("id").and_then(Value::as_str) == Some(id))
        })
    });
    rule.and_then(|rule| rule.pointer("/defaultConfiguration/level"))
        .and_then(Value::as_str)
        .unwrap_or("warning")
}

// ---------------------------------------------------------------------------
// Fields

/// Reads the value a field of a report type would have in Weir: `tests.failed` etc.
///
/// `report` is `tests`, `coverage` or `findings`. Coverage fields are
/// percentages as numbers (`85.0` for 85%), the others integers. `None` when
/// the report was not parsed or the field does not exist.
#[must_use]
pub fn field(
    report: &str,
    field: &str,
    tests: Option<&TestReport>,
    coverage: Option<&Coverage>,
    findings: Option<&Findings>,
) -> Option<Value> {
    match report {
        "tests" => {
            let t = tests?;
            let n = match field {
                "total" => t.total,
                "passed" => t.passed,
                "failed" => t.failed,
                "skipped" => t.skipped,
                _ => return None,
            };
            Some(Value::from(n))
        }
        "coverage" => {
            let c = coverage?;
            let p = match field {
                "lines" => c.lines,
                "branches" => c.branches,
                _ => return None,
            };
            Some(Value::from(p as f64 / 100.0))
        }
        "findings" => {
            let f = findings?;
            let n = match field {
                "errors" => f.errors,
                "warnings" => f.warnings,
                "notes" => f.notes,
                "total" => f.total,
                _ => return None,
            };
            Some(Value::from(n))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// A small, tolerant XML tag scanner

#[derive(Debug)]
enum Event<'a> {
    Start {
        name: &'a str,
        attrs: Vec<(&'a str, String)>,
        empty: bool,
    },
    End {
        name: &'a str,
    },
}

/// The name without a namespace prefix.
fn local_name(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn attr<'a>(attrs: &'a [(&str, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| local_name(k) == key)
        .map(|(_, v)| v.as_str())
}

fn line_of(text: &str, pos: usize) -> usize {
    text.get(..pos).unwrap_or(text).matches('\n').count() + 1
}

/// Start and end tags of `xml`, in order. Text, comments, CDATA sections,
/// processing instructions and declarations are skipped; a `<` not followed
/// by a name is taken as text. Errors only on constructs left unterminated.
fn scan_xml<'a>(xml: &'a str, hint: &str) -> Result<Vec<Event<'a>>, String> {
    let mut events = Vec::new();
    let mut pos = 0;
    while let Some(off) = xml[pos..].find('<') {
        let start = pos + off;
        let rest = &xml[start..];
        let unterminated = |what: &str| {
            format!(
                "line {}: unterminated {what}; the file looks truncated or is not XML; {hint}",
                line_of(xml, start)
            )
        };
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").ok_or_else(|| unterminated("comment"))?;
            pos = start + 4 + end + 3;
        } else if rest.starts_with("<![CDATA[") {
            let end = rest
                .find("]]>")
                .ok_or_else(|| unterminated("CDATA section"))?;
            pos = start + end + 3;
        } else if rest.starts_with("<?") {
            let end = rest
                .find("?>")
                .ok_or_else(|| unterminated("processing instruction"))?;
            pos = start + end + 2;
        } else if rest.starts_with("<!") {
            // <!DOCTYPE ...> possibly with an internal subset in [...].
            let mut depth = 0i32;
            let mut end = None;
            for (i, &b) in rest.as_bytes().iter().enumerate().skip(2) {
                match b {
                    b'[' => depth += 1,
                    b']' => depth -= 1,
                    b'>' if depth <= 0 => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let end = end.ok_or_else(|| unterminated("declaration"))?;
            pos = start + end + 1;
        } else if let Some(after) = rest.strip_prefix("</") {
            let end = after.find('>').ok_or_else(|| unterminated("end tag"))?;
            events.push(Event::End {
                name: after[..end].trim(),
            });
            pos = start + 2 + end + 1;
        } else {
            let is_name_start = matches!(
                rest.as_bytes().get(1),
                Some(&b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' || b >= 0x80
            );
            if !is_name_start {
                // A stray `<` in text.
                pos = start + 1;
                continue;
            }
            let end = tag_end(rest).ok_or_else(|| unterminated("tag"))?;
            let mut inner = &rest[1..end];
            let empty = inner.ends_with('/');
            if empty {
                inner = &inner[..inner.len() - 1];
            }
            let name_len = inner
                .find(|c: char| c.is_ascii_whitespace())
                .unwrap_or(inner.len());
            events.push(Event::Start {
                name: &inner[..name_len],
                attrs: parse_attrs(&inner[name_len..]),
                empty,
            });
            pos = start + end + 1;
        }
    }
    Ok(events)
}

/// Index of the `>` closing the tag that starts `rest`, skipping quoted
/// attribute values.
fn tag_end(rest: &str) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (i, &b) in rest.as_bytes().iter().enumerate().skip(1) {
        match quote {
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'>' => return Some(i),
                _ => {}
            },
        }
    }
    None
}

/// `name="value"` pairs (also single-quoted, unquoted or without a value).
fn parse_attrs(s: &str) -> Vec<(&str, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let skip_ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= b.len() {
            break;
        }
        let name_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        let name = &s[name_start..i];
        i = skip_ws(i);
        if i < b.len() && b[i] == b'=' {
            i = skip_ws(i + 1);
            if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                let q = b[i];
                i += 1;
                let value_start = i;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                out.push((name, decode_entities(&s[value_start..i])));
                i = (i + 1).min(b.len());
            } else {
                let value_start = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                out.push((name, decode_entities(&s[value_start..i])));
            }
        } else if !name.is_empty() {
            out.push((name, String::new()));
        }
    }
    out
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let decoded = after
            .find(';')
            .filter(|&e| e <= 12)
            .and_then(|e| decode_entity(&after[1..e]).map(|c| (c, e)));
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let code =
                if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                    u32::from_str_radix(hex, 16).ok()?
                } else {
                    name.strip_prefix('#')?.parse::<u32>().ok()?
                };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests">
  <testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.123" timestamp="2024-05-01T10:00:00.000000+00:00" hostname="ci-runner">
    <testcase classname="tests.test_math" name="test_add" time="0.001" />
    <testcase classname="tests.test_math" name="test_sub" time="0.002">
      <failure message="assert 1 == 2">def test_sub():
&gt;       assert 1 == 2
E       assert 1 == 2 and a < b

tests/test_math.py:7: AssertionError</failure>
    </testcase>
    <testcase classname="tests.test_math" name="test_skip" time="0.000">
      <skipped type="pytest.skip" message="not on linux">tests/test_math.py:10: not on linux</skipped>
    </testcase>
    <!-- <testcase name="commented out"><failure/></testcase> -->
    <testcase classname="tests.test_db" name="test_conn" time="0.010">
      <error message="failed on setup with &quot;ConnectionError&quot;">fixture 'db' failed</error>
    </testcase>
    <testcase classname="tests.test_db" name="test_query" time="0.003">
      <system-out><![CDATA[log: <testcase name="fake"><failure/> is just output]]></system-out>
    </testcase>
  </testsuite>
</testsuites>
"#;

    const NEXTEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="nextest-run" tests="4" failures="1" errors="0" uuid="45c50e54-6e1a-4d3b-9b53-2cd0b5a3c3a1" timestamp="2024-05-01T10:00:00.000+00:00" time="1.532">
    <testsuite name="weir-compiler" tests="3" disabled="0" errors="0" failures="1">
        <testcase name="parse::tests::ok" classname="weir-compiler" timestamp="2024-05-01T10:00:00.010+00:00" time="0.010">
        </testcase>
        <testcase name="parse::tests::broken" classname="weir-compiler" timestamp="2024-05-01T10:00:00.020+00:00" time="0.020">
            <failure type="test failure with exit code 101">thread 'parse::tests::broken' panicked at src/parse.rs:10:5:
assertion failed: a &lt; b</failure>
            <rerunFailure type="test failure with exit code 101" timestamp="2024-05-01T10:00:00.050+00:00" time="0.020">panicked again</rerunFailure>
            <system-out>running 1 test</system-out>
            <system-err><![CDATA[thread panicked: expected Vec<u8> </failure> ]]></system-err>
        </testcase>
        <testcase name="parse::tests::flaky" classname="weir-compiler" time="0.030">
            <flakyFailure type="test failure" timestamp="2024-05-01T10:00:00.070+00:00" time="0.015">first attempt failed</flakyFailure>
        </testcase>
    </testsuite>
    <testsuite name="weir-cli" tests="1" disabled="0" errors="0" failures="0">
        <testcase name="cli::tests::help" classname="weir-cli" time="0.001"/>
    </testsuite>
</testsuites>
"#;

    #[test]
    fn junit_pytest() {
        let r = parse_junit(PYTEST).unwrap();
        assert_eq!(
            r,
            TestReport {
                total: 5,
                passed: 2,
                failed: 2,
                skipped: 1
            }
        );
    }

    #[test]
    fn junit_nextest() {
        let r = parse_junit(NEXTEST).unwrap();
        assert_eq!(
            r,
            TestReport {
                total: 4,
                passed: 3,
                failed: 1,
                skipped: 0
            }
        );
    }

    #[test]
    fn junit_single_suite_and_bare_and_empty() {
        let xml = "<testsuite name='s'><testcase name='a'/><testcase name='b'><skipped/></testcase>\
                   <testcase name='c'><skipped/><failure/></testcase></testsuite>";
        assert_eq!(
            parse_junit(xml).unwrap(),
            TestReport {
                total: 3,
                passed: 1,
                failed: 1,
                skipped: 1
            }
        );
        assert_eq!(parse_junit("<testcase name=\"only\"/>").unwrap().total, 1);
        assert_eq!(parse_junit("<testsuites/>").unwrap(), TestReport::default());
        let ns =
            "<j:testsuite xmlns:j='x'><j:testcase name='a'><j:failure/></j:testcase></j:testsuite>";
        assert_eq!(parse_junit(ns).unwrap().failed, 1);
    }

    #[test]
    fn junit_malformed() {
        for bad in [
            "",
            "hello world",
            "{\"tests\": 3}",
            "<?xml version=\"1.0\"?><report><test name=\"a\"/></report>",
        ] {
            let err = parse_junit(bad).unwrap_err();
            assert!(err.contains("not a JUnit XML report"), "{bad:?}: {err}");
            assert!(err.contains("junit(...)"), "{err}");
        }
        for bad in [
            "<testsuite name=\"x\"><testcase name=\"a\">",
            "<testsuite name=\"x\"><testcase name=\"a",
            "<testsuite name=\"x\"><testcase name=\"a\"/>",
            "<testsuite><!-- unterminated comment",
            "<testsuite><testcase name='a'><system-out><![CDATA[ truncated",
        ] {
            assert!(parse_junit(bad).is_err(), "{bad:?}");
        }
        let err = parse_junit("<testsuite>\n<testcase name=\"a").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    const LCOV: &str = "TN:
SF:src/lib.rs
FN:3,add
FNDA:5,add
FNF:1
FNH:1
DA:3,5
DA:4,5
DA:8,0
BRDA:4,0,0,5
BRDA:4,0,1,0
BRF:2
BRH:1
LF:3
LH:2
end_of_record
TN:
SF:src/main.rs
DA:1,1
DA:2,1
DA:3,1
DA:4,0
DA:5,1
DA:6,1
DA:7,1
LF:7
LH:6
BRF:2
BRH:2
end_of_record
";

    #[test]
    fn lcov_two_files() {
        // Lines 8 of 10, branches 3 of 4.
        assert_eq!(
            parse_lcov(LCOV).unwrap(),
            Coverage {
                lines: 8000,
                branches: 7500
            }
        );
        assert_eq!(parse_lcov(&LCOV.replace('\n', "\r\n")).unwrap().lines, 8000);
    }

    #[test]
    fn lcov_without_summary_lines_counts_da_and_brda() {
        let text = "SF:a.rs\nDA:1,1\nDA:2,0\nDA:3,4\nBRDA:1,0,0,-\nBRDA:1,0,1,2\nBRDA:1,0,2,1\n";
        assert_eq!(
            parse_lcov(text).unwrap(),
            Coverage {
                lines: 6667,
                branches: 6667
            }
        );
    }

    #[test]
    fn lcov_no_lines_is_zero_percent() {
        assert_eq!(
            parse_lcov("TN:\nSF:empty.rs\nend_of_record\n").unwrap(),
            Coverage {
                lines: 0,
                branches: 0
            }
        );
    }

    #[test]
    fn lcov_malformed() {
        for bad in [
            "",
            "\n\n",
            "<?xml version=\"1.0\"?>\n<coverage line-rate=\"0.5\"/>",
            "{\"lines\": 3}",
            "SF:a.rs\nLF:abc\nend_of_record",
            "SF:a.rs\nLH:-1\nend_of_record",
            "SF:a.rs\nDA:1\nend_of_record",
            "SF:a.rs\nBRDA:1,0,0\nend_of_record",
        ] {
            let err = parse_lcov(bad).unwrap_err();
            assert!(err.contains("coverage(...)"), "{bad:?}: {err}");
        }
        assert!(
            parse_lcov("SF:a.rs\nLF:abc\n")
                .unwrap_err()
                .contains("line 2")
        );
    }

    const COBERTURA: &str = r#"<?xml version="1.0" ?>
<!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd">
<coverage version="7.4.0" timestamp="1714557600000" lines-valid="200" lines-covered="170" line-rate="0.85" branches-covered="25" branches-valid="50" branch-rate="0.5" complexity="0">
	<!-- Generated by coverage.py: https://coverage.readthedocs.io/en/7.4.0 -->
	<sources>
		<source>/work/app</source>
	</sources>
	<packages>
		<package name="app" line-rate="0.85" branch-rate="0.5" complexity="0">
			<classes>
				<class name="main.py" filename="app/main.py" complexity="0" line-rate="0.85" branch-rate="0.5">
					<methods/>
					<lines>
						<line number="1" hits="1"/>
						<line number="2" hits="0" branch="true" condition-coverage="50% (1/2)" missing-branches="4"/>
					</lines>
				</class>
			</classes>
		</package>
	</packages>
</coverage>
"#;

    #[test]
    fn cobertura_report() {
        assert_eq!(
            parse_cobertura(COBERTURA).unwrap(),
            Coverage {
                lines: 8500,
                branches: 5000
            }
        );
    }

    #[test]
    fn cobertura_rates_only() {
        assert_eq!(
            parse_cobertura("<coverage line-rate='0.8123' branch-rate='0'></coverage>").unwrap(),
            Coverage {
                lines: 8123,
                branches: 0
            }
        );
        assert_eq!(
            parse_cobertura("<coverage line-rate=\"0.66666\"/>").unwrap(),
            Coverage {
                lines: 6667,
                branches: 0
            }
        );
        assert_eq!(
            parse_cobertura("<coverage line-rate=\"1\" branch-rate=\"1.0\"/>")
                .unwrap()
                .branches,
            10_000
        );
    }

    #[test]
    fn cobertura_malformed() {
        for bad in [
            "",
            "not xml at all",
            "<report name=\"jacoco\"><counter type=\"LINE\" missed=\"1\" covered=\"3\"/></report>",
            "<coverage branch-rate=\"0.5\"/>",
            "<coverage line-rate=\"abc\"/>",
            "<coverage line-rate=\"85\"/>",
            "<coverage line-rate=\"0.5\" branch-rate=\"-0.1\"/>",
            "<coverage line-rate=\"0.5",
        ] {
            let err = parse_cobertura(bad).unwrap_err();
            assert!(err.contains("cobertura"), "{bad:?}: {err}");
        }
    }

    const SARIF: &str = r#"{
  "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
  "version": "2.1.0",
  "runs": [
    {
      "tool": { "driver": { "name": "semgrep", "rules": [ { "id": "py.sqli" } ] } },
      "results": [
        { "ruleId": "py.sqli", "level": "error", "message": { "text": "SQL injection" },
          "locations": [ { "physicalLocation": { "artifactLocation": { "uri": "app/db.py" }, "region": { "startLine": 12 } } } ] },
        { "ruleId": "py.eval", "level": "warning", "message": { "text": "eval" } },
        { "ruleId": "py.todo", "level": "note", "message": { "text": "TODO left" } },
        { "ruleId": "py.unused", "message": { "text": "no level: a warning by default" } }
      ]
    },
    {
      "tool": { "driver": { "name": "second" } },
      "results": [ { "level": "error", "message": { "text": "another tool" } } ]
    },
    { "tool": { "driver": { "name": "did-not-run" } } }
  ]
}"#;

    #[test]
    fn sarif_levels() {
        assert_eq!(
            parse_sarif(SARIF).unwrap(),
            Findings {
                errors: 2,
                warnings: 2,
                notes: 1,
                total: 5
            }
        );
    }

    #[test]
    fn sarif_default_levels_from_rules_and_kind() {
        let json = r#"{"version":"2.1.0","runs":[{
            "tool":{"driver":{"name":"t","rules":[
                {"id":"R0","defaultConfiguration":{"level":"error"}},
                {"id":"R1","defaultConfiguration":{"level":"note"}}]}},
            "results":[
                {"ruleId":"R0","ruleIndex":0,"message":{"text":"by index"}},
                {"ruleId":"R1","message":{"text":"by id"}},
                {"ruleId":"R2","message":{"text":"unknown rule"}},
                {"ruleId":"R0","kind":"pass","message":{"text":"passed"}},
                {"ruleId":"R0","level":"none","message":{"text":"info"}},
                {"ruleId":"R0","level":"error","baselineState":"absent","message":{"text":"fixed"}}
            ]}]}"#;
        assert_eq!(
            parse_sarif(json).unwrap(),
            Findings {
                errors: 1,
                warnings: 1,
                notes: 1,
                total: 3
            }
        );
        assert_eq!(parse_sarif(r#"{"runs":[]}"#).unwrap(), Findings::default());
    }

    #[test]
    fn sarif_malformed() {
        for bad in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"runs": {}}"#,
            r#"{"runs": [{"results": {}}]}"#,
            r#"{"runs": [{"results": [42]}]}"#,
            r#"{"runs": [{"results": [{"level": "critical"}]}]}"#,
            r#"{"runs": [{"results": [{"level": 3}]}]}"#,
        ] {
            let err = parse_sarif(bad).unwrap_err();
            assert!(err.contains("sarif(...)"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn fields() {
        let t = parse_junit(PYTEST).unwrap();
        let c = parse_cobertura(COBERTURA).unwrap();
        let f = parse_sarif(SARIF).unwrap();
        let get = |r: &str, name: &str| field(r, name, Some(&t), Some(&c), Some(&f));
        assert_eq!(get("tests", "failed"), Some(json!(2)));
        assert_eq!(get("tests", "total"), Some(json!(5)));
        assert_eq!(get("tests", "skipped"), Some(json!(1)));
        assert_eq!(get("coverage", "lines"), Some(json!(85.0)));
        assert_eq!(get("coverage", "branches"), Some(json!(50.0)));
        assert_eq!(get("findings", "errors"), Some(json!(2)));
        assert_eq!(get("findings", "total"), Some(json!(5)));
        assert_eq!(get("tests", "lines"), None);
        assert_eq!(get("nope", "total"), None);
        assert_eq!(field("tests", "failed", None, Some(&c), Some(&f)), None);
        let odd = Coverage {
            lines: 8123,
            branches: 0,
        };
        assert_eq!(
            field("coverage", "lines", None, Some(&odd), None),
            Some(json!(81.23))
        );
    }

    #[test]
    fn entities_and_attrs() {
        assert_eq!(
            decode_entities("a &lt; b &amp;&amp; &#65;&#x42; &bogus; &"),
            "a < b && AB &bogus; &"
        );
        let attrs = parse_attrs(r#" a="1" b='two words' c=3 d e = "x>y" "#);
        assert_eq!(
            attrs,
            vec![
                ("a", "1".to_owned()),
                ("b", "two words".to_owned()),
                ("c", "3".to_owned()),
                ("d", String::new()),
                ("e", "x>y".to_owned()),
            ]
        );
        assert_eq!(tag_end(r#"<a b="x>y">rest"#), Some(10));
    }
}
