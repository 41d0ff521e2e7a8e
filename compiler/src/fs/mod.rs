//! File access of the compiler library. Every read, directory listing and write goes
//! through [`FileSystem`], so the compiler runs against the disk ([`RealFs`]) or against
//! memory ([`MemoryFs`]); the checks on what a flow may read live in [`crate::source`] and
//! hold for both.

pub mod memory;
pub mod real;

pub use memory::MemoryFs;
pub use real::RealFs;

use std::io;
use std::path::{Path, PathBuf};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    /// Anything else the platform knows.
    Other,
}

impl FileKind {
    /// The kind in words, for messages: "a FIFO", "a directory", ...
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            FileKind::Dir => "a directory",
            FileKind::File | FileKind::Symlink | FileKind::Other => "a special file",
        }
    }
}

/// What the compiler needs to know about a path before it reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub kind: FileKind,
    /// Length in bytes.
    pub len: u64,
}

/// One entry of a directory listing.
#[derive(Debug)]
pub struct DirEntry {
    /// The listed directory joined with the entry's name.
    pub path: PathBuf,
    /// The entry's own kind (a symlink is [`FileKind::Symlink`], not followed).
    pub kind: io::Result<FileKind>,
}

/// The file operations of the compiler library. Implementations do no checking of their
/// own: limits, regular-file and directory checks are made by the callers in
/// [`crate::source`].
pub trait FileSystem: std::fmt::Debug + Send + Sync {
    /// Metadata of what `path` names, following symlinks.
    fn metadata(&self, path: &Path) -> io::Result<FileMeta>;
    /// Metadata of `path` itself: a symlink is reported as one.
    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta>;
    /// The absolute path with every symlink, `.` and `..` resolved; the path must exist.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
    /// Reads the file's first `limit` bytes (fewer when it is shorter).
    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>>;
    /// The entries of a directory, in no particular order.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>>;
    /// Creates or replaces a file.
    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()>;
}
