//! A declared source: every page of a poll, read by the declaration's paging, with the
//! cursor (the watermark and, within a poll, the next page) committed with each page.
//!
//! The stored position is JSON: `w`/`t` the watermark and tie-breaker the poll asks from,
//! `p` the next page while a poll is under way (a restart goes on from it), `hw`/`ht` the
//! largest pair read so far in the poll, which becomes `w`/`t` with the last page. Records
//! carry a dedupe key of their identity and content, so a record read again unchanged
//! (inside the lookback, or on an API's inclusive `since`) is skipped, and a changed one
//! is read again.

use super::api::{Api, Extra};
use super::classify::Compiled;
use super::select::{self, Path};
use crate::api::{Page, PageFuture, Pager};
use crate::client;
use crate::CallOutcome;
use minijinja::Value as Context;
use omniflow_ir::declared::{Operation, Paging, Watermark};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::cmp::Ordering;
use std::time::Duration;

/// The longest a page waits out throttling (`Retry-After`) before the poll fails.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Most pages one poll reads (an API that never stops paging fails the poll).
const MAX_PAGES: u64 = 100_000;

/// A declared poll source.
pub struct DeclaredPager {
    api: Api,
    op: Operation,
    rules: Vec<Compiled>,
    records: Option<Path>,
    key: Option<Path>,
    field: Option<Path>,
    tie: Option<Path>,
    next: Option<Path>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    w: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hw: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ht: Option<String>,
    /// Pages read so far in the poll.
    #[serde(default, skip_serializing_if = "is_zero")]
    n: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Orders two stamps or ids: as numbers when both are, as instants when both are
/// RFC 3339 timestamps, else as text.
pub fn compare(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (a.parse::<i128>(), b.parse::<i128>()) {
        return x.cmp(&y);
    }
    if let (Ok(x), Ok(y)) = (a.parse::<f64>(), b.parse::<f64>()) {
        return x.partial_cmp(&y).unwrap_or(Ordering::Equal);
    }
    if let (Ok(x), Ok(y)) = (a.parse::<jiff::Timestamp>(), b.parse::<jiff::Timestamp>()) {
        return x.cmp(&y);
    }
    let civil = |s: &str| {
        (s.as_bytes().get(4) == Some(&b'-'))
            .then(|| {
                s.replacen(' ', "T", 1)
                    .parse::<jiff::civil::DateTime>()
                    .ok()
            })
            .flatten()
            .ok_or(())
    };
    if let (Ok(x), Ok(y)) = (civil(a), civil(b)) {
        return x.cmp(&y);
    }
    a.cmp(b)
}

fn pair_cmp(a: (&str, Option<&str>), b: (&str, Option<&str>)) -> Ordering {
    compare(a.0, b.0).then_with(|| match (a.1, b.1) {
        (Some(x), Some(y)) => compare(x, y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    })
}

/// The watermark less the lookback: a timestamp moved back (in UTC), a number of
/// seconds less, anything else as it is.
pub fn since(watermark: &str, lookback: Duration) -> String {
    if lookback.is_zero() {
        return watermark.to_string();
    }
    if let Ok(stamp) = watermark.parse::<jiff::Timestamp>() {
        let back = jiff::SignedDuration::try_from(lookback).unwrap_or(jiff::SignedDuration::ZERO);
        return stamp
            .checked_sub(back)
            .map_or_else(|_| watermark.to_string(), |s| s.to_string());
    }
    // A number of seconds since the epoch, or of milliseconds from 13 digits on.
    if let Ok(n) = watermark.parse::<i64>() {
        let unit = if n.unsigned_abs() >= 100_000_000_000 {
            1000
        } else {
            1
        };
        let back = i64::try_from(lookback.as_millis() * unit / 1000).unwrap_or(i64::MAX);
        return n.saturating_sub(back).to_string();
    }
    let back = jiff::SignedDuration::try_from(lookback).unwrap_or(jiff::SignedDuration::ZERO);
    let dashed = watermark.as_bytes().get(4) == Some(&b'-');
    // A stamp without an offset (common in ERPs) is moved back as written, in its own
    // clock and style; a date alone by whole days.
    if dashed && watermark.len() > 10 {
        if let Ok(civil) = watermark
            .replacen(' ', "T", 1)
            .parse::<jiff::civil::DateTime>()
        {
            if let Ok(earlier) = civil.checked_sub(back) {
                let text = earlier.to_string();
                return match watermark.as_bytes().get(10) {
                    Some(b' ') => text.replacen('T', " ", 1),
                    _ => text,
                };
            }
        }
    }
    if dashed && watermark.len() == 10 {
        if let Ok(date) = watermark.parse::<jiff::civil::Date>() {
            let days = lookback.as_secs().div_ceil(86_400);
            if let Ok(earlier) = date.checked_sub(jiff::Span::new().days(days as i64)) {
                return earlier.to_string();
            }
        }
    }
    watermark.to_string()
}

/// The `rel="next"` target of a `Link` header (RFC 8288: links are split on the commas
/// outside their `<...>`, so a URL holding commas stays whole).
pub fn link_next(header: &str) -> Option<String> {
    let mut links = Vec::new();
    let (mut start, mut in_url) = (0, false);
    for (at, c) in header.char_indices() {
        match c {
            '<' => in_url = true,
            '>' => in_url = false,
            ',' if !in_url => {
                links.push(&header[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    links.push(&header[start..]);
    links.into_iter().find_map(|link| {
        let (url, params) = link.trim().strip_prefix('<')?.split_once('>')?;
        params
            .split(';')
            .filter_map(|p| p.trim().split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("rel")
                    && value
                        .trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
            })
            .then(|| url.to_string())
    })
}

/// An object without its null members: an absent value is undefined in a template, so
/// it renders empty (and a query parameter it fills is left out), not as `none`.
fn present(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

fn path(text: &Option<String>) -> Result<Option<Path>, String> {
    text.as_deref().map(Path::new).transpose()
}

impl DeclaredPager {
    /// The pager of operation `op` of a connection.
    pub fn new(api: Api, op: &Operation) -> Result<DeclaredPager, String> {
        let next = match &op.paging {
            Paging::NextUrl { next } | Paging::NextToken { next, .. } => Some(Path::new(next)?),
            Paging::Graphql { page_info } => Some(Path::new(page_info)?),
            _ => None,
        };
        let watermark = op.watermark.as_ref();
        Ok(DeclaredPager {
            rules: super::classify::compile(&op.rules)?,
            records: path(&op.records)?,
            key: path(&op.key)?,
            field: watermark.map(|w| Path::new(&w.field)).transpose()?,
            tie: path(&watermark.and_then(|w| w.tie.clone()))?,
            next,
            op: op.clone(),
            api,
        })
    }

    fn watermark(&self) -> Option<&Watermark> {
        self.op.watermark.as_ref()
    }

    /// The template variables of a page: `cursor` and `page`.
    fn context(&self, pos: &Position) -> Context {
        let (size, offset, number, token, after) = match (&self.op.paging, &pos.p) {
            (Paging::Offset { size, .. }, p) => (
                Some(*size),
                Some(p.as_ref().and_then(Value::as_u64).unwrap_or(0)),
                None,
                None,
                None,
            ),
            (Paging::Page { size, start, .. }, p) => (
                Some(*size),
                None,
                Some(p.as_ref().and_then(Value::as_u64).unwrap_or(*start)),
                None,
                None,
            ),
            (Paging::NextToken { .. }, p) => (None, None, None, p.clone(), None),
            (Paging::Graphql { .. }, p) => (None, None, None, None, p.clone()),
            _ => (None, None, None, None, None),
        };
        let lookback = Duration::from_millis(self.watermark().map_or(0, |w| w.lookback_ms));
        let cursor = serde_json::json!({
            "watermark": pos.w,
            "tie": pos.t,
            "since": pos.w.as_deref().map(|w| since(w, lookback)),
        });
        let page = serde_json::json!({
            "size": size, "offset": offset, "number": number, "token": token, "after": after,
        });
        self.api.context(&[
            ("cursor", Context::from_serialize(present(cursor))),
            ("page", Context::from_serialize(present(page))),
        ])
    }

    /// The query parameters the paging adds.
    fn paging_query(&self, pos: &Position) -> Vec<(String, String)> {
        let mut query = Vec::new();
        match &self.op.paging {
            Paging::NextToken {
                param: Some(param), ..
            } => {
                if let Some(token) = pos.p.as_ref().and_then(select::value_text) {
                    query.push((param.clone(), token));
                }
            }
            Paging::Offset {
                param,
                size_param,
                size,
            } => {
                let offset = pos.p.as_ref().and_then(Value::as_u64).unwrap_or(0);
                query.extend(param.clone().map(|p| (p, offset.to_string())));
                query.extend(size_param.clone().map(|p| (p, size.to_string())));
            }
            Paging::Page {
                param,
                size_param,
                size,
                start,
            } => {
                let number = pos.p.as_ref().and_then(Value::as_u64).unwrap_or(*start);
                query.extend(param.clone().map(|p| (p, number.to_string())));
                query.extend(size_param.clone().map(|p| (p, size.to_string())));
            }
            _ => {}
        }
        query
    }

    /// The records of an answer, each as its own bytes.
    fn records<'r>(&self, raw: &'r RawValue, json: &Value) -> Result<Vec<&'r RawValue>, String> {
        let fields = || match json {
            Value::Object(map) => format!(
                " (its fields: {})",
                map.keys().take(12).cloned().collect::<Vec<_>>().join(", ")
            ),
            _ => String::new(),
        };
        let Some(path) = &self.records else {
            return serde_json::from_str::<Vec<&RawValue>>(raw.get()).map_err(|_| {
                format!(
                    "the answer is {}, not a list; give the source `records = $.path`{}",
                    client::kind(json),
                    fields()
                )
            });
        };
        let Some(selected) = path.select_raw(raw) else {
            if self.op.absent_is_empty && json.is_object() {
                return Ok(Vec::new());
            }
            return Err(format!(
                "the answer has nothing at `{}`{}",
                path.text,
                fields()
            ));
        };
        if path.fans_out() {
            return Ok(selected
                .into_iter()
                .filter(|r| r.get().trim() != "null")
                .collect());
        }
        match selected.first() {
            None => Ok(Vec::new()),
            Some(one) if one.get().trim() == "null" => Ok(Vec::new()),
            Some(one) => serde_json::from_str::<Vec<&RawValue>>(one.get()).map_err(|_| {
                format!(
                    "the answer's `{}` is not a list: {}",
                    path.text,
                    one.get().chars().take(120).collect::<String>()
                )
            }),
        }
    }

    /// The next page after this answer, `None` when this was the last.
    fn next_page(
        &self,
        answer: &super::api::Answer,
        json: &Value,
        count: usize,
        pos: &Position,
    ) -> Result<Option<Value>, String> {
        Ok(match &self.op.paging {
            Paging::None => None,
            Paging::Link => answer
                .reply
                .header("link")
                .and_then(link_next)
                .map(|next| self.api.next_url(&answer.url, &next))
                .transpose()?
                .map(Value::String),
            Paging::NextUrl { .. } => self
                .next
                .as_ref()
                .and_then(|p| p.first(json))
                .and_then(select::value_text)
                .filter(|t| !t.is_empty())
                .map(|next| self.api.next_url(&answer.url, &next))
                .transpose()?
                .map(Value::String),
            Paging::NextToken { .. } => self
                .next
                .as_ref()
                .and_then(|p| p.first(json))
                .and_then(select::value_text)
                .filter(|t| !t.is_empty())
                .map(Value::String),
            Paging::Offset { size, .. } => {
                let offset = pos.p.as_ref().and_then(Value::as_u64).unwrap_or(0);
                (count as u64 >= *size).then(|| Value::from(offset + *size))
            }
            Paging::Page { size, start, .. } => {
                let number = pos.p.as_ref().and_then(Value::as_u64).unwrap_or(*start);
                (count as u64 >= *size).then(|| Value::from(number + 1))
            }
            Paging::Graphql { page_info } => {
                let info = self
                    .next
                    .as_ref()
                    .and_then(|p| p.first(json))
                    .ok_or_else(|| format!("the answer has no page info at `{page_info}`"))?;
                match info.get("hasNextPage").and_then(Value::as_bool) {
                    Some(true) => Some(
                        info.get("endCursor")
                            .filter(|c| c.is_string())
                            .cloned()
                            .ok_or("the answer has a next page but no `endCursor`")?,
                    ),
                    Some(false) => None,
                    None => {
                        return Err(format!(
                            "the page info at `{page_info}` has no `hasNextPage`"
                        ))
                    }
                }
            }
        })
    }

    async fn read(&self, pos: Position) -> Result<Page, String> {
        let ctx = self.context(&pos);
        let url = match (&self.op.paging, &pos.p) {
            (Paging::Link | Paging::NextUrl { .. }, Some(Value::String(url))) => Some(url.as_str()),
            _ => None,
        };
        let query = self.paging_query(&pos);
        let mut waited = Duration::ZERO;
        let answer = loop {
            let sent = self
                .api
                .send(
                    &self.op.request,
                    &ctx,
                    Extra {
                        url,
                        query: &query,
                        headers: &[],
                    },
                    &self.rules,
                    Duration::from_secs(30),
                )
                .await;
            match sent {
                Ok(answer) => break answer,
                // Throttled with a wait: the poll waits it out and asks again for the same
                // page, up to a minute in all, rather than failing its remaining pages.
                Err(CallOutcome::Transient {
                    retry_after: Some(wait),
                    reason,
                    ..
                }) if waited + wait <= MAX_WAIT => {
                    tracing::info!(connector = %self.api.name, %reason, ?wait, "throttled; waiting before asking for the page again");
                    tokio::time::sleep(wait).await;
                    waited += wait.max(Duration::from_secs(1));
                }
                Err(outcome) => return Err(client::reason(outcome)),
            }
        };
        let mut answer = answer;
        let json = answer
            .json
            .take()
            .ok_or_else(|| answer.reply.document().err().unwrap_or_default())?;
        let raw: Box<RawValue> =
            serde_json::from_slice(&answer.reply.body).map_err(|e| e.to_string())?;
        let records = self.records(&raw, &json)?;
        let mut hi = (
            pos.hw.clone().or(pos.w.clone()),
            pos.ht.clone().or(pos.t.clone()),
        );
        let mut items = Vec::with_capacity(records.len());
        for record in &records {
            let bytes = record.get().as_bytes();
            let stamp = self
                .field
                .as_ref()
                .and_then(|f| f.select_raw(record)?.first().and_then(|r| select::text(r)));
            let tie = self
                .tie
                .as_ref()
                .and_then(|f| f.select_raw(record)?.first().and_then(|r| select::text(r)));
            if let Some(stamp) = &stamp {
                let higher = match &hi.0 {
                    None => true,
                    Some(w) => {
                        pair_cmp((stamp, tie.as_deref()), (w, hi.1.as_deref())) == Ordering::Greater
                    }
                };
                if higher {
                    hi = (Some(stamp.clone()), tie.clone());
                }
            }
            // The identity with the stamp: a record that changes back to an earlier
            // content under a later stamp is read again, not taken for a re-read.
            let id = self
                .key
                .as_ref()
                .and_then(|key| key.select_raw(record))
                .and_then(|r| r.first().and_then(|r| select::text(r)));
            let id = match (id, stamp) {
                (id, Some(stamp)) => Some(format!(
                    "{}@{stamp}/{}",
                    id.unwrap_or_default(),
                    tie.unwrap_or_default()
                )),
                (id, None) => id,
            };
            let key = format!(
                "{}#{:016x}",
                id.unwrap_or_default(),
                super::fingerprint(bytes)
            );
            items.push((bytes.to_vec(), Some(key)));
        }
        let next = self.next_page(&answer, &json, records.len(), &pos)?;
        if next.is_some() && next == pos.p {
            return Err(format!(
                "the API answered the same next page again ({}); stopping the poll",
                next.map(|n| n.to_string()).unwrap_or_default()
            ));
        }
        // A poll that reaches the page limit ends here; the next poll goes on from the
        // page after it (the watermark moves once the last page is read).
        let more = next.is_some() && pos.n + 1 < MAX_PAGES;
        if next.is_some() && !more {
            tracing::warn!(connector = %self.api.name, "a poll read {MAX_PAGES} pages; the next poll goes on from the page after them");
        }
        let position = match next {
            Some(next) => Position {
                w: pos.w,
                t: pos.t,
                p: Some(next),
                hw: hi.0,
                ht: hi.1,
                n: if more { pos.n + 1 } else { 0 },
            },
            None => Position {
                w: hi.0,
                t: hi.1,
                ..Position::default()
            },
        };
        Ok(Page {
            items,
            position: Some(serde_json::to_string(&position).map_err(|e| e.to_string())?),
            more,
        })
    }
}

impl Pager for DeclaredPager {
    fn page<'a>(&'a self, position: Option<&'a str>, first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let mut pos: Position = position
                .and_then(|p| serde_json::from_str(p).ok())
                .unwrap_or_default();
            if pos.w.is_none() {
                pos.w = self.watermark().and_then(|w| w.start.clone());
            }
            let resumed = first && pos.p.is_some();
            match self.read(pos.clone()).await {
                // A poll cut short goes on from its next page; when that page is refused
                // (a cursor that expired meanwhile), the poll starts again from the
                // watermark, and the dedupe keys skip what was read already.
                Err(reason) if resumed => {
                    tracing::warn!(connector = %self.api.name, %reason, "the interrupted poll's next page was refused; polling again from the watermark");
                    self.read(Position {
                        w: pos.w,
                        t: pos.t,
                        ..Position::default()
                    })
                    .await
                }
                other => other,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_compare_as_numbers_instants_or_text() {
        assert_eq!(compare("9", "10"), Ordering::Less);
        assert_eq!(
            compare("2024-01-01T10:00:00-05:00", "2024-01-01T14:00:00Z"),
            Ordering::Greater
        );
        assert_eq!(compare("b", "a"), Ordering::Greater);
        assert_eq!(
            compare("2024-01-01 09:00:00", "2024-01-01T10:00:00"),
            Ordering::Less
        );
        assert_eq!(
            pair_cmp(("5", Some("2")), ("5", Some("10"))),
            Ordering::Less
        );
    }

    #[test]
    fn lookback_moves_the_watermark_back() {
        assert_eq!(since("20240110", Duration::from_secs(60)), "20240050");
        assert_eq!(since("2024-01-10", Duration::from_secs(60)), "2024-01-09");
        assert_eq!(
            since("20240110T100000", Duration::from_secs(60)),
            "20240110T100000"
        );
        assert_eq!(
            since("2024-01-01T00:10:00Z", Duration::from_secs(600)),
            "2024-01-01T00:00:00Z"
        );
        assert_eq!(since("1700000600", Duration::from_secs(600)), "1700000000");
        assert_eq!(
            since("1700000600000", Duration::from_secs(600)),
            "1700000000000"
        );
        assert_eq!(
            since("2024-01-01 00:10:00", Duration::from_secs(600)),
            "2024-01-01 00:00:00"
        );
        assert_eq!(
            since("2024-01-01T00:10:00.5", Duration::from_secs(1)),
            "2024-01-01T00:09:59.5"
        );
        assert_eq!(since("abc", Duration::from_secs(600)), "abc");
        assert_eq!(
            since("2024-01-01T00:10:00+02:00", Duration::ZERO),
            "2024-01-01T00:10:00+02:00"
        );
    }

    #[test]
    fn link_headers() {
        let header = r#"<https://s/orders.json?page_info=abc&limit=50>; rel="previous", <https://s/orders.json?page_info=def&limit=50>; rel="next""#;
        assert_eq!(
            link_next(header).unwrap(),
            "https://s/orders.json?page_info=def&limit=50"
        );
        assert_eq!(link_next(r#"<https://s/x>; rel="previous""#), None);
        let commas = r#"</api/orders?fields=id,updated_at&page=2>; rel="next", </api/orders?fields=id,updated_at&page=9>; rel=last"#;
        assert_eq!(
            link_next(commas).unwrap(),
            "/api/orders?fields=id,updated_at&page=2"
        );
        assert_eq!(
            link_next(r#"<https://s/y>; rel="prev next""#).unwrap(),
            "https://s/y"
        );
    }
}
