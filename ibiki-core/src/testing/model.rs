//! The reference model: the contract of [`ReplyStore`](crate::ReplyStore)
//! written as plain data structures, with nothing to get wrong but the rules.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::{
    AssignmentChange, Change, ClientId, Conflict, DeliveryKind, InboundReply, OwnershipChange,
    PhoneNumber, Receipt, StoredReply,
};

/// What a correct store holds. Its replies have id 0 and their delivery
/// `at` is their reception: the model cannot know the ids and instants a
/// store gives them, so compare with
/// [`comparable`](super::comparable) replies.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Owner of each assigned number.
    pub owners: BTreeMap<PhoneNumber, ClientId>,
    /// Each client's inbox, delivery order.
    pub inboxes: BTreeMap<ClientId, Vec<StoredReply>>,
    /// The held area, arrival order.
    pub held: Vec<StoredReply>,
    /// Each number's ownership changes, oldest first.
    pub history: BTreeMap<PhoneNumber, Vec<(ClientId, OwnershipChange)>>,
    seen: HashSet<String>,
}

impl Model {
    /// The client's numbers, ascending.
    pub fn numbers_of(&self, client: &ClientId) -> Vec<PhoneNumber> {
        self.owners
            .iter()
            .filter(|(_, c)| *c == client)
            .map(|(n, _)| *n)
            .collect()
    }

    /// Applies an assignment change; `Err` carries the conflicts of a refused one.
    pub fn change(
        &mut self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, Vec<Conflict>> {
        let wanted: BTreeSet<PhoneNumber> = numbers.iter().copied().collect();
        let current: BTreeSet<PhoneNumber> = self.numbers_of(client).into_iter().collect();
        let (added, removed): (Vec<_>, Vec<_>) = match change {
            Change::Replace => (
                wanted.difference(&current).copied().collect(),
                current.difference(&wanted).copied().collect(),
            ),
            Change::Add => (wanted.difference(&current).copied().collect(), Vec::new()),
            Change::Remove => (Vec::new(), current.intersection(&wanted).copied().collect()),
        };
        let conflicts: Vec<Conflict> = added
            .iter()
            .filter_map(|n| {
                let owner = self.owners.get(n)?;
                Some(Conflict {
                    phone_number: *n,
                    owner: owner.clone(),
                })
            })
            .collect();
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
        for n in &removed {
            self.owners.remove(n);
            self.record(*n, client, OwnershipChange::Unassigned);
        }
        for n in &added {
            self.owners.insert(*n, client.clone());
            self.record(*n, client, OwnershipChange::Assigned);
        }
        let released = self.release(client, &added);
        Ok(AssignmentChange {
            client: client.clone(),
            numbers: self.numbers_of(client),
            added,
            removed,
            released,
        })
    }

    fn record(&mut self, number: PhoneNumber, client: &ClientId, change: OwnershipChange) {
        let events = self.history.entry(number).or_default();
        events.push((client.clone(), change));
    }

    fn release(&mut self, client: &ClientId, added: &[PhoneNumber]) -> u64 {
        let (moving, staying): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|r| r.to.number().is_some_and(|n| added.contains(&n)));
        self.held = staying;
        let released = moving.len() as u64;
        let moving = moving.into_iter().map(|mut reply| {
            reply.delivery.kind = DeliveryKind::Released;
            reply
        });
        if released > 0 {
            self.inboxes
                .entry(client.clone())
                .or_default()
                .extend(moving);
        }
        released
    }

    /// Records a reply.
    pub fn receive(&mut self, reply: InboundReply) -> Receipt {
        if let Some(id) = &reply.message_id {
            if !self.seen.insert(id.as_str().to_owned()) {
                return Receipt::Duplicate;
            }
        }
        let owner = reply.to.number().and_then(|n| self.owners.get(&n)).cloned();
        // The model has no clock: `comparable` sets a store's delivery
        // instants to the reception too.
        let received = reply.received_at;
        match owner {
            Some(client) => {
                self.inboxes
                    .entry(client.clone())
                    .or_default()
                    .push(StoredReply::on_receipt(0, reply, true, received));
                Receipt::Routed(client)
            }
            None => {
                self.held
                    .push(StoredReply::on_receipt(0, reply, false, received));
                Receipt::Held
            }
        }
    }

    /// Every client that owns a number or has an inbox.
    pub fn clients(&self) -> BTreeSet<ClientId> {
        self.owners
            .values()
            .chain(self.inboxes.keys())
            .cloned()
            .collect()
    }
}
