//! Runs a store property: proptest cases against a fresh store each.

use std::fmt::Debug;
use std::future::Future;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::ReplyStore;

/// Runs `check` on `cases` values of `strategy` (`PROPTEST_CASES` overrides
/// it), each against a fresh store from `factory` (`None` skips the case).
/// Panics with the smallest failing value, introduced as `what`.
pub(crate) fn run_property<S, F, Fut, T, C>(
    factory: F,
    cases: u32,
    strategy: T,
    what: &str,
    check: C,
) where
    S: ReplyStore,
    F: Fn() -> Fut,
    Fut: Future<Output = Option<S>>,
    T: Strategy,
    T::Value: Debug,
    C: AsyncFn(&S, &T::Value) -> Result<(), TestCaseError>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&strategy, |value| {
        runtime.block_on(async {
            let Some(store) = factory().await else {
                return Ok(());
            };
            check(&store, &value).await
        })
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, value)) => {
            panic!("{reason}\nminimal failing {what}: {value:#?}")
        }
        Err(e) => panic!("{e}"),
    }
}
