//! The SMS providers the server verifies and decodes at
//! `/webhooks/{provider}`: their flags, and the [`Registry`] built from them.
//!
//! Adding a provider is one flag in [`ProviderFlags`] and one line in
//! [`providers`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use ibiki_core::Secret;
use ibiki_http::App;
use ibiki_providers::BasicCredentials;
use ibiki_providers::Provider;
use ibiki_providers::PublicUrl;
use ibiki_providers::Registry;
use ibiki_providers::Signing;
use ibiki_providers::SigningMode;
use ibiki_providers::bandwidth::Bandwidth;
use ibiki_providers::generic::Generic;
use ibiki_providers::generic::GenericConfig;
use ibiki_providers::infobip::Infobip;
use ibiki_providers::messagebird::MessageBird;
use ibiki_providers::plivo::Plivo;
use ibiki_providers::sinch::Sinch;
use ibiki_providers::sinch::SinchKey;
use ibiki_providers::telnyx::Telnyx;
use ibiki_providers::telnyx::TelnyxPublicKey;
use ibiki_providers::twilio::Twilio;
use ibiki_providers::vonage::SignatureMethod;
use ibiki_providers::vonage::Vonage;
use ibiki_providers::vonage::VonageKey;

/// Each provider's key, the public URL and whether signatures are required.
///
/// A provider without its key accepts unsigned requests (with a warning at
/// start), unless `--require-signatures` is set: then it refuses every
/// request with 401.
#[derive(Debug, Clone, Default, Args)]
pub struct ProviderFlags {
    /// The public base URL providers call (`https://sms.example.com`), when
    /// the server sits behind a reverse proxy: Twilio and Plivo sign the URL
    /// they call. Without one, the URL is http:// and the Host header.
    #[arg(long, env = "IBIKI_PUBLIC_URL")]
    pub public_url: Option<PublicUrl>,

    /// Refuse (401) the requests of every provider whose key is not set, and
    /// unsigned /webhooks/sms requests when --webhook-secret is not set,
    /// instead of accepting them unchecked.
    #[arg(long, env = "IBIKI_REQUIRE_SIGNATURES")]
    pub require_signatures: bool,

    /// Twilio's Auth Token: /webhooks/twilio then checks X-Twilio-Signature.
    #[arg(long, env = "IBIKI_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<Secret>,

    /// Telnyx's public key (base64, from the portal): /webhooks/telnyx then
    /// checks telnyx-signature-ed25519.
    #[arg(long, env = "IBIKI_TELNYX_PUBLIC_KEY", hide_env_values = true)]
    pub telnyx_public_key: Option<TelnyxPublicKey>,

    /// Vonage's signature secret: /webhooks/vonage then checks the `sig`
    /// parameter.
    #[arg(long, env = "IBIKI_VONAGE_SIGNATURE_SECRET", hide_env_values = true)]
    pub vonage_signature_secret: Option<Secret>,

    /// Vonage's signature method, as set in its dashboard: md5hash, md5,
    /// sha1, sha256 or sha512.
    #[arg(
        long,
        env = "IBIKI_VONAGE_SIGNATURE_METHOD",
        default_value_t = SignatureMethod::Md5Hash
    )]
    pub vonage_signature_method: SignatureMethod,

    /// Plivo's Auth Token: /webhooks/plivo then checks X-Plivo-Signature-V3.
    #[arg(long, env = "IBIKI_PLIVO_AUTH_TOKEN", hide_env_values = true)]
    pub plivo_auth_token: Option<Secret>,

    /// The user id of the Bandwidth application's callback credentials
    /// (with --bandwidth-password): /webhooks/bandwidth then checks HTTP
    /// Basic authentication (Bandwidth signs nothing).
    #[arg(
        long,
        env = "IBIKI_BANDWIDTH_USERNAME",
        requires = "bandwidth_password"
    )]
    pub bandwidth_username: Option<String>,

    /// The password of the Bandwidth application's callback credentials.
    #[arg(
        long,
        env = "IBIKI_BANDWIDTH_PASSWORD",
        hide_env_values = true,
        requires = "bandwidth_username"
    )]
    pub bandwidth_password: Option<Secret>,

    /// Sinch's webhook secret (HMAC, enabled per service plan):
    /// /webhooks/sinch then checks x-sinch-webhook-signature.
    #[arg(long, env = "IBIKI_SINCH_WEBHOOK_SECRET", hide_env_values = true)]
    pub sinch_webhook_secret: Option<Secret>,

    /// MessageBird's signing key (not the API access key):
    /// /webhooks/messagebird then checks MessageBird-Signature-JWT.
    #[arg(long, env = "IBIKI_MESSAGEBIRD_SIGNING_KEY", hide_env_values = true)]
    pub messagebird_signing_key: Option<Secret>,

    /// The username Infobip sends (its BASIC security setting, or the
    /// forwarding URL's user), with --infobip-password: /webhooks/infobip
    /// then checks HTTP Basic authentication (Infobip signs nothing).
    #[arg(long, env = "IBIKI_INFOBIP_USERNAME", requires = "infobip_password")]
    pub infobip_username: Option<String>,

    /// The password Infobip sends.
    #[arg(
        long,
        env = "IBIKI_INFOBIP_PASSWORD",
        hide_env_values = true,
        requires = "infobip_username"
    )]
    pub infobip_password: Option<Secret>,

    /// A file describing any other gateway (TOML, or JSON if it ends in
    /// .json): its name, where its fields are, how it writes numbers and how
    /// it authenticates. The gateway is served at /webhooks/{name}, or
    /// /webhooks/generic for a file without a name. Give the flag once per
    /// gateway (or a comma-separated list in the variable); a name taken by
    /// a built-in provider or another file is refused. Keep the files
    /// private: they hold the gateways' secrets.
    #[arg(
        long,
        env = "IBIKI_GENERIC_CONFIG",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub generic_config: Vec<PathBuf>,
}

