//! Loading what to run: `.flow` sources through the compiler's front end (the runtime
//! never runs what `omniflowc check` rejects), or a graph IR file from `omniflowc build`.

use omniflow_compiler::diagnostics::render::{render, Format};
use omniflow_compiler::fs::RealFs;
use omniflow_ir::Graph;
use omniflow_mapping::pipeline::Pipeline;
use std::path::PathBuf;

/// Largest `graph.json` read (tables travel inside it).
pub const MAX_GRAPH_FILE_BYTES: u64 = 1 << 30;

/// Why there is nothing to run. The message of each is the reason shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The graph file cannot be read.
    #[error("{0}")]
    Read(String),
    /// The graph file is not a graph this runtime runs.
    #[error(transparent)]
    Graph(#[from] omniflow_ir::json::GraphError),
    /// The paths hold no flows, or the compiler could not run.
    #[error(transparent)]
    Usage(#[from] omniflow_compiler::CompileError),
    /// The flows have errors: the compiler's rendered report.
    #[error("{report}the flows have errors; fix them first (omniflowc check)")]
    Diagnostics { report: String },
    /// The graph does not compile for the evaluator.
    #[error(transparent)]
    Compile(#[from] omniflow_mapping::error::CompileError),
}

/// Compiles `.flow` paths, or reads one `graph.json`.
pub fn load_graph(paths: &[PathBuf]) -> Result<Graph, LoadError> {
    if let [single] = paths {
        if single.extension().is_some_and(|ext| ext == "json") {
            // A regular file only: a FIFO or device named here is refused, not waited on.
            let text =
                omniflow_compiler::source::read_regular(&RealFs, single, MAX_GRAPH_FILE_BYTES)
                    .map_err(|err| LoadError::Read(err.to_string()))?;
            return Graph::from_json(&text).map_err(LoadError::Graph);
        }
    }
    let compilation = omniflow_compiler::compile_paths(paths).map_err(LoadError::Usage)?;
    if compilation.has_errors() {
        let report = render(
            &compilation.diagnostics,
            &compilation.sources,
            Format::Human,
            false,
        );
        return Err(LoadError::Diagnostics { report });
    }
    Ok(compilation.graph)
}

/// Loads the graph and prepares its flows to run.
pub fn load_pipeline(paths: &[PathBuf]) -> Result<Pipeline, LoadError> {
    Ok(Pipeline::new(load_graph(paths)?)?)
}
