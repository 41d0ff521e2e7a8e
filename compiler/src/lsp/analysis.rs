//! One open document compiled as the root of its program (its imports and the stdlib
//! with it), with every span turned into a place on disk: a user file's path, or the
//! stdlib file written out below the server's stdlib folder.

use super::overlay::Overlay;
use crate::diagnostics::Diagnostic;
use crate::facts::Facts;
use crate::source::{FileId, Span};
use crate::Compilation;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A byte range in a file on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    pub path: PathBuf,
    pub start: usize,
    pub end: usize,
}

/// What compiling one document produced.
pub struct Analysis {
    pub compilation: Compilation,
    pub facts: Facts,
    /// Where each file of the compilation is on disk, by [`FileId`].
    paths: Vec<PathBuf>,
}

impl Analysis {
    /// Compiles `root` (its open text, or the disk's) with what it imports. `None` when
    /// the compiler could not start on it (an unreadable file).
    pub fn run(overlay: &Overlay, stdlib: &Path, root: &Path) -> Result<Analysis, String> {
        let compilation =
            crate::compile_for_editor(Arc::new(overlay.clone()), &[root.to_path_buf()])
                .map_err(|err| err.to_string())?;
        let paths = compilation
            .sources
            .iter()
            .map(|(_, file)| match &file.path {
                Some(path) => path.clone(),
                None => stdlib.join(file.name.trim_start_matches("std/")),
            })
            .collect();
        let facts = compilation.facts.clone().unwrap_or_default();
        Ok(Analysis {
            compilation,
            facts,
            paths,
        })
    }

    /// The compilation's id of the file at `path`.
    pub fn file(&self, path: &Path) -> Option<FileId> {
        self.paths
            .iter()
            .position(|p| p == path)
            .map(|idx| FileId(idx as u32))
    }

    /// The text the compiler read for a file.
    pub fn text(&self, file: FileId) -> &str {
        &self.compilation.sources.get(file).text
    }

    /// Where a span is on disk.
    pub fn place(&self, span: Span) -> Place {
        Place {
            path: self.paths[span.file.0 as usize].clone(),
            start: span.start as usize,
            end: span.end as usize,
        }
    }

    /// The span of a place, when it is in one of this compilation's files.
    pub fn span(&self, place: &Place) -> Option<Span> {
        self.file(&place.path)
            .map(|file| Span::new(file, place.start, place.end))
    }

    /// True when the file at `path` parsed (its facts cover all of it).
    pub fn parsed(&self, path: &Path) -> bool {
        self.file(path).is_some_and(|file| {
            !self
                .diagnostics_in(file)
                .any(|d| d.code == crate::diagnostics::codes::SYNTAX_ERROR)
        })
    }

    /// The diagnostics whose primary span is in `file`.
    pub fn diagnostics_in(&self, file: FileId) -> impl Iterator<Item = &Diagnostic> {
        self.compilation
            .diagnostics
            .iter()
            .filter(move |d| d.span().file == file)
    }

    /// Every use of the declaration at `definition` this compilation saw, as places.
    pub fn uses_of(&self, definition: &Place) -> Vec<Place> {
        let Some(span) = self.span(definition) else {
            return Vec::new();
        };
        self.facts
            .uses_of(span)
            .into_iter()
            .map(|s| self.place(s))
            .collect()
    }
}

/// Writes the embedded stdlib below `dir` (once per version), so that go-to-definition
/// can open its files.
pub fn write_stdlib(dir: &Path) -> std::io::Result<()> {
    use crate::fs::{FileSystem, RealFs};
    for file in crate::stdlib::FILES {
        let path = dir.join(file.path);
        let limit = file.text.len() as u64 + 1;
        if RealFs
            .read_at_most(&path, limit)
            .is_ok_and(|text| text == file.text.as_bytes())
        {
            continue;
        }
        if let Some(parent) = path.parent() {
            // The server's own folder, not a file a flow names.
            #[allow(clippy::disallowed_methods)]
            std::fs::create_dir_all(parent)?;
        }
        RealFs.write(&path, file.text.as_bytes())?;
    }
    Ok(())
}
