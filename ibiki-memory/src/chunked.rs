//! A vector that grows in fixed-size chunks and never reallocates.
//!
//! A `Vec` doubles: each growth copies everything and frees the old buffer,
//! which the allocator keeps resident for later use that may never come (at
//! 1M numbers, tens of bytes per number). A chunked vector only ever adds one
//! chunk of about 64 KiB, and its elements never move.

/// Bytes per chunk (elements per chunk: this over the element's size).
const CHUNK_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    const PER_CHUNK: usize = if size_of::<T>() == 0 {
        CHUNK_BYTES
    } else {
        let per = CHUNK_BYTES / size_of::<T>();
        if per == 0 { 1 } else { per }
    };

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `value` and returns its index.
    pub(crate) fn push(&mut self, value: T) -> usize {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < Self::PER_CHUNK => chunk.push(value),
            _ => {
                let mut chunk = Vec::with_capacity(Self::PER_CHUNK);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
        self.len - 1
    }

    #[inline]
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.chunks
            .get(index / Self::PER_CHUNK)?
            .get(index % Self::PER_CHUNK)
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.chunks
            .get_mut(index / Self::PER_CHUNK)?
            .get_mut(index % Self::PER_CHUNK)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_stay_valid_across_chunks() {
        let mut v = ChunkedVec::<u64>::default();
        let per = ChunkedVec::<u64>::PER_CHUNK;
        for i in 0..(3 * per + 7) as u64 {
            assert_eq!(v.push(i), i as usize);
        }
        assert_eq!(v.len(), 3 * per + 7);
        assert_eq!(v.get(per), Some(&(per as u64)));
        assert_eq!(v.get(3 * per + 7), None);
        *v.get_mut(5).expect("pushed") = 99;
        assert_eq!(v.iter().copied().nth(5), Some(99));
        assert_eq!(v.iter().count(), 3 * per + 7);
    }
}
