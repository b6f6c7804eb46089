//! A job's prompt as parts for the batcher: the text tokens (tokenized
//! before the job arrived) and each image piece through mtmd on its own
//! (preprocessed to be counted, not encoded), so pieces can be
//! interleaved, reused by content hash and counted in cells independently
//! of the tile planner.

use super::{Batcher, Part, internal};
use crate::engine::scheduler::Item;
use crate::engine::{EngineError, Job, PromptUsage};
use llama_cpp_2::mtmd::{MtmdBitmap, MtmdInputChunks, MtmdInputText, MtmdTokenizeError};
use std::hash::{Hash, Hasher};

impl Batcher<'_> {
    pub(super) fn prepare(&self, job: &Job) -> Result<(Vec<Part>, PromptUsage), EngineError> {
        let segments = &job.request.prompt.segments;
        if segments.len() != job.request.images.len() + 1 {
            return Err(internal("image count does not match the prompt's markers"));
        }
        let mut parts = Vec::new();
        let mut usage = PromptUsage::default();
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                let img = &job.request.images[i - 1];
                let chunks = self.preprocess(img)?;
                let tokens = chunks.total_tokens() as u32;
                let item = Item::Image {
                    hash: piece_hash(img),
                    tokens,
                    positions: chunks.total_positions().max(0) as u32,
                };
                usage.image_tokens += tokens;
                parts.push(Part::Image { image: i - 1, item });
            }
            parts.extend(seg.iter().map(|&t| Part::Token(t)));
        }
        usage.prompt_tokens = parts.iter().map(|p| p.item().tokens()).sum();
        Ok((parts, usage))
    }

    /// One image piece through mtmd's tokenizer: its wrapper tokens and
    /// preprocessed (resized, normalised) pixels, not yet encoded.
    pub(super) fn preprocess(
        &self,
        img: &crate::vision::DecodedImage,
    ) -> Result<MtmdInputChunks, EngineError> {
        let mtmd = self
            .mtmd
            .as_ref()
            .ok_or_else(|| internal("no vision context"))?;
        let bitmap = MtmdBitmap::from_image_data(img.width, img.height, &img.rgb)
            .map_err(|e| EngineError::Image(e.to_string()))?;
        let text = MtmdInputText {
            text: self.marker.clone(),
            add_special: false,
            parse_special: true,
        };
        mtmd.tokenize(text, &[&bitmap]).map_err(|e| match e {
            MtmdTokenizeError::ImagePreprocessingError => {
                EngineError::Image("preprocessing failed".into())
            }
            other => internal(other),
        })
    }
}

/// Identity of an image piece for prefix reuse: its size and pixels.
fn piece_hash(img: &crate::vision::DecodedImage) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    img.width.hash(&mut h);
    img.height.hash(&mut h);
    img.rgb.hash(&mut h);
    h.finish()
}
