//! sqlx errors as [`StoreError`]s: transient ones are `Unavailable` (a webhook
//! answers "retry later"), the rest `Backend`; the sqlx error is always kept
//! as the source.

use ibiki_core::StoreError;
use sqlx::migrate::MigrateError;

/// Maps an sqlx error.
pub(crate) fn store_error(error: sqlx::Error) -> StoreError {
    if is_transient(&error) {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}

/// Maps a migration error: a failed statement like any sqlx error, anything
/// else (a changed or missing migration) as a backend failure.
pub(crate) fn migrate_error(error: MigrateError) -> StoreError {
    match error {
        MigrateError::Execute(error) => store_error(error),
        other => StoreError::Backend(Box::new(other)),
    }
}

/// Wraps an error of ours (bad configuration, an impossible row).
pub(crate) fn backend(error: impl Into<ibiki_core::BoxError>) -> StoreError {
    StoreError::Backend(error.into())
}

/// Whether the same call may succeed later: the server is unreachable, shutting
/// down, out of resources, or a transaction lost a race it can win on retry.
pub(crate) fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_sqlstate(&code)),
        _ => false,
    }
}

/// SQLSTATEs worth a retry:
/// - class 08: connection exceptions;
/// - 57P0x: admin/crash shutdown, cannot connect now, database dropped, idle
///   session timeout;
/// - class 53: insufficient resources (disk full, out of memory, too many
///   connections);
/// - 40001 serialization failure, 40P01 deadlock detected;
/// - 57014 query canceled (`statement_timeout`) and 55P03 lock not available
///   (`lock_timeout`): the store timed out, which `Unavailable` covers.
fn is_transient_sqlstate(code: &str) -> bool {
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P0")
        || matches!(code, "40001" | "40P01" | "57014" | "55P03")
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn sqlstates() {
        for transient in [
            "08000", "08006", "08P01", "57P01", "57P02", "57P03", "53300", "53100", "40001",
            "40P01", "57014", "55P03",
        ] {
            assert!(is_transient_sqlstate(transient), "{transient}");
        }
        for permanent in [
            "23505", "23514", "42P01", "42501", "P0001", "22021", "40002",
        ] {
            assert!(!is_transient_sqlstate(permanent), "{permanent}");
        }
    }

    #[test]
    fn connection_failures_are_unavailable_and_keep_their_source() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        for error in [
            sqlx::Error::Io(refused),
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
        ] {
            let mapped = store_error(error);
            assert!(matches!(mapped, StoreError::Unavailable(_)), "{mapped:?}");
            assert!(std::error::Error::source(&mapped).is_some());
        }
        let mapped = store_error(sqlx::Error::RowNotFound);
        assert!(matches!(mapped, StoreError::Backend(_)), "{mapped:?}");
    }
}
