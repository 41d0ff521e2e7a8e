//! Fresh PostgreSQL databases for end-to-end tests, on the server named by
//! `OMNIFLOW_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

pub fn admin_url() -> String {
    std::env::var("OMNIFLOW_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

pub fn admin(sql: &str) {
    let url = admin_url();
    let mut client = postgres::Client::connect(&url, postgres::NoTls)
        .unwrap_or_else(|err| panic!("PostgreSQL must run at {url}: {err}"));
    client.batch_execute(sql).unwrap();
}

/// A new database, dropped (with any session still on it) when this is dropped.
pub struct FreshDb {
    pub name: String,
    pub url: String,
}

impl FreshDb {
    pub fn create(tag: &str) -> FreshDb {
        let name = format!("omniflow_e2e_{tag}_{}", std::process::id());
        admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        admin(&format!("CREATE DATABASE {name}"));
        FreshDb {
            url: with_database(&admin_url(), &name),
            name,
        }
    }

    /// The text in the first column of each row of `sql` (nothing when it cannot run).
    pub fn texts(&self, sql: &str) -> Vec<String> {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .and_then(|mut client| client.query(sql, &[]))
            .map(|rows| rows.iter().map(|row| row.get(0)).collect())
            .unwrap_or_default()
    }

    pub fn count(&self, sql: &str) -> i64 {
        postgres::Client::connect(&self.url, postgres::NoTls)
            .and_then(|mut client| client.query_one(sql, &[]))
            .map_or(-1, |row| row.get(0))
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
