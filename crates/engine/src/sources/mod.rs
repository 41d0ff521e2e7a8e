//! Sources: where accepted messages come from. Each appends to the durable inbox before
//! it acknowledges (advances its cursor, answers the webhook).

pub mod file;
pub mod poll;
pub mod schedule;
pub mod webhook;

use crate::engine::FlowCtx;
use omniflow_ir::NodeKind;
use omniflow_mapping::pipeline::KindRt;
use std::rc::Rc;
use tokio::sync::watch;

/// Starts every source of a flow; webhook sources register with the shared server.
pub fn start(
    ctx: &Rc<FlowCtx>,
    stop: &watch::Receiver<bool>,
    webhooks: &webhook::Routes,
    only: Option<&[String]>,
) -> Result<(), String> {
    let flow = &ctx.pipeline.flows[ctx.flow_idx];
    for node in &flow.ir.nodes {
        if only.is_some_and(|names| !names.contains(&node.name)) {
            continue;
        }
        let NodeKind::Source {
            connection,
            operation,
            kind,
            options,
        } = &node.kind
        else {
            continue;
        };
        if !matches!(
            flow.nodes[flow.index[&node.name]].kind,
            KindRt::Source { .. }
        ) {
            continue;
        }
        let conn = ctx
            .pipeline
            .graph
            .connections
            .iter()
            .find(|c| &c.name == connection)
            .ok_or_else(|| format!("unknown connection `{connection}`"))?;
        let settings = ctx
            .shared
            .connectors
            .settings(conn)
            .map_err(|e| e.to_string())?;
        match (conn.connector.as_str(), kind.as_str()) {
            ("file", "file") => {
                let source = file::FileSource::new(ctx.clone(), &node.name, &settings, options)?;
                let stop = stop.clone();
                tokio::task::spawn_local(async move { source.run(stop).await });
            }
            (_, kind @ ("poll" | "schedule")) => {
                let pager = omniflow_connectors::pager_of(&ctx.shared.connectors, conn, operation, &settings, options)
                    .map_err(|e| format!("connection `{connection}`: {e}"))?;
                let source = poll::PollSource::new(
                    ctx.clone(),
                    &node.name,
                    poll::PollOptions::from(options),
                    pager,
                    ctx.shared.limits.get(&conn.name),
                    stop.clone(),
                );
                let stop = stop.clone();
                match options.get("cron").and_then(serde_json::Value::as_str) {
                    Some(cron) if kind == "schedule" => {
                        let tz = options.get("tz").and_then(serde_json::Value::as_str);
                        let schedule = omniflow_ir::schedule::Schedule::new(cron, tz)
                            .map_err(|e| format!("flow `{}`: source `{}`: {e}", flow.name, node.name))?;
                        let clock = schedule::Clock::from_env();
                        let source = schedule::CronSource::new(ctx.clone(), &node.name, schedule, clock, source);
                        tokio::task::spawn_local(async move { source.run(stop).await })
                    }
                    _ => tokio::task::spawn_local(async move { source.run(stop).await }),
                };
            }
            (connector, "webhook") => webhooks
                .add(ctx.clone(), &node.name, connector, options, &settings)
                .map_err(|e| format!("connection `{connection}`: {e}"))?,
            ("bus", "bus") if crate::bus::on_nats(&settings) => {
                crate::bus::nats::subscribe(ctx.clone(), ctx.shared.nats.clone(), &node.name, &settings, options, stop.clone())?
            }
            ("bus", "bus") => crate::bus::subscribe(ctx.clone(), &ctx.shared.bus, &node.name, &settings, options)?,
            (connector, kind) => {
                return Err(format!(
                    "flow `{}`: source `{}` ({connector}.{operation}, {kind}) is not available in this runtime yet",
                    flow.name, node.name
                ))
            }
        }
    }
    Ok(())
}
