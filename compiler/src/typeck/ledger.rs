//! `ledger` declarations: locations, reservation window and per-channel rules, checked
//! and lowered to [`ir::Ledger`]; the ledger also becomes a connection of the built-in
//! `ledger` connector so sinks reach it as `NAME.apply(...)`, `NAME.reserve(...)`.

use super::settings::{const_value, unknown_setting, Const};
use super::types::Ty;
use super::{ConnectionInfo, Env};
use crate::diagnostics::{codes, suggest, Diagnostic, Diagnostics};
use crate::ir::{self, Rate};
use crate::resolve::{ItemRef, Kind, ModuleId, Program};
use crate::source::Span;
use crate::syntax::ast::{ExprKind, Ident, LedgerDecl, LedgerMember, Setting, Settings};
use serde_json::Value;
use std::collections::BTreeMap;

const LEDGER_KEYS: &[&str] = &["locations", "reservation_window"];
const CHANNEL_KEYS: &[&str] = &[
    "locations",
    "share",
    "cap",
    "min_publish",
    "safety_stock",
    "safety_stock_by_location",
    "safety_stock_by_sku",
    "publish",
    "publish_location",
    "rate",
    "burst",
    "retry",
];
/// Reservations are released after this long unless the declaration says otherwise.
const DEFAULT_WINDOW_MS: u64 = 30 * 60 * 1000;
const MAX_WINDOW_MS: u64 = 30 * 24 * 3600 * 1000;

fn out_of_range(diags: &mut Diagnostics, span: Span, message: String, help: &str) {
    diags.push(
        Diagnostic::error(codes::LEDGER_RULE_OUT_OF_RANGE, span, message)
            .label("out of range")
            .help(help),
    );
}

fn wrong(diags: &mut Diagnostics, entry: &Setting, want: &str) {
    diags.push(
        Diagnostic::error(
            codes::INVALID_SETTING,
            entry.value.span,
            format!("`{}` must be {want}", entry.name.name),
        )
        .label(format!("expected {want}"))
        .help(format!("write `{} = ...` with {want}", entry.name.name)),
    );
}

fn unknown_location(
    diags: &mut Diagnostics,
    span: Span,
    name: &str,
    ledger: &str,
    known: &[String],
) {
    let help = suggest::did_you_mean(
        name,
        known.iter().map(String::as_str),
        &format!(
            "add {name} to the `locations` of ledger `{ledger}`, or use one of {}",
            known.join(", ")
        ),
    );
    diags.push(
        Diagnostic::error(
            codes::UNKNOWN_LOCATION,
            span,
            format!("location `{name}` is not kept by ledger `{ledger}`"),
        )
        .label("not one of the ledger's locations")
        .help(help),
    );
}

fn duplicates(entries: &[&Setting], diags: &mut Diagnostics) {
    super::settings::duplicate_keys(entries.iter().map(|e| &e.name), "setting", diags);
}

/// A list of non-empty, distinct strings.
fn string_list(entry: &Setting, diags: &mut Diagnostics) -> Option<Vec<(String, Span)>> {
    let ExprKind::List(items) = &entry.value.kind else {
        wrong(
            diags,
            entry,
            "a list of location names, e.g. `[\"WH-MAIN\"]`",
        );
        return None;
    };
    let mut out: Vec<(String, Span)> = Vec::new();
    for item in items {
        match const_value(item, diags) {
            Some(Const::Value(Value::String(s))) if !s.trim().is_empty() => {
                if out.iter().any(|(seen, _)| seen == &s) {
                    diags.push(
                        Diagnostic::error(
                            codes::DUPLICATE_DEFINITION,
                            item.span,
                            format!("location `{s}` is listed twice"),
                        )
                        .label("listed again here")
                        .help("list each location once"),
                    );
                    continue;
                }
                out.push((s, item.span));
            }
            Some(_) => wrong(diags, entry, "a list of non-empty location names"),
            None => {}
        }
    }
    Some(out)
}

fn non_negative(entry: &Setting, what: &str, diags: &mut Diagnostics) -> Option<i64> {
    match const_value(&entry.value, diags) {
        Some(Const::Value(Value::Number(n))) if n.as_i64().is_some_and(|n| n >= 0) => n.as_i64(),
        Some(Const::Value(Value::Number(n))) if n.is_i64() => {
            out_of_range(
                diags,
                entry.value.span,
                format!("{what} is {n}; it cannot be negative"),
                "use 0 or more units",
            );
            None
        }
        Some(_) => {
            wrong(diags, entry, "a whole number of units");
            None
        }
        None => None,
    }
}

