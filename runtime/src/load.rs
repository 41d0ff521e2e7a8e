//! Loading what to run: `.flow` sources through the compiler's front end (the runtime
//! never runs what `omniflowc check` rejects), or a graph IR file from `omniflowc build`.

use omniflow_compiler::diagnostics::render::{render, Format};
use omniflow_compiler::fs::RealFs;
use omniflow_ir::Graph;
use std::path::PathBuf;

/// Largest `graph.json` read (tables travel inside it).
pub const MAX_GRAPH_FILE_BYTES: u64 = 1 << 30;

/// Compiles `.flow` paths, or reads one `graph.json`. `Err` carries the rendered reason.
pub fn load_graph(paths: &[PathBuf]) -> Result<Graph, String> {
    if let [single] = paths {
        if single.extension().is_some_and(|ext| ext == "json") {
            // A regular file only: a FIFO or device named here is refused, not waited on.
            let text =
                omniflow_compiler::source::read_regular(&RealFs, single, MAX_GRAPH_FILE_BYTES)
                    .map_err(|err| err.to_string())?;
            return Graph::from_json(&text).map_err(|err| err.to_string());
        }
    }
    let compilation = omniflow_compiler::compile_paths(paths).map_err(|err| err.to_string())?;
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
