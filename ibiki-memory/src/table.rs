//! The routing table: each number that ever had an owner, to its owner and
//! the head of its history.
//!
//! Open addressing over cache-line buckets: a bucket holds four 15-byte
//! slots (a 7-byte number, a 4-byte owner, a 4-byte history head) in 64
//! bytes, so a lookup reads one line, rarely two. Numbers keep their history
//! after they lose their owner, so entries are never removed: each bucket
//! has a flag set once an entry had to go past it, and a search ends at the
//! first bucket without it, no tombstones.
//!
//! A number's home bucket is its hash scaled to the bucket count (the top
//! bits of `hash * buckets`), which keeps homes in hash order whatever the
//! count. The table grows by an eighth when 90% full, not by doubling, and it
//! grows by streaming: the old buckets are read in order and each chunk is
//! returned to the OS as soon as it is read, while the new table's chunks
//! are mapped in the same order. No large block is ever freed to the
//! allocator, so it keeps nothing resident for it.
//!
//! Chunks are anonymous memory maps: 64 KiB while the table is small, then
//! 2 MiB advised as huge pages, which saves most TLB misses of a random hit
//! (a hit in 4 KiB pages of a 19 MB table misses the TLB nearly every time).
//! The chunk holding the last home bucket ends a page past it, so that no
//! partly used huge page is resident.

use std::hash::BuildHasher;

use foldhash::fast::RandomState;

/// Slots per bucket.
const SLOTS: usize = 4;
/// Bytes per slot: number, owner, history head.
const SLOT: usize = 15;
/// Bytes per bucket: one cache line.
const LINE: usize = 64;
/// Buckets per chunk of a small table: 64 KiB.
const SMALL_SHIFT: u32 = 10;
/// Buckets per chunk of a table of 2 MiB or more: one huge page.
const HUGE_SHIFT: u32 = 15;
/// Buckets per 4 KiB page: the granularity of a chunk's length.
const PAGE: usize = 64;
/// Buckets a chunk keeps past the last home bucket, for probes that run past it.
const TAIL: usize = PAGE;
/// The table grows when more than `LOAD_NUM / LOAD_DEN` of its home slots are used.
const LOAD_NUM: usize = 9;
const LOAD_DEN: usize = 10;
/// Buckets of the first table.
const MIN_BUCKETS: usize = 16;

/// The byte of a bucket that says whether an entry whose home is at or
/// before it had to go past it (set once, until the table grows).
const OVERFLOW: usize = SLOTS * SLOT;

/// Four slots in one cache line, and the overflow byte.
type Bucket = [u8; LINE];

/// Reads and writes of a bucket's slots.
trait Slots {
    fn key(&self, slot: usize) -> u64;
    fn scan(&self, key: u64) -> u32;
    fn word(&self, at: usize) -> u32;
    fn entry(&self, slot: usize) -> Entry;
    fn set(&mut self, slot: usize, key: u64, entry: Entry);
}

impl Slots for Bucket {
    #[inline]
    fn key(&self, slot: usize) -> u64 {
        // One 8-byte load (the eighth byte is the owner's first), masked.
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&self[slot * SLOT..slot * SLOT + 8]);
        u64::from_le_bytes(bytes) & ((1 << 56) - 1)
    }

    /// Bit `i` set: slot `i` holds `key`; bit [`SLOTS`] set: no entry
    /// went past this bucket, so a search that reaches it ends here.
    /// Branch-free, so the loads of a following bucket are not held back.
    #[inline]
    fn scan(&self, key: u64) -> u32 {
        let mut bits = u32::from(self[OVERFLOW] == 0) << SLOTS;
        for slot in 0..SLOTS {
            bits |= u32::from(self.key(slot) == key) << slot;
        }
        bits
    }

    #[inline]
    fn word(&self, at: usize) -> u32 {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self[at..at + 4]);
        u32::from_le_bytes(bytes)
    }

    #[inline]
    fn entry(&self, slot: usize) -> Entry {
        Entry {
            owner: self.word(slot * SLOT + 7),
            head: self.word(slot * SLOT + 11),
        }
    }

    fn set(&mut self, slot: usize, key: u64, entry: Entry) {
        let at = slot * SLOT;
        self[at..at + 7].copy_from_slice(&key.to_le_bytes()[..7]);
        self[at + 7..at + 11].copy_from_slice(&entry.owner.to_le_bytes());
        self[at + 11..at + 15].copy_from_slice(&entry.head.to_le_bytes());
    }
}

