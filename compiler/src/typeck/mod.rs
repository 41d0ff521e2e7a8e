//! Type checking: schemas, connectors, connections, tables and policies first (the
//! environment), then every flow's nodes and expressions, elaborated into IR as they go.

pub mod builtins;
pub mod declared;
pub mod expr;
mod flow;
mod jsonpath;
pub mod ledger;
pub mod limits;
pub mod options;
mod schedule;
pub mod settings;
pub mod tables;
pub mod templates;
pub mod types;

pub use flow::{check_flow, check_webhook_paths};

use crate::diagnostics::{codes, Diagnostic, Diagnostics};
use crate::ir::{self, Quota};
use crate::resolve::{ItemRef, Kind, ModuleId, Program};
use crate::source::Span;
use crate::syntax::ast::{ConnectorDecl, Item, OperationBody, SourceSig, TypeKind};
use serde_json::Value;
use settings::{const_value, Const};
use std::collections::{BTreeMap, HashMap};
use types::{resolve_type, Ty};

/// A field of a schema with its resolved type.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub name: String,
    pub ty: Ty,
    pub optional: bool,
    pub has_default: bool,
    pub default: Option<Value>,
    pub span: Span,
}

/// A schema with resolved field types.
#[derive(Debug, Clone)]
pub struct SchemaInfo {
    pub name: String,
    pub fields: Vec<FieldInfo>,
    pub span: Span,
}

impl SchemaInfo {
    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Field names in declaration order.
    pub fn field_names(&self) -> Vec<&str> {
        self.fields.iter().map(|f| f.name.as_str()).collect()
    }
}

/// A lookup table with its loaded data.
#[derive(Debug, Clone)]
pub struct TableInfo {
    pub key_ty: Ty,
    pub value_ty: Ty,
    pub entries: BTreeMap<String, Value>,
}

/// One setting a connector accepts.
#[derive(Debug, Clone)]
pub struct SettingInfo {
    pub name: String,
    pub ty: Ty,
    pub required: bool,
    pub default: Option<Value>,
    /// Declared `url`: the absolute http(s) URL the connector calls.
    pub url: bool,
}

/// A connector operation.
#[derive(Debug, Clone)]
pub struct OperationInfo {
    pub name: String,
    /// Source kind (poll, webhook, ...); `sink` for sinks.
    pub kind: String,
    pub input: Ty,
    pub output: Ty,
    pub quota: Quota,
    /// The options its source or sink statements take besides the generic ones.
    pub options: Vec<options::OptionInfo>,
    /// Connection settings it cannot run without.
    pub needs: Vec<String>,
    /// Each call replaces what an earlier call wrote for the same record (`overwrites`):
    /// a sink using it without `order_by` is warned (`W0404`).
    pub overwrites: bool,
    pub span: Span,
}

impl OperationInfo {
    /// `source poll: json -> ShopifyOrder (rate 2/s, burst 40)`, for editors.
    pub fn describe(&self, program: &Program) -> String {
        let kind = if self.kind == "sink" {
            "sink".to_string()
        } else {
            format!("source {}", self.kind)
        };
        let mut quota = Vec::new();
        if let Some(rate) = self.quota.rate_per_sec {
            quota.push(format!("rate {rate}/s"));
        }
        if let Some(burst) = self.quota.burst {
            quota.push(format!("burst {burst}"));
        }
        if let Some(concurrency) = self.quota.concurrency {
            quota.push(format!("concurrency {concurrency}"));
        }
        let quota = if quota.is_empty() {
            String::new()
        } else {
            format!(" ({})", quota.join(", "))
        };
        format!(
            "{kind}: {} -> {}{quota}",
            self.input.display(program),
            self.output.display(program)
        )
    }

    /// The declared option with this name.
    pub fn option(&self, name: &str) -> Option<&options::OptionInfo> {
        self.options.iter().find(|o| o.name == name)
    }

    /// Adds the declared default of every option a statement left out, so the IR holds
    /// what the runtime uses.
    pub fn fill_defaults(&self, given: &mut BTreeMap<String, Value>) {
        for option in &self.options {
            if let (false, Some(default)) = (given.contains_key(&option.name), &option.default) {
                given.insert(option.name.clone(), default.clone());
            }
        }
    }
}

