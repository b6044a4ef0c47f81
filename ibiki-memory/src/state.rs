//! The store's data, changed only under the store's lock.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;
use ibiki_core::{
    AssignmentChange, Change, ClaimRequest, ClientId, ClientSummary, Conflict, Cursor, Delivery,
    DeliveryKind, ForwardClaim, HeldTarget, HistoryEvent, InboundReply, MessageId, Page,
    PageRequest, PhoneNumber, Receipt, StoreError, StoredReply,
};
use time::OffsetDateTime;

use crate::clients::{ClientIdx, Clients, ReplyIdx};
use crate::forwards::Forwards;
use crate::history::History;
use crate::table::{Entry, Table};

#[derive(Debug, Default)]
pub(crate) struct State {
    /// The routing index: one lookup per reply. Every number that ever had an
    /// owner, with the head of its history.
    routes: Table,
    clients: Clients,
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
    /// Clients' endpoints and the forwards of their replies.
    forwards: Forwards,
}

impl State {
    #[inline]
    fn owner_idx(&self, number: PhoneNumber) -> Option<ClientIdx> {
        let entry = self.routes.get(number.as_u64())?;
        (entry.owner != Entry::NO_OWNER).then_some(entry.owner)
    }

    #[inline]
    pub(crate) fn owner_of(&self, number: PhoneNumber) -> Option<&ClientId> {
        self.clients.id(self.owner_idx(number)?)
    }

    pub(crate) fn owner_at(&self, number: PhoneNumber, at: OffsetDateTime) -> Option<&ClientId> {
        let head = self.routes.get(number.as_u64())?.head;
        self.clients.id(self.history.owner_at(head, at)?)
    }

    pub(crate) fn history(
        &self,
        number: PhoneNumber,
        page: &PageRequest,
    ) -> Result<Page<HistoryEvent>, StoreError> {
        let head = self.routes.get(number.as_u64()).map(|e| e.head);
        self.history.page(head, page, |idx| self.clients.id(idx))
    }

    pub(crate) fn numbers_of(&self, client: &ClientId) -> Vec<PhoneNumber> {
        self.clients
            .find(client)
            .map(|idx| self.clients.numbers(idx).to_vec())
            .unwrap_or_default()
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
        self.history.reserve(added.len() + removed.len())?;
        let idx = self.clients.find_or_add(client)?;
        let at = self.history.now();
        let change = self.history.change(at, idx);
        for &number in &removed {
            self.route(number, change, Entry::NO_OWNER);
        }
        for &number in &added {
            self.route(number, change, idx);
        }
        let mut numbers = difference(&current, &removed);
        numbers.extend_from_slice(&added);
        numbers.sort_unstable();
        self.clients.set_numbers(idx, &numbers);
        let released = self.release(idx, &added, at);
        Ok(AssignmentChange {
            client: client.clone(),
            added,
            removed,
            numbers,
            released,
        })
    }

