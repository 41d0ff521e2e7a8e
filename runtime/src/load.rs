//! Loading what to run: `.flow` sources through the compiler's front end (the runtime
//! never runs what `omniflowc check` rejects), or a graph IR file from `omniflowc build`.

use omniflow_compiler::diagnostics::render::{render, Format};
use omniflow_compiler::ir::Graph;
use std::path::PathBuf;

/// Compiles `.flow` paths, or reads one `graph.json`. `Err` carries the rendered reason.
pub fn load_graph(paths: &[PathBuf]) -> Result<Graph, String> {
    if let [single] = paths {
        if single.extension().is_some_and(|ext| ext == "json") {
            let text = std::fs::read_to_string(single)
                .map_err(|e| format!("cannot read `{}`: {e}", single.display()))?;
            return Graph::from_json(&text);
        }
    }
    let compilation = omniflow_compiler::compile_paths(paths)?;
    if compilation.has_errors() {
        let report = render(
            &compilation.diagnostics,
            &compilation.sources,
            Format::Human,
            false,
        );
        return Err(format!(
            "{report}the flows have errors; fix them first (omniflowc check)"
        ));
    }
    Ok(compilation.graph)
}
