//! `omniflow map`: one flow's mapping and routing over a JSONL file, in process, with no
//! state: the integrator's playground for a mapping, and the way to time it. Lines are read
//! in chunks; with more than one CPU, worker threads map the chunks (each with its own
//! compiled pipeline) and the output keeps the input's order.

use omniflow_engine::sources::file as file_source;
use omniflow_ir::Graph;
use omniflow_mapping::json_in::Projection;
use omniflow_mapping::pipeline::{FlowRt, Outcome, Pipeline};
use omniflow_mapping::{json_in, json_out};
use omniflow_runtime::load::load_graph;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// A .flow file or directory, or a graph.json.
    path: PathBuf,
    /// The flow to run.
    #[arg(long)]
    flow: String,
    /// Input: one JSON document per line. A line longer than a file source's
    /// `max_line_bytes` (4 MiB unless it says; 256 MiB for other sources) is refused, as
    /// `run` refuses it.
    #[arg(long)]
    input: PathBuf,
    /// Output file (default: stdout).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Wrap each output as {"route": [sinks reached], "document": ...}.
    #[arg(long)]
    with_route: bool,
    /// Mapping threads, 1 to 256 (default: one per CPU the process may use; 1 maps in
    /// line).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
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

/// Lines read together: whole lines, where each ends, and the number of the first.
struct Chunk {
    first_line: u64,
    data: Vec<u8>,
    /// The end of each line in `data` (after its newline, if it has one).
    ends: Vec<usize>,
    /// Lines longer than the source's `max_line_bytes`, by index in `ends`, with their
    /// length: refused, as `run` refuses them. One still being read when it passed the
    /// limit was not kept (its slot in `data` is empty).
    too_long: Vec<(usize, u64)>,
}

/// A chunk mapped: its output, its rejections as printed, and its counts.
#[derive(Default)]
struct Mapped {
    output: Vec<u8>,
    rejections: String,
    documents: u64,
    rejected: u64,
}

/// Where a flow's messages enter and which node's document is shown.
#[derive(Clone)]
struct Plan {
    flow_idx: usize,
    source: usize,
    projection: Projection,
    shown: usize,
    with_route: bool,
    /// A file source's `max_line_bytes` (the largest for other sources): a longer line is
    /// refused.
    max_line: u64,
}

/// The bytes a chunk aims at: large enough that a handoff costs little per line.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks waiting or being mapped per worker.
const QUEUED: usize = 2;

/// Maps every line of the input; `Err` is why the command stops (exit 2). A rejected line
/// is reported and counted, and the rest go on.
fn map(args: &Args) -> Result<(), String> {
    let graph = load_graph(std::slice::from_ref(&args.path)).map_err(|e| e.to_string())?;
    let pipeline = Pipeline::new(graph.clone()).map_err(|e| e.to_string())?;
    let plan = plan(&pipeline, args)?;
    let file = std::fs::File::open(&args.input)
        .map_err(|err| format!("cannot read `{}`: {err}", args.input.display()))?;
    // Each chunk's output is written in one call: no buffer in between.
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .map_err(|err| format!("cannot write `{}`: {err}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut reader = Lines {
        file,
        carry: Vec::new(),
        at_end: false,
        line_no: 0,
        max_line: plan.max_line,
        path: &args.input,
    };
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        usize::from,
    );
    let started = Instant::now();
    let (documents, rejected) = if threads <= 1 {
        let mut totals = (0, 0);
        while let Some(chunk) = reader.chunk()? {
            let mapped = map_chunk(&pipeline, &plan, &chunk);
            totals = emit(&mut out, mapped, totals)?;
        }
        totals
    } else {
        drop(pipeline);
        in_parallel(&graph, &plan, threads, &mut reader, &mut out)?
    };
    out.flush()
        .map_err(|err| format!("writing output: {err}"))?;
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "{documents} documents, {} mapped, {rejected} rejected in {elapsed:.3} s ({:.0} docs/s)",
        documents - rejected,
        documents as f64 / elapsed.max(1e-9)
    );
    Ok(())
}

