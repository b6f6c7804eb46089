//! The sampled frames, decoded by ffmpeg out of process: sampled at the
//! plan's rate and scaled to the plan's size by ffmpeg itself, streamed
//! out as raw RGB one frame at a time, so the server never holds more than
//! the frames the model gets (the video's own frames stay in the child,
//! whose memory the kernel bounds).

use super::child::{self, ChildLimits};
use super::error::VideoError;
use super::sample::FramePlan;
use crate::vision::DecodedImage;
use std::path::Path;

/// What to decode: the frames of `plan`, each `width` x `height`.
#[derive(Debug, Clone)]
pub struct FrameRequest {
    pub plan: FramePlan,
    pub width: u32,
    pub height: u32,
}

/// ffmpeg's arguments: the first video stream only, sampled by the `fps`
/// filter, scaled with bicubic filtering, as packed RGB on stdout.
pub fn args(file: &Path, r: &FrameRequest) -> Vec<String> {
    let mut a: Vec<String> = ["-nostdin", "-v", "error", "-threads", "2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.extend(child::input_args(file));
    let filter = format!(
        "fps=fps={:.9},scale={}:{}:flags=bicubic",
        r.plan.rate, r.width, r.height
    );
    for s in [
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        &filter,
        "-frames:v",
        &r.plan.frames.to_string(),
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ] {
        a.push(s.to_string());
    }
    a
}

/// Decodes the planned frames of `file`. A stream that ends one frame
/// early (container durations round) repeats its last frame; one that ends
/// sooner than its header said is refused.
pub async fn frames(
    ffmpeg: &Path,
    file: &Path,
    r: &FrameRequest,
    limits: ChildLimits,
) -> Result<Vec<DecodedImage>, VideoError> {
    use tokio::io::AsyncReadExt;
    let mut proc = child::spawn(ffmpeg, &args(file, r), limits)?;
    let mut stdout = proc
        .stdout
        .take()
        .ok_or_else(|| VideoError::Decoder("no stdout".into()))?;
    let mut stderr = proc
        .stderr
        .take()
        .ok_or_else(|| VideoError::Decoder("no stderr".into()))?;
    let frame_bytes = r.width as usize * r.height as usize * 3;
    let wanted = r.plan.frames as usize;
    let read = async {
        let mut out: Vec<DecodedImage> = Vec::with_capacity(wanted);
        while out.len() < wanted {
            let mut rgb = vec![0u8; frame_bytes];
            match stdout.read_exact(&mut rgb).await {
                Ok(_) => out.push(DecodedImage {
                    width: r.width,
                    height: r.height,
                    rgb,
                }),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(VideoError::Decoder(e.to_string())),
            }
        }
        let mut err = Vec::new();
        let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut err).await;
        let status = proc
            .wait()
            .await
            .map_err(|e| VideoError::Decoder(e.to_string()))?;
        Ok((out, status, err))
    };
    let (mut out, status, err) = tokio::time::timeout(limits.timeout, read)
        .await
        .map_err(|_| VideoError::TimedOut(limits.timeout.as_secs_f32()))??;
    if out.is_empty() {
        let why = if status.success() {
            "the video stream holds no frame".to_string()
        } else {
            // The header read well: a failure now is a damaged stream, or
            // a decode larger than the child may grow.
            format!(
                "{} (a damaged stream, or a decode that needs more than --video-decode-memory)",
                child::last_line(&err)
            )
        };
        return Err(VideoError::Invalid(why));
    }
    if out.len() + 1 < wanted {
        return Err(VideoError::Invalid(format!(
            "the video ended after {} of the {wanted} frames its header's duration promised; the file is truncated or its header is wrong",
            out.len()
        )));
    }
    if let Some(last) = out.last().cloned()
        && out.len() < wanted
    {
        out.push(last);
    }
    Ok(out)
}
