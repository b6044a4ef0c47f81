//! HTTP Basic credentials, as Bandwidth and Infobip present them.

use http::{HeaderMap, HeaderValue};
use ibiki_providers::BasicCredentials;
use ibiki_providers::WebhookError;
use proptest::prelude::*;

const AUTHORIZATION_HEADER: &str = "authorization";

fn credentials() -> BasicCredentials {
    BasicCredentials::new("Aladdin", "open sesame".parse().expect("secret"))
}

fn headers(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        AUTHORIZATION_HEADER,
        HeaderValue::from_str(value).expect("value"),
    );
    headers
}

#[test]
fn rfc_7617_example_verifies() {
    // RFC 7617, section 2: Aladdin / open sesame.
    assert_eq!(
        credentials().header_value(),
        "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    );
    credentials()
        .verify(&headers("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="))
        .expect("valid");
    credentials()
        .verify(&headers("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="))
        .expect("scheme is case-insensitive");
}

#[test]
fn other_credentials_are_refused_by_kind() {
    let wrong = BasicCredentials::new("Aladdin", "open barley".parse().expect("secret"));
    assert!(matches!(
        credentials().verify(&headers(&wrong.header_value())),
        Err(WebhookError::BadSignature)
    ));
    let other_user = BasicCredentials::new("Ali", "open sesame".parse().expect("secret"));
    assert!(matches!(
        credentials().verify(&headers(&other_user.header_value())),
        Err(WebhookError::BadSignature)
    ));
    assert!(matches!(
        credentials().verify(&HeaderMap::new()),
        Err(WebhookError::MissingSignature { .. })
    ));
    for malformed in [
        "Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
        "Basic !!!",
        "Basic",
        "Basic QWxhZGRpbg==",
    ] {
        assert!(
            matches!(
                credentials().verify(&headers(malformed)),
                Err(WebhookError::MalformedSignature { .. })
            ),
            "{malformed}"
        );
    }
}

#[test]
fn the_password_never_shows() {
    assert!(!format!("{:?}", credentials()).contains("sesame"));
}

proptest! {
    #[test]
    fn credentials_verify_iff_both_halves_match(
        username in "[^:]{0,20}",
        password in ".{1,20}",
        other in ".{1,20}",
    ) {
        let expected = BasicCredentials::new(
            username.clone(),
            password.parse().expect("non-empty"),
        );
        let sent = BasicCredentials::new(username, other.parse().expect("non-empty"));
        let result = expected.verify(&headers(&sent.header_value()));
        prop_assert_eq!(result.is_ok(), password == other);
    }
}
