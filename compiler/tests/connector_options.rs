//! Options come from the connector declaration: a connector that declares its operations'
//! options in a `.flow` file has source and sink statements checked against them (which
//! keys exist, their types, which are required, their maxima) and its `url` settings and
//! `needs` checked against connections, with no table in the compiler naming it.

use omniflow_compiler::diagnostics::Severity;
use omniflow_compiler::fs::MemoryFs;
use omniflow_compiler::ir::NodeKind;
use std::path::PathBuf;
use std::sync::Arc;

const FLOW: &str = r#"
connector relay {
  setting base_url: url
  setting token: secret?

  source feed: poll -> json {
    option topic: string
  }
  source pushes: webhook -> json {
    needs token
  }
  sink send(json) -> json {
    quota { rate = 5/s }
    option path: template?
    option retries: int? max 5
    option lane: string = "main"
  }
}

connection r = relay { base_url = "https://relay.example.com" }

flow f {
  source s = r.feed { every = 1m, topic = "orders" }
  sink out = r.send(s) { idempotency_key = $.id, dead_letter = "e", path = "/x/{{ id }}", retries = 3 }
}
"#;

struct Checked {
    /// Error codes with their messages and help.
    errors: Vec<(String, String)>,
    graph: omniflow_compiler::ir::Graph,
}

fn check(name: &str, text: &str) -> Checked {
    // In memory: the checks read the declaration, never the disk.
    let path = PathBuf::from(format!("/{name}/main.flow"));
    let fs = MemoryFs::new().with_file(&path, text);
    let compilation = omniflow_compiler::compile_with(Arc::new(fs), &[path]).unwrap();
    Checked {
        errors: compilation
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| {
                let help = d.help.clone().unwrap_or_default();
                (d.code.id.to_string(), format!("{} | {help}", d.message))
            })
            .collect(),
        graph: compilation.graph,
    }
}

/// The errors of `checked` besides the one for declaring a connector in a flow.
fn others(checked: &Checked) -> Vec<&(String, String)> {
    checked
        .errors
        .iter()
        .filter(|(code, _)| code != "E0507")
        .collect()
}

/// The codes of [`others`].
fn codes(checked: &Checked) -> Vec<&str> {
    others(checked)
        .iter()
        .map(|(code, _)| code.as_str())
        .collect()
}

fn changed(from: &str, to: &str) -> String {
    assert!(FLOW.contains(from), "{from}");
    FLOW.replacen(from, to, 1)
}

#[test]
fn declared_options_are_taken_into_the_ir() {
    let clean = check("clean", FLOW);
    assert_eq!(codes(&clean), Vec::<&str>::new(), "{:?}", clean.errors);
    // A connector declared in a flow is refused as the runtime has no code for it.
    assert_eq!(clean.errors.len(), 1, "{:?}", clean.errors);
    let flow = &clean.graph.flows[0];
    let sink = flow.nodes.iter().find(|n| n.name == "out").unwrap();
    let NodeKind::Sink { options, .. } = &sink.kind else {
        panic!("{:?}", sink.kind);
    };
    assert_eq!(options["path"], "/x/{{ id }}");
    assert_eq!(options["retries"], 3);
    // A default the declaration gives is what the IR holds when the sink leaves it out.
    assert_eq!(options["lane"], "main");
    let given = check(
        "lane",
        &FLOW.replace("retries = 3 }", "retries = 3, lane = \"side\" }"),
    );
    let out = given.graph.flows[0].nodes.iter().find(|n| n.name == "out");
    let Some(NodeKind::Sink { options, .. }) = out.map(|n| &n.kind) else {
        panic!("{out:?}");
    };
    assert_eq!(options["lane"], "side");
    let source = flow.nodes.iter().find(|n| n.name == "s").unwrap();
    let NodeKind::Source { options, .. } = &source.kind else {
        panic!("{:?}", source.kind);
    };
    assert_eq!(options["topic"], "orders");
}

