//! Image pieces through mtmd's preprocessing (resize, normalise, patch) on
//! the caller's thread, the HTTP side's blocking pool, never on the engine
//! thread: a request with many tiles must not pause other clients' streams
//! while its pixels are turned into tensors.
//!
//! Why sharing the mtmd context is sound: `mtmd_tokenize` only reads the
//! context (the wrapper marks it `Sync` for that reason, and llama-server
//! calls it from its HTTP threads), while encoding writes the context's
//! output buffer. The lock makes that split explicit: preprocessing takes
//! it shared, the engine takes it exclusively for the length of one encode.
//! Text decode steps never touch it, so preprocessing overlaps them freely.

use super::error::EngineError;
use super::scheduler::Item;
use crate::vision::DecodedImage;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdInputChunkType, MtmdInputChunks, MtmdInputText, MtmdTokenizeError,
};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// One image piece, ready for the encoder.
pub struct ImagePiece {
    pub chunks: MtmdInputChunks,
    /// SHA-256 of the piece's size and pixels: its identity in the
    /// embedding cache, shared across requests and clients.
    pub key: [u8; 32],
    /// What it occupies: its cells (wrapper tokens included), RoPE
    /// positions and content hash, for admission and prefix reuse.
    pub item: Item,
}

impl std::fmt::Debug for ImagePiece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImagePiece")
            .field("item", &self.item)
            .finish()
    }
}

/// What one piece is made of: an image (a tile, a thumbnail, a whole
/// image), consecutive video frames that the projector merges in time
/// into one chunk (Qwen-VL's temporal patch), or an audio clip as mono
/// samples at the projector's rate (mtmd cuts it into its windows).
#[derive(Debug, Clone)]
pub enum PieceInput {
    Image(DecodedImage),
    Frames(Vec<DecodedImage>),
    Audio(Arc<[f32]>),
}

/// Loads the projector again: a fresh context, with fresh buffers.
pub type Loader = Box<dyn Fn(&LlamaModel) -> Result<MtmdContext, String> + Send + Sync>;

pub struct Preprocessor {
    // Declared before `_model`: the mtmd context refers to the text model
    // and must be freed first.
    mtmd: RwLock<MtmdContext>,
    marker: String,
    load: Loader,
    _model: Arc<LlamaModel>,
}

impl std::fmt::Debug for Preprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preprocessor").finish_non_exhaustive()
    }
}

impl Preprocessor {
    pub fn new(mtmd: MtmdContext, marker: String, model: Arc<LlamaModel>, load: Loader) -> Self {
        Preprocessor {
            mtmd: RwLock::new(mtmd),
            marker,
            load,
            _model: model,
        }
    }

    /// Replaces the mtmd context with a freshly loaded one. Pieces already
    /// preprocessed stay valid: their chunks own their tensors.
    pub fn reload(&self) -> Result<(), String> {
        let fresh = (self.load)(&self._model)?;
        *self.write() = fresh;
        Ok(())
    }

    /// Shared access: preprocessing and start-up measurements.
    pub fn read(&self) -> RwLockReadGuard<'_, MtmdContext> {
        // A panic while encoding leaves nothing half-written on the Rust
        // side; the engine reports it and goes on.
        self.mtmd.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access, for the engine thread's encodes.
    pub fn write(&self) -> RwLockWriteGuard<'_, MtmdContext> {
        self.mtmd.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Preprocesses every piece, in order. Each piece's RGB is freed as
    /// soon as its tensor exists.
    pub fn pieces(&self, inputs: Vec<PieceInput>) -> Result<Vec<ImagePiece>, EngineError> {
        inputs
            .into_iter()
            .map(|input| match input {
                PieceInput::Image(img) => self.piece(std::slice::from_ref(&img), false),
                PieceInput::Frames(frames) => self.piece(&frames, true),
                PieceInput::Audio(samples) => self.audio_piece(&samples),
            })
            .collect()
    }

