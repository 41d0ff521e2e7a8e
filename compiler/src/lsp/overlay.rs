//! The files of the disk, with the editor's open documents in place of their saved text:
//! the compiler sees what the user is typing, imports included.

use crate::fs::{DirEntry, FileKind, FileMeta, FileSystem, RealFs};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Open documents by absolute path, over the real file system.
#[derive(Debug, Default, Clone)]
pub struct Overlay {
    open: Arc<RwLock<HashMap<PathBuf, Arc<str>>>>,
}

impl Overlay {
    /// Sets the text of an open document.
    pub fn set(&self, path: PathBuf, text: Arc<str>) {
        self.write().insert(path, text);
    }

    /// Forgets a closed document (the disk's text is used again).
    pub fn remove(&self, path: &Path) {
        self.write().remove(path);
    }

    /// The text of an open document.
    pub fn get(&self, path: &Path) -> Option<Arc<str>> {
        self.read().get(path).cloned()
    }

    /// The open documents' paths.
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.read().keys().cloned().collect();
        paths.sort();
        paths
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PathBuf, Arc<str>>> {
        self.open
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PathBuf, Arc<str>>> {
        self.open
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn meta(&self, path: &Path) -> Option<FileMeta> {
        self.read().get(path).map(|text| FileMeta {
            kind: FileKind::File,
            len: text.len() as u64,
        })
    }
}

impl FileSystem for Overlay {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
        self.meta(path).map_or_else(|| RealFs.metadata(path), Ok)
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta> {
        self.meta(path)
            .map_or_else(|| RealFs.symlink_metadata(path), Ok)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        match RealFs.canonicalize(path) {
            // A new document not saved yet exists only here.
            Err(_) if self.meta(path).is_some() => Ok(path.to_path_buf()),
            found => found,
        }
    }

    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        match self.get(path) {
            Some(text) => {
                let bytes = text.as_bytes();
                Ok(bytes[..bytes.len().min(limit as usize)].to_vec())
            }
            None => RealFs.read_at_most(path, limit),
        }
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let mut entries = RealFs.read_dir(dir).or_else(|err| {
            if self.read().keys().any(|p| p.parent() == Some(dir)) {
                Ok(Vec::new())
            } else {
                Err(err)
            }
        })?;
        for path in self.read().keys() {
            if path.parent() == Some(dir) && !entries.iter().any(|e| &e.path == path) {
                entries.push(DirEntry {
                    path: path.clone(),
                    kind: Ok(FileKind::File),
                });
            }
        }
        Ok(entries)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        RealFs.write(path, bytes)
    }
}
