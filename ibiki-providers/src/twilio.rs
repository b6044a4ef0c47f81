//! Twilio Programmable Messaging: the incoming-message webhook.
//!
//! # What Twilio sends
//!
//! A form (`application/x-www-form-urlencoded`) `POST`, or the same
//! parameters as a `GET` query, depending on the method configured for the
//! number ([Twilio's request to your incoming message webhook URL],
//! <https://www.twilio.com/docs/messaging/guides/webhook-request>): decoded
//! into [`TwilioMessage`]. `MessageSid` is the dedup key.
//!
//! # Signature
//!
//! `X-Twilio-Signature` is the base64 HMAC-SHA1, keyed with the account's Auth
//! Token, of the full URL Twilio called followed by every `POST` parameter
//! name and value, sorted by name
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>). This
//! module follows the official SDK's `RequestValidator` exactly
//! (twilio-python, `twilio/request_validator.py`): names sorted, each name's
//! distinct values sorted; the URL checked both without its port and with the
//! scheme's default port, "since signature generation on the back end is
//! inconsistent"; a `GET` signs the URL alone; a JSON body is signed through a
//! `bodySHA256` query parameter holding the hex SHA-256 of the body, and no
//! parameters. Its unit tests use the SDK's own vectors
//! (`tests/unit/test_request_validator.py`).
//!
//! Behind a reverse proxy the URL is the public one Twilio called: configure
//! a [`PublicUrl`](super::PublicUrl).
//!
//! # Answers and retries
//!
//! Twilio expects TwiML: an empty `<Response/>` sends no reply SMS.
//! Twilio does not retry a messaging webhook that answered with an error by
//! default: it logs error 11200 and, if the number has a Fallback URL,
//! requests that instead. A connection override in the webhook URL's
//! fragment enables retries: `#rc=<0..5>` retries (default 1) under
//! `rp=<policy>` (`ct`, `rt`, `4xx`, `5xx`, `all`)
//! (<https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides>).
//! On a store failure the answer is `503`: with `#rp=5xx` (or `all`) Twilio
//! retries, and the fallback URL is used either way.

use http::{Method, StatusCode};
use ibiki_core::{Normalizer, RawReply};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::form::Form;
use super::signing::{self, Signing, SigningMode};
use super::url::UrlParts;
use super::{Answer, Fields, Provider, Received, WebhookError, WebhookRequest};
use ibiki_core::Secret;

/// The header carrying the signature.
pub(crate) const SIGNATURE_HEADER: &str = "x-twilio-signature";

/// The query parameter carrying the SHA-256 of a JSON body.
pub(crate) const BODY_SHA256_PARAM: &str = "bodySHA256";

/// The empty TwiML answer: no reply message.
pub(crate) const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

/// An incoming message, every parameter Twilio documents for SMS and MMS.
///
/// Geographic fields are sent "if available"; media fields come indexed
/// (`MediaUrl0`, `MediaContentType0`...) and are gathered in [`media`](Self::media).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct TwilioMessage {
    /// The 34-character message id (`SM...`): the dedup key.
    pub message_sid: Option<String>,
    /// Same as `MessageSid`; deprecated.
    pub sms_sid: Option<String>,
    /// Same as `MessageSid`; deprecated.
    pub sms_message_sid: Option<String>,
    /// The account (`AC...`).
    pub account_sid: Option<String>,
    /// The Messaging Service (`MG...`), if any.
    pub messaging_service_sid: Option<String>,
    /// The sender: a number or a channel address.
    pub from: Option<String>,
    /// The recipient: one of the account's numbers.
    pub to: Option<String>,
    /// The text, up to 1600 characters.
    pub body: Option<String>,
    /// How many media items the message has.
    pub num_media: Option<String>,
    /// How many segments the message had.
    pub num_segments: Option<String>,
    /// The message status (`received`).
    pub sms_status: Option<String>,
    /// The API version (`2010-04-01`).
    pub api_version: Option<String>,
    /// The sender's city.
    pub from_city: Option<String>,
    /// The sender's state or province.
    pub from_state: Option<String>,
    /// The sender's postal code.
    pub from_zip: Option<String>,
    /// The sender's country.
    pub from_country: Option<String>,
    /// The recipient's city.
    pub to_city: Option<String>,
    /// The recipient's state or province.
    pub to_state: Option<String>,
    /// The recipient's postal code.
    pub to_zip: Option<String>,
    /// The recipient's country.
    pub to_country: Option<String>,
    /// The media items, from `MediaUrl{N}` and `MediaContentType{N}`.
    #[serde(skip)]
    pub media: Vec<TwilioMedia>,
}