    /// Tokens a clip of `n_samples` (at the projector's rate) takes, and
    /// the windows mtmd cuts it into, counted by mtmd on a sample-less
    /// bitmap: the clip's price, known before it is decoded.
    pub fn count_audio(&self, n_samples: usize) -> Option<(u32, u32)> {
        let bitmap = MtmdBitmap::audio_placeholder(n_samples).ok()?;
        let chunks = self.read().tokenize(self.markers(1), &[&bitmap]).ok()?;
        let windows = (0..chunks.len())
            .filter_map(|i| chunks.get(i))
            .filter(|c| c.chunk_type() == MtmdInputChunkType::Audio)
            .count();
        Some((
            u32::try_from(chunks.total_tokens()).ok()?,
            u32::try_from(windows).ok()?,
        ))
    }

    /// One piece from a clip's samples.
    fn audio_piece(&self, samples: &[f32]) -> Result<ImagePiece, EngineError> {
        let bitmap = MtmdBitmap::from_audio_data(samples)
            .map_err(|e| EngineError::Image(format!("audio: {e}")))?;
        let chunks = self
            .read()
            .tokenize(self.markers(1), &[&bitmap])
            .map_err(|e| EngineError::Image(format!("audio preprocessing failed: {e}")))?;
        let key = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(b"audio");
            for s in samples {
                h.update(s.to_le_bytes());
            }
            <[u8; 32]>::from(h.finalize())
        };
        Ok(ImagePiece {
            item: item(&chunks, &key),
            chunks,
            key,
        })
    }

    /// Tokens `n` consecutive `w` x `h` video frames take as one piece,
    /// counted by mtmd on pixel-less bitmaps marked mergeable: equal to one
    /// frame's count when the projector merges frames in time.
    pub fn count_frames(&self, w: u32, h: u32, n: usize) -> Option<u32> {
        let mut bitmaps = Vec::with_capacity(n);
        for _ in 0..n {
            let mut b = MtmdBitmap::placeholder(w, h).ok()?;
            b.set_mergeable(true);
            bitmaps.push(b);
        }
        let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
        let chunks = self.read().tokenize(self.markers(n), &refs).ok()?;
        u32::try_from(chunks.total_tokens()).ok()
    }

    fn markers(&self, n: usize) -> MtmdInputText {
        MtmdInputText {
            text: self.marker.repeat(n),
            add_special: false,
            parse_special: true,
        }
    }

    /// Tokens a `w` x `h` image takes, counted by mtmd's own tokenizer on a
    /// bitmap without pixels (no pixel is touched): the price of an image
    /// the projector slices in its own way, known before decoding.
    pub fn count(&self, w: u32, h: u32) -> Option<u32> {
        let bitmap = MtmdBitmap::placeholder(w, h).ok()?;
        let chunks = self.read().tokenize(self.markers(1), &[&bitmap]).ok()?;
        u32::try_from(chunks.total_tokens()).ok()
    }

    /// One piece from `images` (one image, or frames to merge in time).
    fn piece(&self, images: &[DecodedImage], mergeable: bool) -> Result<ImagePiece, EngineError> {
        let mut bitmaps = Vec::with_capacity(images.len());
        for img in images {
            let mut b = MtmdBitmap::from_image_data(img.width, img.height, &img.rgb)
                .map_err(|e| EngineError::Image(e.to_string()))?;
            b.set_mergeable(mergeable);
            bitmaps.push(b);
        }
        let refs: Vec<&MtmdBitmap> = bitmaps.iter().collect();
        let chunks = self
            .read()
            .tokenize(self.markers(images.len()), &refs)
            .map_err(|e| match e {
                MtmdTokenizeError::ImagePreprocessingError => {
                    EngineError::Image("preprocessing failed".into())
                }
                other => EngineError::Internal(other.to_string()),
            })?;
        let key = piece_key(images);
        Ok(ImagePiece {
            item: item(&chunks, &key),
            chunks,
            key,
        })
    }
}

/// What a piece occupies, for admission and prefix reuse.
fn item(chunks: &MtmdInputChunks, key: &[u8; 32]) -> Item {
    Item::Image {
        hash: u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]),
        tokens: chunks.total_tokens() as u32,
        positions: chunks.total_positions().max(0) as u32,
    }
}

/// Identity of an image piece, for prefix reuse and the embedding cache:
/// a cryptographic hash of its size and pixels (every frame's, in order,
/// for merged video frames), so that no client can make its image pass
/// for another's.
fn piece_key(images: &[DecodedImage]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for img in images {
        h.update(img.width.to_le_bytes());
        h.update(img.height.to_le_bytes());
        h.update(&img.rgb);
    }
    h.finalize().into()
}
