//! Real servers the ERP connectors are tested against, started on 127.0.0.1 by the tests
//! and stopped when dropped (by the PID of the process the test started):
//! - SAP CAP (OData v4) from `tests/peers/cap`, installed by its `install.sh`;
//! - Tryton 8.0 over JSON-RPC from `tests/peers/tryton`, on a copy of the seeded template
//!   database its `install.sh` prepares.
//!
//! A peer that cannot be installed or started fails the test loudly.
#![allow(dead_code)]

use super::free_port;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs an install script; returns the directory it prints.
fn install(script: &str) -> PathBuf {
    let output = Command::new("bash")
        .arg(repo().join(script))
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    assert!(
        output.status.success(),
        "{script} failed: the peer cannot be installed"
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// A started peer server.
pub struct Peer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
    log: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.dir.starts_with(std::env::temp_dir()) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Peer {
    fn wait_until(mut self, ready: impl Fn(u16) -> bool) -> Peer {
        let started = Instant::now();
        while !ready(self.port) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the peer exited ({status}): {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the peer did not come up: {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self
    }

    /// The log the server wrote.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn http_status(port: u16, request: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(request.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf).ok()?;
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split_whitespace().nth(1)?.parse().ok()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "omniflow-peer-{name}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Starts the CAP sales-order service (fresh in-memory data).
pub fn cap() -> Peer {
    let app = install("tests/peers/cap/install.sh");
    let port = free_port();
    let dir = temp_dir("cap");
    let log = dir.join("cap.log");
    let child = Command::new(app.join("node_modules/.bin/cds-serve"))
        .arg("--in-memory?")
        .current_dir(&app)
        .env("PORT", port.to_string())
        .env("HOST", "127.0.0.1")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .expect("cannot start cds-serve");
    Peer {
        child,
        port,
        dir,
        log,
    }
    .wait_until(|port| {
        http_status(
            port,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) == Some(200)
    })
}

/// Starts Vendure, a GraphQL commerce server, on a fresh PostgreSQL database (`db`), with
/// its catalogue populated and admin sessions that last `session` (such as `6s`).
pub fn vendure(db: &super::postgres::FreshDb, session: &str) -> Peer {
    let app = install("tests/peers/vendure/install.sh");
    let port = free_port();
    let dir = temp_dir("vendure");
    let log = dir.join("vendure.log");
    let child = Command::new("node")
        .arg("server.js")
        .current_dir(&app)
        .env("PORT", port.to_string())
        .env("DATABASE_URL", &db.url)
        .env("POPULATE", "1")
        .env("SESSION_DURATION", session)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .expect("cannot start node");
    Peer {
        child,
        port,
        dir,
        log,
    }
    .wait_until(|port| {
        http_status(
            port,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) == Some(200)
    })
}

/// The OData service root of a CAP peer.
pub fn cap_service(peer: &Peer) -> String {
    format!("http://127.0.0.1:{}/odata/v4/sales", peer.port)
}

/// Starts Tryton on a copy of the seeded template database.
pub fn tryton() -> Peer {
    let home = install("tests/peers/tryton/install.sh");
    let port = free_port();
    let dir = temp_dir("tryton");
    std::fs::copy(
        home.join("template/omniflow.sqlite"),
        dir.join("omniflow.sqlite"),
    )
    .unwrap();
    let conf = dir.join("trytond.conf");
    std::fs::write(
        &conf,
        format!(
            "[database]\nuri = sqlite://\npath = {}\n[web]\nlisten = 127.0.0.1:{port}\n[session]\nmax_attempt = 50\n",
            dir.display()
        ),
    )
    .unwrap();
    let log = dir.join("trytond.log");
    let child = Command::new(home.join("venv/bin/trytond"))
        .arg("-c")
        .arg(&conf)
        .arg("-d")
        .arg("omniflow")
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::File::options().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .expect("cannot start trytond");
    let body = r#"{"id":0,"method":"common.server.version","params":[]}"#;
    let probe = format!(
        "POST /rpc/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Peer {
        child,
        port,
        dir,
        log,
    }
    .wait_until(move |port| http_status(port, &probe) == Some(200))
}

/// The JSON-RPC base URL of a Tryton peer.
pub fn tryton_url(peer: &Peer) -> String {
    format!("http://127.0.0.1:{}", peer.port)
}

/// A JSON-RPC client of the Tryton peer, logged in as admin, to read back what the
/// connectors wrote.
pub struct TrytonRpc {
    url: String,
    auth: String,
    context: Value,
}

impl TrytonRpc {
    pub async fn call(url: &str, auth: Option<&str>, method: &str, params: Value) -> Value {
        let mut request = reqwest::Client::new()
            .post(format!("{url}/omniflow/rpc/"))
            .header("content-type", "application/json")
            .body(json!({"id": 1, "method": method, "params": params}).to_string());
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let text = request.send().await.unwrap().text().await.unwrap();
        let answer: Value =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{method}: {text}"));
        assert!(
            answer.get("error").is_none_or(Value::is_null),
            "{method}: {answer}"
        );
        answer["result"].clone()
    }

    pub async fn login(url: &str) -> TrytonRpc {
        use base64::Engine;
        let result = TrytonRpc::call(
            url,
            None,
            "common.db.login",
            json!(["admin", {"password": "admin"}, "en"]),
        )
        .await;
        let auth = format!(
            "Session {}",
            base64::engine::general_purpose::STANDARD.encode(format!(
                "admin:{}:{}",
                result[0],
                result[1].as_str().unwrap()
            ))
        );
        let prefs = TrytonRpc::call(
            url,
            Some(&auth),
            "model.res.user.get_preferences",
            json!([true, {}]),
        )
        .await;
        TrytonRpc {
            url: url.into(),
            auth,
            context: json!({"company": prefs["company"], "companies": prefs["companies"]}),
        }
    }

    pub async fn model(&self, model: &str, method: &str, mut args: Vec<Value>) -> Value {
        args.push(self.context.clone());
        TrytonRpc::call(
            &self.url,
            Some(&self.auth),
            &format!("model.{model}.{method}"),
            Value::Array(args),
        )
        .await
    }

    pub async fn sales(&self, reference: &str) -> Vec<Value> {
        self.model(
            "sale.sale",
            "search_read",
            vec![
                json!([["reference", "=", reference]]),
                json!(0),
                Value::Null,
                Value::Null,
                json!(["state", "lines", "shipment_state", "party.name"]),
            ],
        )
        .await
        .as_array()
        .cloned()
        .unwrap()
    }

    pub async fn quantity(&self, code: &str) -> f64 {
        let ids = self
            .model(
                "product.product",
                "search",
                vec![
                    json!([["code", "=", code]]),
                    json!(0),
                    json!(1),
                    Value::Null,
                ],
            )
            .await;
        let wh = self
            .model(
                "stock.location",
                "search",
                vec![
                    json!([["code", "=", "WH"]]),
                    json!(0),
                    json!(1),
                    Value::Null,
                ],
            )
            .await;
        let mut context = self.context.clone();
        context["locations"] = wh.clone();
        let rows = TrytonRpc::call(
            &self.url,
            Some(&self.auth),
            "model.product.product.read",
            json!([ids, ["quantity"], context]),
        )
        .await;
        rows[0]["quantity"].as_f64().unwrap()
    }
}

impl TrytonRpc {
    async fn wizard(&self, name: &str, method: &str, mut args: Vec<Value>) -> Value {
        args.push(self.context.clone());
        TrytonRpc::call(
            &self.url,
            Some(&self.auth),
            &format!("wizard.{name}.{method}"),
            Value::Array(args),
        )
        .await
    }

    async fn first_account(&self, domain: Value) -> Value {
        let mut domain = domain.as_array().cloned().unwrap();
        domain.push(json!(["company", "=", self.context["company"]]));
        domain.push(json!(["closed", "!=", true]));
        domain.push(json!(["type", "!=", null]));
        let found = self
            .model(
                "account.account",
                "search",
                vec![
                    Value::Array(domain),
                    json!(0),
                    json!(1),
                    json!([["code", "ASC"]]),
                ],
            )
            .await;
        found[0].clone()
    }

    /// Gives the database what invoicing needs, as an accountant would set it up: a chart
    /// of accounts with receivable and revenue defaults, a fiscal year `year` with periods
    /// and an invoice sequence, and an accounting category on every product.
    pub async fn prepare_invoicing(&self, year: i32) {
        let company = self.context["company"].clone();
        let template = self
            .model(
                "account.account.template",
                "search",
                vec![
                    json!([["parent", "=", null]]),
                    json!(0),
                    json!(1),
                    Value::Null,
                ],
            )
            .await;
        const CHART: &str = "account.create_chart";
        let started = self.wizard(CHART, "create", vec![]).await;
        let (session, start) = (started[0].clone(), started[1].clone());
        self.wizard(CHART, "execute", vec![session.clone(), json!({}), start])
            .await;
        self.wizard(
            CHART,
            "execute",
            vec![session.clone(), json!({}), json!("account")],
        )
        .await;
        self.wizard(
            CHART,
            "execute",
            vec![
                session.clone(),
                json!({"account": {"company": company, "account_template": template[0]}}),
                json!("create_account"),
            ],
        )
        .await;
        let receivable = self
            .first_account(json!([
                ["type.receivable", "=", true],
                ["party_required", "=", true]
            ]))
            .await;
        let payable = self
            .first_account(json!([
                ["type.payable", "=", true],
                ["party_required", "=", true]
            ]))
            .await;
        let revenue = self
            .first_account(json!([["type.revenue", "=", true]]))
            .await;
        let expense = self
            .first_account(json!([
                ["type.expense", "=", true],
                ["type.statement", "=", "income"]
            ]))
            .await;
        self.wizard(
            CHART,
            "execute",
            vec![
                session.clone(),
                json!({"properties": {"company": company, "account_receivable": receivable,
                    "account_payable": payable, "category_account_revenue": revenue,
                    "category_account_expense": expense}}),
                json!("create_properties"),
            ],
        )
        .await;
        self.wizard(CHART, "delete", vec![session]).await;

        let mut sequences = Vec::new();
        for (name, kind) in [("Invoice", "Invoice"), ("Move", "Account Move")] {
            let kind = self
                .model(
                    "ir.sequence.type",
                    "search",
                    vec![
                        json!([["name", "=", kind]]),
                        json!(0),
                        json!(1),
                        Value::Null,
                    ],
                )
                .await;
            let created = self
                .model(
                    "ir.sequence.strict",
                    "create",
                    vec![json!([{"name": name, "sequence_type": kind[0], "company": company}])],
                )
                .await;
            sequences.push(created[0].clone());
        }
        let day = |month: u32, day: u32| json!({"__class__": "date", "year": year, "month": month, "day": day});
        let invoice = &sequences[0];
        let year_id = self
            .model(
                "account.fiscalyear",
                "create",
                vec![json!([{
                    "name": year.to_string(), "company": company,
                    "start_date": day(1, 1), "end_date": day(12, 31),
                    "move_sequence": sequences[1],
                    "invoice_sequences": [["create", [{"company": company,
                        "out_invoice_sequence": invoice, "out_credit_note_sequence": invoice,
                        "in_invoice_sequence": invoice, "in_credit_note_sequence": invoice}]]],
                }])],
            )
            .await;
        self.model("account.fiscalyear", "create_period", vec![year_id])
            .await;
        let category = self
            .model(
                "product.category",
                "create",
                vec![json!([{"name": "Goods", "accounting": true,
                    "account_revenue": revenue, "account_expense": expense}])],
            )
            .await;
        let templates = self
            .model(
                "product.template",
                "search",
                vec![json!([]), json!(0), Value::Null, Value::Null],
            )
            .await;
        self.model(
            "product.template",
            "write",
            vec![templates, json!({"account_category": category[0]})],
        )
        .await;
    }

    /// The customer invoices with `reference`: state, total and description.
    pub async fn invoices(&self, reference: &str) -> Vec<Value> {
        self.model(
            "account.invoice",
            "search_read",
            vec![
                json!([["reference", "=", reference]]),
                json!(0),
                Value::Null,
                Value::Null,
                json!([
                    "state",
                    "total_amount",
                    "description",
                    "invoice_date",
                    "number"
                ]),
            ],
        )
        .await
        .as_array()
        .cloned()
        .unwrap()
    }
}
