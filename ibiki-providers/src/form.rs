//! `application/x-www-form-urlencoded` bodies and query strings, kept in order
//! with their duplicates: signature schemes sign every pair as sent.

use serde::de::DeserializeOwned;

use super::error::WebhookError;

/// Decoded form pairs, in the order sent, duplicates kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// Decodes a form body or query string (`+` is a space, `%XX` a byte;
    /// bytes that are not UTF-8 become U+FFFD).
    pub fn parse(bytes: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(bytes)
                .map(|(name, value)| (name.into_owned(), value.into_owned()))
                .collect(),
        }
    }

    /// A form of these pairs (a JSON object's fields, for instance).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Self {
        Self { pairs }
    }

    /// Every pair, in the order sent.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Every pair but those named `name`.
    pub fn without(&self, name: &str) -> Self {
        Self {
            pairs: self
                .pairs
                .iter()
                .filter(|(n, _)| n != name)
                .cloned()
                .collect(),
        }
    }

    /// Pairs sorted by name, then value (the order URL-signed schemes use).
    pub fn sorted(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    /// Decodes the pairs into `T` (string fields), the first value of each
    /// name winning; `what` names the body in errors.
    pub fn deserialize<T: DeserializeOwned>(&self, what: &'static str) -> Result<T, WebhookError> {
        let mut seen = std::collections::HashSet::new();
        let firsts = self
            .pairs
            .iter()
            .filter(|(name, _)| seen.insert(name.as_str()));
        // serde_urlencoded reads `Option` fields and fails on duplicates:
        // hand it each name once.
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(firsts)
            .finish();
        serde_urlencoded::from_str(&encoded).map_err(|error| WebhookError::malformed(what, error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Sms {
        #[serde(rename = "To")]
        to: String,
        #[serde(rename = "Body")]
        body: Option<String>,
    }

    #[test]
    fn pairs_keep_order_duplicates_and_decoding() {
        let form = Form::parse(b"To=%2B1415&Body=hi+there&Body=again&Empty=");
        assert_eq!(form.get("To"), Some("+1415"));
        assert_eq!(form.get("Body"), Some("hi there"));
        assert_eq!(form.pairs().len(), 4);
        assert_eq!(
            form.sorted(),
            [
                ("Body", "again"),
                ("Body", "hi there"),
                ("Empty", ""),
                ("To", "+1415")
            ]
        );
        assert!(!form.without("Body").contains("Body"));
        let sms: Sms = form.deserialize("form body").expect("decodes");
        assert_eq!(
            (sms.to.as_str(), sms.body.as_deref()),
            ("+1415", Some("hi there"))
        );
    }

    #[test]
    fn missing_required_fields_are_malformed() {
        let error = Form::parse(b"Body=x")
            .deserialize::<Sms>("form body")
            .expect_err("refused");
        assert_eq!(error.code(), "malformed_body");
        assert!(error.to_string().contains("To"), "{error}");
    }

    #[test]
    fn any_bytes_parse() {
        let form = Form::parse(b"%ff=%zz&&=&a");
        assert_eq!(form.get("\u{fffd}"), Some("%zz"));
        assert_eq!(form.get("a"), Some(""));
    }
}
