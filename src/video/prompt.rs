//! Where a video's frames sit in the prompt, per family: the text each
//! family's processor puts around its frames, so that the model reads a
//! video as it was trained to.
//!
//! - Qwen2-VL, Qwen2.5-VL: the frames alone, merged in pairs; these
//!   models read time from their M-RoPE positions (Qwen2.5-VL's absolute
//!   time), which mtmd does not give video, so no text is added.
//! - Qwen3-VL: `<t seconds>` before each merged pair (its processor's
//!   text timestamps, the mean time of the pair, one decimal).
//! - InternVL: `FrameN: ` before each frame, a newline after (its video
//!   chat prompt).
//! - Every other family: `Frame N at t s: ` before each frame, a newline
//!   after, so that order and time are legible.

/// A family's rule for the text around frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameText {
    None,
    Seconds,
    Numbered,
    Timed,
}

/// The rule for a projector type (`clip.projector_type`).
pub fn frame_text(projector: Option<&str>) -> FrameText {
    match projector {
        Some("qwen2vl_merger" | "qwen2.5vl_merger") => FrameText::None,
        Some("qwen3vl_merger") => FrameText::Seconds,
        Some("internvl") => FrameText::Numbered,
        _ => FrameText::Timed,
    }
}

/// The text that replaces a video's one media marker: one `marker` per
/// piece, with the family's text; `times[i]` is piece `i`'s time.
pub fn expansion(rule: FrameText, marker: &str, times: &[f64]) -> String {
    let mut out = String::new();
    for (i, t) in times.iter().enumerate() {
        let n = i + 1;
        match rule {
            FrameText::None => out.push_str(marker),
            FrameText::Seconds => out.push_str(&format!("<{t:.1} seconds>{marker}")),
            FrameText::Numbered => out.push_str(&format!("Frame{n}: {marker}\n")),
            FrameText::Timed => out.push_str(&format!("Frame {n} at {t:.1} s: {marker}\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_gets_its_processors_text() {
        let t = [0.25, 1.25];
        assert_eq!(
            expansion(frame_text(Some("qwen2vl_merger")), "<m>", &t),
            "<m><m>"
        );
        assert_eq!(
            expansion(frame_text(Some("qwen3vl_merger")), "<m>", &t),
            "<0.2 seconds><m><1.2 seconds><m>"
        );
        assert_eq!(
            expansion(frame_text(Some("internvl")), "<m>", &t),
            "Frame1: <m>\nFrame2: <m>\n"
        );
        assert_eq!(
            expansion(frame_text(Some("gemma3")), "<m>", &[0.0]),
            "Frame 1 at 0.0 s: <m>\n"
        );
    }
}
