//! Loading: root files, imported files and stdlib modules, then scopes and import cycles.

use super::{Binding, ItemRef, ModuleId, ModuleInfo, Program};
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::fs::FileSystem;
use crate::source::{self, FileError, Sources, Span};
use crate::syntax::ast::{Item, Module, UseTarget};
use crate::syntax::parse_module;
use std::cell::Cell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The stdlib module of the ledger's operations, loaded with any module declaring one.
pub const LEDGER_MODULE: &str = "std.connectors.ledger";

/// One key per file however it was written (`./a.flow`, `sub/../a.flow`).
fn file_key(fs: &dyn FileSystem, path: &Path) -> String {
    let canonical = fs.canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    format!("file:{}", canonical.display())
}

struct Loader<'a> {
    program: Program,
    sources: &'a mut Sources,
    diags: &'a mut Diagnostics,
    by_key: HashMap<String, ModuleId>,
}

/// Loads the root files (I/O errors on them are returned for exit code 2) and everything
/// they import, and builds every module's scope.
pub fn load(
    fs: Arc<dyn FileSystem>,
    roots: &[PathBuf],
    sources: &mut Sources,
    diags: &mut Diagnostics,
) -> Result<Program, FileError> {
    let mut loader = Loader {
        program: Program::new(fs),
        sources,
        diags,
        by_key: HashMap::new(),
    };
    let mut queue = Vec::new();
    for path in roots {
        let text = match source::read_text(loader.program.fs(), path) {
            Ok(text) => text,
            // One file of several that cannot be read is one error: the others are checked.
            Err(err) if roots.len() > 1 => {
                let shown = path.display().to_string();
                let file = loader.sources.add(shown.clone(), Some(path.clone()), "");
                loader.diags.push(file_error(
                    &err,
                    Span::new(file, 0, 0),
                    &format!("`{shown}`"),
                    "flow file",
                    "the directory checked",
                ));
                continue;
            }
            Err(err) => return Err(err),
        };
        let id = loader.add_file_module(path, text);
        loader.program.modules[id.0 as usize].is_root = true;
        queue.push(id);
    }
    // Resolve imports breadth-first; new modules join the queue.
    let mut next = 0;
    while next < loader.program.modules.len() {
        loader.resolve_imports(ModuleId(next as u32));
        next += 1;
    }
    loader.build_scopes();
    loader.report_cycles();
    Ok(loader.program)
}