/// A chunk of buckets in its own anonymous memory map: zeroed by the OS
/// (pages become resident only when written), page-aligned so that no
/// bucket straddles two cache lines, and returned to the OS when dropped.
/// Chunks of a huge page are advised as such: a random hit in a table of
/// tens of MB otherwise misses the TLB nearly every time.
#[derive(Debug)]
struct Chunk(memmap2::MmapMut);

impl Chunk {
    /// A chunk of `buckets` buckets (at most `1 << shift`).
    fn new(shift: u32, buckets: usize) -> Self {
        let len = LINE * buckets;
        match memmap2::MmapOptions::new().len(len).map_anon() {
            Ok(map) => {
                #[cfg(target_os = "linux")]
                if shift >= HUGE_SHIFT && buckets == 1 << shift {
                    // Only advice: without it the chunk is ordinary memory.
                    let _ = map.advise(memmap2::Advice::HugePage);
                }
                Self(map)
            }
            Err(_) => std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len, LINE)
                    .unwrap_or(std::alloc::Layout::new::<Bucket>()),
            ),
        }
    }

    /// Buckets it holds.
    fn len(&self) -> usize {
        self.0.len() / LINE
    }

    #[inline]
    fn get(&self, index: usize) -> Option<&Bucket> {
        let at = index.checked_mul(LINE)?;
        self.0.get(at..at + LINE)?.try_into().ok()
    }

    #[inline]
    fn get_mut(&mut self, index: usize) -> Option<&mut Bucket> {
        let at = index.checked_mul(LINE)?;
        self.0.get_mut(at..at + LINE)?.try_into().ok()
    }

    fn iter(&self) -> impl Iterator<Item = &Bucket> {
        self.0.chunks_exact(LINE).filter_map(|b| b.try_into().ok())
    }
}

/// What the table keeps for a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The owning client's index, or [`Entry::NO_OWNER`].
    pub(crate) owner: u32,
    /// The head of the number's history (see `History`).
    pub(crate) head: u32,
}

impl Entry {
    pub(crate) const NO_OWNER: u32 = u32::MAX;
}

/// Where an entry is: bucket and slot.
#[derive(Debug, Clone, Copy)]
struct Place {
    bucket: usize,
    slot: usize,
}

#[derive(Debug)]
pub(crate) struct Table {
    chunks: Vec<Chunk>,
    /// Buckets per chunk: `1 << shift`.
    shift: u32,
    /// Home buckets: probing may run past them into the last chunk's tail
    /// (and into more chunks), never wraps.
    buckets: usize,
    len: usize,
    hasher: RandomState,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            shift: SMALL_SHIFT,
            buckets: 0,
            len: 0,
            hasher: RandomState::default(),
        }
    }
}

