//! `amazon_sp.settlements`: settlement reports through the Reports API 2021-06-30. getReports
//! (`reportTypes=GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2`, `processingStatuses=DONE`,
//! `createdSince` = the newest `createdTime` taken, `nextToken` alone on later pages), then
//! getReportDocument and the download of its pre-signed URL (GZIP when the document says so): a
//! tab-separated flat file whose
//! first data row carries the settlement's summary. Each report becomes one message, the
//! summary columns plus `rows` (the transaction columns of every other row), taken once by
//! its report id.

use super::SpApi;
use crate::api::{ConnectorError, Page, PageFuture, Pager};
use crate::client;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// The settlement report type (V2 flat file).
pub const SETTLEMENT_REPORT: &str = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2";
/// The columns of a settlement's summary row; every other column belongs to `rows`.
pub const SUMMARY_COLUMNS: [&str; 6] = [
    "settlement-id",
    "settlement-start-date",
    "settlement-end-date",
    "deposit-date",
    "total-amount",
    "currency",
];
/// getReports: 0.0222 requests per second (burst 10).
const GET_REPORTS_RATE: f64 = 0.0222;
/// getReportDocument: 0.0167 requests per second (burst 15).
const GET_DOCUMENT_RATE: f64 = 0.0167;
/// Reports are kept 90 days; `createdSince` may not reach further back.
const RETENTION_DAYS: i64 = 90;
const REPORTS_PATH: &str = "/reports/2021-06-30/reports";
/// The largest document read (decompressed); a settlement report is far smaller.
const MAX_DOCUMENT: u64 = 1 << 30;

/// Reads settlement reports; the position is the newest `createdTime` taken, or
/// `newest|nextToken` while a listing is paged.
pub struct SettlementsPager {
    api: SpApi,
    download: reqwest::Client,
    page_size: u64,
    /// Report ids already durable: read again at the `createdSince` boundary, their
    /// documents are not downloaded a second time.
    known: RefCell<HashSet<String>>,
}

impl SettlementsPager {
    /// The pager of a connection (`page_size`, 1 to 100, defaults to 10).
    pub fn new(
        api: SpApi,
        options: &BTreeMap<String, Value>,
    ) -> Result<SettlementsPager, ConnectorError> {
        Ok(SettlementsPager {
            api,
            download: client::build()?,
            page_size: client::page_size(options, 10, 100),
            known: RefCell::new(HashSet::new()),
        })
    }

    /// A report's message and dedupe key; `None` for a report of another type or state
    /// (the API filters; this is a guard) or one already taken.
    async fn item(&self, report: &Value) -> Result<Option<(Vec<u8>, Option<String>)>, String> {
        let (Some(id), Some(document_id)) = (
            report["reportId"].as_str(),
            report["reportDocumentId"].as_str(),
        ) else {
            return Ok(None);
        };
        if report["reportType"] != SETTLEMENT_REPORT
            || report["processingStatus"] != "DONE"
            || self.known.borrow().contains(id)
        {
            return Ok(None);
        }
        let message = settlement(&self.document(document_id).await?);
        Ok(Some((
            serde_json::to_vec(&message).unwrap_or_default(),
            Some(id.to_string()),
        )))
    }

