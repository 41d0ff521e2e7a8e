//! Source files, byte spans and file loading: the only IO in the compiler library.

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
}

/// Every file of one compilation.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    files: Vec<SourceFile>,
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
        let text = &self.get(file).text;
        let offset = (offset as usize).min(text.len());
        let before = text.get(..offset).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|idx| idx + 1).unwrap_or(0);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }

    /// Finds a disk file already loaded under this path.
    pub fn find_path(&self, path: &Path) -> Option<FileId> {
        self.iter()
            .find(|(_, f)| f.path.as_deref() == Some(path))
            .map(|(id, _)| id)
    }
}

/// Reads a UTF-8 text file.
pub fn read_text(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot read `{}`: {err}", path.display()))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

/// Expands the given paths into `.flow` files: files as given, directories walked
/// recursively, sorted for deterministic output.
pub fn collect_flow_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|err| format!("cannot read `{}`: {err}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|err| format!("cannot read `{}`: {err}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|err| format!("cannot read `{}`: {err}", dir.display()))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(|err| format!("cannot read `{}`: {err}", path.display()))?;
        if file_type.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|ext| ext == "flow") {
            out.push(path);
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
