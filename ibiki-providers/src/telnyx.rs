//! Telnyx Messaging API v2: the `message.received` webhook.
//!
//! # What Telnyx sends
//!
//! A JSON `POST` of an event `{"data": {"event_type", "id", "occurred_at",
//! "payload": {...}, "record_type"}, "meta": {"attempt", "delivered_to"}}`
//! to the messaging profile's webhook URL
//! (<https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks>,
//! the `inboundMessage` callback in
//! <https://developers.telnyx.com/api-reference/callbacks/inbound-message>):
//! decoded into [`TelnyxEvent`]. The payload's `from` is an object and its
//! `to` an array of objects, each with a `phone_number`; the payload's `id`
//! is the message id and the dedup key. The same URL receives the delivery
//! events of outbound messages (`message.sent`, `message.finalized`): they
//! are verified and acknowledged as [`Received::Skipped`].
//!
//! # Signature
//!
//! `telnyx-signature-ed25519` is the base64 Ed25519 signature, by Telnyx's
//! key, of `<telnyx-timestamp>|<raw body>`; the public key is the account's,
//! base64 (32 bytes), from the portal. A timestamp more than 300 seconds from
//! the server's clock either way is refused. This follows the official SDK:
//! telnyx-node `src/lib/webhooks.ts` (`TelnyxWebhook.verify`: strict base64,
//! a 32-byte key, a 64-byte signature, a digits-only timestamp within 300 s)
//! and the earlier `src/Webhooks.ts` (`DEFAULT_TOLERANCE: 300`, signed payload
//! `` `${timestamp}|${payload}` ``). The SDK's tests sign with a freshly
//! generated key pair and publish no fixed vector; this module's tests check
//! the Ed25519 primitive against RFC 8032's first test vector and sign
//! Telnyx's documented payload with a fixed key.
//!
//! # Answers and retries
//!
//! Telnyx wants any `2xx` within 2 seconds; otherwise it retries (up to 3
//! attempts per URL), then tries the failover URL if one is configured
//! (receiving-webhooks guide, "Failover and retries"). Success answers `200`
//! with no body; a store failure answers `503`, so Telnyx delivers again.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, VerifyingKey};
use http::Method;
use ibiki_core::{Normalizer, RawReply};
use serde::Deserialize;

use super::clock::{self, DEFAULT_TOLERANCE_SECS};
use super::signing::{self, Signing, SigningMode};
use super::{Fields, Provider, Received, WebhookError, WebhookRequest};

/// The header carrying the signature.
pub(crate) const SIGNATURE_HEADER: &str = "telnyx-signature-ed25519";
/// The header carrying the signed Unix timestamp.
pub(crate) const TIMESTAMP_HEADER: &str = "telnyx-timestamp";
/// The event type of an inbound message.
pub(crate) const MESSAGE_RECEIVED: &str = "message.received";

/// Telnyx's public key: the base64 Ed25519 key from the portal.
#[derive(Clone, PartialEq, Eq)]
pub struct TelnyxPublicKey(VerifyingKey);

/// Why a Telnyx public key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Telnyx public key is the base64 of a 32-byte Ed25519 key")]
pub struct InvalidPublicKey;

impl FromStr for TelnyxPublicKey {
    type Err = InvalidPublicKey;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes: [u8; 32] = signing::base64_decode(text)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(InvalidPublicKey)?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| InvalidPublicKey)
    }
}

impl From<VerifyingKey> for TelnyxPublicKey {
    fn from(key: VerifyingKey) -> Self {
        Self(key)
    }
}

impl fmt::Debug for TelnyxPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A public key is not secret, but it names the account: keep it short.
        f.write_str("TelnyxPublicKey(..)")
    }
}

/// A webhook delivery: the event and its delivery metadata.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct TelnyxEvent {
    /// The event.
    pub data: TelnyxEventData,
    /// Delivery metadata.
    #[serde(default)]
    pub meta: Option<TelnyxMeta>,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct TelnyxEventData {
    /// `message.received`, `message.sent`, `message.finalized`...
    pub event_type: String,
    /// The event's id (not the message's).
    pub id: Option<String>,
    /// When the event happened (ISO 8601).
    pub occurred_at: Option<String>,
    /// `event`.
    pub record_type: Option<String>,
    /// The message; its shape is a message's for every messaging event.
    pub payload: serde_json::Value,
}

