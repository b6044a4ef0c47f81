//! A client's own endpoint, where its replies are forwarded: the URL, checked
//! against the addresses a server must never be made to call, and the
//! secret that signs each request.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Serialize, Serializer};
use time::OffsetDateTime;

use crate::ClientId;

/// Which hosts an endpoint may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressPolicy {
    /// Public addresses only (the default): no loopback, private,
    /// link-local (cloud metadata), unique-local or unspecified address,
    /// whether written in the URL or resolved from its host name at connect
    /// time.
    #[default]
    PublicOnly,
    /// Any address: for development and tests, where the receiver runs on
    /// the same machine.
    AllowPrivate,
}

impl AddressPolicy {
    /// Why `ip` may not be called under this policy, if it may not.
    pub fn refusal(self, ip: IpAddr) -> Option<&'static str> {
        match self {
            Self::AllowPrivate => None,
            Self::PublicOnly => refused_kind(ip),
        }
    }
}

/// The kind of a non-public address: what an SSRF guard refuses.
fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => refused_v4(v4),
            None => refused_v6(v6),
        },
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata)")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        // 100.64.0.0/10 is carrier-grade NAT space: private in practice.
        Some("private")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("not unicast")
    } else {
        None
    }
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local (cloud metadata)")
    } else if first & 0xfe00 == 0xfc00 {
        Some("unique-local")
    } else if ip.is_multicast() {
        Some("not unicast")
    } else {
        None
    }
}

/// Why an endpoint URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointUrlError {
    /// Not a URL at all.
    #[error("not a URL: {0}")]
    Parse(String),
    /// Longer than [`EndpointUrl::MAX_LEN`].
    #[error("the URL is {len} bytes long, at most {max} are allowed")]
    TooLong {
        /// The URL's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not `http` or `https`.
    #[error("the URL's scheme is {0:?}: only http and https endpoints are called")]
    Scheme(String),
    /// No host to call.
    #[error("the URL has no host")]
    NoHost,
    /// User name or password in the URL: they would travel in every request.
    #[error("the URL carries credentials: put them in a query parameter or path instead")]
    Credentials,
    /// The host is a literal address no endpoint may have.
    #[error(
        "the host {ip} is a {kind} address: only public addresses are called \
         (start the server with --allow-private-endpoints for development)"
    )]
    NotPublic {
        /// The address.
        ip: IpAddr,
        /// Its kind: loopback, private, link-local, unique-local, unspecified.
        kind: &'static str,
    },
}

/// A checked endpoint URL: `http` or `https`, a host, no credentials, and
/// (under [`AddressPolicy::PublicOnly`]) no literal non-public address. A
/// host *name* is checked again when each request connects, against every
/// address it resolves to.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    /// Longest URL accepted, in bytes.
    pub const MAX_LEN: usize = 2048;

    /// Checks `text` under `policy`.
    ///
    /// ```
    /// use ibiki_core::{AddressPolicy, EndpointUrl, EndpointUrlError};
    ///
    /// let url = EndpointUrl::parse("https://crm.example.com/sms", AddressPolicy::PublicOnly)?;
    /// assert_eq!(url.as_str(), "https://crm.example.com/sms");
    /// let metadata = EndpointUrl::parse("http://169.254.169.254/", AddressPolicy::PublicOnly);
    /// assert!(matches!(metadata, Err(EndpointUrlError::NotPublic { .. })));
    /// # Ok::<(), EndpointUrlError>(())
    /// ```
    pub fn parse(text: &str, policy: AddressPolicy) -> Result<Self, EndpointUrlError> {
        if text.len() > Self::MAX_LEN {
            return Err(EndpointUrlError::TooLong {
                len: text.len(),
                max: Self::MAX_LEN,
            });
        }
        let url = url::Url::parse(text).map_err(|e| EndpointUrlError::Parse(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EndpointUrlError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointUrlError::Credentials);
        }
        let ip = match url.host() {
            None => return Err(EndpointUrlError::NoHost),
            Some(url::Host::Domain(_)) => None,
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        };
        if let Some((ip, kind)) = ip.and_then(|ip| Some((ip, policy.refusal(ip)?))) {
            return Err(EndpointUrlError::NotPublic { ip, kind });
        }
        Ok(Self(url))
    }

    /// The URL as text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Debug for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndpointUrl({:?})", self.0.as_str())
    }
}

impl fmt::Display for EndpointUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for EndpointUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A signing secret in the Standard Webhooks form: `whsec_` and the base64
/// of 32 random bytes. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct EndpointSecret(String);

/// A text that is not a `whsec_` secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an endpoint secret is `whsec_` followed by the base64 of 24 to 64 bytes")]
pub struct SecretFormatError;

