//! What preparation builds from the model's facts once it has loaded.

use super::fence::TextFence;
use super::template::ChatTemplate;
use super::tokenize::PromptTokenizer;
use crate::engine::ModelInfo;

/// What preparation builds from the model's facts: its template, the fence
/// around client text and the tokenizer. Per process: the fence and the
/// media marker are random, so no client text can forge them.
#[derive(Debug)]
pub struct PromptModel {
    pub template: ChatTemplate,
    pub fence: TextFence,
    pub tokenizer: PromptTokenizer,
    pub media_marker: String,
    /// Tokens one sequence holds: what a prompt must fit.
    pub n_ctx_seq: u32,
}

/// `--chat-template-file`: its path and source.
pub type TemplateFile = (String, String);

impl PromptModel {
    pub(super) fn build(info: &ModelInfo, file: Option<&TemplateFile>) -> Result<Self, String> {
        let (bos, eos) = (info.bos.clone(), info.eos.clone());
        let n_ctx_seq = info.n_ctx / info.parallel.max(1);
        let mut template = match file {
            Some((path, source)) => ChatTemplate::from_file(path, source, bos.clone(), eos)?,
            None => ChatTemplate::new(info.chat_template.clone(), bos.clone(), eos),
        };
        template.set_limits(super::template::RenderLimits::for_context(n_ctx_seq));
        let fence = TextFence::random();
        let vocab = info.vocab.model().vocab();
        let bos_text = (vocab.should_add_bos() && !bos.is_empty()).then_some(bos);
        let tokenizer = PromptTokenizer::new(
            info.vocab.clone(),
            fence.clone(),
            info.media_marker.clone(),
            bos_text,
            n_ctx_seq,
        );
        tracing::info!("chat template: {}", template.origin.name());
        Ok(PromptModel {
            template,
            fence,
            tokenizer,
            media_marker: info.media_marker.clone(),
            n_ctx_seq,
        })
    }
}
