//! Forwarding through the real `ibiki-server` binary: replies posted as a
//! provider does reach clients' endpoints, local receivers that check every
//! Standard Webhooks signature with the `standardwebhooks` crate and record
//! what they got. Bursts, endpoints down, failing, slow, a server killed
//! with SIGKILL mid-delivery, and three servers sharing one database; on the
//! memory store and, with `DATABASE_URL`, on PostgreSQL (skipped without it,
//! unless `CI` is set).
#![cfg(unix)]

/// Makes each listed `async fn(Store)` a test on each store: one module per
/// store, one test per function. Each PostgreSQL test runs in a schema of
/// its own, dropped afterwards.
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::harness::Store::Memory).await;
                }
            )*
        }

        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(store) = crate::harness::Store::postgres().await else {
                        return;
                    };
                    super::$name(store).await;
                }
            )*
        }
    };
}

mod check;
mod harness;
mod receiver;
#[path = "../support/server_process.rs"]
mod server_process;

mod burst;
#[cfg(feature = "postgres")]
mod crash;
mod failures;
mod isolation;