    /// getReportDocument, then the document's bytes from its pre-signed URL.
    async fn document(&self, document_id: &str) -> Result<String, String> {
        let reply = self
            .api
            .send(
                self.api.get(
                    &format!("/reports/2021-06-30/documents/{document_id}"),
                    Vec::new(),
                ),
                Duration::from_secs(30),
                GET_DOCUMENT_RATE,
            )
            .await
            .map_err(client::reason)?;
        let body = reply.document()?;
        let algorithm = body.get("compressionAlgorithm").and_then(Value::as_str);
        if algorithm.is_some_and(|a| a != "GZIP") {
            return Err(format!(
                "report document {document_id} is compressed with {}, which this connector does not read",
                algorithm.unwrap_or_default()
            ));
        }
        let url = body
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("getReportDocument {document_id} answered without a url"))?;
        let file = client::send(self.download.get(url), Duration::from_secs(120))
            .await
            .map_err(client::reason)?;
        if !file.ok() {
            return Err(format!(
                "downloading report document {document_id}: HTTP {}: {}",
                file.status,
                file.excerpt()
            ));
        }
        if algorithm.is_some() {
            return gunzip(&file.body)
                .map(|bytes| decode(&bytes))
                .map_err(|e| format!("report document {document_id}: {e}"));
        }
        Ok(decode(&file.body))
    }
}

/// A GZIP document's bytes, refused past [`MAX_DOCUMENT`] once decompressed.
fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(MAX_DOCUMENT + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("not a GZIP stream: {e}"))?;
    if out.len() as u64 > MAX_DOCUMENT {
        return Err(format!(
            "larger than {} MiB once decompressed",
            MAX_DOCUMENT >> 20
        ));
    }
    Ok(out)
}

/// The flat file as text: UTF-8, or else Latin-1 (Amazon writes some marketplaces' flat
/// files in a single-byte encoding).
fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_string(),
        Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
    }
}

/// One settlement from its flat file: the summary columns (from the row that carries
/// `total-amount`) and `rows`, the other columns of every other row.
pub fn settlement(flat_file: &str) -> Value {
    let mut lines = flat_file
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.is_empty());
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    let mut summary = Map::new();
    let mut rows = Vec::new();
    for line in lines {
        let cells: Vec<&str> = line.split('\t').collect();
        let cell = |column: &str| {
            header
                .iter()
                .position(|h| *h == column)
                .and_then(|i| cells.get(i))
                .copied()
                .unwrap_or("")
        };
        if summary.is_empty() && !cell("total-amount").is_empty() {
            for column in SUMMARY_COLUMNS {
                summary.insert(column.to_string(), Value::String(cell(column).to_string()));
            }
            continue;
        }
        let row: Map<String, Value> = header
            .iter()
            .enumerate()
            .filter(|(_, column)| !SUMMARY_COLUMNS.contains(column))
            .map(|(i, column)| {
                let value = cells.get(i).copied().unwrap_or("");
                (column.to_string(), Value::String(value.to_string()))
            })
            .collect();
        rows.push(Value::Object(row));
    }
    summary.insert("rows".to_string(), Value::Array(rows));
    Value::Object(summary)
}

