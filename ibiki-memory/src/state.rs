//! The store's data, changed only under the store's lock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use foldhash::fast::RandomState;
use ibiki_core::{
    AssignmentChange, Change, ClientId, ClientSummary, Conflict, Cursor, Delivery, DeliveryKind,
    HeldTarget, HistoryEvent, InboundReply, MessageId, Page, PageRequest, PhoneNumber, Receipt,
    StoreError, StoredReply,
};
use time::OffsetDateTime;

use crate::history::History;

/// Index of a client in `State::clients`; clients are never removed, so an
/// index stays valid.
type ClientIdx = u32;

/// A number packed into 7 bytes (E.164 needs 50 bits) with alignment 1, so a
/// routing entry is 11 bytes instead of the 16 an aligned `(u64, u32)` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key([u8; 7]);

impl From<PhoneNumber> for Key {
    fn from(n: PhoneNumber) -> Self {
        let [a, b, c, d, e, f, g, _] = n.as_u64().to_le_bytes();
        Self([a, b, c, d, e, f, g])
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, 0]));
    }
}

/// A client index with alignment 1 (see [`Key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner([u8; 4]);

impl Owner {
    fn new(idx: ClientIdx) -> Self {
        Self(idx.to_le_bytes())
    }

    fn idx(self) -> usize {
        u32::from_le_bytes(self.0) as usize
    }
}
/// Key of a reply in `State::replies`: arrival order, never reused.
type ReplyIdx = u32;

#[derive(Debug)]
struct Client {
    id: ClientId,
    /// Ascending, so listing needs no sort and membership is a binary search.
    numbers: Vec<PhoneNumber>,
    /// Delivery order, from position `pruned` on. When each reply got here
    /// is its `delivery.at` (what pruning goes by).
    inbox: VecDeque<ReplyIdx>,
    /// How many replies were pruned from the front of the inbox: positions
    /// (and so cursors) keep counting from the first delivery.
    pruned: usize,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// The routing index: one lookup per reply.
    owners: HashMap<Key, Owner, RandomState>,
    clients: Vec<Client>,
    by_id: BTreeMap<ClientId, ClientIdx>,
    replies: HashMap<ReplyIdx, StoredReply, RandomState>,
    next_reply: ReplyIdx,
    message_ids: HashMap<MessageId, ReplyIdx, RandomState>,
    /// Held replies by arrival sequence.
    held: BTreeMap<u64, ReplyIdx>,
    /// Arrival sequences of the replies held for each number.
    held_by_number: HashMap<PhoneNumber, Vec<u64>, RandomState>,
    next_held: u64,
    /// Every ownership change of every number.
    history: History,
}

impl State {
    pub(crate) fn owner_of(&self, number: PhoneNumber) -> Option<&ClientId> {
        let owner = self.owners.get(&Key::from(number))?;
        self.clients.get(owner.idx()).map(|c| &c.id)
    }

    pub(crate) fn owner_at(&self, number: PhoneNumber, at: OffsetDateTime) -> Option<&ClientId> {
        let idx = self.history.owner_at(number, at)?;
        self.clients.get(idx as usize).map(|c| &c.id)
    }

