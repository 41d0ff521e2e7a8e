//! A flow's `test` blocks: their fields (input, expected output, rejection, sinks, node,
//! source), the nodes they name, and the expected output's fields against the node's
//! schema.

use super::FlowCx;
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::ir::{self, NodeKind};
use crate::source::Span;
use crate::syntax::ast::{Ident, JsonLit, TestDecl, TestValue};
use crate::typeck::settings;
use crate::typeck::types::Ty;
use serde_json::Value;

/// The fields a test block may have (and those of [`super::test_calls::FIELDS`]).
const FIELDS: [&str; 10] = [
    "input",
    "expect",
    "reject",
    "sinks",
    "node",
    "source",
    "answers",
    "requests",
    "dead_letters",
    "env",
];

/// What a test block's fields say, before defaults.
#[derive(Default)]
struct Fields {
    input: Option<Value>,
    /// The input as written (see `ir::Test::input_text`).
    input_text: Option<String>,
    expect: Option<(Value, Span)>,
    reject: Option<String>,
    sinks: Option<Vec<String>>,
    node: Option<String>,
    source: Option<String>,
    /// The connectors' side, when any of its fields is given.
    calls: Option<ir::TestCalls>,
    /// A field had a value of the wrong form (already reported).
    invalid: bool,
}

