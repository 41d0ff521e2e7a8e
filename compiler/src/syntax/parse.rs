//! pest parse tree → [`ast`](super::ast). Parses one item at a time and, on a syntax
//! error, reports it and resumes at the next line that starts an item.

use super::ast::*;
use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::source::{FileId, Span};
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use pest::Parser;
use std::collections::HashMap;
use std::sync::OnceLock;

#[derive(pest_derive::Parser)]
#[grammar = "syntax/flow.pest"]
struct FlowParser;

/// The reserved words: no name (of a value, a variable or an item) may be one of them.
/// Field names may.
pub const KEYWORDS: &[&str] = &[
    "if", "then", "else", "and", "or", "not", "in", "as", "where", "reject", "true", "false",
    "null", "let",
];

/// Keywords that begin a top-level item; a line starting with one is a recovery point.
const ITEM_KEYWORDS: &[&str] = &[
    "use",
    "schema",
    "enum",
    "connection",
    "table",
    "policy",
    "connector",
    "flow",
];

/// Parses a whole file. Always returns a module: items that failed to parse are left out
/// and reported.
pub fn parse_module(file: FileId, text: &str, diags: &mut Diagnostics) -> Module {
    let mut module = Module::default();
    if let Some((at, brackets_only)) = too_deep(text) {
        let diagnostic = if brackets_only {
            Diagnostic::error(
                codes::SYNTAX_ERROR,
                Span::new(file, at, at + 1),
                format!("brackets nested deeper than {MAX_NESTING} levels"),
            )
            .label("too deeply nested")
            .help("split the expression with `let` bindings")
        } else {
            Diagnostic::error(
                codes::EXPRESSION_TOO_DEEP,
                Span::new(file, at, at + 2),
                format!("brackets, `if` and `as` nested deeper than {MAX_NESTING} levels"),
            )
            .label("too deeply nested")
            .help("split the expression with `let` bindings; a long chain of conditions reads better as a lookup table")
        };
        diags.push(diagnostic);
        return module;
    }
    for found in super::charset::misplaced(text) {
        diags.push(misplaced(file, found));
    }
    let mut offset = 0;
    let mut n_errors = 0;
    while offset < text.len() {
        let rest = &text[offset..];
        // Not pest's `rest_entry`: its error for a non-empty rest costs a scan of it,
        // which made files of many items quadratic.
        if only_trivia(rest) {
            break;
        }
        match FlowParser::parse(Rule::item_entry, rest) {
            Ok(mut pairs) => {
                let Some(pair) = pairs.next() else { break };
                let end = pair.as_span().end();
                let mut builder = Builder {
                    file,
                    base: offset,
                    depth: 0,
                    head_depths: HashMap::new(),
                    diags,
                };
                if let Some(item) = builder.item(pair) {
                    module.items.push(item);
                }
                if end == 0 {
                    break;
                }
                offset += end;
            }
            Err(err) => {
                let pos = match err.location {
                    InputLocation::Pos(pos) => pos,
                    InputLocation::Span((start, _)) => start,
                };
                diags.push(syntax_error(file, text, offset, pos, &err.variant));
                n_errors += 1;
                offset = next_item_start(text, (offset + pos).min(text.len()));
                // Each failed parse costs a scan of the rest of the file.
                if n_errors == MAX_SYNTAX_ERRORS && offset < text.len() {
                    diags.push(
                        Diagnostic::error(
                            codes::SYNTAX_ERROR,
                            Span::new(file, offset, offset),
                            format!("{MAX_SYNTAX_ERRORS} syntax errors; the rest of the file is not read"),
                        )
                        .label("parsing stopped here")
                        .help("fix the syntax errors above first"),
                    );
                    break;
                }
            }
        }
    }
    module
}

/// The report for a character the grammar read (as whitespace or in a name) that a flow
/// file does not allow there; the rest of the file is read as the grammar read it.
fn misplaced(file: FileId, found: super::charset::Misplaced) -> Diagnostic {
    let (message, label, help) = found.describe();
    let more = match found.count {
        1 => String::new(),
        2 => " (and one more in this file)".to_string(),
        n => format!(" (and {} more in this file)", n - 1),
    };
    Diagnostic::error(
        codes::SYNTAX_ERROR,
        Span::new(file, found.at, found.at + found.ch.len_utf8()),
        format!("{message}{more}"),
    )
    .label(label)
    .help(help)
}

/// Syntax errors reported per file before the parser stops.
pub const MAX_SYNTAX_ERRORS: usize = 100;

/// True when `text` holds only whitespace and `//` comments.
fn only_trivia(text: &str) -> bool {
    let mut rest = text;
    loop {
        // Every character the grammar skips (the misplaced ones are reported apart).
        rest = rest.trim_start_matches(super::charset::skipped);
        match rest.strip_prefix("//") {
            Some(comment) => rest = comment.find('\n').map_or("", |idx| &comment[idx..]),
            None => return rest.is_empty(),
        }
    }
}

/// Deepest nesting of brackets, `if` and `as` the parser accepts; deeper input is
/// refused before it is parsed, so the parser's own recursion stays bounded.
pub const MAX_NESTING: usize = 128;

/// Deepest expression tree accepted, counting every operator of a chain (`a + b + c`
/// is three levels deep as the tree it builds): the type checker, the graph IR and the
/// runtime's evaluator recurse this deep at most.
pub const MAX_EXPR_DEPTH: usize = 256;

/// One bracket level of the pre-scan, with the `if` and `as` opened in it that may
/// still be open.
#[derive(Default)]
struct ScanFrame {
    open_keywords: usize,
}

/// The offset where nesting first exceeds [`MAX_NESTING`] (outside strings and
/// comments), and whether brackets alone exceed it. An `if` (other than `else if`, which
/// repeats rather than nests) or an `as` counts as open until a `,`, a `=` or a route's
/// `when`/`otherwise` at its bracket level, which no expression contains.
fn too_deep(text: &str) -> Option<(usize, bool)> {
    let bytes = text.as_bytes();
    let mut frames: Vec<ScanFrame> = vec![ScanFrame::default()];
    let mut open_keywords = 0usize;
    let mut previous_word: &str = "";
    // The last byte of the token before, when it is not a word (comments skipped).
    let mut previous_byte = 0u8;
    let mut idx = 0;
    while idx < bytes.len() {
        let byte = bytes[idx];
        match byte {
            b'"' => idx = string_close(bytes, idx),
            b'/' if bytes.get(idx + 1) == Some(&b'/') => {
                idx = line_end(bytes, idx);
                continue;
            }
            // A JSONPath is one token whose brackets nest (and may quote `"`, `'`, `//`
            // and closing brackets without escapes): read as the grammar reads it.
            b'$' => {
                let (end, depth) = jsonpath_extent(bytes, idx);
                if frames.len() - 1 + depth > MAX_NESTING {
                    return Some((idx, true));
                }
                idx = end;
                previous_word = "";
                previous_byte = b'$';
                continue;
            }
            b'(' | b'[' | b'{' => {
                frames.push(ScanFrame::default());
                if frames.len() - 1 > MAX_NESTING {
                    return Some((idx, true));
                }
            }
            b')' | b']' | b'}' if frames.len() > 1 => {
                if let Some(frame) = frames.pop() {
                    open_keywords -= frame.open_keywords;
                }
            }
            b',' => close_keywords(&mut frames, &mut open_keywords),
            b'=' => {
                let before = idx.checked_sub(1).map(|at| bytes[at]);
                let compound = matches!(before, Some(b'=' | b'!' | b'<' | b'>'))
                    || bytes.get(idx + 1) == Some(&b'=');
                if !compound {
                    close_keywords(&mut frames, &mut open_keywords);
                }
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = idx;
                while idx < bytes.len()
                    && (bytes[idx].is_ascii_alphanumeric() || bytes[idx] == b'_')
                {
                    idx += 1;
                }
                let word = &text[start..idx];
                let after_dot = start > 0 && bytes[start - 1] == b'.';
                // `when` and `otherwise` are names too: they begin a route arm (and close
                // what the last one opened) only after an operand, never where a name is
                // read (`if when then ...`, `as when -> ...`).
                // An operand must end right before: a name that is no expression keyword
                // (nor starts with one the grammar reads as bare text, `thenif`), a closing
                // bracket, a string, a number or a JSONPath. Anything else (an operator, a
                // character beyond ASCII, whitespace the charset check refuses) leaves the
                // count open: a level too many, never one too few.
                let arm = || {
                    !after_dot
                        && match previous_word {
                            "" => matches!(
                                previous_byte,
                                b')' | b']' | b'}' | b'"' | b'$' | b'%' | b'0'..=b'9'
                            ),
                            _ => {
                                !EXPRESSION_WORDS.contains(&previous_word)
                                    && !BARE_KEYWORDS.iter().any(|k| previous_word.starts_with(k))
                            }
                        }
                };
                match word {
                    "if" if previous_word != "else" && !after_dot => {
                        open_keyword(&mut frames, &mut open_keywords);
                    }
                    // The grammar reads `then`, `where`, `each` and `when` as the text they
                    // start with, so `thenif` is `then if`.
                    "thenif" | "whereif" | "eachif" if !after_dot => {
                        open_keyword(&mut frames, &mut open_keywords);
                    }
                    "whenif" if arm() => {
                        close_keywords(&mut frames, &mut open_keywords);
                        open_keyword(&mut frames, &mut open_keywords);
                    }
                    "as" if !after_dot => open_keyword(&mut frames, &mut open_keywords),
                    "when" | "otherwise" if arm() => {
                        close_keywords(&mut frames, &mut open_keywords);
                    }
                    _ => {}
                }
                if frames.len() - 1 + open_keywords > MAX_NESTING {
                    return Some((start, false));
                }
                previous_word = word;
                continue;
            }
            _ => {}
        }
        if !byte.is_ascii_whitespace() {
            previous_word = "";
            previous_byte = byte;
        }
        idx += 1;
    }
    None
}

