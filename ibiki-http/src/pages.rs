//! The dashboard: plain HTML, one stylesheet and a few JavaScript modules,
//! embedded in the binary (no build step) and served with a strict
//! Content-Security-Policy.
//!
//! The pages hold no data: they sign in with the admin token (kept in the
//! tab's `sessionStorage`, sent as the bearer token) and call the same
//! `/api` routes as any client. Reply bodies and senders are written by
//! strangers, so the scripts only ever insert them as text; the policy
//! backs that up by refusing inline scripts and styles, and Trusted Types
//! make the HTML-parsing DOM sinks (`innerHTML` and the like) throw.

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The policy of every page and asset: only this origin's own files, no
/// inline code, no plugins, never framed, no `<base>`, forms only to this
/// origin, and no string-to-HTML DOM sinks.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'; \
    require-trusted-types-for 'script'; trusted-types 'none'";

/// One embedded file.
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($file:literal, $content_type:literal) => {
        Asset {
            content_type: $content_type,
            body: include_bytes!(concat!("../assets/", $file)),
        }
    };
}

const CLIENTS: Asset = asset!("clients.html", "text/html; charset=utf-8");
const DELIVERIES: Asset = asset!("deliveries.html", "text/html; charset=utf-8");
const HELD: Asset = asset!("held.html", "text/html; charset=utf-8");
const INBOX: Asset = asset!("inbox.html", "text/html; charset=utf-8");
const CSS: Asset = asset!("app.css", "text/css; charset=utf-8");
const ICON: Asset = asset!("icon.svg", "image/svg+xml");
const API_JS: Asset = asset!("api.js", "text/javascript; charset=utf-8");
const CLIENTS_JS: Asset = asset!("clients.js", "text/javascript; charset=utf-8");
const DELIVERIES_JS: Asset = asset!("deliveries.js", "text/javascript; charset=utf-8");
const HELD_JS: Asset = asset!("held.js", "text/javascript; charset=utf-8");
const INBOX_JS: Asset = asset!("inbox.js", "text/javascript; charset=utf-8");

/// The dashboard's routes: `/` (clients), `/held`, `/inbox/{userId}`,
/// `/clients/{userId}/deliveries` and `/assets/*`. No state: every page
/// reads through the API.
pub(crate) fn router() -> Router {
    Router::new()
        .route("/", get(|| serve(&CLIENTS)))
        .route("/held", get(|| serve(&HELD)))
        .route("/inbox/{user_id}", get(|| serve(&INBOX)))
        .route("/clients/{user_id}/deliveries", get(|| serve(&DELIVERIES)))
        .route("/assets/app.css", get(|| serve(&CSS)))
        .route("/assets/icon.svg", get(|| serve(&ICON)))
        .route("/assets/api.js", get(|| serve(&API_JS)))
        .route("/assets/clients.js", get(|| serve(&CLIENTS_JS)))
        .route("/assets/deliveries.js", get(|| serve(&DELIVERIES_JS)))
        .route("/assets/held.js", get(|| serve(&HELD_JS)))
        .route("/assets/inbox.js", get(|| serve(&INBOX_JS)))
}

async fn serve(asset: &'static Asset) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (
                CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
            ),
            (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
            (X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            // Embedded in the binary: a new version is a new server, so the
            // browser checks back each time instead of keeping a stale copy.
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `html` has an ` on<name>=` attribute.
    fn has_event_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_ascii_alphabetic())
                    .len();
            name > 0 && rest[name..].starts_with('=')
        })
    }

    #[test]
    fn event_handlers_are_found() {
        assert!(has_event_handler("<img src=x onerror=alert(1)>"));
        assert!(!has_event_handler("<p>It stays in this tab only.</p>"));
    }

    /// What the security review relies on, checked on the embedded files:
    /// no inline script or style, no HTML-parsing sink in the scripts.
    #[test]
    fn the_files_keep_to_the_policy() {
        for page in [&CLIENTS, &DELIVERIES, &HELD, &INBOX] {
            let html = std::str::from_utf8(page.body).expect("UTF-8");
            assert!(!html.contains("<style"), "inline style element");
            assert!(!html.contains(" style="), "inline style attribute");
            assert!(!has_event_handler(html), "inline event handler");
            for script in html.split("<script").skip(1) {
                assert!(
                    script
                        .trim_start()
                        .starts_with("type=\"module\" src=\"/assets/"),
                    "inline script: {script}"
                );
            }
        }
        for script in [&API_JS, &CLIENTS_JS, &DELIVERIES_JS, &HELD_JS, &INBOX_JS] {
            let js = std::str::from_utf8(script.body).expect("UTF-8");
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "localStorage",
                "document.cookie",
            ] {
                assert!(!js.contains(sink), "{sink} in a script");
            }
        }
    }
}
