//! Webhook sources: a delivery's signature and the headers its vendor always sends are
//! checked before anything is stored (a refusal gets its scheme's 4xx, is logged and
//! counted); it is answered 2xx only once it is durable in the inbox; with
//! `dedupe = true`, a delivery id seen before is acknowledged and not stored again.

use crate::engine::FlowCtx;
use omniflow_connectors::Verifier;
use omniflow_http::server::{Req, Resp};
use omniflow_ir::NodeKind;
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

/// Counter of refused deliveries (signature, size, missing headers, topic).
pub const REJECTED: &str = "omniflow_webhooks_rejected_total";

struct Route {
    ctx: Rc<FlowCtx>,
    source: String,
    dedupe: bool,
    verifier: Rc<dyn Verifier>,
    /// Largest body accepted (the connection's `max_body_bytes`).
    max_body: Option<usize>,
}

/// Webhook paths and the sources behind them.
#[derive(Default, Clone)]
pub struct Routes {
    routes: Rc<RefCell<BTreeMap<String, Route>>>,
}

impl Routes {
    /// Registers a webhook source at its `path` (default: the connection's `path`, else
    /// `/hooks/FLOW/SOURCE`), checked
    /// with the signature scheme of its connector.
    pub fn add(
        &self,
        ctx: Rc<FlowCtx>,
        source: &str,
        connector: &str,
        options: &BTreeMap<String, Value>,
        settings: &BTreeMap<String, Value>,
    ) -> Result<(), String> {
        let operation = ctx.pipeline.flows[ctx.flow_idx]
            .ir
            .nodes
            .iter()
            .find(|node| node.name == source)
            .and_then(|node| match &node.kind {
                NodeKind::Source { operation, .. } => Some(operation.as_str()),
                _ => None,
            })
            .unwrap_or_default();
        let verifier =
            omniflow_connectors::verifier(&ctx.shared.connectors, connector, operation, settings)
                .map_err(|e| e.to_string())?;
        let max_body =
            omniflow_connectors::client::body_limit(settings, omniflow_ir::MAX_WEBHOOK_BODY_BYTES)?;
        let path = options
            .get("path")
            .or_else(|| settings.get("path"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("/hooks/{}/{source}", ctx.flow_name()));
        let dedupe = options
            .get("dedupe")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.routes.borrow_mut().insert(
            path,
            Route {
                ctx,
                source: source.to_string(),
                dedupe,
                verifier: Rc::from(verifier),
                max_body,
            },
        );
        Ok(())
    }

    /// True when no webhook source is registered.
    pub fn is_empty(&self) -> bool {
        self.routes.borrow().is_empty()
    }

    /// Handles one request.
    pub async fn handle(&self, req: Req, stopping: bool) -> Resp {
        let (ctx, source, dedupe, verifier, max_body) = match self.routes.borrow().get(&req.path) {
            Some(route) => (
                route.ctx.clone(),
                route.source.clone(),
                route.dedupe,
                route.verifier.clone(),
                route.max_body,
            ),
            None => {
                return Resp::json(404, serde_json::json!({"error": "no webhook at this path"}))
            }
        };
        if req.method != "POST" {
            return Resp::json(405, serde_json::json!({"error": "use POST"}));
        }
        if stopping {
            return Resp::json(
                503,
                serde_json::json!({"error": "shutting down; retry later"}),
            );
        }
        if let Some(max) = max_body.filter(|max| req.body.len() > *max) {
            ctx.metrics.add(REJECTED, ctx.flow_name(), &source, 1);
            return Resp::json(
                413,
                serde_json::json!({"error": format!("the body is larger than {max} bytes")}),
            );
        }
        if let Err(refusal) = verifier.verify(&req.headers, &req.body) {
            let status = refusal.status();
            tracing::warn!(flow = %ctx.flow_name(), source = %source, status, reason = %refusal, "webhook delivery refused");
            ctx.metrics.add(REJECTED, ctx.flow_name(), &source, 1);
            return Resp::json(status, serde_json::json!({"error": refusal.to_string()}));
        }
        let delivery_id = verifier
            .delivery_id(&req.headers, &req.body)
            .filter(|_| dedupe);
        let flow = ctx.flow_name().to_string();
        let body = req.body.to_vec();
        // The sender's trace goes on with the message when traces are exported.
        let traceparent = req
            .headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|tp| {
                crate::ops::telemetry::exporting()
                    && crate::ops::telemetry::parse_traceparent(tp).is_some()
            })
            .map(str::to_string);
        let result = ctx
            .store
            .call(move |b| {
                if let Some(id) = &delivery_id {
                    let namespace = format!("webhook:{flow}/{source}");
                    // Any replica may take a delivery: exactly one records its id.
                    let delivered = omniflow_state::OutcomeStatus::Delivered;
                    if !b.record_new_outcome(&namespace, id, delivered)? {
                        return Ok(None);
                    }
                }
                let id = b.append(&flow, &source, &[body], None)?.first().copied();
                if let (Some(id), Some(tp)) = (id, &traceparent) {
                    b.set_traceparent(id, tp)?;
                }
                Ok(id)
            })
            .await;
        match result {
            Ok(Some(id)) => {
                ctx.appended.notify_one();
                Resp::json(202, serde_json::json!({"accepted": id}))
            }
            Ok(None) => {
                ctx.metrics.add(
                    crate::ops::metrics::DUPLICATES,
                    ctx.flow_name(),
                    "webhook",
                    1,
                );
                Resp::json(200, serde_json::json!({"duplicate": true}))
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot store a webhook delivery");
                Resp::json(503, serde_json::json!({"error": "not stored; retry"}))
            }
        }
    }
}
