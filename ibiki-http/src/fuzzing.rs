//! The properties the server's fuzz targets check, one function per target.
//!
//! Each function takes the raw bytes libFuzzer generates and panics when a
//! property fails; `fuzz/fuzz_targets/` calls them, and `cargo test` replays
//! every file of `fuzz/corpus/<target>/` through them
//! (`ibiki-http/tests/fuzz_corpus.rs`). Not part of the API.

use ibiki_core::{Destination, InboundReply, MessageId, Normalizer};
use time::OffsetDateTime;

use crate::request::BodyFormat;
use crate::sms_signature::{SignatureError, SignatureHeader, TOLERANCE_SECS, WebhookSecret};
use crate::sms_webhook::{self, FormPayload, JsonPayload};
use ibiki_core::Secret;

/// Target `decode_webhook`: the first byte picks the format (even: JSON, odd:
/// form), the rest is the body, through the webhook's own decode function.
///
/// Properties: nothing panics; an accepted reply has every field within its
/// limit and no NUL; its `to` is canonical or kept as posted; re-encoded (as
/// the same format) and decoded again, it is the same reply.
pub fn decode_webhook(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = match selector % 2 {
        0 => BodyFormat::Json,
        _ => BodyFormat::Form,
    };
    let normalizer = Normalizer::new();
    let now = OffsetDateTime::UNIX_EPOCH;
    let Ok(reply) = sms_webhook::decode(format, body, &normalizer, now) else {
        return;
    };
    check_limits(&reply);
    let again = sms_webhook::decode(format, &encode(format, &reply), &normalizer, now)
        .unwrap_or_else(|e| panic!("re-encoded {reply:?} is rejected: {}", e.code()));
    assert_eq!(again, reply, "decode(encode(reply)) differs");
}

fn check_limits(reply: &InboundReply) {
    if let Some(id) = &reply.message_id {
        let id = id.as_str();
        assert!(!id.is_empty() && id.len() <= MessageId::MAX_LEN, "{id:?}");
        assert!(!id.chars().any(char::is_control), "{id:?}");
    }
    assert!(reply.from.len() <= InboundReply::MAX_ADDRESS_LEN);
    assert!(reply.body.len() <= InboundReply::MAX_BODY_LEN);
    assert!(!reply.from.contains('\0') && !reply.body.contains('\0'));
    match &reply.to {
        Destination::Number(number) => {
            let text = number.to_string();
            assert!(text.starts_with('+') && text.len() <= 16, "{text}");
        }
        Destination::Unparsed(raw) => {
            assert!(raw.len() <= InboundReply::MAX_ADDRESS_LEN && !raw.contains('\0'));
        }
    }
}

/// The reply as a provider would post it.
fn encode(format: BodyFormat, reply: &InboundReply) -> Vec<u8> {
    let message_id = reply.message_id.as_ref().map(|id| id.as_str().to_owned());
    let to = match &reply.to {
        Destination::Number(number) => number.to_string(),
        Destination::Unparsed(raw) => raw.clone(),
    };
    let (from, body) = (reply.from.clone(), reply.body.clone());
    let encoded = match format {
        BodyFormat::Json => serde_json::to_vec(&JsonPayload {
            message_id,
            from,
            to,
            body,
        })
        .map_err(|e| e.to_string()),
        BodyFormat::Form => serde_urlencoded::to_string(FormPayload {
            message_sid: message_id,
            from,
            to,
            body,
        })
        .map(String::into_bytes)
        .map_err(|e| e.to_string()),
    };
    encoded.unwrap_or_else(|e| panic!("{reply:?} does not encode: {e}"))
}

