//! Draft-free speculation (prompt lookup): the tokens that followed the
//! last occurrence of the sequence's latest n-gram are guessed to follow
//! again. Answers that copy from their prompt (extraction, OCR, code
//! edits) guess right often; the guesses are checked in the same decode
//! as the token before them, so a right guess saves a whole step and a
//! wrong one costs a few batch rows.

/// The draft for `history` (the sequence's tokens, oldest first, `None`
/// where an image sits, which no n-gram crosses): up to `max` tokens that
/// followed the most recent earlier occurrence of the longest of its last
/// `n_max`..=`n_min` tokens.
pub fn draft(history: &[Option<i32>], n_min: usize, n_max: usize, max: usize) -> Vec<i32> {
    if max == 0 || n_min == 0 {
        return Vec::new();
    }
    for n in (n_min..=n_max).rev() {
        let Some(start) = history.len().checked_sub(n) else {
            continue;
        };
        let tail = &history[start..];
        if tail.iter().any(Option::is_none) {
            continue;
        }
        // The most recent earlier occurrence: right before the tail.
        let found = (0..start).rev().find(|&j| &history[j..j + n] == tail);
        if let Some(j) = found {
            let follows: Vec<i32> = history[j + n..]
                .iter()
                .take(max)
                .map_while(|t| *t)
                .collect();
            if !follows.is_empty() {
                return follows;
            }
        }
    }
    Vec::new()
}

/// Guesses cost batch rows (and draft-model decodes) whether right or
/// wrong: a sequence whose guesses all missed rests 1, 2, 4, ... up to 32
/// steps before guessing again, and any confirmed guess ends the rest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Backoff {
    misses: u32,
    resting: u32,
}

impl Backoff {
    /// Whether to skip guessing this step (counts the rest down).
    pub fn rest(&mut self) -> bool {
        if self.resting > 0 {
            self.resting -= 1;
            return true;
        }
        false
    }

    /// A step's guesses: any confirmed, or all missed.
    pub fn record(&mut self, confirmed: bool) {
        if confirmed {
            self.misses = 0;
        } else {
            self.misses = (self.misses + 1).min(6);
            self.resting = 1 << (self.misses - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(tokens: &[i32]) -> Vec<Option<i32>> {
        tokens.iter().map(|&t| Some(t)).collect()
    }

    #[test]
    fn the_tokens_after_the_last_match_are_guessed() {
        // "1 2 3 4 5 ... 1 2 3" -> "4 5"
        let history = h(&[1, 2, 3, 4, 5, 9, 1, 2, 3]);
        assert_eq!(draft(&history, 1, 3, 8), vec![4, 5, 9, 1, 2, 3]);
        assert_eq!(draft(&history, 1, 3, 2), vec![4, 5]);
    }

    #[test]
    fn the_longest_n_gram_and_the_latest_match_win() {
        // "7 3" occurs twice; the full "8 7 3" only once, earlier.
        let history = h(&[8, 7, 3, 1, 7, 3, 2, 8, 7, 3]);
        assert_eq!(draft(&history, 1, 3, 1), vec![1]);
        assert_eq!(draft(&history, 1, 2, 1), vec![2]);
    }

    #[test]
    fn no_match_no_draft_and_images_break_n_grams() {
        assert!(draft(&h(&[1, 2, 3]), 1, 3, 4).is_empty());
        assert!(draft(&[], 1, 3, 4).is_empty());
        // The only earlier "5" is followed by an image: nothing to copy.
        let history = vec![Some(5), None, Some(6), Some(5)];
        assert!(draft(&history, 1, 2, 4).is_empty());
        // A tail that holds an image is no n-gram.
        let history = vec![Some(5), Some(6), Some(5), None];
        assert!(draft(&history, 1, 1, 4).is_empty());
    }

    #[test]
    fn misses_rest_longer_and_a_hit_ends_the_rest() {
        let mut b = Backoff::default();
        assert!(!b.rest());
        let rests = |b: &mut Backoff| std::iter::from_fn(|| b.rest().then_some(())).count();
        b.record(false);
        assert_eq!(rests(&mut b), 1);
        b.record(false);
        assert_eq!(rests(&mut b), 2);
        for _ in 0..10 {
            b.record(false);
        }
        assert_eq!(rests(&mut b), 32);
        b.record(true);
        assert_eq!(rests(&mut b), 0);
    }
}
