//! What a video's container says about it (ffprobe, out of process), and
//! the checks made on that before a frame is decoded: one video stream of
//! a size the limits allow, a duration the limits allow, few streams.

use super::child::{self, ChildLimits};
use super::error::VideoError;
use serde::Deserialize;
use std::path::Path;

/// Most streams a container may hold: a video with its audio and subtitle
/// tracks has a handful; hundreds only cost parsing time.
pub const MAX_STREAMS: u32 = 16;

/// A video's header facts.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoHeader {
    pub width: u32,
    pub height: u32,
    /// Seconds, from the video stream or else the container.
    pub duration: f64,
    /// The container's name for its format (e.g. `mov,mp4,...`).
    pub format: String,
    pub codec: String,
}

/// The limits a header is checked against.
#[derive(Debug, Clone, Copy)]
pub struct HeaderLimits {
    pub max_seconds: f64,
    pub max_pixels: u64,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
}

#[derive(Deserialize)]
struct Format {
    nb_streams: Option<u32>,
    format_name: Option<String>,
    duration: Option<String>,
}

/// ffprobe's arguments for `file`: only the fields read here.
pub fn args(file: &Path) -> Vec<String> {
    let mut a: Vec<String> = ["-v", "error", "-print_format", "json", "-show_entries"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(
        "format=duration,nb_streams,format_name:stream=codec_type,codec_name,width,height,duration"
            .into(),
    );
    a.extend(child::input_args(file));
    a
}

/// Runs ffprobe on `file` and checks what it reports.
pub async fn probe(
    ffprobe: &Path,
    file: &Path,
    limits: ChildLimits,
    header: HeaderLimits,
) -> Result<VideoHeader, VideoError> {
    let out = child::output(ffprobe, &args(file), limits, 1 << 20).await?;
    let mut h = parse(&out, header)?;
    if h.duration == 0.0 {
        // No duration in the header (APNG, some GIFs): the video stream's
        // packets counted by demuxing alone, at its frame rate.
        let out = child::output(ffprobe, &count_args(file), limits, 1 << 20).await?;
        h.duration = counted_duration(&out).unwrap_or(0.0);
        check_duration(h.duration, header)?;
    }
    Ok(h)
}

fn count_args(file: &Path) -> Vec<String> {
    let mut a: Vec<String> = [
        "-v",
        "error",
        "-count_packets",
        "-select_streams",
        "v:0",
        "-print_format",
        "json",
        "-show_entries",
        "stream=nb_read_packets,avg_frame_rate",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    a.extend(child::input_args(file));
    a
}

/// Seconds from a packet count and an `avg_frame_rate` such as `10/1`.
fn counted_duration(json: &[u8]) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    let s = v["streams"].get(0)?;
    let packets: f64 = s["nb_read_packets"].as_str()?.parse().ok()?;
    let (n, d) = s["avg_frame_rate"].as_str()?.split_once('/')?;
    let rate = n.parse::<f64>().ok()? / d.parse::<f64>().ok()?;
    Some(packets / rate).filter(|d| d.is_finite() && *d > 0.0)
}

fn check_duration(duration: f64, limits: HeaderLimits) -> Result<(), VideoError> {
    if duration > limits.max_seconds {
        return Err(VideoError::TooLong {
            seconds: duration,
            limit: limits.max_seconds,
        });
    }
    Ok(())
}

/// ffprobe's JSON, checked against the limits.
pub fn parse(json: &[u8], limits: HeaderLimits) -> Result<VideoHeader, VideoError> {
    let p: Probe = serde_json::from_slice(json)
        .map_err(|e| VideoError::Invalid(format!("the container could not be read ({e})")))?;
    let format = p
        .format
        .ok_or_else(|| VideoError::Invalid("no container was found".into()))?;
    let n_streams = format.nb_streams.unwrap_or(p.streams.len() as u32);
    if n_streams > MAX_STREAMS {
        return Err(VideoError::Invalid(format!(
            "the container has {n_streams} streams, above the limit of {MAX_STREAMS}"
        )));
    }
    let video = p
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video"))
        .ok_or_else(|| VideoError::Invalid("the file holds no video stream".into()))?;
    let (width, height) = match (video.width, video.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => {
            return Err(VideoError::Invalid(
                "the video stream has no frame size".into(),
            ));
        }
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(VideoError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let seconds = |s: &Option<String>| {
        s.as_deref()
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
    };
    let duration = seconds(&video.duration)
        .or_else(|| seconds(&format.duration))
        .unwrap_or(0.0);
    check_duration(duration, limits)?;
    Ok(VideoHeader {
        width,
        height,
        duration,
        format: format.format_name.unwrap_or_default(),
        codec: video.codec_name.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIMITS: HeaderLimits = HeaderLimits {
        max_seconds: 600.0,
        max_pixels: 4096 * 4096,
    };

    fn parse_v(v: serde_json::Value) -> Result<VideoHeader, VideoError> {
        parse(v.to_string().as_bytes(), LIMITS)
    }

    #[test]
    fn the_video_streams_facts_are_read() {
        let h = parse_v(json!({
            "streams": [{"codec_type": "audio", "codec_name": "aac", "duration": "9.0"},
                        {"codec_type": "video", "codec_name": "h264", "width": 320,
                         "height": 240, "duration": "3.000000"}],
            "format": {"nb_streams": 2, "format_name": "mov,mp4", "duration": "9.0"}
        }))
        .unwrap();
        assert_eq!((h.width, h.height, h.duration), (320, 240, 3.0));
        assert_eq!(h.codec, "h264");
        // WebM: no stream duration, the container's.
        let h = parse_v(json!({
            "streams": [{"codec_type": "video", "width": 16, "height": 16}],
            "format": {"nb_streams": 1, "duration": "2.5"}
        }))
        .unwrap();
        assert_eq!(h.duration, 2.5);
    }

    #[test]
    fn headers_over_the_limits_are_refused() {
        let big = json!({"streams": [{"codec_type": "video", "width": 16000, "height": 16000}],
                         "format": {"nb_streams": 1, "duration": "1"}});
        assert!(matches!(
            parse_v(big),
            Err(VideoError::TooManyPixels { .. })
        ));
        let long = json!({"streams": [{"codec_type": "video", "width": 16, "height": 16}],
                          "format": {"nb_streams": 1, "duration": "36000"}});
        assert!(matches!(parse_v(long), Err(VideoError::TooLong { .. })));
        let many = json!({"streams": [{"codec_type": "video", "width": 16, "height": 16}],
                          "format": {"nb_streams": 300}});
        assert!(matches!(parse_v(many), Err(VideoError::Invalid(m)) if m.contains("300 streams")));
        let audio = json!({"streams": [{"codec_type": "audio"}], "format": {"nb_streams": 1}});
        assert!(matches!(parse_v(audio), Err(VideoError::Invalid(m)) if m.contains("no video")));
        assert!(parse(b"not json", LIMITS).is_err());
    }

    #[test]
    fn a_duration_comes_from_counted_packets_when_the_header_has_none() {
        let out = json!({"streams": [{"nb_read_packets": "20", "avg_frame_rate": "10/1"}]});
        assert_eq!(counted_duration(out.to_string().as_bytes()), Some(2.0));
        let none = json!({"streams": [{"nb_read_packets": "20", "avg_frame_rate": "0/0"}]});
        assert_eq!(counted_duration(none.to_string().as_bytes()), None);
    }
}
