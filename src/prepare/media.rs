//! A request's images and videos, split by kind for their paths and joined
//! again in prompt order.

use super::images::{ImageRef, image_usage};
use super::messages::MediaRef;
use super::video_parts::{PreparedVideo, VideoRef};
use crate::engine::pieces::PieceInput;
use crate::openai::{ImageUsage, VideoUsage};
use crate::vision::DecodedImage;
use crate::vision::budget::Grant;
use crate::vision::tiling::TilePlan;

/// The media of a request in prompt order.
pub(super) struct Joined {
    /// What replaces each media marker: one marker per piece, with any
    /// text a video puts between its frames.
    pub(super) expansions: Vec<String>,
    pub(super) images: Vec<ImageUsage>,
    pub(super) videos: Vec<VideoUsage>,
    pub(super) pieces: Vec<PieceInput>,
    /// The decode budget all their pieces hold.
    pub(super) hold: Option<Grant>,
}

/// A request's media split by kind; `order[i]`: whether the `i`-th media
/// marker of the prompt is a video.
pub(super) fn by_kind(media: Vec<MediaRef>) -> (Vec<ImageRef>, Vec<VideoRef>, Vec<bool>) {
    let (mut images, mut videos, mut order) = (Vec::new(), Vec::new(), Vec::new());
    for m in media {
        order.push(matches!(m, MediaRef::Video(_)));
        match m {
            MediaRef::Image(i) => images.push(i),
            MediaRef::Video(v) => videos.push(v),
        }
    }
    (images, videos, order)
}

/// Decoded images and prepared videos as the prompt needs them, in prompt
/// order: the text replacing each media marker (one marker per piece), the
/// usage of each, every piece, and the budget they all hold.
pub(super) fn join(
    decoded: Vec<(TilePlan, Vec<DecodedImage>)>,
    videos: Vec<PreparedVideo>,
    order: &[bool],
    marker: &str,
    mut hold: Option<Grant>,
) -> Joined {
    let mut decoded = decoded.into_iter();
    let mut prepared = videos.into_iter();
    let (mut expansions, mut pieces) = (Vec::new(), Vec::new());
    let (mut images, mut videos) = (Vec::new(), Vec::new());
    for &is_video in order {
        if is_video && let Some(v) = prepared.next() {
            expansions.push(v.expansion);
            videos.push(v.usage);
            pieces.extend(v.pieces);
            match hold.as_mut() {
                Some(h) => h.merge(v.hold),
                None => hold = Some(v.hold),
            }
        } else if let Some((tile_plan, p)) = decoded.next() {
            expansions.push(marker.repeat(p.len()));
            images.push(image_usage(&tile_plan));
            pieces.extend(p.into_iter().map(PieceInput::Image));
        }
    }
    Joined {
        expansions,
        images,
        videos,
        pieces,
        hold,
    }
}
