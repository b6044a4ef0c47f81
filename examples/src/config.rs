//! Command-line and environment configuration.

use std::net::SocketAddr;

use clap::Parser;
use ibiki_core::Secret;
use ibiki_core::{BareDigits, Region};

use crate::forwarding::ForwardingFlags;
use crate::limits::LimitFlags;
use crate::providers::ProviderFlags;
use crate::store::DatabaseFlags;

/// Routes inbound SMS replies to the client that owns the number replied to.
///
/// Every setting is a flag or an environment variable; the flag wins.
#[derive(Debug, Clone, Parser)]
#[command(name = "ibiki-server", version, about)]
pub struct Config {
    /// Address and port to listen on (e.g. 127.0.0.1:8080, or 0.0.0.0:8080
    /// for every interface).
    #[arg(long, env = "IBIKI_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,

    /// Address and port serving GET /metrics WITHOUT the admin token, for a
    /// scraper on a private network. Without it, /metrics is served on
    /// --listen only, behind the admin token.
    #[arg(long, env = "IBIKI_METRICS_LISTEN", value_parser = parse_listen)]
    pub metrics_listen: Option<SocketAddr>,

    /// PostgreSQL URL. Without one, everything is kept in memory and lost on
    /// exit; with one, migrations are applied at start.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// The schema and the deadline of every database call.
    #[command(flatten)]
    pub database: DatabaseFlags,

    /// Region for admin numbers written without a country code (ISO 3166
    /// code, e.g. US). Without one, admin numbers need '+' and a country code.
    #[arg(long, env = "IBIKI_DEFAULT_REGION")]
    pub default_region: Option<Region>,

    /// How a reply's `to` written as bare digits, without '+', is read:
    /// `national` (a number of --default-region: 4155550100 is +14155550100
    /// with US) or `international` (a country code first, its '+' left out,
    /// as several gateways send: 14155550100 is +14155550100). Default:
    /// national with --default-region, else international. A `to` that
    /// cannot be read is held, with a warning in the log.
    #[arg(long, env = "IBIKI_BARE_DIGITS", value_enum)]
    pub bare_digits: Option<BareDigitsFlag>,

    /// Bearer token for every /api route. Without one, a random token is
    /// generated and printed once at start.
    #[arg(long, env = "IBIKI_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<Secret>,

    /// Shared secret for webhook signatures (X-Ibiki-Signature). When set,
    /// unsigned or wrongly signed webhooks are rejected with 401.
    #[arg(long, env = "IBIKI_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<Secret>,

    /// The SMS providers' keys, the public URL and --require-signatures.
    #[command(flatten)]
    pub providers: ProviderFlags,

    /// The timeouts of every phase of a request, and the caps on
    /// connections and live streams.
    #[command(flatten)]
    pub limits: LimitFlags,

    /// Forwarding each reply to its client's endpoint.
    #[command(flatten)]
    pub forwarding: ForwardingFlags,

    /// Instead of serving: `import` or `prune` (see `ibiki-server import
    /// --help`, `ibiki-server prune --help`).
    #[command(subcommand)]
    pub command: Option<crate::import::Command>,
}

/// `--bare-digits`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BareDigitsFlag {
    /// A national number of --default-region.
    National,
    /// An international number without its '+'.
    International,
}

impl Config {
    /// What bare digits in a reply's `to` mean, the default applied.
    pub fn bare_digits(&self) -> BareDigits {
        match (self.bare_digits, &self.default_region) {
            (Some(BareDigitsFlag::National), _) | (None, Some(_)) => BareDigits::National,
            (Some(BareDigitsFlag::International), _) | (None, None) => BareDigits::International,
        }
    }
}

