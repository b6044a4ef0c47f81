//! The clients: ids, numbers and inboxes, without an allocation of their own
//! per client.
//!
//! Most clients own a few numbers and have no reply yet; per-client vectors
//! and tree nodes would cost more than the numbers themselves. Here a client
//! is an index into dense arrays: its id (24 bytes, alone in its array so
//! that the routing hot path reads nothing else), a 12-byte record, its
//! numbers in a shared arena, and an inbox only once a reply arrives. The ids
//! are ordered by an index of sorted blocks of client indexes.

use std::collections::VecDeque;

use ibiki_core::{ClientId, PhoneNumber, StoreError};

use crate::chunked::ChunkedVec;

/// Index of a client; clients are never removed, so an index stays valid.
pub(crate) type ClientIdx = u32;
/// Key of a reply in the store's replies: arrival order, never reused.
pub(crate) type ReplyIdx = u32;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Record {
    /// Where the client's numbers are in the arena (when it has any).
    block: u32,
    len: u32,
    /// Index of the client's inbox, or [`NONE`] before its first reply.
    inbox: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Inbox {
    /// Delivery order, from position `pruned` on. When each reply got here
    /// is its `delivery.at` (what pruning goes by).
    pub(crate) replies: VecDeque<ReplyIdx>,
    /// How many replies were pruned from the front: positions (and so
    /// cursors) keep counting from the first delivery.
    pub(crate) pruned: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Clients {
    ids: ChunkedVec<ClientId>,
    records: ChunkedVec<Record>,
    inboxes: ChunkedVec<Inbox>,
    numbers: Arena,
    order: Order,
}

fn backend(message: &'static str) -> StoreError {
    StoreError::Backend(message.into())
}

impl Clients {
    #[inline]
    pub(crate) fn id(&self, idx: ClientIdx) -> Option<&ClientId> {
        self.ids.get(idx as usize)
    }

    /// The index of client `id`, if it was ever seen.
    pub(crate) fn find(&self, id: &ClientId) -> Option<ClientIdx> {
        self.order.find(&self.ids, id).ok()
    }

    /// The index of client `id`, added if new.
    pub(crate) fn find_or_add(&mut self, id: &ClientId) -> Result<ClientIdx, StoreError> {
        let at = match self.order.find(&self.ids, id) {
            Ok(idx) => return Ok(idx),
            Err(at) => at,
        };
        let idx = u32::try_from(self.ids.len())
            .ok()
            .filter(|&i| i < NONE)
            .ok_or_else(|| backend("too many clients"))?;
        self.ids.push(id.clone());
        self.records.push(Record {
            block: NONE,
            len: 0,
            inbox: NONE,
        });
        self.order.insert(at, idx);
        Ok(idx)
    }

    /// The client's numbers, ascending.
    pub(crate) fn numbers(&self, idx: ClientIdx) -> &[PhoneNumber] {
        self.records
            .get(idx as usize)
            .map(|r| self.numbers.get(r.block, r.len))
            .unwrap_or_default()
    }

    /// Replaces the client's numbers with `numbers` (ascending).
    pub(crate) fn set_numbers(&mut self, idx: ClientIdx, numbers: &[PhoneNumber]) {
        let Some(record) = self.records.get_mut(idx as usize) else {
            return;
        };
        let block = self.numbers.store(record.block, record.len, numbers);
        record.block = block;
        record.len = numbers.len() as u32;
    }

    pub(crate) fn inbox(&self, idx: ClientIdx) -> Option<&Inbox> {
        let record = self.records.get(idx as usize)?;
        self.inboxes.get(record.inbox as usize)
    }

    /// The client's inbox, made on its first reply.
    pub(crate) fn inbox_mut(&mut self, idx: ClientIdx) -> Option<&mut Inbox> {
        let record = self.records.get_mut(idx as usize)?;
        if record.inbox == NONE {
            record.inbox = u32::try_from(self.inboxes.len()).ok()?;
            self.inboxes.push(Inbox::default());
        }
        self.inboxes.get_mut(record.inbox as usize)
    }

    /// Every client index with an inbox.
    pub(crate) fn with_inbox(&self) -> impl Iterator<Item = (ClientIdx, &Inbox)> {
        self.records
            .iter()
            .enumerate()
            .filter_map(|(i, r)| Some((i as ClientIdx, self.inboxes.get(r.inbox as usize)?)))
    }

    /// Client indexes in id order, from the first id after `after`.
    pub(crate) fn ordered_after(
        &self,
        after: Option<&ClientId>,
    ) -> impl Iterator<Item = ClientIdx> + '_ {
        let start = match after.map(|id| self.order.locate(&self.ids, id)) {
            None => (0, 0),
            Some((block, Ok(pos))) => (block, pos + 1),
            Some((block, Err(pos))) => (block, pos),
        };
        self.order.iter_from(start)
    }

    /// Client indexes in id order, from `first` itself on (if it exists).
    pub(crate) fn ordered_from(&self, first: &ClientId) -> impl Iterator<Item = ClientIdx> + '_ {
        let (block, at) = self.order.locate(&self.ids, first);
        self.order.iter_from((block, at.unwrap_or_else(|pos| pos)))
    }
}