struct ChannelCx<'a> {
    program: &'a Program,
    env: &'a Env,
    module: ModuleId,
    ledger: &'a str,
    locations: &'a [String],
}

impl ChannelCx<'_> {
    /// A `string -> int` table of safety stock; with `locations`, its keys must be ledger
    /// locations.
    fn safety_table(
        &self,
        entry: &Setting,
        keyed_by_location: bool,
        diags: &mut Diagnostics,
    ) -> BTreeMap<String, i64> {
        let ExprKind::Var(name) = &entry.value.kind else {
            wrong(diags, entry, "the name of a `string -> int` table");
            return BTreeMap::new();
        };
        let Some(table_ref) =
            self.program
                .resolve(self.module, &name.name, name.span, Kind::Table, diags)
        else {
            return BTreeMap::new();
        };
        let Some(table) = self.env.tables.get(&table_ref) else {
            return BTreeMap::new();
        };
        if table.key_ty != Ty::String || table.value_ty != Ty::Int {
            wrong(diags, entry, "a table of type `string -> int`");
            return BTreeMap::new();
        }
        let mut out = BTreeMap::new();
        for (key, value) in &table.entries {
            let units = value.as_i64().unwrap_or(0);
            if keyed_by_location && !self.locations.contains(key) {
                unknown_location(diags, entry.value.span, key, self.ledger, self.locations);
                continue;
            }
            if units < 0 {
                out_of_range(
                    diags,
                    entry.value.span,
                    format!("table `{}` holds back {units} units of {key}", name.name),
                    "safety stock is 0 or more units",
                );
                continue;
            }
            out.insert(key.clone(), units);
        }
        out
    }

    /// `publish = connection.operation`: a sink operation taking `InventoryLevel`.
    fn publish_target(&self, entry: &Setting, diags: &mut Diagnostics) -> Option<(String, String)> {
        let ExprKind::Member(target, op) = &entry.value.kind else {
            wrong(
                diags,
                entry,
                "a sink operation, e.g. `shop.set_inventory_level`",
            );
            return None;
        };
        let ExprKind::Var(connection) = &target.kind else {
            wrong(
                diags,
                entry,
                "a sink operation, e.g. `shop.set_inventory_level`",
            );
            return None;
        };
        let conn_ref = self.program.resolve(
            self.module,
            &connection.name,
            connection.span,
            Kind::Connection,
            diags,
        )?;
        let info = self.env.connections.get(&conn_ref)?;
        let connector = info.connector.and_then(|c| self.env.connectors.get(&c));
        if let Some(connector) = connector {
            match connector.sinks.iter().find(|s| s.name == op.name) {
                None => {
                    let help = suggest::did_you_mean(
                        &op.name,
                        connector.sinks.iter().map(|s| s.name.as_str()),
                        &format!("`{}` has no such sink operation", connector.name),
                    );
                    diags.push(
                        Diagnostic::error(
                            codes::UNKNOWN_OPERATION,
                            op.span,
                            format!(
                                "connector `{}` has no sink operation `{}`",
                                connector.name, op.name
                            ),
                        )
                        .label("not a sink operation")
                        .help(help),
                    );
                    return None;
                }
                Some(sink) => {
                    let takes = sink.input.display(self.program);
                    if !(takes.ends_with("InventoryLevel") || sink.input == Ty::Json) {
                        diags.push(
                            Diagnostic::error(
                                codes::OPERATION_TYPE_MISMATCH,
                                op.span,
                                format!(
                                    "`{}.{}` takes {takes}; a channel publishes InventoryLevel",
                                    connection.name, op.name
                                ),
                            )
                            .label(format!("expects {takes}"))
                            .help("publish to an operation that sets an inventory level, e.g. `shopify.set_inventory_level`, `amazon_sp.update_listing_quantity`, `square.set_inventory_count` or an `http` post"),
                        );
                        return None;
                    }
                    if let Some(key) = sink.options.iter().find(|o| o.required).map(|o| &o.name) {
                        diags.push(
                            Diagnostic::error(
                                codes::MISSING_SETTING,
                                op.span,
                                format!(
                                    "`{}.{}` needs `{key}`, which a ledger channel cannot give",
                                    connection.name, op.name
                                ),
                            )
                            .label(format!("a channel publishes with no `{key}`"))
                            .help("publish to an operation that sets an inventory level, e.g. `shopify.set_inventory_level` or an `http` post"),
                        );
                        return None;
                    }
                }
            }
        }
        Some((connection.name.clone(), op.name.clone()))
    }

    fn channel(
        &self,
        name: &Ident,
        settings: &Settings,
        diags: &mut Diagnostics,
    ) -> Option<(ir::LedgerChannel, Vec<Span>)> {
        duplicates(&settings.entries.iter().collect::<Vec<_>>(), diags);
        let mut channel = ir::LedgerChannel {
            name: name.name.clone(),
            locations: Vec::new(),
            share_bp: 10_000,
            cap: None,
            min_publish: 0,
            safety_stock: 0,
            safety_by_location: BTreeMap::new(),
            safety_by_sku: BTreeMap::new(),
            publish: None,
        };
        let mut location_spans = Vec::new();
        let mut publish: Option<(String, String)> = None;
        let mut publish_location: Option<(String, Span)> = None;
        let (mut rate, mut burst, mut retry): (Option<Rate>, Option<u64>, Option<String>) =
            (None, None, None);
        let mut has_locations = false;
        for entry in &settings.entries {
            match entry.name.name.as_str() {
                "locations" => {
                    has_locations = true;
                    for (location, span) in string_list(entry, diags).unwrap_or_default() {
                        if self.locations.contains(&location) {
                            channel.locations.push(location);
                            location_spans.push(span);
                        } else {
                            unknown_location(diags, span, &location, self.ledger, self.locations);
                        }
                    }
                }
                "share" => match const_value(&entry.value, diags) {
                    Some(Const::Percent(p)) if p > 0.0 && p <= 100.0 => {
                        channel.share_bp = (p * 100.0).round() as u32
                    }
                    Some(Const::Percent(p)) => out_of_range(
                        diags,
                        entry.value.span,
                        format!("share {p}% is outside 0% to 100%"),
                        "give the channel a share above 0% and at most 100%",
                    ),
                    Some(_) => wrong(diags, entry, "a percentage like `40%`"),
                    None => {}
                },
                "cap" => channel.cap = non_negative(entry, "the cap", diags),
                "min_publish" => {
                    channel.min_publish =
                        non_negative(entry, "the minimum to publish", diags).unwrap_or(0)
                }
                "safety_stock" => {
                    channel.safety_stock =
                        non_negative(entry, "the safety stock", diags).unwrap_or(0)
                }
                "safety_stock_by_location" => {
                    channel.safety_by_location = self.safety_table(entry, true, diags)
                }
                "safety_stock_by_sku" => {
                    channel.safety_by_sku = self.safety_table(entry, false, diags)
                }
                "publish" => publish = self.publish_target(entry, diags),
                "publish_location" => match const_value(&entry.value, diags) {
                    Some(Const::Value(Value::String(s))) => {
                        publish_location = Some((s, entry.value.span))
                    }
                    Some(_) => wrong(diags, entry, "a location name string"),
                    None => {}
                },
                "rate" => match const_value(&entry.value, diags) {
                    Some(Const::Rate { count, per_secs }) if count > 0 => {
                        rate = Some(Rate { count, per_secs })
                    }
                    Some(Const::Rate { .. }) => diags.push(
                        Diagnostic::error(
                            codes::RATE_OUT_OF_RANGE,
                            entry.value.span,
                            "a rate of 0 never publishes",
                        )
                        .label("zero rate")
                        .help("use a rate like `2/s`, or leave `rate` out for no limit"),
                    ),
                    Some(_) => wrong(diags, entry, "a rate like `2/s`"),
                    None => {}
                },
                "burst" => match const_value(&entry.value, diags) {
                    Some(Const::Value(Value::Number(n)))
                        if n.as_u64().is_some_and(|n| (1..=10_000).contains(&n)) =>
                    {
                        burst = n.as_u64()
                    }
                    Some(_) => wrong(diags, entry, "a count between 1 and 10000"),
                    None => {}
                },
                "retry" => match &entry.value.kind {
                    ExprKind::Var(policy) => {
                        if self
                            .program
                            .resolve(self.module, &policy.name, policy.span, Kind::Policy, diags)
                            .is_some()
                        {
                            retry = Some(policy.name.clone());
                        }
                    }
                    _ => wrong(diags, entry, "the name of a retry policy"),
                },
                _ => unknown_setting(&entry.name, CHANNEL_KEYS, diags),
            }
        }
        if !has_locations {
            diags.push(
                Diagnostic::error(
                    codes::MISSING_SETTING,
                    name.span,
                    format!("channel `{}` names no locations", name.name),
                )
                .label("which locations serve this channel?")
                .help(format!(
                    "add `locations = [...]` with some of {}",
                    self.locations.join(", ")
                )),
            );
        }
        if let Some((location, span)) = &publish_location {
            if !self.locations.contains(location) {
                unknown_location(diags, *span, location, self.ledger, self.locations);
            }
        }
        channel.publish = publish.map(|(connection, operation)| ir::Publication {
            connection,
            operation,
            location: publish_location
                .map(|(l, _)| l)
                .or_else(|| channel.locations.first().cloned())
                .unwrap_or_default(),
            rate,
            burst,
            retry,
        });
        Some((channel, location_spans))
    }
}

