//! Test support: the backend behaviour tests run against SQLite and against PostgreSQL,
//! each on a fresh state (a new file, or a new database dropped at the end).

use crate::{PostgresBackend, SqliteBackend, Store};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server the PostgreSQL tests create their databases on.
pub fn admin_url() -> String {
    std::env::var("OMNIFLOW_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// Runs `work` on a thread of its own: the synchronous client must not run on an async
/// runtime's thread (tests are often `#[tokio::test]`).
pub fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(work).join().expect("no panic"))
}

/// Runs statements one by one on the server's admin database.
fn admin(statements: &[String]) {
    let url = admin_url();
    off_runtime(|| {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|err| panic!("PostgreSQL must run at {url}: {err}"));
        for sql in statements {
            client.batch_execute(sql).unwrap();
        }
    });
}

/// A new database, dropped (with any session still on it) when this is dropped.
pub struct FreshDb {
    pub name: String,
    pub url: String,
}

impl FreshDb {
    pub fn create() -> FreshDb {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "omniflow_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        admin(&[
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ]);
        let url = with_database(&admin_url(), &name);
        FreshDb { name, url }
    }

    /// Runs SQL on the database through a connection of its own.
    pub fn batch(&self, sql: &str) {
        let url = self.url.clone();
        off_runtime(|| {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            client.batch_execute(sql).unwrap();
        });
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        admin(&[format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )]);
    }
}

/// Where a test's state lives.
pub enum Place {
    File(PathBuf),
    Database(FreshDb),
}

/// A fresh state of one backend with a store running over it.
pub struct TestState {
    pub store: Store,
    pub place: Place,
}

impl TestState {
    /// Which backend, for assertion messages.
    pub fn kind(&self) -> &'static str {
        match self.place {
            Place::File(_) => "sqlite",
            Place::Database(_) => "postgres",
        }
    }

    /// The PostgreSQL database of a state made by [`postgres`].
    pub fn database(&self) -> &FreshDb {
        match &self.place {
            Place::Database(db) => db,
            Place::File(path) => panic!("{} is a SQLite state", path.display()),
        }
    }

    /// Runs SQL against the state through a second connection (to age recorded times).
    pub fn age(&self, sql: &str) {
        match &self.place {
            Place::File(path) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(5))
                    .unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Place::Database(db) => db.batch(sql),
        }
    }
}

impl Drop for TestState {
    fn drop(&mut self) {
        if let Place::File(path) = &self.place {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_file(crate::check::wal_path(path));
            let _ = std::fs::remove_file(format!("{}-shm", path.display()));
        }
    }
}

/// A fresh SQLite state.
pub fn sqlite(name: &str) -> TestState {
    let path =
        std::env::temp_dir().join(format!("omniflow-state-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let backend = SqliteBackend::open(&path.display().to_string()).unwrap();
    TestState {
        store: Store::start(Box::new(backend)),
        place: Place::File(path),
    }
}

/// A fresh PostgreSQL state, opened as its writer.
pub fn postgres() -> TestState {
    let db = FreshDb::create();
    let url = db.url.clone();
    let backend =
        off_runtime(|| PostgresBackend::open_writer(&url, std::time::Duration::ZERO).unwrap());
    TestState {
        store: Store::start(Box::new(backend)),
        place: Place::Database(db),
    }
}

/// A fresh state of each backend.
pub fn each(name: &str) -> [TestState; 2] {
    [sqlite(name), postgres()]
}

/// A flow's dead letter, its message accepted at `accepted_at`.
pub fn letter(accepted_at: i64) -> crate::DeadLetter {
    crate::DeadLetter {
        id: 0,
        origin: crate::Origin::Flow("f".into()),
        source: "s".into(),
        node: "post".into(),
        sink: "f/post".into(),
        key: "k".into(),
        correlation_id: "c".into(),
        message: "{}".into(),
        payload: "{}".into(),
        error: "refused".into(),
        attempts: vec!["t1 timeout".into()],
        created_at: 0,
        replayed_at: None,
        accepted_at: Some(accepted_at),
        discarded_at: None,
        queue: None,
    }
}