    /// Gives `number` to `owner` ([`Entry::NO_OWNER`]: to nobody), the
    /// history `change` becoming its latest event.
    fn route(&mut self, number: PhoneNumber, change: u32, owner: ClientIdx) {
        let key = number.as_u64();
        let head = self.routes.get(key).map(|e| e.head);
        let head = self.history.push(head, change, owner != Entry::NO_OWNER);
        self.routes.set(key, Entry { owner, head });
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
        if seqs.is_empty() {
            return 0;
        }
        let Some(client) = self.clients.id(idx).cloned() else {
            return 0;
        };
        let Some(inbox) = self.clients.inbox_mut(idx) else {
            return 0;
        };
        for seq in &seqs {
            if let Some(reply) = self.held.remove(seq) {
                inbox.replies.push_back(reply);
                if let Some(stored) = self.replies.get_mut(&reply) {
                    stored.delivery = Delivery {
                        kind: DeliveryKind::Released,
                        at,
                    };
                    self.forwards.create(&client, stored, at);
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
        let owner = number
            .and_then(|n| self.owner_idx(n))
            .and_then(|o| Some((o, self.clients.id(o)?.clone())));
        let at = self.history.now();
        let stored = StoredReply::on_receipt(u64::from(idx), reply, owner.is_some(), at);
        if let Some((_, client)) = &owner {
            self.forwards.create(client, &stored, at);
        }
        self.replies.insert(idx, stored);
        if let Some((owner, id)) = owner {
            if let Some(inbox) = self.clients.inbox_mut(owner) {
                inbox.replies.push_back(idx);
            }
            return Ok(Receipt::Routed(id));
        }
        let seq = self.next_held;
        self.next_held += 1;
        self.held.insert(seq, idx);
        if let Some(n) = number {
            self.held_by_number.entry(n).or_default().push(seq);
        }
        Ok(Receipt::Held)
    }

    /// Moves held reply `id` to the end of the target's inbox, re-routed now;
    /// returns it and the client whose inbox it reached.
    pub(crate) fn deliver_held(
        &mut self,
        id: u64,
        target: &HeldTarget,
    ) -> Result<(StoredReply, ClientId), StoreError> {
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
            HeldTarget::Client(client) => self.clients.find_or_add(client)?,
            HeldTarget::Number(n) => match self.owner_idx(*n) {
                Some(owner) => owner,
                None => return Err(StoreError::Unowned(*n)),
            },
        };
        // Known before anything changes: every index the clients hand out has an id.
        let owner = self
            .clients
            .id(client)
            .cloned()
            .ok_or_else(|| StoreError::Backend("a client index without an id".into()))?;
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
        let at = self.history.now();
        reply.delivery = Delivery {
            kind: DeliveryKind::Rerouted,
            at,
        };
        let reply = reply.clone();
        self.forwards.create(&owner, &reply, at);
        if let Some(inbox) = self.clients.inbox_mut(client) {
            inbox.replies.push_back(idx);
        }
        Ok((reply, owner))
    }

    /// The forwards to change, and the store's clock now.
    pub(crate) fn forwards_mut(&mut self) -> (&mut Forwards, OffsetDateTime) {
        let now = self.history.now();
        (&mut self.forwards, now)
    }

    pub(crate) fn forwards(&self) -> &Forwards {
        &self.forwards
    }

    /// Makes every reply that reached `client`'s inbox at or after `since`
    /// due for forwarding now; `None` without an endpoint.
    pub(crate) fn replay(&mut self, client: &ClientId, since: OffsetDateTime) -> Option<u64> {
        if !self.forwards.has_endpoint(client) {
            return None;
        }
        let now = self.history.now();
        let inbox = self
            .clients
            .find(client)
            .and_then(|idx| self.clients.inbox(idx));
        let replies = inbox
            .into_iter()
            .flat_map(|inbox| inbox.replies.iter())
            .filter_map(|r| self.replies.get(r))
            .filter(|reply| reply.delivery.at >= since);
        Some(self.forwards.replay(client, replies, now))
    }

    /// Leases the forwards `request` allows, with what each attempt needs.
    pub(crate) fn claim(&mut self, request: &ClaimRequest) -> Vec<ForwardClaim> {
        let now = self.history.now();
        let leased = self.forwards.claim(request, now);
        leased
            .into_iter()
            .filter_map(|(lease, client, reply)| {
                let reply = self.replies.get(&ReplyIdx::try_from(reply).ok()?)?.clone();
                let (url, secrets) = self.forwards.target(&client, now)?;
                Some(ForwardClaim {
                    lease,
                    client,
                    url,
                    secrets,
                    reply,
                })
            })
            .collect()
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
        let Some(client) = self
            .clients
            .find(client)
            .and_then(|idx| self.clients.inbox(idx))
        else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let (inbox, pruned) = (&client.replies, client.pruned);
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
        let mut candidates: Vec<(OffsetDateTime, ClientIdx)> = Vec::new();
        for (idx, inbox) in self.clients.with_inbox() {
            let all_but_last = inbox.replies.len().saturating_sub(1);
            let ats = inbox
                .replies
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
        let mut per_client: BTreeMap<ClientIdx, usize> = BTreeMap::new();
        for &(_, idx) in &candidates {
            *per_client.entry(idx).or_default() += 1;
        }
        for (idx, count) in per_client {
            let Some(inbox) = self.clients.inbox_mut(idx) else {
                continue;
            };
            let count = count.min(inbox.replies.len());
            for reply in inbox.replies.drain(..count) {
                self.forwards.forget_reply(u64::from(reply));
                let id = self.replies.remove(&reply).and_then(|r| r.message_id);
                if let Some(id) = id {
                    self.message_ids.remove(&id);
                }
            }
            inbox.pruned += count;
        }
        candidates.len() as u64
    }

    pub(crate) fn list_clients(
        &self,
        prefix: &str,
        page: &PageRequest,
    ) -> Result<Page<ClientSummary>, StoreError> {
        let after = match page.after() {
            None => None,
            Some(cursor) => {
                Some(ClientId::new(cursor.as_str()).map_err(|_| StoreError::InvalidCursor)?)
            }
        };
        // No client id starts with what is no client id's beginning.
        let first = match prefix {
            "" => None,
            _ => match ClientId::new(prefix) {
                Ok(first) => Some(first),
                Err(_) => {
                    return Ok(Page {
                        items: Vec::new(),
                        next: None,
                    });
                }
            },
        };
        let ordered: Box<dyn Iterator<Item = ClientIdx> + '_> = match (&after, &first) {
            (Some(after), Some(first)) if after < first => {
                Box::new(self.clients.ordered_from(first))
            }
            (None, Some(first)) => Box::new(self.clients.ordered_from(first)),
            (after, _) => Box::new(self.clients.ordered_after(after.as_ref())),
        };
        let items: Vec<ClientSummary> = ordered
            .filter_map(|idx| Some((self.clients.id(idx)?, self.clients.numbers(idx))))
            .take_while(|(id, _)| id.as_str().starts_with(prefix))
            .filter(|(_, numbers)| !numbers.is_empty())
            .take(page.limit())
            .map(|(id, numbers)| ClientSummary {
                client: id.clone(),
                numbers: numbers.to_vec(),
            })
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
