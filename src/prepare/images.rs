//! A chat request's images, from their URLs to the pieces the encoder
//! gets: fetching remote images, then decoding, planning and cutting.

use super::error::{PrepareError, image_error};
use crate::engine::pieces::Preprocessor;
use crate::openai::{
    ImageDetail, ImageOffset, ImageSize, ImageTiling, ImageUrl, ImageUsage, MmProcessorKwargs,
    ThumbnailUsage,
};
use crate::vision::budget::{ImageCost, image_cost};
use crate::vision::tiling::{Detail, RequestedDetail, TilePlan};
use crate::vision::whole::{Oracle, plan_image_with};
use crate::vision::{
    DecodedImage, Header, ImageOptions, ImageSource, ProjectorProfile, TilingPolicy, VisionError,
    decode_to, image_bytes, probe, remote, render, source,
};

/// Request limits checked before anything reaches the engine.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_image_bytes: usize,
    pub max_image_pixels: u64,
    pub max_images: usize,
    pub max_request_image_bytes: usize,
    pub tiles: crate::vision::TileLimits,
    /// The server's defaults for every image (`--image-min-tokens`).
    pub image: crate::vision::ImageOptions,
    pub remote: crate::vision::RemotePolicy,
    /// `--media-path`: where `file://` images may be read from (none: off).
    pub media: Option<crate::vision::MediaRoot>,
    pub video: crate::video::VideoSettings,
    pub audio: crate::audio::AudioSettings,
}

/// How a media kind fetched under the image policy names itself in errors.
pub(super) struct MediaWords {
    /// The part's URL field, where the policy's messages say `image_url`.
    pub(super) field: &'static str,
    /// The kind, where they say `image`.
    pub(super) noun: &'static str,
    pub(super) code: &'static str,
}

pub(super) const VIDEO_WORDS: MediaWords = MediaWords {
    field: "video_url",
    noun: "video",
    code: "invalid_video",
};

pub(super) const AUDIO_WORDS: MediaWords = MediaWords {
    field: "audio",
    noun: "audio",
    code: "invalid_audio",
};

/// The fetch policy's errors speak of images; these are another kind's.
pub(super) fn source_error(e: VisionError, param: &str, w: &MediaWords) -> PrepareError {
    let text = e
        .to_string()
        .replace("image_url", w.field)
        .replace("image", w.noun);
    PrepareError::invalid(format!("{param}: {text}"))
        .param(param.to_string())
        .code(w.code)
}

/// An image URL with its requested detail and the request path used to
/// locate errors.
pub(super) struct ImageRef {
    pub(super) url: String,
    /// The image part's own settings, with the request's and the server's
    /// merged under them.
    pub(super) options: ImageOptions,
    pub(super) param: String,
}

/// An `image_url` part's settings (`detail`, and the extensions
/// `min_tokens`, `max_tokens`, `tiling`).
pub(super) fn part_options(u: &ImageUrl, param: &str) -> Result<ImageOptions, PrepareError> {
    let detail = match u.detail.unwrap_or_default() {
        ImageDetail::Auto => RequestedDetail::Auto,
        ImageDetail::Low => RequestedDetail::Low,
        ImageDetail::High => RequestedDetail::High,
    };
    let options = ImageOptions {
        detail,
        tiling: u.tiling.map(tiling),
        min_tokens: u.min_tokens,
        max_tokens: u.max_tokens,
        ..Default::default()
    };
    positive(&options, param)?;
    Ok(options)
}

/// `mm_processor_kwargs`, for every image of the request.
pub(super) fn request_options(k: Option<&MmProcessorKwargs>) -> Result<ImageOptions, PrepareError> {
    let Some(k) = k else {
        return Ok(ImageOptions::default());
    };
    let options = ImageOptions {
        tiling: k.tiling.map(tiling),
        min_tokens: k.min_tokens,
        max_tokens: k.max_tokens,
        min_pixels: k.min_pixels,
        max_pixels: k.max_pixels,
        ..Default::default()
    };
    positive(&options, "mm_processor_kwargs")?;
    Ok(options)
}

