//! Embeddings (`--embeddings`): which pooling the context uses, and the
//! vector a client gets. A pooled vector covers the tokens of one decode,
//! so the batcher puts an embedding input into one decode, whole.

use llama_cpp_2::context::params::LlamaPoolingType;
use llama_cpp_2::model::LlamaModel;

/// `chosen`, or the model's own (`{arch}.pooling_type`) when unspecified.
/// A pooling that gives no one vector per input (none, rank) fails the load.
pub fn resolve(model: &LlamaModel, chosen: LlamaPoolingType) -> Result<LlamaPoolingType, String> {
    let pooling = match chosen {
        LlamaPoolingType::Unspecified => {
            let arch = model
                .meta_val_str("general.architecture")
                .unwrap_or_default();
            model
                .meta_val_str(&format!("{arch}.pooling_type"))
                .ok()
                .and_then(|v| v.trim().parse::<i32>().ok())
                .map_or(LlamaPoolingType::None, LlamaPoolingType::from)
        }
        p => p,
    };
    match pooling {
        LlamaPoolingType::Mean | LlamaPoolingType::Cls | LlamaPoolingType::Last => Ok(pooling),
        other => Err(format!(
            "--embeddings needs one vector per input, but this model's pooling is {}; choose --pooling mean, cls or last",
            name(other)
        )),
    }
}

pub fn name(p: LlamaPoolingType) -> &'static str {
    match p {
        LlamaPoolingType::Mean => "mean",
        LlamaPoolingType::Cls => "cls",
        LlamaPoolingType::Last => "last",
        LlamaPoolingType::Rank => "rank",
        LlamaPoolingType::None => "none",
        LlamaPoolingType::Unspecified => "unspecified",
    }
}

/// Unit length (Euclidean), as llama-server and OpenAI return embeddings;
/// a zero vector stays zero.
pub fn normalize(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return v.to_vec();
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn vectors_come_out_unit_length() {
        let v = normalize(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert_eq!(normalize(&[0.0, 0.0]), vec![0.0, 0.0]);
    }
}