/// The connector item behind every ledger (`std.connectors.ledger`).
fn ledger_connector(program: &Program) -> Option<ItemRef> {
    program.modules.iter().enumerate().find_map(|(m, module)| {
        if module.name != crate::resolve::LEDGER_MODULE {
            return None;
        }
        module
            .ast
            .items
            .iter()
            .enumerate()
            .find_map(|(i, item)| match item {
                crate::syntax::ast::Item::Connector(c) if c.name.name == "ledger" => {
                    Some(ItemRef {
                        module: ModuleId(m as u32),
                        item: i as u32,
                    })
                }
                _ => None,
            })
    })
}

/// Checks a ledger declaration.
pub fn ledger_info(
    program: &Program,
    env: &Env,
    module: ModuleId,
    decl: &LedgerDecl,
    diags: &mut Diagnostics,
) -> (ConnectionInfo, ir::Ledger) {
    let (locations, window) = ledger_settings(decl, diags);
    let cx = ChannelCx {
        program,
        env,
        module,
        ledger: &decl.name.name,
        locations: &locations,
    };
    let (channels, spans) = cx.channels(decl, diags);
    check_overallocation(&locations, &channels, &spans, diags);
    let ledger = ir::Ledger {
        name: decl.name.name.clone(),
        locations,
        reservation_window_ms: window,
        channels,
    };
    let info = ConnectionInfo {
        connector: ledger_connector(program),
        ir: ir::Connection {
            name: decl.name.name.clone(),
            connector: "ledger".into(),
            settings: BTreeMap::new(),
            quota: ir::Quota::default(),
            declared: None,
        },
    };
    (info, ledger)
}