/// Delivery metadata.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TelnyxMeta {
    /// Which attempt this is (1 for the first).
    pub attempt: Option<u32>,
    /// The URL it was delivered to.
    pub delivered_to: Option<String>,
}

/// The message of a `message.received` event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct TelnyxMessage {
    /// The message id: the dedup key.
    pub id: String,
    /// `message`.
    pub record_type: Option<String>,
    /// `inbound`.
    pub direction: Option<String>,
    /// `SMS` or `MMS`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The messaging profile that received it.
    pub messaging_profile_id: Option<String>,
    /// The organization.
    pub organization_id: Option<String>,
    /// The sender.
    pub from: TelnyxAddress,
    /// The recipients: the account's number first.
    pub to: Vec<TelnyxAddress>,
    /// Copied recipients (group MMS).
    #[serde(default)]
    pub cc: Vec<TelnyxAddress>,
    /// The text.
    pub text: Option<String>,
    /// The MMS subject.
    pub subject: Option<String>,
    /// MMS media.
    #[serde(default)]
    pub media: Vec<TelnyxMedia>,
    /// The webhook URL used.
    pub webhook_url: Option<String>,
    /// The failover URL.
    pub webhook_failover_url: Option<String>,
    /// `GSM-7` or `UCS-2`.
    pub encoding: Option<String>,
    /// Number of segments.
    pub parts: Option<u32>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The cost, when known.
    pub cost: Option<serde_json::Value>,
    /// The cost's parts, when known.
    pub cost_breakdown: Option<serde_json::Value>,
    /// The 10DLC campaign.
    pub tcr_campaign_id: Option<String>,
    /// Whether the campaign is billed.
    pub tcr_campaign_billable: Option<bool>,
    /// The campaign's registration status.
    pub tcr_campaign_registered: Option<String>,
    /// When Telnyx received it.
    pub received_at: Option<String>,
    /// When it was sent.
    pub sent_at: Option<String>,
    /// When it was completed.
    pub completed_at: Option<String>,
    /// Until when delivery is attempted.
    pub valid_until: Option<String>,
    /// Errors.
    #[serde(default)]
    pub errors: Vec<serde_json::Value>,
}

/// A sender or recipient.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TelnyxAddress {
    /// E.164, with `+`.
    pub phone_number: String,
    /// The carrier.
    pub carrier: Option<String>,
    /// `Wireless`, `VoIP`, `long_code`...
    pub line_type: Option<String>,
    /// Delivery status (recipients).
    pub status: Option<String>,
}

/// An MMS media item.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct TelnyxMedia {
    /// Where to fetch it.
    pub url: String,
    /// Its MIME type.
    pub content_type: Option<String>,
    /// Its SHA-256.
    pub sha256: Option<String>,
    /// Its size in bytes.
    pub size: Option<u64>,
}

/// Verifies a Telnyx signature over `timestamp|body`, then the timestamp's
/// freshness against `now`.
pub(crate) fn verify_signature(
    key: &TelnyxPublicKey,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: time::OffsetDateTime,
) -> Result<(), WebhookError> {
    let signature = signing::base64_decode(signature)
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .map(|bytes| Signature::from_bytes(&bytes))
        .ok_or(WebhookError::MalformedSignature {
            header: SIGNATURE_HEADER,
        })?;
    let signed_at = clock::parse_unix_secs(timestamp).ok_or(WebhookError::MalformedSignature {
        header: TIMESTAMP_HEADER,
    })?;
    let message = [timestamp.as_bytes(), b"|", body].concat();
    key.0
        .verify_strict(&message, &signature)
        .map_err(|_| WebhookError::BadSignature)?;
    clock::check_fresh(signed_at, now, DEFAULT_TOLERANCE_SECS)
}

/// Telnyx's messaging webhook.
#[derive(Debug, Clone)]
pub struct Telnyx {
    signing: Signing<TelnyxPublicKey>,
}

impl Telnyx {
    /// Telnyx verified with the account's public key (or not, per `signing`).
    pub fn new(signing: Signing<TelnyxPublicKey>) -> Self {
        Self { signing }
    }
}

