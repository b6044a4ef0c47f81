//! The request body of a forward: the same bytes on every attempt.

use ibiki_core::{ClientId, StoredReply};
use serde::Serialize;
use time::OffsetDateTime;

/// The event type every forwarded reply carries (`"type"`).
pub const EVENT_TYPE: &str = "reply.received";

/// The body of the request that forwards `reply` to `client`'s endpoint,
/// byte-identical on every attempt:
///
/// ```json
/// {"type":"reply.received","timestamp":"<when the reply reached the inbox>","data":{…,"userId":"<client>"}}
/// ```
///
/// `timestamp` is the reply's [`delivery.at`](ibiki_core::Delivery::at) in
/// RFC 3339; `data` is the reply exactly as the inbox lists it (what
/// `GET /api/clients/{userId}/messages` returns for each message), with the
/// client's id added as `userId`. Fields come in a fixed order.
///
/// ```
/// use ibiki_core::{ClientId, Delivery, DeliveryKind, InboundReply, Normalizer, RawReply, StoredReply};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let at = time::OffsetDateTime::from_unix_timestamp(1_704_067_200)?;
/// let raw = RawReply { message_id: None, from: "+15005550006", to: "+14155550100", body: "Yes" };
/// let reply = InboundReply::new(&Normalizer::new(), raw, at)?;
/// let stored = StoredReply::new(7, reply, Delivery { kind: DeliveryKind::Routed, at });
/// let body = ibiki_forward::render_body(&ClientId::new("client-42")?, &stored)?;
/// let json: serde_json::Value = serde_json::from_slice(&body)?;
/// assert_eq!(json["type"], "reply.received");
/// assert_eq!(json["timestamp"], "2024-01-01T00:00:00Z");
/// assert_eq!(json["data"]["body"], "Yes");
/// assert_eq!(json["data"]["userId"], "client-42");
/// # Ok(()) }
/// ```
///
/// # Errors
///
/// Only when an instant cannot be written in RFC 3339 (a year outside
/// 0000–9999), which no store's clock produces.
pub fn render_body(client: &ClientId, reply: &StoredReply) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Event {
        kind: EVENT_TYPE,
        timestamp: reply.delivery.at,
        data: Data {
            reply,
            user_id: client,
        },
    })
}

/// The `webhook-id` of every request forwarding `reply`: `msg_<reply id>`,
/// the same on every attempt, so that a receiver can drop duplicates.
pub fn webhook_id(reply: &StoredReply) -> String {
    format!("msg_{}", reply.id)
}

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    data: Data<'a>,
}

#[derive(Serialize)]
struct Data<'a> {
    #[serde(flatten)]
    reply: &'a StoredReply,
    #[serde(rename = "userId")]
    user_id: &'a ClientId,
}

#[cfg(test)]
mod tests {
    use ibiki_core::{Delivery, DeliveryKind, InboundReply, MessageId, Normalizer, RawReply};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn reply() -> Result<StoredReply, Box<dyn std::error::Error>> {
        let received = OffsetDateTime::from_unix_timestamp(1_704_067_200)?;
        let raw = RawReply {
            message_id: Some("SM1"),
            from: "+15005550006",
            to: "+14155550100",
            body: "Yes, \"quoted\" ✓",
        };
        let reply = InboundReply::new(&Normalizer::new(), raw, received)?;
        let delivery = Delivery {
            kind: DeliveryKind::Released,
            at: received + time::Duration::milliseconds(1500),
        };
        Ok(StoredReply::new(42, reply, delivery))
    }

    #[test]
    fn the_body_is_the_same_bytes_every_time() -> TestResult {
        let (client, reply) = (ClientId::new("client-1")?, reply()?);
        let first = render_body(&client, &reply)?;
        assert_eq!(first, render_body(&client, &reply)?);
        assert_eq!(first, render_body(&client, &reply.clone())?);
        Ok(())
    }

    #[test]
    fn data_is_the_inbox_reply_plus_the_user_id() -> TestResult {
        let (client, reply) = (ClientId::new("client-1")?, reply()?);
        let body: serde_json::Value = serde_json::from_slice(&render_body(&client, &reply)?)?;
        assert_eq!(body["type"], "reply.received");
        assert_eq!(body["timestamp"], "2024-01-01T00:00:01.5Z");
        let mut data = body["data"].clone();
        let user_id = data
            .as_object_mut()
            .and_then(|data| data.remove("userId"))
            .ok_or("no userId")?;
        assert_eq!(user_id, "client-1");
        assert_eq!(data, serde_json::to_value(&reply)?);
        Ok(())
    }

    #[test]
    fn fields_come_in_a_fixed_order() -> TestResult {
        let (client, reply) = (ClientId::new("client-1")?, reply()?);
        let text = String::from_utf8(render_body(&client, &reply)?)?;
        let inbox = serde_json::to_string(&reply)?;
        let data = format!("{},\"userId\":\"client-1\"}}", &inbox[..inbox.len() - 1]);
        assert_eq!(
            text,
            format!(
                "{{\"type\":\"reply.received\",\"timestamp\":\"2024-01-01T00:00:01.5Z\",\"data\":{data}}}"
            )
        );
        Ok(())
    }

    #[test]
    fn the_webhook_id_names_the_reply() -> TestResult {
        let reply = reply()?;
        assert_eq!(webhook_id(&reply), "msg_42");
        assert_eq!(reply.message_id, Some(MessageId::new("SM1")?));
        Ok(())
    }
}