/// The ledger's own settings: its locations and reservation window.
fn ledger_settings(decl: &LedgerDecl, diags: &mut Diagnostics) -> (Vec<String>, u64) {
    let settings: Vec<&Setting> = decl
        .members
        .iter()
        .filter_map(|m| match m {
            LedgerMember::Setting(s) => Some(s),
            LedgerMember::Channel { .. } => None,
        })
        .collect();
    duplicates(&settings, diags);
    let mut locations: Vec<String> = Vec::new();
    let mut window = DEFAULT_WINDOW_MS;
    let mut has_locations = false;
    for entry in &settings {
        match entry.name.name.as_str() {
            "locations" => {
                has_locations = true;
                locations = string_list(entry, diags)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(l, _)| l)
                    .collect();
            }
            "reservation_window" => match const_value(&entry.value, diags) {
                Some(Const::Duration(ms)) if (1000..=MAX_WINDOW_MS).contains(&ms) => window = ms,
                Some(Const::Duration(_)) => out_of_range(
                    diags,
                    entry.value.span,
                    "a reservation window must be between 1s and 30d".into(),
                    "use a window like `30m`; confirm orders to keep their reservation longer",
                ),
                Some(_) => wrong(diags, entry, "a duration like `30m`"),
                None => {}
            },
            _ => unknown_setting(&entry.name, LEDGER_KEYS, diags),
        }
    }
    if !has_locations {
        diags.push(
            Diagnostic::error(
                codes::MISSING_SETTING,
                decl.name.span,
                format!("ledger `{}` keeps no locations", decl.name.name),
            )
            .label("which locations does it keep?")
            .help("add `locations = [\"WH-MAIN\", \"STORE-1\"]`"),
        );
    }
    (locations, window)
}

