//! Amazon SP-API Reports API 2021-06-30 simulator: getReports (report type, processing
//! status and creation-time filters, `pageSize`, a `nextToken` that must come alone, newest
//! first), getReportDocument (a pre-signed URL valid five minutes) and the document download,
//! seeded with settlement reports (V2 flat files, tab-separated) and reports of other kinds.

use super::{base_url, json_body, param, parse_ts, query_pairs, ts_secs, Shared};
use base64::Engine;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use omniflow_http::server::{Req, Resp};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// (operation, rate per second, burst) from the Reports API usage plans.
pub const QUOTAS: [(&str, f64, f64); 2] = [
    ("getReports", 0.0222, 10.0),
    ("getReportDocument", 0.0167, 15.0),
];
/// The Reports API's paths.
pub const REPORTS_PREFIX: &str = "/reports/2021-06-30/";
/// Where pre-signed document URLs point (served without an access token).
pub const DOCUMENT_PATH: &str = "/report-documents/";
/// The settlement report type.
const SETTLEMENT: &str = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2";
/// How long a pre-signed URL is valid.
const URL_LIFE: Duration = Duration::from_secs(300);
const STATUSES: [&str; 5] = ["CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE"];
/// The columns of a V2 settlement flat file, in order.
const COLUMNS: [&str; 24] = [
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
    "transaction-type",
    "order-id",
    "merchant-order-id",
    "adjustment-id",
    "shipment-id",
    "marketplace-name",
    "amount-type",
    "amount-description",
    "amount",
    "fulfillment-id",
    "posted-date",
    "posted-date-time",
    "order-item-code",
    "merchant-order-item-id",
    "merchant-adjustment-item-id",
    "sku",
    "quantity-purchased",
    "promotion-id",
];
/// The first transaction column.
const FIRST_ROW_COLUMN: usize = 6;

struct Report {
    id: String,
    kind: &'static str,
    status: &'static str,
    created: DateTime<Utc>,
    document: Option<String>,
}

/// Reports state.
#[derive(Default)]
pub struct State {
    reports: Vec<Report>,
    /// Document id -> the file's text.
    documents: HashMap<String, String>,
    /// Signature -> (document id, when the URL was issued).
    links: HashMap<String, (String, Instant)>,
    next_id: u64,
}

/// (transaction-type, order-id, amount-type, amount-description, amount, sku, quantity).
type Row<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

/// The transactions of the seeded settlements: two orders and a subscription fee.
const SEEDED_ROWS: [Row; 13] = [
    (
        "Order",
        "902-1845936-5435065",
        "ItemPrice",
        "Principal",
        "35.90",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemPrice",
        "Tax",
        "2.15",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemPrice",
        "Shipping",
        "4.99",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemPrice",
        "ShippingTax",
        "0.30",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemWithheldTax",
        "MarketplaceFacilitatorTax-Principal",
        "-2.15",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemWithheldTax",
        "MarketplaceFacilitatorTax-Shipping",
        "-0.30",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemFees",
        "Commission",
        "-5.39",
        "CBA_OTF_5",
        "2",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemPrice",
        "Principal",
        "22.00",
        "TSHIRT-039-RED-M",
        "1",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemPrice",
        "Tax",
        "1.32",
        "TSHIRT-039-RED-M",
        "1",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemWithheldTax",
        "MarketplaceFacilitatorTax-Principal",
        "-1.32",
        "TSHIRT-039-RED-M",
        "1",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "Promotion",
        "Principal",
        "-2.00",
        "TSHIRT-039-RED-M",
        "1",
    ),
    (
        "Order",
        "902-1845936-5435065",
        "ItemFees",
        "Commission",
        "-3.00",
        "TSHIRT-039-RED-M",
        "1",
    ),
    (
        "other-transaction",
        "",
        "other-transaction",
        "Subscription Fee",
        "-39.99",
        "",
        "",
    ),
];

/// A settlement's summary: id, start, end, deposit, total, currency.
struct Summary<'a>([&'a str; 6]);

/// A V2 flat file: the header, the summary row, one row per transaction.
fn flat_file(summary: &Summary, rows: &[[String; 18]]) -> String {
    let mut out = COLUMNS.join("\t") + "\r\n";
    let mut first = summary.0.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    first.extend(std::iter::repeat_n(
        String::new(),
        COLUMNS.len() - FIRST_ROW_COLUMN,
    ));
    out += &(first.join("\t") + "\r\n");
    for row in rows {
        let mut cells = vec![summary.0[0].to_string()];
        cells.extend(std::iter::repeat_n(String::new(), FIRST_ROW_COLUMN - 1));
        cells.extend(row.iter().cloned());
        out += &(cells.join("\t") + "\r\n");
    }
    out
}