/// Why the providers' configuration was refused at start.
#[derive(Debug, thiserror::Error)]
pub enum ProviderConfigError {
    /// The generic gateway's file cannot be read.
    #[error("--generic-config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The generic gateway's file is not a valid configuration. The message
    /// says where, but never quotes the file: it holds a secret.
    #[error("--generic-config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Two gateways, or a gateway and a built-in provider, under one name.
    #[error(
        "--generic-config {path}: /webhooks/{name} is already served (by a built-in provider or \
         another --generic-config file): give this file a `name` of its own"
    )]
    NameTaken {
        /// The file.
        path: String,
        /// Its gateway's name.
        name: String,
    },
}

/// Reads the generic gateway's configuration: JSON if the file ends in
/// `.json`, TOML otherwise; then checks it.
pub fn read_generic_config(path: &Path) -> Result<GenericConfig, ProviderConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ProviderConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    let invalid = |message: String| ProviderConfigError::Invalid {
        path: shown.clone(),
        message,
    };
    if path
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("json"))
    {
        return GenericConfig::from_json(&text).map_err(|error| invalid(error.to_string()));
    }
    let config: GenericConfig = toml::from_str(&text).map_err(|error| {
        // toml's Display quotes the offending line, which may be the secret.
        let line = error
            .span()
            .and_then(|span| text.get(..span.start))
            .map(|before| before.matches('\n').count() + 1);
        match line {
            Some(line) => invalid(format!("line {line}: {}", error.message())),
            None => invalid(error.message().to_owned()),
        }
    })?;
    config
        .validate()
        .map_err(|error| invalid(error.to_string()))?;
    Ok(config)
}

/// Every provider, and the flag that sets each one's key.
#[derive(Debug, Clone, Default)]
pub struct Providers {
    /// The providers, for [`App::with_providers`](ibiki_http::App::with_providers).
    pub registry: Registry,
    key_flags: BTreeMap<&'static str, &'static str>,
}

impl Providers {
    fn with(mut self, key_flag: &'static str, provider: impl Provider + 'static) -> Self {
        self.key_flags.insert(provider.name(), key_flag);
        self.registry = self.registry.with(provider);
        self
    }

    /// The flag that sets `provider`'s key.
    pub fn key_flag(&self, provider: &str) -> Option<&'static str> {
        self.key_flags.get(provider).copied()
    }

    /// Logs, once per provider, that it accepts unsigned requests (a
    /// warning) or refuses every request (no key while signatures are
    /// required). Keys are never logged.
    pub fn log_signing(&self) {
        for provider in self.registry.iter() {
            let name = provider.name();
            let flag = self.key_flag(name).unwrap_or("its key flag");
            match provider.signing_mode() {
                SigningMode::Verify => tracing::info!(provider = name, "signatures verified"),
                SigningMode::AcceptUnsigned => tracing::warn!(
                    provider = name,
                    "no key ({flag}): unsigned /webhooks/{name} requests are accepted"
                ),
                SigningMode::RefuseUnsigned => tracing::warn!(
                    provider = name,
                    "no key ({flag}) and signatures required: /webhooks/{name} refuses every request"
                ),
            }
        }
    }
}

impl ProviderFlags {
    /// Serves the providers these flags configure, with the public URL if
    /// one is set, and logs how each treats signatures.
    pub fn apply(&self, app: App) -> Result<App, ProviderConfigError> {
        let providers = providers(self)?;
        providers.log_signing();
        let mut app = app.with_providers(providers.registry);
        if let Some(public_url) = &self.public_url {
            tracing::info!(%public_url, "providers' signed URLs rebuilt from the public URL");
            app = app.with_public_url(public_url.clone());
        }
        Ok(app)
    }
}

