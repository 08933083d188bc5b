//! All IO of the compiler goes through [`System`]: the CLI passes the real
//! file system, tests and the language server pass memory or an overlay.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

pub trait System {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Entries of a directory: path and whether it is a directory.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(PathBuf, bool)>>;
    fn is_dir(&self, path: &Path) -> bool;
    fn exists(&self, path: &Path) -> bool;
}

/// Files held in memory.
#[derive(Clone, Debug, Default)]
pub struct MemorySystem {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl MemorySystem {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, path: impl Into<PathBuf>, text: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), text.into());
    }
}

impl System for MemorySystem {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(PathBuf, bool)>> {
        let mut out: Vec<(PathBuf, bool)> = Vec::new();
        for f in self.files.keys() {
            if let Ok(rest) = f.strip_prefix(path) {
                let mut comps = rest.components();
                if let Some(first) = comps.next() {
                    let child = path.join(first);
                    let is_dir = comps.next().is_some();
                    if !out.iter().any(|(p, _)| p == &child) {
                        out.push((child, is_dir));
                    }
                }
            }
        }
        if out.is_empty() && !self.is_dir(path) {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such directory"));
        }
        Ok(out)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|f| f != path && f.starts_with(path))
    }
    fn exists(&self, path: &Path) -> bool {
        self.files.contains_key(path) || self.is_dir(path)
    }
}
