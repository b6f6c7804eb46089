//! The projector's output per image piece, kept so that the same image in
//! another conversation (another system prompt, another place in the
//! prompt, another sequence) skips the vision encoder. The prefix cache
//! cannot help there: the cells before the image differ. Keyed by a
//! SHA-256 of the piece's pixels and size, so two different images never
//! share an entry, and bounded in bytes, least recently used out first.
//! Pure: the engine thread owns it; `embed.rs` feeds it.

use std::collections::HashMap;

/// A piece's SHA-256 and the index of the image chunk within the piece
/// (projectors that slice an image themselves give several).
pub type Key = ([u8; 32], u32);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    /// Bytes held now.
    pub bytes: usize,
}

struct Entry {
    embd: Box<[f32]>,
    last_used: u64,
}

pub struct EmbeddingCache {
    capacity: usize,
    entries: HashMap<Key, Entry>,
    tick: u64,
    stats: CacheStats,
}

fn size_of(embd: &[f32]) -> usize {
    std::mem::size_of_val(embd)
}

impl EmbeddingCache {
    /// `capacity` in bytes; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        EmbeddingCache {
            capacity,
            entries: HashMap::new(),
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The embeddings of `key` when held with exactly `len` floats (a
    /// different length cannot be this model's output for the piece);
    /// counts a hit or a miss.
    pub fn get(&mut self, key: &Key, len: usize) -> Option<&[f32]> {
        self.tick += 1;
        match self.entries.get_mut(key) {
            Some(e) if e.embd.len() == len => {
                e.last_used = self.tick;
                self.stats.hits += 1;
                Some(&e.embd)
            }
            _ => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Keeps a copy of `embd`, evicting the least recently used entries
    /// until it fits. An entry larger than the whole cache is not kept.
    pub fn insert(&mut self, key: Key, embd: &[f32]) {
        let size = size_of(embd);
        if size > self.capacity {
            return;
        }
        if let Some(old) = self.entries.remove(&key) {
            self.stats.bytes -= size_of(&old.embd);
        }
        while self.stats.bytes + size > self.capacity {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.stats.bytes -= size_of(&e.embd);
                self.stats.evictions += 1;
            }
        }
        self.tick += 1;
        self.stats.bytes += size;
        self.entries.insert(
            key,
            Entry {
                embd: embd.into(),
                last_used: self.tick,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        ([b; 32], 0)
    }

    #[test]
    fn a_hit_returns_exactly_what_was_kept() {
        let mut c = EmbeddingCache::new(1024);
        assert!(c.get(&key(1), 4).is_none());
        c.insert(key(1), &[1.0, -2.5, 3.25, f32::MIN_POSITIVE]);
        assert_eq!(
            c.get(&key(1), 4),
            Some(&[1.0, -2.5, 3.25, f32::MIN_POSITIVE][..])
        );
        // Another image, or another chunk of the same piece, never hits.
        assert!(c.get(&key(2), 4).is_none());
        assert!(c.get(&([1; 32], 1), 4).is_none());
        // Nor does a length this model could not have produced.
        assert!(c.get(&key(1), 5).is_none());
        let s = c.stats();
        assert_eq!((s.hits, s.misses, s.bytes), (1, 4, 16));
    }

    #[test]
    fn the_least_recently_used_goes_first_and_the_bound_holds() {
        // Room for two entries of 4 floats.
        let mut c = EmbeddingCache::new(32);
        c.insert(key(1), &[1.0; 4]);
        c.insert(key(2), &[2.0; 4]);
        assert!(c.get(&key(1), 4).is_some()); // 2 is now the oldest
        c.insert(key(3), &[3.0; 4]);
        assert!(c.get(&key(2), 4).is_none());
        assert!(c.get(&key(1), 4).is_some());
        assert!(c.get(&key(3), 4).is_some());
        let s = c.stats();
        assert_eq!((s.evictions, s.bytes), (1, 32));
        // A bigger entry evicts as many as it needs.
        c.insert(key(4), &[4.0; 8]);
        assert_eq!(c.stats().bytes, 32);
        assert_eq!(c.stats().evictions, 3);
    }

    #[test]
    fn too_big_or_no_capacity_keeps_nothing() {
        let mut c = EmbeddingCache::new(0);
        c.insert(key(1), &[1.0]);
        assert!(c.get(&key(1), 1).is_none());
        let mut c = EmbeddingCache::new(8);
        c.insert(key(1), &[1.0; 3]);
        assert_eq!(c.stats().bytes, 0);
    }

    #[test]
    fn a_key_kept_again_replaces_its_entry() {
        let mut c = EmbeddingCache::new(64);
        c.insert(key(1), &[1.0; 4]);
        c.insert(key(1), &[2.0; 4]);
        assert_eq!(c.stats().bytes, 16);
        assert_eq!(c.get(&key(1), 4), Some(&[2.0; 4][..]));
    }
}