/// One media item of an MMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioMedia {
    /// `MediaUrl{N}`: where the media can be fetched.
    pub url: String,
    /// `MediaContentType{N}`, if sent.
    pub content_type: Option<String>,
}

impl TwilioMessage {
    /// Decodes the parameters of a form or query.
    pub fn from_form(form: &Form) -> Result<Self, WebhookError> {
        let mut message: Self = form.deserialize("Twilio parameters")?;
        // At most 10 media items per message (`NumMedia` is 0 to 10).
        message.media = (0..10)
            .map_while(|n| {
                form.get(&format!("MediaUrl{n}")).map(|url| TwilioMedia {
                    url: url.to_owned(),
                    content_type: form.get(&format!("MediaContentType{n}")).map(str::to_owned),
                })
            })
            .collect();
        Ok(message)
    }

    /// The message id: `MessageSid`, or its deprecated copies.
    pub fn sid(&self) -> Option<&str> {
        self.message_sid
            .as_deref()
            .or(self.sms_message_sid.as_deref())
            .or(self.sms_sid.as_deref())
    }
}

/// Computes `X-Twilio-Signature` for `url` and `params` as the SDK's
/// `compute_signature` does: names sorted, each name's distinct values
/// sorted, appended to the URL, HMAC-SHA1 with the Auth Token, base64.
pub(crate) fn compute_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut signed = String::from(url);
    for (name, value) in pairs {
        signed.push_str(name);
        signed.push_str(value);
    }
    signing::base64_encode(&signing::hmac_sha1(
        auth_token.as_bytes(),
        &[signed.as_bytes()],
    ))
}

/// What the signature covers besides the URL.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signed<'a> {
    /// Form parameters (a `POST`), or none (a `GET`).
    Params(&'a [(String, String)]),
    /// A raw body whose SHA-256 the URL's `bodySHA256` parameter carries.
    Body(&'a [u8]),
}

/// Verifies `signature` as the SDK's `validate` does.
pub(crate) fn verify_signature(
    auth_token: &str,
    url: &str,
    signed: Signed<'_>,
    signature: &str,
) -> Result<(), WebhookError> {
    let parts = UrlParts::parse(url).ok_or(WebhookError::BadSignature)?;
    let params = match signed {
        Signed::Params(params) => params,
        Signed::Body(body) => {
            let query = Form::parse(parts.query().unwrap_or("").as_bytes());
            let expected = query
                .get(BODY_SHA256_PARAM)
                .ok_or(WebhookError::MissingSignature {
                    header: BODY_SHA256_PARAM,
                })?;
            let actual = hex::encode(Sha256::digest(body));
            if !signing::constant_time_eq(actual.as_bytes(), expected.as_bytes()) {
                return Err(WebhookError::BadSignature);
            }
            &[]
        }
    };
    let received = signature.trim();
    let matches = |candidate: &str| {
        signing::constant_time_eq(
            compute_signature(auth_token, candidate, params).as_bytes(),
            received.as_bytes(),
        )
    };
    // Both forms are always computed: which one matched is not observable.
    let without = matches(&parts.without_port());
    let with = matches(&parts.with_port());
    if without | with {
        Ok(())
    } else {
        Err(WebhookError::BadSignature)
    }
}

/// Twilio's incoming-message webhook.
#[derive(Debug, Clone)]
pub struct Twilio {
    signing: Signing<Secret>,
}

impl Twilio {
    /// Twilio verified with the account's Auth Token (or not, per `signing`).
    pub fn new(signing: Signing<Secret>) -> Self {
        Self { signing }
    }

    fn verify(&self, request: &WebhookRequest<'_>, params: &Form) -> Result<(), WebhookError> {
        let Some(token) = self.signing.key(self.name())? else {
            return Ok(());
        };
        let signature = signing::signature_header(request.headers, SIGNATURE_HEADER)?;
        let signed = if request.is_json() {
            Signed::Body(request.body)
        } else {
            Signed::Params(params.pairs())
        };
        verify_signature(token.expose(), request.url, signed, signature)
    }
}

impl Provider for Twilio {
    fn name(&self) -> &'static str {
        "twilio"
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
        let message = if request.method == Method::GET {
            // A GET signs the URL alone; its parameters are the query.
            self.verify(request, &Form::default())?;
            TwilioMessage::from_form(&request.query())?
        } else if request.is_form() {
            let form = Form::parse(request.body);
            self.verify(request, &form)?;
            TwilioMessage::from_form(&form)?
        } else if request.is_json() {
            self.verify(request, &Form::default())?;
            super::decode_json(request.body)?
        } else {
            return Err(request.unsupported(self.name()));
        };
        reply(normalizer, request, &message)
    }

    fn success(&self) -> Answer {
        Answer {
            status: StatusCode::OK,
            content_type: Some("text/xml"),
            body: EMPTY_TWIML,
        }
    }
}

