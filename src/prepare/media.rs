//! A request's images, videos and audio clips, split by kind for their
//! paths and joined again in prompt order.

use super::audio_parts::{AudioRef, PreparedAudio};
use super::images::{ImageRef, image_usage};
use super::messages::MediaRef;
use super::video_parts::{PreparedVideo, VideoRef};
use crate::engine::pieces::PieceInput;
use crate::openai::MediaUsage;
use crate::vision::DecodedImage;
use crate::vision::budget::Grant;
use crate::vision::tiling::TilePlan;

/// The media of a request in prompt order.
pub(super) struct Joined {
    /// What replaces each media marker: one marker per piece, with any
    /// text a video puts between its frames.
    pub(super) expansions: Vec<String>,
    pub(super) usage: MediaUsage,
    pub(super) pieces: Vec<PieceInput>,
    /// The decode budget all their pieces hold.
    pub(super) hold: Option<Grant>,
}

/// What the `i`-th media marker of a prompt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Image,
    Video,
    Audio,
}

/// A request's media split by kind, with their kinds in prompt order.
pub(super) struct ByKind {
    pub(super) images: Vec<ImageRef>,
    pub(super) videos: Vec<VideoRef>,
    pub(super) audio: Vec<AudioRef>,
    pub(super) order: Vec<Kind>,
}

pub(super) fn by_kind(media: Vec<MediaRef>) -> ByKind {
    let mut k = ByKind {
        images: Vec::new(),
        videos: Vec::new(),
        audio: Vec::new(),
        order: Vec::new(),
    };
    for m in media {
        match m {
            MediaRef::Image(i) => {
                k.order.push(Kind::Image);
                k.images.push(i);
            }
            MediaRef::Video(v) => {
                k.order.push(Kind::Video);
                k.videos.push(v);
            }
            MediaRef::Audio(a) => {
                k.order.push(Kind::Audio);
                k.audio.push(a);
            }
        }
    }
    k
}

/// Everything a request's media became, by kind.
pub(super) struct Made {
    pub(super) images: Vec<(TilePlan, Vec<DecodedImage>)>,
    pub(super) videos: Vec<PreparedVideo>,
    pub(super) audio: Vec<PreparedAudio>,
}

/// Decoded images, prepared videos and clips as the prompt needs them, in
/// prompt order: the text replacing each media marker (one marker per
/// piece), the usage of each, every piece, and the budget they all hold.
pub(super) fn join(made: Made, order: &[Kind], marker: &str, mut hold: Option<Grant>) -> Joined {
    let mut images = made.images.into_iter();
    let mut videos = made.videos.into_iter();
    let mut clips = made.audio.into_iter();
    let (mut expansions, mut pieces) = (Vec::new(), Vec::new());
    let mut usage = MediaUsage::default();
    let mut keep = |grant: Grant| match hold.as_mut() {
        Some(h) => h.merge(grant),
        None => hold = Some(grant),
    };
    for kind in order {
        match kind {
            Kind::Video => {
                if let Some(v) = videos.next() {
                    expansions.push(v.expansion);
                    usage.videos.push(v.usage);
                    pieces.extend(v.pieces);
                    keep(v.hold);
                }
            }
            Kind::Audio => {
                if let Some(a) = clips.next() {
                    expansions.push(marker.to_string());
                    usage.audio.push(a.usage);
                    pieces.push(a.piece);
                    keep(a.hold);
                }
            }
            Kind::Image => {
                if let Some((tile_plan, p)) = images.next() {
                    expansions.push(marker.repeat(p.len()));
                    usage.images.push(image_usage(&tile_plan));
                    pieces.extend(p.into_iter().map(PieceInput::Image));
                }
            }
        }
    }
    Joined {
        expansions,
        usage,
        pieces,
        hold,
    }
}
