//! Source files, byte spans and file loading: what a flow may read, checked here for
//! every [`FileSystem`].

use crate::fs::{FileKind, FileSystem};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// Index of a file in [`Sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    /// A span from byte offsets.
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// True when the span covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// One loaded file.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name shown in diagnostics (a path, or `std/...` for the stdlib).
    pub name: String,
    /// Where it lives on disk; `None` for the embedded stdlib.
    pub path: Option<PathBuf>,
    pub text: Arc<str>,
    /// Where each line starts, found at the first position asked of the file.
    lines: std::sync::OnceLock<Vec<usize>>,
}

impl SourceFile {
    /// The byte offset where each line starts.
    pub fn line_starts(&self) -> &[usize] {
        self.lines.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(idx, _)| idx + 1))
                .collect()
        })
    }

    /// The byte range of the line holding `offset`, without its newline.
    pub fn line_bounds(&self, offset: usize) -> (usize, usize) {
        let starts = self.line_starts();
        let line = starts.partition_point(|start| *start <= offset).max(1) - 1;
        let end = starts
            .get(line + 1)
            .map_or(self.text.len(), |next| next - 1);
        (starts[line], end.max(starts[line]))
    }
}

/// Every file of one compilation.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SourceFile>,
    /// The last column asked for, so columns asked along one long line in order (as sorted
    /// diagnostics are) are counted once, not from the line's start each time.
    last_column: ColumnMemo,
}

/// A file, a line's start, an offset on it and that offset's column in chars.
#[derive(Debug, Default)]
struct ColumnMemo(std::sync::Mutex<Option<(FileId, usize, usize, usize)>>);

impl Clone for ColumnMemo {
    fn clone(&self) -> ColumnMemo {
        ColumnMemo::default()
    }
}

impl Sources {
    /// Adds a file and returns its id.
    pub fn add(
        &mut self,
        name: String,
        path: Option<PathBuf>,
        text: impl Into<Arc<str>>,
    ) -> FileId {
        self.files.push(SourceFile {
            name,
            path,
            text: text.into(),
            lines: std::sync::OnceLock::new(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// The file with this id.
    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    /// All files, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(idx, f)| (FileId(idx as u32), f))
    }

    /// The text a span covers.
    pub fn slice(&self, span: Span) -> &str {
        let text = &self.get(span.file).text;
        text.get(span.start as usize..span.end as usize)
            .unwrap_or("")
    }

    /// 1-based line and column (in chars) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: u32) -> (usize, usize) {
        let source = self.get(file);
        let text = &source.text;
        let mut offset = (offset as usize).min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let starts = source.line_starts();
        let line = starts.partition_point(|start| *start <= offset).max(1);
        let line_start = starts[line - 1];
        let mut memo = self.last_column.0.lock().unwrap_or_else(|e| e.into_inner());
        let (from, counted) = match *memo {
            Some((f, start, at, col)) if f == file && start == line_start && at <= offset => {
                (at, col)
            }
            _ => (line_start, 0),
        };
        let col = counted + text[from..offset].chars().count();
        *memo = Some((file, line_start, offset, col));
        (line, col + 1)
    }

    /// Finds a disk file already loaded under this path.
    pub fn find_path(&self, path: &Path) -> Option<FileId> {
        self.iter()
            .find(|(_, f)| f.path.as_deref() == Some(path))
            .map(|(id, _)| id)
    }
}

/// Largest `.flow` file the compiler reads.
pub const MAX_SOURCE_BYTES: u64 = 16 << 20;
/// Largest table or test fixture file a flow may name.
pub const MAX_DATA_FILE_BYTES: u64 = 16 << 20;

/// Why a file a flow names cannot be read; the text is the reason a diagnostic shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Absolute, `..`, or a symlink resolving outside the naming file's directory.
    #[error("{0}")]
    Outside(String),
    /// A FIFO, socket, device or directory, or a file over the size limit.
    #[error("{0}")]
    Unsupported(String),
    /// Missing, unreadable or not UTF-8.
    #[error("{0}")]
    Unreadable(String),
}

impl FileError {
    /// The reason, for a diagnostic.
    pub fn reason(&self) -> &str {
        match self {
            FileError::Outside(reason)
            | FileError::Unsupported(reason)
            | FileError::Unreadable(reason) => reason,
        }
    }
}

/// Why the files given to the compiler (or the formatter) cannot be listed, read or
/// written. Displayed as the message users see.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("`{}` is {}, not a .flow file or a directory", path.display(), kind.describe())]
    NotFlowOrDirectory { path: PathBuf, kind: FileKind },
    #[error(transparent)]
    File(#[from] FileError),
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("`{}` is a symlink; not rewritten (format the file it points to)", path.display())]
    SymlinkNotRewritten { path: PathBuf },
    #[error("`{}` is {}; not rewritten", path.display(), kind.describe())]
    NotRewritten { path: PathBuf, kind: FileKind },
}

/// Reads a UTF-8 text file given on the command line (or found in a directory given
/// there): only a regular file of at most [`MAX_SOURCE_BYTES`], never a FIFO or device.
pub fn read_text(fs: &dyn FileSystem, path: &Path) -> Result<String, FileError> {
    read_regular(fs, path, MAX_SOURCE_BYTES)
}

