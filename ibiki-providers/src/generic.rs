//! Any other gateway, by configuration (see [`Generic`]).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use http::{HeaderName, Method};
use ibiki_core::{InboundReply, Normalizer, RawReply, ReplyError};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::basic_auth::BasicCredentials;
use super::form::Form;
use super::number::international;
use super::signing::{self, SigningMode};
use super::{Provider, Received, WebhookError, WebhookRequest};
use ibiki_core::Secret;

/// How the gateway sends a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyFormat {
    /// A JSON body; fields are JSON pointers.
    Json,
    /// A form `POST`; fields are parameter names.
    Form,
    /// The URL's query (a `GET`); fields are parameter names.
    Query,
}

/// How the gateway writes phone numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NumberStyle {
    /// E.164 with its `+` (`+447700900001`): taken as sent.
    #[default]
    E164,
    /// International digits without `+` (`447700900001`): given their `+`.
    InternationalDigits,
}

/// The hash of an HMAC signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HmacAlgorithm {
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA1.
    Sha1,
}

/// How an HMAC signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureEncoding {
    /// Hexadecimal, either case.
    #[default]
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// How the gateway proves a request is its own.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum GenericAuth {
    /// No proof: requests are accepted unchecked (or all refused when
    /// signatures are required).
    None,
    /// An HMAC of the raw body in a header.
    Hmac {
        /// The header carrying the signature (`X-Gateway-Signature`).
        header: String,
        /// The shared secret.
        #[serde(deserialize_with = "secret")]
        secret: Secret,
        /// The hash.
        #[serde(default)]
        algorithm: HmacAlgorithm,
        /// The encoding of the signature.
        #[serde(default)]
        encoding: SignatureEncoding,
        /// Text before the signature in the header (`sha256=`), if any.
        #[serde(default)]
        prefix: Option<String>,
    },
    /// A shared token in a header.
    Token {
        /// The header carrying the token (`X-Gateway-Token`).
        header: String,
        /// The token.
        #[serde(deserialize_with = "secret")]
        token: Secret,
    },
    /// HTTP Basic authentication.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        #[serde(deserialize_with = "secret")]
        password: Secret,
    },
}

impl fmt::Debug for GenericAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets show as `Secret(..)`.
        match self {
            Self::None => f.write_str("None"),
            Self::Hmac {
                header,
                secret,
                algorithm,
                encoding,
                prefix,
            } => f
                .debug_struct("Hmac")
                .field("header", header)
                .field("secret", secret)
                .field("algorithm", algorithm)
                .field("encoding", encoding)
                .field("prefix", prefix)
                .finish(),
            Self::Token { header, token } => f
                .debug_struct("Token")
                .field("header", header)
                .field("token", token)
                .finish(),
            Self::Basic { username, password } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", password)
                .finish(),
        }
    }
}

fn secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse()
        .map_err(|_| serde::de::Error::custom("a secret must not be empty"))
}

/// Where each field of a message is: JSON pointers for `json`, parameter
/// names for `form` and `query`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericFields {
    /// The gateway's id for the message: the dedup key.
    #[serde(default)]
    pub message_id: Option<String>,
    /// The sender.
    pub from: String,
    /// The number the message was sent to.
    pub to: String,
    /// The text.
    pub text: String,
    /// When the gateway received the message (RFC 3339 or Unix seconds).
    #[serde(default)]
    pub received_at: Option<String>,
}

/// A gateway's webhook, described: see [`Generic`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenericConfig {
    /// The gateway's name: served at `/webhooks/{name}` and shown in logs
    /// and metrics. 1 to 32 lowercase ASCII letters, digits and `-`; without
    /// one, `generic`.
    #[serde(default)]
    pub name: Option<String>,
    /// How the gateway sends a message.
    pub format: BodyFormat,
    /// `json` only: the pointer to the array of messages of a batching
    /// gateway; without it, the body is one message.
    #[serde(default)]
    pub messages: Option<String>,
    /// Where each field is.
    pub fields: GenericFields,
    /// How the gateway writes numbers.
    #[serde(default)]
    pub numbers: NumberStyle,
    /// How the gateway proves a request is its own.
    pub auth: GenericAuth,
}

