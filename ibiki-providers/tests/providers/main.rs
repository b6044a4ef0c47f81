//! Each provider's documented payload through its decoder, with its
//! signature made as the provider makes it.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use ibiki_core::Normalizer;
use proptest::prelude::*;
use time::OffsetDateTime;

mod bandwidth;
mod basic_auth;
mod generic;
mod infobip;
mod messagebird;
mod plivo;
mod sinch;
mod telnyx;
mod twilio;
mod vonage;

pub use ibiki_providers::testing::fixture;

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

/// Arbitrary JSON, biased towards the shapes providers send.
pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "message-received",
            "message-delivered",
            "+14155550100",
            "14155550100",
            "",
            "hi",
        ])
        .prop_map(serde_json::Value::from),
        ".{0,8}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "type",
                    "message",
                    "id",
                    "owner",
                    "to",
                    "from",
                    "text",
                    "results",
                    "messageId",
                    "body",
                    "received_at",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6,
            )
            .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
        ]
    })
}