/// A connector signature.
#[derive(Debug, Clone)]
pub struct ConnectorInfo {
    pub name: String,
    pub settings: Vec<SettingInfo>,
    pub quota: Quota,
    pub sources: Vec<OperationInfo>,
    pub sinks: Vec<OperationInfo>,
    /// How a connector declared in a flow file runs (`None` for a standard one).
    pub declared: Option<Box<crate::ir::declared::Declared>>,
}

/// A checked connection.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub connector: Option<ItemRef>,
    pub ir: ir::Connection,
}

/// Records, for editors, the names each user module sees, with a schema's fields and a
/// connection's operations.
pub fn note_names(program: &Program, env: &Env) {
    if !program.collecting_facts() {
        return;
    }
    for module in program.modules.iter().filter(|m| !m.is_std) {
        let Some(path) = &module.path else { continue };
        for item in &module.ast.items {
            if let Some(name) = item.name() {
                program.note_declaration(name.span);
            }
        }
        for (name, binding) in &module.scope {
            let target = binding.target;
            let item = program.item(target);
            let (kind, detail, members) = match item {
                Item::Schema(_) => {
                    let fields = env.schemas.get(&target).map_or_else(Vec::new, |schema| {
                        schema
                            .fields
                            .iter()
                            .map(|f| crate::facts::Typed {
                                name: f.name.clone(),
                                ty: f.ty.display(program),
                                fields: Vec::new(),
                            })
                            .collect()
                    });
                    ("schema", format!("schema {name}"), fields)
                }
                Item::Enum(_) => ("enum", format!("enum {name}"), Vec::new()),
                Item::Table(_) => {
                    let detail = env.tables.get(&target).map_or(String::new(), |t| {
                        format!(
                            "table {name}: {} -> {}",
                            t.key_ty.display(program),
                            t.value_ty.display(program)
                        )
                    });
                    ("table", detail, Vec::new())
                }
                Item::Connection(_) | Item::Ledger(_) => {
                    let connector = env
                        .connections
                        .get(&target)
                        .and_then(|c| c.connector)
                        .and_then(|c| env.connectors.get(&c));
                    let members = connector.map_or_else(Vec::new, |c| {
                        c.sources
                            .iter()
                            .chain(&c.sinks)
                            .map(|op| crate::facts::Typed {
                                name: op.name.clone(),
                                ty: op.describe(program),
                                fields: Vec::new(),
                            })
                            .collect()
                    });
                    let detail = connector.map_or(format!("connection {name}"), |c| {
                        format!("connection {name} = {}", c.name)
                    });
                    ("connection", detail, members)
                }
                Item::Policy(_) => ("policy", format!("policy {name}"), Vec::new()),
                Item::Connector(_) => ("connector", format!("connector {name}"), Vec::new()),
                Item::Flow(_) => ("flow", format!("flow {name}"), Vec::new()),
                Item::Use(_) => continue,
            };
            program.note_name(crate::facts::Named {
                module: path.clone(),
                name: name.clone(),
                kind,
                detail,
                members,
            });
        }
    }
}

/// Everything flows are checked against.
#[derive(Debug, Default)]
pub struct Env {
    pub schemas: HashMap<ItemRef, SchemaInfo>,
    pub tables: HashMap<ItemRef, TableInfo>,
    pub connectors: HashMap<ItemRef, ConnectorInfo>,
    pub connections: HashMap<ItemRef, ConnectionInfo>,
    pub policies: HashMap<ItemRef, ir::RetryPolicy>,
    pub ledgers: HashMap<ItemRef, ir::Ledger>,
}

/// The source kinds a connector operation can have.
pub const SOURCE_KINDS: &[&str] = &["poll", "webhook", "schedule", "file", "bus"];

