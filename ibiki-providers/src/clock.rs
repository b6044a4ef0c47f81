//! Timestamp tolerance: a signed timestamp far from the server's clock means a
//! replayed request (or a clock that drifted).
//!
//! The server's clock is [`WebhookRequest::received_at`](super::WebhookRequest),
//! set by whoever builds the request, so tests and fuzzing choose it.

use time::OffsetDateTime;

use super::error::WebhookError;

/// The tolerance providers use unless they document another: five minutes.
pub(crate) const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Checks that `signed_unix_secs` is within `tolerance_secs` of `now`, either
/// way.
pub(crate) fn check_fresh(
    signed_unix_secs: i64,
    now: OffsetDateTime,
    tolerance_secs: u64,
) -> Result<(), WebhookError> {
    let age_secs = now.unix_timestamp().saturating_sub(signed_unix_secs);
    if age_secs.unsigned_abs() > tolerance_secs {
        return Err(WebhookError::StaleTimestamp {
            age_secs,
            tolerance_secs,
        });
    }
    Ok(())
}

/// Reads a decimal Unix timestamp in seconds; `None` if it is not one.
pub(crate) fn parse_unix_secs(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerance_holds_both_ways() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).expect("valid");
        assert!(check_fresh(1_000_000 - 300, now, 300).is_ok());
        assert!(check_fresh(1_000_000 + 300, now, 300).is_ok());
        let Err(WebhookError::StaleTimestamp { age_secs, .. }) = check_fresh(999_699, now, 300)
        else {
            panic!("stale accepted");
        };
        assert_eq!(age_secs, 301);
        assert!(check_fresh(i64::MIN, now, 300).is_err());
        assert!(check_fresh(i64::MAX, now, 300).is_err());
    }

    #[test]
    fn timestamps_are_plain_digits() {
        assert_eq!(parse_unix_secs(" 1700000000 "), Some(1_700_000_000));
        for bad in ["", "-1", "+1", "1.5", "99999999999999999999"] {
            assert_eq!(parse_unix_secs(bad), None, "{bad}");
        }
    }
}
