//! Mono samples from a clip's rate to the model's (16 kHz for
//! Whisper-style encoders), by rubato's FFT resampler, trimmed of its delay
//! and cut or padded to exactly the length the price counted.

use super::AudioError;
use rubato::{FftFixedIn, Resampler};

/// Input frames per resampler step.
const CHUNK: usize = 1024;

/// `mono` at `rate` Hz as exactly `want` samples at `target` Hz.
pub fn to_rate(mono: &[f32], rate: u32, target: u32, want: usize) -> Result<Vec<f32>, AudioError> {
    if rate == target {
        let mut out = mono.to_vec();
        out.resize(want, 0.0);
        return Ok(out);
    }
    let failed = |e: &dyn std::fmt::Display| AudioError::Invalid(format!("resampling: {e}"));
    let mut r = FftFixedIn::<f32>::new(rate as usize, target as usize, CHUNK, 2, 1)
        .map_err(|e| failed(&e))?;
    let delay = r.output_delay();
    let mut out = Vec::with_capacity(want + delay + 2 * CHUNK);
    let mut pos = 0;
    while mono.len() - pos >= r.input_frames_next() {
        let n = r.input_frames_next();
        let step = r
            .process(&[&mono[pos..pos + n]], None)
            .map_err(|e| failed(&e))?;
        out.extend_from_slice(&step[0]);
        pos += n;
    }
    let step = r
        .process_partial(Some(&[&mono[pos..]]), None)
        .map_err(|e| failed(&e))?;
    out.extend_from_slice(&step[0]);
    // The resampler holds `delay` samples back: flush them out.
    while out.len() < want + delay {
        let step = r
            .process_partial::<&[f32]>(None, None)
            .map_err(|e| failed(&e))?;
        if step[0].is_empty() {
            break;
        }
        out.extend_from_slice(&step[0]);
    }
    out.drain(..delay.min(out.len()));
    out.resize(want, 0.0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_are_exact_and_the_signal_is_in_place() {
        // A click at 0.5 s stays at 0.5 s: the resampler's delay is removed.
        let mut clip = vec![0.0f32; 48_000];
        clip[24_000] = 1.0;
        let out = to_rate(&clip, 48_000, 16_000, 16_000).unwrap();
        assert_eq!(out.len(), 16_000);
        let peak = out
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
            .unwrap()
            .0;
        assert!((peak as i64 - 8_000).abs() <= 2, "peak at {peak}");
        for (rate, n) in [(8_000u32, 123usize), (22_050, 5), (44_100, 100_000)] {
            let want = crate::audio::samples_at(n as u64, rate, 16_000) as usize;
            assert_eq!(
                to_rate(&vec![0.1; n], rate, 16_000, want).unwrap().len(),
                want
            );
        }
    }
}
