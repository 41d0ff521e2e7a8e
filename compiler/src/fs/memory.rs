//! [`MemoryFs`]: files held in memory, for tests and for compiling text that never was
//! on disk.

use super::{DirEntry, FileKind, FileMeta, FileSystem};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// Files and symlinks in memory under a root `/`; relative paths are relative to `/`.
/// Directories exist where entries lie below them; there are no special files.
#[derive(Debug, Default)]
pub struct MemoryFs {
    entries: Mutex<Tree>,
}

type Tree = BTreeMap<PathBuf, Entry>;

#[derive(Debug, Clone)]
enum Entry {
    File(Vec<u8>),
    /// A symlink to this path (relative to the link's directory unless absolute).
    Symlink(PathBuf),
}

/// Symlinks followed in one lookup before giving up, as Linux does.
const MAX_SYMLINK_HOPS: u32 = 40;

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

    /// Adds (or replaces) a symlink at `link` pointing to `target`, builder style.
    pub fn with_symlink(self, link: impl AsRef<Path>, target: impl AsRef<Path>) -> MemoryFs {
        let entry = Entry::Symlink(target.as_ref().to_path_buf());
        self.lock().insert(normalize(link.as_ref()), entry);
        self
    }

    /// Adds (or replaces) a file.
    pub fn insert(&self, path: impl AsRef<Path>, bytes: impl Into<Vec<u8>>) {
        let entry = Entry::File(bytes.into());
        self.lock().insert(normalize(path.as_ref()), entry);
    }

    /// The bytes of the file at `path` (symlinks followed), if there is one.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<Vec<u8>> {
        let tree = self.lock();
        let real = resolve(&tree, path.as_ref(), true).ok()?;
        match tree.get(&real) {
            Some(Entry::File(bytes)) => Some(bytes.clone()),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tree> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
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

/// A path's names and `..`s, last first (a stack to pop from).
fn steps(path: &Path) -> Vec<OsString> {
    let mut steps: Vec<OsString> = path
        .components()
        .filter_map(|component| match component {
            Component::ParentDir => Some(OsString::from("..")),
            Component::Normal(name) => Some(name.to_os_string()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    steps.reverse();
    steps
}

/// The absolute path `path` leads to, with every symlink on the way resolved (the last
/// one only when `follow_last`), as the kernel walks a path: `..` after a symlink leaves
/// the symlink's target.
fn resolve(tree: &Tree, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut out = PathBuf::from("/");
    let mut todo = steps(path);
    let mut hops = 0;
    while let Some(step) = todo.pop() {
        if step == ".." {
            out.pop();
            continue;
        }
        out.push(&step);
        let Some(Entry::Symlink(target)) = tree.get(&out) else {
            continue;
        };
        if todo.is_empty() && !follow_last {
            break;
        }
        hops += 1;
        if hops > MAX_SYMLINK_HOPS {
            return Err(io::Error::other("too many levels of symbolic links"));
        }
        out.pop();
        if target.is_absolute() {
            out = PathBuf::from("/");
        }
        todo.extend(steps(target));
    }
    Ok(out)
}

/// True when entries lie below `path` (the root always exists).
fn is_dir(tree: &Tree, path: &Path) -> bool {
    path == Path::new("/") || tree.keys().any(|key| key != path && key.starts_with(path))
}

/// Metadata of the resolved path `real`.
fn meta(tree: &Tree, real: &Path) -> io::Result<FileMeta> {
    match tree.get(real) {
        Some(Entry::File(bytes)) => Ok(FileMeta {
            kind: FileKind::File,
            len: bytes.len() as u64,
        }),
        Some(Entry::Symlink(target)) => Ok(FileMeta {
            kind: FileKind::Symlink,
            len: target.as_os_str().len() as u64,
        }),
        None if is_dir(tree, real) => Ok(FileMeta {
            kind: FileKind::Dir,
            len: 0,
        }),
        None => Err(io::Error::from(io::ErrorKind::NotFound)),
    }
}

impl FileSystem for MemoryFs {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
        let tree = self.lock();
        meta(&tree, &resolve(&tree, path, true)?)
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta> {
        let tree = self.lock();
        meta(&tree, &resolve(&tree, path, false)?)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let tree = self.lock();
        let real = resolve(&tree, path, true)?;
        meta(&tree, &real)?;
        Ok(real)
    }

    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let tree = self.lock();
        let real = resolve(&tree, path, true)?;
        match tree.get(&real) {
            Some(Entry::File(bytes)) => Ok(bytes[..bytes.len().min(limit as usize)].to_vec()),
            _ if is_dir(&tree, &real) => Err(io::Error::from(io::ErrorKind::IsADirectory)),
            _ => Err(io::Error::from(io::ErrorKind::NotFound)),
        }
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        let tree = self.lock();
        let real = resolve(&tree, dir, true)?;
        if meta(&tree, &real)?.kind != FileKind::Dir {
            return Err(io::Error::from(io::ErrorKind::NotADirectory));
        }
        let mut children: BTreeMap<PathBuf, FileKind> = BTreeMap::new();
        for (key, entry) in tree.range(real.clone()..) {
            let Ok(rest) = key.strip_prefix(&real) else {
                continue;
            };
            let mut parts = rest.components();
            let Some(first) = parts.next() else { continue };
            let kind = match (parts.next(), entry) {
                (Some(_), _) => FileKind::Dir,
                (None, Entry::File(_)) => FileKind::File,
                (None, Entry::Symlink(_)) => FileKind::Symlink,
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
        let mut tree = self.lock();
        let real = resolve(&tree, path, true)?;
        if is_dir(&tree, &real) {
            return Err(io::Error::from(io::ErrorKind::IsADirectory));
        }
        tree.insert(real, Entry::File(bytes.to_vec()));
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

    #[test]
    fn symlinks_resolve_as_the_kernel_resolves_them() {
        let fs = MemoryFs::new()
            .with_file("data/real.csv", "x")
            .with_symlink("app/link.csv", "../data/real.csv")
            .with_symlink("app/dir", "/data")
            .with_symlink("app/loop", "loop");
        assert_eq!(
            fs.canonicalize(Path::new("app/link.csv")).unwrap(),
            PathBuf::from("/data/real.csv")
        );
        assert_eq!(
            fs.canonicalize(Path::new("app/dir/../app/link.csv"))
                .unwrap(),
            PathBuf::from("/data/real.csv")
        );
        let link = fs.symlink_metadata(Path::new("app/link.csv")).unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        assert_eq!(
            fs.metadata(Path::new("app/dir")).unwrap().kind,
            FileKind::Dir
        );
        assert!(fs.metadata(Path::new("app/loop")).is_err());
        fs.write(Path::new("app/link.csv"), b"y").unwrap();
        assert_eq!(fs.get("data/real.csv").unwrap(), b"y");
    }
}