/// Why a generic gateway's configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenericConfigError {
    /// The JSON cannot be read as a configuration.
    #[error("the generic gateway configuration cannot be read: {0}")]
    Json(#[from] serde_json::Error),
    /// A field of a `json` format is not a JSON pointer.
    #[error(
        "fields.{field} = {pointer:?} is not a JSON pointer: it starts with '/' and writes '~' as '~0' and '/' in a name as '~1' (RFC 6901)"
    )]
    InvalidPointer {
        /// The configuration key (`to`, `messages`...).
        field: &'static str,
        /// The value given.
        pointer: String,
    },
    /// A field of a `form` or `query` format is empty.
    #[error("fields.{field} must name a parameter")]
    EmptyFieldName {
        /// The configuration key.
        field: &'static str,
    },
    /// `messages` was given for a format that is not `json`.
    #[error("messages (an array of messages) needs format = \"json\"")]
    MessagesNeedJson,
    /// HMAC authentication over a format without a body.
    #[error("auth type \"hmac\" signs the body: it needs format = \"json\" or \"form\"")]
    HmacNeedsBody,
    /// A header name that HTTP does not allow.
    #[error("auth.header = {header:?} is not a valid HTTP header name")]
    InvalidHeader {
        /// The value given.
        header: String,
    },
    /// A gateway name that is not 1 to 32 lowercase letters, digits and `-`.
    #[error(
        "name = {name:?}: a gateway's name is 1 to 32 lowercase letters, digits and '-' (it is served at /webhooks/{{name}})"
    )]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// A Basic user name that is empty or holds a colon.
    #[error("auth.username must be non-empty and without ':' (RFC 7617)")]
    InvalidUsername,
}

impl GenericConfig {
    /// Reads and checks a configuration written in JSON.
    pub fn from_json(json: &str) -> Result<Self, GenericConfigError> {
        let config: Self = serde_json::from_str(json)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the configuration (as [`Generic::new`] does).
    pub fn validate(&self) -> Result<(), GenericConfigError> {
        if let Some(name) = &self.name {
            if !is_gateway_name(name) {
                return Err(GenericConfigError::InvalidName { name: name.clone() });
            }
        }
        let fields = &self.fields;
        let named = [
            ("message_id", fields.message_id.as_deref()),
            ("from", Some(fields.from.as_str())),
            ("to", Some(fields.to.as_str())),
            ("text", Some(fields.text.as_str())),
            ("received_at", fields.received_at.as_deref()),
        ];
        for (field, value) in named {
            let Some(value) = value else { continue };
            match self.format {
                BodyFormat::Json if !is_pointer(value) => {
                    return Err(GenericConfigError::InvalidPointer {
                        field,
                        pointer: value.to_owned(),
                    });
                }
                BodyFormat::Form | BodyFormat::Query if value.is_empty() => {
                    return Err(GenericConfigError::EmptyFieldName { field });
                }
                _ => {}
            }
        }
        if let Some(messages) = &self.messages {
            if self.format != BodyFormat::Json {
                return Err(GenericConfigError::MessagesNeedJson);
            }
            // The whole body may be the array: "" is the root.
            if !messages.is_empty() && !is_pointer(messages) {
                return Err(GenericConfigError::InvalidPointer {
                    field: "messages",
                    pointer: messages.clone(),
                });
            }
        }
        match &self.auth {
            GenericAuth::None => {}
            GenericAuth::Hmac { header, .. } => {
                if self.format == BodyFormat::Query {
                    return Err(GenericConfigError::HmacNeedsBody);
                }
                header_name(header)?;
            }
            GenericAuth::Token { header, .. } => {
                header_name(header)?;
            }
            GenericAuth::Basic { username, .. } => {
                if username.is_empty() || username.contains(':') {
                    return Err(GenericConfigError::InvalidUsername);
                }
            }
        }
        Ok(())
    }
}

/// The name a gateway without one is served under.
pub const DEFAULT_NAME: &str = "generic";

/// Whether `name` can name a gateway: a path segment that needs no escaping
/// and a bounded metric label.
fn is_gateway_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Whether `text` is a non-empty RFC 6901 pointer.
fn is_pointer(text: &str) -> bool {
    text.starts_with('/')
        && text
            .split('~')
            .skip(1)
            .all(|after| after.starts_with('0') || after.starts_with('1'))
}

/// The header's name, lowercase, kept for the process's lifetime (errors
/// name it).
fn header_name(header: &str) -> Result<&'static str, GenericConfigError> {
    let name = HeaderName::from_bytes(header.trim().as_bytes()).map_err(|_| {
        GenericConfigError::InvalidHeader {
            header: header.to_owned(),
        }
    })?;
    Ok(interned(name.as_str()))
}

