//! The public URL a provider called: what URL-signed schemes (Twilio, Plivo)
//! sign, which a server behind a reverse proxy cannot see in its own request.

use std::fmt;
use std::str::FromStr;

/// The configured public base URL (`https://sms.example.com` or
/// `https://example.com/ibiki`), to which a request's path and query are
/// appended to rebuild the URL the provider called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

/// Why a public base URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a public URL must be http:// or https:// with a host, and no query or fragment")]
pub struct PublicUrlError;

impl FromStr for PublicUrl {
    type Err = PublicUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts = UrlParts::parse(text).ok_or(PublicUrlError)?;
        if parts.authority.is_empty()
            || !matches!(parts.scheme, "http" | "https")
            || parts.rest.contains(['?', '#'])
        {
            return Err(PublicUrlError);
        }
        Ok(Self(text.trim_end_matches('/').to_owned()))
    }
}

impl PublicUrl {
    /// The base URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The full URL for a request's `path_and_query` (`/webhooks/twilio?x=1`).
    pub fn join(&self, path_and_query: &str) -> String {
        if path_and_query.starts_with('/') {
            format!("{}{path_and_query}", self.0)
        } else {
            format!("{}/{path_and_query}", self.0)
        }
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL cut into the pieces signature schemes care about; no decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UrlParts<'a> {
    /// `https`, lowercase as given.
    pub scheme: &'a str,
    /// Optional userinfo, host and optional port: `example.com:8443`.
    pub authority: &'a str,
    /// Path, query and fragment: `/sms?x=1`.
    pub rest: &'a str,
}

impl<'a> UrlParts<'a> {
    /// Splits `url` as `scheme://authority rest`; `None` if it has no `://`.
    pub(crate) fn parse(url: &'a str) -> Option<Self> {
        let (scheme, after) = url.split_once("://")?;
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        Some(Self {
            scheme,
            authority: &after[..end],
            rest: &after[end..],
        })
    }

    /// The port written in the authority, if any.
    pub(crate) fn port(&self) -> Option<&'a str> {
        let host = self.authority.rsplit('@').next().unwrap_or(self.authority);
        // An IPv6 host is bracketed: only a colon after `]` starts a port.
        let after_host = host.rfind(']').map_or(host, |i| &host[i..]);
        after_host
            .rfind(':')
            .map(|i| &after_host[i + 1..])
            .filter(|port| !port.is_empty())
    }

    /// The query (after `?`, before `#`), if any.
    pub(crate) fn query(&self) -> Option<&'a str> {
        let without_fragment = self.rest.split('#').next().unwrap_or("");
        without_fragment.split_once('?').map(|(_, query)| query)
    }

    /// The URL without its port.
    pub(crate) fn without_port(&self) -> String {
        match self.port() {
            Some(port) => {
                let authority = &self.authority[..self.authority.len() - port.len() - 1];
                format!("{}://{authority}{}", self.scheme, self.rest)
            }
            None => format!("{}://{}{}", self.scheme, self.authority, self.rest),
        }
    }

    /// The URL with an explicit port: the scheme's default when none is
    /// written (`443` for https, `80` otherwise).
    pub(crate) fn with_port(&self) -> String {
        match self.port() {
            Some(_) => format!("{}://{}{}", self.scheme, self.authority, self.rest),
            None => {
                let port = if self.scheme.eq_ignore_ascii_case("https") {
                    443
                } else {
                    80
                };
                format!("{}://{}:{port}{}", self.scheme, self.authority, self.rest)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_join_paths() {
        let base: PublicUrl = "https://example.com/ibiki/".parse().expect("valid");
        assert_eq!(
            base.join("/webhooks/twilio?x=1"),
            "https://example.com/ibiki/webhooks/twilio?x=1"
        );
        assert_eq!(base.join("a"), "https://example.com/ibiki/a");
        for bad in [
            "example.com",
            "ftp://x",
            "https://",
            "https://x/?q",
            "https://x#f",
        ] {
            assert!(bad.parse::<PublicUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_are_added_and_removed() {
        let url = UrlParts::parse("https://mycompany.com/myapp.php?foo=1&bar=2").expect("url");
        assert_eq!(url.port(), None);
        assert_eq!(url.query(), Some("foo=1&bar=2"));
        assert_eq!(
            url.with_port(),
            "https://mycompany.com:443/myapp.php?foo=1&bar=2"
        );
        let url = UrlParts::parse("http://u:p@[::1]:8080?x").expect("url");
        assert_eq!(url.port(), Some("8080"));
        assert_eq!(url.without_port(), "http://u:p@[::1]?x");
        let url = UrlParts::parse("http://[::1]/").expect("url");
        assert_eq!(url.port(), None);
        assert_eq!(url.with_port(), "http://[::1]:80/");
    }
}
