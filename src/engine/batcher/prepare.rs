//! A job's prompt as parts for the batcher: the text tokens and the image
//! pieces, both prepared before the job arrived (tokenized and
//! preprocessed on the HTTP side), so pieces can be interleaved, reused by
//! content hash and counted in cells independently of the tile planner.

use super::{Batcher, Part, internal};
use crate::engine::error::EngineError;
use crate::engine::job::Job;
use crate::engine::request::PromptUsage;

impl Batcher<'_> {
    pub(super) fn prepare(&self, job: &Job) -> Result<(Vec<Part>, PromptUsage), EngineError> {
        let segments = &job.request.prompt.segments;
        if segments.len() != job.request.images.len() + 1 {
            return Err(internal("image count does not match the prompt's markers"));
        }
        if !job.request.images.is_empty() && self.mtmd.is_none() {
            return Err(internal("no vision context"));
        }
        let mut parts = Vec::new();
        for (i, seg) in segments.iter().enumerate() {
            if i > 0 {
                let item = job.request.images[i - 1].item;
                parts.push(Part::Image { image: i - 1, item });
            }
            parts.extend(seg.iter().map(|&t| Part::Token(t)));
        }
        Ok((parts, job.request.usage()))
    }
}