/// Builds the environment from every module's declarations.
pub fn build_env(program: &Program, diags: &mut Diagnostics) -> Env {
    let mut env = Env::default();
    let refs: Vec<ItemRef> = program
        .modules
        .iter()
        .enumerate()
        .flat_map(|(m, module)| {
            (0..module.ast.items.len()).map(move |i| ItemRef {
                module: ModuleId(m as u32),
                item: i as u32,
            })
        })
        .collect();
    for item in &refs {
        let declared = match program.item(*item) {
            Item::Schema(decl) => Some(&decl.name),
            Item::Enum(decl) => {
                settings::duplicate_keys(decl.variants.iter(), "variant", diags);
                Some(&decl.name)
            }
            _ => None,
        };
        if let Some(name) = declared.filter(|n| types::builtin(&n.name).is_some()) {
            diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    name.span,
                    format!("`{}` is a built-in type", name.name),
                )
                .label("this name is taken by the language")
                .help("choose another name for the type"),
            );
        }
        if let Item::Schema(decl) = program.item(*item) {
            let info = schema_info(program, item.module, decl, diags);
            env.schemas.insert(*item, info);
        }
    }
    // Defaults are checked once every schema is known.
    for item in &refs {
        if let Item::Schema(decl) = program.item(*item) {
            check_defaults(program, &env, *item, decl, diags);
        }
    }
    for item in &refs {
        match program.item(*item) {
            Item::Connector(decl) => {
                let mut info = connector_info(program, item.module, decl, diags);
                // A declaration with requests runs as declared, the stdlib's included; a
                // bare signature outside the stdlib has nothing to run.
                if declared::has_implementation(decl) {
                    info.declared =
                        declared::check(program, &env, &info, decl, diags).map(Box::new);
                } else if !is_stdlib_connector(program, item.module) {
                    user_connector(decl, diags);
                }
                env.connectors.insert(*item, info);
            }
            Item::Policy(decl) => {
                if decl.kind.name != "retry" {
                    diags.push(
                        Diagnostic::error(
                            codes::UNKNOWN_POLICY,
                            decl.kind.span,
                            format!("unknown policy kind `{}`", decl.kind.name),
                        )
                        .label("the only policy kind is `retry`")
                        .help(crate::diagnostics::suggest::did_you_mean(
                            &decl.kind.name,
                            ["retry"],
                            "write `policy retry NAME { ... }`",
                        )),
                    );
                }
                let policy = settings::retry_policy(&decl.name.name, &decl.settings, diags);
                env.policies.insert(*item, policy);
            }
            Item::Table(decl) => {
                let info = tables::table_info(program, &env, item.module, decl, diags);
                env.tables.insert(*item, info);
            }
            _ => {}
        }
    }
    for item in &refs {
        if let Item::Connection(decl) = program.item(*item) {
            let info = connection_info(program, &env, item.module, decl, diags);
            env.connections.insert(*item, info);
        }
    }
    // Ledgers publish through connections, so they come after them.
    for item in &refs {
        if let Item::Ledger(decl) = program.item(*item) {
            let (info, ledger) = ledger::ledger_info(program, &env, item.module, decl, diags);
            env.connections.insert(*item, info);
            env.ledgers.insert(*item, ledger);
        }
    }
    env
}

fn schema_info(
    program: &Program,
    module: ModuleId,
    decl: &crate::syntax::ast::SchemaDecl,
    diags: &mut Diagnostics,
) -> SchemaInfo {
    let mut fields: Vec<FieldInfo> = Vec::with_capacity(decl.fields.len());
    for field in &decl.fields {
        if let Some(first) = fields.iter().find(|f| f.name == field.name.name) {
            diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    field.name.span,
                    format!("field `{}` is declared twice", field.name.name),
                )
                .label("declared again here")
                .secondary(first.span, "first declared here")
                .help("remove or rename one of the two fields"),
            );
            continue;
        }
        let ty = resolve_type(program, module, &field.ty, diags);
        fields.push(FieldInfo {
            name: field.name.name.clone(),
            ty,
            optional: field.ty.optional,
            has_default: field.default.is_some(),
            default: field.default.as_ref().and_then(literal_json),
            span: field.name.span,
        });
    }
    SchemaInfo {
        name: decl.name.name.clone(),
        fields,
        span: decl.name.span,
    }
}

