//! A local HTTP receiver that records what it is sent and answers as each
//! path asks, and the claims that forward to it.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ibiki_core::{
    AddressPolicy, ClientId, Delivery, DeliveryKind, EndpointSecret, EndpointSecrets, EndpointUrl,
    ForwardClaim, InboundReply, Lease, Normalizer, RawReply, StoredReply,
};

pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// How a path answers its `n`th request (from 0).
type Answer = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

/// An answer: status, body, and a delay before it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
    pub delay: Duration,
    pub location: Option<String>,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT),
            body: String::new(),
            delay: Duration::ZERO,
            location: None,
        }
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = body.into();
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn redirect(location: &str) -> Self {
        let mut reply = Self::status(302);
        reply.location = Some(location.to_owned());
        reply
    }
}

#[derive(Clone, Default)]
struct Shared {
    requests: Arc<Mutex<Vec<Request>>>,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
}

/// The receiver: answers `204` on any path it was not told about.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Receiver {
    pub async fn start() -> Result<Self, std::io::Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared::default();
        let router = axum::Router::new()
            .fallback(receive)
            .with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { addr, shared })
    }

    /// `path` answers its `n`th request with `answer(n)`.
    pub fn answer(&self, path: &str, answer: impl Fn(usize) -> Reply + Send + Sync + 'static) {
        if let Ok(mut answers) = self.shared.answers.lock() {
            answers.insert(path.to_owned(), Arc::new(answer));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    pub fn requests_to(&self, path: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

async fn receive(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let n = match shared.requests.lock() {
        Ok(mut requests) => {
            let n = requests.iter().filter(|r| r.path == path).count();
            requests.push(Request {
                path: path.clone(),
                headers,
                body,
            });
            n
        }
        Err(_) => 0,
    };
    let answer = shared
        .answers
        .lock()
        .ok()
        .and_then(|answers| answers.get(&path).cloned());
    let reply = answer.map_or_else(|| Reply::status(204), |answer| answer(n));
    tokio::time::sleep(reply.delay).await;
    let mut response = (reply.status, reply.body).into_response();
    if let Some(location) = reply.location.and_then(|l| l.parse().ok()) {
        response.headers_mut().insert("location", location);
    }
    response
}

pub fn secret() -> EndpointSecret {
    EndpointSecret::generate().expect("randomness")
}

pub fn stored_reply(id: u64) -> StoredReply {
    let at = time::OffsetDateTime::now_utc();
    let raw = RawReply {
        message_id: Some("SM1"),
        from: "+15005550006",
        to: "+14155550100",
        body: "Yes ✓",
    };
    let reply = InboundReply::new(&Normalizer::new(), raw, at).expect("a valid reply");
    StoredReply::new(
        id,
        reply,
        Delivery {
            kind: DeliveryKind::Routed,
            at,
        },
    )
}

pub fn claim(url: &str, secrets: EndpointSecrets) -> ForwardClaim {
    ForwardClaim {
        lease: Lease {
            forward: 1,
            attempt: 1,
        },
        client: ClientId::new("client-1").expect("a valid id"),
        url: EndpointUrl::parse(url, AddressPolicy::AllowPrivate).expect("a valid URL"),
        secrets,
        reply: stored_reply(7),
    }
}

pub fn one_secret(secret: &EndpointSecret) -> EndpointSecrets {
    EndpointSecrets {
        current: secret.clone(),
        previous: None,
    }
}
