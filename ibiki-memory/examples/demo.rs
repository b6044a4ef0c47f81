//! Assigns numbers to two clients, receives replies to each of them and to a
//! number nobody owns yet, assigns that number, and prints where every reply
//! went.

use ibiki_core::{
    AssignmentStore, ClientId, InboundReply, Normalizer, PageRequest, PhoneNumbersInput, RawReply,
    ReplyStore,
};
use ibiki_memory::MemoryStore;
use time::OffsetDateTime;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let normalizer = Normalizer::new().with_default_region("US".parse()?);
    let store = MemoryStore::new();
    let (acme, globex) = (ClientId::new("acme")?, ClientId::new("globex")?);

    for (client, numbers) in [
        (&acme, "+1 415 555 0100, (415) 555-0101, 415.555.0102"),
        (&globex, "+44 20 7946 0958"),
    ] {
        let numbers = normalizer.normalize_list(&PhoneNumbersInput::from(numbers))?;
        let change = store.replace_numbers(client, &numbers).await?;
        println!("assigned {client}: {:?}", shown(&change.numbers));
    }

    let refused = store.add_numbers(&globex, &["+14155550101".parse()?]).await;
    println!(
        "globex taking acme's +14155550101: {}",
        refused.map_or_else(|e| e.to_string(), |_| "ok".into())
    );

    let replies = [
        ("SM1", "+14155550100", "Yes please"),
        ("SM2", "+1 (415) 555-0102", "Call me"),
        ("SM3", "+442079460958", "Cheers"),
        ("SM4", "+14155550199", "Who is this?"),
        ("SM1", "+14155550100", "Yes please"),
    ];
    for (id, to, body) in replies {
        let raw = RawReply {
            message_id: Some(id),
            from: "+15005550006",
            to,
            body,
        };
        let reply = InboundReply::new(&normalizer, raw, OffsetDateTime::now_utc())?;
        println!(
            "reply {id} to {to:<18} -> {:?}",
            store.receive(reply).await?
        );
    }

    let change = store.add_numbers(&acme, &["+14155550199".parse()?]).await?;
    println!(
        "assigned +14155550199 to acme: released {} held reply",
        change.released
    );

    for client in [&acme, &globex] {
        let inbox = store.inbox(client, &PageRequest::first(100)).await?;
        let bodies: Vec<&str> = inbox.items.iter().map(|r| r.body.as_str()).collect();
        println!("inbox of {client}: {bodies:?}");
    }
    Ok(())
}

fn shown(numbers: &[ibiki_core::PhoneNumber]) -> Vec<String> {
    numbers.iter().map(ToString::to_string).collect()
}