impl Loader<'_> {
    fn add_module(
        &mut self,
        key: String,
        name: String,
        path: Option<PathBuf>,
        is_std: bool,
        ast: Module,
    ) -> ModuleId {
        let id = ModuleId(self.program.modules.len() as u32);
        self.program.modules.push(ModuleInfo {
            name,
            path,
            is_std,
            is_root: false,
            ast,
            scope: HashMap::new(),
            imports: Vec::new(),
        });
        self.by_key.insert(key, id);
        id
    }

    fn add_file_module(&mut self, path: &Path, text: String) -> ModuleId {
        let key = file_key(self.program.fs(), path);
        if let Some(id) = self.by_key.get(&key) {
            return *id;
        }
        let name = path.display().to_string();
        let file = self
            .sources
            .add(name.clone(), Some(path.to_path_buf()), text);
        let text = self.sources.get(file).text.clone();
        let ast = parse_module(file, &text, self.diags);
        self.add_module(key, name, Some(path.to_path_buf()), false, ast)
    }

    fn std_module(&mut self, name: &str) -> Option<ModuleId> {
        let key = format!("std:{name}");
        if let Some(id) = self.by_key.get(&key) {
            return Some(*id);
        }
        let files = crate::stdlib::module_files(name);
        if files.is_empty() {
            return None;
        }
        let mut ast = Module::default();
        for std_file in files {
            let file = self
                .sources
                .add(format!("std/{}", std_file.path), None, std_file.text);
            let module = parse_module(file, std_file.text, self.diags);
            ast.items.extend(module.items);
        }
        Some(self.add_module(key, name.to_string(), None, true, ast))
    }

    fn resolve_imports(&mut self, id: ModuleId) {
        let uses: Vec<(UseTarget, Span)> = self.program.modules[id.0 as usize]
            .ast
            .items
            .iter()
            .filter_map(|item| match item {
                Item::Use(u) => Some((u.target.clone(), u.span)),
                _ => None,
            })
            .collect();
        let from_path = self.program.modules[id.0 as usize].path.clone();
        // A ledger's operations are the built-in `ledger` connector's.
        let declares_ledger = self.program.modules[id.0 as usize]
            .ast
            .items
            .iter()
            .any(|item| matches!(item, Item::Ledger(_)));
        if declares_ledger {
            self.std_module(LEDGER_MODULE);
        }
        for (target, span) in uses {
            let imported = match &target {
                UseTarget::Module(parts) => {
                    let name: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
                    let name = name.join(".");
                    let path_span = parts
                        .first()
                        .map(|first| first.span.to(parts.last().map_or(first.span, |l| l.span)))
                        .unwrap_or(span);
                    match self.std_module(&name) {
                        Some(found) => Some(found),
                        None => {
                            let help = suggest::did_you_mean(
                                &name,
                                crate::stdlib::module_names(),
                                "stdlib modules start with `std.`; import a file with `use \"./file.flow\"`",
                            );
                            self.diags.push(
                                Diagnostic::error(
                                    codes::UNKNOWN_MODULE,
                                    path_span,
                                    format!("unknown module `{name}`"),
                                )
                                .label("no such module")
                                .help(help),
                            );
                            None
                        }
                    }
                }
                UseTarget::File(lit) => {
                    self.file_import(from_path.as_deref(), &lit.value, lit.span)
                }
            };
            if let Some(imported) = imported {
                self.program.modules[id.0 as usize]
                    .imports
                    .push((imported, span));
            }
        }
    }

    fn file_import(&mut self, from: Option<&Path>, written: &str, span: Span) -> Option<ModuleId> {
        let from = from?;
        match source::read_beside(self.program.fs(), from, written, source::MAX_SOURCE_BYTES) {
            Ok((path, text)) => {
                if let Some(id) = self.by_key.get(&file_key(self.program.fs(), &path)) {
                    return Some(*id);
                }
                Some(self.add_file_module(&path, text))
            }
            Err(err) => {
                let what = format!("cannot import `{written}`");
                self.diags
                    .push(file_error(&err, span, &what, "file", "the importing file"));
                None
            }
        }
    }

    fn build_scopes(&mut self) {
        let n_modules = self.program.modules.len();
        // Own items first.
        for idx in 0..n_modules {
            let mut scope: HashMap<String, Binding> = HashMap::new();
            let module = &self.program.modules[idx];
            for (item_idx, item) in module.ast.items.iter().enumerate() {
                let Some(name) = item.name() else { continue };
                if name.name.is_empty() {
                    continue;
                }
                if let Some(previous) = scope.get(&name.name) {
                    let first = module.ast.items[previous.target.item as usize]
                        .name()
                        .map(|n| n.span)
                        .unwrap_or(name.span);
                    self.diags.push(
                        Diagnostic::error(
                            codes::DUPLICATE_DEFINITION,
                            name.span,
                            format!("`{}` is declared twice", name.name),
                        )
                        .label("declared again here")
                        .secondary(first, "first declared here")
                        .help("rename one of the two declarations"),
                    );
                    continue;
                }
                scope.insert(
                    name.name.clone(),
                    Binding {
                        target: ItemRef {
                            module: super::ModuleId(idx as u32),
                            item: item_idx as u32,
                        },
                        import_span: None,
                        used: Cell::new(false),
                    },
                );
            }
            self.program.modules[idx].scope = scope;
        }
        // Then imports.
        for idx in 0..n_modules {
            let uses: Vec<(Option<Vec<crate::syntax::ast::Ident>>, Span)> = self.program.modules
                [idx]
                .ast
                .items
                .iter()
                .filter_map(|item| match item {
                    Item::Use(u) => Some((u.names.clone(), u.span)),
                    _ => None,
                })
                .collect();
            let imports = self.program.modules[idx].imports.clone();
            for ((names, _), (target, use_span)) in uses
                .iter()
                .filter(|(_, span)| imports.iter().any(|(_, s)| s == span))
                .zip(imports.iter())
            {
                let exported: Vec<(String, ItemRef)> = self
                    .program
                    .module(*target)
                    .ast
                    .items
                    .iter()
                    .enumerate()
                    .filter_map(|(item_idx, item)| {
                        let name = item.name()?;
                        Some((
                            name.name.clone(),
                            ItemRef {
                                module: *target,
                                item: item_idx as u32,
                            },
                        ))
                    })
                    .collect();
                match names {
                    Some(names) => {
                        for name in names {
                            let found = exported.iter().find(|(n, _)| *n == name.name);
                            match found {
                                Some((_, item)) => self.bind_import(idx, name, *item),
                                None => {
                                    let module_name = self.program.module(*target).name.clone();
                                    let help = suggest::did_you_mean(
                                        &name.name,
                                        exported.iter().map(|(n, _)| n.as_str()),
                                        &format!("`{module_name}` declares no item of that name"),
                                    );
                                    self.diags.push(
                                        Diagnostic::error(
                                            codes::UNKNOWN_IMPORT,
                                            name.span,
                                            format!("`{module_name}` has no item `{}`", name.name),
                                        )
                                        .label("not declared in that module")
                                        .help(help),
                                    );
                                }
                            }
                        }
                    }
                    None => {
                        let scope = &mut self.program.modules[idx].scope;
                        for (name, item) in exported {
                            scope.entry(name).or_insert(Binding {
                                target: item,
                                import_span: Some(*use_span),
                                used: Cell::new(true),
                            });
                        }
                    }
                }
            }
        }
    }

    fn bind_import(&mut self, module_idx: usize, name: &crate::syntax::ast::Ident, item: ItemRef) {
        let scope = &mut self.program.modules[module_idx].scope;
        if let Some(existing) = scope.get(&name.name) {
            if existing.target != item {
                self.diags.push(
                    Diagnostic::error(
                        codes::DUPLICATE_DEFINITION,
                        name.span,
                        format!("`{}` is already declared in this file", name.name),
                    )
                    .label("imported here")
                    .help("rename the local declaration or drop this import"),
                );
            }
            return;
        }
        scope.insert(
            name.name.clone(),
            Binding {
                target: item,
                import_span: Some(name.span),
                used: Cell::new(false),
            },
        );
    }

    fn report_cycles(&mut self) {
        // Depth-first search over file imports; a back edge is a cycle.
        let n = self.program.modules.len();
        let mut state = vec![0u8; n]; // 0 new, 1 on stack, 2 done
        for start in 0..n {
            if state[start] == 0 {
                self.visit(start, &mut state);
            }
        }
    }

    fn visit(&mut self, idx: usize, state: &mut Vec<u8>) {
        state[idx] = 1;
        let imports = self.program.modules[idx].imports.clone();
        for (target, span) in imports {
            let t = target.0 as usize;
            if self.program.modules[t].is_std {
                continue;
            }
            match state[t] {
                1 => {
                    let other = self.program.modules[t].name.clone();
                    self.diags.push(
                        Diagnostic::error(
                            codes::IMPORT_CYCLE,
                            span,
                            format!("import cycle through `{other}`"),
                        )
                        .label("this import closes the cycle")
                        .help("move the shared declarations into a third file that both import"),
                    );
                }
                0 => self.visit(t, state),
                _ => {}
            }
        }
        state[idx] = 2;
    }
}

/// The diagnostic for a file a flow names and cannot read: `kind` names the file in the
/// label, `relative_to` what its path is relative to.
pub fn file_error(
    err: &FileError,
    span: Span,
    what: &str,
    kind: &str,
    relative_to: &str,
) -> Diagnostic {
    let reason = err.reason();
    match err {
        FileError::Outside(_) => Diagnostic::error(
            codes::FILE_OUTSIDE_DIRECTORY,
            span,
            format!("{what}: {reason}"),
        )
        .label("outside the flow's directory")
        .help("keep the file beside or below the flow file and name it with a relative path; symlinks may not lead out of the directory"),
        FileError::Unsupported(_) => Diagnostic::error(
            codes::UNSUPPORTED_FILE,
            span,
            format!("{what}: {reason}"),
        )
        .label("not a file a flow can read")
        .help(format!(
            "name a regular file of at most {} MiB",
            source::MAX_DATA_FILE_BYTES >> 20
        )),
        FileError::Unreadable(_) => Diagnostic::error(codes::FILE_NOT_FOUND, span, reason)
            .label(format!("this {kind} cannot be read"))
            .help(format!("check the path; it is relative to {relative_to}")),
    }
}
