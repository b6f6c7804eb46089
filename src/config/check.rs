//! How flags fit together, checked before anything loads: what a single
//! flag's clap range cannot say.

use super::Config;

impl Config {
    /// Checks what one flag's range cannot: how flags fit together.
    pub fn check(&self) -> Result<(), String> {
        self.cache.check()?;
        if self.min_tiles > self.max_tiles {
            return Err(format!(
                "--min-tiles {} is above --max-tiles {}",
                self.min_tiles, self.max_tiles
            ));
        }
        if self.tile_size != 0 && self.tile_size < 28 {
            return Err(format!(
                "--tile-size {} is below 28 px, smaller than one vision patch pair; use 0 for automatic",
                self.tile_size
            ));
        }
        if self.image_max_tokens == 0 {
            return Err("--image-max-tokens must be -1 (the model's default) or at least 1".into());
        }
        if self.image_min_tokens == 0 {
            return Err("--image-min-tokens must be -1 (the model's minimum) or at least 1".into());
        }
        if self.image_max_tokens > 0 && self.image_min_tokens > self.image_max_tokens {
            return Err(format!(
                "--image-min-tokens {} is above --image-max-tokens {}",
                self.image_min_tokens, self.image_max_tokens
            ));
        }
        self.speculation.check()?;
        // One engine step holds a token of every generating sequence.
        if (self.batch_size as usize) <= self.parallel {
            return Err(format!(
                "--batch-size {} cannot hold one token of each of --parallel {} sequences plus prompt tokens; use at least {}",
                self.batch_size,
                self.parallel,
                self.parallel + 1
            ));
        }
        if self.ctx_size != 0 && (self.ctx_size as usize) / self.parallel < 64 {
            return Err(format!(
                "--ctx-size {} over --parallel {} leaves {} tokens per sequence; give each at least 64",
                self.ctx_size,
                self.parallel,
                self.ctx_size as usize / self.parallel
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("tessera").chain(args.iter().copied());
        let c = Config::try_parse_from(argv).map_err(|e| e.to_string())?;
        c.check()?;
        Ok(c)
    }

    #[test]
    fn the_defaults_pass() {
        assert!(parse(&[]).is_ok());
    }

    #[test]
    fn values_out_of_range_are_refused_with_the_flag_named() {
        for args in [
            &["--max-tiles", "100000"][..],
            &["--thumbnail-tokens", "4294967295"],
            &["--parallel", "0"],
            &["--threads", "0"],
            &["--max-queue", "0"],
            &["--batch-size", "4"],
            &["--image-fetch-timeout", "0"],
            &["--image-max-tokens", "-7"],
        ] {
            let err = parse(args).expect_err(args[0]);
            assert!(err.contains(args[0]), "{err}");
        }
    }

    #[test]
    fn flags_that_do_not_fit_together_are_refused() {
        for (args, says) in [
            (&["--min-tiles", "8", "--max-tiles", "4"][..], "--min-tiles"),
            (&["--tile-size", "7"], "--tile-size"),
            (&["--image-max-tokens", "0"], "--image-max-tokens"),
            (&["--batch-size", "32", "--parallel", "64"], "--batch-size"),
            (&["--ctx-size", "1024", "--parallel", "32"], "--ctx-size"),
            (
                &["--model-draft", "d.gguf", "--spec-type", "ngram"],
                "--model-draft",
            ),
            (&["--video-fps", "0"], "--video-fps"),
            (&["--video-decode-memory", "64"], "--video-decode-memory"),
        ] {
            let err = parse(args).expect_err(says);
            assert!(err.contains(says), "{err}");
        }
    }
}