impl FlowCx<'_> {
    /// Checks a test block; `None` when it cannot run.
    pub(super) fn test(
        &self,
        test: &TestDecl,
        flow: &ir::Flow,
        diags: &mut Diagnostics,
    ) -> Option<ir::Test> {
        settings::duplicate_keys(test.fields.iter().map(|f| &f.name), "test field", diags);
        let mut fields = Fields::default();
        for field in &test.fields {
            self.test_field(&mut fields, field, flow, diags)?;
        }
        // A test that answers a polling source's pages reads its messages from them.
        let polled = fields.calls.as_ref().and_then(|calls| {
            calls.answers.keys().find(|name| {
                flow.node(name)
                    .is_some_and(|n| super::test_calls::is_polled(&n.kind))
            })
        });
        if let (None, Some(source)) = (&fields.input, polled) {
            fields.input = Some(Value::Null);
            fields.source.get_or_insert_with(|| source.clone());
        }
        let Some(input) = fields.input else {
            diags.push(
                Diagnostic::error(
                    codes::INVALID_TEST,
                    test.name.span,
                    format!("test \"{}\" has no input", test.name.value),
                )
                .label("no `input = ...`")
                .help("add `input = file(\"fixtures/x.json\")` or an inline JSON value"),
            );
            return None;
        };
        let expects_calls = fields
            .calls
            .as_ref()
            .is_some_and(|c| !c.requests.is_empty() || !c.dead_letters.is_empty());
        if fields.expect.is_none()
            && fields.reject.is_none()
            && fields.sinks.is_none()
            && !expects_calls
            && !fields.invalid
        {
            diags.push(
                Diagnostic::error(codes::INVALID_TEST, test.name.span, format!("test \"{}\" expects nothing", test.name.value))
                    .label("no `expect`, `reject` or `sinks`")
                    .help("say what must come out: `expect = {...}`, `reject = \"reason\"` or `sinks = [name]`"),
            );
        }
        let source = fields.source.or_else(|| first_source(flow))?;
        let node = fields.node.or_else(|| default_node(flow))?;
        if let Some((Value::Object(map), span)) = &fields.expect {
            self.expected_fields(&node, map, *span, diags);
        }
        Some(ir::Test {
            name: test.name.value.clone(),
            source,
            node,
            input,
            input_text: fields.input_text,
            expect: fields.expect.map(|(v, _)| v),
            reject: fields.reject,
            sinks: fields.sinks,
            calls: fields.calls,
        })
    }

    /// Reads one field into `fields`; `None` when a fixture cannot be read (the test
    /// cannot run).
    fn test_field(
        &self,
        fields: &mut Fields,
        field: &crate::syntax::ast::TestField,
        flow: &ir::Flow,
        diags: &mut Diagnostics,
    ) -> Option<()> {
        // Node names a test uses are uses of those nodes (for editors).
        let named: &[Ident] = match &field.value {
            TestValue::Name(name) => std::slice::from_ref(name),
            TestValue::Names(names) => names,
            _ => &[],
        };
        for name in named {
            if let Some(idx) = self.nodes.get(name.name.as_str()) {
                self.note_node(name, *idx);
            }
        }
        match (field.name.name.as_str(), &field.value) {
            ("input", value) | ("expect", value)
                if !matches!(value, TestValue::Name(_) | TestValue::Names(_)) =>
            {
                let (json, text) = self.test_json(value, field.span, diags)?;
                if field.name.name == "input" {
                    fields.input = Some(json);
                    fields.input_text = Some(text);
                } else {
                    fields.expect = Some((exact(json, &text), field.span));
                }
            }
            (name, TestValue::Json(json)) if super::test_calls::FIELDS.contains(&name) => {
                super::test_calls::read(
                    fields.calls.get_or_insert_with(Default::default),
                    name,
                    &json.to_value(),
                    field.span,
                    flow,
                    diags,
                );
            }
            ("reject", TestValue::Json(JsonLit::Str(reason))) => {
                fields.reject = Some(reason.clone())
            }
            ("sinks", TestValue::Json(JsonLit::Array(items))) if items.is_empty() => {
                fields.sinks = Some(Vec::new());
            }
            ("sinks", TestValue::Names(names)) => {
                for name in names {
                    self.test_sink(name, flow, diags);
                }
                fields.sinks = Some(names.iter().map(|n| n.name.clone()).collect());
            }
            ("node", TestValue::Name(n)) => {
                if flow.node(&n.name).is_none() {
                    self.unknown_test_node(n, "node", diags);
                }
                fields.node = Some(n.name.clone());
            }
            ("source", TestValue::Name(n)) => {
                if !flow
                    .nodes
                    .iter()
                    .any(|node| node.name == n.name && matches!(node.kind, NodeKind::Source { .. }))
                {
                    self.unknown_test_node(n, "source", diags);
                }
                fields.source = Some(n.name.clone());
            }
            (name, _) if FIELDS.contains(&name) => {
                fields.invalid = true;
                wrong_form(name, field.span, diags);
            }
            _ => settings::unknown_setting(&field.name, &FIELDS, diags),
        }
        Some(())
    }

    /// A name listed in `sinks` must be a sink of the flow.
    fn test_sink(&self, name: &Ident, flow: &ir::Flow, diags: &mut Diagnostics) {
        match flow.node(&name.name) {
            Some(node) if matches!(node.kind, NodeKind::Sink { .. }) => {}
            Some(node) => diags.push(
                Diagnostic::error(
                    codes::WRONG_NODE_KIND,
                    name.span,
                    format!("`{}` is a {}, not a sink", name.name, node.kind.word()),
                )
                .label("`sinks` lists the sinks a message must reach")
                .help("name sinks here; compare a node's output with `node = name` and `expect = {...}`"),
            ),
            None => self.unknown_test_node(name, "sink", diags),
        }
    }

    /// The expected output may only name fields of the schema node `node` produces.
    fn expected_fields(
        &self,
        node: &str,
        expected: &serde_json::Map<String, Value>,
        span: Span,
        diags: &mut Diagnostics,
    ) {
        let Some(Ty::Record(item)) = self.nodes.get(node).and_then(|idx| self.types.get(idx))
        else {
            return;
        };
        let Some(schema) = self.env.schemas.get(item) else {
            return;
        };
        for key in expected.keys().filter(|key| schema.field(key).is_none()) {
            let help = suggest::did_you_mean(
                key,
                schema.field_names(),
                &format!(
                    "`{}` has the fields {}",
                    schema.name,
                    schema.field_names().join(", ")
                ),
            );
            diags.push(
                Diagnostic::error(
                    codes::UNKNOWN_FIELD,
                    span,
                    format!(
                        "expected output names unknown field `{key}` of `{}`",
                        schema.name
                    ),
                )
                .label(format!("`{}` has no field `{key}`", schema.name))
                .help(help),
            );
        }
    }

    fn unknown_test_node(&self, name: &Ident, what: &str, diags: &mut Diagnostics) {
        let help = suggest::did_you_mean(
            &name.name,
            self.nodes.keys().copied(),
            &format!("name a {what} of flow `{}`", self.decl.name.name),
        );
        diags.push(
            Diagnostic::error(
                codes::UNKNOWN_NODE,
                name.span,
                format!("unknown {what} `{}`", name.name),
            )
            .label(format!(
                "flow `{}` has no {what} of that name",
                self.decl.name.name
            ))
            .help(help),
        );
    }

    /// A test's input or expected output as serde_json reads it and as written, once the
    /// parser production input goes through accepts it (a key given twice, nesting past
    /// its limit or a number past 38 digits is refused as a message would be).
    fn test_json(
        &self,
        value: &TestValue,
        span: Span,
        diags: &mut Diagnostics,
    ) -> Option<(Value, String)> {
        let (text, at, what) = match value {
            TestValue::Json(json) => {
                let mut text = String::new();
                json.to_json_text(&mut text);
                (text, span, "this JSON value".to_string())
            }
            TestValue::File(path) => {
                let text =
                    crate::typeck::read_beside(self.program, self.module, path, "fixture", diags)?;
                (text, path.span, format!("fixture `{}`", path.value))
            }
            _ => return None,
        };
        let whole = omniflow_mapping::json_in::Projection::whole();
        let read = match value {
            // Most test values: what serde_json reads is what the message parser reads.
            TestValue::Json(json) if json.is_plain() => Ok(json.to_value()),
            _ => omniflow_mapping::json_in::parse(text.as_bytes(), &whole)
                .map_err(|e| e.to_string())
                .and_then(|_| serde_json::from_str(&text).map_err(|e| e.to_string())),
        };
        match read {
            Ok(value) => Some((value, text)),
            Err(err) => {
                diags.push(
                    Diagnostic::error(
                        codes::INVALID_TEST,
                        at,
                        format!("{what} cannot be read as a message: {err}"),
                    )
                    .label("read by the parser of production input")
                    .help("fix the JSON: one document, each key once, numbers beyond 38 digits as strings"),
                );
                None
            }
        }
    }
}

