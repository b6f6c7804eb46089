//! An image piece evaluated into a sequence through the embedding cache:
//! its text chunks (wrapper tokens) are decoded as mtmd's helper does, and
//! each image chunk is decoded from the projector's output, which comes
//! from the cache or, on a miss, from the encoder (and is then kept).
//!
//! The one place with `unsafe` for mtmd. The invariants, per call:
//! - the raw `mtmd_context`, `llama_context` and `llama_model` come from
//!   live wrappers borrowed for the whole call (`&mut` for the contexts, so
//!   nothing else uses them meanwhile);
//! - a chunk pointer comes from `MtmdInputChunks::get` on the piece, which
//!   outlives the call;
//! - the embeddings given to `mtmd_helper_decode_image_chunk` hold
//!   `n_tokens(chunk) * llama_model_n_embd_inp(model)` floats (the length is
//!   checked before use; the cache refuses any other length) and stay
//!   untouched until it returns; mtmd only reads them (it takes `*mut` for
//!   llama's batch struct);
//! - `mtmd_get_output_embd` is read right after a successful
//!   `mtmd_encode_chunk`, for that chunk's length, before any other encode.

use super::embed_cache::EmbeddingCache;
use super::error::EngineError;
use super::pieces::ImagePiece;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{MtmdContext, MtmdInputChunkType};

/// What evaluating a piece took: its end position, and how many of its
/// image chunks came from the cache and how many were encoded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evaluated {
    pub pos: i32,
    pub cached: u32,
    pub encoded: u32,
    /// Seconds in the vision encoder (the cache saves this, not the decode).
    pub encode_secs: f64,
}

/// Evaluates `piece` into sequence `seq` from position `pos`; with
/// `logits_last`, the last token's logits are computed.
#[allow(clippy::too_many_arguments)]
pub fn eval_piece(
    mtmd: &mut MtmdContext,
    ctx: &mut LlamaContext,
    model: &LlamaModel,
    cache: &mut EmbeddingCache,
    piece: &ImagePiece,
    pos: i32,
    seq: i32,
    n_batch: i32,
    logits_last: bool,
) -> Result<Evaluated, EngineError> {
    let failed = |e: String| EngineError::Image(format!("encoding failed: {e}"));
    // SAFETY: the model pointer is live for the call (`model` is borrowed).
    let n_embd = unsafe { llama_cpp_sys_2::llama_model_n_embd_inp(model.as_raw()) };
    let n_embd = usize::try_from(n_embd).map_err(|_| failed("negative embedding width".into()))?;
    let chunks = &piece.chunks;
    let mut done = Evaluated {
        pos,
        ..Evaluated::default()
    };
    for i in 0..chunks.len() {
        let chunk = chunks
            .get(i)
            .ok_or_else(|| failed("image chunk out of range".into()))?;
        let last = logits_last && i + 1 == chunks.len();
        let mut next = done.pos;
        let rc = match chunk.chunk_type() {
            // Audio windows go the same way: mtmd decodes their
            // embeddings with 1-D positions.
            MtmdInputChunkType::Image | MtmdInputChunkType::Audio => {
                let key = (piece.key, i as u32);
                let len = chunk.n_tokens() * n_embd;
                let embd: *const f32 = match cache.get(&key, len) {
                    Some(kept) => {
                        done.cached += 1;
                        kept.as_ptr()
                    }
                    None => {
                        let started = std::time::Instant::now();
                        mtmd.encode_chunk(&chunk)
                            .map_err(|e| failed(e.to_string()))?;
                        done.encode_secs += started.elapsed().as_secs_f64();
                        done.encoded += 1;
                        // SAFETY: read right after this chunk's encode, for its length.
                        let out =
                            unsafe { llama_cpp_sys_2::mtmd_get_output_embd(mtmd.as_raw_mut()) };
                        if out.is_null() {
                            return Err(failed("the encoder gave no output".into()));
                        }
                        let fresh = unsafe { std::slice::from_raw_parts(out, len) };
                        // Never decode, nor keep for others, what would
                        // only give NaN logits.
                        if !fresh.iter().all(|x| x.is_finite()) {
                            return Err(EngineError::NonFiniteEncoderOutput);
                        }
                        cache.insert(key, fresh);
                        out
                    }
                };
                // SAFETY: see the module invariants; `embd` holds `len` floats
                // (the cache's copy or mtmd's own buffer) and is only read.
                unsafe {
                    llama_cpp_sys_2::mtmd_helper_decode_image_chunk(
                        mtmd.as_raw_mut(),
                        ctx.as_raw_mut(),
                        chunk.as_raw(),
                        embd.cast_mut(),
                        done.pos,
                        seq,
                        n_batch,
                        &mut next,
                        None,
                        std::ptr::null_mut(),
                    )
                }
            }
            // Text (wrapper tokens) and anything else: mtmd's own path.
            // SAFETY: see the module invariants.
            _ => unsafe {
                llama_cpp_sys_2::mtmd_helper_eval_chunk_single(
                    mtmd.as_raw_mut(),
                    ctx.as_raw_mut(),
                    chunk.as_raw(),
                    done.pos,
                    seq,
                    n_batch,
                    last,
                    &mut next,
                )
            },
        };
        if rc != 0 {
            return Err(failed(format!(
                "llama.cpp returned {rc} for chunk {i} of the piece"
            )));
        }
        done.pos = next;
    }
    Ok(done)
}
