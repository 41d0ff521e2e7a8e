//! The formatter: prints the syntax tree in the canonical layout, keeping every comment
//! and at most one blank line between elements. Formatting its own output changes nothing.

mod expr;

use crate::diagnostics::Diagnostics;
use crate::source::FileId;
use crate::syntax::ast::*;
use crate::syntax::comments::{self, Comment};
use crate::syntax::parse::escape;

const INDENT: &str = "  ";
const MAX_INLINE: usize = 90;

/// Formats one file. Fails (leaving the text alone) when it does not parse, or when a
/// comment sits inside an expression where it could not be kept.
pub fn format_source(text: &str) -> Result<String, String> {
    let mut diags = Diagnostics::default();
    let module = crate::syntax::parse_module(FileId(0), text, &mut diags);
    if diags.has_errors() {
        return Err("the file has syntax errors; run `omniflowc check` first".to_string());
    }
    let mut printer = Printer {
        src: text,
        comments: comments::scan(text),
        next_comment: 0,
        out: String::with_capacity(text.len() + text.len() / 8),
        indent: 0,
        last_end: 0,
    };
    for (idx, item) in module.items.iter().enumerate() {
        let span = item.span();
        printer.leading(span.start, idx > 0);
        printer.start_line();
        printer.item(item);
        printer.trailing(span.end);
        printer.newline();
    }
    printer.leading(text.len() as u32, true);
    if printer.next_comment < printer.comments.len() {
        let comment = &printer.comments[printer.next_comment];
        let line = text[..comment.start as usize].matches('\n').count() + 1;
        return Err(format!(
            "a comment inside an expression (line {line}) cannot be kept; move it onto its own line"
        ));
    }
    let mut out = printer.out;
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

struct Printer<'a> {
    src: &'a str,
    comments: Vec<Comment>,
    next_comment: usize,
    out: String,
    indent: usize,
    /// End of the last printed element or comment, in source offsets.
    last_end: u32,
}