/// Client indexes sorted by id, in blocks of at most [`Order::MAX`]: an
/// insertion moves at most one block's tail, and the index costs about six
/// bytes a client.
#[derive(Debug, Default)]
struct Order {
    blocks: Vec<Vec<ClientIdx>>,
}

impl Order {
    const MAX: usize = 512;

    fn id(ids: &ChunkedVec<ClientId>, idx: ClientIdx) -> Option<&ClientId> {
        ids.get(idx as usize)
    }

    /// The block and position of `id`, or of where it would go.
    fn locate(&self, ids: &ChunkedVec<ClientId>, id: &ClientId) -> (usize, Result<usize, usize>) {
        // The first block whose last id is not below `id`; the last block
        // if all are below.
        let block = self
            .blocks
            .partition_point(|b| b.last().and_then(|&i| Self::id(ids, i)) < Some(id))
            .min(self.blocks.len().saturating_sub(1));
        let Some(entries) = self.blocks.get(block) else {
            return (0, Err(0));
        };
        let at = entries.binary_search_by(|&i| Self::id(ids, i).cmp(&Some(id)));
        (block, at)
    }

    fn find(&self, ids: &ChunkedVec<ClientId>, id: &ClientId) -> Result<ClientIdx, (usize, usize)> {
        match self.locate(ids, id) {
            (block, Ok(pos)) => Ok(self.blocks[block][pos]),
            (block, Err(pos)) => Err((block, pos)),
        }
    }

    fn insert(&mut self, (block, pos): (usize, usize), idx: ClientIdx) {
        if self.blocks.is_empty() {
            let mut first = Vec::with_capacity(Self::MAX);
            first.push(idx);
            self.blocks.push(first);
            return;
        }
        let Some(entries) = self.blocks.get_mut(block) else {
            return;
        };
        if entries.len() < Self::MAX {
            entries.insert(pos, idx);
            return;
        }
        let mut right = Vec::with_capacity(Self::MAX);
        right.extend(entries.drain(Self::MAX / 2..));
        if pos <= Self::MAX / 2 {
            entries.insert(pos, idx);
        } else {
            right.insert(pos - Self::MAX / 2, idx);
        }
        self.blocks.insert(block + 1, right);
    }

    fn iter_from(&self, (block, pos): (usize, usize)) -> impl Iterator<Item = ClientIdx> + '_ {
        self.blocks
            .iter()
            .skip(block)
            .enumerate()
            .flat_map(move |(i, b)| b.iter().skip(if i == 0 { pos } else { 0 }).copied())
    }
}

/// The numbers of every client, in blocks of a few size classes carved from
/// 64 KiB chunks; a freed block goes to its class's free list.
#[derive(Debug, Default)]
struct Arena {
    chunks: Vec<Vec<PhoneNumber>>,
    /// Free blocks of each class.
    free: Vec<Vec<u32>>,
}

/// Numbers per small chunk; blocks of more than [`Arena::SMALL`] numbers get
/// a chunk of their own.
const ARENA_CHUNK: usize = 8 * 1024;
/// Bits of a block address for the position in its chunk.
const OFFSET_BITS: u32 = 13;

impl Arena {
    const SMALL: usize = ARENA_CHUNK / 8;

    /// The size class of `len` numbers and its capacity: exact up to 8, then
    /// a quarter more each.
    fn class(len: usize) -> (usize, usize) {
        let (mut class, mut cap) = (0, 1);
        while cap < len {
            class += 1;
            cap = if cap < 8 {
                cap + 1
            } else {
                cap + cap.div_ceil(4)
            };
        }
        (class, cap)
    }

    fn get(&self, block: u32, len: u32) -> &[PhoneNumber] {
        if block == NONE {
            return &[];
        }
        let (chunk, offset) = (
            (block >> OFFSET_BITS) as usize,
            (block & ((1 << OFFSET_BITS) - 1)) as usize,
        );
        self.chunks
            .get(chunk)
            .and_then(|c| c.get(offset..offset + len as usize))
            .unwrap_or_default()
    }

