//! The omniflow compiler: `.flow` text in, graph IR plus diagnostics out.
//! Stages, in order: syntax → resolve → typeck → checks → lower. Each stage reports into
//! one [`Diagnostics`] sink and returns its product even when it found errors.
#![deny(clippy::unwrap_used)]

pub use omniflow_ir as ir;
pub use omniflow_ir::{currency, schedule};

pub mod builtin_types;
pub mod checks;
pub mod diagnostics;
pub mod facts;
pub mod fmt;
pub mod fs;
pub mod graph;
pub mod lower;
pub mod lsp;
pub mod pipe;
pub mod resolve;
pub mod source;
pub mod stdlib;
pub mod syntax;
pub mod typeck;

use diagnostics::{Diagnostic, Diagnostics};
use fs::FileSystem;
use source::Sources;
use std::path::PathBuf;
use std::sync::Arc;
use syntax::ast::Item;

/// What one compilation produced.
#[derive(Debug)]
pub struct Compilation {
    pub sources: Sources,
    /// Sorted by file and offset.
    pub diagnostics: Vec<Diagnostic>,
    pub graph: ir::Graph,
    /// The `.flow` files that were given (after expanding directories).
    pub files: Vec<PathBuf>,
    /// What an editor shows: only from [`compile_for_editor`].
    pub facts: Option<facts::Facts>,
}

impl Compilation {
    /// True when any error was reported.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == diagnostics::Severity::Error)
    }
}

/// Why a compilation did not start or did not finish: an I/O or usage problem (exit
/// code 2). Displayed as the message users see.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error("no .flow files found in the given paths")]
    NoFlowFiles,
    #[error("cannot start the compiler thread: {0}")]
    Thread(std::io::Error),
    #[error("the compiler crashed; please report this input")]
    Crashed,
}

impl From<source::FileError> for CompileError {
    fn from(err: source::FileError) -> CompileError {
        CompileError::Source(err.into())
    }
}

/// Compiles the `.flow` files under the given paths on disk. `Err` is an I/O or usage
/// problem (exit code 2); everything else is a diagnostic.
pub fn compile_paths(paths: &[PathBuf]) -> Result<Compilation, CompileError> {
    compile_with(Arc::new(fs::RealFs), paths)
}

/// [`compile_paths`], reading every file (sources, imports, tables, fixtures) from `fs`.
pub fn compile_with(
    fs: Arc<dyn FileSystem>,
    paths: &[PathBuf],
) -> Result<Compilation, CompileError> {
    compile_on_big_stack(fs, paths, false)
}

/// [`compile_with`], also recording the [`facts::Facts`] an editor shows (types, names,
/// scopes).
pub fn compile_for_editor(
    fs: Arc<dyn FileSystem>,
    paths: &[PathBuf],
) -> Result<Compilation, CompileError> {
    compile_on_big_stack(fs, paths, true)
}

fn compile_on_big_stack(
    fs: Arc<dyn FileSystem>,
    paths: &[PathBuf],
    facts: bool,
) -> Result<Compilation, CompileError> {
    // Deeply nested (but accepted) input recurses deeply: give the stages a large stack.
    let paths = paths.to_vec();
    std::thread::Builder::new()
        .name("omniflowc".into())
        .stack_size(256 << 20)
        .spawn(move || compile_on_this_thread(fs, &paths, facts))
        .map_err(CompileError::Thread)?
        .join()
        .map_err(|_| CompileError::Crashed)?
}

fn compile_on_this_thread(
    fs: Arc<dyn FileSystem>,
    paths: &[PathBuf],
    facts: bool,
) -> Result<Compilation, CompileError> {
    let files = source::collect_flow_files(&*fs, paths)?;
    if files.is_empty() {
        return Err(CompileError::NoFlowFiles);
    }
    let mut sources = Sources::default();
    let mut diags = Diagnostics::default();
    let program = resolve::load(fs, &files, &mut sources, &mut diags)?;
    if facts {
        program.collect_facts();
        note_imports(&program);
    }
    let graph = analyse(&program, &mut diags);
    Ok(Compilation {
        sources,
        diagnostics: diags.into_sorted(),
        graph,
        files,
        facts: program.take_facts(),
    })
}

/// Records the names a `use` imports as uses of what they name.
fn note_imports(program: &resolve::Program) {
    for module in &program.modules {
        for item in &module.ast.items {
            let Item::Use(decl) = item else { continue };
            for name in decl.names.iter().flatten() {
                let declared = module
                    .scope
                    .get(&name.name)
                    .and_then(|binding| program.name_span(binding.target));
                if let Some(to) = declared {
                    program.note_ref(name.span, to);
                }
            }
        }
    }
}