fn instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Pager for SettlementsPager {
    /// The position is the watermark (the newest `createdTime` taken), or
    /// `createdSince sent|newest so far|nextToken` while a listing is paged: the watermark
    /// moves only once the whole listing is read, whatever order the pages come in.
    fn page<'a>(&'a self, position: Option<&'a str>, _first: bool) -> PageFuture<'a> {
        Box::pin(async move {
            let parts: Vec<&str> = position
                .map(|p| p.splitn(3, '|').collect())
                .unwrap_or_default();
            let (since, newest, token) = match parts.as_slice() {
                [since, newest, token] => (since.to_string(), newest.to_string(), Some(*token)),
                _ => {
                    let watermark = position.unwrap_or("").to_string();
                    (watermark.clone(), watermark, None)
                }
            };
            let query = match token {
                // The token is the only parameter of a continued listing.
                Some(token) => vec![("nextToken".to_string(), token.to_string())],
                None => {
                    let oldest = Utc::now() - chrono::Duration::days(RETENTION_DAYS);
                    let from = instant(&since).map_or(oldest, |w| w.max(oldest));
                    vec![
                        ("reportTypes".to_string(), SETTLEMENT_REPORT.to_string()),
                        ("processingStatuses".to_string(), "DONE".to_string()),
                        (
                            "createdSince".to_string(),
                            from.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                        ),
                        ("pageSize".to_string(), self.page_size.to_string()),
                    ]
                }
            };
            let sent = self
                .api
                .send(
                    self.api.get(REPORTS_PATH, query),
                    Duration::from_secs(30),
                    GET_REPORTS_RATE,
                )
                .await;
            let reply = match sent {
                Ok(reply) => reply,
                // A refused token (expired after a long stop) would be refused forever:
                // list again from where this listing started.
                Err(crate::CallOutcome::Permanent { reason }) if token.is_some() => {
                    tracing::warn!(reason = %reason, "getReports refused the nextToken; listing again from createdSince");
                    return Ok(Page {
                        items: Vec::new(),
                        more: false,
                        position: Some(since),
                    });
                }
                Err(other) => return Err(client::reason(other)),
            };
            let body = reply.document()?;
            let reports = client::list_at(&body, &["reports"], false)?;
            let mut newest = instant(&newest).map(|t| (t, newest.clone()));
            let mut items = Vec::with_capacity(reports.len());
            for report in &reports {
                let created = report["createdTime"].as_str().unwrap_or_default();
                if let Some(at) = instant(created) {
                    if newest.as_ref().is_none_or(|(n, _)| at > *n) {
                        newest = Some((at, created.to_string()));
                    }
                }
                if let Some(item) = self.item(report).await? {
                    items.push(item);
                }
            }
            let newest = newest.map(|(_, text)| text).unwrap_or_default();
            let next = body["nextToken"].as_str().map(String::from);
            let position = match &next {
                Some(token) => format!("{since}|{newest}|{token}"),
                None => newest,
            };
            Ok(Page {
                items,
                more: next.is_some(),
                position: Some(position),
            })
        })
    }

    fn committed(&self, keys: &[String]) {
        let mut known = self.known.borrow_mut();
        if known.len() > 100_000 {
            known.clear();
        }
        known.extend(keys.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_file_becomes_its_summary_and_rows() {
        let file = "settlement-id\tsettlement-start-date\tsettlement-end-date\tdeposit-date\ttotal-amount\tcurrency\ttransaction-type\torder-id\tamount-type\tamount\r\n\
            111\t2026-04-27T00:00:00+00:00\t2026-05-11T00:00:00+00:00\t2026-05-13T00:00:00+00:00\t-4.01\tUSD\t\t\t\t\r\n\
            111\t\t\t\t\t\tOrder\t902-1\tItemPrice\t35.90\r\n\
            111\t\t\t\t\t\tother-transaction\t\tother-transaction\t-39.99\r\n";
        assert_eq!(
            settlement(file),
            serde_json::json!({
                "settlement-id": "111",
                "settlement-start-date": "2026-04-27T00:00:00+00:00",
                "settlement-end-date": "2026-05-11T00:00:00+00:00",
                "deposit-date": "2026-05-13T00:00:00+00:00",
                "total-amount": "-4.01",
                "currency": "USD",
                "rows": [
                    {"transaction-type": "Order", "order-id": "902-1", "amount-type": "ItemPrice", "amount": "35.90"},
                    {"transaction-type": "other-transaction", "order-id": "", "amount-type": "other-transaction", "amount": "-39.99"}
                ]
            })
        );
    }

    #[test]
    fn a_gzip_document_is_decompressed_and_garbage_refused() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder
            .write_all(b"settlement-id\ttotal-amount\n1\t2.00\n")
            .unwrap();
        let zipped = encoder.finish().unwrap();
        assert_eq!(
            gunzip(&zipped).unwrap(),
            b"settlement-id\ttotal-amount\n1\t2.00\n"
        );
        assert!(gunzip(b"settlement-id\t")
            .unwrap_err()
            .starts_with("not a GZIP stream"));
    }

    #[test]
    fn a_single_byte_flat_file_is_read_as_latin_1() {
        assert_eq!(decode(b"Caf\xe9"), "Café");
    }
}
