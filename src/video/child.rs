//! ffmpeg and ffprobe as child processes, bounded: untrusted video is never
//! parsed or decoded in the server's address space. Each child gets an
//! address-space and a CPU-time limit from the kernel, a wall-clock limit
//! from us, only the demuxers and decoders Tessera accepts (so a playlist
//! or concat file cannot make it read other files or URLs), no stdin, and
//! is killed when its request is dropped (the client left).
//!
//! The one `unsafe` here: `pre_exec` runs between fork and exec, where only
//! async-signal-safe calls are allowed; the closure makes two `setrlimit`
//! system calls (rustix's thin wrappers), allocates nothing and takes no lock.

use super::error::VideoError;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Demuxers a video may use (by any of their names): MP4/MOV, Matroska/WebM,
/// animated GIF, APNG, WebP, AVI and YUV4MPEG. Nothing that reads other
/// files (playlists, concat, image sequences).
pub const FORMATS: &str = "mov,matroska,gif,apng,webp_pipe,avi,yuv4mpegpipe";

/// Decoders a video may use: H.264, H.265, VP8, VP9, AV1 (each under the
/// names Debian's ffmpeg gives it), GIF, APNG, WebP, MPEG-4 Part 2, MJPEG
/// and raw frames.
pub const CODECS: &str = "h264,hevc,vp8,vp9,libvpx,libvpx-vp9,av1,libdav1d,libaom-av1,gif,apng,webp,mpeg4,mjpeg,rawvideo";

/// Limits of one child process.
#[derive(Debug, Clone, Copy)]
pub struct ChildLimits {
    /// Wall-clock time before it is killed.
    pub timeout: Duration,
    /// Address space, in bytes.
    pub memory: u64,
}

/// Spawns `program` with `args`, reading `input`, under `limits`; stdout is
/// piped, stderr kept for the error message.
pub fn spawn(program: &Path, args: &[String], limits: ChildLimits) -> Result<Child, VideoError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // CPU seconds: the wall-clock limit, plus a second for rounding; a
    // decoder spinning on several threads hits it first.
    let cpu = limits.timeout.as_secs().saturating_add(1);
    let memory = limits.memory;
    #[cfg(unix)]
    // SAFETY: see the module comment: two setrlimit system calls, no
    // allocation, no lock, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            use rustix::process::{Resource, Rlimit, setrlimit};
            let limit = |n: u64| Rlimit {
                current: Some(n),
                maximum: Some(n),
            };
            setrlimit(Resource::As, limit(memory))?;
            setrlimit(Resource::Cpu, limit(cpu))?;
            Ok(())
        });
    }
    cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VideoError::NoDecoder(program.display().to_string()),
        _ => VideoError::Decoder(format!("could not start {}: {e}", program.display())),
    })
}

/// The input options every child gets before `-i`: only the accepted
/// demuxers and decoders, no network or other files.
pub fn input_args(file: &Path) -> Vec<String> {
    [
        "-format_whitelist",
        FORMATS,
        "-codec_whitelist",
        CODECS,
        "-protocol_whitelist",
        "file",
        "-i",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(std::iter::once(file.display().to_string()))
    .collect()
}

/// Runs a child to its end and returns its stdout, at most `max_out` bytes.
pub async fn output(
    program: &Path,
    args: &[String],
    limits: ChildLimits,
    max_out: usize,
) -> Result<Vec<u8>, VideoError> {
    use tokio::io::AsyncReadExt;
    let mut child = spawn(program, args, limits)?;
    let mut stdout = child.stdout.take().ok_or_else(no_pipe)?;
    let mut stderr = child.stderr.take().ok_or_else(no_pipe)?;
    let work = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let mut out_pipe = (&mut stdout).take(max_out as u64 + 1);
        let mut err_pipe = (&mut stderr).take(64 * 1024);
        let (a, b) = tokio::join!(
            out_pipe.read_to_end(&mut out),
            err_pipe.read_to_end(&mut err)
        );
        a.and(b).map_err(|e| VideoError::Decoder(e.to_string()))?;
        let status = child
            .wait()
            .await
            .map_err(|e| VideoError::Decoder(e.to_string()))?;
        Ok::<_, VideoError>((status, out, err))
    };
    let (status, out, err) = tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| VideoError::TimedOut(limits.timeout.as_secs_f32()))??;
    if out.len() > max_out {
        return Err(VideoError::Invalid(
            "the container's description is too large".into(),
        ));
    }
    if !status.success() {
        return Err(VideoError::Invalid(last_line(&err)));
    }
    Ok(out)
}

fn no_pipe() -> VideoError {
    VideoError::Decoder("the child's pipes were not opened".into())
}

/// The decoder's last message, for the client: what it could not read.
pub fn last_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("the decoder gave up without saying why")
        .trim();
    // The temporary file's path means nothing to the client.
    line.split_once(": ")
        .filter(|(head, _)| head.contains(std::path::MAIN_SEPARATOR))
        .map_or(line, |(_, tail)| tail)
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoders_last_words_lose_the_temporary_path() {
        let err = b"[mov @ 0x1] moov atom not found\n/tmp/.tessera-video-x1: Invalid data found when processing input\n\n";
        assert_eq!(last_line(err), "Invalid data found when processing input");
        assert_eq!(last_line(b""), "the decoder gave up without saying why");
    }
}
