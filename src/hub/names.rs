//! What a hub (or a mirror named by `HF_ENDPOINT`, or a poisoned cache)
//! may put in a path or on the terminal. Commit ids, file names and ETags
//! all come from the other side and become paths under the cache, so each
//! is checked before it is joined, and what is printed is escaped.

/// A git commit id: exactly 40 hex characters.
pub fn is_commit(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A repository file name the cache may hold: relative, `/`-separated,
/// no empty, `.` or `..` segment, no backslash or control character.
pub fn is_file_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 1024
        && !s.chars().any(|c| c == '\\' || c.is_control())
        && s.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
}

/// A blob name: what the hub's ETag carries (a sha256 or a git sha1).
pub fn is_etag(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Text from the hub as it may reach a terminal: control characters
/// (escape sequences among them) escaped, long text cut.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(300));
    for (i, c) in s.chars().enumerate() {
        if i == 300 {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_are_forty_hex_characters() {
        assert!(is_commit("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_commit("/etc/passwd"));
        assert!(!is_commit("0123456789abcdef0123456789abcdef0123456"));
        assert!(!is_commit("../3456789abcdef0123456789abcdef01234567"));
    }

    #[test]
    fn file_names_stay_below_their_folder() {
        for good in ["m-Q4_K_M.gguf", "sub/dir/m.gguf", "a..b.gguf"] {
            assert!(is_file_name(good), "{good}");
        }
        for bad in [
            "../../../../../x/evil-Q4_K_M.gguf",
            "/abs/evil.gguf",
            "a/../../b.gguf",
            "./m.gguf",
            "a//b.gguf",
            "a\\..\\b.gguf",
            "a\u{1b}[2Jb.gguf",
            "",
            "dir/",
        ] {
            assert!(!is_file_name(bad), "{bad}");
        }
    }

    #[test]
    fn etags_are_plain_names() {
        assert!(is_etag(&"a".repeat(64)));
        for bad in ["..", ".", "a/b", "", "a b", "a.b"] {
            assert!(!is_etag(bad), "{bad}");
        }
    }

    #[test]
    fn escape_sequences_do_not_reach_the_terminal() {
        assert_eq!(printable("a\u{1b}[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(printable(&"x".repeat(400)).chars().count(), 301);
    }
}
