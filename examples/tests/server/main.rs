//! The example server, started for real on 127.0.0.1:0 and driven over HTTP,
//! on the in-memory store and, with `DATABASE_URL`, on PostgreSQL.

mod controlled_store;
#[cfg(feature = "postgres")]
mod database;
mod harness;
mod import;
mod prune;

/// Makes each listed `async fn(Arc<DynReplyStore>)` a test against every
/// store: one module per store, one test per function. Each PostgreSQL test
/// runs in a schema of its own, opened and migrated by the server's code.
macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::memory_store()).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(database) = crate::database::TestDatabase::create().await else {
                        return;
                    };
                    super::$name(database.open_store().await).await;
                }
            )*
        }
    };
}

mod admin;
mod auth;
mod binary;
mod events;
mod failures;
mod history;
mod many_numbers;
mod metrics;
mod openapi;
mod paging;
mod providers;
mod reroute;
mod signatures;
mod webhook;