/// Reads an address and a port, saying what is wanted when either is
/// missing (`8080` alone is the commonest mistake).
pub fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        let hint = if text.parse::<u16>().is_ok() {
            format!("a port needs its address too: 127.0.0.1:{text} (this machine only) or 0.0.0.0:{text} (every interface)")
        } else {
            "write an address and a port, e.g. 127.0.0.1:8080 ([::1]:8080 for IPv6)".to_owned()
        };
        format!("{text:?} is not an address and port: {hint}")
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_is_well_formed() {
        Config::command().debug_assert();
    }

    #[test]
    fn flags_parse_and_secrets_stay_hidden() {
        let config = Config::try_parse_from([
            "ibiki-server",
            "--listen",
            "127.0.0.1:0",
            "--default-region",
            "us",
            "--admin-token",
            "t0ken",
        ])
        .expect("valid flags");
        assert_eq!(config.listen.port(), 0);
        assert_eq!(
            config.default_region.as_ref().map(|r| r.code().to_owned()),
            Some("US".into())
        );
        assert_eq!(
            config.admin_token.as_ref().map(Secret::expose),
            Some("t0ken")
        );
        assert!(!format!("{config:?}").contains("t0ken"));
    }

    #[test]
    fn bare_digits_default_to_the_region_and_follow_the_flag() {
        let parse = |args: &[&str]| {
            let args = std::iter::once("ibiki-server").chain(args.iter().copied());
            Config::try_parse_from(args)
                .expect("valid flags")
                .bare_digits()
        };
        assert_eq!(parse(&[]), BareDigits::International);
        assert_eq!(parse(&["--default-region", "US"]), BareDigits::National);
        let international = ["--default-region", "US", "--bare-digits", "international"];
        assert_eq!(parse(&international), BareDigits::International);
        assert_eq!(parse(&["--bare-digits", "national"]), BareDigits::National);
        assert!(Config::try_parse_from(["ibiki-server", "--bare-digits", "local"]).is_err());
    }

    #[test]
    fn the_database_timeout_is_a_flag_and_a_variable_of_every_command() {
        let config = Config::try_parse_from(["ibiki-server", "--database-timeout", "750ms"])
            .expect("valid flags");
        assert_eq!(
            config.database.database_timeout,
            std::time::Duration::from_millis(750)
        );
        let config = Config::try_parse_from(["ibiki-server"]).expect("defaults");
        assert_eq!(
            config.database.database_timeout,
            std::time::Duration::from_secs(5)
        );
        let mut command = Config::command();
        for name in ["", "import", "prune"] {
            let help = match name {
                "" => command.render_long_help(),
                sub => command
                    .find_subcommand_mut(sub)
                    .expect("the subcommand")
                    .render_long_help(),
            }
            .to_string();
            for flag in [
                "--database-timeout",
                "IBIKI_DATABASE_TIMEOUT",
                "--database-schema",
            ] {
                assert!(help.contains(flag), "{flag} missing from {name} --help");
            }
        }
    }

    #[test]
    fn the_limits_are_flags_and_variables_with_defaults() {
        let config = Config::try_parse_from(["ibiki-server"]).expect("defaults");
        let connections = config.limits.connections();
        assert_eq!(connections.header_read_timeout, Duration::from_secs(10));
        assert_eq!(connections.idle_timeout, Duration::from_secs(60));
        assert_eq!(connections.send_timeout, Duration::from_secs(30));
        let router = config.limits.router();
        assert_eq!(router.body_read_timeout, Duration::from_secs(30));
        assert_eq!(router.max_streams_per_client, 16);
        assert_eq!(router.max_streams, connections.max_connections / 2);

        let config = Config::try_parse_from([
            "ibiki-server",
            "--header-read-timeout",
            "2s",
            "--body-read-timeout",
            "1500ms",
            "--max-connections",
            "100",
            "--max-streams-per-client",
            "3",
        ])
        .expect("valid flags");
        assert_eq!(config.limits.connections().max_connections, 100);
        assert_eq!(
            config.limits.connections().header_read_timeout,
            Duration::from_secs(2)
        );
        let router = config.limits.router();
        assert_eq!(router.body_read_timeout, Duration::from_millis(1500));
        assert_eq!((router.max_streams_per_client, router.max_streams), (3, 50));

        let help = Config::command().render_long_help().to_string();
        for flag in [
            "--header-read-timeout",
            "IBIKI_HEADER_READ_TIMEOUT",
            "--body-read-timeout",
            "IBIKI_BODY_READ_TIMEOUT",
            "--idle-timeout",
            "IBIKI_IDLE_TIMEOUT",
            "--send-timeout",
            "IBIKI_SEND_TIMEOUT",
            "--max-connections",
            "IBIKI_MAX_CONNECTIONS",
            "--max-streams-per-client",
            "IBIKI_MAX_STREAMS_PER_CLIENT",
            "--max-streams",
            "IBIKI_MAX_STREAMS",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }

    #[test]
    fn provider_keys_never_show() {
        // A valid Ed25519 public key (RFC 8032, test 1), base64.
        let telnyx = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
        let config = Config::try_parse_from([
            "ibiki-server",
            "--twilio-auth-token",
            "tw-secret-1",
            "--telnyx-public-key",
            telnyx,
            "--vonage-signature-secret",
            "vo-secret-2",
            "--vonage-signature-method",
            "sha256",
            "--plivo-auth-token",
            "pl-secret-3",
            "--bandwidth-username",
            "bw-user",
            "--bandwidth-password",
            "bw-secret-4",
            "--sinch-webhook-secret",
            "si-secret-5",
            "--messagebird-signing-key",
            "mb-secret-6",
            "--infobip-username",
            "ib-user",
            "--infobip-password",
            "ib-secret-7",
            "--public-url",
            "https://sms.example.com",
            "--require-signatures",
        ])
        .expect("valid flags");
        let debug = format!("{config:?}");
        for secret in [
            "tw-secret-1",
            "vo-secret-2",
            "pl-secret-3",
            "bw-secret-4",
            "si-secret-5",
            "mb-secret-6",
            "ib-secret-7",
            telnyx,
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
        assert!(config.providers.require_signatures);
        assert_eq!(
            config.providers.public_url.as_ref().map(|url| url.as_str()),
            Some("https://sms.example.com")
        );
        let help = Config::command().render_long_help().to_string();
        for flag in [
            "--twilio-auth-token",
            "IBIKI_TWILIO_AUTH_TOKEN",
            "--telnyx-public-key",
            "IBIKI_TELNYX_PUBLIC_KEY",
            "--vonage-signature-secret",
            "--vonage-signature-method",
            "--plivo-auth-token",
            "--public-url",
            "IBIKI_PUBLIC_URL",
            "--require-signatures",
            "IBIKI_REQUIRE_SIGNATURES",
            "--bandwidth-username",
            "--bandwidth-password",
            "--sinch-webhook-secret",
            "--messagebird-signing-key",
            "--infobip-username",
            "--infobip-password",
        ] {
            assert!(help.contains(flag), "{flag} missing from --help");
        }
    }

    #[test]
    fn a_port_alone_gets_an_example() {
        let error = parse_listen("8080").expect_err("no address");
        assert!(error.contains("127.0.0.1:8080"), "{error}");
        let error = parse_listen("nowhere").expect_err("no port");
        assert!(error.contains("e.g. 127.0.0.1:8080"), "{error}");
        assert_eq!(
            parse_listen("[::1]:9"),
            Ok("[::1]:9".parse().expect("an address"))
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            ["ibiki-server", "--default-region", "XX"],
            ["ibiki-server", "--admin-token", ""],
            ["ibiki-server", "--listen", "nowhere"],
            ["ibiki-server", "--database-timeout", "5"],
            ["ibiki-server", "--database-timeout", "0s"],
            ["ibiki-server", "--twilio-auth-token", ""],
            ["ibiki-server", "--telnyx-public-key", "not-a-key"],
            ["ibiki-server", "--vonage-signature-method", "crc32"],
            ["ibiki-server", "--public-url", "sms.example.com"],
            ["ibiki-server", "--bandwidth-username", "only-the-user"],
            ["ibiki-server", "--infobip-password", "only-the-password"],
            ["ibiki-server", "--header-read-timeout", "0s"],
            ["ibiki-server", "--idle-timeout", "60"],
            ["ibiki-server", "--max-connections", "0"],
            ["ibiki-server", "--max-streams-per-client", "-1"],
            ["ibiki-server", "--max-streams", "lots"],
        ] {
            assert!(Config::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
