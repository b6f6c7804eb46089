//! Which files of a repository to serve, by llama.cpp's `-hf` rule: the
//! quant tag picks the model file (default Q4_K_M, then Q8_0, then the first
//! GGUF); files with `mmproj` in the name are never the model; of a split
//! model only the first shard is named; the mmproj is a `.gguf` with
//! `mmproj` in its name, the closest quant preferred.

/// `owner/name[:quant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSpec {
    pub repo: String,
    pub quant: Option<String>,
}

impl RepoSpec {
    pub fn parse(spec: &str) -> Result<RepoSpec, String> {
        let (repo, quant) = match spec.split_once(':') {
            Some((r, q)) if !q.is_empty() => (r, Some(q.to_string())),
            Some((r, _)) => (r, None),
            None => (spec, None),
        };
        let mut parts = repo.split('/');
        let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(o), Some(n), None)
            if !o.is_empty() && !n.is_empty() && !o.contains("..") && !n.contains(".."));
        if !ok {
            return Err(format!(
                "--hf-repo {spec:?} is not owner/name[:quant], e.g. ggml-org/SmolVLM-256M-Instruct-GGUF:Q8_0"
            ));
        }
        Ok(RepoSpec {
            repo: repo.to_string(),
            quant,
        })
    }
}

fn is_gguf(f: &str) -> bool {
    f.to_ascii_lowercase().ends_with(".gguf")
}

fn is_mmproj(f: &str) -> bool {
    f.to_ascii_lowercase().contains("mmproj")
}

/// Later shards of a split model (`-00002-of-00003.gguf`) are never named.
fn is_later_shard(f: &str) -> bool {
    let lower = f.to_ascii_lowercase();
    let Some(pos) = lower.rfind("-of-") else {
        return false;
    };
    let shard = &lower[..pos];
    shard
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 1)
}

fn has_quant(f: &str, quant: &str) -> bool {
    f.to_ascii_lowercase().contains(&quant.to_ascii_lowercase())
}

/// The model file for `quant` (or the default preference order).
pub fn model_file<'a>(files: &'a [String], quant: Option<&str>) -> Option<&'a str> {
    let models: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| is_gguf(f) && !is_mmproj(f) && !is_later_shard(f))
        .collect();
    match quant {
        Some(q) => models.iter().copied().find(|f| has_quant(f, q)),
        None => ["Q4_K_M", "Q8_0"]
            .iter()
            .find_map(|q| models.iter().copied().find(|f| has_quant(f, q)))
            .or_else(|| models.first().copied()),
    }
}

/// The mmproj next to `model`: same quant if there is one, else the first
/// (F16 before others, as the usual exports name it).
pub fn mmproj_file<'a>(files: &'a [String], model: &str) -> Option<&'a str> {
    let candidates: Vec<&str> = files
        .iter()
        .map(String::as_str)
        .filter(|f| is_gguf(f) && is_mmproj(f))
        .collect();
    let quants = ["Q4_K_M", "Q8_0", "F16", "BF16", "F32"];
    let model_quant = quants.iter().find(|q| has_quant(model, q));
    model_quant
        .and_then(|q| candidates.iter().copied().find(|f| has_quant(f, q)))
        .or_else(|| candidates.iter().copied().find(|f| has_quant(f, "f16")))
        .or_else(|| candidates.first().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn specs_parse_with_and_without_a_quant() {
        assert_eq!(
            RepoSpec::parse("ggml-org/SmolVLM-256M-Instruct-GGUF:Q8_0").unwrap(),
            RepoSpec {
                repo: "ggml-org/SmolVLM-256M-Instruct-GGUF".into(),
                quant: Some("Q8_0".into())
            }
        );
        assert_eq!(RepoSpec::parse("a/b").unwrap().quant, None);
        for bad in ["", "a", "a/b/c", "/b", "a/", "../x/y"] {
            assert!(RepoSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_quant_tag_picks_the_model_and_mmproj_is_never_it() {
        let f = files(&[
            "README.md",
            "mmproj-SmolVLM-256M-Instruct-f16.gguf",
            "mmproj-SmolVLM-256M-Instruct-Q8_0.gguf",
            "SmolVLM-256M-Instruct-f16.gguf",
            "SmolVLM-256M-Instruct-Q8_0.gguf",
        ]);
        // No Q4_K_M: Q8_0 is next in line.
        let m = model_file(&f, None).unwrap();
        assert_eq!(m, "SmolVLM-256M-Instruct-Q8_0.gguf");
        assert_eq!(
            mmproj_file(&f, m),
            Some("mmproj-SmolVLM-256M-Instruct-Q8_0.gguf")
        );
        let m = model_file(&f, Some("f16")).unwrap();
        assert_eq!(m, "SmolVLM-256M-Instruct-f16.gguf");
        assert_eq!(
            mmproj_file(&f, m),
            Some("mmproj-SmolVLM-256M-Instruct-f16.gguf")
        );
        assert_eq!(model_file(&f, Some("Q2_K")), None);
    }

    #[test]
    fn q4_k_m_first_then_the_first_gguf_and_only_first_shards() {
        let f = files(&["m-Q8_0.gguf", "m-Q4_K_M.gguf", "mmproj-m-f16.gguf"]);
        assert_eq!(model_file(&f, None), Some("m-Q4_K_M.gguf"));
        assert_eq!(mmproj_file(&f, "m-Q4_K_M.gguf"), Some("mmproj-m-f16.gguf"));
        let f = files(&["big-00002-of-00002.gguf", "big-00001-of-00002.gguf"]);
        assert_eq!(model_file(&f, None), Some("big-00001-of-00002.gguf"));
        assert_eq!(mmproj_file(&f, "big-00001-of-00002.gguf"), None);
    }
}