fn check_defaults(
    program: &Program,
    env: &Env,
    item: crate::resolve::ItemRef,
    decl: &crate::syntax::ast::SchemaDecl,
    diags: &mut Diagnostics,
) {
    let module = item.module;
    let Some(info) = env.schemas.get(&item) else {
        return;
    };
    for field in &decl.fields {
        let Some(default) = &field.default else {
            continue;
        };
        let Some(field_info) = info.field(&field.name.name) else {
            continue;
        };
        if let crate::syntax::ast::ExprKind::Lit(crate::syntax::ast::Literal::Decimal(text)) =
            &default.kind
        {
            if settings::constant_decimal(text).is_none() {
                settings::lossy_decimal(text, default.span, diags);
                continue;
            }
        }
        let mut cx = expr::ExprCx::new(program, env, module, Ty::Null, diags);
        cx.expect(
            default,
            &field_info.ty,
            field_info.optional,
            &format!("field `{}` (default)", field.name.name),
        );
        if literal_json(default).is_none() {
            diags.push(
                Diagnostic::error(codes::INVALID_SETTING, default.span, format!("the default of `{}` is not a literal", field.name.name))
                    .label("computed here")
                    .help("defaults are fixed values: a string, number, boolean or null; compute values in the mapping instead"),
            );
        }
    }
}

/// Reads a file a flow names (a table's data, a test fixture) relative to the flow's own
/// file; reports `E0116`, `E0117` or `E0118` when it cannot, may not or is too large to.
pub fn read_beside(
    program: &Program,
    module: ModuleId,
    path: &crate::syntax::ast::StringLit,
    kind: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    let from = program.module(module).path.clone()?;
    let limit = crate::source::MAX_DATA_FILE_BYTES;
    match crate::source::read_beside(program.fs(), &from, &path.value, limit) {
        Ok((_, text)) => Some(text),
        Err(err) => {
            let what = format!("cannot load {kind} `{}`", path.value);
            diags.push(crate::resolve::load::file_error(
                &err,
                path.span,
                &what,
                kind,
                "the flow file",
            ));
            None
        }
    }
}

/// A literal expression as JSON (for defaults).
pub fn literal_json(expr: &crate::syntax::ast::Expr) -> Option<Value> {
    let mut scratch = Diagnostics::default();
    match const_value(expr, &mut scratch)? {
        Const::Name(_) | Const::Env(_) | Const::Secret(_) => None,
        other => Some(other.to_json()),
    }
}

/// True for a stdlib module, or a stdlib connector file given by its path
/// (`stdlib/connectors/NAME.flow`, as the repository checks it).
fn is_stdlib_connector(program: &Program, module: ModuleId) -> bool {
    let info = program.module(module);
    info.is_std
        || info.path.as_deref().is_some_and(|path| {
            crate::stdlib::FILES.iter().any(|file| {
                file.path.starts_with("connectors/")
                    && path.ends_with(std::path::Path::new("stdlib").join(file.path))
            })
        })
}

/// Reports a connector declared outside the stdlib with no `request` anywhere: a bare
/// signature the runtime could not run.
fn user_connector(decl: &ConnectorDecl, diags: &mut Diagnostics) {
    let standard: Vec<&str> = crate::stdlib::FILES
        .iter()
        .filter_map(|f| f.path.strip_prefix("connectors/"))
        .filter_map(|f| f.strip_suffix(".flow"))
        .collect();
    let name = decl.name.name.as_str();
    let near = standard
        .iter()
        .copied()
        .find(|s| *s == name)
        .or_else(|| crate::diagnostics::suggest::nearest(name, standard.iter().copied()));
    diags.push(
        Diagnostic::error(
            codes::USER_CONNECTOR,
            decl.name.span,
            format!("connector `{}` is declared in a flow without requests", decl.name.name),
        )
        .label("no operation says what to call")
        .help(match near {
            Some(near) => format!(
                "use the standard connector `{near}` (`use std.connectors.{near}`) instead of declaring one"
            ),
            None => "give each operation a `request { method = \"POST\", path = \"/...\" }` (see \"Writing your own connector\"), or use a standard connector (`use std.connectors.http` reaches any REST API)".to_string(),
        }),
    );
}

