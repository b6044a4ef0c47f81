//! The property the `decode_provider` fuzz target checks: every provider's
//! decoder, fed anything, answers without panicking. Not part of the API.

use http::{HeaderMap, HeaderValue, Method};
use ibiki_core::{Destination, InboundReply, MessageId, Normalizer};
use time::OffsetDateTime;

use crate::bandwidth::Bandwidth;
use crate::generic::{Generic, GenericConfig};
use crate::infobip::Infobip;
use crate::messagebird::MessageBird;
use crate::plivo::Plivo;
use crate::sinch::Sinch;
use crate::telnyx::Telnyx;
use crate::twilio::Twilio;
use crate::vonage::Vonage;
use crate::{ErrorKind, Provider, Received, Signing, WebhookRequest};

/// The providers in the order the first byte selects them (`byte % len`).
/// New providers go at the end, so that existing seeds keep their meaning.
pub const PROVIDERS: &[&str] = &[
    "twilio",
    "telnyx",
    "vonage",
    "plivo",
    "bandwidth",
    "infobip",
    "sinch",
    "messagebird",
    "generic",
    "generic-form",
];

/// The `generic` gateway fuzzed: JSON batches under `/messages`, numbers
/// without `+` (the guide's gateway, `docs/src/providers.md`, unsigned).
const GENERIC_JSON: &str = r#"{
    "format": "json",
    "messages": "/messages",
    "numbers": "international-digits",
    "fields": {
        "message_id": "/msg_id", "from": "/sender", "to": "/recipient",
        "text": "/content/text", "received_at": "/received"
    },
    "auth": {"type": "none"}
}"#;

/// The `generic-form` gateway fuzzed: one message per form.
const GENERIC_FORM: &str = r#"{
    "format": "form",
    "fields": {"message_id": "id", "from": "from", "to": "to", "text": "text", "received_at": "at"},
    "auth": {"type": "none"}
}"#;

fn generic(config: &str) -> Option<Box<dyn Provider>> {
    let config = GenericConfig::from_json(config).ok()?;
    Some(Box::new(Generic::new(config, false).ok()?))
}

/// The content types the second byte selects (`(byte >> 1) % len`).
pub(crate) const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/json",
    "",
    "text/plain",
];

fn provider(index: usize) -> Option<Box<dyn Provider>> {
    let provider: Box<dyn Provider> = match *PROVIDERS.get(index)? {
        "twilio" => Box::new(Twilio::new(Signing::AcceptUnsigned)),
        "telnyx" => Box::new(Telnyx::new(Signing::AcceptUnsigned)),
        "vonage" => Box::new(Vonage::new(Signing::AcceptUnsigned)),
        "plivo" => Box::new(Plivo::new(Signing::AcceptUnsigned)),
        "bandwidth" => Box::new(Bandwidth::new(Signing::AcceptUnsigned)),
        "infobip" => Box::new(Infobip::new(Signing::AcceptUnsigned)),
        "sinch" => Box::new(Sinch::new(Signing::AcceptUnsigned)),
        "messagebird" => Box::new(MessageBird::new(Signing::AcceptUnsigned)),
        "generic" => generic(GENERIC_JSON)?,
        "generic-form" => generic(GENERIC_FORM)?,
        _ => return None,
    };
    Some(provider)
}

/// A seed for `decode_provider`: the bytes that send `body` to `provider`
/// with `method` and `content_type` (one of [`CONTENT_TYPES`]).
#[cfg(test)]
pub(crate) fn seed(
    provider: &str,
    method: &Method,
    content_type: &str,
    body: &[u8],
) -> Option<Vec<u8>> {
    let index = PROVIDERS.iter().position(|p| *p == provider)?;
    let kind = CONTENT_TYPES.iter().position(|c| *c == content_type)?;
    let shape = u8::try_from(kind << 1).ok()? | u8::from(method == Method::GET);
    Some([&[u8::try_from(index).ok()?, shape][..], body].concat())
}

