//! One connection to the state database: statements prepared once and kept, and a note
//! of any failed statement (a failure aborts PostgreSQL's whole transaction).

use super::target::{describe, Target};
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use std::collections::HashMap;

/// A client with its prepared statements.
pub struct Conn {
    pub client: Client,
    pub target: Target,
    statements: HashMap<&'static str, Statement>,
    /// Set when a statement failed inside the open transaction and no savepoint undid it:
    /// the server then refuses everything until the transaction ends, and its commit only
    /// rolls back.
    pub aborted: bool,
}

impl Conn {
    pub fn new(client: Client, target: Target) -> Conn {
        Conn {
            client,
            target,
            statements: HashMap::new(),
            aborted: false,
        }
    }

    /// The text of a failed request, without the URL's password.
    pub fn error(&self, err: &postgres::Error) -> String {
        self.target.scrub(&format!(
            "state store ({}): {}",
            self.target.shown,
            describe(err)
        ))
    }

    /// Puts a new connection in place of a lost one (its prepared statements went with it).
    pub fn replace(&mut self, client: Client) {
        self.client = client;
        self.statements.clear();
        self.aborted = false;
    }

    fn failed(&mut self, err: &postgres::Error) -> String {
        self.aborted = true;
        self.error(err)
    }

    /// The prepared form of `sql` (prepared at its first use on this connection).
    fn statement(&mut self, sql: &'static str) -> Result<Statement, String> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let prepared = self.client.prepare(sql);
        let statement = prepared.map_err(|err| self.failed(&err))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    /// Runs a statement; returns the rows it changed.
    pub fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, String> {
        let statement = self.statement(sql)?;
        let done = self.client.execute(&statement, params);
        done.map_err(|err| self.failed(&err))
    }

    /// Runs a query; returns its rows.
    pub fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, String> {
        let statement = self.statement(sql)?;
        let rows = self.client.query(&statement, params);
        rows.map_err(|err| self.failed(&err))
    }

    /// Runs a query of at most one row.
    pub fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, String> {
        let statement = self.statement(sql)?;
        let row = self.client.query_opt(&statement, params);
        row.map_err(|err| self.failed(&err))
    }

    /// Runs a query of exactly one row.
    pub fn query_one(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, String> {
        let statement = self.statement(sql)?;
        let row = self.client.query_one(&statement, params);
        row.map_err(|err| self.failed(&err))
    }

    /// Runs statements without parameters (transaction control, schema changes).
    pub fn batch(&mut self, sql: &str) -> Result<(), String> {
        let done = self.client.batch_execute(sql);
        done.map_err(|err| self.failed(&err))
    }

    /// Reads a column, naming the column in the error.
    pub fn get<'r, T: postgres::types::FromSql<'r>>(
        &self,
        row: &'r Row,
        column: usize,
    ) -> Result<T, String> {
        row.try_get(column).map_err(|err| self.error(&err))
    }
}
