//! Each room's settings, from the flags: clap's ranges and `check` already
//! hold every bound, so nothing is clamped again here or in the rooms.

use super::Config;
use crate::engine::{EngineConfig, OnLoaded, projector::TileSettings};
use crate::metrics::Metrics;
use crate::prepare;
use crate::vision::{RemotePolicy, TileLimits};
use std::path::PathBuf;
use std::sync::Arc;

impl Config {
    /// The KV cache's settings, and its size for this model at the
    /// configured context (llama.cpp rounds the context up to 256 cells).
    fn kv_cache(&self, model: &std::path::Path) -> crate::engine::KvCache {
        use super::FlashAttn;
        let c = &self.cache;
        let bytes = crate::engine::gguf_meta::KvShape::of(model).map_or(0, |shape| {
            let cells = match self.ctx_size {
                0 => shape.trained,
                n => u64::from(n).div_ceil(256) * 256,
            };
            c.bytes(cells, shape)
        });
        let (flash_attn, fa_name) = match c.flash_attn {
            FlashAttn::Auto => (-1, "auto"),
            FlashAttn::Off => (0, "off"),
            FlashAttn::On => (1, "on"),
        };
        crate::engine::KvCache {
            type_k: c.cache_type_k.engine(),
            type_v: c.cache_type_v.engine(),
            flash_attn,
            info: crate::engine::KvCacheInfo {
                type_k: c.cache_type_k.name(),
                type_v: c.cache_type_v.name(),
                flash_attn: fa_name,
                bytes,
            },
        }
    }

    /// The engine's settings.
    pub fn engine(
        &self,
        model: PathBuf,
        metrics: Arc<Metrics>,
        on_loaded: OnLoaded,
    ) -> EngineConfig {
        EngineConfig {
            kv: self.kv_cache(&model),
            metrics,
            model,
            mmproj: self.mmproj.clone(),
            ctx_size: self.ctx_size,
            batch_size: self.batch_size,
            threads: self.threads,
            n_gpu_layers: self.n_gpu_layers,
            mmproj_offload: !self.no_mmproj_offload,
            max_queue: self.max_queue,
            draft_max: self.speculation.draft_max(),
            draft_model: self.speculation.model_draft.clone(),
            parallel: self.parallel,
            image_max_tokens: self.image_max_tokens,
            tiles: TileSettings {
                tile_size: self.tile_size,
                thumbnail_budget: self.thumbnail_tokens,
                tiling: self.tiling,
            },
            image_cache_bytes: usize::try_from(self.image_cache_mb << 20).unwrap_or(usize::MAX),
            backends_dir: self.backends_dir.clone(),
            on_loaded: Some(on_loaded),
            embeddings: self.embedding.engine(),
        }
    }

    /// The preparation room's settings.
    pub fn prepare(&self) -> Result<prepare::Settings, String> {
        Ok(prepare::Settings {
            limits: prepare::Limits {
                max_image_bytes: self.max_image_bytes,
                max_image_pixels: self.max_image_pixels,
                max_images: self.max_images,
                max_request_image_bytes: self.max_request_image_bytes,
                tiles: TileLimits {
                    min_tiles: self.min_tiles,
                    max_tiles: self.max_tiles,
                },
                image: crate::vision::ImageOptions {
                    min_tokens: u32::try_from(self.image_min_tokens).ok(),
                    ..Default::default()
                },
                remote: RemotePolicy {
                    enabled: !self.no_remote_images,
                    allow_http: self.allow_http_image_urls,
                    allow_private: self.allow_private_image_urls,
                    allow_ips: self
                        .image_fetch_allow_ip
                        .iter()
                        .map(|s| s.parse())
                        .collect::<Result<_, String>>()
                        .map_err(|e| format!("--image-fetch-allow-ip: {e}"))?,
                    timeout: std::time::Duration::from_secs(self.image_fetch_timeout),
                    max_redirects: self.image_fetch_max_redirects,
                },
                media: self
                    .media_path
                    .as_deref()
                    .map(crate::vision::MediaRoot::new)
                    .transpose()?,
                video: self.video.settings(),
                audio: self.audio.settings(),
            },
            decode_memory: self.max_decode_memory << 20,
            log_prompts: self.log_prompts,
            model_id: self.model_id(),
        })
    }
}

impl Config {
    /// `--cors-origin` values that are valid header values.
    pub fn cors_origins_parsed(&self) -> Vec<axum::http::HeaderValue> {
        self.cors_origin
            .iter()
            .filter_map(|o| axum::http::HeaderValue::from_str(o.trim()).ok())
            .collect()
    }

    /// The id `/v1/models` reports.
    pub fn model_id(&self) -> String {
        if let Some(a) = &self.alias {
            return a.clone();
        }
        self.model
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|f| {
                let f = f.to_string_lossy();
                f.strip_suffix(".gguf").unwrap_or(&f).to_string()
            })
            .unwrap_or_else(|| "tessera".into())
    }
}
