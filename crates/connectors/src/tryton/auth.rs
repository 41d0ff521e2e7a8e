//! Tryton's JSON-RPC session (`POST {url}/{database}/rpc/`): it logs in with
//! `common.db.login`, sends `Authorization: Session base64(login:uid:token)`, logs in again
//! once when a call answers 401 (sessions expire after idling), and passes the user's
//! preferences as the `context` argument every model call needs.

use super::classify::{answer, WARNING};
use super::Settings;
use crate::api::ConnectorError;
use crate::client;
use crate::CallOutcome;
use base64::Engine;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::time::Duration;

/// A JSON-RPC session with one Tryton database.
pub struct Session {
    client: reqwest::Client,
    url: String,
    login: String,
    password: String,
    auth: RefCell<Option<String>>,
    uid: Cell<i64>,
    /// The user's preferences, the `context` of every model call.
    pub(super) context: RefCell<Value>,
    next_id: Cell<u64>,
}

impl Session {
    /// A session of a connection's settings (not logged in until the first call).
    pub fn new(settings: &Settings) -> Result<Session, ConnectorError> {
        Ok(Session {
            client: client::build()?,
            url: settings.rpc_url.clone(),
            login: settings.username.clone(),
            password: settings.password.clone(),
            auth: RefCell::new(None),
            uid: Cell::new(0),
            context: RefCell::new(json!({})),
            next_id: Cell::new(1),
        })
    }

    async fn raw(
        &self,
        method: &str,
        params: Value,
        auth: Option<&str>,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json!({"id": id, "method": method, "params": params}).to_string());
        if let Some(auth) = auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let reply = client::send(request, timeout).await?;
        answer(method, &reply)
    }

    async fn login(&self, timeout: Duration) -> Result<String, CallOutcome> {
        let result = self
            .raw(
                "common.db.login",
                json!([self.login, {"password": self.password}, "en"]),
                None,
                timeout,
            )
            .await
            .map_err(|e| match e {
                CallOutcome::Transient { class, .. } if class == "unauthorized" => {
                    CallOutcome::Permanent {
                        reason: format!("Tryton refused the login of `{}`", self.login),
                    }
                }
                other => other,
            })?;
        let (Some(uid), Some(token)) = (
            result.get(0).and_then(Value::as_i64),
            result.get(1).and_then(Value::as_str),
        ) else {
            return Err(CallOutcome::Permanent {
                reason: format!("unexpected login answer: {result}"),
            });
        };
        let auth = format!(
            "Session {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{uid}:{token}", self.login))
        );
        *self.auth.borrow_mut() = Some(auth.clone());
        self.uid.set(uid);
        let prefs = self
            .raw(
                "model.res.user.get_preferences",
                json!([true, {}]),
                Some(&auth),
                timeout,
            )
            .await?;
        let mut context = serde_json::Map::new();
        for key in ["company", "companies", "language", "currency"] {
            if let Some(v) = prefs.get(key) {
                context.insert(key.into(), v.clone());
            }
        }
        *self.context.borrow_mut() = Value::Object(context);
        Ok(auth)
    }

    /// Calls `model.<model>.<method>` with `args` and the session context appended; logs in
    /// when there is no session and once more after a 401. A `UserWarning` (say, stock
    /// coming back from a customer with no origin document) is acknowledged for this one
    /// call, as an operator would, and the call repeated once.
    pub async fn model(
        &self,
        model: &str,
        method: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        let mut renewed = false;
        let mut warned = false;
        loop {
            let current = self.auth.borrow().clone();
            let auth = match current {
                Some(a) => a,
                None => {
                    renewed = true;
                    self.login(timeout).await?
                }
            };
            let mut params = args.clone();
            params.push(self.context.borrow().clone());
            match self
                .raw(
                    &format!("model.{model}.{method}"),
                    Value::Array(params),
                    Some(&auth),
                    timeout,
                )
                .await
            {
                Err(CallOutcome::Transient { class, .. })
                    if class == "unauthorized" && !renewed =>
                {
                    *self.auth.borrow_mut() = None;
                    renewed = true;
                }
                Err(CallOutcome::Transient { class, reason, .. }) if class == WARNING => {
                    if warned {
                        return Err(CallOutcome::Permanent {
                            reason: format!(
                                "UserWarning {reason} repeated (model.{model}.{method})"
                            ),
                        });
                    }
                    warned = true;
                    let warning =
                        json!([{"user": self.uid.get(), "name": reason, "always": false}]);
                    let context = self.context.borrow().clone();
                    self.raw(
                        "model.res.user.warning.create",
                        json!([warning, context]),
                        Some(&auth),
                        timeout,
                    )
                    .await?;
                }
                other => return other,
            }
        }
    }

    /// Like [`Session::model`] with `context` in place of the session's.
    pub async fn raw_model(
        &self,
        model: &str,
        method: &str,
        mut args: Vec<Value>,
        context: Value,
        timeout: Duration,
    ) -> Result<Value, CallOutcome> {
        if self.auth.borrow().is_none() {
            self.login(timeout).await?;
        }
        let auth = self.auth.borrow().clone();
        args.push(context);
        match self
            .raw(
                &format!("model.{model}.{method}"),
                Value::Array(args.clone()),
                auth.as_deref(),
                timeout,
            )
            .await
        {
            Err(CallOutcome::Transient { class, .. }) if class == "unauthorized" => {
                let auth = self.login(timeout).await?;
                self.raw(
                    &format!("model.{model}.{method}"),
                    Value::Array(args),
                    Some(&auth),
                    timeout,
                )
                .await
            }
            other => other,
        }
    }

    /// Ids matching a domain.
    pub async fn search(
        &self,
        model: &str,
        domain: Value,
        limit: Option<u64>,
        timeout: Duration,
    ) -> Result<Vec<i64>, CallOutcome> {
        let found = self
            .model(
                model,
                "search",
                vec![domain, json!(0), json!(limit), Value::Null],
                timeout,
            )
            .await?;
        match found.as_array() {
            Some(ids) => Ok(ids.iter().filter_map(Value::as_i64).collect()),
            None => Err(client::unreadable(format!(
                "{model}.search answered {}, not a list of ids",
                client::kind(&found)
            ))),
        }
    }

    /// The one record matching a domain; `missing` is the permanent reason when none does.
    pub async fn find_one(
        &self,
        model: &str,
        domain: Value,
        missing: String,
        timeout: Duration,
    ) -> Result<i64, CallOutcome> {
        self.search(model, domain, Some(1), timeout)
            .await?
            .first()
            .copied()
            .ok_or(CallOutcome::Permanent { reason: missing })
    }

    /// Reads fields of records.
    pub async fn read(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Value>, CallOutcome> {
        let found = self
            .model(model, "read", vec![json!(ids), json!(fields)], timeout)
            .await?;
        found.as_array().cloned().ok_or_else(|| {
            client::unreadable(format!(
                "{model}.read answered {}, not a list of records",
                client::kind(&found)
            ))
        })
    }

    /// Creates one record; returns its id.
    pub async fn create(
        &self,
        model: &str,
        values: Value,
        timeout: Duration,
    ) -> Result<i64, CallOutcome> {
        let ids = self
            .model(model, "create", vec![json!([values])], timeout)
            .await?;
        ids.get(0)
            .and_then(Value::as_i64)
            .ok_or_else(|| CallOutcome::Permanent {
                reason: format!("{model}.create answered {ids}"),
            })
    }
}