fn reply(
    normalizer: &Normalizer,
    request: &WebhookRequest<'_>,
    message: &TwilioMessage,
) -> Result<Received, WebhookError> {
    let raw = RawReply {
        message_id: message.sid(),
        from: message
            .from
            .as_deref()
            .ok_or_else(|| WebhookError::missing("From"))?,
        to: message
            .to
            .as_deref()
            .ok_or_else(|| WebhookError::missing("To"))?,
        body: message.body.as_deref().unwrap_or(""),
    };
    Fields::new("MessageSid", raw).received(normalizer, request)
}

#[cfg(test)]
mod tests {
    use super::*;

    // twilio-python tests/unit/test_request_validator.py
    const TOKEN: &str = "12345";
    const URI: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn sdk_params() -> Vec<(String, String)> {
        [
            ("CallSid", "CA1234567890ABCDE"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
            ("Caller", "+14158675309"),
        ]
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
    }

    #[test]
    fn sdk_vector_compute_signature() {
        assert_eq!(
            compute_signature(TOKEN, URI, &sdk_params()),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn sdk_vector_duplicate_parameters() {
        let form = Form::parse(b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234");
        assert_eq!(
            compute_signature(TOKEN, URI, form.pairs()),
            "IK+Dwps556ElfBT0I3Rgjkr1wJU="
        );
    }

    #[test]
    fn sdk_vectors_ports() {
        let params = sdk_params();
        let ok = |uri: &str, sig: &str| verify_signature(TOKEN, uri, Signed::Params(&params), sig);
        ok(URI, "RSOYDt4T1cUTdK1PDd93/VVr8B8=").expect("plain");
        // removes the port on https and http
        ok(
            "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
            "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
        )
        .expect("https port removed");
        ok(
            "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
            "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
        )
        .expect("http port kept");
        // adds the default port
        ok(URI, "kvajT1Ptam85bY51eRf/AJRuM3w=").expect("443 added");
        ok(
            "http://mycompany.com/myapp.php?foo=1&bar=2",
            "0ZXoZLH/DfblKGATFgpif+LLRf4=",
        )
        .expect("80 added");
        assert!(matches!(
            ok(URI, "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn sdk_vector_body_sha256() {
        let body = br#"{"property": "value", "boolean": true}"#;
        let hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        assert_eq!(hex::encode(Sha256::digest(body)), hash);
        let uri = format!("{URI}&bodySHA256={hash}");
        verify_signature(
            TOKEN,
            &uri,
            Signed::Body(body),
            "a9nBmqA0ju/hNViExpshrM61xv4=",
        )
        .expect("SDK vector");
        assert!(matches!(
            verify_signature(
                TOKEN,
                &uri,
                Signed::Body(b"{}"),
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verify_signature(
                TOKEN,
                URI,
                Signed::Body(body),
                "a9nBmqA0ju/hNViExpshrM61xv4="
            ),
            Err(WebhookError::MissingSignature { .. })
        ));
    }

    #[test]
    fn media_items_are_gathered() {
        let form = Form::parse(
            b"MessageSid=MM1&NumMedia=2&MediaUrl0=https%3A%2F%2Fa&MediaContentType0=image%2Fjpeg&MediaUrl1=https%3A%2F%2Fb",
        );
        let message = TwilioMessage::from_form(&form).expect("decodes");
        assert_eq!(message.media.len(), 2);
        assert_eq!(message.media[0].content_type.as_deref(), Some("image/jpeg"));
        assert_eq!(message.media[1].content_type, None);
        assert_eq!(message.sid(), Some("MM1"));
    }
}
