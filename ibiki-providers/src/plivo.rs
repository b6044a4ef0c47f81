//! Plivo Messaging: incoming messages posted to the application's
//! `message_url`.
//!
//! # What Plivo sends
//!
//! A form `POST` (or a `GET` query, per the application's `message_method`)
//! with `From`, `To`, `Type`, `Text`, `MessageUUID`, `Units`, `TotalRate`,
//! `TotalAmount`, `MessageIntent`, `PowerpackUUID` and, for MMS, `Body`,
//! `MediaCount` and `Media1...` ("Handling incoming SMS/MMS/WhatsApp",
//! <https://www.plivo.com/docs/messaging/api/message/handling-incoming>):
//! decoded into [`PlivoMessage`]. `From` and `To` are international numbers
//! without `+`; long messages arrive already concatenated; `MessageUUID` is
//! the dedup key.
//!
//! # Signature
//!
//! `X-Plivo-Signature-V3` is the base64 HMAC-SHA256, keyed with the (sub)account
//! Auth Token, of `<signed URL>.<X-Plivo-Signature-V3-Nonce>`; the header may
//! list several signatures separated by commas (one per active token), any of
//! which may match. The signed URL follows the official SDK exactly
//! (plivo-python `plivo/utils/signature_v3.py`, `validate_v3_signature`,
//! `construct_get_url` and `construct_post_url`): scheme, host and path of
//! the URL called, then
//! - for a `GET`: `?` and the query's pairs, decoded, sorted by name then
//!   value, as `name=value` joined by `&` (nothing if there are none);
//! - for a `POST`: `?` and the sorted query as above (the `?` even when the
//!   query is empty, as long as there are `POST` parameters), a `.` when both
//!   the query and the parameters are non-empty, then every `POST` parameter
//!   as `namevalue` sorted by name then value, with no separators.
//!
//! The unit tests use plivo-go's `TestValidateSignatureV3Pass1..4` vectors
//! (`utils_test.go`), which exercise all four cases. V3 signs no timestamp,
//! so there is nothing to check for staleness; a replayed delivery carries the
//! same `MessageUUID` and is recorded once.
//!
//! # Answers and retries
//!
//! Plivo expects XML from the `message_url` (only a `<Message>` may appear
//! in it, <https://www.plivo.com/docs/messaging/xml/request/messages>): an
//! empty `<Response></Response>` sends nothing. "If the message_url for your
//! Plivo application returns a non-2xx HTTP status code, Plivo will retry the
//! request": at most three retries, 60, 120 and 240 seconds apart, and a
//! request unanswered within eight seconds is retried the same way
//! (<https://support.plivo.com/hc/en-us/articles/360041344652>). A store
//! failure answers `503`.

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use ibiki_core::{Normalizer, RawReply};
use serde::Deserialize;

use super::form::Form;
use super::number::international;
use super::signing::{self, Signing, SigningMode};
use super::url::UrlParts;
use super::{Answer, Fields, Provider, Received, WebhookError, WebhookRequest};
use ibiki_core::Secret;

/// The header carrying the signatures.
pub(crate) const SIGNATURE_HEADER: &str = "x-plivo-signature-v3";
/// The header carrying the nonce.
pub(crate) const NONCE_HEADER: &str = "x-plivo-signature-v3-nonce";

/// The empty Plivo XML answer: no reply message.
pub(crate) const EMPTY_XML: &str = r#"<?xml version="1.0" encoding="utf-8"?><Response></Response>"#;

/// An incoming message: every parameter Plivo documents for SMS and MMS.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct PlivoMessage {
    /// The message id: the dedup key.
    #[serde(rename = "MessageUUID")]
    pub message_uuid: Option<String>,
    /// The sender, international without `+`.
    pub from: Option<String>,
    /// The Plivo number, international without `+`.
    pub to: Option<String>,
    /// `sms`, `mms` or `whatsapp`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    /// The text of an SMS (long messages already concatenated).
    pub text: Option<String>,
    /// The text of an MMS.
    pub body: Option<String>,
    /// How many parts the message came in.
    pub units: Option<String>,
    /// The charge per unit.
    pub total_rate: Option<String>,
    /// The total charge.
    pub total_amount: Option<String>,
    /// `optout`, `optin`, `help`, or empty.
    pub message_intent: Option<String>,
    /// The Powerpack of the `To` number, if any.
    #[serde(rename = "PowerpackUUID")]
    pub powerpack_uuid: Option<String>,
    /// How many media files an MMS has.
    pub media_count: Option<String>,
    /// The media URLs, from `Media1`, `Media2`...
    #[serde(skip)]
    pub media: Vec<String>,
}