/// A transaction row's 18 columns from the seeded shape.
fn seeded_row(row: &Row, posted: &str) -> [String; 18] {
    let (kind, order, amount_type, description, amount, sku, quantity) = *row;
    let order_row = !order.is_empty();
    let when = if order_row {
        "2026-05-02"
    } else {
        "2026-05-05"
    };
    let pick = |yes: &str| {
        if order_row {
            yes.to_string()
        } else {
            String::new()
        }
    };
    [
        kind.to_string(),
        order.to_string(),
        String::new(),
        String::new(),
        pick("DkQ4rT8xM"),
        pick("Amazon.com"),
        amount_type.to_string(),
        description.to_string(),
        amount.to_string(),
        pick("MFN"),
        when.to_string(),
        format!("{when}T{posted}+00:00"),
        String::new(),
        String::new(),
        String::new(),
        sku.to_string(),
        quantity.to_string(),
        String::new(),
    ]
}

impl State {
    /// Two settlements (one whose deposit matches its rows, one that does not), a
    /// settlement still in progress and a listings report, created over the last weeks.
    pub fn new() -> State {
        let mut state = State {
            next_id: 50_001_018_700,
            ..State::default()
        };
        let now = super::now();
        let rows: Vec<[String; 18]> = SEEDED_ROWS
            .iter()
            .map(|row| {
                seeded_row(
                    row,
                    if row.1.is_empty() {
                        "08:00:00"
                    } else {
                        "10:14:07"
                    },
                )
            })
            .collect();
        let dates = [
            "2026-04-27T00:00:00+00:00",
            "2026-05-11T00:00:00+00:00",
            "2026-05-13T00:00:00+00:00",
        ];
        for (id, total, days) in [("11795325101", "12.51", 20), ("11795325102", "14.51", 6)] {
            let summary = Summary([id, dates[0], dates[1], dates[2], total, "USD"]);
            state.add(
                SETTLEMENT,
                "DONE",
                now - ChronoDuration::days(days),
                Some(flat_file(&summary, &rows)),
            );
        }
        state.add(
            SETTLEMENT,
            "IN_PROGRESS",
            now - ChronoDuration::days(1),
            None,
        );
        let listings = "seller-sku\tasin1\tprice\tquantity\r\nCBA_OTF_5\tB0SBX00005\t17.95\t40\r\n";
        state.add(
            "GET_FLAT_FILE_OPEN_LISTINGS_DATA",
            "DONE",
            now - ChronoDuration::days(2),
            Some(listings.to_string()),
        );
        state
    }

    fn add(
        &mut self,
        kind: &'static str,
        status: &'static str,
        created: DateTime<Utc>,
        file: Option<String>,
    ) {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let document = file.map(|text| {
            let document = format!("amzn1.spdoc.1.4.na.{id}");
            self.documents.insert(document.clone(), text);
            document
        });
        self.reports.push(Report {
            id,
            kind,
            status,
            created,
            document,
        });
    }
}

fn invalid(message: &str) -> Resp {
    Resp::json(
        400,
        json!({"errors": [{"code": "InvalidInput", "message": message, "details": ""}]}),
    )
}

fn report_json(report: &Report) -> Value {
    let mut value = json!({
        "reportId": report.id, "reportType": report.kind,
        "createdTime": ts_secs(report.created), "processingStatus": report.status,
        "dataStartTime": ts_secs(report.created - ChronoDuration::days(14)),
        "dataEndTime": ts_secs(report.created),
    });
    if report.status == "DONE" {
        value["processingStartTime"] = json!(ts_secs(report.created));
        value["processingEndTime"] = json!(ts_secs(report.created + ChronoDuration::minutes(3)));
    }
    if let Some(document) = &report.document {
        value["reportDocumentId"] = json!(document);
    }
    value
}

/// The filters of a getReports listing.
struct Filters {
    types: Vec<String>,
    statuses: Option<Vec<String>>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    page: usize,
}

fn filters(q: &[(String, String)]) -> Result<Filters, Resp> {
    let split =
        |key: &str| param(q, key).map(|v| v.split(',').map(String::from).collect::<Vec<_>>());
    let Some(types) = split("reportTypes").filter(|t| (1..=10).contains(&t.len())) else {
        return Err(invalid(
            "Either reportTypes or nextToken is required; reportTypes takes 1 to 10 types.",
        ));
    };
    let statuses = split("processingStatuses");
    if statuses
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| !STATUSES.contains(&s.as_str())))
    {
        return Err(invalid("Invalid input in processing status"));
    }
    let time = |key: &str| match param(q, key) {
        None => Ok(None),
        Some(text) => parse_ts(text)
            .map(Some)
            .ok_or_else(|| invalid(&format!("{key} is not a valid ISO 8601 date time."))),
    };
    let page = match param(q, "pageSize").map(str::parse::<usize>) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => return Err(invalid("pageSize must be between 1 and 100.")),
    };
    Ok(Filters {
        types,
        statuses,
        since: time("createdSince")?,
        until: time("createdUntil")?,
        page,
    })
}

