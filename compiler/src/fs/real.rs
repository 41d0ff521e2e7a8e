//! [`RealFs`]: the disk, through `std::fs`; the one place in the compiler library that
//! touches it.
// The I/O ban of clippy.toml exists so that every other module goes through this one.
#![allow(clippy::disallowed_methods)]

use super::{DirEntry, FileKind, FileMeta, FileSystem};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The operating system's file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
        std::fs::metadata(path).map(|meta| meta_of(&meta))
    }

    fn symlink_metadata(&self, path: &Path) -> io::Result<FileMeta> {
        std::fs::symlink_metadata(path).map(|meta| meta_of(&meta))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }

    fn read_at_most(&self, path: &Path, limit: u64) -> io::Result<Vec<u8>> {
        let file = std::fs::File::open(path)?;
        let capacity = file.metadata().map_or(0, |meta| meta.len().min(limit));
        let mut bytes = Vec::with_capacity(capacity as usize);
        file.take(limit).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn read_dir(&self, dir: &Path) -> io::Result<Vec<DirEntry>> {
        std::fs::read_dir(dir)?
            .map(|entry| {
                let entry = entry?;
                Ok(DirEntry {
                    path: entry.path(),
                    kind: entry.file_type().map(|file_type| kind_of(&file_type)),
                })
            })
            .collect()
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        std::fs::write(path, bytes)
    }
}

fn meta_of(meta: &std::fs::Metadata) -> FileMeta {
    FileMeta {
        kind: kind_of(&meta.file_type()),
        len: meta.len(),
    }
}

fn kind_of(file_type: &std::fs::FileType) -> FileKind {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return FileKind::Fifo;
        }
        if file_type.is_socket() {
            return FileKind::Socket;
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return FileKind::Device;
        }
    }
    if file_type.is_file() {
        FileKind::File
    } else if file_type.is_dir() {
        FileKind::Dir
    } else if file_type.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    }
}
