//! Slot bookkeeping for continuous batching: what each sequence holds in
//! the KV cache, and which free sequence a new prompt should take to reuse
//! the longest prefix. Pure code, unit-tested without a model.

/// One unit of a sequence, as it sits in the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A text token (prompt or generated).
    Token(i32),
    /// One image piece (tile or thumbnail), identified by the hash of its
    /// pixels and size, which the image bytes and the tile plan determine.
    /// Equal placeholder tokens never make two different images match.
    Image {
        hash: u64,
        tokens: u32,
        positions: u32,
    },
}

impl Item {
    /// KV cells the item takes.
    pub fn tokens(&self) -> u32 {
        match self {
            Item::Token(_) => 1,
            Item::Image { tokens, .. } => *tokens,
        }
    }

    /// Positions the item advances (fewer than tokens under M-RoPE).
    pub fn positions(&self) -> u32 {
        match self {
            Item::Token(_) => 1,
            Item::Image { positions, .. } => *positions,
        }
    }
}

/// Number of leading items `cached` and `prompt` share.
pub fn common_prefix(cached: &[Item], prompt: &[Item]) -> usize {
    cached
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count()
}

/// What the chooser needs to know about a free slot.
#[derive(Debug, Clone, Copy)]
pub struct FreeSlot<'a> {
    pub index: usize,
    pub cached: &'a [Item],
    /// Engine step at which the slot was last used (smaller = older).
    pub last_used: u64,
}

/// The free slot whose cache shares the longest prefix with `prompt`; ties
/// go to the least recently used slot. Returns the slot and the number of
/// reusable items, always leaving at least one prompt item to evaluate (its
/// logits start the answer).
pub fn choose_slot(free: &[FreeSlot], prompt: &[Item]) -> Option<(usize, usize)> {
    let max_reuse = prompt.len().saturating_sub(1);
    free.iter()
        .map(|s| {
            let reuse = common_prefix(s.cached, prompt).min(max_reuse);
            // An image piece is reused whole or not at all; common_prefix
            // compares whole items, so a partial image never matches.
            (s.index, reuse, s.last_used)
        })
        .max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))
        .map(|(i, reuse, _)| (i, reuse))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(hash: u64) -> Item {
        Item::Image {
            hash,
            tokens: 10,
            positions: 10,
        }
    }

    #[test]
    fn different_images_with_equal_placeholders_never_match() {
        let a = [Item::Token(1), img(7), Item::Token(2)];
        let b = [Item::Token(1), img(8), Item::Token(2)];
        assert_eq!(common_prefix(&a, &b), 1);
        assert_eq!(common_prefix(&a, &a), 3);
    }

    #[test]
    fn longest_prefix_then_least_recently_used() {
        let prompt = [Item::Token(1), img(7), Item::Token(2), Item::Token(3)];
        let short = [Item::Token(1)];
        let long = [Item::Token(1), img(7), Item::Token(2), Item::Token(9)];
        let free = [
            FreeSlot {
                index: 0,
                cached: &short,
                last_used: 1,
            },
            FreeSlot {
                index: 1,
                cached: &long,
                last_used: 5,
            },
        ];
        assert_eq!(choose_slot(&free, &prompt), Some((1, 3)));
        let none: [Item; 0] = [];
        let cold = [
            FreeSlot {
                index: 0,
                cached: &none,
                last_used: 9,
            },
            FreeSlot {
                index: 1,
                cached: &none,
                last_used: 2,
            },
        ];
        assert_eq!(choose_slot(&cold, &prompt), Some((1, 0)));
    }

    #[test]
    fn an_identical_prompt_still_evaluates_its_last_item() {
        let prompt = [Item::Token(1), Item::Token(2)];
        let free = [FreeSlot {
            index: 0,
            cached: &prompt,
            last_used: 0,
        }];
        assert_eq!(choose_slot(&free, &prompt), Some((0, 1)));
    }
}