fn tiling(t: ImageTiling) -> TilingPolicy {
    match t {
        ImageTiling::Native => TilingPolicy::Native,
        ImageTiling::Fit => TilingPolicy::Fit,
        ImageTiling::Internvl => TilingPolicy::Internvl,
        ImageTiling::Openai => TilingPolicy::Openai,
    }
}

/// A zero bound or a minimum above the maximum is a client's mistake.
fn positive(o: &ImageOptions, param: &str) -> Result<(), PrepareError> {
    let zero = [o.min_tokens, o.max_tokens].contains(&Some(0))
        || [o.min_pixels, o.max_pixels].contains(&Some(0));
    let crossed = matches!((o.min_tokens, o.max_tokens), (Some(a), Some(b)) if a > b)
        || matches!((o.min_pixels, o.max_pixels), (Some(a), Some(b)) if a > b);
    if zero || crossed {
        return Err(PrepareError::invalid(format!(
            "{param}: min_tokens, max_tokens, min_pixels and max_pixels must be at least 1, each minimum at most its maximum"
        ))
        .param(param.to_string()));
    }
    Ok(())
}

/// Remote images a request downloads at once.
const FETCHES_AT_ONCE: usize = 4;

/// Downloads the remote images (data URLs are left for the blocking pool):
/// at most [`FETCHES_AT_ONCE`] at a time, all within one fetch timeout,
/// the request's byte total enforced while they stream in.
pub(super) async fn fetch_remote(
    urls: Vec<ImageRef>,
    limits: &Limits,
) -> Result<Vec<(ImageRef, Option<Vec<u8>>)>, PrepareError> {
    use futures::{StreamExt, TryStreamExt};
    let allowance = remote::Allowance::new(limits.max_request_image_bytes);
    let one = |r: ImageRef| {
        let allowance = &allowance;
        async move {
            let bytes = fetch_source(&r.url, limits.max_image_bytes, allowance, limits)
                .await
                .map_err(|e| image_error(e, r.param.clone()))?;
            Ok::<_, PrepareError>((r, bytes))
        }
    };
    let all = futures::stream::iter(urls)
        .map(one)
        .buffered(FETCHES_AT_ONCE)
        .try_collect::<Vec<_>>();
    tokio::time::timeout(limits.remote.timeout, all)
        .await
        .map_err(|_| {
            PrepareError::invalid(format!(
                "the request's remote images took longer than {} s to download in all; send fewer, smaller or inline (data URL) images",
                limits.remote.timeout.as_secs_f32()
            ))
            .param("messages")
            .code("invalid_image")
        })?
}

/// The bytes behind a remote or `file://` URL, at most `max_bytes` and
/// counted against `allowance`; `None` for a data URL (decoded later, on
/// the blocking pool). Images and videos fetch through this one policy.
pub(super) async fn fetch_source(
    url: &str,
    max_bytes: usize,
    allowance: &remote::Allowance,
    limits: &Limits,
) -> Result<Option<Vec<u8>>, VisionError> {
    match source(url)? {
        ImageSource::Data(_) => Ok(None),
        ImageSource::Local(path) => {
            let (path, media) = (path.to_string(), limits.media.clone());
            let read = tokio::task::spawn_blocking(move || {
                crate::vision::local::read(&path, media.as_ref(), max_bytes)
            });
            let bytes = read
                .await
                .map_err(|e| VisionError::Fetch(format!("reading the file failed: {e}")))??;
            allowance.take(bytes.len())?;
            Ok(Some(bytes))
        }
        ImageSource::Remote(url) => Ok(Some(
            remote::fetch(url, max_bytes, allowance, &limits.remote).await?,
        )),
    }
}

/// Bytes to reserve from the decode budget before downloading `urls`: the
/// most they may take (each image's cap, the request's cap).
pub(super) fn download_reserve(urls: &[ImageRef], limits: &Limits) -> u64 {
    let remote = urls
        .iter()
        .filter(|r| {
            matches!(
                source(&r.url),
                Ok(ImageSource::Remote(_) | ImageSource::Local(_))
            )
        })
        .count();
    (remote as u64 * limits.max_image_bytes as u64).min(limits.max_request_image_bytes as u64)
}