#[test]
fn an_undeclared_option_is_an_unknown_setting() {
    let checked = check("unknown", &changed("retries = 3", "retry_count = 3"));
    assert_eq!(codes(&checked), ["E0112"], "{:?}", checked.errors);
    let (_, message) = others(&checked)[0];
    assert!(
        message.contains("unknown setting `retry_count`"),
        "{message}"
    );
    assert!(
        message.contains("dead_letter, order_by, path, retries, lane"),
        "{message}"
    );

    let checked = check(
        "unknown-source",
        &changed("topic = \"orders\"", "topic = \"orders\", colour = \"red\""),
    );
    assert_eq!(codes(&checked), ["E0112"], "{:?}", checked.errors);
    let (_, message) = others(&checked)[0];
    assert!(
        message.contains("topic"),
        "the declared option is offered: {message}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_refused() {
    for (from, to, want) in [
        (
            "retries = 3",
            "retries = \"three\"",
            "`retries` must be an integer",
        ),
        (
            "topic = \"orders\"",
            "topic = 5",
            "`topic` must be a string",
        ),
        (
            "retries = 3",
            "retries = 3, lane = true",
            "`lane` must be a string",
        ),
    ] {
        let checked = check("wrong-type", &changed(from, to));
        assert_eq!(codes(&checked), ["E0505"], "{to}: {:?}", checked.errors);
        assert!(others(&checked)[0].1.contains(want), "{:?}", checked.errors);
    }
}

#[test]
fn limits_requirements_and_templates_come_from_the_declaration() {
    for (from, to, code) in [
        // Past `max 5`.
        ("retries = 3", "retries = 6", "E0509"),
        // `topic` has neither `?` nor a default.
        (", topic = \"orders\"", "", "E0211"),
        // `path` is a template over the message: its variables are the message's fields,
        // while `lane` is plain text.
        ("retries = 3", "retries = 3, lane = \"{{ id }}\"", "E0305"),
        // `base_url` is declared `url`.
        (
            "\"https://relay.example.com\"",
            "\"relay.example.com\"",
            "E0509",
        ),
        // A type the options do not have.
        ("option lane: string", "option lane: colour", "E0101"),
        // A sink's options are named apart from the settings every sink takes.
        (
            "option lane: string = \"main\"",
            "option timeout: string = \"main\"",
            "E0110",
        ),
        // `max` on an integer only.
        (
            "option lane: string = \"main\"",
            "option lane: string = \"main\" max 3",
            "E0505",
        ),
    ] {
        let checked = check("limits", &changed(from, to));
        assert_eq!(codes(&checked), [code], "{to}: {:?}", checked.errors);
    }
}

#[test]
fn an_operation_needs_the_settings_it_declares() {
    let webhook = "  source hooks = r.pushes\n  sink h = r.send(hooks) { idempotency_key = $.id, dead_letter = \"e\" }\n  sink out";
    let checked = check("needs", &changed("  sink out", webhook));
    assert_eq!(codes(&checked), ["E0211"], "{:?}", checked.errors);
    assert!(
        others(&checked)[0]
            .1
            .contains("`r.pushes` needs the connection setting `token`"),
        "{:?}",
        checked.errors
    );
    let with_token = changed("  sink out", webhook).replace(
        "base_url = \"https://relay.example.com\"",
        "base_url = \"https://relay.example.com\", token = secret(\"RELAY_TOKEN\")",
    );
    assert_eq!(
        codes(&check("needs-given", &with_token)),
        Vec::<&str>::new()
    );
    let unknown = changed("needs token", "needs tokn");
    let checked = check("needs-unknown", &unknown);
    assert!(codes(&checked).contains(&"E0112"), "{:?}", checked.errors);
}

#[test]
fn the_http_get_read_options_are_checked_as_the_runtime_reads_them() {
    let flow = |options: &str| {
        format!(
            r#"use std.connectors.{{http}}
connection api = http {{ base_url = "https://api.example.com", api_key = env("KEY"), key_header = "X-Key" }}
flow f {{
  source s = api.get {{ every = 1m, {options} }}
  sink out = api.post(s) {{ idempotency_key = $.id, dead_letter = "e", path = "/x" }}
}}
"#
        )
    };
    let good = check(
        "http-good",
        &flow(
            r#"records = "$.data.items[*]", paging = "next_token", next_path = "$.meta.next", param = "cursor", method = "post", body = "{}""#,
        ),
    );
    assert!(good.errors.is_empty(), "{:?}", good.errors);
    let bad = check(
        "http-bad",
        &flow(r#"records = "$..items[?(@.x)]", paging = "cursor", method = "delete""#),
    );
    let codes: Vec<&str> = bad.errors.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(codes, ["E0301", "E0505", "E0505"], "{:?}", bad.errors);
    assert!(
        bad.errors[1].1.contains("paging is one of link"),
        "{:?}",
        bad.errors
    );
}

#[test]
fn an_enum_setting_takes_its_variants_only() {
    let flow = |api: &str| {
        format!(
            r#"
use std.connectors.shopify
connection shop = shopify {{ shop = "s", access_token = secret("T"), api = {api} }}
"#
        )
    };
    for ok in [r#""graphql""#, r#""rest""#, r#"env("SHOPIFY_API")"#] {
        let checked = check("api_ok", &flow(ok));
        assert_eq!(checked.errors, Vec::<(String, String)>::new(), "{ok}");
    }
    let wrong = check("api_wrong", &flow(r#""grapql""#));
    assert_eq!(wrong.errors.len(), 1, "{:?}", wrong.errors);
    let (code, text) = &wrong.errors[0];
    assert_eq!(code, "E0115");
    assert!(
        text.contains("`grapql` is not a variant of `ShopifyApi`") && text.contains("graphql"),
        "{text}"
    );
    let number = check("api_number", &flow("3"));
    assert_eq!(number.errors[0].0, "E0505", "{:?}", number.errors);
}

#[test]
fn an_http_token_is_fetched_by_oauth2_or_a_login_never_half_of_one() {
    let flow = |settings: &str| {
        format!(
            "use std.connectors.http\nconnection api = http {{ base_url = \"https://api.example.com\", {settings} }}\n"
        )
    };
    let codes = |settings: &str| {
        let checked = check("http_token", &flow(settings));
        checked
            .errors
            .iter()
            .map(|(code, text)| format!("{code} {text}"))
            .collect::<Vec<_>>()
    };
    // Where a token comes from and goes are not secrets; the credentials are.
    assert_eq!(
        codes(
            r#"token_url = "https://auth.example.com/token", client_id = "c", client_secret = secret("S"), token_header = "X-Token""#
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        codes(
            r#"login_path = "/login", login_body = secret("LOGIN"), token_path = "$.access", expires_path = "$.expires_in""#
        ),
        Vec::<String>::new()
    );
    let half = codes(r#"token_url = "https://auth.example.com/token", client_id = "c""#);
    assert!(
        half.len() == 1 && half[0].starts_with("E0211") && half[0].contains("`client_secret`"),
        "{half:?}"
    );
    let orphan = codes(r#"token_path = "$.access""#);
    assert!(
        orphan.len() == 1 && orphan[0].contains("`login_path`"),
        "{orphan:?}"
    );
    let both = codes(
        r#"token_url = "https://a.example/t", client_id = "c", client_secret = secret("S"), login_path = "/login", token_path = "$.t""#,
    );
    assert!(both.len() == 1 && both[0].starts_with("E0505"), "{both:?}");
    let path = codes(r#"login_path = "/login", token_path = "access[""#);
    assert!(path.len() == 1 && path[0].starts_with("E0509"), "{path:?}");
    let two = codes(
        r#"token_url = "https://a.example/t", client_id = "c", client_secret = secret("S"), bearer_token = secret("B")"#,
    );
    assert!(
        two.len() == 1 && two[0].contains("fetches a token too"),
        "{two:?}"
    );
    let header = codes(r#"login_path = "/login", token_path = "$.t", token_header = "X Token""#);
    assert!(
        header.len() == 1 && header[0].starts_with("E0509"),
        "{header:?}"
    );
    let alone = codes(r#"token_header = "X-Token""#);
    assert!(
        alone.len() == 1 && alone[0].starts_with("E0211"),
        "{alone:?}"
    );
    let literal =
        codes(r#"token_url = "https://a.example/t", client_id = "c", client_secret = "s""#);
    assert!(
        literal.len() == 1 && literal[0].starts_with("E0501"),
        "{literal:?}"
    );
}
