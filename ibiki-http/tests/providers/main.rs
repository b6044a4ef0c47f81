//! Each provider's documented payload through its decoder, with its
//! signature made as the provider makes it.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use ibiki_core::Normalizer;
use time::OffsetDateTime;

mod messagebird;
mod plivo;
mod telnyx;
mod twilio;
mod vonage;

/// A fixture from `tests/fixtures/<provider>/<name>`.
pub fn fixture(path: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Headers from `(name, value)` pairs.
pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                HeaderValue::from_str(value).expect("header value"),
            )
        })
        .collect()
}

/// A normalizer with a default region, so that a number missing its `+`
/// would be misread if a provider forgot to add it.
pub fn normalizer() -> Normalizer {
    Normalizer::new().with_default_region("US".parse().expect("region"))
}

/// A fixed arrival time.
pub fn at(unix_secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix_secs).expect("valid time")
}

/// `POST`.
pub const POST: Method = Method::POST;
