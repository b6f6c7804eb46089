//! Log-probabilities as OpenAI reports them: from the model's raw logits
//! (a softmax over the whole vocabulary), before any sampling filter, bias
//! or penalty touches them. Computed only for requests that ask.

/// One generated token with its log-probability and, when asked, the most
/// likely tokens at its position.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
    pub top: Vec<TopLogprob>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TopLogprob {
    pub token: String,
    pub bytes: Vec<u8>,
    pub logprob: f32,
}

/// `chosen`'s log-probability and the `n` most likely token ids with
/// theirs, most likely first (ties by lower id, so results are stable).
pub fn log_softmax_top(logits: &[f32], chosen: usize, n: usize) -> (f32, Vec<(usize, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    // Summed in f64: 150k terms in f32 lose the small ones.
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_z = f64::from(max) + sum.ln();
    let lp = |l: f32| (f64::from(l) - log_z) as f32;
    let chosen_lp = logits.get(chosen).map_or(f32::NEG_INFINITY, |&l| lp(l));
    let n = n.min(logits.len());
    if n == 0 {
        return (chosen_lp, Vec::new());
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    idx.select_nth_unstable_by(n - 1, order);
    idx.truncate(n);
    idx.sort_by(order);
    (
        chosen_lp,
        idx.into_iter().map(|i| (i, lp(logits[i]))).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_sum_to_one_and_the_top_is_ordered() {
        let logits = [1.0f32, 3.0, 2.0, 3.0, -50.0];
        let (lp, top) = log_softmax_top(&logits, 2, 3);
        let total: f64 = (0..logits.len())
            .map(|i| f64::from(log_softmax_top(&logits, i, 0).0).exp())
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        assert_eq!(
            top.iter().map(|t| t.0).collect::<Vec<_>>(),
            vec![1, 3, 2],
            "ties by id"
        );
        assert_eq!(top[2].1, lp);
        assert!(top[0].1 > lp && lp < 0.0);
    }

    #[test]
    fn edge_cases_do_not_panic() {
        assert_eq!(log_softmax_top(&[0.0], 0, 20).1.len(), 1);
        assert_eq!(log_softmax_top(&[0.0, 0.0], 9, 0).0, f32::NEG_INFINITY);
        let (lp, _) = log_softmax_top(&[0.0, f32::NEG_INFINITY], 0, 1);
        assert_eq!(lp, 0.0);
    }
}
