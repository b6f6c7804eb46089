//! Turns sampled token bytes into text a client may see: only complete UTF-8,
//! and never any part of a stop sequence, even when one arrives split across
//! several tokens.

/// Result of feeding one token's bytes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Text that is now safe to send.
    pub text: String,
    /// A stop sequence matched; `text` holds everything before it.
    pub stopped: bool,
}

#[derive(Debug, Default)]
pub struct TextAssembler {
    /// Bytes of an incomplete UTF-8 sequence at the end of the stream.
    partial: Vec<u8>,
    /// Decoded text held back because it may begin a stop sequence.
    held: String,
    stops: Vec<String>,
    /// The stop sequence that ended the text (Anthropic reports it).
    matched: Option<usize>,
}

impl TextAssembler {
    pub fn new(stops: Vec<String>) -> Self {
        TextAssembler {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            ..Default::default()
        }
    }

    pub fn push(&mut self, bytes: &[u8]) -> Step {
        self.partial.extend_from_slice(bytes);
        let decoded = take_complete_utf8(&mut self.partial);
        self.held.push_str(&decoded);
        if let Some((pos, which)) = self.first_stop() {
            self.matched = Some(which);
            let text = self.held[..pos].to_string();
            self.held.clear();
            self.partial.clear();
            return Step {
                text,
                stopped: true,
            };
        }
        let keep = self.stop_prefix_len();
        let cut = self.held.len() - keep;
        let text = self.held[..cut].to_string();
        self.held.drain(..cut);
        Step {
            text,
            stopped: false,
        }
    }

    /// Everything still held at the end of generation. A trailing incomplete
    /// UTF-8 sequence becomes U+FFFD, and is checked against the stops like
    /// any text (the fuzzer found a stop of "\u{FFFD}" leaking here).
    pub fn finish(&mut self) -> String {
        if !self.partial.is_empty() {
            let tail = String::from_utf8_lossy(&self.partial).into_owned();
            self.held.push_str(&tail);
            self.partial.clear();
        }
        if let Some((pos, which)) = self.first_stop() {
            self.matched = Some(which);
            self.held.truncate(pos);
        }
        std::mem::take(&mut self.held)
    }

    /// Where the first stop begins, and which stop it is.
    fn first_stop(&self) -> Option<(usize, usize)> {
        self.stops
            .iter()
            .enumerate()
            .filter_map(|(i, s)| self.held.find(s.as_str()).map(|pos| (pos, i)))
            .min()
    }

    /// The stop sequence that ended the text, if one did.
    pub fn matched(&self) -> Option<&str> {
        self.matched
            .and_then(|i| self.stops.get(i))
            .map(String::as_str)
    }

    /// Length of the longest suffix of `held` that is a proper prefix of a stop.
    fn stop_prefix_len(&self) -> usize {
        let mut best = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                if i > best && self.held.ends_with(&stop[..i]) {
                    best = i;
                }
            }
        }
        best
    }
}

/// Decodes the longest valid prefix of `buf`, leaving a trailing incomplete
/// sequence in place. Invalid bytes become U+FFFD.
fn take_complete_utf8(buf: &mut Vec<u8>) -> String {
    let mut out = String::new();
    let mut start = 0;
    loop {
        match std::str::from_utf8(&buf[start..]) {
            Ok(s) => {
                out.push_str(s);
                start = buf.len();
                break;
            }
            Err(e) => {
                let valid = start + e.valid_up_to();
                // SAFETY of slicing: from_utf8 said this range is valid.
                out.push_str(std::str::from_utf8(&buf[start..valid]).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push('\u{FFFD}');
                        start = valid + n;
                    }
                    None => {
                        start = valid;
                        break;
                    }
                }
            }
        }
    }
    buf.drain(..start);
    out
}

/// Length of the longest tail of `s` that is a proper prefix of `marker`:
/// what to hold back because the marker may be arriving.
pub fn partial_marker(s: &str, marker: &str) -> usize {
    (1..marker.len().min(s.len() + 1))
        .rev()
        .find(|&n| s.is_char_boundary(s.len() - n) && marker.starts_with(&s[s.len() - n..]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(a: &mut TextAssembler, pieces: &[&[u8]]) -> (String, bool) {
        let mut text = String::new();
        for p in pieces {
            let s = a.push(p);
            text.push_str(&s.text);
            if s.stopped {
                return (text, true);
            }
        }
        text.push_str(&a.finish());
        (text, false)
    }

    #[test]
    fn holds_back_split_utf8() {
        let mut a = TextAssembler::new(vec![]);
        let e = "é".as_bytes();
        assert_eq!(a.push(&e[..1]).text, "");
        assert_eq!(a.push(&e[1..]).text, "é");
    }

    #[test]
    fn invalid_bytes_become_replacement() {
        let mut a = TextAssembler::new(vec![]);
        assert_eq!(a.push(&[b'a', 0xFF, b'b']).text, "a\u{FFFD}b");
        assert_eq!(a.push(&[0xE2, 0x82]).text, "");
        assert_eq!(a.finish(), "\u{FFFD}");
    }

    #[test]
    fn stop_split_across_tokens_never_leaks() {
        let mut a = TextAssembler::new(vec!["STOP".into()]);
        let (text, stopped) = feed(&mut a, &[b"hello S", b"T", b"OP world"]);
        assert_eq!(text, "hello ");
        assert!(stopped);
    }

    #[test]
    fn false_prefix_is_released() {
        let mut a = TextAssembler::new(vec!["STOP".into()]);
        let s = a.push(b"ST");
        assert_eq!(s.text, "");
        let s = a.push(b"ay");
        assert_eq!(s.text, "STay");
    }

    #[test]
    fn earliest_of_several_stops_wins() {
        let mut a = TextAssembler::new(vec!["yz".into(), "b".into()]);
        let (text, stopped) = feed(&mut a, &[b"abcxyz"]);
        assert_eq!(a.matched(), Some("b"), "the earliest stop in the text");
        assert_eq!(text, "a");
        assert!(stopped);
    }

    #[test]
    fn multibyte_stop() {
        let mut a = TextAssembler::new(vec!["→".into()]);
        let arrow = "→".as_bytes();
        let (text, stopped) = feed(&mut a, &[b"x", &arrow[..2], &arrow[2..], b"y"]);
        assert_eq!(text, "x");
        assert!(stopped);
    }
}
