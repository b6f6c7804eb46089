//! A chat request's images, from its messages to the pieces the encoder
//! gets: flattening messages for the template (images become the media
//! marker), fetching remote images, then decoding, planning and cutting.

use super::error::{ApiError, image_error};
use crate::engine::ModelInfo;
use crate::engine::prompt::TemplateMessage;
use crate::openai::{ChatCompletionRequest, ContentPart, ImageDetail, MessageContent, Role};
use crate::vision::budget::{ImageCost, image_cost};
use crate::vision::tiling::{self, RequestedDetail, TilePlan};
use crate::vision::{
    DecodedImage, Header, ImageSource, ProjectorProfile, decode_to, image_bytes, probe, remote,
    render, source,
};

/// An image URL with its requested detail and the request path used to
/// locate errors.
pub(super) struct ImageRef {
    url: String,
    detail: RequestedDetail,
    pub(super) param: String,
}

/// Template messages with each image replaced by the media marker, and the
/// image URLs in prompt order, each with its request path for errors.
pub(super) fn flatten(
    req: &ChatCompletionRequest,
    info: &ModelInfo,
) -> Result<(Vec<TemplateMessage>, Vec<ImageRef>), ApiError> {
    let mut messages = Vec::with_capacity(req.messages.len());
    let mut urls = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let mut content = String::new();
        match &m.content {
            None if m.role == Role::Assistant => {}
            None => {
                return Err(ApiError::invalid(format!(
                    "messages[{i}].content is required for role `{}`",
                    m.role.template_name()
                ))
                .param(format!("messages[{i}].content")));
            }
            Some(MessageContent::Text(t)) => content.push_str(&info.fence.wrap(t)),
            Some(MessageContent::Parts(parts)) => {
                for (j, part) in parts.iter().enumerate() {
                    match part {
                        ContentPart::Text { text } => content.push_str(&info.fence.wrap(text)),
                        ContentPart::ImageUrl { image_url } => {
                            let param = format!("messages[{i}].content[{j}].image_url");
                            if m.role != Role::User {
                                return Err(ApiError::invalid(format!(
                                    "{param}: images are only accepted in user messages"
                                ))
                                .param(param));
                            }
                            content.push_str(&info.media_marker);
                            urls.push(ImageRef {
                                url: image_url.url.clone(),
                                detail: match image_url.detail.unwrap_or_default() {
                                    ImageDetail::Auto => RequestedDetail::Auto,
                                    ImageDetail::Low => RequestedDetail::Low,
                                    ImageDetail::High => RequestedDetail::High,
                                },
                                param,
                            });
                        }
                    }
                }
            }
        }
        messages.push(TemplateMessage {
            name: m.name.as_deref().map(|n| info.fence.wrap(n)),
            ..TemplateMessage::new(m.role.template_name(), content)
        });
    }
    Ok((messages, urls))
}

/// Downloads the remote images (data URLs are left for the blocking pool).
pub(super) async fn fetch_remote(
    urls: Vec<ImageRef>,
    limits: &super::Limits,
) -> Result<Vec<(ImageRef, Option<Vec<u8>>)>, ApiError> {
    let mut out = Vec::with_capacity(urls.len());
    for r in urls {
        let bytes = match source(&r.url).map_err(|e| image_error(e, r.param.clone()))? {
            ImageSource::Data(_) => None,
            ImageSource::Remote(url) => Some(
                remote::fetch(url, limits.max_image_bytes, &limits.remote)
                    .await
                    .map_err(|e| image_error(e, r.param.clone()))?,
            ),
        };
        out.push((r, bytes));
    }
    Ok(out)
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
    limits: &super::Limits,
    profile: &ProjectorProfile,
) -> Result<Vec<Probed>, ApiError> {
    let mut total_bytes = 0usize;
    let mut out = Vec::with_capacity(images.len());
    for (ImageRef { url, detail, param }, fetched) in images {
        let bytes = match fetched {
            Some(b) => b,
            None => image_bytes(&url, limits.max_image_bytes)
                .map_err(|e| image_error(e, param.clone()))?,
        };
        let header =
            probe(&bytes, limits.max_image_pixels).map_err(|e| image_error(e, param.clone()))?;
        total_bytes += bytes.len();
        if total_bytes > limits.max_request_image_bytes {
            return Err(ApiError::invalid(format!(
                "the images of this request add up to more than {} bytes (--max-request-image-bytes); send fewer or smaller images",
                limits.max_request_image_bytes
            ))
            .param(param));
        }
        let plan = tiling::plan(header.width, header.height, detail, profile, limits.tiles);
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
    limits: &super::Limits,
) -> Result<Vec<(TilePlan, Vec<DecodedImage>)>, ApiError> {
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