/// Keywords the grammar reads as bare text, an expression right after them (`thenif` is
/// `then if`, `maxif` is `max if`).
const BARE_KEYWORDS: &[&str] = &["then", "else", "where", "each", "when", "max"];

/// The words after which an expression (so possibly a name) begins.
const EXPRESSION_WORDS: &[&str] = &[
    "if",
    "then",
    "else",
    "as",
    "where",
    "not",
    "and",
    "or",
    "in",
    "each",
    "when",
    "otherwise",
    "let",
    "reject",
];

/// Where the string opening at `open` ends as the grammar reads it: its closing quote, or
/// the newline or end of text that leaves it unterminated (a `\` escapes no newline).
pub(super) fn string_close(bytes: &[u8], open: usize) -> usize {
    let mut idx = open + 1;
    while idx < bytes.len() && bytes[idx] != b'"' && bytes[idx] != b'\n' {
        if bytes[idx] == b'\\' && bytes.get(idx + 1) != Some(&b'\n') {
            idx += 1;
        }
        idx += 1;
    }
    idx
}

/// The newline ending the line `from` is on (a comment's end), or the end of text.
pub(super) fn line_end(bytes: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &bytes[from..]).map_or(bytes.len(), |at| from + at)
}

/// Where the JSONPath starting with the `$` at `start` ends, as the grammar's `jsonpath`
/// reads it (`jp_segment`s), and how deep its brackets nest.
pub(super) fn jsonpath_extent(bytes: &[u8], start: usize) -> (usize, usize) {
    let name_char = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let mut idx = start + 1;
    let mut deepest = 0;
    loop {
        let (after, tail) = match (bytes.get(idx), bytes.get(idx + 1)) {
            (Some(b'.'), Some(b'.')) => (idx + 2, true),
            (Some(b'.'), _) => (idx + 1, false),
            (Some(b'['), _) => (idx, true),
            _ => return (idx, deepest),
        };
        let names = bytes[after.min(bytes.len())..]
            .iter()
            .take_while(|b| name_char(b))
            .count();
        idx = match bytes.get(after) {
            _ if names > 0 && after > idx => after + names,
            Some(b'*') if after > idx => after + 1,
            Some(b'[') if tail => match jsonpath_bracket(bytes, after) {
                Ok((end, depth)) => {
                    deepest = deepest.max(depth);
                    end
                }
                // pest went as deep before it gave the bracket up.
                Err(depth) => return (idx, deepest.max(depth)),
            },
            _ => return (idx, deepest),
        };
    }
}

/// The end and depth of the JSONPath bracket opening at `start` (`jp_bracket`), or, when
/// a newline or the end comes before it closes (the grammar then does not read it as
/// JSONPath), the depth pest reached before giving it up. A quoted name is skipped when it
/// closes on its line; a lone quote, like `//`, is a character.
fn jsonpath_bracket(bytes: &[u8], start: usize) -> Result<(usize, usize), usize> {
    let mut idx = start;
    let mut depth = 0usize;
    let mut deepest = 0usize;
    while idx < bytes.len() {
        match bytes[idx] {
            b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Ok((idx + 1, deepest));
                }
            }
            b'\n' => return Err(deepest),
            quote @ (b'\'' | b'"') => {
                let line = &bytes[idx + 1..];
                let close = line.iter().position(|b| *b == quote || *b == b'\n');
                if let Some(at) = close.filter(|at| line[*at] == quote) {
                    idx += at + 1;
                }
            }
            _ => {}
        }
        idx += 1;
    }
    Err(deepest)
}

fn open_keyword(frames: &mut [ScanFrame], open_keywords: &mut usize) {
    if let Some(frame) = frames.last_mut() {
        frame.open_keywords += 1;
        *open_keywords += 1;
    }
}

fn close_keywords(frames: &mut [ScanFrame], open_keywords: &mut usize) {
    if let Some(frame) = frames.last_mut() {
        *open_keywords -= frame.open_keywords;
        frame.open_keywords = 0;
    }
}

/// The levels a part of a flat `expr` pair adds to the tree it builds: none for an operand,
/// one for an operator or an `as` head, one per branch for an `if` head.
fn levels_of(part: &Pair<Rule>) -> usize {
    match part.as_rule() {
        Rule::if_expr => part.clone().into_inner().count() / 2,
        rule if is_operand(rule) => 0,
        _ => 1,
    }
}

/// Whether a part of a flat `expr` pair is a postfix of the operand before it.
fn is_postfix(rule: Rule) -> bool {
    matches!(rule, Rule::member | Rule::all_items | Rule::index)
}

/// Whether a part of a flat `expr` pair is an operand rather than an operator.
fn is_operand(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::reject_expr
            | Rule::named
            | Rule::jsonpath
            | Rule::list
            | Rule::expr
            | Rule::duration
            | Rule::rate
            | Rule::percent
            | Rule::decimal
            | Rule::integer
            | Rule::string
            | Rule::boolean
            | Rule::null
    )
}

/// Parses a single expression (for tools and tests).
pub fn parse_expr(file: FileId, text: &str, diags: &mut Diagnostics) -> Option<Expr> {
    for found in super::charset::misplaced(text) {
        diags.push(misplaced(file, found));
    }
    match FlowParser::parse(Rule::expr_entry, text) {
        Ok(mut pairs) => {
            let pair = pairs.next()?;
            let mut builder = Builder {
                file,
                base: 0,
                depth: 0,
                head_depths: HashMap::new(),
                diags,
            };
            Some(builder.expr(pair))
        }
        Err(err) => {
            let pos = match err.location {
                InputLocation::Pos(pos) => pos,
                InputLocation::Span((start, _)) => start,
            };
            diags.push(syntax_error(file, text, 0, pos, &err.variant));
            None
        }
    }
}

/// The byte offset of the next line (after the one containing `from`) that starts with
/// an item keyword at column 0, or the end of the text.
fn next_item_start(text: &str, from: usize) -> usize {
    let mut line_start = match text[from..].find('\n') {
        Some(idx) => from + idx + 1,
        None => return text.len(),
    };
    while line_start < text.len() {
        let line = &text[line_start..];
        let starts_item = ITEM_KEYWORDS.iter().any(|kw| {
            line.starts_with(kw)
                && line[kw.len()..]
                    .chars()
                    .next()
                    .is_some_and(|c| c == ' ' || c == '\t')
        });
        if starts_item {
            return line_start;
        }
        line_start = match line.find('\n') {
            Some(idx) => line_start + idx + 1,
            None => text.len(),
        };
    }
    text.len()
}

fn rule_name(rule: &Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident => "a name",
        Rule::field_name => "a field name",
        Rule::string => "a string",
        Rule::expr => "an expression",
        Rule::type_expr | Rule::type_name | Rule::list_type => "a type",
        Rule::use_decl
        | Rule::schema_decl
        | Rule::enum_decl
        | Rule::connection_decl
        | Rule::table_decl
        | Rule::policy_decl
        | Rule::connector_decl
        | Rule::ledger_decl
        | Rule::flow_decl => "an item (`use`, `schema`, `enum`, `connection`, `table`, `policy`, `connector`, `ledger` or `flow`)",
        Rule::source_stmt
        | Rule::map_stmt
        | Rule::filter_stmt
        | Rule::route_stmt
        | Rule::split_stmt
        | Rule::sink_stmt
        | Rule::test_stmt => "a flow statement (`source`, `map`, `filter`, `route`, `split`, `sink` or `test`)",
        Rule::setting => "a setting `name = value`",
        Rule::settings => "a settings block `{ ... }`",
        Rule::schema_field => "a field `name: Type`",
        Rule::field_assign => "a field assignment `name = expression`",
        Rule::let_binding | Rule::let_word => "`let`",
        Rule::when_arm => "`when`",
        Rule::otherwise_arm => "`otherwise`",
        Rule::targets => "a target node",
        Rule::operation => "an operation `connection.operation`",
        Rule::table_file | Rule::table_inline => "`file(\"...\")` or an inline table `{ \"key\": value }`",
        Rule::table_entry => "a table entry `\"key\": value`",
        Rule::test_field => "a test field `name = value`",
        Rule::json | Rule::json_object | Rule::json_array | Rule::json_number => "a JSON value",
        Rule::json_member => "a JSON member `\"key\": value`",
        Rule::setting_sig => "`setting`",
        Rule::quota_sig => "`quota`",
        Rule::source_sig => "`source`",
        Rule::sink_sig => "`sink`",
        Rule::operation_body => "an operation body `{ ... }`",
        Rule::option_sig => "`option`",
        Rule::option_max => "`max`",
        Rule::needs_sig => "`needs`",
        Rule::overwrites_sig => "`overwrites`",
        Rule::module_path => "a module path",
        Rule::use_list => "`.{ names }`",
        Rule::op_coalesce
        | Rule::op_or
        | Rule::op_and
        | Rule::op_eq
        | Rule::op_ne
        | Rule::op_le
        | Rule::op_ge
        | Rule::op_lt
        | Rule::op_gt
        | Rule::op_in
        | Rule::op_not_in
        | Rule::op_add
        | Rule::op_sub
        | Rule::op_mul
        | Rule::op_div
        | Rule::operator_start => "an operator",
        Rule::member | Rule::index | Rule::all_items | Rule::each_map | Rule::postfix_start => {
            "`.`, `[` or `as`"
        }
        Rule::EOI => "end of file",
        _ => return None,
    })
}