    /// Stores `numbers` in place of the block `(block, len)`; returns the
    /// block now holding them.
    fn store(&mut self, block: u32, len: u32, numbers: &[PhoneNumber]) -> u32 {
        let (old_class, _) = Self::class(len as usize);
        let (class, cap) = Self::class(numbers.len());
        if block != NONE && len > 0 && old_class == class && !numbers.is_empty() {
            self.write(block, numbers);
            return block;
        }
        if block != NONE && len > 0 {
            if self.free.len() <= old_class {
                self.free.resize_with(old_class + 1, Vec::new);
            }
            self.free[old_class].push(block);
        }
        let Some(&first) = numbers.first() else {
            return NONE;
        };
        if let Some(reused) = self.free.get_mut(class).and_then(Vec::pop) {
            self.write(reused, numbers);
            return reused;
        }
        let fits = |c: &Vec<PhoneNumber>| c.capacity() - c.len() >= cap;
        let chunk = match self.chunks.last() {
            Some(c) if cap <= Self::SMALL && c.capacity() == ARENA_CHUNK && fits(c) => {
                self.chunks.len() - 1
            }
            _ => {
                self.chunks.push(Vec::with_capacity(if cap <= Self::SMALL {
                    ARENA_CHUNK
                } else {
                    cap
                }));
                self.chunks.len() - 1
            }
        };
        let Some(c) = self.chunks.get_mut(chunk) else {
            return NONE;
        };
        let offset = c.len();
        c.extend_from_slice(numbers);
        c.resize(offset + cap, first);
        ((chunk as u32) << OFFSET_BITS) | offset as u32
    }

    fn write(&mut self, block: u32, numbers: &[PhoneNumber]) {
        let (chunk, offset) = (
            (block >> OFFSET_BITS) as usize,
            (block & ((1 << OFFSET_BITS) - 1)) as usize,
        );
        if let Some(slot) = self
            .chunks
            .get_mut(chunk)
            .and_then(|c| c.get_mut(offset..offset + numbers.len()))
        {
            slot.copy_from_slice(numbers);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn number(i: u64) -> PhoneNumber {
        PhoneNumber::from_u64(14_155_550_000 + i).expect("valid")
    }

    #[test]
    fn classes_grow_by_a_quarter() {
        assert_eq!(Arena::class(0), (0, 1));
        assert_eq!(Arena::class(5), (4, 5));
        assert_eq!(Arena::class(9), (8, 10));
        let (_, cap) = Arena::class(100_000);
        assert!((100_000..125_001).contains(&cap));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The clients agree with a `BTreeMap` model: ids in order (across
        /// block splits), each client's numbers as last set (across size
        /// classes, free-list reuse and blocks of their own).
        #[test]
        fn agree_with_a_model(
            ops in prop::collection::vec(
                (0u32..2000, prop_oneof![
                    4 => prop::collection::btree_set(0u64..50_000, 0..12),
                    1 => prop::collection::btree_set(0u64..50_000, 0..1500),
                ]),
                1..400,
            ),
        ) {
            let mut clients = Clients::default();
            let mut model: BTreeMap<ClientId, Vec<PhoneNumber>> = BTreeMap::new();
            for (step, (name, set)) in ops.into_iter().enumerate() {
                let id = ClientId::new(format!("c{name}")).expect("id");
                let numbers: Vec<PhoneNumber> = set.into_iter().map(number).collect();
                let idx = clients.find_or_add(&id).expect("room");
                prop_assert_eq!(clients.find(&id), Some(idx));
                clients.set_numbers(idx, &numbers);
                model.insert(id, numbers);
                if step % 16 != 0 {
                    continue;
                }
                for (id, numbers) in &model {
                    let idx = clients.find(id).expect("known");
                    prop_assert_eq!(clients.id(idx), Some(id));
                    prop_assert_eq!(clients.numbers(idx), numbers.as_slice());
                }
            }
            for (id, numbers) in &model {
                let idx = clients.find(id).expect("known");
                prop_assert_eq!(clients.numbers(idx), numbers.as_slice());
            }
            let ordered: Vec<&ClientId> = clients
                .ordered_after(None)
                .filter_map(|i| clients.id(i))
                .collect();
            prop_assert_eq!(ordered, model.keys().collect::<Vec<_>>());
            for after in model.keys().step_by(7) {
                let from: Vec<&ClientId> = clients
                    .ordered_after(Some(after))
                    .filter_map(|i| clients.id(i))
                    .collect();
                let expected: Vec<&ClientId> = model
                    .range::<ClientId, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
                    .map(|(k, _)| k)
                    .collect();
                prop_assert_eq!(from, expected);
            }
        }
    }

    #[test]
    fn ordered_after_an_unknown_id() {
        let mut clients = Clients::default();
        for name in ["b", "d", "f"] {
            let id = ClientId::new(name).expect("id");
            clients.find_or_add(&id).expect("room");
        }
        let after = ClientId::new("c").expect("id");
        let ids: Vec<&str> = clients
            .ordered_after(Some(&after))
            .filter_map(|i| clients.id(i).map(ClientId::as_str))
            .collect();
        assert_eq!(ids, ["d", "f"]);
    }
}
