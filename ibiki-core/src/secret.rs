//! Secrets: admin tokens, webhook keys and database URLs, kept out of logs.

use std::fmt;
use std::str::FromStr;

/// A non-empty secret string that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret's text, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// An empty secret: almost always an unset variable in a deployment script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmptySecret;

impl fmt::Display for EmptySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must not be empty")
    }
}

impl std::error::Error for EmptySecret {}

impl FromStr for Secret {
    type Err = EmptySecret;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(EmptySecret);
        }
        Ok(Self(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_and_never_show() {
        let secret: Secret = "t0ken".parse().expect("non-empty");
        assert_eq!(secret.expose(), "t0ken");
        assert!(!format!("{secret:?}").contains("t0ken"));
        assert_eq!("".parse::<Secret>(), Err(EmptySecret));
    }
}