impl Printer<'_> {
    fn push(&mut self, text: &str) {
        self.out.push_str(text);
    }

    fn start_line(&mut self) {
        for _ in 0..self.indent {
            self.out.push_str(INDENT);
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
    }

    fn blank_between(&self, from: u32, to: u32) -> bool {
        let gap = self.src.get(from as usize..to as usize).unwrap_or("");
        gap.matches('\n').count() >= 2
    }

    /// Emits the comments before `pos` on their own lines, and one blank line where
    /// the source had at least one.
    fn leading(&mut self, pos: u32, allow_blank: bool) {
        let mut first = true;
        while let Some(comment) = self.comments.get(self.next_comment).cloned() {
            if comment.start >= pos {
                break;
            }
            if (allow_blank || !first) && self.blank_between(self.last_end, comment.start) {
                self.newline();
            }
            first = false;
            self.start_line();
            self.push(comment.text.trim_end());
            self.newline();
            self.last_end = comment.end;
            self.next_comment += 1;
        }
        if (allow_blank || !first)
            && pos as usize <= self.src.len()
            && self.blank_between(self.last_end, pos)
        {
            self.newline();
        }
        self.last_end = pos;
    }

    /// Emits a comment that follows `end` on the same source line.
    fn trailing(&mut self, end: u32) {
        if let Some(comment) = self.comments.get(self.next_comment).cloned() {
            let between = self
                .src
                .get(end as usize..comment.start as usize)
                .unwrap_or("\n");
            if comment.start >= end && !between.contains('\n') {
                self.push(" ");
                self.push(comment.text.trim_end());
                self.next_comment += 1;
                self.last_end = comment.end;
                return;
            }
        }
        self.last_end = self.last_end.max(end);
    }

    fn has_comment_within(&self, start: u32, end: u32) -> bool {
        self.comments[self.next_comment..]
            .iter()
            .any(|c| c.start > start && c.start < end)
    }

    /// Opens a block: ` {`, newline, indent.
    fn open(&mut self) {
        self.push(" {");
        self.newline();
        self.indent += 1;
    }

    /// Closes a block, flushing comments before the closing brace.
    fn close(&mut self, block_end: u32) {
        self.leading(block_end.saturating_sub(1), false);
        self.indent -= 1;
        self.start_line();
        self.push("}");
        self.last_end = block_end;
    }

    /// One element per line inside a block.
    fn each_line<T>(
        &mut self,
        elems: &[T],
        span_of: impl Fn(&T) -> crate::source::Span,
        mut print: impl FnMut(&mut Self, &T),
    ) {
        for (idx, elem) in elems.iter().enumerate() {
            let span = span_of(elem);
            self.leading(span.start, idx > 0);
            self.start_line();
            print(self, elem);
            self.trailing(span.end);
            self.newline();
        }
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Use(decl) => {
                self.push("use ");
                match &decl.target {
                    UseTarget::Module(parts) => {
                        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
                        self.push(&names.join("."));
                    }
                    UseTarget::File(path) => self.push(&escape(&path.value)),
                }
                if let Some(names) = &decl.names {
                    let names: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
                    self.push(&format!(".{{{}}}", names.join(", ")));
                }
                self.last_end = decl.span.end;
            }
            Item::Schema(decl) => {
                self.push(&format!("schema {}", decl.name.name));
                self.open();
                self.each_line(
                    &decl.fields,
                    |f| f.span,
                    |p, field| {
                        p.push(&format!("{}: ", field.name.name));
                        p.type_expr(&field.ty);
                        if let Some(default) = &field.default {
                            p.push(" = ");
                            p.expr(default);
                        }
                    },
                );
                self.close(decl.span.end);
            }
            Item::Enum(decl) => {
                let names: Vec<&str> = decl.variants.iter().map(|v| v.name.as_str()).collect();
                let inline = format!("enum {} {{ {} }}", decl.name.name, names.join(", "));
                if inline.len() <= MAX_INLINE
                    && !self.has_comment_within(decl.span.start, decl.span.end)
                {
                    self.push(&inline);
                    self.last_end = decl.span.end;
                } else {
                    self.push(&format!("enum {}", decl.name.name));
                    self.open();
                    self.each_line(&decl.variants, |v| v.span, |p, v| p.push(&v.name));
                    self.close(decl.span.end);
                }
            }
            Item::Connection(decl) => {
                self.push(&format!(
                    "connection {} = {}",
                    decl.name.name, decl.connector.name
                ));
                self.settings(&decl.settings);
            }
            Item::Table(decl) => {
                self.push(&format!("table {}: ", decl.name.name));
                self.type_expr(&decl.key_ty);
                self.push(" -> ");
                self.type_expr(&decl.value_ty);
                self.push(" = ");
                match &decl.source {
                    TableSource::File { path, options } => {
                        self.push(&format!("file({}", escape(&path.value)));
                        for option in options {
                            self.push(&format!(", {} = ", option.name.name));
                            self.expr(&option.value);
                        }
                        self.push(")");
                        self.last_end = decl.span.end;
                    }
                    TableSource::Inline(entries) => {
                        self.push("{");
                        self.newline();
                        self.indent += 1;
                        self.each_line(
                            entries,
                            |(k, v)| k.span.to(v.span),
                            |p, (key, value)| {
                                p.push(&format!("{}: ", escape(&key.value)));
                                p.expr(value);
                            },
                        );
                        self.close(decl.span.end);
                    }
                }
            }
            Item::Policy(decl) => {
                self.push(&format!("policy {} {}", decl.kind.name, decl.name.name));
                self.settings_block(&decl.settings);
            }
            Item::Connector(decl) => self.connector(decl),
            Item::Ledger(decl) => {
                self.push(&format!("ledger {}", decl.name.name));
                self.open();
                self.each_line(
                    &decl.members,
                    LedgerMember::span,
                    |p, member| match member {
                        LedgerMember::Setting(entry) => {
                            p.push(&format!("{} = ", entry.name.name));
                            p.expr(&entry.value);
                        }
                        LedgerMember::Channel { name, settings, .. } => {
                            p.push(&format!("channel {}", name.name));
                            p.settings(settings);
                        }
                    },
                );
                self.close(decl.span.end);
            }
            Item::Flow(decl) => {
                self.push(&format!("flow {}", decl.name.name));
                self.open();
                self.each_line(&decl.stmts, Stmt::span, |p, stmt| p.stmt(stmt));
                self.close(decl.span.end);
            }
        }
    }

    fn connector(&mut self, decl: &ConnectorDecl) {
        enum Member<'m> {
            Setting(&'m SettingSig),
            Quota(&'m Settings),
            Auth(&'m AuthSig),
            Rule(&'m Block),
            Source(&'m SourceSig),
            Sink(&'m SinkSig),
        }
        let mut members: Vec<(u32, Member)> = Vec::new();
        members.extend(
            decl.settings
                .iter()
                .map(|s| (s.span.start, Member::Setting(s))),
        );
        if let Some(q) = &decl.quota {
            // The quota keyword precedes its block; find it for ordering.
            let start = self.src[..q.span.start as usize]
                .rfind("quota")
                .map_or(q.span.start, |i| i as u32);
            members.push((start, Member::Quota(q)));
        }
        members.extend(decl.auth.iter().map(|a| (a.span.start, Member::Auth(a))));
        members.extend(decl.rules.iter().map(|r| {
            let start = self.src[..r.span.start as usize]
                .rfind("rule")
                .map_or(r.span.start, |i| i as u32);
            (start, Member::Rule(r))
        }));
        members.extend(
            decl.sources
                .iter()
                .map(|s| (s.span.start, Member::Source(s))),
        );
        members.extend(decl.sinks.iter().map(|s| (s.span.start, Member::Sink(s))));
        members.sort_by_key(|(start, _)| *start);
        self.push(&format!("connector {}", decl.name.name));
        self.open();
        for (idx, (start, member)) in members.iter().enumerate() {
            self.leading(*start, idx > 0);
            self.start_line();
            let end = match member {
                Member::Setting(s) => {
                    self.push(&format!("setting {}: ", s.name.name));
                    self.type_expr(&s.ty);
                    if let Some(default) = &s.default {
                        self.push(" = ");
                        self.expr(default);
                    }
                    s.span.end
                }
                Member::Quota(q) => {
                    self.push("quota");
                    self.settings(q);
                    q.span.end
                }
                Member::Auth(a) => {
                    self.push(&format!("auth {}", a.kind.name));
                    self.block(&a.block);
                    a.span.end
                }
                Member::Rule(r) => {
                    self.push("rule");
                    self.block(r);
                    r.span.end
                }
                Member::Source(s) => {
                    self.push(&format!("source {}: {} -> ", s.name.name, s.kind.name));
                    self.type_expr(&s.output);
                    self.operation_body(&s.body, s.span.end);
                    s.span.end
                }
                Member::Sink(s) => {
                    self.push(&format!("sink {}(", s.name.name));
                    self.type_expr(&s.input);
                    self.push(")");
                    if let Some(output) = &s.output {
                        self.push(" -> ");
                        self.type_expr(output);
                    }
                    self.operation_body(&s.body, s.span.end);
                    s.span.end
                }
            };
            self.trailing(end);
            self.newline();
        }
        self.close(decl.span.end);
    }

    /// An operation's quota alone as ` { rate = ... }`; with options, needs or
    /// `overwrites`, one member per line.
    fn operation_body(&mut self, body: &OperationBody, end: u32) {
        enum Member<'m> {
            Quota(&'m Settings),
            Option(&'m OptionSig),
            Needs(&'m NeedsSig),
            Overwrites(crate::source::Span),
            Implementation(&'m BlockEntry),
        }
        if body.is_quota_only() {
            if let Some(quota) = &body.quota {
                self.settings(quota);
            }
            return;
        }
        let mut members: Vec<(u32, Member)> = Vec::new();
        if let Some(q) = &body.quota {
            let start = self.src[..q.span.start as usize]
                .rfind("quota")
                .map_or(q.span.start, |i| i as u32);
            members.push((start, Member::Quota(q)));
        }
        members.extend(
            body.options
                .iter()
                .map(|o| (o.span.start, Member::Option(o))),
        );
        members.extend(body.needs.iter().map(|n| (n.span.start, Member::Needs(n))));
        members.extend(
            body.overwrites
                .map(|span| (span.start, Member::Overwrites(span))),
        );
        members.extend(
            body.implementation
                .iter()
                .map(|e| (e.span.start, Member::Implementation(e))),
        );
        members.sort_by_key(|(start, _)| *start);
        self.open();
        for (idx, (start, member)) in members.iter().enumerate() {
            self.leading(*start, idx > 0);
            self.start_line();
            let member_end = match member {
                Member::Quota(q) => {
                    self.push("quota");
                    self.settings(q);
                    q.span.end
                }
                Member::Option(o) => {
                    self.push(&format!("option {}: ", o.name.name));
                    self.type_expr(&o.ty);
                    if let Some(default) = &o.default {
                        self.push(" = ");
                        self.expr(default);
                    }
                    if let Some(max) = &o.max {
                        self.push(" max ");
                        self.expr(max);
                    }
                    o.span.end
                }
                Member::Needs(n) => {
                    let names: Vec<&str> = n.settings.iter().map(|s| s.name.as_str()).collect();
                    self.push(&format!("needs {}", names.join(", ")));
                    n.span.end
                }
                Member::Overwrites(span) => {
                    self.push("overwrites");
                    span.end
                }
                Member::Implementation(entry) => {
                    self.block_entry(entry);
                    entry.span.end
                }
            };
            self.trailing(member_end);
            self.newline();
        }
        self.close(end);
    }

    fn type_expr(&mut self, ty: &TypeExpr) {
        match &ty.kind {
            TypeKind::Named(name) => self.push(&name.name),
            TypeKind::List(elem) => {
                self.push("[");
                self.type_expr(elem);
                self.push("]");
            }
        }
        if ty.optional {
            self.push("?");
        }
    }

    /// ` { a = 1, b = 2 }` when short, one setting per line otherwise.
    fn settings(&mut self, settings: &Settings) {
        if settings.entries.is_empty() {
            self.push(" {}");
            self.last_end = settings.span.end;
            return;
        }
        if !self.has_comment_within(settings.span.start, settings.span.end)
            && self.inline(&settings.entries, settings.span.end, |p, entry| {
                p.push(&format!("{} = ", entry.name.name));
                p.expr(&entry.value);
            })
        {
            return;
        }
        self.settings_block(settings);
    }

    /// Prints ` { a, b }` (each entry by `print`, on one line) when it fits the line and
    /// `end` closes it; false, printing nothing, when it does not.
    fn inline<T>(&mut self, entries: &[T], end: u32, print: impl Fn(&mut Self, &T)) -> bool {
        let mut inline = Printer {
            src: self.src,
            comments: Vec::new(),
            next_comment: 0,
            out: String::new(),
            indent: 0,
            last_end: 0,
        };
        for (idx, entry) in entries.iter().enumerate() {
            if idx > 0 {
                inline.push(", ");
            }
            print(&mut inline, entry);
        }
        if inline.out.contains('\n') || self.line_len() + inline.out.len() + 4 > MAX_INLINE {
            return false;
        }
        self.push(&format!(" {{ {} }}", inline.out));
        self.last_end = end;
        true
    }

    /// A declared connector's block: ` { a = 1, b = 2 }` when short and flat, one entry
    /// per line otherwise.
    fn block(&mut self, block: &Block) {
        if block.entries.is_empty() {
            self.push(" {}");
            self.last_end = block.span.end;
            return;
        }
        let flat = block
            .entries
            .iter()
            .all(|e| matches!(e.value, BlockValue::Expr(_)));
        if flat
            && !self.has_comment_within(block.span.start, block.span.end)
            && self.inline(&block.entries, block.span.end, Self::block_entry)
        {
            return;
        }
        self.open();
        self.each_line(&block.entries, |e| e.span, |p, entry| p.block_entry(entry));
        self.close(block.span.end);
    }

    fn block_entry(&mut self, entry: &BlockEntry) {
        self.push(&entry.name.name);
        match &entry.value {
            BlockValue::Block(block) => self.block(block),
            BlockValue::Json(json, _) => {
                self.push(" = ");
                self.json(json);
            }
            // A long list (a GraphQL operation's lines) gets an item per line.
            BlockValue::Expr(Expr {
                kind: ExprKind::List(items),
                span,
            }) if self
                .src
                .get(span.start as usize..span.end as usize)
                .is_some_and(|t| t.contains('\n'))
                || self.line_len() + 3 + (span.end - span.start) as usize > MAX_INLINE =>
            {
                self.push(" = ");
                self.one_per_line(items, Self::expr);
            }
            BlockValue::Expr(expr) => {
                self.push(" = ");
                self.expr(expr);
            }
        }
    }

    /// `[` items one per line, comma-separated, `]`.
    fn one_per_line<T>(&mut self, items: &[T], print: fn(&mut Self, &T)) {
        self.push("[");
        self.indent += 1;
        for (idx, item) in items.iter().enumerate() {
            self.newline();
            self.start_line();
            print(self, item);
            if idx + 1 < items.len() {
                self.push(",");
            }
        }
        self.indent -= 1;
        self.newline();
        self.start_line();
        self.push("]");
    }

    /// The length of the line being written.
    fn line_len(&self) -> usize {
        self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1)
    }

    fn settings_block(&mut self, settings: &Settings) {
        self.open();
        self.each_line(
            &settings.entries,
            |s| s.span,
            |p, entry| {
                p.push(&format!("{} = ", entry.name.name));
                p.expr(&entry.value);
            },
        );
        self.close(settings.span.end);
    }

    fn stmt(&mut self, stmt: &Stmt) {
        match stmt {
            Stmt::Source {
                name,
                op,
                settings,
                span,
            } => {
                self.push(&format!(
                    "source {} = {}.{}",
                    name.name, op.connection.name, op.name.name
                ));
                match settings {
                    Some(settings) => self.settings(settings),
                    None => self.last_end = span.end,
                }
            }
            Stmt::Map {
                name,
                input,
                record,
                ..
            } => {
                self.push(&format!("map {} = {} -> ", name.name, input.name));
                self.record(record);
            }
            Stmt::Filter {
                name, input, cond, ..
            } => {
                self.push(&format!("filter {} = {} when ", name.name, input.name));
                self.expr(cond);
            }
            Stmt::Route {
                name,
                input,
                arms,
                otherwise,
                span,
            } => {
                self.push(&format!("route {} = {}", name.name, input.name));
                self.open();
                self.each_line(
                    arms,
                    |a| a.span,
                    |p, arm| {
                        p.push("when ");
                        p.expr(&arm.cond);
                        p.push(" -> ");
                        p.targets(&arm.targets);
                    },
                );
                if let Some(targets) = otherwise {
                    let start = targets.first().map_or(span.end, |t| t.span.start);
                    let start = self.src[..start as usize]
                        .rfind("otherwise")
                        .map_or(start, |i| i as u32);
                    self.leading(start, !arms.is_empty());
                    self.start_line();
                    self.push("otherwise -> ");
                    self.targets(targets);
                    self.trailing(targets.last().map_or(start, |t| t.span.end));
                    self.newline();
                }
                self.close(span.end);
            }
            Stmt::Split {
                name, input, each, ..
            } => {
                self.push(&format!("split {} = {} each ", name.name, input.name));
                self.expr(each);
            }
            Stmt::Sink {
                name,
                op,
                input,
                settings,
                span,
            } => {
                self.push(&format!(
                    "sink {} = {}.{}({})",
                    name.name, op.connection.name, op.name.name, input.name
                ));
                match settings {
                    Some(settings) => self.settings(settings),
                    None => self.last_end = span.end,
                }
            }
            Stmt::Test(test) => {
                self.push(&format!("test {}", escape(&test.name.value)));
                self.open();
                self.each_line(
                    &test.fields,
                    |f| f.span,
                    |p, field| {
                        p.push(&format!("{} = ", field.name.name));
                        match &field.value {
                            TestValue::File(path) => {
                                p.push(&format!("file({})", escape(&path.value)))
                            }
                            TestValue::Name(n) => p.push(&n.name),
                            TestValue::Names(names) => {
                                let names: Vec<&str> =
                                    names.iter().map(|n| n.name.as_str()).collect();
                                p.push(&format!("[{}]", names.join(", ")));
                            }
                            TestValue::Json(value) => p.json(value),
                        }
                    },
                );
                self.close(test.span.end);
            }
        }
    }

    fn targets(&mut self, targets: &[Ident]) {
        let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
        self.push(&names.join(", "));
    }

    fn json(&mut self, value: &JsonLit) {
        let compact = json_compact(value);
        let line_len = self.out.len() - self.out.rfind('\n').map_or(0, |i| i + 1);
        if line_len + compact.len() <= MAX_INLINE {
            self.push(&compact);
            return;
        }
        match value {
            JsonLit::Object(members) => {
                self.push("{");
                self.indent += 1;
                for (idx, (key, member)) in members.iter().enumerate() {
                    self.newline();
                    self.start_line();
                    self.push(&escape(key));
                    self.push(": ");
                    self.json(member);
                    if idx + 1 < members.len() {
                        self.push(",");
                    }
                }
                self.indent -= 1;
                self.newline();
                self.start_line();
                self.push("}");
            }
            JsonLit::Array(items) => self.one_per_line(items, Self::json),
            _ => self.push(&compact),
        }
    }

    /// A record: `Type {` items `}`; used by maps and record expressions.
    fn record(&mut self, record: &Record) {
        self.push(&record.ty.name);
        if record.items.is_empty() {
            self.push(" {}");
            self.last_end = record.span.end;
            return;
        }
        self.open();
        let span_of = |item: &RecordItem| match item {
            RecordItem::Let(name, value) | RecordItem::Field(name, value) => {
                name.span.to(value.span)
            }
        };
        for (idx, item) in record.items.iter().enumerate() {
            let span = span_of(item);
            let start = match item {
                RecordItem::Let(..) => self.src[..span.start as usize]
                    .rfind("let")
                    .map_or(span.start, |i| i as u32),
                RecordItem::Field(..) => span.start,
            };
            self.leading(start, idx > 0);
            self.start_line();
            match item {
                RecordItem::Let(name, value) => {
                    self.push(&format!("let {} = ", name.name));
                    self.expr(value);
                }
                RecordItem::Field(name, value) => {
                    self.push(&format!("{} = ", name.name));
                    self.expr(value);
                }
            }
            self.trailing(span.end);
            self.newline();
        }
        self.close(record.span.end);
    }
}

/// JSON on one line, with `, ` and `: ` separators.
fn json_compact(value: &JsonLit) -> String {
    match value {
        JsonLit::Null => "null".into(),
        JsonLit::Bool(b) => b.to_string(),
        JsonLit::Number(text) => text.clone(),
        JsonLit::Str(s) => escape(s),
        JsonLit::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(json_compact)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        JsonLit::Object(members) => format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("{}: {}", escape(k), json_compact(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::format_source;

    #[test]
    fn keeps_comments_and_is_idempotent() {
        let text = "// header\nuse std.retail.{Order,OrderLine}\n\n\n\nflow f {   // the flow\n  // a source\n  source s = shop.orders {every=2m}\n  map m = s -> Order { id = \"a\"+$.id // trailing\n    lines = $.items[*] as it where it.q>0 -> OrderLine { sku = it.sku }\n  }\n}\n";
        let once = format_source(text).unwrap();
        let twice = format_source(&once).unwrap();
        assert_eq!(once, twice);
        for comment in ["// header", "// the flow", "// a source", "// trailing"] {
            assert!(once.contains(comment), "{comment} lost:\n{once}");
        }
        assert!(once.contains("every = 2m"), "{once}");
    }

    #[test]
    fn operation_bodies_keep_their_members_and_short_quotas() {
        let text = "connector c {\n  setting base_url: url\n  source a: poll -> json {rate=1/m}\n  source b: poll -> json { quota {rate=1/m}\n  // the page size\n  option page_size: int? max 250 needs token, base_url }\n  sink s(json) -> json {\n    option path: template = \"/\" // where\n    overwrites   // replaces the record\n    option lane: string?\n  }\n  sink t(json) -> json {overwrites quota {rate=5/s}}\n}\n";
        let once = format_source(text).unwrap();
        assert_eq!(format_source(&once).unwrap(), once);
        let want = "connector c {\n  setting base_url: url\n  source a: poll -> json { rate = 1/m }\n  source b: poll -> json {\n    quota { rate = 1/m }\n    // the page size\n    option page_size: int? max 250\n    needs token, base_url\n  }\n  sink s(json) -> json {\n    option path: template = \"/\" // where\n    overwrites // replaces the record\n    option lane: string?\n  }\n  sink t(json) -> json {\n    overwrites\n    quota { rate = 5/s }\n  }\n}\n";
        assert_eq!(once, want);
    }
}