impl PlivoMessage {
    /// Decodes the parameters of a form or query.
    pub fn from_form(form: &Form) -> Result<Self, WebhookError> {
        let mut message: Self = form.deserialize("Plivo parameters")?;
        // Media<count> runs from 1; an MMS carries at most 10 files.
        message.media = (1..=10)
            .map_while(|n| form.get(&format!("Media{n}")).map(str::to_owned))
            .collect();
        Ok(message)
    }
}

/// Pairs grouped by name, each name's values sorted: the SDK's sorted dict.
fn grouped(pairs: &[(String, String)]) -> BTreeMap<&str, Vec<&str>> {
    let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in pairs {
        map.entry(name).or_default().push(value);
    }
    for values in map.values_mut() {
        values.sort_unstable();
    }
    map
}

fn sorted_query(params: &BTreeMap<&str, Vec<&str>>) -> String {
    let mut parts = Vec::new();
    for (name, values) in params {
        for value in values {
            parts.push(format!("{name}={value}"));
        }
    }
    parts.join("&")
}

/// The URL the signature covers (before `.<nonce>`), as the SDK builds it.
/// `params` are the `POST` parameters; for a `GET`, extra parameters to
/// merge with the URL's query (normally none).
pub(crate) fn signed_url(method: &Method, url: &str, params: &[(String, String)]) -> String {
    let Some(parts) = UrlParts::parse(url) else {
        return url.to_owned();
    };
    let path = parts.rest.split(['?', '#']).next().unwrap_or("");
    let mut signed = format!("{}://{}{path}", parts.scheme, parts.authority);
    let query = Form::parse(parts.query().unwrap_or("").as_bytes());
    if method == Method::GET {
        // The URL's query replaces same-named parameters (`dict.update`).
        let query_map = grouped(query.pairs());
        let mut merged = grouped(params);
        merged.retain(|name, _| !query_map.contains_key(name));
        merged.extend(query_map);
        let sorted = sorted_query(&merged);
        if !sorted.is_empty() {
            signed.push('?');
            signed.push_str(&sorted);
        }
        return signed;
    }
    let sorted = sorted_query(&grouped(query.pairs()));
    if !sorted.is_empty() || !params.is_empty() {
        signed.push('?');
        signed.push_str(&sorted);
    }
    if !sorted.is_empty() && !params.is_empty() {
        signed.push('.');
    }
    for (name, values) in grouped(params) {
        for value in values {
            signed.push_str(name);
            signed.push_str(value);
        }
    }
    signed
}

/// Computes one `X-Plivo-Signature-V3` value.
pub(crate) fn compute_signature(
    auth_token: &str,
    method: &Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
) -> String {
    let signed = signed_url(method, url, params);
    signing::base64_encode(&signing::hmac_sha256(
        auth_token.as_bytes(),
        &[signed.as_bytes(), b".", nonce.as_bytes()],
    ))
}

