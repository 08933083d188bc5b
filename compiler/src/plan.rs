//! The plan: the DAG every runtime and exporter consumes.
//!
//! Nodes are stored in a stable order (evaluation order, which follows the
//! source and never the order files were listed in), ids are slugs of node
//! names, and `needs` lists are sorted, so `weir plan --json` is
//! byte-identical for identical inputs. Conditions that can only be decided
//! at run time are kept as small expression trees ([`Cond`]).

use crate::diagnostics::{Code, Diagnostic, Span};
use petgraph::graph::DiGraph;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const SCHEMA_VERSION: &str = "weir.plan/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub file: String,
    pub start: u32,
    pub end: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cond {
    Lit(serde_json::Value),
    /// A declared value output of a node.
    Output {
        node: String,
        name: String,
    },
    /// `ok` or `exit_code` of a node.
    Status {
        node: String,
        field: String,
    },
    /// A field of a node's parsed report (`tests.failed`, `coverage.lines`...).
    Report {
        node: String,
        report: String,
        field: String,
    },
    Not(Box<Cond>),
    Neg(Box<Cond>),
    Binary {
        op: String,
        left: Box<Cond>,
        right: Box<Cond>,
    },
    /// Text built from parts at run time.
    Concat(Vec<Segment>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Literal text, already quoted where needed.
    Text(String),
    /// A run-time value; `quote` says whether to quote it as one shell word.
    Value { value: Cond, quote: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// A script for `sh -c`.
    Shell { script: Vec<Segment> },
    /// A program and its arguments, run without a shell.
    Argv { args: Vec<Vec<Segment>> },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    pub kind: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The node and output this input comes from, if it is an upstream output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<OutputRef>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputRef {
    pub node: String,
    pub output: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    /// `file`, `dir` or `value`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub value_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub kind: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub cond: Cond,
    pub message: String,
    pub source: SourceRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApprovalSpec {
    pub groups: Vec<String>,
    pub min: i64,
    pub not_author: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    pub name: String,
    /// `step`, `gate` or `approval`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Set on the steps of a stage's `on_failure` block: they run only when that stage fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_for: Option<String>,
    pub needs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Cond>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub env: SortedMap<Vec<Segment>>,
    /// Environment variable name to secret name. Never values.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub secrets: SortedMap<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<Input>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<Output>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<Report>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    pub retries: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
    pub allow_failure: bool,
    pub cache: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub source: SourceRef,
}

/// A node's environment variables or secrets: a list sorted by name, read
/// and written as a JSON object, like a `BTreeMap`. A `BTreeMap` makes
/// room for eleven entries however few there are (544 bytes for one
/// variable), and a node has one or two.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortedMap<V>(Vec<(String, V)>);

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        SortedMap(Vec::new())
    }
}

impl<V> SortedMap<V> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (key, value));
                None
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries in order of their names.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// Gives back unused room once the map is complete.
    pub fn fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, V)>,
        fn(&'a (String, V)) -> (&'a String, &'a V),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl<V> FromIterator<(String, V)> for SortedMap<V> {
    fn from_iter<T: IntoIterator<Item = (String, V)>>(iter: T) -> Self {
        let mut map = SortedMap::new();
        for (k, v) in iter {
            map.insert(k, v);
        }
        map
    }
}

