//! A `postgres://` state URL: parsed into the client's settings, and shown (in logs and
//! errors) without its password.

use postgres::Config;

/// The URL schemes of a PostgreSQL state.
pub const SCHEMES: [&str; 2] = ["postgres://", "postgresql://"];

/// True when `spec` names a PostgreSQL state.
pub fn is_postgres(spec: &str) -> bool {
    SCHEMES.iter().any(|scheme| spec.starts_with(scheme))
}

/// Where a PostgreSQL state lives.
#[derive(Clone)]
pub struct Target {
    /// The client's settings.
    pub config: Config,
    /// The URL as shown: its password replaced by `***`.
    pub shown: String,
    /// The password as written in the URL (decoded too), to scrub from any message.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Reads a `postgres://[user[:password]@]host[:port]/dbname[?options]` URL; the URL
    /// must name a database.
    pub fn parse(spec: &str) -> Result<Target, String> {
        let (shown, secrets) = redact(spec);
        let config: Config = spec.parse().map_err(|err: postgres::Error| {
            scrub_with(
                &format!("state `{shown}` is not a PostgreSQL URL: {err}"),
                &secrets,
            )
        })?;
        if config.get_dbname().is_none_or(str::is_empty) {
            return Err(format!(
                "state `{shown}` names no database; use postgres://USER@HOST[:PORT]/DATABASE"
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(format!(
                "state `{shown}` names no host; use postgres://USER@HOST[:PORT]/DATABASE"
            ));
        }
        let mut config = config;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name(&application_name());
        }
        Ok(Target {
            config,
            shown,
            secrets,
        })
    }

    /// `text` with every form of the password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        scrub_with(text, &self.secrets)
    }

    /// Connects (plain TCP).
    pub fn connect(&self) -> Result<postgres::Client, String> {
        self.config.connect(postgres::NoTls).map_err(|err| {
            self.scrub(&format!(
                "cannot connect to state `{}`: {}",
                self.shown,
                describe(&err)
            ))
        })
    }
}

/// How this process names itself to the server (seen by an operator in
/// `pg_stat_activity`, and by a refused second writer).
pub(crate) fn application_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default();
    // The server keeps 63 bytes.
    let mut name = format!("omniflow pid {} on {host}", std::process::id());
    name.truncate(63);
    name
}

/// A client error with its cause (the client's own text stops at "error connecting to
/// server" or "db error").
pub fn describe(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(err) {
        Some(cause) => format!("{err}: {cause}"),
        None => err.to_string(),
    }
}

fn scrub_with(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|secret| !secret.is_empty())
        .fold(text.to_string(), |text, secret| {
            text.replace(secret.as_str(), "***")
        })
}

/// A URL as it may be shown: its passwords replaced by `***`.
pub fn redacted(spec: &str) -> String {
    redact(spec).0
}

/// The URL with the password of its user info and of a `password=` option replaced by
/// `***`, and the passwords found (as written and percent-decoded).
fn redact(spec: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let Some((scheme, rest)) = spec.split_once("://") else {
        return (spec.to_string(), secrets);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, password)) => {
                secrets.push(password.to_string());
                secrets.push(percent_decode(password));
                format!("{user}:***@{host}")
            }
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let options: Vec<String> = query
                .split('&')
                .map(|option| match option.split_once('=') {
                    Some((name, value)) if name.eq_ignore_ascii_case("password") => {
                        secrets.push(value.to_string());
                        secrets.push(percent_decode(value));
                        format!("{name}=***")
                    }
                    _ => option.to_string(),
                })
                .collect();
            format!("{path}?{}", options.join("&"))
        }
        None => tail.to_string(),
    };
    // Longest first, so that a password containing another is replaced whole.
    secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
    (format!("{scheme}://{authority}{tail}"), secrets)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = || {
            let pair = text.get(at + 1..at + 3)?;
            u8::from_str_radix(pair, 16).ok()
        };
        match (bytes[at], hex()) {
            (b'%', Some(byte)) => {
                out.push(byte);
                at += 3;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_is_shown_as_stars_and_scrubbed_from_any_text() {
        let target =
            Target::parse("postgresql://omni:s%40cret@db.example:6543/state?password=other")
                .unwrap();
        assert_eq!(
            target.shown,
            "postgresql://omni:***@db.example:6543/state?password=***"
        );
        assert_eq!(
            target.scrub("failed: s@cret, s%40cret, other"),
            "failed: ***, ***, ***"
        );
        assert_eq!(target.config.get_dbname(), Some("state"));
        let plain = Target::parse("postgres://postgres@127.0.0.1/omniflow").unwrap();
        assert_eq!(plain.shown, "postgres://postgres@127.0.0.1/omniflow");
    }

    #[test]
    fn a_url_without_a_database_is_refused_without_its_password() {
        let err = Target::parse("postgres://u:hunter2@localhost").unwrap_err();
        assert!(err.contains("names no database"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = Target::parse("postgres://u:hunter2@localhost:notaport/db").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
