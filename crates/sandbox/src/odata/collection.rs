//! Reading an entity set: `$expand` of order items (with an inner `$select`), `$filter`,
//! `$orderby`, `$count`, `$select`, and server-driven paging (`$top`, `$skip`, a
//! `$skiptoken` in a relative `@odata.nextLink`).

use super::filter;
use super::{bad_request, order_json, product_json, query, Shared};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Map, Value};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Rows in a page when the client asks for no `$top`.
const PAGE_DEFAULT: usize = 20;
/// Most rows in one page.
const PAGE_MAX: usize = 50;

const PRODUCT_FIELDS: [&str; 6] = ["ID", "name", "price", "currency", "stock", "modifiedAt"];
const ORDER_FIELDS: [&str; 11] = [
    "ID",
    "orderNo",
    "customer",
    "status",
    "total",
    "currency",
    "carrier",
    "trackingNumber",
    "shippedAt",
    "createdAt",
    "modifiedAt",
];

type Query = BTreeMap<String, String>;

/// `GET /Products` or `/SalesOrders` (`count_only`: their `/$count`).
pub fn read(sb: &Shared, req: &Req, set: &str, count_only: bool) -> Resp {
    match page(sb, &query(req), set, count_only) {
        Ok(resp) | Err(resp) => resp,
    }
}

fn page(sb: &Shared, q: &Query, set: &str, count_only: bool) -> Result<Resp, Resp> {
    let fields: &[&str] = if set == "Products" {
        &PRODUCT_FIELDS
    } else {
        &ORDER_FIELDS
    };
    let (expand_items, item_select) = expand(q, set)?;
    let mut rows: Vec<Value> = {
        let st = sb.odata.borrow();
        if set == "Products" {
            st.products.values().map(product_json).collect()
        } else {
            st.orders
                .iter()
                .map(|o| order_json(o, expand_items))
                .collect()
        }
    };
    if let Some(text) = q.get("$filter") {
        let expr = filter::parse(text, fields).map_err(|e| bad_request(&e))?;
        rows.retain(|row| filter::eval(&expr, row));
    }
    if let Some(order) = q.get("$orderby") {
        order_by(&mut rows, order, fields)?;
    }
    let total = rows.len();
    if count_only {
        return Ok(Resp::text(200, total.to_string()));
    }
    let window = Window::of(q)?;
    let select: Option<Vec<&str>> = q
        .get("$select")
        .map(|s| s.split(',').map(str::trim).collect());
    if let Some(bad) = select
        .iter()
        .flatten()
        .find(|f| !fields.contains(f) && **f != "items")
    {
        return Err(bad_request(&format!("Property '{bad}' not found")));
    }
    let page: Vec<Value> = rows
        .into_iter()
        .skip(window.start)
        .take(window.take)
        .map(|row| selected(row, select.as_deref(), item_select.as_deref()))
        .collect();
    let context = match &select {
        Some(sel) => format!("$metadata#{set}({})", sel.join(",")),
        None => format!("$metadata#{set}"),
    };
    let mut body = json!({"@odata.context": context});
    if q.get("$count").is_some_and(|c| c == "true") {
        body["@odata.count"] = json!(total);
    }
    body["value"] = json!(page);
    if window.has_more(total) {
        body["@odata.nextLink"] = json!(next_link(q, set, &window));
    }
    Ok(Resp::json(200, body))
}

/// `$expand`: whether order items come along, and the item properties an inner
/// `$select` keeps.
fn expand(q: &Query, set: &str) -> Result<(bool, Option<Vec<String>>), Resp> {
    match q.get("$expand").map(String::as_str) {
        None => Ok((false, None)),
        Some("items") => Ok((true, None)),
        Some(e) if set == "SalesOrders" && e.starts_with("items(") => {
            let inner = e.trim_start_matches("items(").trim_end_matches(')');
            let select = inner
                .strip_prefix("$select=")
                .map(|s| s.split(',').map(str::to_string).collect());
            Ok((true, select))
        }
        Some(e) => Err(bad_request(&format!("Navigation property '{e}' not found"))),
    }
}

/// `$orderby=FIELD [asc|desc]`.
fn order_by(rows: &mut [Value], order: &str, fields: &[&str]) -> Result<(), Resp> {
    let mut parts = order.split_whitespace();
    let field = parts.next().unwrap_or("");
    if !fields.contains(&field) {
        return Err(bad_request(&format!("Property '{field}' not found")));
    }
    let desc = match parts.next() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(bad_request("$orderby direction must be asc or desc")),
    };
    rows.sort_by(|a, b| {
        let o = filter::compare(&a[field], &b[field]).unwrap_or(Ordering::Equal);
        if desc {
            o.reverse()
        } else {
            o
        }
    });
    Ok(())
}

/// The rows one page shows: `$skip` plus the `$skiptoken` of earlier pages, at most
/// `$top` over all pages.
struct Window {
    skiptoken: usize,
    start: usize,
    take: usize,
    /// What is left of `$top` from this page on.
    remaining_top: Option<usize>,
}

impl Window {
    fn of(q: &Query) -> Result<Window, Resp> {
        let num = |k: &str| -> Result<Option<usize>, Resp> {
            q.get(k)
                .map(|v| {
                    v.parse::<usize>()
                        .map_err(|_| bad_request(&format!("{k} must be a non-negative integer")))
                })
                .transpose()
        };
        let (top, skip, skiptoken) = (
            num("$top")?,
            num("$skip")?.unwrap_or(0),
            num("$skiptoken")?.unwrap_or(0),
        );
        Ok(Window {
            skiptoken,
            start: skip.saturating_add(skiptoken),
            take: match top {
                Some(t) => t.saturating_sub(skiptoken).min(PAGE_MAX),
                None => PAGE_DEFAULT,
            },
            remaining_top: top.map(|t| t.saturating_sub(skiptoken)),
        })
    }

    /// True when rows remain after this page (within `$top`).
    fn has_more(&self, total: usize) -> bool {
        total > self.start.saturating_add(self.take)
            && self.remaining_top.is_none_or(|t| t > self.take)
    }
}

/// A row with only the `$select`ed properties (its key, ETag and items always), and its
/// items with only the properties of the inner `$select`.
fn selected(mut row: Value, select: Option<&[&str]>, item_select: Option<&[String]>) -> Value {
    if let (Some(items), Some(sel)) = (row.get_mut("items"), item_select) {
        for item in items.as_array_mut().into_iter().flatten() {
            if let Value::Object(m) = item {
                m.retain(|k, _| k == "ID" || sel.contains(k));
            }
        }
    }
    match (select, row) {
        (Some(sel), Value::Object(m)) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| {
                    k == "ID" || k == "@odata.etag" || k == "items" || sel.contains(&k.as_str())
                })
                .collect::<Map<String, Value>>(),
        ),
        (_, row) => row,
    }
}

/// The relative link to the next page: the same options with the next `$skiptoken`.
fn next_link(q: &Query, set: &str, window: &Window) -> String {
    let mut parts: Vec<String> = q
        .iter()
        .filter(|(k, _)| k.as_str() != "$skiptoken")
        .map(|(k, v)| format!("{}={}", k, encode_option(v)))
        .collect();
    parts.push(format!("$skiptoken={}", window.skiptoken + window.take));
    format!("{set}?{}", parts.join("&"))
}

fn encode_option(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b','
            | b'('
            | b')' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