/// `GET /reports/2021-06-30/reports`.
pub fn get_reports(sb: &Shared, req: &Req, _segs: &[&str]) -> Resp {
    let q = query_pairs(&req.query);
    let (query, offset) = match param(&q, "nextToken") {
        Some(_) if q.len() > 1 => return invalid("nextToken must be the only parameter."),
        Some(token) => {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok());
            match decoded.as_deref().and_then(|t| t.split_once('|')) {
                Some((offset, query)) if offset.parse::<usize>().is_ok() => {
                    (query.to_string(), offset.parse().unwrap_or(0))
                }
                _ => return invalid("Invalid nextToken."),
            }
        }
        None => (req.query.clone(), 0),
    };
    let Filters {
        types,
        statuses,
        since,
        until,
        page,
    } = match filters(&query_pairs(&query)) {
        Ok(filters) => filters,
        Err(resp) => return resp,
    };
    let now = super::now();
    let since = since.unwrap_or(now - ChronoDuration::days(90));
    let until = until.unwrap_or(now);
    let st = sb.amazon_reports.borrow();
    let mut matching: Vec<&Report> = st
        .reports
        .iter()
        .filter(|r| types.iter().any(|t| t == r.kind))
        .filter(|r| {
            statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s == r.status))
        })
        .filter(|r| r.created >= since && r.created <= until)
        .collect();
    matching.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    let reports: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(page)
        .map(|r| report_json(r))
        .collect();
    let mut body = json!({ "reports": reports });
    if matching.len() > offset + page {
        let token = format!("{}|{query}", offset + page);
        body["nextToken"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token));
    }
    sb.bump(super::System::AmazonSp, "report_listings");
    Resp::json(200, body)
}

/// `GET /reports/2021-06-30/documents/{reportDocumentId}`: a pre-signed URL.
pub fn get_report_document(sb: &Shared, req: &Req, segs: &[&str]) -> Resp {
    let document = segs[3].to_string();
    if !sb.amazon_reports.borrow().documents.contains_key(&document) {
        return Resp::json(
            404,
            json!({"errors": [{"code": "NotFound", "message": "The report document does not exist.", "details": ""}]}),
        );
    }
    let signature = {
        let mut rng = sb.rng.borrow_mut();
        format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
    };
    let url = format!(
        "{}{DOCUMENT_PATH}{document}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=300&X-Amz-Signature={signature}",
        base_url(req)
    );
    sb.amazon_reports
        .borrow_mut()
        .links
        .insert(signature, (document.clone(), Instant::now()));
    Resp::json(200, json!({"reportDocumentId": document, "url": url}))
}

/// `GET /report-documents/{id}?...`: the document, for a signature issued less than five
/// minutes ago (S3's 403 otherwise).
pub fn download(sb: &Shared, req: &Req) -> Resp {
    let document = req.path.trim_start_matches(DOCUMENT_PATH);
    let q = query_pairs(&req.query);
    let st = sb.amazon_reports.borrow();
    let valid = param(&q, "X-Amz-Signature")
        .and_then(|s| st.links.get(s))
        .is_some_and(|(d, issued)| d == document && issued.elapsed() < URL_LIFE);
    match st.documents.get(document).filter(|_| valid) {
        Some(text) => {
            sb.bump(super::System::AmazonSp, "report_downloads");
            Resp {
                status: 200,
                content_type: "text/plain;charset=UTF-8",
                body: text.clone(),
                headers: Vec::new(),
            }
        }
        None => Resp {
            status: 403,
            content_type: "application/xml",
            body: "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>".to_string(),
            headers: Vec::new(),
        },
    }
}

/// `POST /_sandbox/amazon/settlements {"settlement-id", "total-amount", "currency"?, "rows"}`:
/// a new settlement report, created now; each row names its V2 columns.
pub fn control_add_settlement(sb: &Shared, req: &Req) -> Resp {
    let Some(body) = json_body(req) else {
        return invalid("Request body is not valid JSON.");
    };
    let text = |key: &str| body[key].as_str().unwrap_or("").to_string();
    let (id, total) = (text("settlement-id"), text("total-amount"));
    let Some(rows) = body["rows"]
        .as_array()
        .filter(|_| !id.is_empty() && !total.is_empty())
    else {
        return invalid("settlement-id, total-amount and rows are required.");
    };
    let currency = body["currency"].as_str().unwrap_or("USD");
    let now = super::now();
    let (start, end) = (ts_secs(now - ChronoDuration::days(14)), ts_secs(now));
    let summary = Summary([
        id.as_str(),
        start.as_str(),
        end.as_str(),
        end.as_str(),
        total.as_str(),
        currency,
    ]);
    let rows: Vec<[String; 18]> = rows
        .iter()
        .map(|row| {
            std::array::from_fn(|i| {
                row[COLUMNS[FIRST_ROW_COLUMN + i]]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            })
        })
        .collect();
    let file = flat_file(&summary, &rows);
    let mut st = sb.amazon_reports.borrow_mut();
    st.add(SETTLEMENT, "DONE", now, Some(file));
    let report = st.reports.last().map(report_json).unwrap_or(Value::Null);
    Resp::json(200, report)
}
