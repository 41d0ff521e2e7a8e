//! Paths and lines both ends read the same way: simple JSONPath selectors, file paths of
//! the `file` connector, CSV lines.

use crate::PathSeg;

/// Parses a JSONPath made only of `.name`, `['name']`, `[N]` and `[*]` steps.
pub fn simple_path(text: &str) -> Option<Vec<PathSeg>> {
    let rest = text.strip_prefix('$')?;
    let bytes = rest.as_bytes();
    let mut segs = Vec::new();
    let mut idx = 0;
    while idx < bytes.len() {
        match bytes[idx] {
            b'.' => {
                if bytes.get(idx + 1) == Some(&b'.') {
                    return None;
                }
                let start = idx + 1;
                let mut end = start;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_')
                {
                    end += 1;
                }
                if end == start {
                    return None;
                }
                segs.push(PathSeg::Field(rest[start..end].to_string()));
                idx = end;
            }
            b'[' => {
                let close = rest[idx..].find(']')? + idx;
                let inner = rest[idx + 1..close].trim();
                if inner == "*" {
                    segs.push(PathSeg::All);
                } else if let Ok(n) = inner.parse::<i64>() {
                    if n < 0 {
                        return None;
                    }
                    segs.push(PathSeg::Index(n));
                } else if inner.len() >= 2
                    && ((inner.starts_with('\'') && inner.ends_with('\''))
                        || (inner.starts_with('"') && inner.ends_with('"')))
                {
                    let name = &inner[1..inner.len() - 1];
                    if name.contains(['\'', '"', '\\']) {
                        return None;
                    }
                    segs.push(PathSeg::Field(name.to_string()));
                } else {
                    return None;
                }
                idx = close + 1;
            }
            _ => return None,
        }
    }
    Some(segs)
}

/// Splits one CSV line, honouring double quotes (`""` is a quote inside a field). A quote
/// left open at the line's end is refused: a field with a line break in it, which a reader
/// of lines cannot take whole (its halves would be read as two made-up rows).
pub fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        return Err(
            "a quoted field is not closed on its line (fields with line breaks are not read)"
                .into(),
        );
    }
    fields.push(field);
    Ok(fields)
}

/// Why a file connection's `path` (a source's pattern when `pattern`, else a sink's file)
/// cannot be used: empty, a directory, absolute, leaving the connection's `dir` through
/// `..`, or (sources) a wildcard outside the file name, which the source never expands.
pub fn file_path_problem(path: &str, pattern: bool) -> Option<&'static str> {
    if path.trim().is_empty() {
        return Some("is empty");
    }
    if path.ends_with('/') {
        return Some("names a directory, not a file");
    }
    if path.starts_with('/') {
        return Some("is absolute: it must stay inside the connection's `dir`");
    }
    if path.split('/').any(|part| part == "..") {
        return Some("leaves the connection's `dir` through `..`");
    }
    let directory = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    let wild = |text: &str| text.contains(['*', '?', '[']);
    if pattern && wild(directory) {
        return Some("has a wildcard in a directory part; only the file name may have one");
    }
    if !pattern && wild(path) {
        return Some("has a wildcard; a file sink writes one named file");
    }
    None
}