fn syntax_error(
    file: FileId,
    text: &str,
    base: usize,
    pos: usize,
    variant: &ErrorVariant<Rule>,
) -> Diagnostic {
    let at = (base + pos).min(text.len());
    // An unterminated string: a quote on this line that never closes.
    if let Some(quote) = unterminated_quote(text, at) {
        let line_end = text[quote..]
            .find('\n')
            .map_or(text.len(), |idx| quote + idx);
        return Diagnostic::error(
            codes::UNTERMINATED_STRING,
            Span::new(file, quote, line_end),
            "unterminated string",
        )
        .label("this string is not closed")
        .help("add the closing `\"` before the end of the line");
    }
    let token_end = token_end(text, at);
    let found = if at >= text.len() {
        "end of file".to_string()
    } else {
        format!("`{}`", &text[at..token_end])
    };
    let mut expected: Vec<&str> = match variant {
        ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().filter_map(rule_name).collect()
        }
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    expected.sort_unstable();
    expected.dedup();
    let expected_text = match expected.len() {
        0 => "something else".to_string(),
        1 => expected[0].to_string(),
        n => format!("{} or {}", expected[..n - 1].join(", "), expected[n - 1]),
    };
    Diagnostic::error(
        codes::SYNTAX_ERROR,
        Span::new(file, at, token_end),
        format!("unexpected {found}, expected {expected_text}"),
    )
    .label(format!("expected {expected_text}"))
    .help(format!(
        "write {expected_text} here; see docs/language.md for the syntax"
    ))
}

fn unterminated_quote(text: &str, at: usize) -> Option<usize> {
    let line_start = text[..at].rfind('\n').map_or(0, |idx| idx + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |idx| at + idx);
    let line = &text[line_start..line_end];
    let mut in_string: Option<usize> = None;
    let mut escaped = false;
    for (idx, ch) in line.char_indices() {
        match in_string {
            None if ch == '"' => in_string = Some(idx),
            None if ch == '/' && line[idx..].starts_with("//") => break,
            Some(_) if escaped => escaped = false,
            Some(_) if ch == '\\' => escaped = true,
            Some(_) if ch == '"' => in_string = None,
            _ => {}
        }
    }
    in_string.map(|idx| line_start + idx)
}

fn token_end(text: &str, at: usize) -> usize {
    let rest = &text[at.min(text.len())..];
    let mut chars = rest.char_indices();
    match chars.next() {
        None => at,
        Some((_, c)) if c.is_alphanumeric() || c == '_' => {
            let len = rest
                .char_indices()
                .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
                .map_or(rest.len(), |(idx, _)| idx);
            at + len
        }
        Some((_, c)) => at + c.len_utf8(),
    }
}

fn pratt() -> &'static PrattParser<Rule> {
    static PRATT: OnceLock<PrattParser<Rule>> = OnceLock::new();
    PRATT.get_or_init(|| {
        // An `if` head binds loosest: its last branch is the rest of the chain. An `as` head
        // is no operator here (`Builder::chain` splits the chain at it).
        PrattParser::new()
            .op(Op::prefix(Rule::if_expr))
            .op(Op::infix(Rule::op_coalesce, Assoc::Left))
            .op(Op::infix(Rule::op_or, Assoc::Left))
            .op(Op::infix(Rule::op_and, Assoc::Left))
            .op(Op::prefix(Rule::op_not))
            .op(Op::infix(Rule::op_eq, Assoc::Left)
                | Op::infix(Rule::op_ne, Assoc::Left)
                | Op::infix(Rule::op_lt, Assoc::Left)
                | Op::infix(Rule::op_le, Assoc::Left)
                | Op::infix(Rule::op_gt, Assoc::Left)
                | Op::infix(Rule::op_ge, Assoc::Left)
                | Op::infix(Rule::op_in, Assoc::Left)
                | Op::infix(Rule::op_not_in, Assoc::Left))
            .op(Op::infix(Rule::op_add, Assoc::Left) | Op::infix(Rule::op_sub, Assoc::Left))
            .op(Op::infix(Rule::op_mul, Assoc::Left) | Op::infix(Rule::op_div, Assoc::Left))
            .op(Op::prefix(Rule::op_neg))
            .op(Op::postfix(Rule::member) | Op::postfix(Rule::all_items) | Op::postfix(Rule::index))
    })
}

struct Builder<'d> {
    file: FileId,
    base: usize,
    /// Expression levels above the one being built (see [`MAX_EXPR_DEPTH`]).
    depth: usize,
    /// The levels above an `if` or `as` head's own parts (its conditions and branches, its
    /// filter), by the head's offset: those of its chain up to it, not after it.
    head_depths: HashMap<usize, usize>,
    diags: &'d mut Diagnostics,
}

