//! What the connectors of one runtime share, created once and passed down: where secrets
//! come from, the access-token cache, and the registry of operations.

use crate::api::Registry;
use crate::error::{ConnectorError, Map};
pub use crate::tokens::{TokenCache, TokenSlot};
use omniflow_ir::{Connection, SettingValue};
use serde_json::Value;
use std::path::PathBuf;

/// Where `secret(NAME)` settings are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretSource {
    /// The process environment (the default).
    #[default]
    Env,
    /// The file `dir/NAME` (deployment setting `secrets: { from: file, dir }`).
    Files(PathBuf),
}

/// What the connectors of one runtime share.
pub struct Context {
    pub secrets: SecretSource,
    pub tokens: TokenCache,
    pub registry: Registry,
}

impl Default for Context {
    fn default() -> Context {
        Context::new(SecretSource::Env)
    }
}

impl Context {
    /// The built-in connectors, reading secrets from `secrets`.
    pub fn new(secrets: SecretSource) -> Context {
        Context {
            secrets,
            tokens: TokenCache::default(),
            registry: Registry::builtin(),
        }
    }

    /// Resolves a connection's settings: `env(NAME)` reads the process environment,
    /// `secret(NAME)` the secret source (the environment, or files).
    pub fn settings(&self, connection: &Connection) -> Result<Map, ConnectorError> {
        let mut out = Map::new();
        for (name, value) in &connection.settings {
            let resolved = match value {
                SettingValue::Value(v) => v.clone(),
                SettingValue::Env(var) => env_value(connection, name, var)?,
                SettingValue::Secret(var) => match &self.secrets {
                    SecretSource::Files(dir) => {
                        let path = dir.join(var);
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            ConnectorError::SecretFile {
                                connection: connection.name.clone(),
                                setting: name.clone(),
                                path: path.display().to_string(),
                                error: e.to_string(),
                            }
                        })?;
                        Value::String(text.trim_end_matches(['\r', '\n']).to_string())
                    }
                    SecretSource::Env => env_value(connection, name, var)?,
                },
            };
            out.insert(name.clone(), resolved);
        }
        Ok(out)
    }
}

fn env_value(connection: &Connection, name: &str, var: &str) -> Result<Value, ConnectorError> {
    std::env::var(var)
        .map(Value::String)
        .map_err(|_| ConnectorError::MissingEnv {
            connection: connection.name.clone(),
            setting: name.to_string(),
            var: var.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::time::Instant;

    #[test]
    fn one_token_slot_per_key_and_context() {
        let ctx = Context::default();
        let a = ctx.tokens.slot("https://t/token form".into());
        let b = ctx.tokens.clone().slot("https://t/token form".into());
        assert!(Rc::ptr_eq(&a, &b));
        *a.borrow_mut() = Some(("tok".into(), Instant::now()));
        assert_eq!(b.borrow().as_ref().map(|(t, _)| t.as_str()), Some("tok"));
        assert!(!Rc::ptr_eq(&a, &ctx.tokens.slot("other".into())));
        let other = Context::default();
        assert!(other
            .tokens
            .slot("https://t/token form".into())
            .borrow()
            .is_none());
    }
}