/// The providers the flags configure: every provider, each verified with its
/// key when one is set, and the generic gateway when its file is given.
pub fn providers(flags: &ProviderFlags) -> Result<Providers, ProviderConfigError> {
    let require = flags.require_signatures;
    let secret = |key: &Option<Secret>| Signing::from_key(key.clone(), require);
    let basic = |username: &Option<String>, password: &Option<Secret>| {
        let credentials = username.clone().zip(password.clone());
        Signing::from_key(credentials, require)
            .map(|(username, password)| BasicCredentials::new(username, password))
    };
    let vonage = secret(&flags.vonage_signature_secret).map(|secret| VonageKey {
        secret,
        method: flags.vonage_signature_method,
    });
    let telnyx = Signing::from_key(flags.telnyx_public_key.clone(), require);
    let sinch = secret(&flags.sinch_webhook_secret).map(SinchKey::Hmac);
    let bandwidth = basic(&flags.bandwidth_username, &flags.bandwidth_password);
    let infobip = basic(&flags.infobip_username, &flags.infobip_password);
    let mut providers = Providers::default()
        .with(
            "--twilio-auth-token",
            Twilio::new(secret(&flags.twilio_auth_token)),
        )
        .with("--telnyx-public-key", Telnyx::new(telnyx))
        .with("--vonage-signature-secret", Vonage::new(vonage))
        .with(
            "--plivo-auth-token",
            Plivo::new(secret(&flags.plivo_auth_token)),
        )
        .with("--bandwidth-password", Bandwidth::new(bandwidth))
        .with("--sinch-webhook-secret", Sinch::new(sinch))
        .with(
            "--messagebird-signing-key",
            MessageBird::new(secret(&flags.messagebird_signing_key)),
        )
        .with("--infobip-password", Infobip::new(infobip));
    for path in &flags.generic_config {
        let config = read_generic_config(path)?;
        let generic =
            Generic::new(config, require).map_err(|error| ProviderConfigError::Invalid {
                path: path.display().to_string(),
                message: error.to_string(),
            })?;
        if providers.registry.get(generic.name()).is_some() {
            return Err(ProviderConfigError::NameTaken {
                path: path.display().to_string(),
                name: generic.name().to_owned(),
            });
        }
        providers = providers.with("--generic-config", generic);
    }
    Ok(providers)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::Config;

    fn modes(args: &[&str]) -> Vec<(&'static str, SigningMode)> {
        let config = Config::try_parse_from(args).expect("valid flags");
        providers(&config.providers)
            .expect("valid providers")
            .registry
            .iter()
            .map(|provider| (provider.name(), provider.signing_mode()))
            .collect()
    }

    #[test]
    fn each_key_turns_verification_on_for_its_provider() {
        let all = modes(&["ibiki-server"]);
        assert_eq!(all.len(), 8);
        assert!(
            all.iter()
                .all(|(_, mode)| *mode == SigningMode::AcceptUnsigned)
        );
        let with_twilio = modes(&["ibiki-server", "--twilio-auth-token", "t"]);
        for (name, mode) in with_twilio {
            let expected = if name == "twilio" {
                SigningMode::Verify
            } else {
                SigningMode::AcceptUnsigned
            };
            assert_eq!(mode, expected, "{name}");
        }
        let required = modes(&[
            "ibiki-server",
            "--require-signatures",
            "--plivo-auth-token",
            "p",
        ]);
        for (name, mode) in required {
            let expected = if name == "plivo" {
                SigningMode::Verify
            } else {
                SigningMode::RefuseUnsigned
            };
            assert_eq!(mode, expected, "{name}");
        }
    }

    fn fixture(name: &str) -> PathBuf {
        ibiki_providers::testing::fixture_path(&format!("generic/{name}"))
    }

    #[test]
    fn the_generic_gateway_is_read_from_toml_or_json() {
        let toml = read_generic_config(&fixture("kestrel.toml")).expect("TOML");
        let json = read_generic_config(&fixture("kestrel.json")).expect("JSON");
        assert_eq!(toml, json);
        let flags = ProviderFlags {
            generic_config: vec![fixture("kestrel.toml")],
            ..ProviderFlags::default()
        };
        let providers = providers(&flags).expect("valid");
        let generic = providers.registry.get("generic").expect("served");
        assert_eq!(generic.signing_mode(), SigningMode::Verify);
        assert_eq!(providers.key_flag("generic"), Some("--generic-config"));
    }

    #[test]
    fn a_bad_generic_file_is_refused_without_quoting_it() {
        let dir = std::env::temp_dir().join(format!("ibiki-generic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("bad.toml");
        let text = std::fs::read_to_string(fixture("kestrel.toml")).expect("fixture");
        let broken = text.replace(
            "secret = \"kestrel-webhook-secret\"",
            "secret = \"kestrel-webhook-secret",
        );
        std::fs::write(&path, broken).expect("written");
        let error = read_generic_config(&path).expect_err("refused").to_string();
        assert!(!error.contains("kestrel-webhook-secret"), "{error}");
        assert!(error.contains("line 19"), "{error}");
        let flags = ProviderFlags {
            generic_config: vec![dir.join("missing.toml")],
            ..ProviderFlags::default()
        };
        assert!(matches!(
            providers(&flags),
            Err(ProviderConfigError::Read { .. })
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn every_provider_names_its_key_flag() {
        let flags = ProviderFlags {
            generic_config: vec![fixture("kestrel.json")],
            ..ProviderFlags::default()
        };
        let providers = providers(&flags).expect("valid");
        for provider in providers.registry.iter() {
            let flag = providers.key_flag(provider.name()).expect("a key flag");
            assert!(
                flag.starts_with(&format!("--{}-", provider.name())),
                "{flag}"
            );
        }
    }
}
