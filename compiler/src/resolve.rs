//! Name resolution across the files of a project.
//!
//! Every `.weir` file is a module named by its path relative to the project
//! root (forward slashes). `use "x.weir"` is resolved relative to the
//! importing file. The `std` namespace is reserved for the standard library;
//! versioned modules and plugins have their syntax but need `weir.lock`, which
//! a later release brings. Import cycles are reported once, on the `use` that
//! closes the cycle, naming every module in it.

use crate::diagnostics::{Code, Diagnostic, Span, suggest};
use crate::syntax::{ItemKind, Parsed, UseTarget};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What a `use` binds its alias to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Import {
    Module(String),
    /// Unresolvable; already reported.
    Broken,
}

#[derive(Clone, Debug)]
pub struct ModuleInfo {
    pub path: String,
    pub parsed: Arc<Parsed>,
    /// Item name to item index.
    pub items: HashMap<String, usize>,
    pub imports: HashMap<String, (Import, Span)>,
}

#[derive(Clone, Debug, Default)]
pub struct Program {
    pub modules: BTreeMap<String, ModuleInfo>,
}

/// The standard-library modules this release knows of (none yet ship code).
pub const STD_MODULES: &[&str] = &[];

/// Joins an import path onto the importing module's directory.
pub fn join_module_path(from: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = if rel.starts_with('/') {
        Vec::new()
    } else {
        from.split('/').collect()
    };
    if !rel.starts_with('/') {
        parts.pop();
    }
    for seg in rel.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

/// Builds the module table and reports duplicate names, unresolved imports
/// and import cycles.
pub fn resolve(files: &BTreeMap<String, Arc<Parsed>>, diags: &mut Vec<Diagnostic>) -> Program {
    let mut program = Program::default();
    for (path, parsed) in files {
        let mut items = HashMap::new();
        let mut imports = HashMap::new();
        for (idx, item) in parsed.module.items.iter().enumerate() {
            let Some(name) = item.kind.name() else {
                continue;
            };
            if name.name.is_empty() {
                continue;
            }
            if let Some(&prev) = items.get(&name.name) {
                let prev_item: &crate::syntax::Item = &parsed.module.items[prev];
                let prev_span = prev_item.kind.name().map_or(prev_item.span, |n| n.span);
                diags.push(
                    Diagnostic::error(
                        Code::DuplicateDefinition,
                        path,
                        name.span,
                        format!("`{}` is defined twice in this module", name.name),
                    )
                    .with_label("defined again here")
                    .with_secondary(path, prev_span, "first defined here")
                    .with_help("rename one of them, or use `as` to give an import another name"),
                );
                continue;
            }
            items.insert(name.name.clone(), idx);
            if let ItemKind::Use(u) = &item.kind {
                let import = match &u.target {
                    UseTarget::Path(rel, span) => {
                        let target = join_module_path(path, rel);
                        if files.contains_key(&target) {
                            Import::Module(target)
                        } else {
                            let candidates: Vec<&str> = files.keys().map(String::as_str).collect();
                            let mut d = Diagnostic::error(
                                Code::UnknownModule,
                                path,
                                *span,
                                format!("cannot find module `{rel}`"),
                            )
                            .with_label(format!("no file `{target}` in the project"))
                            .with_note(
                                "path modules are resolved relative to the file that imports them",
                            );
                            if let Some(s) = suggest(&target, candidates) {
                                d = d
                                    .with_help(format!("did you mean `{}`?", relative_to(path, s)));
                            }
                            diags.push(d);
                            Import::Broken
                        }
                    }
                    UseTarget::Std(segs) => {
                        let name: Vec<&str> = segs.iter().map(|s| s.name.as_str()).collect();
                        let span = segs.first().map_or(item.span, |f| {
                            f.span.to(segs.last().map_or(f.span, |l| l.span))
                        });
                        if name.first() == Some(&"std") {
                            let m = name[1..].join(".");
                            let mut d = Diagnostic::error(
                                Code::UnknownStdModule,
                                path,
                                span,
                                format!("the standard library has no module `{m}`"),
                            )
                            .with_label("unknown standard-library module");
                            d = match suggest(&m, STD_MODULES.iter().copied()) {
                                Some(s) => d.with_help(format!("did you mean `std.{s}`?")),
                                None => d.with_note("this release ships no standard-library modules yet; the `std` namespace is reserved for them").with_help("define the function in a file of your project and `use \"file.weir\"` it"),
                            };
                            diags.push(d);
                        } else {
                            diags.push(
                                Diagnostic::error(Code::UnknownModule, path, span, format!("cannot find module `{}`", name.join(".")))
                                    .with_label("not a module")
                                    .with_help("import a file with `use \"path/to/file.weir\"`; dotted names are for the standard library (`use std.x`)"),
                            );
                        }
                        Import::Broken
                    }
                    UseTarget::Versioned {
                        name,
                        version,
                        span,
                    } => {
                        diags.push(
                            Diagnostic::error(Code::VersionedModuleUnavailable, path, *span, format!("no locked version of `{name}` matching `{version}`"))
                                .with_label("this versioned module is not in `weir.lock`")
                                .with_note("versioned modules are pinned by exact version and content hash in `weir.lock`; this release does not fetch modules yet")
                                .with_help("vendor the module into the project and import it by path: `use \"vendor/module.weir\"`"),
                        );
                        Import::Broken
                    }
                    UseTarget::Plugin(p, span) => {
                        diags.push(
                            Diagnostic::error(Code::PluginUnavailable, path, *span, format!("cannot load WASM plugin `{p}`"))
                                .with_label("plugins are not supported by this release")
                                .with_note("WASM plugin steps need a hash pin in `weir.lock` and the sandboxed runtime, which a later release brings")
                                .with_help("run the tool as an ordinary step: `step \"...\" { run: [...] }`"),
                        );
                        Import::Broken
                    }
                };
                imports.insert(name.name.clone(), (import, name.span));
            }
        }
        program.modules.insert(
            path.clone(),
            ModuleInfo {
                path: path.clone(),
                parsed: parsed.clone(),
                items,
                imports,
            },
        );
    }
    report_cycles(&program, diags);
    program
}

fn relative_to(from: &str, target: &str) -> String {
    let from_dir: Vec<&str> = from.split('/').collect();
    let from_dir = &from_dir[..from_dir.len().saturating_sub(1)];
    let t: Vec<&str> = target.split('/').collect();
    let common = from_dir.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out: Vec<&str> = vec![".."; from_dir.len() - common];
    out.extend(&t[common..]);
    out.join("/")
}

fn report_cycles(program: &Program, diags: &mut Vec<Diagnostic>) {
    // Iterative DFS with colours; modules are visited in sorted order so the
    // reported cycle is stable.
    #[derive(Clone, Copy, PartialEq)]
    enum C {
        White,
        Grey,
        Black,
    }
    let names: Vec<&String> = program.modules.keys().collect();
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let edges: Vec<Vec<(usize, Span)>> = names
        .iter()
        .map(|n| {
            let m = &program.modules[*n];
            let mut e: Vec<(usize, Span)> = m
                .imports
                .values()
                .filter_map(|(imp, _)| match imp {
                    Import::Module(t) => index.get(t.as_str()).map(|&i| (i, use_span(m, t))),
                    Import::Broken => None,
                })
                .collect();
            e.sort_by_key(|(i, s)| (*i, s.start));
            e
        })
        .collect();
    let mut colour = vec![C::White; names.len()];
    for root in 0..names.len() {
        if colour[root] != C::White {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = C::Grey;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if *next < edges[node].len() {
                let (to, span) = edges[node][*next];
                *next += 1;
                match colour[to] {
                    C::White => {
                        colour[to] = C::Grey;
                        stack.push((to, 0));
                    }
                    C::Grey => {
                        let pos = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
                        let cycle: Vec<&str> = stack[pos..]
                            .iter()
                            .map(|(n, _)| names[*n].as_str())
                            .collect();
                        let mut text = cycle.join("` imports `");
                        text.push_str(&format!("` imports `{}", names[to]));
                        let mut d = Diagnostic::error(
                            Code::ImportCycle,
                            names[node],
                            span,
                            format!("import cycle: `{text}`"),
                        )
                        .with_label("this import closes the cycle")
                        .with_help(
                            "move what both modules need into a third module that imports neither",
                        );
                        for (n, _) in &stack[pos..stack.len() - 1] {
                            let m = &program.modules[names[*n]];
                            for (imp, _) in m.imports.values() {
                                if let Import::Module(t) = imp
                                    && cycle.contains(&t.as_str())
                                {
                                    d = d.with_secondary(
                                        names[*n],
                                        use_span(m, t),
                                        format!("`{}` imports `{t}`", names[*n]),
                                    );
                                }
                            }
                        }
                        diags.push(d);
                    }
                    C::Black => {}
                }
            } else {
                colour[node] = C::Black;
                stack.pop();
            }
        }
    }
}

fn use_span(m: &ModuleInfo, target: &str) -> Span {
    for item in &m.parsed.module.items {
        if let ItemKind::Use(u) = &item.kind
            && let UseTarget::Path(rel, span) = &u.target
            && join_module_path(&m.path, rel) == target
        {
            return *span;
        }
    }
    Span::default()
}