    pub(crate) fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        self.history.page(number, page, |idx| {
            self.clients.get(idx as usize).map(|c| &c.id)
        })
    }

    pub(crate) fn numbers_of(&self, client: &ClientId) -> Vec<PhoneNumber> {
        self.client(client)
            .map(|c| c.numbers.clone())
            .unwrap_or_default()
    }

    fn client(&self, id: &ClientId) -> Option<&Client> {
        self.by_id
            .get(id)
            .and_then(|&idx| self.clients.get(idx as usize))
    }

    fn client_idx(&mut self, id: &ClientId) -> Result<ClientIdx, StoreError> {
        if let Some(&idx) = self.by_id.get(id) {
            return Ok(idx);
        }
        let idx = ClientIdx::try_from(self.clients.len())
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        self.clients.push(Client {
            id: id.clone(),
            numbers: Vec::new(),
            inbox: VecDeque::new(),
            pruned: 0,
        });
        self.by_id.insert(id.clone(), idx);
        Ok(idx)
    }

    /// Applies one assignment change atomically: checks every number first,
    /// then changes, then releases the replies held for the new numbers.
    pub(crate) fn change(
        &mut self,
        client: &ClientId,
        numbers: &[PhoneNumber],
        change: Change,
    ) -> Result<AssignmentChange, StoreError> {
        let mut wanted = numbers.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let current = self.numbers_of(client);
        let (added, removed) = match change {
            Change::Replace => (difference(&wanted, &current), difference(&current, &wanted)),
            Change::Add => (difference(&wanted, &current), Vec::new()),
            Change::Remove => (Vec::new(), intersection(&current, &wanted)),
        };
        self.check_conflicts(client, &added)?;
        if added.is_empty() && removed.is_empty() {
            return Ok(AssignmentChange {
                client: client.clone(),
                added,
                removed,
                numbers: current,
                released: 0,
            });
        }
        let idx = self.client_idx(client)?;
        let at = self.history.now();
        self.history.record(at, idx, &added, &removed);
        for &number in &removed {
            self.owners.remove(&Key::from(number));
        }
        for &number in &added {
            self.owners.insert(Key::from(number), Owner::new(idx));
        }
        let entry = &mut self.clients[idx as usize];
        entry.numbers.retain(|n| removed.binary_search(n).is_err());
        entry.numbers.extend_from_slice(&added);
        entry.numbers.sort_unstable();
        entry.numbers.shrink_to_fit();
        let numbers = entry.numbers.clone();
        let released = self.release(idx, &added, at);
        Ok(AssignmentChange {
            client: client.clone(),
            added,
            removed,
            numbers,
            released,
        })
    }

    fn check_conflicts(&self, client: &ClientId, added: &[PhoneNumber]) -> Result<(), StoreError> {
        let conflicts: Vec<Conflict> = added
            .iter()
            .filter_map(|&n| {
                let owner = self.owner_of(n)?;
                (owner != client).then(|| Conflict {
                    phone_number: n,
                    owner: owner.clone(),
                })
            })
            .collect();
        if conflicts.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Conflict(conflicts))
        }
    }

    /// Moves the replies held for `numbers` to the client's inbox, oldest
    /// first, released at `at`.
    fn release(&mut self, idx: ClientIdx, numbers: &[PhoneNumber], at: OffsetDateTime) -> u64 {
        let mut seqs: Vec<u64> = numbers
            .iter()
            .filter_map(|n| self.held_by_number.remove(n))
            .flatten()
            .collect();
        seqs.sort_unstable();
        let inbox = &mut self.clients[idx as usize].inbox;
        for seq in &seqs {
            if let Some(reply) = self.held.remove(seq) {
                inbox.push_back(reply);
                if let Some(stored) = self.replies.get_mut(&reply) {
                    stored.delivery = Delivery {
                        kind: DeliveryKind::Released,
                        at,
                    };
                }
            }
        }
        seqs.len() as u64
    }

    pub(crate) fn receive(&mut self, reply: InboundReply) -> Result<Receipt, StoreError> {
        if let Some(id) = &reply.message_id {
            if self.message_ids.contains_key(id) {
                return Ok(Receipt::Duplicate);
            }
        }
        let idx = self.next_reply;
        self.next_reply =
            ReplyIdx::try_from(u64::from(idx) + 1).map_err(|e| StoreError::Backend(Box::new(e)))?;
        if let Some(id) = &reply.message_id {
            self.message_ids.insert(id.clone(), idx);
        }
        let number = reply.to.number();
        let owner = number.and_then(|n| self.owners.get(&Key::from(n)).copied());
        let stored = StoredReply::on_receipt(u64::from(idx), reply, owner.is_some());
        self.replies.insert(idx, stored);
        if let Some(owner) = owner {
            let entry = &mut self.clients[owner.idx()];
            entry.inbox.push_back(idx);
            return Ok(Receipt::Routed(entry.id.clone()));
        }
        let seq = self.next_held;
        self.next_held += 1;
        self.held.insert(seq, idx);
        if let Some(n) = number {
            self.held_by_number.entry(n).or_default().push(seq);
        }
        Ok(Receipt::Held)
    }

    /// Moves held reply `id` to the end of the target's inbox, re-routed now.
    pub(crate) fn deliver_held(
        &mut self,
        id: u64,
        target: &HeldTarget,
    ) -> Result<StoredReply, StoreError> {
        let idx = ReplyIdx::try_from(id)
            .ok()
            .filter(|i| self.replies.contains_key(i))
            .ok_or(StoreError::NoSuchReply(id))?;
        // An operator's action: a scan of the held area is fine.
        let seq = self
            .held
            .iter()
            .find(|&(_, &r)| r == idx)
            .map(|(&seq, _)| seq)
            .ok_or(StoreError::NotHeld(id))?;
        let client = match target {
            HeldTarget::Client(client) => self.client_idx(client)?,
            HeldTarget::Number(n) => match self.owners.get(&Key::from(*n)) {
                Some(owner) => owner.idx() as ClientIdx,
                None => return Err(StoreError::Unowned(*n)),
            },
        };
        self.held.remove(&seq);
        let Some(reply) = self.replies.get_mut(&idx) else {
            return Err(StoreError::NoSuchReply(id));
        };
        if let Some(seqs) = reply
            .to
            .number()
            .and_then(|n| self.held_by_number.get_mut(&n))
        {
            seqs.retain(|&s| s != seq);
        }
        reply.delivery = Delivery {
            kind: DeliveryKind::Rerouted,
            at: self.history.now(),
        };
        self.clients[client as usize].inbox.push_back(idx);
        Ok(reply.clone())
    }

    pub(crate) fn inbox(
        &self,
        client: &ClientId,
        page: &PageRequest,
    ) -> Result<Page<StoredReply>, StoreError> {
        let after = match page.after() {
            None => 0,
            Some(cursor) => position(cursor).ok_or(StoreError::InvalidCursor)?,
        };
        let Some(client) = self.client(client) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let (inbox, pruned) = (&client.inbox, client.pruned);
        // A cursor before the pruned positions starts at the first one kept.
        let start = after.saturating_sub(pruned).min(inbox.len());
        let end = (start + page.limit()).min(inbox.len());
        let items = inbox
            .range(start..end)
            .filter_map(|r| self.replies.get(r).cloned())
            .collect();
        Ok(Page {
            items,
            next: (end > start).then(|| Cursor::from_position((pruned + end) as u64)),
        })
    }

    pub(crate) fn held(&self, page: &PageRequest) -> Result<Page<StoredReply>, StoreError> {
        let start = match page.after() {
            None => 0,
            Some(cursor) => cursor.position().ok_or(StoreError::InvalidCursor)?,
        };
        let slice: Vec<(u64, ReplyIdx)> = self
            .held
            .range(start..)
            .take(page.limit())
            .map(|(&s, &r)| (s, r))
            .collect();
        let next = slice.last().map(|&(seq, _)| Cursor::from_position(seq + 1));
        let items = slice
            .into_iter()
            .filter_map(|(_, r)| self.replies.get(&r).cloned())
            .collect();
        Ok(Page { items, next })
    }

    /// How many replies are held: the held area's size, no reply read.
    pub(crate) fn held_count(&self) -> u64 {
        self.held.len() as u64
    }

    /// Deletes up to `limit` replies delivered before `before`, oldest
    /// first, keeping each inbox's last; forgets their message ids.
    pub(crate) fn prune_delivered(&mut self, before: OffsetDateTime, limit: u32) -> u64 {
        // What may go is a prefix of each inbox, so that positions keep
        // counting. Each candidate is keyed by the latest delivery up to it:
        // an inbox's keys never decrease (a routed reply is delivered at its
        // reception time, which need not follow the inbox order), so the
        // oldest `limit` keys are a prefix of every inbox.
        let mut candidates: Vec<(OffsetDateTime, usize)> = Vec::new();
        for (idx, client) in self.clients.iter().enumerate() {
            let all_but_last = client.inbox.len().saturating_sub(1);
            let ats = client
                .inbox
                .iter()
                .take(all_but_last)
                .map(|r| self.replies.get(r).map(|s| s.delivery.at));
            candidates.extend(
                ats.scan(OffsetDateTime::UNIX_EPOCH, |latest, at| {
                    *latest = (*latest).max(at?);
                    Some(*latest)
                })
                .take_while(|&at| at < before)
                .map(|at| (at, idx)),
            );
        }
        candidates.sort_unstable();
        candidates.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let mut per_client: BTreeMap<usize, usize> = BTreeMap::new();
        for &(_, idx) in &candidates {
            *per_client.entry(idx).or_default() += 1;
        }
        for (idx, count) in per_client {
            let client = &mut self.clients[idx];
            for reply in client.inbox.drain(..count) {
                let id = self.replies.remove(&reply).and_then(|r| r.message_id);
                if let Some(id) = id {
                    self.message_ids.remove(&id);
                }
            }
            client.pruned += count;
        }
        candidates.len() as u64
    }

    pub(crate) fn list_clients(
        &self,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = match page.after() {
            None => None,
            Some(cursor) => {
                Some(ClientId::new(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)?)
            }
        };
        let lower = start.as_ref().map_or(Unbounded, Excluded);
        let items: Vec<ClientSummary> = self
            .by_id
            .range::<ClientId, _>((lower, Unbounded))
            .map(|(id, &idx)| ClientSummary {
                client: id.clone(),
                count: self.clients[idx as usize].numbers.len(),
            })
            .filter(|s| s.count > 0)
            .take(page.limit())
            .collect();
        let next = items.last().and_then(|s| Cursor::new(s.client.as_str()));
        Ok(Page { items, next })
    }
}

fn position(cursor: &Cursor) -> Option<usize> {
    cursor.position().and_then(|p| usize::try_from(p).ok())
}

/// Items of sorted `a` not in sorted `b`.
fn difference(a: &[PhoneNumber], b: &[PhoneNumber]) -> Vec<PhoneNumber> {
    a.iter()
        .copied()
        .filter(|n| b.binary_search(n).is_err())
        .collect()
}

/// Items of sorted `a` also in sorted `b`.
fn intersection(a: &[PhoneNumber], b: &[PhoneNumber]) -> Vec<PhoneNumber> {
    a.iter()
        .copied()
        .filter(|n| b.binary_search(n).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_every_digit() {
        let max = PhoneNumber::from_u64(999_999_999_999_999).expect("15 digits");
        assert_eq!(max.as_u64().to_le_bytes()[7], 0, "E.164 fits in 7 bytes");
        let min = PhoneNumber::from_u64(10).expect("2 digits");
        assert_ne!(Key::from(max), Key::from(min));
        assert_eq!(std::mem::size_of::<(Key, Owner)>(), 11);
    }
}
