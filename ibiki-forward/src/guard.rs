//! The SSRF guard: an endpoint is only called at addresses its
//! [`AddressPolicy`] allows, checked when each connection is made.

use std::io;
use std::net::{IpAddr, SocketAddr};

use ibiki_core::{AddressPolicy, EndpointUrl};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// An endpoint's host at an address its policy refuses: the request is not
/// made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refused to call {host}: {}{kind} address (only public addresses are called)",
    at(host, ip)
)]
pub struct AddressRefused {
    /// The host, as the URL names it.
    pub host: String,
    /// The address refused.
    pub ip: IpAddr,
    /// Its kind, as [`AddressPolicy::refusal`] names it.
    pub kind: &'static str,
}

/// Why [`GuardedResolver`] gave no address for a host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The system's resolver failed.
    #[error("could not resolve {host}: {source}")]
    Lookup {
        /// The host.
        host: String,
        /// The resolver's error.
        #[source]
        source: io::Error,
    },
    /// The name has no address.
    #[error("{host} resolved to no address")]
    NoAddress {
        /// The host.
        host: String,
    },
    /// One of its addresses is refused by the policy.
    #[error(transparent)]
    Refused(AddressRefused),
}

/// A DNS resolver for `reqwest` that refuses a host name when *any* of its
/// addresses is refused by the policy, and otherwise hands the connector
/// exactly the addresses it checked: a name cannot resolve to a public
/// address for the check and a private one for the connection (DNS
/// rebinding).
///
/// `reqwest` does not resolve a URL whose host is a literal address, so
/// [`check_literal`] checks those before each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    /// A resolver that enforces `policy`.
    pub fn new(policy: AddressPolicy) -> Self {
        Self { policy }
    }

    /// Resolves `host` (with the system's resolver, as `reqwest` does by
    /// default) and checks each address. The addresses have port 0: the
    /// connector puts the URL's port in.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|source| ResolveError::Lookup {
                host: host.to_owned(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(ResolveError::NoAddress {
                host: host.to_owned(),
            });
        }
        if let Some(refused) = addrs
            .iter()
            .find_map(|addr| refused(self.policy, host, addr.ip()))
        {
            return Err(ResolveError::Refused(refused));
        }
        Ok(addrs)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Checks a URL whose host is a literal address (which no resolver sees)
/// against `policy`; a host name passes here and is checked by
/// [`GuardedResolver`] when it connects.
pub fn check_literal(url: &EndpointUrl, policy: AddressPolicy) -> Result<(), AddressRefused> {
    let ip = match url.url().host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) | None => return Ok(()),
    };
    let host = url.url().host_str().unwrap_or_default();
    refused(policy, host, ip).map_or(Ok(()), Err)
}

/// `it is at <ip>, a ` for a name, `a ` for a literal address.
fn at(host: &str, ip: &IpAddr) -> String {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if literal.parse::<IpAddr>().ok().as_ref() == Some(ip) {
        "a ".to_owned()
    } else {
        format!("it is at {ip}, a ")
    }
}

fn refused(policy: AddressPolicy, host: &str, ip: IpAddr) -> Option<AddressRefused> {
    let kind = policy.refusal(ip)?;
    Some(AddressRefused {
        host: host.to_owned(),
        ip,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[tokio::test]
    async fn localhost_is_refused_unless_private_addresses_are_allowed() -> TestResult {
        let error = GuardedResolver::new(AddressPolicy::PublicOnly)
            .lookup("localhost")
            .await
            .expect_err("loopback");
        let ResolveError::Refused(refused) = &error else {
            return Err(format!("not refused: {error}").into());
        };
        assert_eq!(refused.host, "localhost");
        assert!(refused.ip.is_loopback());
        assert_eq!(refused.kind, "loopback");
        assert!(error.to_string().contains("localhost"), "{error}");

        let addrs = GuardedResolver::new(AddressPolicy::AllowPrivate)
            .lookup("localhost")
            .await?;
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 0));
        Ok(())
    }

    #[tokio::test]
    async fn unknown_names_fail_to_resolve() {
        let error = GuardedResolver::new(AddressPolicy::AllowPrivate)
            .lookup("no-such-host.invalid")
            .await
            .expect_err("no such host");
        assert!(
            error.to_string().contains("no-such-host.invalid"),
            "{error}"
        );
    }

    #[test]
    fn literals_are_checked_names_are_left_to_the_resolver() -> TestResult {
        let private = AddressPolicy::AllowPrivate;
        for (url, kind) in [
            ("http://127.0.0.1:8080/hook", "loopback"),
            ("http://[::1]/hook", "loopback"),
            ("http://169.254.169.254/", "link-local (cloud metadata)"),
        ] {
            let url = EndpointUrl::parse(url, private)?;
            assert!(check_literal(&url, private).is_ok());
            let refused = check_literal(&url, AddressPolicy::PublicOnly).expect_err("refused");
            assert_eq!(refused.kind, kind);
        }
        let named = EndpointUrl::parse("http://localhost/", private)?;
        assert!(check_literal(&named, AddressPolicy::PublicOnly).is_ok());
        let public = EndpointUrl::parse("https://8.8.8.8/", private)?;
        assert!(check_literal(&public, AddressPolicy::PublicOnly).is_ok());
        Ok(())
    }
}