/// `text` kept for the process's lifetime, each distinct text once: header
/// and gateway names, which errors and the provider's name hold as
/// `&'static str`, and of which a configuration has a handful.
fn interned(text: &str) -> &'static str {
    static TEXTS: OnceLock<Mutex<BTreeSet<&'static str>>> = OnceLock::new();
    let mut texts = TEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = texts.get(text) {
        return known;
    }
    let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
    texts.insert(leaked);
    leaked
}

/// The checks of a validated [`GenericAuth`].
#[derive(Clone)]
enum Check {
    None,
    Hmac {
        header: &'static str,
        secret: Secret,
        algorithm: HmacAlgorithm,
        encoding: SignatureEncoding,
        prefix: String,
    },
    Token {
        header: &'static str,
        token_sha256: [u8; 32],
    },
    Basic(BasicCredentials),
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

impl Check {
    fn new(auth: &GenericAuth) -> Result<Self, GenericConfigError> {
        Ok(match auth {
            GenericAuth::None => Self::None,
            GenericAuth::Hmac {
                header,
                secret,
                algorithm,
                encoding,
                prefix,
            } => Self::Hmac {
                header: header_name(header)?,
                secret: secret.clone(),
                algorithm: *algorithm,
                encoding: *encoding,
                prefix: prefix.clone().unwrap_or_default(),
            },
            GenericAuth::Token { header, token } => Self::Token {
                header: header_name(header)?,
                token_sha256: sha256(token.expose().as_bytes()),
            },
            GenericAuth::Basic { username, password } => {
                Self::Basic(BasicCredentials::new(username.clone(), password.clone()))
            }
        })
    }