/// Target `verify_signature`. The input is an 8-byte timestamp, a secret
/// length byte, the secret, then the body; the whole input is also read as a
/// header.
///
/// Properties: nothing panics on any header; a header the secret made itself
/// parses, keeps its timestamp, verifies, and is fresh exactly within
/// [`TOLERANCE_SECS`]; any single-byte change to the body, or to the secret,
/// fails; any single-byte change to the header fails, except a hex digit's
/// case, which parses to the same header.
pub fn verify_signature(data: &[u8]) {
    let mut stamp = [0u8; 8];
    let head = data.len().min(8);
    stamp[..head].copy_from_slice(&data[..head]);
    let timestamp = u64::from_le_bytes(stamp);
    let rest = &data[head..];
    let (secret_len, rest) = match rest.split_first() {
        Some((&len, rest)) => (1 + usize::from(len % 32), rest),
        None => (1, rest),
    };
    let split = secret_len.min(rest.len());
    let (secret_bytes, body) = rest.split_at(split);
    let secret_text = match String::from_utf8_lossy(secret_bytes) {
        text if text.is_empty() => "k".into(),
        text => text,
    };
    let secret = secret_of(&secret_text);

    // Any text as a header: never a panic, and never a match by chance.
    for text in [String::from_utf8_lossy(data), String::from_utf8_lossy(body)] {
        if let Ok(header) = SignatureHeader::parse(&text) {
            let _ = header.check_fresh(timestamp);
            let _ = secret.verify(&header, body);
        }
    }

    let signed = secret.sign(timestamp, body);
    let header = SignatureHeader::parse(&signed)
        .unwrap_or_else(|e| panic!("own header {signed:?} does not parse: {e:?}"));
    assert_eq!(header.timestamp(), timestamp);
    assert_eq!(secret.verify(&header, body), Ok(()), "own signature");
    for now in [
        timestamp,
        timestamp.saturating_add(TOLERANCE_SECS),
        timestamp.saturating_sub(TOLERANCE_SECS),
    ] {
        assert_eq!(header.check_fresh(now), Ok(()), "now {now}");
    }
    if let Some(late) = timestamp.checked_add(TOLERANCE_SECS + 1) {
        assert_eq!(header.check_fresh(late), Err(SignatureError::Stale));
    }

    // Every position of a short body, a spread of a long one.
    let step = (body.len() / 64).max(1);
    for i in (0..body.len()).step_by(step) {
        for flip in [0x01, 0x80] {
            let mut changed = body.to_vec();
            changed[i] ^= flip;
            assert_eq!(
                secret.verify(&header, &changed),
                Err(SignatureError::Mismatch),
                "body byte {i} ^ {flip:#x}"
            );
        }
    }
    let mut other = secret_text.clone().into_owned().into_bytes();
    other[0] ^= 0x01;
    if let Ok(other) = String::from_utf8(other) {
        assert_eq!(
            secret_of(&other).verify(&header, body),
            Err(SignatureError::Mismatch),
            "another secret"
        );
    }

    // Every single-byte change of the header, to a byte the header alphabet
    // (and its neighbours) could hold.
    for i in 0..signed.len() {
        for replacement in [
            b'0', b'1', b'9', b'a', b'A', b'f', b'F', b'g', b',', b'=', b' ', b't', b'v',
        ] {
            let mut changed = signed.clone().into_bytes();
            if changed[i] == replacement {
                continue;
            }
            let original = changed[i];
            changed[i] = replacement;
            let Ok(changed) = String::from_utf8(changed) else {
                continue;
            };
            let outcome = SignatureHeader::parse(&changed).and_then(|h| {
                secret.verify(&h, body)?;
                Ok(h)
            });
            if let Ok(parsed) = outcome {
                let hex_case = original.eq_ignore_ascii_case(&replacement)
                    && original.is_ascii_hexdigit()
                    && signed[..i].contains("v1=");
                assert!(
                    hex_case && parsed == header,
                    "changed header {changed:?} still verifies"
                );
            }
        }
    }
}

fn secret_of(text: &str) -> WebhookSecret {
    let secret: Secret = text
        .parse()
        .unwrap_or_else(|_| unreachable!("the secret is not empty"));
    WebhookSecret::new(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The round trip is not vacuous: both formats' typical bodies decode.
    #[test]
    fn typical_bodies_decode_and_round_trip() {
        let normalizer = Normalizer::new();
        let now = OffsetDateTime::UNIX_EPOCH;
        let json = br#"{"messageId":"SM1","from":"+15005550006","to":"+1 415 555 0100","body":"a\u0000b"}"#;
        let form = b"MessageSid=SM1&From=%2B15005550006&To=%2B14155550100&Body=a+b";
        for (format, body) in [(BodyFormat::Json, &json[..]), (BodyFormat::Form, &form[..])] {
            let reply = sms_webhook::decode(format, body, &normalizer, now).expect("decodes");
            assert!(matches!(reply.to, Destination::Number(_)), "{reply:?}");
            let mut data = vec![u8::from(format == BodyFormat::Form)];
            data.extend_from_slice(body);
            decode_webhook(&data);
        }
    }
}
