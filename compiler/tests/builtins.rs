//! Every example of every built-in function holds: it is checked by the compiler without an
//! error and evaluated by the runtime's evaluator, and gives the result its entry states, of
//! the result type the entry declares.

use omniflow_compiler::diagnostics::Severity;
use omniflow_compiler::ir::{Expr, Graph, NodeKind, RecordItem, SettingValue};
use omniflow_mapping::builtins::{Example, Fixed, Ret, BUILTINS, EXAMPLE_INPUT};
use omniflow_mapping::eval::{Env, Reject};
use omniflow_mapping::{json_in, json_out};

/// One example with the name of the function it shows.
struct Case {
    func: &'static str,
    ret: Ret,
    example: &'static Example,
}

/// True when a result (its JSON text) is of a function's fixed result type; results whose
/// type follows the arguments, and null (a missing value passed through), always are.
fn of_result_type(ret: Ret, json: &str) -> bool {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    let Ret::Fixed(fixed) = ret else {
        return true;
    };
    value.is_null()
        || match fixed {
            Fixed::Str | Fixed::Datetime | Fixed::Date => value.is_string(),
            Fixed::Int => value.is_i64(),
            Fixed::Decimal => value.is_number(),
            Fixed::Bool => value.is_boolean(),
            Fixed::Money => {
                value.get("amount").is_some_and(|a| a.is_i64())
                    && value.get("currency").is_some_and(|c| c.is_string())
            }
            Fixed::StrList => value
                .as_array()
                .is_some_and(|items| items.iter().all(|i| i.is_string())),
            Fixed::Json | Fixed::Secret => true,
        }
}

/// A flow that computes every mapping example as a field of one record, and sets every
/// settings example as a connection setting.
fn flow(mapped: &[Case], settings: &[(Case, bool)]) -> String {
    let mut text = String::from("use std.connectors.{file, http}\n\n");
    text.push_str("connection inbox = file { dir = \"in\" }\n");
    for (idx, (case, secret)) in settings.iter().enumerate() {
        text.push_str(&if *secret {
            format!(
                "connection s{idx} = http {{ base_url = \"http://127.0.0.1:9\", auth_header = {} }}\n",
                case.example.expr
            )
        } else {
            format!("connection s{idx} = file {{ dir = {} }}\n", case.example.expr)
        });
    }
    text.push_str("\nschema Examples {\n  key: string\n");
    for idx in 0..mapped.len() {
        text.push_str(&format!("  e{idx}: json?\n"));
    }
    text.push_str("}\n\nflow examples {\n");
    text.push_str("  source rows = inbox.read { path = \"*.jsonl\", format = jsonl }\n");
    text.push_str("  map out = rows -> Examples {\n    key = \"k\"\n");
    for (idx, case) in mapped.iter().enumerate() {
        text.push_str(&format!("    e{idx} = {}\n", case.example.expr));
    }
    text.push_str("  }\n  sink done = inbox.write(out) {\n    path = \"out.jsonl\"\n");
    text.push_str("    idempotency_key = key\n    dead_letter = \"errors\"\n  }\n}\n");
    text
}

fn compile(text: &str) -> Graph {
    let path = std::path::PathBuf::from("/examples/examples.flow");
    let fs = omniflow_compiler::fs::MemoryFs::new().with_file(&path, text);
    let compilation = omniflow_compiler::compile_with(std::sync::Arc::new(fs), &[path]).unwrap();
    let errors: Vec<String> = compilation
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.code.id, d.message))
        .collect();
    assert!(
        errors.is_empty(),
        "the examples do not check:\n{}\n{text}",
        errors.join("\n")
    );
    compilation.graph
}

/// The field expressions of the flow's mapping, by field name.
fn fields(graph: &Graph) -> Vec<(String, Expr)> {
    let flow = &graph.flows[0];
    let map = flow.node("out").expect("the map node");
    let NodeKind::Map { program, .. } = &map.kind else {
        panic!("`out` is not a map");
    };
    let Expr::Record { items, .. } = program else {
        panic!("the mapping is not a record");
    };
    items
        .iter()
        .filter_map(|item| match item {
            RecordItem::Field(name, expr) => Some((name.clone(), expr.clone())),
            RecordItem::Let(..) => None,
        })
        .collect()
}

#[test]
fn every_builtin_example_gives_its_result() {
    let mut mapped = Vec::new();
    let mut settings = Vec::new();
    for builtin in BUILTINS {
        for example in builtin.examples {
            let case = Case {
                func: builtin.name,
                ret: builtin.ret,
                example,
            };
            if builtin.settings_only() {
                settings.push((case, builtin.ret == Ret::Fixed(Fixed::Secret)));
            } else {
                mapped.push(case);
            }
        }
    }
    let graph = compile(&flow(&mapped, &settings));
    let mut failures = Vec::new();

    let mut env = Env::new(&graph);
    let input = json_in::parse(EXAMPLE_INPUT.as_bytes(), &json_in::Projection::whole()).unwrap();
    let exprs = fields(&graph);
    for (idx, case) in mapped.iter().enumerate() {
        let (_, expr) = exprs
            .iter()
            .find(|(name, _)| *name == format!("e{idx}"))
            .expect("the example's field");
        let code = env.compile(expr).unwrap();
        let got = match env.eval(&code, &input, &mut Vec::new()) {
            Ok(value) => Ok(json_out::to_string(&value)),
            Err(Reject(reason)) => Err(reason),
        };
        let want = case
            .example
            .result
            .map(str::to_string)
            .map_err(str::to_string);
        if got != want {
            failures.push(format!(
                "`{}`: {} gave {got:?}, its entry says {want:?}",
                case.func, case.example.expr
            ));
        } else if let Ok(json) = &got {
            // An example that wraps the call (`len(now())`) gives the outer call's type.
            let outermost = case.example.expr.starts_with(&format!("{}(", case.func));
            if outermost && !of_result_type(case.ret, json) {
                failures.push(format!(
                    "`{}`: {} gave {json}, not of the result type {:?}",
                    case.func, case.example.expr, case.ret
                ));
            }
        }
    }

    for (idx, (case, secret)) in settings.iter().enumerate() {
        let connection = graph
            .connections
            .iter()
            .find(|c| c.name == format!("s{idx}"))
            .expect("the example's connection");
        let setting = connection
            .settings
            .get(if *secret { "auth_header" } else { "dir" })
            .expect("the example's setting");
        let got = match setting {
            SettingValue::Env(name) => serde_json::json!({ "env": name }),
            SettingValue::Secret(name) => serde_json::json!({ "secret": name }),
            SettingValue::Value(value) => value.clone(),
        }
        .to_string();
        if Ok(got.as_str()) != case.example.result {
            failures.push(format!(
                "`{}`: {} set {got}, its entry says {:?}",
                case.func, case.example.expr, case.example.result
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