impl Table {
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, key: u64) -> usize {
        let hash = self.hasher.hash_one(key);
        ((u128::from(hash) * self.buckets as u128) >> 64) as usize
    }

    #[inline]
    fn bucket(&self, index: usize) -> Option<&Bucket> {
        self.chunks
            .get(index >> self.shift)?
            .get(index & ((1 << self.shift) - 1))
    }

    #[inline]
    fn bucket_mut(&mut self, index: usize) -> Option<&mut Bucket> {
        self.chunks
            .get_mut(index >> self.shift)?
            .get_mut(index & ((1 << self.shift) - 1))
    }

    /// Where `key` is, or the free slot where it would go (`Err`), or
    /// `Err(None)` when the probe runs past the allocated chunks.
    fn find(&self, key: u64) -> Result<Place, Option<Place>> {
        if self.buckets == 0 {
            return Err(None);
        }
        let mut index = self.home(key);
        loop {
            let Some(bucket) = self.bucket(index) else {
                return Err(Some(Place {
                    bucket: index,
                    slot: 0,
                }));
            };
            for slot in 0..SLOTS {
                match bucket.key(slot) {
                    k if k == key => {
                        return Ok(Place {
                            bucket: index,
                            slot,
                        });
                    }
                    0 => {
                        return Err(Some(Place {
                            bucket: index,
                            slot,
                        }));
                    }
                    _ => {}
                }
            }
            index += 1;
        }
    }

    /// The entry of `key` (a number's `as_u64`, never 0).
    ///
    /// The routing hot path. It reads two adjacent buckets at a time, with
    /// no branch between their loads, so that when the entry sits in the
    /// second one (a third of hits at 84% load) both cache misses overlap.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<Entry> {
        if self.buckets == 0 {
            return None;
        }
        let mut index = self.home(key);
        loop {
            let first = self.bucket(index)?;
            let bits = first.scan(key);
            let next = self.bucket(index + 1).map_or(1 << SLOTS, |b| b.scan(key));
            let bits = bits | next << (SLOTS + 1);
            match bits.trailing_zeros() as usize {
                SLOTS => return None,
                slot if slot < SLOTS => return Some(first.entry(slot)),
                stop if stop == 2 * SLOTS + 1 => return None,
                slot if slot < 2 * SLOTS + 1 => {
                    return Some(self.bucket(index + 1)?.entry(slot - SLOTS - 1));
                }
                _ => index += 2,
            }
        }
    }

    /// Sets the entry of `key`, inserting it if new.
    pub(crate) fn set(&mut self, key: u64, entry: Entry) {
        debug_assert_ne!(key, 0);
        if key == 0 || key >= 1 << 56 {
            return;
        }
        if let Ok(place) = self.find(key) {
            self.write(place, key, entry);
            return;
        }
        if (self.len + 1) * LOAD_DEN > self.buckets * SLOTS * LOAD_NUM {
            self.grow();
        }
        self.insert_new(key, entry);
        self.len += 1;
    }

    fn write(&mut self, place: Place, key: u64, entry: Entry) {
        let (chunk, at) = (
            place.bucket >> self.shift,
            place.bucket & ((1 << self.shift) - 1),
        );
        while self.chunks.len() <= chunk {
            let buckets = self.chunk_len(self.chunks.len());
            self.chunks.push(Chunk::new(self.shift, buckets));
        }
        if let Some(short) = self.chunks.get_mut(chunk).filter(|c| c.len() <= at) {
            // A probe ran past the short last chunk: make it whole.
            let mut whole = Chunk::new(self.shift, 1 << self.shift);
            if let Some(head) = whole.0.get_mut(..short.0.len()) {
                head.copy_from_slice(&short.0);
            }
            *short = whole;
        }
        if let Some(bucket) = self.bucket_mut(place.bucket) {
            bucket.set(place.slot, key, entry);
        }
    }

    /// Buckets of chunk `chunk`: whole, except the one holding the last
    /// home bucket, which ends a few pages past it (a partly used chunk would
    /// be resident whole, up to 2 MiB, once a huge page backs it).
    fn chunk_len(&self, chunk: usize) -> usize {
        let whole = 1usize << self.shift;
        let wanted = (self.buckets + TAIL).saturating_sub(chunk << self.shift);
        wanted
            .div_ceil(PAGE)
            .saturating_mul(PAGE)
            .clamp(PAGE, whole)
    }

    /// Inserts a key known to be absent, without growing; marks the
    /// buckets it went past.
    fn insert_new(&mut self, key: u64, entry: Entry) {
        if let Err(Some(place)) = self.find(key) {
            self.write(place, key, entry);
            for index in self.home(key)..place.bucket {
                if let Some(bucket) = self.bucket_mut(index) {
                    bucket[OVERFLOW] = 1;
                }
            }
        }
    }

    fn grow(&mut self) {
        let buckets = (self.buckets + self.buckets / 8).max(MIN_BUCKETS);
        let old = std::mem::take(&mut self.chunks);
        self.buckets = buckets;
        self.shift = if buckets * LINE >= LINE << HUGE_SHIFT {
            HUGE_SHIFT
        } else {
            SMALL_SHIFT
        };
        // Old homes are in hash order and so are new ones: reading the old
        // chunks in order fills the new ones nearly in order, and each old
        // chunk is dropped (and its memory reused) as soon as it is read.
        for chunk in old {
            for bucket in chunk.iter() {
                for slot in 0..SLOTS {
                    let key = bucket.key(slot);
                    if key == 0 {
                        break;
                    }
                    self.insert_new(key, bucket.entry(slot));
                }
            }
        }
    }

    /// Every entry, in no particular order.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, Entry)> + '_ {
        self.chunks.iter().flat_map(|c| c.iter()).flat_map(|b| {
            (0..SLOTS)
                .map(|s| (b.key(s), b.entry(s)))
                .take_while(|&(k, _)| k != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn entry(n: u32) -> Entry {
        Entry {
            owner: n,
            head: n.wrapping_mul(7),
        }
    }

    #[test]
    fn grows_past_many_chunks() {
        let mut table = Table::default();
        let n = 300_000u64;
        for k in 1..=n {
            table.set(k * 7919, entry(k as u32));
        }
        assert_eq!(table.len(), n as usize);
        assert!(table.chunks.len() > 2);
        for k in 1..=n {
            assert_eq!(table.get(k * 7919), Some(entry(k as u32)), "key {k}");
        }
        assert_eq!(table.get(7918), None);
        assert_eq!(table.entries().count(), n as usize);
        // Never fuller than the load limit, nor much emptier after growing.
        assert!(table.len * LOAD_DEN <= table.buckets * SLOTS * LOAD_NUM);
    }

    #[test]
    fn a_probe_past_the_short_last_chunk_makes_it_whole() {
        let mut table = Table::default();
        for k in 1..=100u64 {
            table.set(k, entry(k as u32));
        }
        let last = table.chunks.len() - 1;
        let short = table.chunks[last].len();
        assert!(short < 1 << table.shift);
        let bucket = (last << table.shift) + short + 3;
        table.write(Place { bucket, slot: 0 }, 1 << 40, entry(7));
        assert_eq!(table.chunks[last].len(), 1 << table.shift);
        assert_eq!(table.bucket(bucket).map(|b| b.entry(0)), Some(entry(7)));
        for k in 1..=100u64 {
            assert_eq!(table.get(k), Some(entry(k as u32)), "key {k}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// Across growths that stream through several 64 KiB chunks (4,096
        /// slots each), every key keeps its entry and absent keys stay absent.
        #[test]
        fn agrees_with_a_hash_map_across_chunks(
            keys in prop::collection::hash_set(1u64..(1 << 56), 5_000..20_000),
            probes in prop::collection::vec(1u64..(1 << 56), 0..200),
        ) {
            let mut table = Table::default();
            let mut model = HashMap::new();
            for (i, &key) in keys.iter().enumerate() {
                table.set(key, entry(i as u32));
                model.insert(key, entry(i as u32));
            }
            prop_assert!(table.chunks.len() > 1);
            prop_assert_eq!(table.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(table.get(*k), Some(*v));
            }
            for k in probes {
                prop_assert_eq!(table.get(k), model.get(&k).copied());
            }
        }
    }

    proptest! {
        /// The table agrees with a `HashMap` under random inserts and
        /// overwrites, across growths (keys from a small or a wide range,
        /// so that both collisions and many distinct keys happen).
        #[test]
        fn agrees_with_a_hash_map(
            ops in prop::collection::vec(
                (prop_oneof![1u64..300, 1u64..(1 << 56)], any::<u32>()),
                0..3000,
            ),
            probes in prop::collection::vec(1u64..(1 << 56), 0..50),
        ) {
            let mut table = Table::default();
            let mut model = HashMap::new();
            for (i, &(key, value)) in ops.iter().enumerate() {
                table.set(key, entry(value));
                model.insert(key, entry(value));
                prop_assert_eq!(table.len(), model.len());
                if i % 97 == 0 {
                    for (k, v) in &model {
                        prop_assert_eq!(table.get(*k), Some(*v));
                    }
                }
            }
            for (k, v) in &model {
                prop_assert_eq!(table.get(*k), Some(*v));
            }
            for k in probes {
                prop_assert_eq!(table.get(k), model.get(&k).copied());
            }
            let mut all: Vec<_> = table.entries().collect();
            all.sort_unstable_by_key(|&(k, _)| k);
            let mut expected: Vec<_> = model.into_iter().collect();
            expected.sort_unstable_by_key(|&(k, _)| k);
            prop_assert_eq!(all, expected);
        }
    }
}

#[cfg(test)]
mod stats {
    use super::*;

    #[test]
    #[ignore]
    fn probe_lengths() {
        let mut table = Table::default();
        let mut x: u64 = 12345;
        let mut keys = Vec::new();
        for _ in 0..1_000_000 {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
            let key = 12_000_000_000 + v % 7_000_000_000;
            keys.push(key);
            table.set(key, Entry { owner: 1, head: 1 });
        }
        let probes = |key: u64| {
            let mut index = table.home(key);
            let mut n = 1;
            loop {
                let b = table.bucket(index).expect("allocated");
                if (0..SLOTS).any(|s| b.key(s) == key) || b[OVERFLOW] == 0 {
                    return n;
                }
                index += 1;
                n += 1;
            }
        };
        let hit: usize = keys.iter().map(|&k| probes(k)).sum();
        let miss: usize = (0..100_000u64).map(|k| probes(k * 13 + 1)).sum();
        println!(
            "len {} buckets {} load {:.3} hit {:.2} miss {:.2}",
            table.len,
            table.buckets,
            table.len as f64 / (table.buckets * SLOTS) as f64,
            hit as f64 / keys.len() as f64,
            miss as f64 / 100_000.0
        );
    }
}
