//! A declared sink: an optional read-before-write (`lookup`), then the write with the
//! message's idempotency key in the declared header, classified by the declaration's
//! rules; a success names the created record (`document`) for the lineage.

use super::api::{Api, Extra};
use super::classify::Compiled;
use super::select::{self, Path};
use crate::{Call, CallFuture, CallOutcome, SinkConnector};
use minijinja::Value as Context;
use omniflow_ir::declared::Operation;

/// A declared sink operation.
pub struct DeclaredSink {
    api: Api,
    op: Operation,
    rules: Vec<Compiled>,
    found: Option<Path>,
    document: Option<Path>,
    /// The lookup's rule: a 404 is an absent record, not a failure.
    absent: Vec<Compiled>,
}

impl DeclaredSink {
    /// The sink of operation `op` of a connection.
    pub fn new(api: Api, op: &Operation) -> Result<DeclaredSink, String> {
        Ok(DeclaredSink {
            rules: super::classify::compile(&op.rules)?,
            found: op
                .lookup
                .as_ref()
                .map(|l| Path::new(&l.found))
                .transpose()?,
            document: op.document.as_deref().map(Path::new).transpose()?,
            absent: super::classify::compile(&[omniflow_ir::declared::Rule {
                status: vec![(404, 404)],
                when: None,
                equals: None,
                then: omniflow_ir::declared::Then::Ok,
                reason: None,
                wait_header: None,
                wait: None,
            }])?,
            op: op.clone(),
            api,
        })
    }

    /// Reads before writing: `Some(outcome)` when the record exists already (or the
    /// lookup failed), `None` when the write is to be sent.
    async fn lookup(&self, ctx: &Context, call: &Call<'_>) -> Option<CallOutcome> {
        let (lookup, found) = (self.op.lookup.as_ref()?, self.found.as_ref()?);
        let answer = match self
            .api
            .send(
                &lookup.request,
                ctx,
                Extra::default(),
                &self.absent,
                call.timeout,
            )
            .await
        {
            Ok(answer) => answer,
            Err(outcome) => return Some(outcome),
        };
        if answer.reply.status == 404 {
            return None;
        }
        let Some(json) = &answer.json else {
            // A spoiled answer is not "absent": writing now could write twice.
            return Some(crate::client::unreadable(format!(
                "the lookup answer is not JSON: {}",
                answer.reply.excerpt()
            )));
        };
        let existing = found.first(json)?;
        Some(CallOutcome::Recorded {
            document: select::value_text(existing).unwrap_or_else(|| call.key.to_string()),
        })
    }
}

impl SinkConnector for DeclaredSink {
    fn call<'a>(&'a self, call: Call<'a>) -> CallFuture<'a> {
        Box::pin(async move {
            let message = omniflow_mapping::json_in::parse(
                call.body,
                &omniflow_mapping::json_in::Projection::whole(),
            )
            .map(|value| value.to_template())
            .unwrap_or_else(|_| Context::from(()));
            let ctx = self
                .api
                .context(&[("message", message), ("key", Context::from(call.key))]);
            if let Some(done) = self.lookup(&ctx, &call).await {
                return done;
            }
            let mut headers = vec![(
                "x-correlation-id".to_string(),
                call.correlation_id.to_string(),
            )];
            if let Some(header) = &self.op.idempotency {
                headers.push((header.clone(), call.key.to_string()));
            }
            match self
                .api
                .send(
                    &self.op.request,
                    &ctx,
                    Extra {
                        headers: &headers,
                        ..Extra::default()
                    },
                    &self.rules,
                    call.timeout,
                )
                .await
            {
                Ok(answer) => CallOutcome::done(
                    self.document
                        .as_ref()
                        .zip(answer.json.as_ref())
                        .and_then(|(path, json)| path.first(json))
                        .and_then(select::value_text),
                ),
                Err(outcome) => outcome,
            }
        })
    }
}
