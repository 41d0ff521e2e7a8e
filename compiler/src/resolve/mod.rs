//! Name resolution: loads the given files, the files they import and the stdlib modules
//! they use, and builds one scope per module (its own items plus its imports).

pub(crate) mod load;

pub use load::LEDGER_MODULE;

pub use load::load;

use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::facts::{Facts, Named, Scope};
use crate::fs::FileSystem;
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::ast::{Item, Module};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Index of a module in [`Program::modules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleId(pub u32);

/// A declared item: module and index in its item list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ItemRef {
    pub module: ModuleId,
    pub item: u32,
}

/// A name visible in a module.
#[derive(Debug)]
pub struct Binding {
    pub target: ItemRef,
    /// Where it was imported, `None` for the module's own items.
    pub import_span: Option<Span>,
    pub used: Cell<bool>,
}

/// One module: a user file, or a stdlib module (possibly several files).
#[derive(Debug)]
pub struct ModuleInfo {
    /// `std.retail` or the file's display name.
    pub name: String,
    pub path: Option<PathBuf>,
    pub is_std: bool,
    /// Given on the command line (not only imported).
    pub is_root: bool,
    pub ast: Module,
    pub scope: HashMap<String, Binding>,
    /// Modules this one imports, with the span of the `use`.
    pub imports: Vec<(ModuleId, Span)>,
}

/// Every module of one compilation, with scopes built.
#[derive(Debug)]
pub struct Program {
    pub modules: Vec<ModuleInfo>,
    /// Where the modules' files, and the files they name, are read from.
    fs: Arc<dyn FileSystem>,
    /// How many modules declare a type of each name (for [`Program::ir_name`]).
    type_name_counts: std::sync::OnceLock<HashMap<String, usize>>,
    /// What the later stages learn about places in the files, when asked for.
    facts: RefCell<Option<Facts>>,
}

/// What kind of item a name must denote at a use site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Type,
    Connector,
    Connection,
    Table,
    Policy,
}

impl Kind {
    fn matches(self, item: &Item) -> bool {
        matches!(
            (self, item),
            (Kind::Type, Item::Schema(_) | Item::Enum(_))
                | (Kind::Connector, Item::Connector(_))
                | (Kind::Connection, Item::Connection(_) | Item::Ledger(_))
                | (Kind::Table, Item::Table(_))
                | (Kind::Policy, Item::Policy(_))
        )
    }

    fn noun(self) -> &'static str {
        match self {
            Kind::Type => "type",
            Kind::Connector => "connector",
            Kind::Connection => "connection",
            Kind::Table => "table",
            Kind::Policy => "policy",
        }
    }
}

impl Program {
    /// An empty program whose files are read from `fs`.
    pub fn new(fs: Arc<dyn FileSystem>) -> Program {
        Program {
            modules: Vec::new(),
            fs,
            type_name_counts: std::sync::OnceLock::new(),
            facts: RefCell::new(None),
        }
    }

    /// From now on, records [`Facts`] for editors.
    pub fn collect_facts(&self) {
        *self.facts.borrow_mut() = Some(Facts::default());
    }

    /// The facts recorded since [`Program::collect_facts`].
    pub fn take_facts(&self) -> Option<Facts> {
        self.facts.borrow_mut().take()
    }

    /// Records that the name at `at` denotes what is declared at `to`.
    pub fn note_ref(&self, at: Span, to: Span) {
        if let Some(facts) = self.facts.borrow_mut().as_mut() {
            facts.refs.push((at, to));
        }
    }

    /// Records the type of what is written at `span` (shown only when facts are collected).
    pub fn note_type(&self, span: Span, ty: impl FnOnce() -> String) {
        if let Some(facts) = self.facts.borrow_mut().as_mut() {
            facts.types.push((span, ty()));
        }
    }

    /// Records what a record body may use.
    pub fn note_scope(&self, scope: impl FnOnce() -> Scope) {
        if self.facts.borrow().is_none() {
            return;
        }
        let scope = scope();
        if let Some(facts) = self.facts.borrow_mut().as_mut() {
            facts.scopes.push(scope);
        }
    }

    /// Records a name declared in a user file (renamable).
    pub fn note_declaration(&self, name: Span) {
        if let Some(facts) = self.facts.borrow_mut().as_mut() {
            facts.declarations.push(name);
        }
    }

    /// Records a name a module sees.
    pub fn note_name(&self, named: Named) {
        if let Some(facts) = self.facts.borrow_mut().as_mut() {
            facts.names.push(named);
        }
    }

    /// True while facts are collected.
    pub fn collecting_facts(&self) -> bool {
        self.facts.borrow().is_some()
    }

    /// The span of the name an item declares.
    pub fn name_span(&self, item: ItemRef) -> Option<Span> {
        self.item(item).name().map(|n| n.span)
    }

    /// The file system the program's files come from (tables and fixtures are read
    /// from it too).
    pub fn fs(&self) -> &dyn FileSystem {
        &*self.fs
    }

    /// The item an [`ItemRef`] points at.
    pub fn item(&self, item: ItemRef) -> &Item {
        &self.modules[item.module.0 as usize].ast.items[item.item as usize]
    }

    /// The name a type carries in the graph IR: its own name when no other module declares
    /// a type of that name, else qualified by its module (`std.retail.Order`).
    pub fn ir_name(&self, item: ItemRef) -> String {
        let Some(name) = self.item(item).name().map(|n| n.name.clone()) else {
            return String::new();
        };
        let counts = self.type_name_counts.get_or_init(|| {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for module in &self.modules {
                for declared in &module.ast.items {
                    if let (Item::Schema(_) | Item::Enum(_), Some(n)) = (declared, declared.name())
                    {
                        *counts.entry(n.name.clone()).or_default() += 1;
                    }
                }
            }
            counts
        });
        if counts.get(&name).copied().unwrap_or(0) > 1 {
            format!("{}.{name}", self.module(item.module).name)
        } else {
            name
        }
    }

    /// The module with this id.
    pub fn module(&self, id: ModuleId) -> &ModuleInfo {
        &self.modules[id.0 as usize]
    }

    /// Finds a name of the wanted kind in a module's scope and marks it used.
    pub fn lookup(&self, module: ModuleId, name: &str, kind: Kind) -> Option<ItemRef> {
        let binding = self.module(module).scope.get(name)?;
        if !kind.matches(self.item(binding.target)) {
            return None;
        }
        binding.used.set(true);
        Some(binding.target)
    }

    /// [`Program::lookup`] of a name written in a file: the use is recorded.
    pub fn lookup_at(&self, module: ModuleId, name: &Ident, kind: Kind) -> Option<ItemRef> {
        let found = self.lookup(module, &name.name, kind)?;
        if let Some(to) = self.name_span(found) {
            self.note_ref(name.span, to);
        }
        Some(found)
    }

    /// Like [`Program::lookup`], reporting an unknown name with a suggestion.
    pub fn resolve(
        &self,
        module: ModuleId,
        name: &str,
        span: Span,
        kind: Kind,
        diags: &mut Diagnostics,
    ) -> Option<ItemRef> {
        if name.is_empty() {
            return None;
        }
        if let Some(found) = self.lookup(module, name, kind) {
            if let Some(to) = self.name_span(found) {
                self.note_ref(span, to);
            }
            return Some(found);
        }
        let code = match kind {
            Kind::Type => codes::UNKNOWN_TYPE,
            Kind::Connector => codes::UNKNOWN_CONNECTOR,
            Kind::Connection => codes::UNKNOWN_CONNECTION,
            Kind::Table => codes::UNKNOWN_TABLE,
            Kind::Policy => codes::UNKNOWN_POLICY,
        };
        let candidates = self.names_of_kind(module, kind);
        let fallback = match kind {
            Kind::Connector => match crate::stdlib::connector_module(name) {
                Some(module) => format!("add `use {module}` to import the built-in connector"),
                None => format!(
                    "the built-in connectors are {}",
                    builtin_connectors().join(", ")
                ),
            },
            Kind::Type if is_std_retail_type(name) => {
                format!("add `use std.retail.{{{name}}}` to import the canonical type")
            }
            Kind::Policy if name_in_std_policies(name) => {
                format!("add `use std.policies.{{{name}}}` to import the standard policy")
            }
            _ => format!(
                "declare the {} `{name}` or import it with `use`",
                kind.noun()
            ),
        };
        let builtin: &[&str] = match kind {
            Kind::Type => crate::builtin_types::BUILTIN_TYPES,
            _ => &[],
        };
        let help =
            suggest::did_you_mean(name, candidates.chain(builtin.iter().copied()), &fallback);
        diags.push(
            Diagnostic::error(code, span, format!("unknown {} `{name}`", kind.noun()))
                .label(format!("no {} named `{name}` is in scope", kind.noun()))
                .help(help),
        );
        None
    }

    /// Names of the given kind visible in a module, for suggestions.
    /// Lazy, so a suggestion past its budget (`suggest::nearest`) reads none of them.
    pub fn names_of_kind(&self, module: ModuleId, kind: Kind) -> impl Iterator<Item = &str> {
        self.module(module)
            .scope
            .iter()
            .filter(move |(_, b)| kind.matches(self.item(b.target)))
            .map(|(n, _)| n.as_str())
    }
}

fn builtin_connectors() -> Vec<&'static str> {
    crate::stdlib::FILES
        .iter()
        .filter_map(|f| f.module.strip_prefix("std.connectors."))
        .collect()
}

fn is_std_retail_type(name: &str) -> bool {
    crate::stdlib::module_files("std.retail")
        .iter()
        .any(|file| {
            file.text.lines().any(|line| {
                let line = line.trim_start();
                (line.starts_with("schema ") || line.starts_with("enum "))
                    && line.split_whitespace().nth(1) == Some(name)
            })
        })
}

fn name_in_std_policies(name: &str) -> bool {
    crate::stdlib::module_files("std.policies")
        .iter()
        .any(|file| {
            file.text.lines().any(|line| {
                line.trim_start().starts_with("policy ")
                    && line.split_whitespace().nth(2) == Some(name)
            })
        })
}
