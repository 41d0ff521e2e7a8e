//! `omniflow map`: one flow's mapping and routing over a JSONL file, in process, with no
//! state: the integrator's playground for a mapping, and the way to time it.

use omniflow_mapping::pipeline::{FlowRt, Outcome};
use omniflow_mapping::{json_in, json_out};
use omniflow_runtime::load::load_pipeline;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// A .flow file or directory, or a graph.json.
    path: PathBuf,
    /// The flow to run.
    #[arg(long)]
    flow: String,
    /// Input: one JSON document per line.
    #[arg(long)]
    input: PathBuf,
    /// Output file (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Wrap each output as {"route": [sinks reached], "document": ...}.
    #[arg(long)]
    with_route: bool,
}

pub fn run(args: Args) -> u8 {
    match map(&args) {
        Ok(()) => 0,
        Err(err) => {
            eprintln!("error: {err}");
            2
        }
    }
}

/// Maps every line of the input; `Err` is why the command stops (exit 2). A rejected line
/// is reported and counted, and the rest go on.
fn map(args: &Args) -> Result<(), String> {
    let pipeline = load_pipeline(std::slice::from_ref(&args.path)).map_err(|e| e.to_string())?;
    let Some(flow_idx) = pipeline.flow(&args.flow) else {
        let names: Vec<&str> = pipeline.flows.iter().map(|f| f.name.as_str()).collect();
        return Err(format!(
            "no flow `{}`; flows: {}",
            args.flow,
            names.join(", ")
        ));
    };
    let flow = &pipeline.flows[flow_idx];
    let Some((source, projection)) = pipeline.first_source(flow_idx) else {
        return Err(format!("flow `{}` has no source", args.flow));
    };
    // The document shown is the first map's output, or the message as routed.
    let shown = pipeline.first_map(flow_idx).unwrap_or(source);
    let file = std::fs::File::open(&args.input)
        .map_err(|err| format!("cannot read `{}`: {err}", args.input.display()))?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|err| format!("cannot write `{}`: {err}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 20, sink);
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::with_capacity(1 << 16);
    let mut buffer = Vec::with_capacity(1 << 16);
    let (mut n_docs, mut n_rejected, mut line_no) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => return Err(format!("reading `{}`: {err}", args.input.display())),
        }
        line_no += 1;
        let text = trim_line(&line);
        if text.is_empty() {
            continue;
        }
        n_docs += 1;
        let result = json_in::parse(text, projection)
            .map_err(|reason| ("input".to_string(), reason))
            .and_then(|input| {
                pipeline
                    .process(flow_idx, source, input, true, true)
                    .map_err(|r| (r.node, r.reason))
            });
        match result {
            Err((node, reason)) => {
                n_rejected += 1;
                eprintln!("line {line_no}: rejected by `{node}`: {reason}");
            }
            Ok(outcome) => {
                buffer.clear();
                write_output(&mut buffer, flow, &outcome, shown, args.with_route);
                out.write_all(&buffer)
                    .map_err(|err| format!("writing output: {err}"))?;
            }
        }
    }
    out.flush()
        .map_err(|err| format!("writing output: {err}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{n_docs} documents, {} mapped, {n_rejected} rejected in {elapsed:.3} s ({:.0} docs/s)",
        n_docs - n_rejected,
        n_docs as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

/// One output line: the document node `shown` emitted (null when it emitted nothing),
/// wrapped with the sinks reached when `with_route`.
fn write_output(
    buffer: &mut Vec<u8>,
    flow: &FlowRt,
    outcome: &Outcome,
    shown: usize,
    with_route: bool,
) {
    let document = outcome
        .trace
        .iter()
        .find(|(n, _)| *n == shown)
        .map(|(_, v)| v);
    if with_route {
        let mut sinks: Vec<&str> = outcome
            .deliveries
            .iter()
            .map(|d| flow.nodes[d.sink].name.as_str())
            .collect();
        sinks.dedup();
        buffer.extend_from_slice(b"{\"route\":[");
        for (idx, sink) in sinks.iter().enumerate() {
            if idx > 0 {
                buffer.push(b',');
            }
            json_out::write_str(buffer, sink);
        }
        buffer.extend_from_slice(b"],\"document\":");
    }
    match document {
        Some(doc) => json_out::write(buffer, doc),
        None => buffer.extend_from_slice(b"null"),
    }
    if with_route {
        buffer.push(b'}');
    }
    buffer.push(b'\n');
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}
