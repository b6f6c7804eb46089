//! Which frames of a video the model sees, decided from the container's
//! header alone, before any frame is decoded: so that the price is known
//! first and a lying header cannot make the decode do more than planned.
//!
//! Frames are taken at `fps` from the start; a video longer than
//! `max_frames / fps` is covered uniformly by `max_frames` frames instead
//! (Qwen2-VL's processor samples the same way, at 2 fps by default).
//! Projectors that merge frames in time (Qwen-VL: two consecutive frames
//! become one chunk) get an even count, as their processors round to it.

/// How a video is sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// Frames per second wanted.
    pub fps: f64,
    /// Most frames taken from one video.
    pub max_frames: u32,
    /// Frames the projector merges into one chunk (1 or 2).
    pub merge: u32,
}

/// The frames to take: how many, and at what rate the decoder emits them.
#[derive(Debug, Clone, PartialEq)]
pub struct FramePlan {
    /// Frames sampled (a multiple of `merge`).
    pub frames: u32,
    /// The rate the decoder samples at: `fps`, or lower to spread
    /// `max_frames` over a long video.
    pub rate: f64,
}

impl FramePlan {
    /// Seconds from the start of frame `i`.
    pub fn time(&self, i: u32) -> f64 {
        f64::from(i) / self.rate
    }
}

/// Frames for a video of `duration` seconds; `None` when the settings are
/// unusable (no rate or no frame allowed).
pub fn plan(duration: f64, s: Sampling) -> Option<FramePlan> {
    let merge = s.merge.max(1);
    if !(s.fps > 0.0 && s.fps.is_finite()) || s.max_frames < merge {
        return None;
    }
    let duration = if duration.is_finite() && duration > 0.0 {
        duration
    } else {
        0.0
    };
    // Whole frames that fit at the wanted rate; at least one.
    let at_rate = (duration * s.fps).floor().clamp(1.0, f64::from(u32::MAX)) as u32;
    let most = s.max_frames - s.max_frames % merge;
    let mut frames = at_rate.min(most);
    // Round to whole merged groups: down, but never to zero (a short clip
    // repeats its frame, as the processors duplicate a lone frame).
    frames = (frames / merge * merge).max(merge);
    let rate = if at_rate > most && duration > 0.0 {
        f64::from(frames) / duration
    } else {
        s.fps
    };
    Some(FramePlan { frames, rate })
}

#[cfg(test)]
mod tests {
    use super::*;

    const QWEN: Sampling = Sampling {
        fps: 2.0,
        max_frames: 32,
        merge: 2,
    };

    #[test]
    fn a_short_clip_is_sampled_at_the_rate() {
        let p = plan(3.0, QWEN).unwrap();
        assert_eq!((p.frames, p.rate), (6, 2.0));
        assert_eq!(p.time(5), 2.5);
        let one = Sampling { merge: 1, ..QWEN };
        assert_eq!(plan(3.4, one).unwrap().frames, 6);
        assert_eq!(plan(3.6, one).unwrap().frames, 7);
        // Merged in pairs: 7 rounds down to 6.
        assert_eq!(plan(3.6, QWEN).unwrap().frames, 6);
    }

    #[test]
    fn a_long_video_is_spread_over_the_most_frames() {
        let p = plan(100.0, QWEN).unwrap();
        assert_eq!(p.frames, 32);
        assert!((p.rate - 0.32).abs() < 1e-12);
        assert!((p.time(31) - 96.875).abs() < 1e-9);
        // An odd maximum with pairs: the last pair that fits.
        let odd = Sampling {
            max_frames: 33,
            ..QWEN
        };
        assert_eq!(plan(100.0, odd).unwrap().frames, 32);
    }

    #[test]
    fn a_clip_shorter_than_a_frame_still_gives_a_group() {
        assert_eq!(plan(0.1, QWEN).unwrap().frames, 2);
        assert_eq!(plan(0.0, QWEN).unwrap().frames, 2);
        assert_eq!(
            plan(f64::NAN, Sampling { merge: 1, ..QWEN })
                .unwrap()
                .frames,
            1
        );
    }

    #[test]
    fn unusable_settings_are_refused() {
        assert!(plan(3.0, Sampling { fps: 0.0, ..QWEN }).is_none());
        assert!(
            plan(
                3.0,
                Sampling {
                    fps: f64::INFINITY,
                    ..QWEN
                }
            )
            .is_none()
        );
        assert!(
            plan(
                3.0,
                Sampling {
                    max_frames: 1,
                    ..QWEN
                }
            )
            .is_none()
        );
    }
}