impl Provider for Telnyx {
    fn name(&self) -> &'static str {
        "telnyx"
    }

    fn methods(&self) -> &'static [Method] {
        &[Method::POST]
    }

    fn signing_mode(&self) -> SigningMode {
        self.signing.mode()
    }

    fn receive(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        if let Some(key) = self.signing.key(self.name())? {
            let signature = signing::signature_header(request.headers, SIGNATURE_HEADER)?;
            let timestamp = signing::signature_header(request.headers, TIMESTAMP_HEADER)?;
            verify_signature(key, timestamp, request.body, signature, request.received_at)?;
        }
        let event: TelnyxEvent = super::decode_json(request.body)?;
        if event.data.event_type != MESSAGE_RECEIVED {
            return Ok(Received::Skipped {
                event: event.data.event_type,
            });
        }
        let message = TelnyxMessage::deserialize(&event.data.payload)
            .map_err(|error| WebhookError::malformed("message.received payload", error))?;
        let to = message
            .to
            .first()
            .ok_or_else(|| WebhookError::missing("data.payload.to"))?;
        let raw = RawReply {
            message_id: Some(&message.id),
            from: &message.from.phone_number,
            to: &to.phone_number,
            body: message.text.as_deref().unwrap_or(""),
        };
        Fields::new("data.payload.id", raw).received(normalizer, request)
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    // RFC 8032, section 7.1, TEST 1.
    const RFC_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const RFC_SIGNATURE: &str = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";

    fn rfc_key() -> TelnyxPublicKey {
        let public = hex::decode(RFC_PUBLIC).expect("hex");
        signing::base64_encode(&public).parse().expect("key")
    }

    #[test]
    fn rfc_8032_vector_verifies_through_the_primitive() {
        let secret: [u8; 32] = hex::decode(RFC_SECRET)
            .expect("hex")
            .try_into()
            .expect("32");
        let signing_key = SigningKey::from_bytes(&secret);
        assert_eq!(
            hex::encode(signing_key.verifying_key().as_bytes()),
            RFC_PUBLIC
        );
        assert_eq!(hex::encode(signing_key.sign(b"").to_bytes()), RFC_SIGNATURE);
        let signature: [u8; 64] = hex::decode(RFC_SIGNATURE)
            .expect("hex")
            .try_into()
            .expect("64");
        assert!(
            rfc_key()
                .0
                .verify_strict(b"", &Signature::from_bytes(&signature))
                .is_ok()
        );
    }

    #[test]
    fn signature_covers_timestamp_and_body() {
        let secret: [u8; 32] = hex::decode(RFC_SECRET)
            .expect("hex")
            .try_into()
            .expect("32");
        let signing_key = SigningKey::from_bytes(&secret);
        let body = br#"{"data":{}}"#;
        let signature =
            signing::base64_encode(&signing_key.sign(b"1700000000|{\"data\":{}}").to_bytes());
        let now = time::OffsetDateTime::from_unix_timestamp(1_700_000_100).expect("time");
        verify_signature(&rfc_key(), "1700000000", body, &signature, now).expect("valid");
        assert!(matches!(
            verify_signature(&rfc_key(), "1700000001", body, &signature, now),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(&rfc_key(), "1700000000", b"{}", &signature, now),
            Err(WebhookError::BadSignature)
        ));
        let later = time::OffsetDateTime::from_unix_timestamp(1_700_000_301).expect("time");
        assert!(matches!(
            verify_signature(&rfc_key(), "1700000000", body, &signature, later),
            Err(WebhookError::StaleTimestamp { age_secs: 301, .. })
        ));
        assert!(matches!(
            verify_signature(&rfc_key(), "1700000000", body, "c2ln", now),
            Err(WebhookError::MalformedSignature { .. })
        ));
        assert!(matches!(
            verify_signature(&rfc_key(), "-5", body, &signature, now),
            Err(WebhookError::MalformedSignature { .. })
        ));
    }

    #[test]
    fn keys_are_32_bytes_of_base64() {
        assert!("".parse::<TelnyxPublicKey>().is_err());
        assert!("AAAA".parse::<TelnyxPublicKey>().is_err());
        assert!(!format!("{:?}", rfc_key()).contains(RFC_PUBLIC));
    }
}
