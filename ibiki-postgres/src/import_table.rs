//! [`ImportTable`]: reading the assignments of the system ibiki replaces
//! from its PostgreSQL table, for [`ibiki_core::ImportPlanner`].

use std::fmt;

use ibiki_core::{ImportRow, PhoneNumbersInput};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection, Row};

/// Where the old system kept each client's numbers, and how to read them.
///
/// By default the table `client_profiles`, the client id in `user_id`, and the
/// numbers in `assigned_phone_numbers` (a `text[]`, the old system's V11.1)
/// or, when the table has no such column, in `assigned_phone_number` (a
/// `text`, V11.0). A text column may hold a comma-separated list: it is split
/// like admin input.
///
/// Names are exact (as `\d` shows them: `Client Profiles` is not
/// `client profiles`) and always quoted in SQL, so any name is safe; a table
/// outside the search path is written `schema.table`.
///
/// ```no_run
/// # async fn demo() -> Result<(), ibiki_postgres::ImportTableError> {
/// use ibiki_postgres::ImportTable;
///
/// let mut reader = ImportTable::new()
///     .table("crm.client_profiles")
///     .open("postgres://reader@old-db/app")
///     .await?;
/// while let Some(rows) = reader.next_batch().await? {
///     println!("{} rows", rows.len());
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a ImportTable does nothing until `open`"]
pub struct ImportTable {
    table: String,
    client_column: String,
    numbers_column: Option<String>,
    batch_size: u32,
}

impl Default for ImportTable {
    fn default() -> Self {
        Self::new()
    }
}

/// The column names tried, in order, when none is given.
pub const IMPORT_NUMBERS_COLUMNS: [&str; 2] = ["assigned_phone_numbers", "assigned_phone_number"];

impl ImportTable {
    /// The default table: `client_profiles`.
    pub const DEFAULT_TABLE: &'static str = "client_profiles";
    /// The default client column: `user_id`.
    pub const DEFAULT_CLIENT_COLUMN: &'static str = "user_id";
    /// Rows fetched per round trip by default.
    pub const DEFAULT_BATCH_SIZE: u32 = 5_000;

    /// The defaults.
    pub fn new() -> Self {
        Self {
            table: Self::DEFAULT_TABLE.to_owned(),
            client_column: Self::DEFAULT_CLIENT_COLUMN.to_owned(),
            numbers_column: None,
            batch_size: Self::DEFAULT_BATCH_SIZE,
        }
    }

    /// The table, `name` or `schema.name`.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// The column holding the client id (any type: it is read as text).
    pub fn client_column(mut self, column: impl Into<String>) -> Self {
        self.client_column = column.into();
        self
    }

    /// The column holding the numbers: an array (read as `text[]`, one entry
    /// per element) or a scalar (read as text and split at commas).
    pub fn numbers_column(mut self, column: impl Into<String>) -> Self {
        self.numbers_column = Some(column.into());
        self
    }

    /// Rows fetched per round trip (at least 1).
    pub fn batch_size(mut self, rows: u32) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Connects to `url` and opens the table ([`open_on`](Self::open_on)).
    pub async fn open(&self, url: &str) -> Result<ImportTableReader, ImportTableError> {
        let options: PgConnectOptions = url.parse().map_err(ImportTableError::Database)?;
        let connection = PgConnection::connect_with(&options)
            .await
            .map_err(ImportTableError::Database)?;
        self.open_on(connection).await
    }

    /// Checks the table and its columns, then opens a cursor over the rows
    /// in one read-only snapshot (a `REPEATABLE READ` transaction): rows
    /// written while the import reads are not half seen.
    pub async fn open_on(
        &self,
        mut connection: PgConnection,
    ) -> Result<ImportTableReader, ImportTableError> {
        let table = quote_table(&self.table);
        let columns = columns(&mut connection, &self.table, &table).await?;
        let find = |name: &str| columns.iter().find(|c| c.name == name);
        let missing = |column: &str| ImportTableError::NoColumn {
            table: self.table.clone(),
            column: column.to_owned(),
            columns: columns.iter().map(|c| c.name.clone()).collect(),
        };
        if find(&self.client_column).is_none() {
            return Err(missing(&self.client_column));
        }
        let numbers = match &self.numbers_column {
            Some(name) => find(name).ok_or_else(|| missing(name))?,
            None => IMPORT_NUMBERS_COLUMNS
                .iter()
                .find_map(|name| find(name))
                .ok_or_else(|| missing(&IMPORT_NUMBERS_COLUMNS.join("\" or \"")))?,
        };
        let shape = if numbers.is_array {
            ImportTableShape::Array
        } else {
            ImportTableShape::Text
        };
        let cast = match shape {
            ImportTableShape::Array => "text[]",
            ImportTableShape::Text => "text",
        };
        let select = format!(
            "SELECT {client}::text, {numbers}::{cast} FROM {table} ORDER BY 1",
            client = quote(&self.client_column),
            numbers = quote(&numbers.name),
        );
        // One snapshot for the whole read; the reader commits at the end.
        let declare = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; \
             DECLARE old_rows NO SCROLL CURSOR FOR {select}"
        );
        connection
            .execute(&*declare)
            .await
            .map_err(ImportTableError::Database)?;
        Ok(ImportTableReader {
            connection,
            fetch: format!("FETCH {} FROM old_rows", self.batch_size),
            shape,
            numbers_column: numbers.name.clone(),
            done: false,
        })
    }
}