/// An expected output to compare by value, every digit (`Val::to_json_exact`): what
/// serde_json read when that is every number as written, else the exact reading of `text`.
fn exact(read: Value, text: &str) -> Value {
    if !needs_exact(&read) {
        return read;
    }
    let whole = omniflow_mapping::json_in::Projection::whole();
    omniflow_mapping::json_in::parse(text.as_bytes(), &whole)
        .map(|v| v.to_json_exact())
        .unwrap_or(read)
}

/// Whether serde_json may have rounded a number of `value`: a float (an integer it read is
/// every digit).
fn needs_exact(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(needs_exact),
        Value::Object(members) => members.values().any(needs_exact),
        _ => false,
    }
}

/// A test field `name` whose value has the wrong form.
fn wrong_form(name: &str, span: Span, diags: &mut Diagnostics) {
    let want = match name {
        "input" | "expect" => "a JSON value or file(\"...\")",
        "reject" => "a string with the expected reason",
        "sinks" => "a list of sink names",
        "answers" | "requests" | "dead_letters" | "env" => "a JSON object",
        _ => "a node name",
    };
    super::test_calls::invalid_field(
        name,
        span,
        want,
        "see the `test` block in docs/language.md",
        diags,
    );
}

/// The source a test feeds when it names none: the flow's first.
fn first_source(flow: &ir::Flow) -> Option<String> {
    flow.nodes
        .iter()
        .find(|n| matches!(n.kind, NodeKind::Source { .. }))
        .map(|n| n.name.clone())
}

/// The node a test compares when it names none: the first map, else the first node after
/// the sources.
fn default_node(flow: &ir::Flow) -> Option<String> {
    flow.nodes
        .iter()
        .find(|n| matches!(n.kind, NodeKind::Map { .. }))
        .or_else(|| {
            flow.nodes
                .iter()
                .find(|n| !matches!(n.kind, NodeKind::Source { .. }))
        })
        .map(|n| n.name.clone())
}
