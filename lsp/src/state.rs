//! The server's state: open buffers over the files on disk, one compiler
//! session, and read-only views of them for requests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_lsp_server::ls_types::Uri;
use weir_compiler::{Session, Snapshot};

pub struct Doc {
    pub text: Arc<String>,
    pub version: i32,
}

/// Owned by one lock; edits are applied to it in order.
pub struct State {
    pub root: Option<PathBuf>,
    /// Open buffers by module name; they overlay the files on disk.
    pub open: BTreeMap<String, Doc>,
    /// The project's `.weir` files as read from disk, by module name.
    pub disk: BTreeMap<String, Arc<String>>,
    session: Session,
    /// Buffers or disk changed since the session last saw them.
    dirty: bool,
}

impl Default for State {
    fn default() -> Self {
        State {
            root: None,
            open: BTreeMap::new(),
            disk: BTreeMap::new(),
            session: Session::for_editor(),
            dirty: false,
        }
    }
}

impl State {
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    /// Hands the current texts to the session. Queries still running on
    /// older views are cancelled by this.
    fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        let texts = self.texts();
        let files: BTreeMap<String, &str> =
            texts.iter().map(|(k, v)| (k.clone(), v.as_str())).collect();
        self.session.set_files(&files);
        self.dirty = false;
    }

    fn texts(&self) -> BTreeMap<String, Arc<String>> {
        let mut f = self.disk.clone();
        for (k, d) in &self.open {
            f.insert(k.clone(), Arc::clone(&d.text));
        }
        f
    }

    /// A consistent, read-only view for answering a request on another thread.
    pub fn view(&mut self) -> View {
        self.sync();
        View {
            snapshot: self.session.snapshot(),
            texts: self.texts(),
            versions: self
                .open
                .iter()
                .map(|(k, d)| (k.clone(), d.version))
                .collect(),
            root: self.root.clone(),
        }
    }

    pub fn module_name(&self, uri: &Uri) -> String {
        module_name(self.root.as_deref(), uri)
    }

    pub fn uri_of(&self, module: &str) -> Option<Uri> {
        uri_of(self.root.as_deref(), module)
    }

    pub fn load_disk(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut found = Vec::new();
        walk(&root, &mut found, 0);
        self.disk.clear();
        for p in found {
            if let (Ok(text), Ok(rel)) = (std::fs::read_to_string(&p), p.strip_prefix(&root)) {
                self.disk
                    .insert(rel.to_string_lossy().replace('\\', "/"), Arc::new(text));
            }
        }
        self.dirty = true;
    }
}

/// What a request sees: the session's snapshot and the texts it was made of.
pub struct View {
    pub snapshot: Snapshot,
    texts: BTreeMap<String, Arc<String>>,
    /// Versions of the open buffers.
    pub versions: BTreeMap<String, i32>,
    root: Option<PathBuf>,
}

impl View {
    pub fn text(&self, module: &str) -> Option<&str> {
        self.texts.get(module).map(|t| t.as_str())
    }
    pub fn uri_of(&self, module: &str) -> Option<Uri> {
        uri_of(self.root.as_deref(), module)
    }
    pub fn module_name(&self, uri: &Uri) -> String {
        module_name(self.root.as_deref(), uri)
    }
}

fn uri_of(root: Option<&Path>, module: &str) -> Option<Uri> {
    Uri::from_file_path(root.unwrap_or(Path::new("/")).join(module))
}

fn module_name(root: Option<&Path>, uri: &Uri) -> String {
    let path = uri.to_file_path().map(std::borrow::Cow::into_owned);
    match (path, root) {
        (Some(p), Some(root)) => p.strip_prefix(root).map_or_else(
            |_| p.display().to_string(),
            |r| r.to_string_lossy().replace('\\', "/"),
        ),
        (Some(p), None) => p.file_name().map_or_else(
            || p.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        (None, _) => uri.as_str().to_owned(),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) {
    if depth > 16 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(std::result::Result::ok) {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(&p, out, depth + 1);
            }
        } else if name.ends_with(".weir") {
            out.push(p);
        }
    }
}
