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
        // Plans made for each execution: a plan cached while a table was nearly empty (at
        // start) would keep scanning a whole sink's outcomes once it holds millions.
        if config.get_options().is_none() {
            config.options("-c plan_cache_mode=force_custom_plan");
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
    let host = host_name();
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
    // `password=` options first: their values may hold `@` too.
    let mut rest = rest.to_string();
    let mut from = 0;
    while let Some(found) = rest[from..].to_ascii_lowercase().find("password=") {
        let start = from + found + "password=".len();
        let begins_option = matches!(rest[..from + found].chars().last(), Some('?' | '&'));
        let end = rest[start..].find('&').map_or(rest.len(), |at| start + at);
        if begins_option {
            let value = rest[start..end].to_string();
            secrets.push(percent_decode(&value));
            secrets.push(value);
            rest.replace_range(start..end, "***");
            from = start + "***".len();
        } else {
            from = start;
        }
    }
    // The user info ends at the last `@`: a password written without percent-encoding
    // may hold `/`, `?` or `@` (the URL is then refused, and must not show it).
    let (userinfo, after) = match rest.rsplit_once('@') {
        Some((userinfo, after)) => (Some(userinfo), after),
        None => (None, rest.as_str()),
    };
    let authority_end = after.find(['/', '?']).unwrap_or(after.len());
    let (host, tail) = after.split_at(authority_end);
    let authority = match userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((user, password)) => {
                secrets.push(password.to_string());
                secrets.push(percent_decode(password));
                format!("{user}:***@{host}")
            }
            None => format!("{userinfo}@{host}"),
        },
        None => host.to_string(),
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

#[cfg(test)]
mod unencoded {
    use super::*;

    #[test]
    fn a_password_written_with_a_slash_question_mark_or_hash_is_never_shown() {
        for spec in [
            "postgres://omni:pa/ss@127.0.0.1:1/state",
            "postgres://omni:pa?ss@127.0.0.1:1/state",
            "postgres://omni:pa#ss@127.0.0.1:1/state",
            "postgres://omni:p@/ss@127.0.0.1:1/state",
        ] {
            let secret = &spec["postgres://omni:".len()..spec.rfind('@').unwrap()];
            let shown = redacted(spec);
            assert!(!shown.contains(secret), "{spec}: {shown}");
            let error = match Target::parse(spec) {
                Ok(target) => {
                    assert!(!target.shown.contains(secret), "{}", target.shown);
                    target.connect().err().expect("nothing listens on port 1")
                }
                Err(error) => error,
            };
            assert!(!error.contains(secret), "{spec}: {error}");
            assert!(!crate::shown(spec).contains(secret), "{spec}");
        }
        // Without user info, an `@` further on is no user info's end.
        for (spec, secret) in [
            ("postgres://127.0.0.1:1/state?password=x@y", "x@y"),
            ("postgres://127.0.0.1:1/state?password=p:q@r", "p:q@r"),
        ] {
            let shown = redacted(spec);
            assert!(
                !shown.contains(secret) && !shown.contains("@y") && !shown.contains("@r"),
                "{spec}: {shown}"
            );
        }
        let plain = redacted("postgres://omni@127.0.0.1/state?application_name=a");
        assert_eq!(plain, "postgres://omni@127.0.0.1/state?application_name=a");
    }
}

/// This machine's name (empty when it cannot be read).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}