/// Target `decode_provider`: the first byte picks the provider, the second
/// the method (bit 0: `GET`, else `POST`) and the content type (the next
/// bits, `CONTENT_TYPES`); the rest is the body, or the query of a `GET`.
/// Each provider accepts unsigned requests, so the decoder itself is fuzzed.
///
/// Properties: nothing panics; a refusal maps to one of the statuses the
/// provider layer uses; an accepted reply has its fields within their limits
/// and no NUL; receiving the same request twice gives the same result.
pub fn decode_provider(data: &[u8]) {
    let [selector, shape, body @ ..] = data else {
        return;
    };
    let Some(provider) = provider(usize::from(*selector) % PROVIDERS.len()) else {
        return;
    };
    let method = if shape & 1 == 1 {
        Method::GET
    } else {
        Method::POST
    };
    let content_type = CONTENT_TYPES[usize::from(shape >> 1) % CONTENT_TYPES.len()];
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        if !content_type.is_empty() {
            headers.insert(http::header::CONTENT_TYPE, value);
        }
    }
    let url = if method == Method::GET {
        format!(
            "https://fuzz.example/webhooks/x?{}",
            String::from_utf8_lossy(body)
        )
    } else {
        "https://fuzz.example/webhooks/x".to_owned()
    };
    let body = if method == Method::GET { &[][..] } else { body };
    let normalizer = Normalizer::new();
    let request = WebhookRequest::new(&method, &url, &headers, body, OffsetDateTime::UNIX_EPOCH);
    let first = crate::receive(&*provider, &normalizer, &request);
    let second = crate::receive(&*provider, &normalizer, &request);
    match (&first, &second) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "receive is not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!("receive is not deterministic: {first:?} then {second:?}"),
    }
    match first {
        Ok(Received::Replies(replies)) => {
            assert!(!replies.is_empty(), "no replies and no skip");
            replies.iter().for_each(check_limits);
        }
        Ok(Received::Skipped { event }) => {
            assert!(!event.is_empty() || provider.name() == "telnyx")
        }
        Err(error) => {
            // Unsigned requests are never refused for their signature.
            assert_ne!(error.kind(), ErrorKind::Unauthorized, "{error}");
            assert!(error.status().is_client_error(), "{error}");
        }
    }
}

fn check_limits(reply: &InboundReply) {
    if let Some(id) = &reply.message_id {
        let id = id.as_str();
        assert!(!id.is_empty() && id.len() <= MessageId::MAX_LEN, "{id:?}");
    }
    assert!(reply.from.len() <= InboundReply::MAX_ADDRESS_LEN);
    assert!(reply.body.len() <= InboundReply::MAX_BODY_LEN);
    assert!(!reply.from.contains('\0') && !reply.body.contains('\0'));
    match &reply.to {
        Destination::Number(number) => assert!(number.to_string().starts_with('+')),
        Destination::Unparsed(raw) => {
            assert!(raw.len() <= InboundReply::MAX_ADDRESS_LEN && !raw.contains('\0'));
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_bytes_are_answered(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_provider(&data);
        }

        #[test]
        fn any_form_fields_are_answered(
            selector in 0u8..14,
            shape in any::<u8>(),
            fields in proptest::collection::vec(
                (
                    prop::sample::select(vec![
                        "From", "To", "Body", "Text", "MessageSid", "MessageUUID", "msisdn",
                        "to", "text", "messageId", "NumMedia", "MediaUrl0", "Media1", "sig",
                        "timestamp", "id", "mid", "originator", "recipient", "shortcode", "body",
                        "message", "from", "at",
                    ]),
                    "[ -~]{0,40}",
                ),
                0..10,
            ),
        ) {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(fields)
                .finish();
            decode_provider(&[&[selector, shape][..], body.as_bytes()].concat());
        }
    }

    #[test]
    fn seeds_select_what_they_name() {
        let seed = seed("vonage", &Method::GET, "", b"msisdn=1").expect("known");
        assert_eq!(seed[0], 2);
        assert_eq!(seed[1] & 1, 1);
        assert_eq!(CONTENT_TYPES[usize::from(seed[1] >> 1)], "");
        assert!(super::seed("nope", &Method::GET, "", b"").is_none());
        decode_provider(&seed);
        decode_provider(&[]);
        decode_provider(&[255, 255]);
    }

    #[test]
    fn every_named_provider_is_built() {
        for (index, name) in PROVIDERS.iter().enumerate() {
            let provider = provider(index).unwrap_or_else(|| panic!("{name} is not built"));
            assert!(name.starts_with(provider.name()), "{name}");
        }
    }
}