impl Builder<'_> {
    /// The span of a pair without the whitespace and comments pest keeps at its end.
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let span = pair.as_span();
        let text = span.as_str();
        // Trailing trivia ends in whitespace (a comment's newline is taken with it), except
        // for a comment that ends the input: most pairs have none, and are not scanned.
        let plain_end = text
            .as_bytes()
            .last()
            .is_some_and(|b| !b.is_ascii_whitespace())
            && span.end() < pair.get_input().len();
        let len = if plain_end {
            text.len()
        } else {
            trimmed_len(text)
        };
        Span::new(
            self.file,
            self.base + span.start(),
            self.base + span.start() + len,
        )
    }

    /// A name; a reserved word read where a name stands (the grammar leaves that to this
    /// check) is reported. Field names may be reserved words.
    fn ident(&mut self, pair: Pair<Rule>) -> Ident {
        let span = self.span(&pair);
        let name = pair.as_str();
        if pair.as_rule() == Rule::ident && KEYWORDS.contains(&name) {
            self.diags.push(
                Diagnostic::error(
                    codes::SYNTAX_ERROR,
                    span,
                    format!("`{name}` is a reserved word, not a name"),
                )
                .label("reserved word")
                .help(format!("choose another name, such as `{name}_`")),
            );
        }
        Ident {
            span,
            name: name.to_string(),
        }
    }

    fn string(&mut self, pair: Pair<Rule>) -> StringLit {
        let span = self.span(&pair);
        let raw = pair.as_str();
        let value = match unescape(&raw[1..raw.len() - 1]) {
            Ok(value) => value,
            Err(escape) => {
                self.diags.push(
                    Diagnostic::error(
                        codes::SYNTAX_ERROR,
                        span,
                        format!("invalid escape `{escape}` in a string"),
                    )
                    .label("not a Unicode scalar value")
                    .help("write `\\uXXXX` with a character's code, a surrogate pair as two escapes in a row (`\\uD83D\\uDE00`), or the character itself"),
                );
                String::new()
            }
        };
        StringLit { value, span }
    }

    fn item(&mut self, pair: Pair<Rule>) -> Option<Item> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        Some(match rule {
            Rule::use_decl => {
                let target_pair = inner.next()?;
                let target = match target_pair.as_rule() {
                    Rule::string => UseTarget::File(self.string(target_pair)),
                    _ => {
                        UseTarget::Module(target_pair.into_inner().map(|p| self.ident(p)).collect())
                    }
                };
                let names = inner
                    .next()
                    .map(|list| list.into_inner().map(|p| self.ident(p)).collect());
                Item::Use(UseDecl {
                    target,
                    names,
                    span,
                })
            }
            Rule::schema_decl => {
                let name = self.ident(inner.next()?);
                let fields = inner.map(|f| self.field_decl(f)).collect();
                Item::Schema(SchemaDecl { name, fields, span })
            }
            Rule::enum_decl => {
                let name = self.ident(inner.next()?);
                let variants = inner.map(|p| self.ident(p)).collect();
                Item::Enum(EnumDecl {
                    name,
                    variants,
                    span,
                })
            }
            Rule::connection_decl => {
                let name = self.ident(inner.next()?);
                let connector = self.ident(inner.next()?);
                let settings = self.settings(inner.next()?);
                Item::Connection(ConnectionDecl {
                    name,
                    connector,
                    settings,
                    span,
                })
            }
            Rule::table_decl => {
                let name = self.ident(inner.next()?);
                let key_ty = self.type_expr(inner.next()?);
                let value_ty = self.type_expr(inner.next()?);
                let source_pair = inner.next()?;
                let source = match source_pair.as_rule() {
                    Rule::table_file => {
                        let mut parts = source_pair.into_inner();
                        let path = self.string(parts.next()?);
                        let options = parts.map(|p| self.setting(p)).collect();
                        TableSource::File { path, options }
                    }
                    _ => TableSource::Inline(
                        source_pair
                            .into_inner()
                            .filter_map(|entry| {
                                let mut parts = entry.into_inner();
                                let key = self.string(parts.next()?);
                                let value = self.expr(parts.next()?);
                                Some((key, value))
                            })
                            .collect(),
                    ),
                };
                Item::Table(TableDecl {
                    name,
                    key_ty,
                    value_ty,
                    source,
                    span,
                })
            }
            Rule::policy_decl => {
                let kind = self.ident(inner.next()?);
                let name = self.ident(inner.next()?);
                let settings = self.settings(inner.next()?);
                Item::Policy(PolicyDecl {
                    kind,
                    name,
                    settings,
                    span,
                })
            }
            Rule::connector_decl => self.connector(span, inner)?,
            Rule::ledger_decl => {
                let name = self.ident(inner.next()?);
                let members = inner
                    .map(|member| match member.as_rule() {
                        Rule::ledger_channel => {
                            let span = self.span(&member);
                            let mut parts = member.into_inner();
                            let name = parts
                                .next()
                                .map(|p| self.ident(p))
                                .unwrap_or_else(|| placeholder_ident(span));
                            let settings = match parts.next() {
                                Some(p) => self.settings(p),
                                None => Settings {
                                    entries: Vec::new(),
                                    span,
                                },
                            };
                            LedgerMember::Channel {
                                name,
                                settings,
                                span,
                            }
                        }
                        _ => LedgerMember::Setting(self.setting(member)),
                    })
                    .collect();
                Item::Ledger(LedgerDecl {
                    name,
                    members,
                    span,
                })
            }
            Rule::flow_decl => {
                let name = self.ident(inner.next()?);
                let stmts = inner.filter_map(|p| self.stmt(p)).collect();
                Item::Flow(FlowDecl { name, stmts, span })
            }
            _ => return None,
        })
    }

    fn connector(&mut self, span: Span, mut inner: Pairs<Rule>) -> Option<Item> {
        let name = self.ident(inner.next()?);
        let mut decl = ConnectorDecl {
            name,
            settings: Vec::new(),
            quota: None,
            auth: None,
            rules: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            span,
        };
        for member in inner {
            let member_span = self.span(&member);
            let rule = member.as_rule();
            let mut parts = member.into_inner();
            match rule {
                Rule::setting_sig => {
                    let name = self.ident(parts.next()?);
                    let ty = self.type_expr(parts.next()?);
                    let default = parts.next().map(|p| self.expr(p));
                    decl.settings.push(SettingSig {
                        name,
                        ty,
                        default,
                        span: member_span,
                    });
                }
                Rule::quota_sig => match &decl.quota {
                    Some(first) => {
                        self.given_twice("`quota`", "connector", member_span, first.span)
                    }
                    None => decl.quota = Some(self.settings(parts.next()?)),
                },
                Rule::auth_sig => {
                    let kind = self.ident(parts.next()?);
                    let block = self.block(parts.next()?);
                    match &decl.auth {
                        Some(first) => {
                            self.given_twice("`auth`", "connector", member_span, first.span)
                        }
                        None => {
                            decl.auth = Some(AuthSig {
                                kind,
                                block,
                                span: member_span,
                            })
                        }
                    }
                }
                Rule::rule_sig => decl.rules.push(self.block(parts.next()?)),
                Rule::source_sig => {
                    let name = self.ident(parts.next()?);
                    let kind = self.ident(parts.next()?);
                    let output = self.type_expr(parts.next()?);
                    let body = self.operation_body(parts.next());
                    decl.sources.push(SourceSig {
                        name,
                        kind,
                        output,
                        body,
                        span: member_span,
                    });
                }
                Rule::sink_sig => {
                    let name = self.ident(parts.next()?);
                    let input = self.type_expr(parts.next()?);
                    let mut output = None;
                    let mut body = OperationBody::default();
                    for part in parts {
                        match part.as_rule() {
                            Rule::type_expr => output = Some(self.type_expr(part)),
                            _ => body = self.operation_body(Some(part)),
                        }
                    }
                    decl.sinks.push(SinkSig {
                        name,
                        input,
                        output,
                        body,
                        span: member_span,
                    });
                }
                _ => {}
            }
        }
        Some(Item::Connector(decl))
    }

    /// An operation's quota block or body (`settings` or `operation_body`), if any.
    fn operation_body(&mut self, pair: Option<Pair<Rule>>) -> OperationBody {
        let mut body = OperationBody::default();
        let Some(pair) = pair else {
            return body;
        };
        if pair.as_rule() == Rule::settings {
            body.quota = Some(self.settings(pair));
            return body;
        }
        for member in pair.into_inner() {
            let span = self.span(&member);
            let rule = member.as_rule();
            let mut parts = member.into_inner();
            match rule {
                Rule::quota_sig => match &body.quota {
                    Some(first) => self.given_twice("`quota`", "operation", span, first.span),
                    None => body.quota = parts.next().map(|p| self.settings(p)),
                },
                Rule::needs_sig => body.needs.push(NeedsSig {
                    settings: parts.map(|p| self.ident(p)).collect(),
                    span,
                }),
                Rule::overwrites_sig => match body.overwrites {
                    Some(first) => self.given_twice("`overwrites`", "operation", span, first),
                    None => body.overwrites = Some(span),
                },
                Rule::impl_sig => {
                    if let Some(entry) = self.block_entry(span, parts) {
                        body.implementation.push(entry);
                    }
                }
                Rule::option_sig => {
                    let (Some(name), Some(ty)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let name = self.ident(name);
                    let ty = self.type_expr(ty);
                    let mut option = OptionSig {
                        name,
                        ty,
                        default: None,
                        max: None,
                        span,
                    };
                    for part in parts {
                        match part.as_rule() {
                            Rule::option_max => {
                                option.max = part.into_inner().next().map(|p| self.expr(p))
                            }
                            _ => option.default = Some(self.expr(part)),
                        }
                    }
                    body.options.push(option);
                }
                _ => {}
            }
        }
        body
    }

    /// `{ NAME = VALUE ... }` of a declared connector.
    fn block(&mut self, pair: Pair<Rule>) -> Block {
        let span = self.span(&pair);
        let mut entries = Vec::new();
        for entry in pair.into_inner() {
            let entry_span = self.span(&entry);
            if let Some(entry) = self.block_entry(entry_span, entry.into_inner()) {
                entries.push(entry);
            }
        }
        Block { entries, span }
    }

    /// A block entry's name and value (a nested block, a JSON object or an expression).
    fn block_entry(&mut self, span: Span, mut parts: Pairs<Rule>) -> Option<BlockEntry> {
        let name = self.ident(parts.next()?);
        let value = parts.next()?;
        let value = match value.as_rule() {
            Rule::block => BlockValue::Block(self.block(value)),
            Rule::json_object => {
                let value_span = self.span(&value);
                BlockValue::Json(self.json(value), value_span)
            }
            _ => BlockValue::Expr(self.expr(value)),
        };
        Some(BlockEntry { name, value, span })
    }

    fn field_decl(&mut self, pair: Pair<Rule>) -> FieldDecl {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = inner.next().map(|p| self.ident(p));
        let ty = inner.next().map(|p| self.type_expr(p));
        let default = inner.next().map(|p| self.expr(p));
        FieldDecl {
            name: name.unwrap_or_else(|| placeholder_ident(span)),
            ty: ty.unwrap_or_else(|| placeholder_type(span)),
            default,
            span,
        }
    }

    fn type_expr(&mut self, pair: Pair<Rule>) -> TypeExpr {
        let span = self.span(&pair);
        let mut optional = false;
        let mut kind = None;
        for part in pair.into_inner() {
            match part.as_rule() {
                Rule::optional => optional = true,
                Rule::list_type => {
                    let inner = part.into_inner().next();
                    let elem = inner.map(|p| self.type_expr(p));
                    kind = Some(TypeKind::List(Box::new(
                        elem.unwrap_or_else(|| placeholder_type(span)),
                    )));
                }
                _ => {
                    let ident_pair = part.into_inner().next();
                    kind = ident_pair.map(|p| TypeKind::Named(self.ident(p)));
                }
            }
        }
        TypeExpr {
            kind: kind.unwrap_or_else(|| placeholder_type(span).kind),
            optional,
            span,
        }
    }

    /// Reports (`E0110`) a member given twice in one `what` (a connector or an operation).
    fn given_twice(&mut self, member: &str, what: &str, again: Span, first: Span) {
        self.diags.push(
            Diagnostic::error(
                codes::DUPLICATE_DEFINITION,
                again,
                format!("{member} is given twice in one {what}"),
            )
            .label("given again here")
            .secondary(first, "first given here")
            .help("keep one of the two"),
        );
    }

    fn settings(&mut self, pair: Pair<Rule>) -> Settings {
        let span = self.span(&pair);
        let entries = pair.into_inner().map(|p| self.setting(p)).collect();
        Settings { entries, span }
    }

    fn setting(&mut self, pair: Pair<Rule>) -> Setting {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let name = inner.next().map(|p| self.ident(p));
        let value = inner.next().map(|p| self.expr(p));
        Setting {
            name: name.unwrap_or_else(|| placeholder_ident(span)),
            value: value.unwrap_or(Expr {
                kind: ExprKind::Error,
                span,
            }),
            span,
        }
    }

    fn operation(&mut self, pair: Pair<Rule>) -> Option<Operation> {
        let mut inner = pair.into_inner();
        let connection = self.ident(inner.next()?);
        let name = self.ident(inner.next()?);
        Some(Operation { connection, name })
    }

    fn stmt(&mut self, pair: Pair<Rule>) -> Option<Stmt> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        Some(match rule {
            Rule::source_stmt => {
                let name = self.ident(inner.next()?);
                let op = self.operation(inner.next()?)?;
                let settings = inner.next().map(|p| self.settings(p));
                Stmt::Source {
                    name,
                    op,
                    settings,
                    span,
                }
            }
            Rule::map_stmt => {
                let name = self.ident(inner.next()?);
                let input = self.ident(inner.next()?);
                let record = self.record(inner.next()?);
                Stmt::Map {
                    name,
                    input,
                    record,
                    span,
                }
            }
            Rule::filter_stmt => {
                let name = self.ident(inner.next()?);
                let input = self.ident(inner.next()?);
                let cond = self.expr(inner.next()?);
                Stmt::Filter {
                    name,
                    input,
                    cond,
                    span,
                }
            }
            Rule::route_stmt => {
                let name = self.ident(inner.next()?);
                let input = self.ident(inner.next()?);
                let mut arms = Vec::new();
                let mut otherwise = None;
                for arm in inner {
                    let arm_span = self.span(&arm);
                    match arm.as_rule() {
                        Rule::when_arm => {
                            let mut parts = arm.into_inner();
                            let cond = self.expr(parts.next()?);
                            let targets = self.targets(parts.next()?);
                            arms.push(RouteArm {
                                cond,
                                targets,
                                span: arm_span,
                            });
                        }
                        _ => {
                            let targets = arm.into_inner().next().map(|p| self.targets(p));
                            otherwise = targets;
                        }
                    }
                }
                Stmt::Route {
                    name,
                    input,
                    arms,
                    otherwise,
                    span,
                }
            }
            Rule::split_stmt => {
                let name = self.ident(inner.next()?);
                let input = self.ident(inner.next()?);
                let each = self.expr(inner.next()?);
                Stmt::Split {
                    name,
                    input,
                    each,
                    span,
                }
            }
            Rule::sink_stmt => {
                let name = self.ident(inner.next()?);
                let op = self.operation(inner.next()?)?;
                let input = self.ident(inner.next()?);
                let settings = inner.next().map(|p| self.settings(p));
                Stmt::Sink {
                    name,
                    op,
                    input,
                    settings,
                    span,
                }
            }
            Rule::test_stmt => {
                let name = self.string(inner.next()?);
                let mut fields = Vec::new();
                for field in inner {
                    let field_span = self.span(&field);
                    let mut parts = field.into_inner();
                    let field_name = self.ident(parts.next()?);
                    let value_pair = parts.next()?;
                    let value = match value_pair.as_rule() {
                        Rule::file_ref => {
                            TestValue::File(self.string(value_pair.into_inner().next()?))
                        }
                        Rule::ident_list => TestValue::Names(
                            value_pair.into_inner().map(|p| self.ident(p)).collect(),
                        ),
                        Rule::ident => TestValue::Name(self.ident(value_pair)),
                        _ => TestValue::Json(self.json(value_pair)),
                    };
                    fields.push(TestField {
                        name: field_name,
                        value,
                        span: field_span,
                    });
                }
                Stmt::Test(TestDecl { name, fields, span })
            }
            _ => return None,
        })
    }

    fn targets(&mut self, pair: Pair<Rule>) -> Vec<Ident> {
        pair.into_inner().map(|p| self.ident(p)).collect()
    }

    fn json(&mut self, pair: Pair<Rule>) -> JsonLit {
        let pair = if pair.as_rule() == Rule::json {
            match pair.into_inner().next() {
                Some(inner) => inner,
                None => return JsonLit::Null,
            }
        } else {
            pair
        };
        match pair.as_rule() {
            Rule::json_object => {
                let mut members = Vec::new();
                for member in pair.into_inner() {
                    let mut parts = member.into_inner();
                    let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    let key = self.string(key).value;
                    members.push((key, self.json(value)));
                }
                JsonLit::Object(members)
            }
            Rule::json_array => JsonLit::Array(pair.into_inner().map(|p| self.json(p)).collect()),
            Rule::string => JsonLit::Str(self.string(pair).value),
            Rule::json_number => JsonLit::Number(pair.as_str().to_string()),
            Rule::boolean => JsonLit::Bool(pair.as_str() == "true"),
            _ => JsonLit::Null,
        }
    }

    fn record(&mut self, pair: Pair<Rule>) -> Record {
        let span = self.span(&pair);
        let mut inner = pair.into_inner();
        let ty = inner.next();
        self.record_of(span, ty, inner.next())
    }

    /// A record from its type's name and its `record_body`.
    fn record_of(
        &mut self,
        span: Span,
        ty: Option<Pair<Rule>>,
        body: Option<Pair<Rule>>,
    ) -> Record {
        let ty = ty
            .map(|p| self.ident(p))
            .unwrap_or_else(|| placeholder_ident(span));
        let mut items = Vec::new();
        for item in body.into_iter().flat_map(Pair::into_inner) {
            let rule = item.as_rule();
            let mut parts = item.into_inner();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let name = self.ident(name);
            let value = self.expr(value);
            items.push(match rule {
                Rule::let_binding => RecordItem::Let(name, value),
                _ => RecordItem::Field(name, value),
            });
        }
        Record { ty, items, span }
    }

    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        if pair.as_rule() != Rule::expr {
            return self.primary(pair);
        }
        let mut parts = pair.clone().into_inner();
        let levels = match (parts.next(), parts.next()) {
            // A lone operand (most expressions): nothing for the precedence parser to order.
            (Some(operand), None) if self.depth < MAX_EXPR_DEPTH => {
                self.depth += 1;
                let expr = self.primary(operand);
                self.depth -= 1;
                return expr;
            }
            (first, second) => {
                let operators: usize = first
                    .iter()
                    .chain(second.iter())
                    .map(levels_of)
                    .sum::<usize>()
                    + parts.map(|part| levels_of(&part)).sum::<usize>();
                operators + 1
            }
        };
        if self.depth + levels > MAX_EXPR_DEPTH {
            let span = self.span(&pair);
            return self.too_deep(span);
        }
        self.depth += levels;
        let expr = self.operators(pair);
        self.depth -= levels;
        expr
    }

    /// Refuses an expression that would nest deeper than [`MAX_EXPR_DEPTH`].
    fn too_deep(&mut self, span: Span) -> Expr {
        self.diags.push(
            Diagnostic::error(
                codes::EXPRESSION_TOO_DEEP,
                span,
                format!("expression nested deeper than {MAX_EXPR_DEPTH} levels"),
            )
            .label("too deeply nested (each operator of a chain counts one level)")
            .help("split it with `let` bindings; a long chain of conditions reads better as a lookup table"),
        );
        Expr {
            kind: ExprKind::Error,
            span,
        }
    }

    /// Builds a flat `prefix* operand (link prefix* operand)*` pair.
    fn operators(&mut self, pair: Pair<Rule>) -> Expr {
        // A head's last part runs to the end of the chain, a closing bracket included.
        let end = self.span(&pair).end;
        let parts: Vec<Pair<Rule>> = pair_inner(pair).collect();
        // `expr` counted every part's levels; a head's own parts sit below those before it.
        let levels: Vec<usize> = parts.iter().map(levels_of).collect();
        let mut depth = self.depth.saturating_sub(levels.iter().sum::<usize>() + 1) + 1;
        for (part, levels) in parts.iter().zip(levels) {
            depth += levels;
            if matches!(part.as_rule(), Rule::if_expr | Rule::each_map) {
                self.head_depths.insert(part.as_span().start(), depth);
            }
        }
        self.chain(parts, end)
    }

    /// Builds the parts of the head at `start` at its own depth (see `head_depths`).
    fn at_head_depth<T>(&mut self, start: usize, build: impl FnOnce(&mut Self) -> T) -> T {
        let depth = self.head_depths.remove(&start).unwrap_or(self.depth);
        let outer = std::mem::replace(&mut self.depth, depth);
        let built = build(self);
        self.depth = outer;
        built
    }

    /// Builds a flat chain that ends at `end`. An `as` head maps the operand just before it
    /// (with that operand's postfixes) by the whole rest of the chain; the rest is ordered
    /// by precedence.
    fn chain(&mut self, mut parts: Vec<Pair<Rule>>, end: u32) -> Expr {
        let Some(at) = parts.iter().position(|p| p.as_rule() == Rule::each_map) else {
            return self.by_precedence(parts, None, end);
        };
        let body = parts.split_off(at + 1);
        let Some(head) = parts.pop() else {
            return self.by_precedence(parts, None, end);
        };
        let start = parts
            .iter()
            .rposition(|p| !is_postfix(p.as_rule()))
            .unwrap_or(0);
        let source = parts.split_off(start);
        let span = self.span(&head);
        if source.is_empty() || body.is_empty() {
            return Expr {
                kind: ExprKind::Error,
                span,
            };
        }
        let source = self.by_precedence(source, None, end);
        let mut inner = head.clone().into_inner();
        let var = inner.next().map(|p| self.ident(p));
        let filter = self.at_head_depth(head.as_span().start(), |this| {
            inner.next().map(|f| Box::new(this.expr(f)))
        });
        let body = self.chain(body, end);
        let span = Span {
            end: end.max(body.span.end),
            ..source.span.to(body.span)
        };
        let kind = match var {
            Some(var) => ExprKind::EachMap {
                source: Box::new(source),
                var,
                filter,
                body: Box::new(body),
            },
            None => ExprKind::Error,
        };
        let mapped = Expr { kind, span };
        if parts.is_empty() {
            return mapped;
        }
        // The head stands for the mapping as the last operand of what comes before it.
        parts.push(head);
        self.by_precedence(parts, Some(mapped), end)
    }

    /// Orders a flat chain without `as` heads by precedence; an `as` head in it stands for
    /// `mapped`, built already. An `if` head's last branch runs to `end`.
    fn by_precedence(&mut self, parts: Vec<Pair<Rule>>, mapped: Option<Expr>, end: u32) -> Expr {
        if parts.is_empty() {
            return Expr {
                kind: ExprKind::Error,
                span: Span::new(self.file, self.base, self.base),
            };
        }
        let file = self.file;
        let base = self.base;
        let mapped = std::cell::Cell::new(mapped);
        let this = std::cell::RefCell::new(self);
        let pos = |p: &Pair<Rule>| {
            let s = p.as_span();
            Span::new(file, base + s.start(), base + s.end())
        };
        let expr = pratt()
            .map_primary(|primary| {
                if primary.as_rule() == Rule::each_map {
                    if let Some(mapped) = mapped.take() {
                        return mapped;
                    }
                }
                this.borrow_mut().primary(primary)
            })
            .map_prefix(|op, rhs| {
                let kind = match op.as_rule() {
                    Rule::if_expr => return this.borrow_mut().if_chain(op, rhs, end),
                    Rule::op_neg => UnOp::Neg,
                    _ => UnOp::Not,
                };
                Expr {
                    span: pos(&op).to(rhs.span),
                    kind: ExprKind::Unary(kind, Box::new(rhs)),
                }
            })
            .map_postfix(|lhs, op| {
                let op_span = pos(&op);
                let span = lhs.span.to(op_span);
                let kind = match op.as_rule() {
                    Rule::member => match op.into_inner().next() {
                        Some(f) => {
                            let field = this.borrow_mut().ident(f);
                            ExprKind::Member(Box::new(lhs), field)
                        }
                        None => ExprKind::Error,
                    },
                    Rule::all_items => ExprKind::AllItems(Box::new(lhs)),
                    _ => match op.into_inner().next() {
                        Some(index) => {
                            let index = this.borrow_mut().expr(index);
                            ExprKind::Index(Box::new(lhs), Box::new(index))
                        }
                        None => ExprKind::Error,
                    },
                };
                Expr { kind, span }
            })
            .map_infix(|lhs, op, rhs| {
                let op = match op.as_rule() {
                    Rule::op_coalesce => BinOp::Coalesce,
                    Rule::op_or => BinOp::Or,
                    Rule::op_and => BinOp::And,
                    Rule::op_eq => BinOp::Eq,
                    Rule::op_ne => BinOp::Ne,
                    Rule::op_lt => BinOp::Lt,
                    Rule::op_le => BinOp::Le,
                    Rule::op_gt => BinOp::Gt,
                    Rule::op_ge => BinOp::Ge,
                    Rule::op_in => BinOp::In,
                    Rule::op_not_in => BinOp::NotIn,
                    Rule::op_add => BinOp::Add,
                    Rule::op_sub => BinOp::Sub,
                    Rule::op_mul => BinOp::Mul,
                    _ => BinOp::Div,
                };
                Expr {
                    span: lhs.span.to(rhs.span),
                    kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                }
            })
            .parse(parts.into_iter());
        expr
    }

    /// `if c1 then t1 else if c2 then t2 ... else e`: the head holds the branches (they
    /// repeat in the parse tree and nest in the AST, one level per `else if`, built from the
    /// last one back); `otherwise`, the last branch, is the rest of the chain. The levels
    /// were counted with the chain's (`levels_of`).
    fn if_chain(&mut self, head: Pair<Rule>, otherwise: Expr, end: u32) -> Expr {
        let span = self.span(&head).to(otherwise.span);
        let span = Span {
            end: end.max(span.end),
            ..span
        };
        let text = head.as_str();
        let text_start = head.as_span().start();
        let parts: Vec<Pair<Rule>> = head.clone().into_inner().collect();
        if parts.len() < 2 || parts.len() % 2 == 1 {
            return Expr {
                kind: ExprKind::Error,
                span,
            };
        }
        let mut parts = parts.into_iter();
        let mut branches = self.at_head_depth(text_start, |this| {
            let mut branches = Vec::new();
            while let (Some(cond), Some(then)) = (parts.next(), parts.next()) {
                // The branch starts at its `if`, the last one before its condition.
                let before = &text[..cond.as_span().start() - text_start];
                let if_at = before.rfind("if").unwrap_or(0);
                let start = (this.base + text_start + if_at) as u32;
                branches.push((start, this.expr(cond), this.expr(then)));
            }
            branches
        });
        let mut tail = otherwise;
        while let Some((start, cond, then)) = branches.pop() {
            let branch_span = Span {
                file: self.file,
                start,
                end: tail.span.end.max(span.start),
            };
            tail = Expr {
                kind: ExprKind::If(Box::new(cond), Box::new(then), Box::new(tail)),
                span: branch_span,
            };
        }
        Expr {
            kind: tail.kind,
            span,
        }
    }

    fn primary(&mut self, pair: Pair<Rule>) -> Expr {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let kind = match rule {
            Rule::expr => return self.expr(pair),
            Rule::reject_expr => match pair.into_inner().next() {
                Some(reason) => ExprKind::Reject(self.string(reason)),
                None => ExprKind::Error,
            },
            Rule::named => {
                let mut parts = pair.into_inner();
                let name = parts.next();
                match parts.next() {
                    Some(body) if body.as_rule() == Rule::record_body => {
                        ExprKind::Record(self.record_of(span, name, Some(body)))
                    }
                    Some(args) => match name {
                        Some(name) => {
                            let name = self.ident(name);
                            let args = args.into_inner().map(|p| self.expr(p)).collect();
                            ExprKind::Call(name, args)
                        }
                        None => ExprKind::Error,
                    },
                    None => match name {
                        Some(name) => ExprKind::Var(self.ident(name)),
                        None => ExprKind::Error,
                    },
                }
            }
            Rule::list => ExprKind::List(pair.into_inner().map(|p| self.expr(p)).collect()),
            Rule::jsonpath => ExprKind::JsonPath(pair.as_str().to_string()),
            Rule::null => ExprKind::Lit(Literal::Null),
            Rule::boolean => ExprKind::Lit(Literal::Bool(pair.as_str() == "true")),
            Rule::integer => match pair.as_str().parse::<i64>() {
                Ok(value) => ExprKind::Lit(Literal::Int(value)),
                Err(_) => {
                    self.diags.push(
                        Diagnostic::error(
                            codes::NUMBER_OUT_OF_RANGE,
                            span,
                            "integer literal out of range",
                        )
                        .label("does not fit in a 64-bit integer")
                        .help("use a value between -9223372036854775807 and 9223372036854775807, or a string"),
                    );
                    ExprKind::Error
                }
            },
            Rule::decimal => ExprKind::Lit(Literal::Decimal(pair.as_str().to_string())),
            Rule::string => ExprKind::Lit(Literal::Str(self.string(pair).value)),
            Rule::duration => {
                let text = pair.as_str();
                let digits_end = text
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(text.len());
                let value: u64 = text[..digits_end].parse().unwrap_or(u64::MAX);
                let unit_ms: u64 = match &text[digits_end..] {
                    "ms" => 1,
                    "s" => 1_000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    _ => 86_400_000,
                };
                ExprKind::Lit(Literal::Duration(
                    value.saturating_mul(unit_ms),
                    text.to_string(),
                ))
            }
            Rule::rate => {
                let text = pair.as_str();
                let (count, unit) = text.split_once('/').unwrap_or((text, "s"));
                let per_secs = match unit {
                    "m" => 60,
                    "h" => 3600,
                    _ => 1,
                };
                ExprKind::Lit(Literal::Rate {
                    count: count.parse().unwrap_or(u64::MAX),
                    per_secs,
                    text: text.to_string(),
                })
            }
            Rule::percent => ExprKind::Lit(Literal::Percent(
                pair.as_str().trim_end_matches('%').to_string(),
            )),
            _ => ExprKind::Error,
        };
        Expr { kind, span }
    }
}

