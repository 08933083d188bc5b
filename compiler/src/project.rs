//! Finding a project's sources through [`System`].
//!
//! With a directory, every `.weir` file below it (hidden folders, `target`
//! and `node_modules` skipped) is a module. With a file, that file and the
//! path modules it imports, transitively. Module names are paths relative to
//! the root with `/` separators, so they are the same on every machine.

use crate::diagnostics::{Code, Diagnostic, Span};
use crate::syntax::lexer::{Kw, Tok, lex};
use crate::system::System;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Files larger than this are refused (E0008).
pub const MAX_FILE_BYTES: usize = 16 << 20;

#[derive(Debug)]
pub enum LoadError {
    NotFound(PathBuf),
    NoSources(PathBuf),
    Io(PathBuf, std::io::Error),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotFound(p) => write!(f, "`{}` does not exist", p.display()),
            LoadError::NoSources(p) => write!(
                f,
                "error[{}]: no `.weir` files in `{}`",
                Code::NoSourceFiles,
                p.display()
            ),
            LoadError::Io(p, e) => write!(f, "cannot read `{}`: {e}", p.display()),
        }
    }
}

impl std::error::Error for LoadError {}

#[derive(Debug, Default)]
pub struct Project {
    pub root: PathBuf,
    /// Module name to source text.
    pub files: BTreeMap<String, String>,
    /// Problems with files that were found but could not be used (not UTF-8, too large).
    pub diagnostics: Vec<Diagnostic>,
}

fn module_name(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file);
    rel.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn walk(
    sys: &dyn System,
    dir: &Path,
    out: &mut Vec<PathBuf>,
    depth: usize,
) -> Result<(), LoadError> {
    if depth > 32 {
        return Ok(());
    }
    let mut entries = sys
        .read_dir(dir)
        .map_err(|e| LoadError::Io(dir.to_owned(), e))?;
    entries.sort();
    for (p, is_dir) in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_dir {
            if name.starts_with('.') || name == "target" || name == "node_modules" {
                continue;
            }
            walk(sys, &p, out, depth + 1)?;
        } else if name.ends_with(".weir") {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads a project from the given paths (none: `cwd`).
pub fn load(sys: &dyn System, paths: &[PathBuf], cwd: &Path) -> Result<Project, LoadError> {
    let mut project = Project::default();
    let mut queue: Vec<PathBuf> = Vec::new();
    let paths: Vec<PathBuf> = if paths.is_empty() {
        vec![cwd.to_owned()]
    } else {
        paths
            .iter()
            .map(|p| {
                if p.is_absolute() {
                    p.clone()
                } else {
                    cwd.join(p)
                }
            })
            .collect()
    };
    for p in &paths {
        if !sys.exists(p) {
            return Err(LoadError::NotFound(p.clone()));
        }
    }
    // The root is the deepest folder holding every given path, so module
    // names do not depend on the order the paths were given in.
    let dirs: Vec<PathBuf> = paths
        .iter()
        .map(|p| {
            if sys.is_dir(p) {
                p.clone()
            } else {
                p.parent().map(Path::to_path_buf).unwrap_or_default()
            }
        })
        .collect();
    let mut root = dirs[0].clone();
    while !dirs.iter().all(|d| d.starts_with(&root)) {
        if !root.pop() {
            break;
        }
    }
    project.root = root;
    for p in &paths {
        if sys.is_dir(p) {
            let mut found = Vec::new();
            walk(sys, p, &mut found, 0)?;
            if found.is_empty() {
                return Err(LoadError::NoSources(p.clone()));
            }
            queue.extend(found);
        } else {
            queue.push(p.clone());
        }
    }
    while let Some(path) = queue.pop() {
        let name = module_name(&project.root, &path);
        if project.files.contains_key(&name) {
            continue;
        }
        let bytes = sys.read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LoadError::NotFound(path.clone())
            } else {
                LoadError::Io(path.clone(), e)
            }
        })?;
        if bytes.len() > MAX_FILE_BYTES {
            project.diagnostics.push(
                Diagnostic::error(
                    Code::FileTooLarge,
                    &name,
                    Span::default(),
                    format!(
                        "`{name}` is {} bytes; source files may be at most {} bytes",
                        bytes.len(),
                        MAX_FILE_BYTES
                    ),
                )
                .with_help("split the pipeline into modules and `use` them"),
            );
            project.files.insert(name, String::new());
            continue;
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                project.diagnostics.push(
                    Diagnostic::error(
                        Code::InvalidUtf8,
                        &name,
                        Span::new(at, at + 1),
                        format!("`{name}` is not valid UTF-8 (first bad byte at offset {at})"),
                    )
                    .with_label("invalid UTF-8 here")
                    .with_help("save the file as UTF-8"),
                );
                project.files.insert(name.clone(), String::new());
                // Keep the readable text for the renderer only.
                let _ = lossy;
                continue;
            }
        };
        // Follow path imports.
        for target in path_imports(&text) {
            if target.contains('@') {
                continue;
            }
            let dir = path.parent().unwrap_or(Path::new(""));
            let t = normalize(&dir.join(&target));
            if sys.exists(&t) && !sys.is_dir(&t) {
                queue.push(t);
            }
        }
        project.files.insert(name, text);
    }
    Ok(project)
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The string targets of `use "..."` in a source, found by the lexer alone.
pub fn path_imports(text: &str) -> Vec<String> {
    // A `use` needs the word: most files have none and need no lexing.
    if !text.contains("use") {
        return Vec::new();
    }
    let lexed = lex("", text);
    let t = &lexed.tokens;
    let mut out = Vec::new();
    for i in 0..t.len() {
        if t[i].0 == Tok::Kw(Kw::Use)
            && let (Some((Tok::StrStart(_), _)), Some((Tok::Text(s), _))) =
                (t.get(i + 1), t.get(i + 2))
        {
            out.push(lexed.text(*s).to_owned());
        }
    }
    out
}