/// Reads a file that a flow names (an import, a table, a test fixture), written
/// relative to the flow file `from`. It must resolve, after symlinks, beside or below
/// `from`'s directory, be a regular file and hold at most `limit` bytes.
pub fn read_beside(
    fs: &dyn FileSystem,
    from: &Path,
    written: &str,
    limit: u64,
) -> Result<(PathBuf, String), FileError> {
    let joined = resolve_relative(from, written).map_err(FileError::Outside)?;
    let base = from.parent().unwrap_or_else(|| Path::new("."));
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let unreadable = |err: io::Error| {
        FileError::Unreadable(format!("cannot read `{}`: {err}", joined.display()))
    };
    let real_base = fs.canonicalize(base).map_err(unreadable)?;
    let real = fs.canonicalize(&joined).map_err(unreadable)?;
    if !real.starts_with(&real_base) {
        return Err(FileError::Outside(format!(
            "`{written}` resolves to `{}`, outside the flow's directory",
            real.display()
        )));
    }
    let text = read_regular_as(fs, &real, &joined, limit)?;
    Ok((joined, text))
}

/// Reads a regular file of at most `limit` bytes as UTF-8 (a leading BOM dropped); a
/// FIFO, socket, device or directory is refused before it is opened.
pub fn read_regular(fs: &dyn FileSystem, path: &Path, limit: u64) -> Result<String, FileError> {
    read_regular_as(fs, path, path, limit)
}

/// [`read_regular`], naming the file `shown` in errors.
fn read_regular_as(
    fs: &dyn FileSystem,
    path: &Path,
    shown: &Path,
    limit: u64,
) -> Result<String, FileError> {
    let unreadable =
        |err: io::Error| FileError::Unreadable(format!("cannot read `{}`: {err}", shown.display()));
    let meta = fs.metadata(path).map_err(unreadable)?;
    if meta.kind != FileKind::File {
        return Err(FileError::Unsupported(format!(
            "`{}` is {}, not a regular file",
            shown.display(),
            meta.kind.describe()
        )));
    }
    let too_large = || {
        FileError::Unsupported(format!(
            "`{}` is larger than the {} MiB limit",
            shown.display(),
            limit >> 20
        ))
    };
    if meta.len > limit {
        return Err(too_large());
    }
    let bytes = fs.read_at_most(path, limit + 1).map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        FileError::Unreadable(format!("cannot read `{}`: not UTF-8 text", shown.display()))
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Rewrites a regular file in place (the formatter's output): a symlink, FIFO or device
/// is refused, never written through.
pub fn write_in_place(fs: &dyn FileSystem, path: &Path, text: &str) -> Result<(), SourceError> {
    let write_error = |source: io::Error| SourceError::Write {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs.symlink_metadata(path).map_err(write_error)?;
    match meta.kind {
        FileKind::File => fs.write(path, text.as_bytes()).map_err(write_error),
        FileKind::Symlink => Err(SourceError::SymlinkNotRewritten {
            path: path.to_path_buf(),
        }),
        kind => Err(SourceError::NotRewritten {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Expands the given paths into `.flow` files: files as given, directories walked
/// recursively, sorted for deterministic output.
pub fn collect_flow_files(
    fs: &dyn FileSystem,
    paths: &[PathBuf],
) -> Result<Vec<PathBuf>, SourceError> {
    let mut out = Vec::new();
    for path in paths {
        let meta = fs.metadata(path).map_err(|source| SourceError::Read {
            path: path.clone(),
            source,
        })?;
        match meta.kind {
            FileKind::Dir => walk(fs, path, &mut out)?,
            FileKind::File => out.push(path.clone()),
            kind => {
                return Err(SourceError::NotFlowOrDirectory {
                    path: path.clone(),
                    kind,
                })
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(fs: &dyn FileSystem, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let entries = fs.read_dir(dir).map_err(|source| SourceError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let is_flow = entry.path.extension().is_some_and(|ext| ext == "flow");
        let kind = match entry.kind {
            Ok(kind) => kind,
            // A `.flow` entry that cannot be looked at (a dangling link) is reported when it
            // is read, beside the other files' diagnostics; anything else is not ours.
            Err(_) if is_flow => FileKind::File,
            Err(_) => continue,
        };
        if kind == FileKind::Dir {
            walk(fs, &entry.path, out)?;
        } else if is_flow {
            out.push(entry.path);
        }
    }
    Ok(())
}

/// Resolves a path written in a flow (an import, a table or fixture file) against the
/// directory of the file that wrote it. Absolute paths and `..` are refused so a flow
/// can only reach files beside or below it.
pub fn resolve_relative(from: &Path, written: &str) -> Result<PathBuf, String> {
    let rel = Path::new(written);
    if rel.is_absolute() {
        return Err("absolute paths are not allowed".to_string());
    }
    if rel.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::Prefix(_) | Component::RootDir
        )
    }) {
        return Err("`..` would leave the flow's directory".to_string());
    }
    let base = from.parent().unwrap_or_else(|| Path::new("."));
    Ok(base.join(rel))
}