/// Length of `text` without trailing whitespace and trailing `//` comments.
fn trimmed_len(text: &str) -> usize {
    let mut end = text.trim_end().len();
    loop {
        // A comment never spans lines, and every line starts outside a string (strings and
        // quoted names end at the newline), so a trailing comment is found on the last
        // line alone.
        let head = &text[..end];
        let line = head.rfind('\n').map_or(0, |i| i + 1);
        // A `/` search, not a `//` one: a substring search costs more to set up than the
        // scan of one short line.
        if !head[line..].contains('/') {
            return end;
        }
        match super::comments::scan(&head[line..]).last() {
            Some(comment) if line + comment.end as usize == end => {
                end = head[..line + comment.start as usize].trim_end().len();
            }
            _ => return end,
        }
    }
}

fn pair_inner(pair: Pair<Rule>) -> Pairs<Rule> {
    pair.into_inner()
}

fn placeholder_ident(span: Span) -> Ident {
    Ident {
        name: String::new(),
        span,
    }
}

fn placeholder_type(span: Span) -> TypeExpr {
    TypeExpr {
        kind: TypeKind::Named(placeholder_ident(span)),
        optional: false,
        span,
    }
}

/// Resolves the escapes of a string literal body; the escape that names no character (a
/// lone surrogate, bad hex) is the error. A surrogate pair written as two `\u` escapes is
/// one character.
pub fn unescape(body: &str) -> Result<String, String> {
    // Most strings hold no escape: one search and one copy.
    let Some(first) = body.find('\\') else {
        return Ok(body.to_string());
    };
    let mut out = String::with_capacity(body.len());
    out.push_str(&body[..first]);
    let mut chars = body[first..].chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| hex.len() == 4)
                    .ok_or_else(|| format!("\\u{hex}"))?;
                let c = if (0xD800..0xDC00).contains(&code) && chars.as_str().starts_with("\\u") {
                    let low_hex: String = chars.as_str()[2..].chars().take(4).collect();
                    match u32::from_str_radix(&low_hex, 16) {
                        Ok(low) if (0xDC00..0xE000).contains(&low) => {
                            chars.by_ref().take(6).for_each(drop);
                            char::from_u32(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00))
                        }
                        _ => None,
                    }
                } else {
                    char::from_u32(code)
                };
                out.push(c.ok_or_else(|| format!("\\u{hex}"))?);
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    Ok(out)
}

