//! Finds the `//` comments of a file (outside strings), which the parser skips.

/// One comment with its byte range (the text excludes the newline).
#[derive(Debug, Clone)]
pub struct Comment {
    pub start: u32,
    pub end: u32,
    pub text: String,
}

/// Every comment, in order.
pub fn scan(text: &str) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut idx = 0;
    let mut in_string = false;
    while idx < bytes.len() {
        let byte = bytes[idx];
        if in_string {
            match byte {
                b'\\' => idx += 1,
                b'"' | b'\n' => in_string = false,
                _ => {}
            }
            idx += 1;
            continue;
        }
        match byte {
            b'"' => in_string = true,
            // JSONPath brackets may hold quoted names with `//` inside; they never hold
            // newlines, so a quote there is handled like a string.
            b'\'' => {
                if let Some(close) = text[idx + 1..].find(['\'', '\n']) {
                    idx += close + 1;
                }
            }
            b'/' if bytes.get(idx + 1) == Some(&b'/') => {
                let end = text[idx..].find('\n').map_or(text.len(), |i| idx + i);
                out.push(Comment {
                    start: idx as u32,
                    end: end as u32,
                    text: text[idx..end].to_string(),
                });
                idx = end;
                continue;
            }
            _ => {}
        }
        idx += 1;
    }
    out
}
