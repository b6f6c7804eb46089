//! Test videos, made here by ffmpeg from its own test sources (nothing is
//! downloaded) and kept in the target folder. Without ffmpeg the video
//! tests say so and pass, unless `TESSERA_REQUIRE_FFMPEG` is set (CI sets
//! it: there they never skip).

use std::path::PathBuf;
use std::process::Command;

/// Whether ffmpeg is here to make clips (and to decode them).
pub fn ffmpeg_ready() -> bool {
    let ok = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = "no ffmpeg: apt-get install ffmpeg";
        assert!(
            std::env::var_os("TESSERA_REQUIRE_FFMPEG").is_none(),
            "{why}"
        );
        eprintln!("SKIPPED video test: {why}");
    }
    ok
}

/// The clip `name`, made once by `ffmpeg -y <args> OUT`.
pub fn clip(name: &str, args: &[&str]) -> Vec<u8> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("clips");
    std::fs::create_dir_all(&dir).expect("clips folder");
    let out = dir.join(name);
    if !out.exists() {
        let tmp = dir.join(format!("tmp-{}-{name}", std::process::id()));
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(args)
            .arg(&tmp)
            .status()
            .expect("run ffmpeg");
        assert!(status.success(), "ffmpeg could not make {name}");
        std::fs::rename(&tmp, &out).expect("keep clip");
    }
    std::fs::read(&out).expect("read clip")
}

/// ffmpeg's moving test pattern: `w`x`h`, `rate` frames per second,
/// `seconds` long, H.264 in MP4 (`ext` picks another container).
pub fn testsrc(w: u32, h: u32, rate: u32, seconds: f64, ext: &str) -> Vec<u8> {
    let src = format!("testsrc2=size={w}x{h}:rate={rate}:duration={seconds}");
    let name = format!("testsrc-{w}x{h}-{rate}-{seconds}.{ext}");
    let codec: &[&str] = match ext {
        "mp4" => &["-c:v", "libx264", "-pix_fmt", "yuv420p"],
        "webm" => &["-c:v", "libvpx-vp9", "-b:v", "200k"],
        _ => &[],
    };
    let mut args = vec!["-f", "lavfi", "-i", &src];
    args.extend_from_slice(codec);
    clip(&name, &args)
}

/// A video part for `bytes` of a `mime` video.
pub fn video_part(bytes: &[u8], mime: &str) -> serde_json::Value {
    serde_json::json!({"type": "video_url", "video_url": {"url": super::data_url(bytes, mime)}})
}