/// How the numbers column is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportTableShape {
    /// An array: each element is one entry.
    Array,
    /// A scalar read as text: one number or a comma-separated list.
    Text,
}

/// Reads a [`ImportTable`] in batches, each one round trip.
pub struct ImportTableReader {
    connection: PgConnection,
    fetch: String,
    shape: ImportTableShape,
    numbers_column: String,
    done: bool,
}

impl fmt::Debug for ImportTableReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportTableReader")
            .field("shape", &self.shape)
            .field("numbers_column", &self.numbers_column)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl ImportTableReader {
    /// How the numbers column is read.
    pub fn shape(&self) -> ImportTableShape {
        self.shape
    }

    /// The numbers column read (the one found when none was given).
    pub fn numbers_column(&self) -> &str {
        &self.numbers_column
    }

    /// The next rows, or `None` after the last. A NULL numbers value, an
    /// empty text and an empty array are rows without entries (the planner
    /// counts them as empty); a NULL client id reads as an empty id, which
    /// the planner reports as invalid.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<ImportRow>>, ImportTableError> {
        if self.done {
            return Ok(None);
        }
        let rows = sqlx::query(&self.fetch)
            .fetch_all(&mut self.connection)
            .await
            .map_err(ImportTableError::Database)?;
        if rows.is_empty() {
            self.done = true;
            self.connection
                .execute("CLOSE old_rows; COMMIT")
                .await
                .map_err(ImportTableError::Database)?;
            return Ok(None);
        }
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            let client: Option<String> = row.try_get(0).map_err(ImportTableError::Database)?;
            let numbers = match self.shape {
                ImportTableShape::Array => {
                    let list: Option<Vec<Option<String>>> =
                        row.try_get(1).map_err(ImportTableError::Database)?;
                    PhoneNumbersInput::List(
                        list.unwrap_or_default()
                            .into_iter()
                            .map(Option::unwrap_or_default)
                            .collect(),
                    )
                }
                ImportTableShape::Text => {
                    let text: Option<String> =
                        row.try_get(1).map_err(ImportTableError::Database)?;
                    PhoneNumbersInput::Text(text.unwrap_or_default())
                }
            };
            batch.push(ImportRow::new(client.unwrap_or_default(), numbers));
        }
        Ok(Some(batch))
    }
}

/// Why the old table could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportTableError {
    /// The table does not exist (or is not visible to this user).
    #[error("table \"{table}\" does not exist in the legacy database")]
    NoTable {
        /// The table as given.
        table: String,
    },
    /// A column does not exist; the table's columns are listed.
    #[error("table \"{table}\" has no column \"{column}\"; its columns: {}", list(.columns))]
    NoColumn {
        /// The table as given.
        table: String,
        /// The column looked for (or the names tried).
        column: String,
        /// The table's columns, in order.
        columns: Vec<String>,
    },
    /// The database failed.
    #[error("legacy database: {0}")]
    Database(#[source] sqlx::Error),
}

fn list(columns: &[String]) -> String {
    let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
    if quoted.is_empty() {
        "none".to_owned()
    } else {
        quoted.join(", ")
    }
}

struct Column {
    name: String,
    is_array: bool,
}

/// The table's columns, or [`ImportTableError::NoTable`].
async fn columns(
    connection: &mut PgConnection,
    given: &str,
    quoted: &str,
) -> Result<Vec<Column>, ImportTableError> {
    let rows = sqlx::query(
        "SELECT a.attname::text, t.typcategory = 'A' \
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY a.attnum",
    )
    .bind(quoted)
    .fetch_all(&mut *connection)
    .await
    .map_err(ImportTableError::Database)?;
    if rows.is_empty() {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(quoted)
            .fetch_one(&mut *connection)
            .await
            .map_err(ImportTableError::Database)?;
        if !exists {
            return Err(ImportTableError::NoTable {
                table: given.to_owned(),
            });
        }
    }
    rows.iter()
        .map(|row| {
            Ok(Column {
                name: row.try_get(0).map_err(ImportTableError::Database)?,
                is_array: row.try_get(1).map_err(ImportTableError::Database)?,
            })
        })
        .collect()
}

/// An identifier quoted for SQL text: inner quotes doubled, NUL removed
/// (PostgreSQL accepts none in a name).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('\0', "").replace('"', "\"\""))
}

/// `table` or `schema.table`, each part quoted. The first `.` separates the
/// schema; a table name holding a `.` itself is written with its schema.
fn quote_table(table: &str) -> String {
    match table.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote(schema), quote(name)),
        None => quote(table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted() {
        assert_eq!(quote("user_id"), "\"user_id\"");
        assert_eq!(quote("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("Client Profiles"), "\"Client Profiles\"");
        assert_eq!(
            quote_table("crm.client_profiles"),
            "\"crm\".\"client_profiles\""
        );
        assert_eq!(
            quote_table("x\"; DROP TABLE t; --.y"),
            "\"x\"\"; DROP TABLE t; --\".\"y\""
        );
    }

    #[test]
    fn a_missing_column_lists_the_table_s_columns() {
        let error = ImportTableError::NoColumn {
            table: "client_profiles".into(),
            column: "phones".into(),
            columns: vec!["user_id".into(), "email".into()],
        };
        assert_eq!(
            error.to_string(),
            "table \"client_profiles\" has no column \"phones\"; its columns: \"user_id\", \"email\""
        );
    }
}
