//! What every forwarded reply must be: signed, sent under its reply's
//! `webhook-id` with the same bytes on every attempt, and its body the
//! message exactly as the client's inbox lists it.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::receiver::Received;

/// How many requests each reply may have taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Times {
    /// One each.
    Once,
    /// At least one each.
    AtLeastOnce,
}

/// Asserts that `received` (the requests to `user`'s endpoint) forwarded
/// exactly the replies of `inbox` (`user`'s whole inbox), each `times`:
/// every signature verified, every attempt of a reply under its id
/// (`msg_<id>`) with byte-identical bodies, each body the
/// `reply.received` event of the inbox's message. Returns the requests by
/// `webhook-id`.
#[track_caller]
pub(crate) fn assert_forwarded<'a>(
    received: &'a [Received],
    inbox: &[Value],
    user: &str,
    times: Times,
) -> BTreeMap<&'a str, Vec<&'a Received>> {
    for request in received {
        if let Err(e) = &request.verified {
            panic!("{}: the signature did not verify: {e}", request.id);
        }
    }
    let mut by_id: BTreeMap<&str, Vec<&Received>> = BTreeMap::new();
    for request in received {
        by_id.entry(request.id.as_str()).or_default().push(request);
    }
    let expected: BTreeMap<String, &Value> = inbox
        .iter()
        .map(|message| (format!("msg_{}", message["id"]), message))
        .collect();
    let unknown: Vec<&&str> = by_id
        .keys()
        .filter(|id| !expected.contains_key(**id))
        .collect();
    assert!(unknown.is_empty(), "ids of no inbox message: {unknown:?}");
    for (id, message) in &expected {
        let attempts = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("{id} never forwarded: {message}"));
        if times == Times::Once {
            assert_eq!(attempts.len(), 1, "{id} forwarded more than once");
        }
        let first = attempts[0];
        for again in &attempts[1..] {
            assert_eq!(
                again.body, first.body,
                "{id}: the body changed between attempts"
            );
        }
        let event = first.json();
        assert_eq!(event["type"], "reply.received", "{event}");
        assert_eq!(event["timestamp"], message["delivery"]["at"], "{event}");
        let mut data = event["data"].clone();
        let data_fields = data.as_object_mut().expect("data is an object");
        assert_eq!(
            data_fields.remove("userId"),
            Some(Value::from(user)),
            "{event}"
        );
        assert_eq!(&data, *message, "{id}: data is not the inbox's message");
    }
    by_id
}