/// Escapes a string for writing it back as a literal.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for ch in value.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_escapes_name_characters_or_are_refused() {
        assert_eq!(unescape("plain é text").unwrap(), "plain é text");
        assert_eq!(
            unescape(r#"say \"hi\"\t\\ ok"#).unwrap(),
            "say \"hi\"\t\\ ok"
        );
        assert_eq!(unescape(r"a\u00e9b").unwrap(), "aéb");
        assert_eq!(unescape(r"\uD83D\uDE00").unwrap(), "😀");
        for lone in [r"a\uD800b", r"\uDC00", r"\uD800\u0041", r"\uZZZZ", r"\u12"] {
            assert!(unescape(lone).is_err(), "{lone}");
        }
    }

    #[test]
    fn a_span_ends_before_trailing_comments_and_blanks_only() {
        let cases = [
            ("a = 1 // one\n  // two\n\n", "a = 1"),
            ("a = \"x//y\"  ", "a = \"x//y\""),
            ("a = $['p//q']\n", "a = $['p//q']"),
            ("b {\n  c = 2 // c\n}\n// after\n", "b {\n  c = 2 // c\n}"),
            ("// only\n", ""),
        ];
        for (text, kept) in cases {
            assert_eq!(&text[..trimmed_len(text)], kept, "{text:?}");
        }
    }

    fn parse(text: &str) -> (Module, Diagnostics) {
        let mut diags = Diagnostics::default();
        let module = parse_module(FileId(0), text, &mut diags);
        (module, diags)
    }

    /// What a JSONPath quotes or brackets is read as the grammar reads it, so brackets
    /// after it are counted (pest recurses on them with no stack check of its own), and
    /// brackets inside it count as its own nesting.
    #[test]
    fn nesting_behind_or_inside_a_jsonpath_is_counted() {
        let too_deep = |text: &str| {
            let (_, diags) = parse(text);
            let messages = diags.into_sorted().into_iter().map(|d| d.message);
            messages.filter(|m| m.contains("nested deeper")).count() > 0
        };
        let deep = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
        let flow = |expr: &str| format!("flow f {{ map m = a -> B {{ x = {expr} }} }}\n");
        let paths = [
            r#"$['"']"#,
            "$['//']",
            r#"$["a\"]"#,
            "$['a]']",
            "$.a*",
            "$..b",
            "$['",
            "$[\n",
        ];
        for path in paths {
            let expr = format!("{path} ?? {}", deep(100_000));
            assert!(too_deep(&flow(&expr)), "{path}");
            let expr = format!("{path} ?? {}", deep(20));
            assert!(!too_deep(&flow(&expr)), "{path}");
        }
        // Refused by the count before the parse, not by the tree builder's depth after it:
        // only the first keeps pest's recursion bounded.
        let counted = |text: &str| {
            let (_, diags) = parse(text);
            let messages = diags.into_sorted().into_iter().map(|d| d.message);
            messages
                .filter(|m| m.contains("`if` and `as` nested deeper"))
                .count()
                > 0
        };
        // `when` and `otherwise` read as names close nothing.
        for name in [
            "if when then ",
            "if x.when then ",
            "a as when -> ",
            "if whenif then ",
        ] {
            let chain = |n: usize| format!("{}1{}", name.repeat(n), " else 1".repeat(n));
            assert!(counted(&flow(&chain(200))), "{name}");
            assert!(!too_deep(&flow(&chain(20))), "{name}");
        }
        // Nor after a keyword glued to what follows, nor after a character the grammar
        // reads as whitespace or in a name and the charset check refuses.
        for name in [
            "thenif when ",
            "then if\u{0B}when ",
            "then if\u{2028}when ",
            "then if éwhen ",
            "then if a.\u{0B}when ",
        ] {
            let chain =
                |n: usize| format!("if a {}then 1{}", name.repeat(n), " else 1".repeat(n + 1));
            assert!(counted(&flow(&chain(200))), "{name:?}");
        }
        let chain = format!(
            "{}1{}",
            "if a thennot when or ".repeat(200),
            " else 1".repeat(200)
        );
        assert!(counted(&flow(&chain)));
        // A route arm still closes what the one before opened.
        let arms = "  when if a then b else c -> t\n".repeat(200);
        assert!(!too_deep(&format!(
            "flow f {{\n route r = x {{\n{arms} }}\n}}\n"
        )));
        // A backslash before a newline escapes nothing: the next line is read.
        let hidden = format!(
            "\"\\\nflow f {{ map m = a -> B {{ x = {} }} }}\n",
            deep(100_000)
        );
        assert!(too_deep(&hidden));
        // A keyword the grammar reads glued to `if` opens one as well.
        for glued in ["thenif", "whereif", "eachif"] {
            let chain = |n: usize| {
                let opened = format!("{glued} a ").repeat(n);
                format!("if a {opened}then 1{}", " else 1".repeat(n + 1))
            };
            assert!(counted(&flow(&chain(200))), "{glued}");
            assert!(!too_deep(&flow(&chain(20))), "{glued}");
        }
        let inside = format!("$.a{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(too_deep(&flow(&inside)));
        // A bracket that never closes: pest recursed on every `[` before giving it up,
        // whatever `//` or lone quote the main scan would have read there.
        for open in ["$[//", "$[\"", "$['", "$.a[x//"] {
            let unclosed = format!("{open}{}\n", "[".repeat(100_000));
            assert!(too_deep(&flow(&unclosed)), "{open}");
            assert!(too_deep(&unclosed), "{open} at the end of the input");
        }
    }

    #[test]
    fn parses_a_small_flow() {
        let (module, diags) = parse(
            r#"use std.retail.{Order}
flow f {
  source s = shop.orders { every = 2m }
  map m = s -> Order { id = "x:" + $.id, lines = $.items[*] as it where it.qty > 0 -> Line { sku = it.sku } }
  route r = m { when total.amount > 5 and not paid -> a, b otherwise -> c }
  sink a = erp.create(r) { idempotency_key = id, rate = 10/s }
}
"#,
        );
        assert!(!diags.has_errors(), "{diags:?}");
        assert_eq!(module.items.len(), 2);
    }

    #[test]
    fn reserved_words_are_refused_as_names_and_kept_as_field_names() {
        for word in KEYWORDS {
            // Each place a name is declared or read; the reserved word stands in one of them.
            let places = [
                format!("schema {word} {{ x: string }}"),
                format!("connection {word} = http {{ base_url = \"x\" }}"),
                format!("flow f {{ map {word} = s -> A {{ x = 1 }} }}"),
                format!("flow f {{ map m = {word} -> A {{ x = 1 }} }}"),
                format!("flow f {{ map m = s -> A {{ let {word} = 1\n x = 1 }} }}"),
                format!("flow f {{ map m = s -> A {{ x = $.a[*] as {word} -> 1 }} }}"),
                format!("flow f {{ route r = m {{ otherwise -> {word} }} }}"),
                format!("flow f {{ map m = s -> A {{ x = {word}\n y = 1 }} }}"),
            ];
            // `true`, `false` and `null` are values where an expression stands.
            let literal = matches!(*word, "true" | "false" | "null");
            for text in places.iter().take(if literal { 7 } else { 8 }) {
                let (_, diags) = parse(text);
                let refused = diags.as_slice().iter().any(|d| {
                    d.code.id == "E0001"
                        && d.message.contains(&format!("`{word}` is a reserved word"))
                });
                // A keyword that starts an expression may fail as that expression first.
                assert!(diags.has_errors(), "{text}: accepted");
                let expression_led = text.contains(&format!("x = {word}\n"));
                assert!(refused || expression_led, "{text}: {diags:?}");
            }
            // As a field name it is an ordinary name.
            let text = format!(
                "schema S {{ {word}: string }}\nflow f {{ map m = s -> S {{ {word} = $.{word} ?? x.{word} }} }}"
            );
            let (module, diags) = parse(&text);
            assert!(!diags.has_errors(), "{text}: {diags:?}");
            assert_eq!(module.items.len(), 2);
        }
    }

    #[test]
    fn a_field_whose_name_starts_with_let_is_a_field() {
        let text = "flow f { map m = s -> S { letter = 1\n let_go = 2\n letin = 3\n let x = 4\n lets = x } }";
        let (module, diags) = parse(text);
        assert!(!diags.has_errors(), "{diags:?}");
        let Some(Item::Flow(flow)) = module.items.first() else {
            panic!("{module:?}")
        };
        let Some(Stmt::Map { record, .. }) = flow.stmts.first() else {
            panic!("{flow:?}")
        };
        let items: Vec<String> = record
            .items
            .iter()
            .map(|item| match item {
                RecordItem::Let(name, _) => format!("let {}", name.name),
                RecordItem::Field(name, _) => name.name.clone(),
            })
            .collect();
        assert_eq!(items, ["letter", "let_go", "letin", "let x", "lets"]);
    }

    #[test]
    fn a_name_that_starts_with_if_is_a_name() {
        let mut diags = Diagnostics::default();
        let text = "if a and ifrs_code == 1 then iffy else if ifx then 2 else ifz";
        let expr = parse_expr(FileId(0), text, &mut diags).expect("parses");
        assert!(!diags.has_errors(), "{diags:?}");
        let ExprKind::If(cond, then, otherwise) = &expr.kind else {
            panic!("{expr:?}")
        };
        let ExprKind::Binary(BinOp::And, _, right) = &cond.kind else {
            panic!("{cond:?}")
        };
        assert!(
            matches!(&right.kind, ExprKind::Binary(BinOp::Eq, name, _) if matches!(&name.kind, ExprKind::Var(v) if v.name == "ifrs_code")),
            "{right:?}"
        );
        assert!(
            matches!(&then.kind, ExprKind::Var(v) if v.name == "iffy"),
            "{then:?}"
        );
        let ExprKind::If(inner, _, last) = &otherwise.kind else {
            panic!("{otherwise:?}")
        };
        assert!(
            matches!(&inner.kind, ExprKind::Var(v) if v.name == "ifx"),
            "{inner:?}"
        );
        assert!(
            matches!(&last.kind, ExprKind::Var(v) if v.name == "ifz"),
            "{last:?}"
        );
    }

    #[test]
    fn a_record_item_that_is_neither_a_field_nor_let_says_so() {
        let (_, diags) = parse("flow f { map m = s -> A { \"x\" = 1 } }");
        let message = &diags.as_slice()[0].message;
        assert!(
            message.contains("`let`") && message.contains("a field name"),
            "{message}"
        );
    }

    #[test]
    fn recovers_at_the_next_item() {
        let (module, diags) =
            parse("schema A { x: }\nschema B { y: string }\nflow { }\nenum C { a }\n");
        assert_eq!(diags.error_count(), 2, "{diags:?}");
        assert_eq!(module.items.len(), 2);
    }

    /// The body of the first sink of the only connector in `module`.
    fn first_sink_body(module: &Module) -> &OperationBody {
        match &module.items[0] {
            Item::Connector(c) => &c.sinks[0].body,
            other => panic!("not a connector: {other:?}"),
        }
    }

    #[test]
    fn overwrites_is_a_whole_word_of_an_operation_body() {
        let (module, diags) = parse(
            "connector c {\n  setting overwrites_at: string?\n  sink s(json) -> json {\n    option overwrites_count: int?\n    needs overwrites_at\n    overwrites\n  }\n}\nschema S { overwrites: bool, overwrites_x: int }\n",
        );
        assert!(!diags.has_errors(), "{diags:?}");
        let body = first_sink_body(&module);
        assert!(body.overwrites.is_some());
        assert_eq!(body.options[0].name.name, "overwrites_count");
        assert_eq!(body.needs[0].settings[0].name, "overwrites_at");
        assert!(!body.is_quota_only());

        let (_, diags) = parse("connector c {\n  sink s(json) -> json { overwritesx }\n}\n");
        assert_eq!(diags.as_slice()[0].code.id, "E0001", "{diags:?}");
    }

    #[test]
    fn a_second_quota_is_reported_not_silently_taken() {
        for text in [
            "connector c {\n  quota { rate = 1/s }\n  quota { rate = 9/s }\n}\n",
            "connector c {\n  sink s(json) -> json {\n    quota { rate = 1/s }\n    quota { rate = 9/s }\n  }\n}\n",
        ] {
            let (_, diags) = parse(text);
            let found: Vec<_> = diags.as_slice().iter().map(|d| (d.code.id, d.message.clone())).collect();
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].0, "E0110");
            assert!(found[0].1.contains("`quota` is given twice"), "{found:?}");
        }
    }

    #[test]
    fn overwrites_given_twice_is_reported_once() {
        let (module, diags) = parse(
            "connector c {\n  sink s(json) -> json {\n    overwrites\n    overwrites\n  }\n}\n",
        );
        assert_eq!(diags.error_count(), 1, "{diags:?}");
        let report = &diags.as_slice()[0];
        assert_eq!(report.code.id, "E0110");
        assert_eq!(
            report.labels.len(),
            2,
            "the second, and the first beside it"
        );
        assert!(first_sink_body(&module).overwrites.is_some());
    }

    #[test]
    fn whitespace_and_name_characters_beyond_ascii_are_refused_once_per_file() {
        let valid = "schema A { x: string }\nflow f {\n  source s = c.orders\n}\n";
        let (module, diags) = parse(valid);
        assert!(!diags.has_errors(), "{diags:?}");
        assert_eq!(module.items.len(), 2);
        for (foreign, name) in [
            ('\u{0C}', "U+000C FORM FEED"),
            ('\u{2028}', "U+2028 LINE SEPARATOR"),
        ] {
            let text = valid
                .replace("x: ", &format!("x:{foreign}"))
                .replace("s = ", &format!("s ={foreign}"));
            let (module, diags) = parse(&text);
            let found: Vec<_> = diags
                .as_slice()
                .iter()
                .map(|d| (d.code.id, d.message.clone()))
                .collect();
            assert_eq!(found.len(), 1, "{found:?}");
            assert_eq!(found[0].0, "E0001");
            assert_eq!(
                found[0].1,
                format!("{name} is not whitespace in a flow file (and one more in this file)")
            );
            // Read as a space, so the rest of the file is checked.
            assert_eq!(module.items.len(), 2, "{name}");
            // At the end of a file, the same report and nothing more.
            let (_, diags) = parse(&format!("{valid}{foreign}"));
            assert_eq!(diags.error_count(), 1, "{diags:?}");
            // In strings and comments they are text.
            let (_, diags) = parse(&format!(
                "// a{foreign}b\ntable t: string -> string = {{ \"a{foreign}\": \"b\" }}\n"
            ));
            assert!(!diags.has_errors(), "{diags:?}");
        }
        // A name with a letter beyond ASCII: one report, and the name read whole.
        let (module, diags) = parse(&valid.replace("schema A", "schema Café"));
        let found: Vec<_> = diags.as_slice().iter().map(|d| d.message.clone()).collect();
        assert_eq!(
            found,
            ["`é` (U+00E9) can stand only in a string or a comment"]
        );
        assert_eq!(module.items.len(), 2);
        // Other Unicode spaces are not skipped at all: a syntax error, as before.
        let (_, diags) = parse(&valid.replace("x: ", "x:\u{A0}"));
        assert!(
            diags
                .as_slice()
                .iter()
                .all(|d| !d.message.contains("whitespace")),
            "{diags:?}"
        );
        assert!(diags.has_errors());
    }

    #[test]
    fn as_begins_a_mapping_only_as_a_whole_word() {
        let flow = |expr: &str| format!("flow f {{ map m = a -> B {{ x = {expr} }} }}\n");
        let (_, diags) = parse(&flow("xs as x -> x.sku"));
        assert!(!diags.has_errors(), "{diags:?}");
        // Read as `xs as set -> set`, it nested without the nesting check seeing an `as`.
        let (_, diags) = parse(&flow("xs asset -> set"));
        assert!(diags.has_errors());
    }

    #[test]
    fn a_failed_alternative_does_not_read_its_brackets_again_at_every_level() {
        // Each of these took twice (or four times) as long per level: at 60 levels, forever.
        let flow = |expr: &str| format!("flow f {{ map m = a -> B {{ x = {expr} }} }}\n");
        let n = 60;
        for expr in [
            format!("{}1{}", "if(".repeat(n), ")".repeat(n)),
            format!("{}1{}", "if a then 1 else if(".repeat(n), ")".repeat(n)),
            format!("${}\n", "[".repeat(n)),
            // A head's last part stopped at an operand it could not read (a typo deep
            // inside); the chain around it read the same operand again.
            format!("{}y y{}", "xs as y -> y + (".repeat(n), ")".repeat(n)),
            format!("{}y y{}", "if a then b else c + (".repeat(n), ")".repeat(n)),
            format!("{}y y{}", "xs as y -> y[".repeat(n), "]".repeat(n)),
            format!(
                "{}y y{}",
                "xs as y -> xs as z -> z * (".repeat(40),
                ")".repeat(40)
            ),
            format!(
                "{}y y{}",
                "if a then b else xs as y -> (".repeat(40),
                ")".repeat(40)
            ),
        ] {
            let (_, diags) = parse(&flow(&expr));
            assert!(diags.has_errors(), "{expr}");
        }
        // What those rules read is read as before.
        for expr in [
            "if a then 1 else if b then 2 else if c then 3 else 4",
            "if a then 1 else (if b then 2 else 3)",
            "iffy(1) + ifs[0]",
            "$.items[?@.tags[0] == 'a[b'][*].sku",
            "$['a[b'][0]",
        ] {
            let (_, diags) = parse(&flow(expr));
            assert!(!diags.has_errors(), "{expr}: {diags:?}");
        }
    }

    /// An expression's tree, bracketed: `(+ a b)`, `(as xs y [filter] body)`, `(if c t e)`.
    fn shape(expr: &Expr) -> String {
        match &expr.kind {
            ExprKind::Var(name) => name.name.clone(),
            ExprKind::Lit(Literal::Int(value)) => value.to_string(),
            ExprKind::Member(base, field) => format!("{}.{}", shape(base), field.name),
            ExprKind::Index(base, index) => format!("{}[{}]", shape(base), shape(index)),
            ExprKind::AllItems(base) => format!("{}[*]", shape(base)),
            ExprKind::Binary(op, left, right) => {
                format!("({op:?} {} {})", shape(left), shape(right))
            }
            ExprKind::Unary(op, operand) => format!("({op:?} {})", shape(operand)),
            ExprKind::If(cond, then, otherwise) => {
                format!("(if {} {} {})", shape(cond), shape(then), shape(otherwise))
            }
            ExprKind::EachMap {
                source,
                var,
                filter,
                body,
            } => match filter {
                Some(filter) => format!(
                    "(as {} {} [{}] {})",
                    shape(source),
                    var.name,
                    shape(filter),
                    shape(body)
                ),
                None => format!("(as {} {} {})", shape(source), var.name, shape(body)),
            },
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn a_heads_last_part_is_the_rest_of_its_chain() {
        for (text, expected) in [
            ("a + xs as y -> y + 1", "(Add a (as xs y (Add y 1)))"),
            ("- xs as y -> y", "(Neg (as xs y y))"),
            (
                "xs.items[0] as y where y > 1 -> y.sku",
                "(as xs.items[0] y [(Gt y 1)] y.sku)",
            ),
            (
                "xs as y -> ys as z -> z * y",
                "(as xs y (as ys z (Mul z y)))",
            ),
            ("if c then 1 else 2 + 3", "(if c 1 (Add 2 3))"),
            (
                "a ?? if c then 1 else 2 ?? 3",
                "(Coalesce a (if c 1 (Coalesce 2 3)))",
            ),
            ("not if c then a else b == d", "(Not (if c a (Eq b d)))"),
            (
                "if a then 1 else if b then 2 else xs as y -> y",
                "(if a 1 (if b 2 (as xs y y)))",
            ),
            ("xs as y -> if c then y else 0", "(as xs y (if c y 0))"),
            ("(if c then 1 else 2) + 3", "(Add (if c 1 2) 3)"),
            ("a * (xs as y -> y) + 1", "(Add (Mul a (as xs y y)) 1)"),
            // A last part in brackets: the expression ends at the closing bracket.
            ("if c then 1 else (2)", "(if c 1 2)"),
            ("xs as y -> (y)", "(as xs y y)"),
        ] {
            let mut diags = Diagnostics::default();
            let expr = parse_expr(FileId(0), text, &mut diags).expect(text);
            assert!(!diags.has_errors(), "{text}: {diags:?}");
            assert_eq!(shape(&expr), expected, "{text}");
            // Every expression spans its whole text (a bracketed operand spans its inside).
            let start = u32::from(text.starts_with('('));
            assert_eq!(
                (expr.span.start, expr.span.end),
                (start, text.len() as u32),
                "{text}"
            );
        }
    }

    #[test]
    fn a_heads_own_parts_sit_below_the_chain_before_it_not_after_it() {
        // 250 operators after the head are its last branch's; the condition in five brackets
        // is one level down from the head, not 250.
        let tail = " + 1".repeat(250);
        for text in [
            format!("if (((((true))))) then 1 else 1{tail}"),
            format!("[1] as y where (((((true))))) -> 1{tail}"),
        ] {
            let mut diags = Diagnostics::default();
            parse_expr(FileId(0), &text, &mut diags).expect("parsed");
            assert!(!diags.has_errors(), "{diags:?}");
        }
        // Before the head, they count: the same condition after 250 operators is too deep.
        let text = format!("1{tail} + (if (((((true))))) then 1 else 1)");
        let mut diags = Diagnostics::default();
        parse_expr(FileId(0), &text, &mut diags);
        assert!(diags.has_errors(), "{text}");
    }

    #[test]
    fn reports_unterminated_strings() {
        let (_, diags) = parse("connection a = http { url = \"http://x }\n");
        assert_eq!(diags.as_slice()[0].code.id, "E0002");
    }
}