/// An image whose header has been read and tiles planned, not yet decoded.
pub(super) struct Probed {
    bytes: Vec<u8>,
    header: Header,
    pub(super) plan: TilePlan,
    pub(super) cost: ImageCost,
    param: String,
}

/// Reads every image's header and plans its tiles: what the request will
/// cost is known before any pixel is decoded.
pub(super) fn probe_all(
    images: Vec<(ImageRef, Option<Vec<u8>>)>,
    limits: &Limits,
    profile: &ProjectorProfile,
    preprocessor: Option<&Preprocessor>,
) -> Result<Vec<Probed>, PrepareError> {
    let count = |w: u32, h: u32| preprocessor.and_then(|p| p.count(w, h));
    let oracle: Option<Oracle> = preprocessor.map(|_| &count as Oracle);
    let mut total_bytes = 0usize;
    let mut out = Vec::with_capacity(images.len());
    for (
        ImageRef {
            url,
            options,
            param,
        },
        fetched,
    ) in images
    {
        let bytes = match fetched {
            Some(b) => b,
            None => image_bytes(&url, limits.max_image_bytes)
                .map_err(|e| image_error(e, param.clone()))?,
        };
        let header =
            probe(&bytes, limits.max_image_pixels).map_err(|e| image_error(e, param.clone()))?;
        total_bytes += bytes.len();
        if total_bytes > limits.max_request_image_bytes {
            return Err(PrepareError::invalid(format!(
                "the images of this request add up to more than {} bytes (--max-request-image-bytes); send fewer or smaller images",
                limits.max_request_image_bytes
            ))
            .param(param));
        }
        let plan = plan_image_with(
            header.width,
            header.height,
            &options,
            profile,
            limits.tiles,
            oracle,
        )
        .map_err(|e| {
            PrepareError::invalid(format!("{param}: {e}"))
                .param(param.clone())
                .code("image_budget_too_small")
        })?;
        let cost = image_cost(&header, &plan);
        out.push(Probed {
            bytes,
            header,
            plan,
            cost,
            param,
        });
    }
    Ok(out)
}

/// Decodes (no larger than its plan needs) and cuts every image, in order.
pub(super) fn cut_all(
    images: Vec<Probed>,
    limits: &Limits,
) -> Result<Vec<(TilePlan, Vec<DecodedImage>)>, PrepareError> {
    let mut out = Vec::with_capacity(images.len());
    for p in images {
        let need = p.plan.needed_size();
        let img = decode_to(&p.bytes, &p.header, need, limits.max_image_pixels)
            .map_err(|e| image_error(e, p.param.clone()))?;
        drop(p.bytes);
        let pieces = render::render(&img, &p.plan).map_err(|e| image_error(e, p.param))?;
        out.push((p.plan, pieces));
    }
    Ok(out)
}

/// `usage.images[]`: how an image was tiled and what it cost.
pub(super) fn image_usage(p: &TilePlan) -> ImageUsage {
    ImageUsage {
        detail: match p.detail {
            Detail::Low => "low".into(),
            Detail::High => "high".into(),
        },
        width: p.width,
        height: p.height,
        cols: p.cols,
        rows: p.rows,
        tiles: p.tiles(),
        tile_size: p.tile.width,
        tile_tokens: p.tile.tokens,
        thumbnail: p.thumbnail.map(|t| ThumbnailUsage {
            width: t.width,
            height: t.height,
            tokens: t.tokens,
        }),
        tokens: p.tokens(),
        policy: p.policy.name().into(),
        resized: ImageSize {
            width: p.drawn.0,
            height: p.drawn.1,
        },
        downscaled: p.downscaled(),
        canvas: ImageSize {
            width: p.canvas.0,
            height: p.canvas.1,
        },
        offset: ImageOffset {
            x: p.offset.0,
            y: p.offset.1,
        },
        tile_boxes: p.tile_boxes(),
        sliced_by_projector: p.sliced_by_projector,
    }
}
