//! The PostgreSQL store against a real server (`DATABASE_URL`), in one binary
//! so the suites share the server check and the schema janitor.

mod batches;
mod cleanup;
mod conformance;
mod deadline;
mod errors;
mod forwards;
mod history;
mod import;
mod import_table;
mod keys;
mod pgbouncer;
mod races;
mod retention;
mod schema;
mod signals;
mod support;