/// Verifies a (comma-separated) `X-Plivo-Signature-V3` header.
pub(crate) fn verify_signature(
    auth_token: &str,
    method: &Method,
    url: &str,
    params: &[(String, String)],
    nonce: &str,
    signatures: &str,
) -> Result<(), WebhookError> {
    let expected = compute_signature(auth_token, method, url, params, nonce);
    // Every candidate is compared: which one matched is not observable.
    let matched = signatures
        .split(',')
        .map(|candidate| {
            signing::constant_time_eq(candidate.trim().as_bytes(), expected.as_bytes())
        })
        .fold(false, |any, this| any | this);
    if matched {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Plivo's incoming-message webhook.
#[derive(Debug, Clone)]
pub struct Plivo {
    signing: Signing<Secret>,
}

impl Plivo {
    /// Plivo verified with the (sub)account's Auth Token (or not, per
    /// `signing`).
    pub fn new(signing: Signing<Secret>) -> Self {
        Self { signing }
    }
}

impl Provider for Plivo {
    fn name(&self) -> &'static str {
        "plivo"
    }

    fn methods(&self) -> &'static [Method] {
        &[Method::GET, Method::POST]
    }

    fn signing_mode(&self) -> SigningMode {
        self.signing.mode()
    }

    fn receive(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        let (signed, params) = if request.method == Method::GET {
            (Form::default(), request.query())
        } else if request.is_form() {
            let form = Form::parse(request.body);
            (form.clone(), form)
        } else {
            return Err(request.unsupported(self.name()));
        };
        if let Some(token) = self.signing.key(self.name())? {
            let signatures = signing::signature_header(request.headers, SIGNATURE_HEADER)?;
            let nonce = signing::signature_header(request.headers, NONCE_HEADER)?;
            verify_signature(
                token.expose(),
                request.method,
                request.url,
                signed.pairs(),
                nonce,
                signatures,
            )?;
        }
        let message = PlivoMessage::from_form(&params)?;
        let from = message
            .from
            .as_deref()
            .ok_or_else(|| WebhookError::missing("From"))?;
        let to = message
            .to
            .as_deref()
            .ok_or_else(|| WebhookError::missing("To"))?;
        let raw = RawReply {
            message_id: message.message_uuid.as_deref(),
            from: &international(from),
            to: &international(to),
            body: message
                .text
                .as_deref()
                .or(message.body.as_deref())
                .unwrap_or(""),
        };
        Fields::new("MessageUUID", raw).received(normalizer, request)
    }

    fn success(&self) -> Answer {
        Answer {
            status: StatusCode::OK,
            content_type: Some("application/xml"),
            body: EMPTY_XML,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // plivo-go utils_test.go, TestValidateSignatureV3Pass1..4.
    const TOKEN: &str = "Y2Q2ZDgxZmY5YWRiOTI5YmQ1Njg0MTAxZWIyOTc4";
    const NONCE: &str = "31627761595286130198";
    const WITH_QUERY: &str =
        "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml/?a=b&c=d";
    const WITHOUT_QUERY: &str =
        "https://plivobin.non-prod.plivops.com/api/v1/validate_signature03.xml";

    fn sdk_params() -> Vec<(String, String)> {
        [
            ("Direction", "outbound"),
            ("From", "19792014278"),
            ("ALegUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallStatus", "in-progress"),
            ("BillRate", "0.002"),
            ("ParentAuthID", "MANWVLYTK4ZWU1YTY4QA"),
            (
                "To",
                "sip:PlivoSignature382029104058171078704104@phone-qa.voice.plivodev.com",
            ),
            ("ALegRequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("CallUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            ("RequestUUID", "3e82ae9d-2c78-4d85-b1a4-6eae7dbafb36"),
            (
                "SIP-H-To",
                "<sip:PlivoSignature382029104058171078704104@52.9.11.55;transport=udp>;tag=1",
            ),
            ("SessionStart", "2020-04-08 11:34:33.238707"),
            ("Event", "StartApp"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn sdk_vectors_get_and_post_with_and_without_query() {
        for (method, url, expected) in [
            (
                Method::POST,
                WITH_QUERY,
                "k7Pusd4OxCIjR5IfA9iedDNu/h/gbdYqdzG/MiYtd1c=",
            ),
            (
                Method::GET,
                WITH_QUERY,
                "UBq8jAtd32wR8EK9VgxbBn4n5rpI/l1H9iN4WfSEHFQ=",
            ),
            (
                Method::POST,
                WITHOUT_QUERY,
                "iAjE5QqI37mbkYe4w3jTMudqEzbDufdqi7sYwTu64e0=",
            ),
            (
                Method::GET,
                WITHOUT_QUERY,
                "i/MQsaQSAd6fiKhOh2qeeeLHZ9faldADSb3/7+Akfbc=",
            ),
        ] {
            assert_eq!(
                compute_signature(TOKEN, &method, url, &sdk_params(), NONCE),
                expected,
                "{method} {url}"
            );
        }
    }

    #[test]
    fn any_listed_signature_may_match() {
        let good = compute_signature(TOKEN, &Method::POST, WITH_QUERY, &sdk_params(), NONCE);
        let header = format!("bm90LXRoaXM=, {good}");
        verify_signature(
            TOKEN,
            &Method::POST,
            WITH_QUERY,
            &sdk_params(),
            NONCE,
            &header,
        )
        .expect("second matches");
        assert!(matches!(
            verify_signature(TOKEN, &Method::POST, WITH_QUERY, &sdk_params(), "1", &good),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn signed_url_shapes() {
        let params = [
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "1".to_owned()),
        ];
        assert_eq!(
            signed_url(&Method::POST, "https://x.io/p?z=1&y=", &params),
            "https://x.io/p?y=&z=1.A1B2"
        );
        assert_eq!(
            signed_url(&Method::POST, "https://x.io/p", &params),
            "https://x.io/p?A1B2"
        );
        assert_eq!(
            signed_url(&Method::POST, "https://x.io/p", &[]),
            "https://x.io/p"
        );
        assert_eq!(
            signed_url(&Method::GET, "https://x.io/p?b=2&a=1&a=0", &[]),
            "https://x.io/p?a=0&a=1&b=2"
        );
    }
}