/// Runs typeck, checks and lowering over a loaded program.
pub fn analyse(program: &resolve::Program, diags: &mut Diagnostics) -> ir::Graph {
    let env = typeck::build_env(program, diags);
    typeck::note_names(program, &env);
    let mut flows = Vec::new();
    for (idx, module) in program.modules.iter().enumerate() {
        for item in &module.ast.items {
            if let Item::Flow(decl) = item {
                let flow =
                    typeck::check_flow(program, &env, resolve::ModuleId(idx as u32), decl, diags);
                checks::check_flow(decl, diags);
                if module.is_root {
                    flows.push(flow);
                }
            }
        }
    }
    typeck::check_webhook_paths(program, &env, diags);
    checks::check_unused(program, diags);
    lower::lower(program, &env, flows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fs::MemoryFs;
    use std::path::Path;

    const COMMON: &str = "table stores: string -> string = file(\"data/stores.csv\", key = \"id\", value = \"name\")\n";

    const MAIN: &str = r#"use std.connectors.{file}
use "./lib/common.flow".{stores}

connection inbox = file { dir = env("INBOX") }

flow copy_orders {
  source orders = inbox.read { path = "orders/*.jsonl", format = jsonl }
  sink out = inbox.write(orders) {
    path = "out.jsonl"
    idempotency_key = stores[$.store] ?? $.id
    dead_letter = "copy_orders_errors"
  }
  test "an order is copied" {
    input = file("fixtures/order.json")
    sinks = [out]
  }
}
"#;

    fn project() -> MemoryFs {
        MemoryFs::new()
            .with_file("app/main.flow", MAIN)
            .with_file("app/lib/common.flow", COMMON)
            .with_file("app/lib/data/stores.csv", "id,name\nS1,Soho\nS2,Brooklyn\n")
            .with_file("app/fixtures/order.json", r#"{"id": "o1", "store": "S1"}"#)
    }

    fn codes(compilation: &Compilation) -> Vec<&str> {
        compilation.diagnostics.iter().map(|d| d.code.id).collect()
    }

    #[test]
    fn a_program_with_an_import_a_table_and_a_fixture_compiles_in_memory() {
        let compilation = compile_with(Arc::new(project()), &[PathBuf::from("app")]).unwrap();
        assert_eq!(codes(&compilation), Vec::<&str>::new());
        assert_eq!(
            compilation.files,
            [PathBuf::from("app/lib/common.flow"), "app/main.flow".into()]
        );
        let table = &compilation.graph.tables[0];
        assert_eq!(table.entries["S2"], "Brooklyn");
        assert_eq!(compilation.graph.flows[0].tests.len(), 1);
    }

    #[test]
    fn files_a_flow_names_are_checked_in_memory_too() {
        let fs = project();
        fs.insert(
            "app/lib/common.flow",
            COMMON.replace("data/stores.csv", "data/missing.csv"),
        );
        let compilation = compile_with(Arc::new(fs), &[PathBuf::from("app/main.flow")]).unwrap();
        assert_eq!(codes(&compilation), vec!["E0116"]);

        let fs = project();
        fs.insert(
            "app/lib/common.flow",
            COMMON.replace("data/stores.csv", "../fixtures/order.json"),
        );
        let compilation = compile_with(Arc::new(fs), &[PathBuf::from("app/main.flow")]).unwrap();
        assert_eq!(codes(&compilation), vec!["E0117"]);

        let fs = project();
        fs.insert(
            "app/lib/data/stores.csv",
            vec![b'x'; source::MAX_DATA_FILE_BYTES as usize + 1],
        );
        let compilation = compile_with(Arc::new(fs), &[PathBuf::from("app/main.flow")]).unwrap();
        assert_eq!(codes(&compilation), vec!["E0118"]);
    }

    #[test]
    fn usage_problems_keep_their_messages() {
        let fs = Arc::new(project());
        let err = compile_with(fs.clone(), &[PathBuf::from("app/lib/data")]).unwrap_err();
        assert_eq!(err.to_string(), "no .flow files found in the given paths");
        let err = compile_with(fs, &[PathBuf::from("gone.flow")]).unwrap_err();
        assert_eq!(err.to_string(), "cannot read `gone.flow`: entity not found");
    }

    #[test]
    fn the_formatter_rewrites_files_in_memory() {
        let fs = project();
        let files = source::collect_flow_files(&fs, &[PathBuf::from("app")]).unwrap();
        assert_eq!(
            files,
            vec![
                PathBuf::from("app/lib/common.flow"),
                PathBuf::from("app/main.flow")
            ]
        );
        source::write_in_place(&fs, &files[0], "// empty\n").unwrap();
        assert_eq!(fs.get("app/lib/common.flow").unwrap(), b"// empty\n");
        let err = source::write_in_place(&fs, Path::new("app/lib"), "x").unwrap_err();
        assert_eq!(err.to_string(), "`app/lib` is a directory; not rewritten");
        let fs = fs.with_symlink("app/link.flow", "main.flow");
        let err = source::write_in_place(&fs, Path::new("app/link.flow"), "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`app/link.flow` is a symlink; not rewritten (format the file it points to)"
        );
        assert_eq!(fs.get("app/main.flow").unwrap(), MAIN.as_bytes());
    }
}