/// The flow, its first source and the node shown: the first map's output, or the message
/// as routed.
fn plan(pipeline: &Pipeline, args: &Args) -> Result<Plan, String> {
    let Some(flow_idx) = pipeline.flow(&args.flow) else {
        let names: Vec<&str> = pipeline.flows.iter().map(|f| f.name.as_str()).collect();
        return Err(format!(
            "no flow `{}`; flows: {}",
            args.flow,
            names.join(", ")
        ));
    };
    let Some((source, projection)) = pipeline.first_source(flow_idx) else {
        return Err(format!("flow `{}` has no source", args.flow));
    };
    // A file source's own bound; other sources' documents are held to the largest one.
    let max_line = match &pipeline.flows[flow_idx].ir.nodes[source].kind {
        omniflow_ir::NodeKind::Source { kind, options, .. } if kind == "file" => {
            file_source::max_line_bytes(options)?
        }
        _ => file_source::LONGEST_LIMIT,
    };
    Ok(Plan {
        flow_idx,
        source,
        projection: projection.clone(),
        shown: pipeline.first_map(flow_idx).unwrap_or(source),
        with_route: args.with_route,
        max_line,
    })
}

/// Writes a mapped chunk in order; the running (documents, rejected).
fn emit(
    out: &mut impl Write,
    mapped: Mapped,
    (documents, rejected): (u64, u64),
) -> Result<(u64, u64), String> {
    eprint!("{}", mapped.rejections);
    out.write_all(&mapped.output)
        .map_err(|err| format!("writing output: {err}"))?;
    Ok((documents + mapped.documents, rejected + mapped.rejected))
}

/// Maps chunks on `threads` workers, each with its own pipeline compiled from `graph`, and
/// writes their output in the input's order.
fn in_parallel(
    graph: &Graph,
    plan: &Plan,
    threads: usize,
    reader: &mut Lines<'_>,
    out: &mut impl Write,
) -> Result<(u64, u64), String> {
    std::thread::scope(|scope| {
        let mut workers = Vec::with_capacity(threads);
        for idx in 0..threads {
            let (jobs, inbox) = mpsc::sync_channel::<Chunk>(QUEUED);
            let (answer, answers) = mpsc::channel::<Result<Mapped, String>>();
            let plan = plan.clone();
            std::thread::Builder::new()
                .name(format!("omniflow-map-{idx}"))
                .spawn_scoped(scope, move || {
                    let pipeline = match Pipeline::new(graph.clone()) {
                        Ok(p) => p,
                        Err(err) => {
                            let _ = answer.send(Err(err.to_string()));
                            return;
                        }
                    };
                    for chunk in inbox {
                        if answer
                            .send(Ok(map_chunk(&pipeline, &plan, &chunk)))
                            .is_err()
                        {
                            return;
                        }
                    }
                })
                .map_err(|err| format!("cannot start a mapping thread: {err}"))?;
            workers.push((jobs, answers));
        }
        let (mut sent, mut written, mut more) = (0usize, 0usize, true);
        let mut totals = (0, 0);
        loop {
            while more && sent - written < threads * QUEUED {
                match reader.chunk()? {
                    Some(chunk) => {
                        workers[sent % threads]
                            .0
                            .send(chunk)
                            .map_err(|_| "a mapping thread stopped".to_string())?;
                        sent += 1;
                    }
                    None => more = false,
                }
            }
            if written == sent {
                break;
            }
            let mapped = workers[written % threads]
                .1
                .recv()
                .map_err(|_| "a mapping thread stopped".to_string())??;
            totals = emit(out, mapped, totals)?;
            written += 1;
        }
        Ok(totals)
    })
}

/// The input read as chunks of whole lines.
struct Lines<'a> {
    file: std::fs::File,
    /// What was read past the last whole line of the chunk before.
    carry: Vec<u8>,
    at_end: bool,
    line_no: u64,
    /// The longest line held: a longer one is refused and read past, never held whole.
    max_line: u64,
    path: &'a PathBuf,
}

