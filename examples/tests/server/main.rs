//! The example server, started for real on 127.0.0.1:0 and driven over HTTP.

mod harness;
mod stores;

/// Makes each listed `async fn(Arc<DynReplyStore>)` a test against every
/// store: one module per store, one test per function.
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
    };
}

mod admin;
mod auth;
mod failures;
mod paging;
mod signatures;
mod upgrade;
mod webhook;
