//! Deployment settings (`omniflow.yaml`): where state lives, the listen addresses, where
//! secrets come from, and per-environment connection overrides, so the same compiled
//! flows run against the sandbox, staging and production. Flows stay environment-free.
//!
//! ```yaml
//! state: sqlite:/var/lib/omniflow/state.db
//! ops_addr: 127.0.0.1:9090
//! webhook_addr: 0.0.0.0:8080
//! secrets: { from: file, dir: /run/secrets }   # or { from: env } (the default)
//! servers:                     # the webhook and ops servers, each (defaults shown)
//!   max_connections: 512       # at the cap, the connection waiting longest is closed
//!   header_timeout: 10s        # a request's head, from its first byte
//!   body_timeout: 30s          # its body, after the head (408 past it)
//!   idle_timeout: 60s          # a connection waiting for its first or next request
//! retention:                   # unset: kept for ever (see state::retention)
//!   outcomes: 90d              # sinks' idempotency memory, counted back from held work
//!   dead_letters: 30d          # replayed or discarded dead letters
//!   lineage: 30d               # what `omniflow trace` shows (default: outcomes' window)
//! telemetry:                   # OpenTelemetry over OTLP/HTTP (protobuf); unset: none
//!   otlp_endpoint: http://127.0.0.1:4318   # /v1/traces and /v1/metrics are added
//!   service_name: omniflow     # the resource's service.name (default)
//!   metrics_every: 10s         # time between metric exports (default)
//! console:                     # the operator console under /console on the ops address
//!   token_secret: CONSOLE_TOKEN  # the secret pages ask for; without it the console is
//!                                # served only on a loopback ops address
//! connections:
//!   erp:                       # point the flows' Tryton ERP at an OData service
//!     connector: odata
//!     settings:
//!       service_url: { env: ERP_ODATA_URL }
//!       username: integration
//!       password: { secret: ERP_PASSWORD }
//!   shop:                      # keep the connector, change some settings
//!     settings:
//!       api_version: "2026-07"
//! ```

use omniflow_ir::{Graph, SettingValue};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The settings of one deployment.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    /// State backend (`sqlite:PATH`).
    pub state: Option<String>,
    /// Where `/health`, `/ready` and `/metrics` are served.
    pub ops_addr: Option<String>,
    /// Where webhook sources listen.
    pub webhook_addr: Option<String>,
    /// Where `secret("NAME")` values are read.
    #[serde(default)]
    pub secrets: Secrets,
    /// Overrides by connection name.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionOverride>,
    /// Deadlines and connection cap of the webhook and ops servers.
    #[serde(default)]
    pub servers: omniflow_http::server::Limits,
    /// How long finished work is remembered.
    #[serde(default)]
    pub retention: omniflow_state::retention::Retention,
    /// The operator console.
    #[serde(default)]
    pub console: Console,
    /// OpenTelemetry export.
    #[serde(default)]
    pub telemetry: Option<Telemetry>,
}

/// Where traces and metrics are exported over OTLP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// The OTLP/HTTP endpoint's base URL (`/v1/traces` and `/v1/metrics` are added).
    pub otlp_endpoint: String,
    /// The resource's `service.name` (default `omniflow`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// Time between metric exports (default 10s).
    #[serde(default)]
    pub metrics_every: Option<omniflow_http::connections::Timeout>,
}

/// The operator console's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    /// The secret (read from the deployment's secret store) that console pages ask for.
    pub token_secret: Option<String>,
}

/// Where secrets come from.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Secrets {
    /// `env` (default) or `file`.
    #[serde(default)]
    pub from: SecretSource,
    /// With `from: file`, the directory holding one file per secret name.
    pub dir: Option<PathBuf>,
}

/// A secret store.
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    #[default]
    Env,
    File,
}

/// One connection's override.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionOverride {
    /// Another built-in connector offering the operations the flows use.
    pub connector: Option<String>,
    /// Settings replacing the flow's (all of them when the connector changes).
    #[serde(default)]
    pub settings: BTreeMap<String, Setting>,
}

/// A setting's value: read from the environment, the secret store, or given.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Setting {
    Env { env: String },
    Secret { secret: String },
    Value(Value),
}

impl Setting {
    fn to_ir(&self) -> SettingValue {
        match self {
            Setting::Env { env } => SettingValue::Env(env.clone()),
            Setting::Secret { secret } => SettingValue::Secret(secret.clone()),
            Setting::Value(v) => SettingValue::Value(v.clone()),
        }
    }
}

/// Why a deployment file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The file is not a valid deployment.
    #[error("`{}`: {reason}", .path.display())]
    Invalid {
        path: std::path::PathBuf,
        reason: String,
    },
    /// It overrides a connection no flow declares.
    #[error("omniflow.yaml overrides the connection `{0}`, which no flow declares")]
    UnknownConnection(String),
}

