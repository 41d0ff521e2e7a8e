//! The omniflow compiler: `.flow` text in, graph IR plus diagnostics out.
//! Stages, in order: syntax → resolve → typeck → checks → lower. Each stage reports into
//! one [`Diagnostics`] sink and returns its product even when it found errors.
#![deny(clippy::unwrap_used)]

pub use omniflow_ir as ir;
pub use omniflow_ir::{currency, schedule};

pub mod checks;
pub mod diagnostics;
pub mod fmt;
pub mod graph;
pub mod lower;
pub mod pipe;
pub mod resolve;
pub mod source;
pub mod stdlib;
pub mod syntax;
pub mod typeck;

use diagnostics::{Diagnostic, Diagnostics};
use source::Sources;
use std::path::PathBuf;
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
}

impl Compilation {
    /// True when any error was reported.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == diagnostics::Severity::Error)
    }
}

/// Compiles the `.flow` files under the given paths. `Err` is an I/O or usage problem
/// (exit code 2); everything else is a diagnostic.
pub fn compile_paths(paths: &[PathBuf]) -> Result<Compilation, String> {
    // Deeply nested (but accepted) input recurses deeply: give the stages a large stack.
    let paths = paths.to_vec();
    std::thread::Builder::new()
        .name("omniflowc".into())
        .stack_size(256 << 20)
        .spawn(move || compile_on_this_thread(&paths))
        .map_err(|err| format!("cannot start the compiler thread: {err}"))?
        .join()
        .map_err(|_| "the compiler crashed; please report this input".to_string())?
}

fn compile_on_this_thread(paths: &[PathBuf]) -> Result<Compilation, String> {
    let files = source::collect_flow_files(paths)?;
    if files.is_empty() {
        return Err("no .flow files found in the given paths".to_string());
    }
    let mut sources = Sources::default();
    let mut diags = Diagnostics::default();
    let program = resolve::load(&files, &mut sources, &mut diags)?;
    let graph = analyse(&program, &mut diags);
    Ok(Compilation {
        sources,
        diagnostics: diags.into_sorted(),
        graph,
        files,
    })
}

/// Runs typeck, checks and lowering over a loaded program.
pub fn analyse(program: &resolve::Program, diags: &mut Diagnostics) -> ir::Graph {
    let env = typeck::build_env(program, diags);
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
