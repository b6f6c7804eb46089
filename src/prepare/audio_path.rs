//! A request's audio clips from their URLs to the pieces the encoder gets:
//! bytes fetched under the image fetch policy, the header sniffed, read and
//! checked, the clip priced by mtmd's own count for its length at the
//! encoder's rate, and only then decoded (`audio/`), within a grant of the
//! decode budget and `--audio-timeout`.

use super::Preparer;
use super::audio_parts::{AudioRef, PreparedAudio, audio_error, usage};
use super::error::PrepareError;
use super::images::AUDIO_WORDS;
use crate::audio::probe::probe;
use crate::audio::{decode, samples_at};
use crate::engine::ModelInfo;
use crate::engine::pieces::{PieceInput, Preprocessor};
use std::sync::Arc;

impl Preparer {
    /// Every clip of a request, in order.
    pub(super) async fn audios(
        &self,
        info: &ModelInfo,
        refs: Vec<AudioRef>,
        deadline: Option<std::time::Instant>,
    ) -> Result<Vec<PreparedAudio>, PrepareError> {
        let Some(first) = refs.first() else {
            return Ok(Vec::new());
        };
        let (Some(rate), Some(pre)) = (info.audio_rate, &info.preprocessor) else {
            let why = match (&info.audio_off, &info.preprocessor) {
                (Some(off), _) => off.as_str(),
                (None, Some(_)) => "its projector has no audio encoder",
                (None, None) => "it was started without a projector (--mmproj)",
            };
            return Err(PrepareError::invalid(format!(
                "model `{}` cannot hear audio: {why}; serve an audio model (Qwen2-Audio, Qwen2.5-Omni, Music Flamingo, ...)",
                self.model_id
            ))
            .param(first.param.clone())
            .code("audio_not_supported"));
        };
        let max = self.limits.audio.max_clips;
        if refs.len() > max {
            return Err(PrepareError::invalid(format!(
                "the request has {} audio clips, above the limit of {max} (--max-audios)",
                refs.len()
            ))
            .param("messages"));
        }
        let mut out = Vec::with_capacity(refs.len());
        for r in refs {
            out.push(self.audio(&r, rate, pre, deadline).await?);
        }
        Ok(out)
    }

    async fn audio(
        &self,
        r: &AudioRef,
        rate: u32,
        pre: &Arc<Preprocessor>,
        deadline: Option<std::time::Instant>,
    ) -> Result<PreparedAudio, PrepareError> {
        let s = self.limits.audio.clone();
        let param = r.param.clone();
        let max = self.limits.audio.max_bytes;
        let bytes: Arc<[u8]> = self
            .media_bytes(&r.url, &param, max, &AUDIO_WORDS)
            .await?
            .into();
        // The header and the price: no sample decoded yet.
        let (pre2, b, p) = (pre.clone(), bytes.clone(), param.clone());
        let (header, tokens, windows) = self
            .images
            .run(move || {
                let header = probe(b, s.max_seconds).map_err(|e| audio_error(e, &p))?;
                let n = samples_at(header.frames, header.rate, rate) as usize;
                let (tokens, windows) = pre2.count_audio(n).ok_or_else(|| {
                    PrepareError::invalid(format!("{p}: the projector could not price this clip"))
                        .param(p.clone())
                        .code("invalid_audio")
                })?;
                Ok::<_, PrepareError>((header, tokens, windows))
            })
            .await
            .map_err(super::blocking_failed)??;
        let need = decode::bytes_needed(&header, rate) as u64;
        let hold = self
            .decode_budget
            .acquire(need, deadline)
            .await
            .map_err(super::image_path::budget_error)?;
        let timeout = self.limits.audio.timeout;
        let (h, p) = (header.clone(), param.clone());
        let samples = self
            .images
            .run(move || {
                let until = std::time::Instant::now() + timeout;
                decode::decode(bytes, &h, rate, until, timeout.as_secs_f32())
                    .map_err(|e| audio_error(e, &p))
            })
            .await
            .map_err(super::blocking_failed)??;
        Ok(PreparedAudio {
            usage: usage(&header, samples.len() as u64, rate, windows, tokens),
            piece: PieceInput::Audio(samples.into()),
            hold,
        })
    }
}