    fn verify(&self, request: &WebhookRequest<'_>) -> Result<(), WebhookError> {
        match self {
            Self::None => Ok(()),
            Self::Hmac {
                header,
                secret,
                algorithm,
                encoding,
                prefix,
            } => {
                let value = signing::signature_header(request.headers, header)?;
                let value = value
                    .strip_prefix(prefix.as_str())
                    .ok_or(WebhookError::MalformedSignature { header })?;
                let expected = hmac(*algorithm, secret.expose().as_bytes(), request.body);
                match encoding {
                    SignatureEncoding::Hex => signing::verify_hex(&expected, value, header),
                    SignatureEncoding::Base64 => signing::verify_base64(&expected, value, header),
                }
            }
            Self::Token {
                header,
                token_sha256,
            } => {
                let value = signing::signature_header(request.headers, header)?;
                if signing::constant_time_eq(&sha256(value.as_bytes()), token_sha256) {
                    Ok(())
                } else {
                    Err(WebhookError::BadSignature)
                }
            }
            Self::Basic(credentials) => credentials.verify(request.headers),
        }
    }
}

impl GenericAuth {
    /// The header and value an HMAC gateway sends with `body` (prefix and
    /// encoding included); `None` for other kinds of authentication. For
    /// tests and tools that post signed requests.
    pub fn sign(&self, body: &[u8]) -> Option<(String, String)> {
        let Self::Hmac {
            header,
            secret,
            algorithm,
            encoding,
            prefix,
        } = self
        else {
            return None;
        };
        let mac = hmac(*algorithm, secret.expose().as_bytes(), body);
        let encoded = match encoding {
            SignatureEncoding::Hex => hex::encode(mac),
            SignatureEncoding::Base64 => signing::base64_encode(&mac),
        };
        let prefix = prefix.as_deref().unwrap_or("");
        Some((header.clone(), format!("{prefix}{encoded}")))
    }
}

fn hmac(algorithm: HmacAlgorithm, key: &[u8], body: &[u8]) -> Vec<u8> {
    match algorithm {
        HmacAlgorithm::Sha256 => signing::hmac_sha256(key, &[body]),
        HmacAlgorithm::Sha1 => signing::hmac_sha1(key, &[body]),
    }
}

/// Any other gateway, by configuration: where its fields are, how it writes
/// numbers and how it proves a request is its own.
///
/// # What a gateway sends
///
/// A [`GenericConfig`] (deserialized from JSON with
/// [`GenericConfig::from_json`], or from TOML or any other serde format)
/// names the fields of the gateway's payload:
///
/// - `format = "json"`: a JSON body; each field is an RFC 6901 JSON pointer
///   (<https://www.rfc-editor.org/rfc/rfc6901>) such as `/data/from` (`~1`
///   is a `/` in a name, `~0` a `~`). A batching gateway puts several
///   messages in one array: `messages` is then the pointer to that array and
///   the field pointers are relative to each of its elements.
/// - `format = "form"`: an `application/x-www-form-urlencoded` `POST`; each
///   field is a parameter name.
/// - `format = "query"`: the parameters in the URL's query, of a `GET` (or a
///   `POST` that carries them there); each field is a parameter name.
///
/// The fields are `from`, `to` and `text`, plus `message_id` (the gateway's
/// id for the message: the dedup key, so that a retried delivery is recorded
/// once; strongly advised) and `received_at` (RFC 3339, or Unix seconds;
/// without it, the time the request arrived). A configured field that is
/// absent from a message is an error (`400`) naming it; a value may be a
/// JSON string or number. `numbers = "international-digits"` reads numbers
/// written without `+` (`447700900001`) as international ones
/// (`number::international`);
/// `numbers = "e164"` (the default) takes them as sent.
///
/// `name` (optional) names the gateway: it is served at `/webhooks/{name}`
/// and shown under that name in logs and metrics, so that several gateways
/// can be configured side by side; without one it is `generic`.
///
/// # Authentication
///
/// `auth` is required, so that accepting unsigned requests is a decision:
///
/// - `type = "none"`: no check ([`SigningMode::AcceptUnsigned`], or every
///   request refused when signatures are required).
/// - `type = "hmac"`: the HMAC (`algorithm = "sha256"`, the default, or
///   `"sha1"`) of the raw body keyed with `secret`, in the `header` header,
///   `encoding = "hex"` (the default, either case) or `"base64"`, after an
///   optional `prefix` such as `sha256=`. Needs a body: not with `query`.
/// - `type = "token"`: the `header` header carries exactly `token`.
/// - `type = "basic"`: HTTP Basic authentication (RFC 7617) with `username`
///   and `password`, in the URL the gateway is given
///   (`https://user:pass@host/...`) or its own settings.
///
/// Every comparison is constant-time (tokens and credentials are compared
/// through their SHA-256, so that their length does not show either).
/// Nothing here guards against the replay of a captured request: HMAC
/// schemes with a signed timestamp are specific to each provider.
///
/// # Answers and retries
///
/// Success answers `200` with no body; a store failure answers `503`, the
/// answer gateways that retry treat as temporary.
#[derive(Clone)]
pub struct Generic {
    name: &'static str,
    config: GenericConfig,
    check: Check,
    mode: SigningMode,
}

impl fmt::Debug for Generic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generic")
            .field("name", &self.name)
            .field("config", &self.config)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Generic {
    /// The gateway `config` describes, once checked. With `auth` `none`,
    /// requests are accepted unchecked, or all refused if
    /// `require_signatures` is set.
    pub fn new(
        config: GenericConfig,
        require_signatures: bool,
    ) -> Result<Self, GenericConfigError> {
        config.validate()?;
        let check = Check::new(&config.auth)?;
        let mode = match (&check, require_signatures) {
            (Check::None, false) => SigningMode::AcceptUnsigned,
            (Check::None, true) => SigningMode::RefuseUnsigned,
            _ => SigningMode::Verify,
        };
        let name = interned(config.name.as_deref().unwrap_or(DEFAULT_NAME));
        Ok(Self {
            name,
            config,
            check,
            mode,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &GenericConfig {
        &self.config
    }

    fn messages(&self, request: &WebhookRequest<'_>) -> Result<Vec<Message>, WebhookError> {
        match self.config.format {
            BodyFormat::Json => {
                let body: Value = super::decode_json(request.body)?;
                match &self.config.messages {
                    None => Ok(vec![Message::Json {
                        value: body,
                        path: String::new(),
                    }]),
                    Some(pointer) => {
                        let Some(found) = body.pointer(pointer) else {
                            return Err(WebhookError::missing(label(pointer)));
                        };
                        let Value::Array(items) = found else {
                            return Err(WebhookError::invalid(
                                label(pointer),
                                "not an array of messages",
                            ));
                        };
                        Ok(items
                            .iter()
                            .enumerate()
                            .map(|(index, value)| Message::Json {
                                value: value.clone(),
                                path: format!("{pointer}/{index}"),
                            })
                            .collect())
                    }
                }
            }
            BodyFormat::Form => Ok(vec![Message::Form(Form::parse(request.body))]),
            BodyFormat::Query => Ok(vec![Message::Form(request.query())]),
        }
    }

    fn reply(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
        message: &Message,
    ) -> Result<InboundReply, WebhookError> {
        let fields = &self.config.fields;
        let number = |raw: String| match self.config.numbers {
            NumberStyle::E164 => raw.trim().to_owned(),
            NumberStyle::InternationalDigits => international(&raw),
        };
        let message_id = match &fields.message_id {
            Some(field) => Some(message.get(field)?),
            None => None,
        };
        let from = number(message.get(&fields.from)?);
        let to = number(message.get(&fields.to)?);
        let text = message.get(&fields.text)?;
        let received_at = match &fields.received_at {
            Some(field) => {
                let raw = message.get(field)?;
                parse_time(&raw).ok_or_else(|| {
                    message.invalid(field, "neither an RFC 3339 time nor Unix seconds")
                })?
            }
            None => request.received_at,
        };
        let raw = RawReply {
            message_id: message_id.as_deref(),
            from: &from,
            to: &to,
            body: &text,
        };
        InboundReply::new(normalizer, raw, received_at).map_err(|error| {
            let field = match &error {
                ReplyError::MessageId { .. } => fields.message_id.as_ref().unwrap_or(&fields.text),
                ReplyError::TooLong { field, .. } => match *field {
                    "from" => &fields.from,
                    "to" => &fields.to,
                    _ => &fields.text,
                },
                _ => &fields.text,
            };
            message.invalid(field, error)
        })
    }
}

/// A pointer or parameter name as errors show it.
fn label(field: &str) -> String {
    if field.is_empty() {
        "(the body)".to_owned()
    } else {
        field.to_owned()
    }
}

/// RFC 3339, or Unix seconds.
fn parse_time(raw: &str) -> Option<OffsetDateTime> {
    let raw = raw.trim();
    if let Some(secs) = super::clock::parse_unix_secs(raw) {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    OffsetDateTime::parse(raw, &Rfc3339).ok()
}

/// One message of a request.
enum Message {
    /// A JSON value, at `path` in the body (`""` for the body itself).
    Json { value: Value, path: String },
    /// Form or query parameters.
    Form(Form),
}

impl Message {
    fn name(&self, field: &str) -> String {
        match self {
            Self::Json { path, .. } => format!("{path}{field}"),
            Self::Form(_) => field.to_owned(),
        }
    }

    fn invalid(&self, field: &str, error: impl Into<ibiki_core::BoxError>) -> WebhookError {
        WebhookError::invalid(self.name(field), error)
    }

    /// The value of `field`: a string, or a number's JSON text.
    fn get(&self, field: &str) -> Result<String, WebhookError> {
        match self {
            Self::Json { value, .. } => match value.pointer(field) {
                None | Some(Value::Null) => Err(WebhookError::missing(self.name(field))),
                Some(Value::String(text)) => Ok(text.clone()),
                Some(Value::Number(number)) => Ok(number.to_string()),
                Some(_) => Err(self.invalid(field, "not a string or a number")),
            },
            Self::Form(form) => form
                .get(field)
                .map(str::to_owned)
                .ok_or_else(|| WebhookError::missing(self.name(field))),
        }
    }
}

impl Provider for Generic {
    /// The configuration's `name`, or `generic`.
    fn name(&self) -> &'static str {
        self.name
    }

    fn methods(&self) -> &'static [Method] {
        match self.config.format {
            BodyFormat::Json | BodyFormat::Form => &[Method::POST],
            BodyFormat::Query => &[Method::GET, Method::POST],
        }
    }

    fn signing_mode(&self) -> SigningMode {
        self.mode
    }

    fn receive(
        &self,
        normalizer: &Normalizer,
        request: &WebhookRequest<'_>,
    ) -> Result<Received, WebhookError> {
        let media_type = request.media_type();
        let acceptable = match self.config.format {
            // Gateways label JSON loosely; a form is clearly something else.
            BodyFormat::Json => !request.is_form(),
            BodyFormat::Form => request.is_form() || media_type.is_empty(),
            BodyFormat::Query => true,
        };
        if !acceptable {
            return Err(request.unsupported(self.name()));
        }
        if self.mode == SigningMode::RefuseUnsigned {
            return Err(WebhookError::SignaturesRequired {
                provider: self.name(),
            });
        }
        self.check.verify(request)?;
        let messages = self.messages(request)?;
        if messages.is_empty() {
            return Ok(Received::Skipped {
                event: "an empty batch".to_owned(),
            });
        }
        let replies = messages
            .iter()
            .map(|message| self.reply(normalizer, request, message))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Received::Replies(replies))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_follow_rfc_6901() {
        for good in ["/a", "/a/0", "/a~0b", "/a~1b", "/", "//"] {
            assert!(is_pointer(good), "{good}");
        }
        for bad in ["", "a", "a/b", "/a~", "/a~2", "#/a"] {
            assert!(!is_pointer(bad), "{bad}");
        }
    }

    #[test]
    fn header_names_are_kept_once_and_lowercase() {
        let a = header_name("X-Gateway-Signature").expect("valid");
        let b = header_name("x-gateway-signature").expect("valid");
        assert_eq!(a, "x-gateway-signature");
        assert!(std::ptr::eq(a, b));
        assert!(header_name("bad header").is_err());
        assert!(header_name("").is_err());
    }

    #[test]
    fn times_are_rfc_3339_or_unix_seconds() {
        assert_eq!(
            parse_time("1700000000").map(OffsetDateTime::unix_timestamp),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z").map(OffsetDateTime::unix_timestamp),
            Some(1_700_000_000)
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("99999999999999999999"), None);
    }
}