impl<V: Serialize> Serialize for SortedMap<V> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for SortedMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, V>::deserialize(deserializer)?;
        Ok(SortedMap(map.into_iter().collect()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Cond>,
    pub nodes: Vec<String>,
    pub rollback: Vec<String>,
    pub source: SourceRef,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerPlan {
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Context {
    pub git_branch: String,
    pub git_sha: String,
    pub git_tag: Option<String>,
    pub event_kind: String,
    pub event_actor: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    pub pipeline: String,
    pub source: SourceRef,
    pub params: BTreeMap<String, serde_json::Value>,
    pub context: Context,
    pub triggers: Vec<TriggerPlan>,
    pub stages: Vec<Stage>,
    pub nodes: Vec<Node>,
}

impl Plan {
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        // Writing to memory fails only if serialization does, and a plan
        // is plain data that always serializes.
        let _ = self.write_json(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// Writes what [`Plan::to_json`] returns, without building it in
    /// memory first: a 10,000-step plan is about 10 MB of JSON.
    pub fn write_json(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        serde_json::to_writer_pretty(&mut out, self)?;
        out.write_all(b"\n")
    }

    /// The dependency graph, for cycle checks, rendering and scheduling.
    /// For each node, the indices of the nodes it needs (ids that name no
    /// node are left out; [`Plan::validate`] reports them).
    pub fn need_indices(&self) -> Vec<Vec<usize>> {
        let by_id: std::collections::HashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        self.nodes
            .iter()
            .map(|n| {
                n.needs
                    .iter()
                    .filter_map(|need| by_id.get(need.as_str()).copied())
                    .collect()
            })
            .collect()
    }

    pub fn graph(&self) -> DiGraph<usize, ()> {
        let mut g = DiGraph::new();
        let idx: Vec<_> = (0..self.nodes.len()).map(|i| g.add_node(i)).collect();
        for (i, needs) in self.need_indices().into_iter().enumerate() {
            for j in needs {
                g.add_edge(idx[j], idx[i], ());
            }
        }
        g
    }

    /// Checks the plan's invariants: every `needs` names a node, and there is
    /// no cycle. Plans built by the evaluator satisfy both by construction
    /// (a value can only refer to a step evaluated before it); plans built or
    /// edited by a host through the API are checked here.
    pub fn validate(&self) -> Vec<Diagnostic> {
        // Quick answer for the usual plan: when every node needs only nodes
        // listed before it, every need names a node and no cycle can exist.
        let index: rustc_hash::FxHashMap<&str, usize> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.as_str(), i))
            .collect();
        let in_order = index.len() == self.nodes.len()
            && self.nodes.iter().enumerate().all(|(i, n)| {
                n.needs
                    .iter()
                    .all(|d| index.get(d.as_str()).is_some_and(|&j| j < i))
            });
        if in_order {
            return Vec::new();
        }
        let mut out = Vec::new();
        let ids: std::collections::BTreeSet<&str> =
            self.nodes.iter().map(|n| n.id.as_str()).collect();
        for n in &self.nodes {
            for need in &n.needs {
                if !ids.contains(need.as_str()) {
                    out.push(
                        Diagnostic::error(
                            Code::Internal,
                            &n.source.file,
                            Span {
                                start: n.source.start,
                                end: n.source.end,
                            },
                            format!("node `{}` needs unknown node `{need}`", n.id),
                        )
                        .with_label("in this node"),
                    );
                }
            }
        }
        let g = self.graph();
        for scc in petgraph::algo::tarjan_scc(&g) {
            let is_cycle = scc.len() > 1 || scc.first().is_some_and(|&n| g.contains_edge(n, n));
            if !is_cycle {
                continue;
            }
            let mut members: Vec<usize> = scc.iter().map(|&n| g[n]).collect();
            members.sort_unstable();
            let first = &self.nodes[members[0]];
            let names = members
                .iter()
                .map(|&i| format!("`{}`", self.nodes[i].name))
                .collect::<Vec<_>>()
                .join(" → ");
            let mut d = Diagnostic::error(
                Code::DependencyCycle,
                &first.source.file,
                Span {
                    start: first.source.start,
                    end: first.source.end,
                },
                format!("dependency cycle: {names} → `{}`", first.name),
            )
            .with_label("this step is part of a cycle")
            .with_help("remove one of the `after:` edges or data uses that close the cycle");
            for &i in &members[1..] {
                let n = &self.nodes[i];
                d = d.with_secondary(
                    &n.source.file,
                    Span {
                        start: n.source.start,
                        end: n.source.end,
                    },
                    format!("`{}` is in the cycle", n.name),
                );
            }
            out.push(d);
        }
        out
    }

    /// Renders the DAG in Graphviz dot.
    pub fn to_dot(&self) -> String {
        let mut s = format!("digraph \"{}\" {{\n  rankdir=LR;\n", esc(&self.pipeline));
        for st in &self.stages {
            s.push_str(&format!(
                "  subgraph \"cluster_{}\" {{\n    label=\"{}\";\n",
                esc(&st.name),
                esc(&st.name)
            ));
            for n in st.nodes.iter().chain(&st.rollback) {
                s.push_str(&format!("    \"{}\";\n", esc(n)));
            }
            s.push_str("  }\n");
        }
        for n in &self.nodes {
            let shape = match n.kind.as_str() {
                "gate" => "diamond",
                "approval" => "hexagon",
                _ => "box",
            };
            s.push_str(&format!(
                "  \"{}\" [label=\"{}\", shape={shape}];\n",
                esc(&n.id),
                esc(&n.name)
            ));
        }
        for n in &self.nodes {
            for need in &n.needs {
                s.push_str(&format!("  \"{}\" -> \"{}\";\n", esc(need), esc(&n.id)));
            }
        }
        s.push_str("}\n");
        s
    }

    /// Renders the DAG as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mid = |id: &str| id.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut s = String::from("flowchart LR\n");
        for n in &self.nodes {
            let label = n.name.replace('"', "#quot;");
            let (o, c) = match n.kind.as_str() {
                "gate" => ("{", "}"),
                "approval" => ("{{", "}}"),
                _ => ("[", "]"),
            };
            s.push_str(&format!("  {}{o}\"{label}\"{c}\n", mid(&n.id)));
        }
        for n in &self.nodes {
            for need in &n.needs {
                s.push_str(&format!("  {} --> {}\n", mid(need), mid(&n.id)));
            }
        }
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Quotes a word for a POSIX shell: unchanged when it is made of safe
/// characters only, else in single quotes.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A stable id from a node name.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    let mut dash = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("node");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::SortedMap;
    use std::collections::BTreeMap;

    /// Inserting in any order gives the entries, the lookups and the JSON
    /// of a `BTreeMap` with the same inserts, and the JSON reads back.
    #[test]
    fn a_sorted_map_behaves_and_serializes_like_a_btree_map() {
        let inserts = [
            ("PATH", 1),
            ("A", 2),
            ("ZED", 3),
            ("A", 4),
            ("M_1", 5),
            ("M", 6),
            ("PATH", 7),
            ("", 8),
        ];
        let mut ours = SortedMap::new();
        let mut theirs = BTreeMap::new();
        for (k, v) in inserts {
            assert_eq!(ours.insert(k.to_owned(), v), theirs.insert(k.to_owned(), v));
            ours.fit();
        }
        assert_eq!(ours.len(), theirs.len());
        assert!(ours.iter().eq(theirs.iter()));
        assert!(ours.keys().eq(theirs.keys()));
        assert!(ours.values().eq(theirs.values()));
        assert!((&ours).into_iter().eq(theirs.iter()));
        for k in ["PATH", "A", "", "M", "missing", "ZZZ"] {
            assert_eq!(ours.get(k), theirs.get(k), "{k}");
        }
        let json = serde_json::to_string(&ours).unwrap();
        assert_eq!(json, serde_json::to_string(&theirs).unwrap());
        let back: SortedMap<i32> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ours);
        let collected: SortedMap<i32> = inserts.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        assert_eq!(collected, ours);
        assert!(SortedMap::<i32>::new().is_empty());
        assert_eq!(
            serde_json::to_string(&SortedMap::<i32>::new()).unwrap(),
            "{}"
        );
    }
}
