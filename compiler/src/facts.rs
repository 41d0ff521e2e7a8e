//! What the compiler learned about places in the source, for editors: the type of every
//! checked expression, where each name used is declared, and what is in scope inside each
//! record body. Collected only when asked ([`crate::compile_for_editor`]); `check` and
//! `build` pay nothing for it.

use crate::source::Span;

/// A name and the type it has, as shown to users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Typed {
    pub name: String,
    pub ty: String,
    /// Its fields when it is a record (for completion after `name.`).
    pub fields: Vec<Typed>,
}

/// The names and fields one record body may use.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The record body, `Order { ... }`.
    pub span: Span,
    /// The fields of `$` (the node's input), when it is a record.
    pub input: Vec<Typed>,
    /// Names bound by `let` and `as` that are visible at its start.
    pub locals: Vec<Typed>,
    /// The fields of the record being built.
    pub output: Vec<Typed>,
}

/// A name a user module sees (declared or imported).
#[derive(Debug, Clone)]
pub struct Named {
    /// The file of the module that sees it.
    pub module: std::path::PathBuf,
    pub name: String,
    /// `schema`, `table`, `connection`, ...
    pub kind: &'static str,
    /// Its signature in one line.
    pub detail: String,
    /// A schema's fields, a connection's operations.
    pub members: Vec<Typed>,
}

/// Everything recorded during one compilation.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// An expression (or a record's field name) and its type.
    pub types: Vec<(Span, String)>,
    /// A use of a name and the span of the name where it is declared.
    pub refs: Vec<(Span, Span)>,
    pub scopes: Vec<Scope>,
    pub names: Vec<Named>,
    /// The names declared in user files (items and flow nodes) that may be renamed.
    pub declarations: Vec<Span>,
}

impl Facts {
    /// The type of the smallest expression covering `offset` in `file`'s span.
    pub fn type_at(&self, file: crate::source::FileId, offset: u32) -> Option<(Span, &str)> {
        smallest(
            self.types.iter().map(|(s, t)| (*s, t.as_str())),
            file,
            offset,
        )
    }

    /// The declaration of the name used (or declared) at `offset`.
    pub fn definition_at(&self, file: crate::source::FileId, offset: u32) -> Option<Span> {
        if let Some((_, to)) = smallest(self.refs.iter().map(|(at, to)| (*at, *to)), file, offset) {
            return Some(to);
        }
        // On a declaration itself (used or not).
        self.refs
            .iter()
            .map(|(_, to)| *to)
            .chain(self.declarations.iter().copied())
            .find(|to| covers(*to, file, offset))
    }

    /// Every use of the declaration at `definition`, the declaration first.
    pub fn uses_of(&self, definition: Span) -> Vec<Span> {
        let mut spans = vec![definition];
        for (at, to) in &self.refs {
            if *to == definition && !spans.contains(at) {
                spans.push(*at);
            }
        }
        spans
    }

    /// The innermost record body covering `offset`.
    pub fn scope_at(&self, file: crate::source::FileId, offset: u32) -> Option<&Scope> {
        self.scopes
            .iter()
            .filter(|s| covers(s.span, file, offset))
            .min_by_key(|s| s.span.len())
    }
}

fn covers(span: Span, file: crate::source::FileId, offset: u32) -> bool {
    span.file == file && span.start <= offset && offset <= span.end
}

fn smallest<T>(
    items: impl Iterator<Item = (Span, T)>,
    file: crate::source::FileId,
    offset: u32,
) -> Option<(Span, T)> {
    items
        .filter(|(span, _)| covers(*span, file, offset))
        .min_by_key(|(span, _)| span.len())
}