/// Reports (`E0603`) each location whose channels' shares add up to more than 100%: no
/// unit is promised twice. `spans` holds each channel's name and location spans.
fn check_overallocation(
    locations: &[String],
    channels: &[ir::LedgerChannel],
    spans: &[(Span, Vec<Span>)],
    diags: &mut Diagnostics,
) {
    for location in locations {
        let serving: Vec<usize> = (0..channels.len())
            .filter(|&c| channels[c].locations.contains(location))
            .collect();
        let total: u32 = serving.iter().map(|&c| channels[c].share_bp).sum();
        if total > 10_000 {
            let parts: Vec<String> = serving
                .iter()
                .map(|&c| {
                    format!(
                        "{} {}%",
                        channels[c].name,
                        f64::from(channels[c].share_bp) / 100.0
                    )
                })
                .collect();
            let first = serving[0];
            let at = channels[first]
                .locations
                .iter()
                .position(|l| l == location)
                .and_then(|i| spans[first].1.get(i).copied())
                .unwrap_or(spans[first].0);
            let mut diagnostic = Diagnostic::error(
                codes::OVERALLOCATED_LOCATION,
                at,
                format!(
                    "location `{location}` is promised {}% across channels: {}",
                    f64::from(total) / 100.0,
                    parts.join(", ")
                ),
            )
            .label("the same units would be offered to several channels")
            .help(format!(
                "give the channels serving {location} shares that add up to at most 100%, e.g. `share = {}%`",
                100 / serving.len()
            ));
            for &other in &serving[1..] {
                if let Some(span) = channels[other]
                    .locations
                    .iter()
                    .position(|l| l == location)
                    .and_then(|i| spans[other].1.get(i).copied())
                {
                    diagnostic = diagnostic
                        .secondary(span, format!("also offered to {}", channels[other].name));
                }
            }
            diags.push(diagnostic);
        }
    }
}

impl ChannelCx<'_> {
    /// The ledger's channels, each with its name's and locations' spans; a channel
    /// declared twice is reported and skipped.
    fn channels(
        &self,
        decl: &LedgerDecl,
        diags: &mut Diagnostics,
    ) -> (Vec<ir::LedgerChannel>, Vec<(Span, Vec<Span>)>) {
        let mut channels: Vec<ir::LedgerChannel> = Vec::new();
        let mut spans: Vec<(Span, Vec<Span>)> = Vec::new();
        for member in &decl.members {
            let LedgerMember::Channel { name, settings, .. } = member else {
                continue;
            };
            if let Some(first) = channels.iter().position(|c| c.name == name.name) {
                diags.push(
                    Diagnostic::error(
                        codes::DUPLICATE_DEFINITION,
                        name.span,
                        format!("channel `{}` is declared twice", name.name),
                    )
                    .label("declared again here")
                    .secondary(spans[first].0, "first declared here")
                    .help("merge the two channel blocks"),
                );
                continue;
            }
            if let Some((channel, location_spans)) = self.channel(name, settings, diags) {
                spans.push((name.span, location_spans));
                channels.push(channel);
            }
        }
        (channels, spans)
    }
}

/// Checks a `reserve` sink's `channel` against the ledger behind the connection.
pub fn check_reserve_channel(
    env: &Env,
    connection: &str,
    channel: &str,
    span: Span,
    diags: &mut Diagnostics,
) {
    let Some(ledger) = env.ledgers.values().find(|l| l.name == connection) else {
        return;
    };
    if ledger.channels.iter().any(|c| c.name == channel) {
        return;
    }
    let help = suggest::did_you_mean(
        channel,
        ledger.channels.iter().map(|c| c.name.as_str()),
        &format!(
            "declare `channel {channel} {{ ... }}` in ledger `{}`",
            ledger.name
        ),
    );
    diags.push(
        Diagnostic::error(
            codes::UNKNOWN_CHANNEL,
            span,
            format!("ledger `{}` has no channel `{channel}`", ledger.name),
        )
        .label("not a channel of the ledger")
        .help(help),
    );
}