impl EndpointSecret {
    /// What every secret starts with.
    pub const PREFIX: &'static str = "whsec_";

    /// A new random secret.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(Self(format!("{}{}", Self::PREFIX, STANDARD.encode(bytes))))
    }

    /// Reads a secret kept as text.
    pub fn parse(text: &str) -> Result<Self, SecretFormatError> {
        let key = text.strip_prefix(Self::PREFIX).ok_or(SecretFormatError)?;
        let bytes = STANDARD.decode(key).map_err(|_| SecretFormatError)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(SecretFormatError);
        }
        Ok(Self(text.to_owned()))
    }

    /// The secret's text, to sign with or to show its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EndpointSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EndpointSecret(..)")
    }
}

/// The secrets that sign a client's requests: the current one, and during a
/// rotation's grace period ([`PREVIOUS_SECRET_GRACE`]) the one before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSecrets {
    /// The secret shown to the client now.
    pub current: EndpointSecret,
    /// The secret it replaced, while it still signs.
    pub previous: Option<EndpointSecret>,
}

/// How long a rotated-out secret keeps signing beside the new one, so a
/// client can switch its check over without losing a request.
pub const PREVIOUS_SECRET_GRACE: time::Duration = time::Duration::hours(24);

/// A client's endpoint, as it is configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// The client whose replies go there.
    #[serde(rename = "userId")]
    pub client: ClientId,
    /// Where they go.
    pub url: EndpointUrl,
    /// `false` pauses forwarding: forwards queue as pending.
    pub enabled: bool,
    /// When it was first set.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An endpoint and how forwarding to it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointState {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// Forwards waiting for an attempt (or in one).
    pub pending: u64,
    /// Forwards whose every scheduled attempt failed.
    pub failed: u64,
    /// When the last forward was delivered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_delivered_at: Option<OffsetDateTime>,
    /// When the first attempt failed since the last delivered one, if the
    /// endpoint is failing now.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_public_literals_are_refused_with_their_kind() {
        for (url, kind) in [
            ("http://127.0.0.1:8080/", "loopback"),
            ("http://[::1]/", "loopback"),
            ("http://10.1.2.3/", "private"),
            ("http://172.16.0.1/", "private"),
            ("http://192.168.1.1/", "private"),
            ("http://100.64.0.1/", "private"),
            (
                "http://169.254.169.254/latest/meta-data",
                "link-local (cloud metadata)",
            ),
            ("http://[fe80::1]/", "link-local (cloud metadata)"),
            ("http://[fd00::1]/", "unique-local"),
            ("http://0.0.0.0/", "unspecified"),
            ("http://[::]/", "unspecified"),
            ("http://[::ffff:127.0.0.1]/", "loopback"),
            ("http://2130706433/", "loopback"),
        ] {
            match EndpointUrl::parse(url, AddressPolicy::PublicOnly) {
                Err(EndpointUrlError::NotPublic { kind: got, .. }) => {
                    assert_eq!(got, kind, "{url}")
                }
                other => panic!("{url}: {other:?}"),
            }
            assert!(
                EndpointUrl::parse(url, AddressPolicy::AllowPrivate).is_ok(),
                "{url}"
            );
        }
    }

    #[test]
    fn other_schemes_hosts_and_credentials_are_refused() {
        let public = AddressPolicy::PublicOnly;
        assert!(matches!(
            EndpointUrl::parse("ftp://example.com/", public),
            Err(EndpointUrlError::Scheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            EndpointUrl::parse("https://user:pw@example.com/", public),
            Err(EndpointUrlError::Credentials)
        ));
        assert!(matches!(
            EndpointUrl::parse("example.com/hook", public),
            Err(EndpointUrlError::Parse(_))
        ));
        let long = format!("https://example.com/{}", "a".repeat(EndpointUrl::MAX_LEN));
        assert!(matches!(
            EndpointUrl::parse(&long, public),
            Err(EndpointUrlError::TooLong { .. })
        ));
        assert!(EndpointUrl::parse("https://8.8.8.8/hook", public).is_ok());
    }

    #[test]
    fn secrets_round_trip_and_hide() -> Result<(), Box<dyn std::error::Error>> {
        let secret = EndpointSecret::generate()?;
        assert!(secret.expose().starts_with("whsec_"));
        assert_eq!(EndpointSecret::parse(secret.expose())?, secret);
        assert_eq!(format!("{secret:?}"), "EndpointSecret(..)");
        assert_eq!(
            EndpointSecret::parse("whsec_c2hvcnQ="),
            Err(SecretFormatError)
        );
        assert_eq!(EndpointSecret::parse("sk_abc"), Err(SecretFormatError));
        Ok(())
    }
}