fn connector_info(
    program: &Program,
    module: ModuleId,
    decl: &ConnectorDecl,
    diags: &mut Diagnostics,
) -> ConnectorInfo {
    let settings: Vec<SettingInfo> = decl
        .settings
        .iter()
        .map(|s| {
            // `url` is a string the connector calls as its base URL.
            let url = matches!(&s.ty.kind, TypeKind::Named(n) if n.name == "url");
            SettingInfo {
                name: s.name.name.clone(),
                ty: if url {
                    Ty::String
                } else {
                    resolve_type(program, module, &s.ty, diags)
                },
                required: !s.ty.optional && s.default.is_none(),
                default: s.default.as_ref().and_then(literal_json),
                url,
            }
        })
        .collect();
    let setting_names: Vec<&str> = settings.iter().map(|s| s.name.as_str()).collect();
    let quota = decl
        .quota
        .as_ref()
        .map(|q| settings::quota(q, diags))
        .unwrap_or_default();
    let sources = decl
        .sources
        .iter()
        .map(|s| {
            if !SOURCE_KINDS.contains(&s.kind.name.as_str()) {
                diags.push(
                    Diagnostic::error(
                        codes::SOURCE_KIND_MISMATCH,
                        s.kind.span,
                        format!("unknown source kind `{}`", s.kind.name),
                    )
                    .label("not a source kind")
                    .help(format!("source kinds are {}", SOURCE_KINDS.join(", "))),
                );
            }
            OperationInfo {
                name: s.name.name.clone(),
                kind: s.kind.name.clone(),
                input: Ty::Null,
                output: resolve_type(program, module, &s.output, diags),
                quota: s
                    .body
                    .quota
                    .as_ref()
                    .map(|q| settings::quota(q, diags))
                    .unwrap_or_default(),
                options: options::option_infos(&s.body, &[], diags),
                needs: needs(&s.body, &setting_names, diags),
                overwrites: source_overwrites(s, diags),
                span: s.name.span,
            }
        })
        .collect();
    let sinks = decl
        .sinks
        .iter()
        .map(|s| OperationInfo {
            name: s.name.name.clone(),
            kind: "sink".into(),
            input: resolve_type(program, module, &s.input, diags),
            output: s
                .output
                .as_ref()
                .map(|o| resolve_type(program, module, o, diags))
                .unwrap_or(Ty::Json),
            quota: s
                .body
                .quota
                .as_ref()
                .map(|q| settings::quota(q, diags))
                .unwrap_or_default(),
            options: options::option_infos(&s.body, options::SINK_SETTINGS, diags),
            needs: needs(&s.body, &setting_names, diags),
            overwrites: s.body.overwrites.is_some(),
            span: s.name.span,
        })
        .collect();
    ConnectorInfo {
        name: decl.name.name.clone(),
        settings,
        quota,
        sources,
        sinks,
        declared: None,
    }
}

/// Reports (`E0514`) `overwrites` on a source operation: only a sink writes to a target.
/// Always false, the source keeps no such property.
fn source_overwrites(source: &SourceSig, diags: &mut Diagnostics) -> bool {
    if let Some(span) = source.body.overwrites {
        diags.push(
            Diagnostic::error(
                codes::SOURCE_OVERWRITES,
                span,
                format!(
                    "source operation `{}` declares `overwrites`",
                    source.name.name
                ),
            )
            .label("only a sink operation writes to a target")
            .secondary(source.name.span, "a source operation reads")
            .help("remove `overwrites`, or declare the operation as a `sink` if it writes"),
        );
    }
    false
}

/// The settings an operation `needs`; each must be a setting of its connector (`E0112`).
fn needs(body: &OperationBody, settings: &[&str], diags: &mut Diagnostics) -> Vec<String> {
    let mut out = Vec::new();
    for name in body.needs.iter().flat_map(|n| &n.settings) {
        if settings.contains(&name.name.as_str()) {
            out.push(name.name.clone());
        } else {
            settings::unknown_setting(name, settings, diags);
        }
    }
    out
}

