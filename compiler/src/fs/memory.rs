//! [`MemoryFs`]: files held in memory, for tests and for compiling text that never was
//! on disk.

use super::{DirEntry, FileKind, FileMeta, FileSystem};
use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Files in memory under a root `/`; relative paths are relative to `/`. Directories
/// exist where files lie below them; there are no symlinks or special files.
#[derive(Debug, Default)]
pub struct MemoryFs {
    files: Mutex<BTreeMap<PathBuf, Vec<u8>>>,
}

impl MemoryFs {
    /// An empty file system.
    pub fn new() -> MemoryFs {
        MemoryFs::default()
    }

    /// Adds (or replaces) a file, builder style.
    pub fn with_file(self, path: impl AsRef<Path>, bytes: impl Into<Vec<u8>>) -> MemoryFs {
        self.insert(path, bytes);
        self
    }

    /// Adds (or replaces) a file.
    pub fn insert(&self, path: impl AsRef<Path>, bytes: impl Into<Vec<u8>>) {
        self.lock().insert(normalize(path.as_ref()), bytes.into());
    }

    /// The bytes of a file, if there is one at `path`.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        self.lock().get(&normalize(path.as_ref())).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PathBuf, Vec<u8>>> {
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_dir(files: &BTreeMap<PathBuf, Vec<u8>>, path: &Path) -> bool {
        path == Path::new("/") || files.keys().any(|key| key != path && key.starts_with(path))
    }
}

/// The absolute form of a path: below `/`, with `.` and `..` resolved by name.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir => out = PathBuf::from("/"),
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl FileSystem for MemoryFs {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
        let path = normalize(path);
        let files = self.lock();
        if let Some(bytes) = files.get(&path) {
            return Ok(FileMeta {
                kind: FileKind::File,
                len: bytes.len() as u64,
            });
        }
        if MemoryFs::is_dir(&files, &path) {
            return Ok(FileMeta {
                kind: FileKind::Dir,
                len: 0,
            });
        }
        Err(not_found())
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta> {
        self.metadata(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.metadata(path)?;
        Ok(normalize(path))
    }

    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let path = normalize(path);
        let files = self.lock();
        match files.get(&path) {
            Some(bytes) => Ok(bytes[..bytes.len().min(limit as usize)].to_vec()),
            None if MemoryFs::is_dir(&files, &path) => {
                Err(io::Error::from(io::ErrorKind::IsADirectory))
            }
            None => Err(not_found()),
        }
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let normal = normalize(dir);
        let files = self.lock();
        if files.contains_key(&normal) {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        if !MemoryFs::is_dir(&files, &normal) {
            return Err(not_found());
        }
        let mut children: BTreeMap<PathBuf, FileKind> = BTreeMap::new();
        for key in files.keys() {
            let Ok(rest) = key.strip_prefix(&normal) else {
                continue;
            };
            let mut parts = rest.components();
            let Some(first) = parts.next() else { continue };
            let kind = if parts.next().is_some() {
                FileKind::Dir
            } else {
                FileKind::File
            };
            children.insert(dir.join(first), kind);
        }
        Ok(children
            .into_iter()
            .map(|(path, kind)| DirEntry {
                path,
                kind: Ok(kind),
            })
            .collect())
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        let path = normalize(path);
        let mut files = self.lock();
        if MemoryFs::is_dir(&files, &path) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        files.insert(path, bytes.to_vec());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_by_name_below_the_root() {
        let fs = MemoryFs::new().with_file("flows/a.flow", "x");
        assert_eq!(
            fs.canonicalize(Path::new("./flows/sub/../a.flow")).unwrap(),
            PathBuf::from("/flows/a.flow")
        );
        assert_eq!(fs.metadata(Path::new("flows")).unwrap().kind, FileKind::Dir);
        assert_eq!(fs.metadata(Path::new("/")).unwrap().kind, FileKind::Dir);
        assert!(fs.metadata(Path::new("flows/b.flow")).is_err());
        assert_eq!(fs.read_at_most(Path::new("flows/a.flow"), 0).unwrap(), b"");
    }

    #[test]
    fn listing_names_files_and_directories_once() {
        let fs = MemoryFs::new()
            .with_file("d/a.flow", "a")
            .with_file("d/sub/b.flow", "b")
            .with_file("d/sub/c.flow", "c");
        let listed: Vec<(PathBuf, FileKind)> = fs
            .read_dir(Path::new("d"))
            .unwrap()
            .into_iter()
            .map(|entry| (entry.path, entry.kind.unwrap()))
            .collect();
        assert_eq!(
            listed,
            vec![
                (PathBuf::from("d/a.flow"), FileKind::File),
                (PathBuf::from("d/sub"), FileKind::Dir),
            ]
        );
        assert!(fs.read_dir(Path::new("d/a.flow")).is_err());
        assert!(fs.write(Path::new("d/sub"), b"x").is_err());
    }
}
