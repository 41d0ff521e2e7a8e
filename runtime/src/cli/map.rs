//! `omniflow map`: one flow's mapping and routing over a JSONL file, in process, with no
//! state: the integrator's playground for a mapping, and the way to time it.

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
    let pipeline = match load_pipeline(std::slice::from_ref(&args.path)) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    let Some(flow_idx) = pipeline.flow(&args.flow) else {
        let names: Vec<&str> = pipeline.flows.iter().map(|f| f.name.as_str()).collect();
        eprintln!(
            "error: no flow `{}`; flows: {}",
            args.flow,
            names.join(", ")
        );
        return 2;
    };
    let flow = &pipeline.flows[flow_idx];
    let Some((source, projection)) = pipeline.first_source(flow_idx) else {
        eprintln!("error: flow `{}` has no source", args.flow);
        return 2;
    };
    // The document shown is the first map's output, or the message as routed.
    let shown = pipeline.first_map(flow_idx).unwrap_or(source);
    let file = match std::fs::File::open(&args.input) {
        Ok(f) => f,
        Err(err) => {
            eprintln!("error: cannot read `{}`: {err}", args.input.display());
            return 2;
        }
    };
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Box::new(f),
            Err(err) => {
                eprintln!("error: cannot write `{}`: {err}", path.display());
                return 2;
            }
        },
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
            Err(err) => {
                eprintln!("error: reading `{}`: {err}", args.input.display());
                return 2;
            }
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
                let document = outcome
                    .trace
                    .iter()
                    .find(|(n, _)| *n == shown)
                    .map(|(_, v)| v);
                if args.with_route {
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
                        json_out::write_str(&mut buffer, sink);
                    }
                    buffer.extend_from_slice(b"],\"document\":");
                }
                match document {
                    Some(doc) => json_out::write(&mut buffer, doc),
                    None => buffer.extend_from_slice(b"null"),
                }
                if args.with_route {
                    buffer.push(b'}');
                }
                buffer.push(b'\n');
                if let Err(err) = out.write_all(&buffer) {
                    eprintln!("error: writing output: {err}");
                    return 2;
                }
            }
        }
    }
    if let Err(err) = out.flush() {
        eprintln!("error: writing output: {err}");
        return 2;
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{n_docs} documents, {} mapped, {n_rejected} rejected in {elapsed:.3} s ({:.0} docs/s)",
        n_docs - n_rejected,
        n_docs as f64 / elapsed.max(1e-9)
    );
    0
}

fn trim_line(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r' | b' ' | b'\t') {
        end -= 1;
    }
    &line[..end]
}