fn connection_info(
    program: &Program,
    env: &Env,
    module: ModuleId,
    decl: &crate::syntax::ast::ConnectionDecl,
    diags: &mut Diagnostics,
) -> ConnectionInfo {
    let connector_ref = program.resolve(
        module,
        &decl.connector.name,
        decl.connector.span,
        Kind::Connector,
        diags,
    );
    let connector = connector_ref.and_then(|c| env.connectors.get(&c));
    let mut values = BTreeMap::new();
    let mut seen: Vec<&str> = Vec::new();
    for entry in &decl.settings.entries {
        if seen.contains(&entry.name.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    codes::DUPLICATE_DEFINITION,
                    entry.name.span,
                    format!("setting `{}` is given twice", entry.name.name),
                )
                .label("given again here")
                .help("keep one of the two"),
            );
            continue;
        }
        seen.push(&entry.name.name);
        let Some(value) = const_value(&entry.value, diags) else {
            continue;
        };
        let Some(connector) = connector else {
            values.insert(entry.name.name.clone(), value.to_setting());
            continue;
        };
        let Some(sig) = connector
            .settings
            .iter()
            .find(|s| s.name == entry.name.name)
        else {
            let allowed: Vec<&str> = connector.settings.iter().map(|s| s.name.as_str()).collect();
            settings::unknown_setting(&entry.name, &allowed, diags);
            continue;
        };
        let literal = matches!(value, Const::Value(Value::String(_)));
        if literal && (sig.ty == Ty::Secret || settings::looks_secret(&sig.name)) {
            settings::literal_secret(&entry.name, entry.value.span, diags);
            continue;
        }
        let fits = match (&sig.ty, &value) {
            (_, Const::Env(_)) => true,
            (Ty::Secret | Ty::String, Const::Secret(_)) => true,
            (Ty::String, Const::Value(Value::String(_))) => true,
            (Ty::Int, Const::Value(Value::Number(n))) => n.is_i64(),
            (Ty::Bool, Const::Value(Value::Bool(_))) => true,
            (Ty::Duration, Const::Duration(_)) => true,
            (Ty::Json, _) => true,
            (Ty::Enum(e), Const::Value(Value::String(text))) => {
                types::check_variant(program, *e, text, entry.value.span, diags);
                true
            }
            _ => false,
        };
        if !fits {
            let want = sig.ty.display(program);
            diags.push(
                Diagnostic::error(
                    codes::INVALID_SETTING,
                    entry.value.span,
                    format!(
                        "`{}` must be {want}, found {}",
                        entry.name.name,
                        value.describe()
                    ),
                )
                .label(format!("expected {want}"))
                .help(if sig.ty == Ty::Secret {
                    format!("write `{} = secret(\"NAME\")`", entry.name.name)
                } else {
                    format!("give {}, or `env(\"NAME\")`", expr::article(&want))
                }),
            );
            continue;
        }
        if !limits::connection_setting(
            &connector.name,
            sig,
            &entry.name,
            &value,
            entry.value.span,
            diags,
        ) {
            continue;
        }
        values.insert(entry.name.name.clone(), value.to_setting());
    }
    if let Some(connector) = connector {
        let missing: Vec<&str> = connector
            .settings
            .iter()
            .filter(|s| {
                s.required && !values.contains_key(&s.name) && !seen.contains(&s.name.as_str())
            })
            // A misspelt key was already reported, with this setting as the suggestion.
            .filter(|s| {
                !seen.iter().any(|key| {
                    !connector.settings.iter().any(|c| c.name == *key)
                        && crate::diagnostics::suggest::nearest(key, [s.name.as_str()]).is_some()
                })
            })
            .map(|s| s.name.as_str())
            .collect();
        if connector.name == "http" {
            limits::http_credentials(&seen, decl.name.span, diags);
        }
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ");
            diags.push(
                Diagnostic::error(
                    codes::MISSING_SETTING,
                    decl.name.span,
                    format!(
                        "connection `{}` is missing required setting{} {list}",
                        decl.name.name,
                        if missing.len() == 1 { "" } else { "s" }
                    ),
                )
                .label(format!("`{}` requires {list}", connector.name))
                .help(format!(
                    "add {list} to the settings block, e.g. `{} = env(\"...\")`",
                    missing[0]
                )),
            );
        }
        for sig in &connector.settings {
            if let (false, Some(default)) = (values.contains_key(&sig.name), &sig.default) {
                values.insert(sig.name.clone(), ir::SettingValue::Value(default.clone()));
            }
        }
    }
    ConnectionInfo {
        connector: connector_ref,
        ir: ir::Connection {
            name: decl.name.name.clone(),
            connector: decl.connector.name.clone(),
            settings: values,
            quota: connector.map(|c| c.quota.clone()).unwrap_or_default(),
            declared: connector.and_then(|c| c.declared.clone()),
        },
    }
}