impl Deployment {
    /// What the connectors of a runtime under this deployment share (secrets from the
    /// environment or from files).
    pub fn connectors(&self) -> omniflow_connectors::Context {
        omniflow_connectors::Context::new(match self.secrets.from {
            SecretSource::Env => omniflow_connectors::SecretSource::Env,
            SecretSource::File => omniflow_connectors::SecretSource::Files(
                self.secrets.dir.clone().unwrap_or_default(),
            ),
        })
    }

    /// The console's token, read from the secret store; `None` when none is named.
    pub fn console_token(&self) -> Result<Option<String>, String> {
        let Some(name) = &self.console.token_secret else {
            return Ok(None);
        };
        let token = match (&self.secrets.from, &self.secrets.dir) {
            (SecretSource::File, Some(dir)) => std::fs::read_to_string(dir.join(name))
                .map(|t| t.trim_end_matches(['\r', '\n']).to_string())
                .map_err(|e| format!("console.token_secret `{name}`: {e}"))?,
            _ => std::env::var(name).map_err(|_| {
                format!("console.token_secret names `{name}`, which the environment does not set")
            })?,
        };
        if token.len() < 16 {
            return Err(format!(
                "console.token_secret `{name}`: the token must be at least 16 characters"
            ));
        }
        Ok(Some(token))
    }

    /// Parses the text of `omniflow.yaml` read from `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Deployment, DeployError> {
        let invalid = |reason: String| DeployError::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let deployment: Deployment =
            serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        deployment.servers.check().map_err(invalid)?;
        if deployment.secrets.from == SecretSource::File && deployment.secrets.dir.is_none() {
            return Err(invalid("`secrets: {from: file}` needs `dir`".into()));
        }
        Ok(deployment)
    }

    /// Applies the connection overrides to a compiled graph, and installs the secret store.
    pub fn apply(&self, graph: &mut Graph) -> Result<(), DeployError> {
        for (name, change) in &self.connections {
            let connection = graph
                .connections
                .iter_mut()
                .find(|c| &c.name == name)
                .ok_or_else(|| DeployError::UnknownConnection(name.clone()))?;
            let settings = change.settings.iter().map(|(k, v)| (k.clone(), v.to_ir()));
            match &change.connector {
                Some(connector) => {
                    connection.connector = connector.clone();
                    connection.settings = settings.collect();
                }
                None => connection.settings.extend(settings),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn reads_overrides_and_refuses_unknown_keys() {
        let yaml = "state: sqlite:x.db\nconnections:\n  erp:\n    connector: odata\n    settings:\n      service_url: { env: ERP_URL }\n      password: { secret: ERP_PASSWORD }\n      username: svc\n      csrf: true\n";
        let d: Deployment = serde_norway::from_str(yaml).unwrap();
        let erp = &d.connections["erp"];
        assert_eq!(erp.connector.as_deref(), Some("odata"));
        assert!(matches!(&erp.settings["service_url"], Setting::Env { env } if env == "ERP_URL"));
        assert!(
            matches!(&erp.settings["password"], Setting::Secret { secret } if secret == "ERP_PASSWORD")
        );
        assert!(matches!(
            &erp.settings["csrf"],
            Setting::Value(Value::Bool(true))
        ));
        assert!(serde_norway::from_str::<Deployment>("stat: x\n").is_err());
        let servers: Deployment =
            serde_norway::from_str("servers: { header_timeout: 2s, max_connections: 64 }\n")
                .unwrap();
        assert_eq!(servers.servers.max_connections, 64);
        assert_eq!(
            servers.servers.body_timeout,
            omniflow_http::server::Limits::default().body_timeout
        );
        assert!(servers.servers.check().is_ok());
        let none: Deployment = serde_norway::from_str("servers: { max_connections: 0 }\n").unwrap();
        assert!(none.servers.check().is_err());
        assert!(serde_norway::from_str::<Deployment>("servers: { idle_timeout: 10 }\n").is_err());
        assert!(serde_norway::from_str::<Deployment>("servers: { idle: 10s }\n").is_err());
        assert!(serde_norway::from_str::<Deployment>("secrets: { from: vault }\n").is_err());
    }

    #[test]
    fn refusals_name_the_file_or_the_connection() {
        let path = Path::new("omniflow.yaml");
        let refused = |yaml: &str| Deployment::parse(yaml, path).unwrap_err().to_string();
        assert_eq!(
            refused("secrets: { from: file }\n"),
            "`omniflow.yaml`: `secrets: {from: file}` needs `dir`"
        );
        assert!(refused("servers: { max_connections: 0 }\n")
            .starts_with("`omniflow.yaml`: `servers.max_connections: 0`"));
        assert!(refused("stat: x\n").starts_with("`omniflow.yaml`: "));
        let overrides =
            Deployment::parse("connections:\n  erp:\n    settings: {}\n", path).unwrap();
        let err = overrides.apply(&mut Graph::default()).unwrap_err();
        assert!(matches!(&err, DeployError::UnknownConnection(name) if name == "erp"));
        assert_eq!(
            err.to_string(),
            "omniflow.yaml overrides the connection `erp`, which no flow declares"
        );
    }
}