impl Lines<'_> {
    /// The next chunk: whole lines up to about [`CHUNK_BYTES`] (a longer line whole);
    /// `None` at the end. The file is read straight into the chunk and its newlines found
    /// by a vectorised search; only the part of a line cut by a read is copied, once.
    fn chunk(&mut self) -> Result<Option<Chunk>, String> {
        let mut data = std::mem::take(&mut self.carry);
        data.reserve(CHUNK_BYTES + (1 << 16));
        let (mut ends, mut too_long) = (Vec::new(), Vec::new());
        let mut scanned = 0;
        loop {
            let mut start = ends.last().copied().unwrap_or(0);
            for end in memchr::memchr_iter(b'\n', &data[scanned..]).map(|at| scanned + at + 1) {
                // A line's length is counted without its newline, as `run` counts it.
                if (end - start - 1) as u64 > self.max_line {
                    too_long.push((ends.len(), (end - start - 1) as u64));
                }
                ends.push(end);
                start = end;
            }
            scanned = data.len();
            if (data.len() - start) as u64 > self.max_line {
                // Too long to hold: counted to its end and refused at once; what follows
                // its newline starts the next chunk.
                let len = self.read_past(&mut data, start)?;
                too_long.push((ends.len(), len));
                ends.push(start);
                break;
            }
            if self.at_end || (data.len() >= CHUNK_BYTES && !ends.is_empty()) {
                break;
            }
            let want = CHUNK_BYTES.saturating_sub(data.len()).max(1 << 16);
            // Fewer bytes than asked for: the input ended (no second read of a terminal).
            match (&mut self.file).take(want as u64).read_to_end(&mut data) {
                Ok(n) => self.at_end = n < want,
                Err(err) => return Err(format!("reading `{}`: {err}", self.path.display())),
            }
        }
        let whole = ends.last().copied().unwrap_or(0);
        if self.at_end {
            // The last line may end without a newline.
            if data.len() > whole {
                ends.push(data.len());
            }
        } else {
            self.carry = data[whole..].to_vec();
            data.truncate(whole);
        }
        let chunk = Chunk {
            first_line: self.line_no + 1,
            data,
            ends,
            too_long,
        };
        self.line_no += chunk.ends.len() as u64;
        Ok((!chunk.ends.is_empty()).then_some(chunk))
    }

    /// Reads past the rest of the line that starts at `data[start..]`, dropping its bytes
    /// and keeping in `data` what follows its newline; its length without the newline.
    fn read_past(&mut self, data: &mut Vec<u8>, start: usize) -> Result<u64, String> {
        let mut len = (data.len() - start) as u64;
        data.truncate(start);
        // The room the long line took goes back: a chunk waiting for a worker keeps none.
        data.shrink_to(CHUNK_BYTES + (1 << 16));
        let mut buffer = vec![0; 1 << 16];
        while !self.at_end {
            let n = match self.file.read(&mut buffer) {
                Ok(0) => {
                    self.at_end = true;
                    continue;
                }
                Ok(n) => n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(format!("reading `{}`: {err}", self.path.display())),
            };
            match memchr::memchr(b'\n', &buffer[..n]) {
                Some(at) => {
                    data.extend_from_slice(&buffer[at + 1..n]);
                    return Ok(len + at as u64);
                }
                None => len += n as u64,
            }
        }
        Ok(len)
    }
}

/// Maps the lines of a chunk.
fn map_chunk(pipeline: &Pipeline, plan: &Plan, chunk: &Chunk) -> Mapped {
    let flow = &pipeline.flows[plan.flow_idx];
    let mut mapped = Mapped {
        output: Vec::with_capacity(chunk.data.len()),
        ..Mapped::default()
    };
    // The reader found the line ends already: no second scan of the bytes.
    let starts = std::iter::once(0).chain(chunk.ends.iter().copied());
    let lines = starts
        .zip(&chunk.ends)
        .map(|(start, end)| &chunk.data[start..*end]);
    let mut too_long = chunk.too_long.iter().peekable();
    for (idx, (line_no, line)) in (chunk.first_line..).zip(lines).enumerate() {
        if let Some((_, len)) = too_long.next_if(|(at, _)| *at == idx) {
            mapped.documents += 1;
            mapped.rejected += 1;
            use std::fmt::Write as _;
            let _ = writeln!(
                mapped.rejections,
                "line {line_no}: rejected by `input`: the line is {len} bytes, longer than max_line_bytes ({}); not read",
                plan.max_line
            );
            continue;
        }
        let text = trim_line(line);
        if text.is_empty() {
            continue;
        }
        mapped.documents += 1;
        let result = json_in::parse(text, &plan.projection)
            .map_err(|reason| ("input".to_string(), reason))
            .and_then(|input| {
                pipeline
                    .process(plan.flow_idx, plan.source, input, true, true)
                    .map_err(|r| (r.node, r.reason))
            });
        match result {
            Err((node, reason)) => {
                mapped.rejected += 1;
                use std::fmt::Write as _;
                let _ = writeln!(
                    mapped.rejections,
                    "line {line_no}: rejected by `{node}`: {reason}"
                );
            }
            Ok(outcome) => write_output(
                &mut mapped.output,
                flow,
                &outcome,
                plan.shown,
                plan.with_route,
            ),
        }
    }
    mapped
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
