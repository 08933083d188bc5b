//! Streaming secret redaction.
//!
//! A [`Redactor`] is built from the secret values a run hands to its steps.
//! For every secret it registers the value itself and the encodings a tool is
//! likely to print it in (lines of a multi-line value, standard and URL-safe
//! base64 including the stable middle of a base64 stream, percent-encoding,
//! JSON string escaping). Every byte covered by an occurrence of any pattern
//! is masked; each maximal run of masked bytes (overlapping or touching
//! occurrences) is replaced by one [`MASK`].
//!
//! Streams are redacted chunk by chunk with [`Redactor::push`] and
//! [`Redactor::finish`]. `push` holds back the longest tail of the data seen so
//! far that is a proper prefix of some pattern, so a secret split across
//! chunks is still caught; the output is the same however the stream is
//! split, and equal to [`Redactor::redact`] of the whole stream.

use std::collections::BTreeSet;
use std::fmt;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not registered (they would over-mask); the compiler warns about them.
pub const MIN_SECRET_LEN: usize = 4;

const B64_STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// One trie node; `next` is sorted by byte.
#[derive(Clone, Default)]
struct Node {
    next: Vec<(u8, usize)>,
    terminal: bool,
}

/// Redacts registered secrets from byte streams and complete texts.
#[derive(Clone)]
pub struct Redactor {
    /// Trie of all patterns; node 0 is the root.
    nodes: Vec<Node>,
    patterns: usize,
    max_len: usize,
    /// Bytes received but not yet emitted (a possible start of a pattern).
    pending: Vec<u8>,
    /// How many leading bytes of `pending` are covered by a match that
    /// started in already emitted data.
    covered: usize,
    /// Whether the last emitted byte was masked (so a masked run continuing
    /// into `pending` must not emit a second mask).
    open: bool,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the patterns: they are the secrets.
        f.debug_struct("Redactor")
            .field("patterns", &self.patterns)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Default for Redactor {
    fn default() -> Self {
        Self::new::<&[u8]>(&[])
    }
}

impl Redactor {
    /// Registers every secret value and its common encodings.
    #[must_use]
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Self {
        let mut set: BTreeSet<Vec<u8>> = BTreeSet::new();
        for secret in secrets {
            add_secret(&mut set, secret.as_ref());
        }
        let mut redactor = Redactor {
            nodes: vec![Node::default()],
            patterns: 0,
            max_len: 0,
            pending: Vec::new(),
            covered: 0,
            open: false,
        };
        for pattern in &set {
            redactor.insert(pattern);
        }
        redactor
    }

    /// Whether no secret was registered (everything passes through unchanged).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.patterns == 0
    }

    /// Feeds a chunk of a stream; returns the bytes that are now safe to emit.
    #[must_use]
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return chunk.to_vec();
        }
        let mut buf = std::mem::take(&mut self.pending);
        buf.extend_from_slice(chunk);
        let cut = self.hold_start(&buf);
        let (out, covered, open) = self.render(&buf, cut, self.covered, self.open);
        self.covered = covered;
        self.open = open;
        buf.drain(..cut);
        self.pending = buf;
        out
    }

    /// End of stream: flushes the held-back tail, masked.
    ///
    /// The redactor is then ready for a new stream.
    #[must_use]
    pub fn finish(&mut self) -> Vec<u8> {
        let buf = std::mem::take(&mut self.pending);
        let (out, _, _) = self.render(&buf, buf.len(), self.covered, self.open);
        self.covered = 0;
        self.open = false;
        out
    }

    /// Redacts a complete text at once (for errors, records, reports).
    #[must_use]
    pub fn redact(&self, text: &[u8]) -> Vec<u8> {
        if self.is_empty() {
            return text.to_vec();
        }
        self.render(text, text.len(), 0, false).0
    }

    /// Redacts a complete string at once.
    #[must_use]
    pub fn redact_str(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_owned();
        }
        match String::from_utf8(self.redact(text.as_bytes())) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    fn insert(&mut self, pattern: &[u8]) {
        if pattern.is_empty() {
            return;
        }
        let mut cur = 0;
        for &b in pattern {
            let found = self.nodes[cur].next.binary_search_by_key(&b, |&(k, _)| k);
            cur = match found {
                Ok(i) => self.nodes[cur].next[i].1,
                Err(i) => {
                    let id = self.nodes.len();
                    self.nodes.push(Node::default());
                    self.nodes[cur].next.insert(i, (b, id));
                    id
                }
            };
        }
        if !self.nodes[cur].terminal {
            self.nodes[cur].terminal = true;
            self.patterns += 1;
            self.max_len = self.max_len.max(pattern.len());
        }
    }

    fn child(&self, node: usize, b: u8) -> Option<usize> {
        let next = &self.nodes[node].next;
        next.binary_search_by_key(&b, |&(k, _)| k)
            .ok()
            .map(|i| next[i].1)
    }

    /// Walks the trie along `buf[start..]`. Returns the length of the longest
    /// pattern starting at `start`, and whether all of `buf[start..]` is a
    /// proper prefix of some pattern (the match could still grow).
    fn walk(&self, buf: &[u8], start: usize) -> (usize, bool) {
        let mut node = 0;
        let mut longest = 0;
        for (depth, &b) in buf[start..].iter().enumerate() {
            match self.child(node, b) {
                Some(n) => {
                    node = n;
                    if self.nodes[n].terminal {
                        longest = depth + 1;
                    }
                }
                None => return (longest, false),
            }
        }
        (longest, !self.nodes[node].next.is_empty())
    }

    /// Start of the longest suffix of `buf` that is a proper prefix of a
    /// pattern (`buf.len()` if there is none).
    fn hold_start(&self, buf: &[u8]) -> usize {
        let lo = buf.len().saturating_sub(self.max_len.saturating_sub(1));
        (lo..buf.len())
            .find(|&i| self.walk(buf, i).1)
            .unwrap_or(buf.len())
    }

    /// Emits `buf[..cut]`, masking every byte covered by a match (or by the
    /// `covered` leading bytes); `open` says whether the byte before `buf`
    /// was masked. Returns the output, how far matches starting before `cut`
    /// reach past it, and whether the last emitted byte was masked.
    fn render(&self, buf: &[u8], cut: usize, covered: usize, open: bool) -> (Vec<u8>, usize, bool) {
        let mut out = Vec::with_capacity(cut + MASK.len());
        let mut reach = covered;
        let mut prev = open;
        for (i, &byte) in buf[..cut].iter().enumerate() {
            let (len, _) = self.walk(buf, i);
            reach = reach.max(i + len);
            let masked = i < reach;
            if masked {
                if !prev {
                    out.extend_from_slice(MASK.as_bytes());
                }
            } else {
                out.push(byte);
            }
            prev = masked;
        }
        (out, reach.saturating_sub(cut), prev)
    }
}

/// Adds the patterns of one secret to `set`.
fn add_secret(set: &mut BTreeSet<Vec<u8>>, secret: &[u8]) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let mut values: Vec<&[u8]> = vec![secret];
    // A value read from a file often ends in a newline that tools do not print.
    let trimmed = trim_end_newlines(secret);
    if trimmed.len() != secret.len() && trimmed.len() >= MIN_SECRET_LEN {
        values.push(trimmed);
    }
    if secret.contains(&b'\n') {
        for line in secret.split(|&b| b == b'\n') {
            let line = trim_cr(line);
            add(set, line.to_vec());
        }
    }
    for value in values {
        add_encodings(set, value);
    }
}

fn add_encodings(set: &mut BTreeSet<Vec<u8>>, value: &[u8]) {
    add(set, value.to_vec());
    let mut with_newline = value.to_vec();
    with_newline.push(b'\n');
    for alphabet in [B64_STD, B64_URL] {
        add(set, base64(value, alphabet));
        add(set, base64(&with_newline, alphabet));
        for offset in 0..3 {
            add(set, base64_stable(value, offset, alphabet));
        }
    }
    add(set, percent(value, HEX_UPPER, false));
    add(set, percent(value, HEX_LOWER, false));
    if value.contains(&b' ') {
        add(set, percent(value, HEX_UPPER, true));
        add(set, percent(value, HEX_LOWER, true));
    }
    add(set, json_escape(value, HEX_LOWER, false));
    add(set, json_escape(value, HEX_UPPER, false));
    if let Ok(text) = std::str::from_utf8(value)
        && !text.is_ascii()
    {
        add(set, json_escape(value, HEX_LOWER, true));
    }
}

fn add(set: &mut BTreeSet<Vec<u8>>, pattern: Vec<u8>) {
    if pattern.len() >= MIN_SECRET_LEN {
        set.insert(pattern);
    }
}

fn trim_cr(mut s: &[u8]) -> &[u8] {
    while let [b'\r', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b'\r'] = s {
        s = rest;
    }
    s
}

fn trim_end_newlines(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = s {
        s = rest;
    }
    s
}

/// Base64 without `=` padding; the last character of a partial group is
/// included (as a standalone encoding would print it).
fn base64(data: &[u8], alphabet: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    for group in data.chunks(3) {
        let b0 = u32::from(group[0]);
        let b1 = u32::from(group.get(1).copied().unwrap_or(0));
        let b2 = u32::from(group.get(2).copied().unwrap_or(0));
        let n = (b0 << 16) | (b1 << 8) | b2;
        for k in 0..=group.len() {
            let shift = 18 - 6 * k;
            out.push(alphabet[((n >> shift) & 63) as usize]);
        }
    }
    out
}

/// The base64 characters that depend only on `secret` when it is preceded
/// by `offset` unknown bytes in a larger encoded stream (and followed by
/// unknown bytes): partial characters at both ends are dropped.
fn base64_stable(secret: &[u8], offset: usize, alphabet: &[u8; 64]) -> Vec<u8> {
    let mut data = vec![0u8; offset];
    data.extend_from_slice(secret);
    let encoded = base64(&data, alphabet);
    let first = (8 * offset).div_ceil(6);
    let end = (8 * (offset + secret.len())) / 6;
    if end <= first || end > encoded.len() {
        return Vec::new();
    }
    encoded[first..end].to_vec()
}

/// Percent-encodes every byte except the unreserved `A-Za-z0-9-._~`
/// (and, for form encoding, a space as `+`).
fn percent(data: &[u8], hex: &[u8; 16], plus_for_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() * 3);
    for &b in data {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else if plus_for_space && b == b' ' {
            out.push(b'+');
        } else {
            out.push(b'%');
            out.push(hex[usize::from(b >> 4)]);
            out.push(hex[usize::from(b & 15)]);
        }
    }
    out
}

/// The body of a JSON string holding `data`: `"` `\` and control characters
/// escaped; with `ascii_only`, non-ASCII characters too (as UTF-16 `\uXXXX`).
fn json_escape(data: &[u8], hex: &[u8; 16], ascii_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    if ascii_only && let Ok(text) = std::str::from_utf8(data) {
        let mut units = [0u16; 2];
        for c in text.chars() {
            if c.is_ascii() {
                json_escape_byte(&mut out, c as u8, hex);
            } else {
                for &unit in c.encode_utf16(&mut units).iter() {
                    json_unicode_escape(&mut out, unit, hex);
                }
            }
        }
        return out;
    }
    for &b in data {
        json_escape_byte(&mut out, b, hex);
    }
    out
}

fn json_escape_byte(out: &mut Vec<u8>, b: u8, hex: &[u8; 16]) {
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        c if c < 0x20 => json_unicode_escape(out, u16::from(c), hex),
        c => out.push(c),
    }
}

fn json_unicode_escape(out: &mut Vec<u8>, unit: u16, hex: &[u8; 16]) {
    out.extend_from_slice(b"\\u");
    for shift in [12u16, 8, 4, 0] {
        out.push(hex[usize::from((unit >> shift) & 15)]);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const A: &str = "Zq8#kP2!vX";
    const B: &str = "Zq8#kP2!vX-extended";
    const C: &str = "m9$Lr@7w";

    fn red(secrets: &[&str], text: &str) -> String {
        Redactor::new(secrets).redact_str(text)
    }

    fn stream(r: &mut Redactor, chunks: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(r.push(chunk));
        }
        out.extend(r.finish());
        out
    }

    #[test]
    fn base64_encoder_matches_known_vectors() {
        assert_eq!(base64(b"", B64_STD), b"");
        assert_eq!(base64(b"f", B64_STD), b"Zg");
        assert_eq!(base64(b"fo", B64_STD), b"Zm8");
        assert_eq!(base64(b"foo", B64_STD), b"Zm9v");
        assert_eq!(base64(b"foobar", B64_STD), b"Zm9vYmFy");
        assert_eq!(base64(b"hello world", B64_STD), b"aGVsbG8gd29ybGQ");
        assert_eq!(base64(&[0xfb, 0xff], B64_STD), b"+/8");
        assert_eq!(base64(&[0xfb, 0xff], B64_URL), b"-_8");
    }

    #[test]
    fn raw_secret_is_masked() {
        assert_eq!(red(&["hunter2hunter2"], "pw=hunter2hunter2;"), "pw=***;");
        assert_eq!(red(&["hunter2hunter2"], "hunter2hunter2"), "***");
        assert_eq!(red(&["hunter2hunter2"], "nothing here"), "nothing here");
        // Two occurrences that touch become one masked run.
        assert_eq!(red(&[A, C], &format!("x {A}{C} y {C}")), "x *** y ***");
    }

    #[test]
    fn base64_secret_is_masked() {
        let secret = "s3cr3t-value!";
        let enc = String::from_utf8(base64(secret.as_bytes(), B64_STD)).unwrap();
        assert_eq!(red(&[secret], &format!("auth: {enc}=")), "auth: ***=");
        let enc_nl = String::from_utf8(base64(format!("{secret}\n").as_bytes(), B64_STD)).unwrap();
        assert_eq!(red(&[secret], &format!("auth: {enc_nl}")), "auth: ***");
    }

    #[test]
    fn base64_inside_a_longer_stream_is_masked_at_any_offset() {
        let secret = "s3cr3t-value!";
        for prefix in ["", "a", "ab", "abc", "user:"] {
            for alphabet in [B64_STD, B64_URL] {
                let data = format!("{prefix}{secret} and more data after it");
                let encoded = String::from_utf8(base64(data.as_bytes(), alphabet)).unwrap();
                let out = red(&[secret], &format!("Basic {encoded}"));
                assert!(out.contains(MASK), "{prefix:?}: {out}");
                let stable = base64_stable(secret.as_bytes(), prefix.len() % 3, alphabet);
                let stable = String::from_utf8(stable).unwrap();
                assert!(encoded.contains(&stable), "{prefix:?}");
                assert!(!out.contains(&stable), "{prefix:?}: {out}");
                // Only the partial characters around the secret and the
                // unrelated data survive.
                assert!(out.len() < encoded.len() + "Basic ".len() - stable.len() + MASK.len() + 1);
            }
        }
    }

    #[test]
    fn base64_stable_part_for_each_offset() {
        let secret = b"s3cr3t-value!";
        for k in 0..3usize {
            let stable = base64_stable(secret, k, B64_STD);
            for junk in [[0u8, 0, 0], [255, 255, 255], [1, 2, 3]] {
                let mut data = junk[..k].to_vec();
                data.extend_from_slice(secret);
                data.extend_from_slice(&junk);
                let encoded = base64(&data, B64_STD);
                assert!(
                    encoded
                        .windows(stable.len())
                        .any(|w| w == stable.as_slice()),
                    "offset {k}"
                );
            }
        }
    }

    #[test]
    fn url_encoded_secret_is_masked() {
        let secret = "p@ss w/rd&x";
        assert_eq!(red(&[secret], "q=p%40ss%20w%2Frd%26x&y=1"), "q=***&y=1");
        assert_eq!(red(&[secret], "q=p%40ss%20w%2frd%26x&y=1"), "q=***&y=1");
        assert_eq!(red(&[secret], "q=p%40ss+w%2Frd%26x&y=1"), "q=***&y=1");
    }

    #[test]
    fn json_escaped_secret_is_masked() {
        let secret = "a\"b\\c\nd\u{1}efg";
        let json = serde_json::to_string(&serde_json::json!({ "token": secret })).unwrap();
        assert_eq!(red(&[secret], &json), "{\"token\":\"***\"}");
        let tabbed = "tab\there";
        let json = serde_json::to_string(tabbed).unwrap();
        assert_eq!(red(&[tabbed], &json), "\"***\"");
        let unicode = "pässwörd";
        assert_eq!(red(&[unicode], "\"p\\u00e4ssw\\u00f6rd\""), "\"***\"");
    }

    #[test]
    fn multi_line_secret_lines_are_masked_separately() {
        let pem = "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\nq0Xf8Yy2zz\n-----END KEY-----\n";
        let r = Redactor::new(&[pem]);
        assert_eq!(r.redact_str(pem), "***");
        assert_eq!(
            r.redact_str("line: MIIBOgIBAAJBAK\nother q0Xf8Yy2zz\r\nend"),
            "line: ***\nother ***\r\nend"
        );
        let crlf = "first-line\r\nsecond-line\r\n";
        let r = Redactor::new(&[crlf]);
        assert_eq!(r.redact_str("> second-line <"), "> *** <");
        assert_eq!(r.redact_str("> first-line\r\n"), "> ***\r\n");
    }

    #[test]
    fn trailing_newline_of_a_secret_is_optional() {
        assert_eq!(red(&["token-1234\n"], "got token-1234 ok"), "got *** ok");
    }

    #[test]
    fn longer_secret_wins_when_one_is_a_prefix_of_another() {
        let r = Redactor::new(&[A, B]);
        assert_eq!(r.redact_str(&format!("x {B} y")), "x *** y");
        assert_eq!(r.redact_str(&format!("x {A} y")), "x *** y");
        assert_eq!(r.redact_str(&format!("x {A}-ext y")), "x ***-ext y");
        let mut s = r.clone();
        // Held back while it could still grow into B.
        assert_eq!(s.push(format!("x {A}").as_bytes()), b"x ");
        let mut rest = s.push(b"-extended y");
        rest.extend(s.finish());
        assert_eq!(rest, b"*** y");
    }

    #[test]
    fn push_holds_back_a_possible_start() {
        let mut r = Redactor::new(&[A]);
        assert_eq!(r.push(b"abc Zq8#k"), b"abc ");
        assert_eq!(r.finish(), b"Zq8#k");
        assert_eq!(r.push(b"abc Zq8#k"), b"abc ");
        assert_eq!(r.push(b"P2!vX!"), b"***!");
        assert_eq!(r.finish(), b"");
    }

    #[test]
    fn short_secrets_are_not_registered() {
        let r = Redactor::new(&["1", "{", "}", "ab"]);
        assert!(r.is_empty());
        assert_eq!(r.redact_str("{\"a\": 1}"), "{\"a\": 1}");
        let r = Redactor::new(&["1", "{", "}", A]);
        assert!(!r.is_empty());
        assert_eq!(r.redact_str("{\"a\": 1}"), "{\"a\": 1}");
        assert_eq!(r.redact_str(&format!("{{{A}}}")), "{***}");
        let empty = Redactor::default();
        assert!(empty.is_empty());
        let mut e = empty.clone();
        assert_eq!(e.push(b"abc"), b"abc");
        assert_eq!(e.finish(), b"");
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let r = Redactor::new(&[A]);
        let shown = format!("{r:?}");
        assert!(!shown.contains("Zq8"));
    }

    #[test]
    fn every_split_gives_the_same_output() {
        let c_b64 = String::from_utf8(base64(format!("xy{C}zz").as_bytes(), B64_STD)).unwrap();
        let input = format!(
            "start {A} one {B} two {A}{C} three {C}{C} b64:{c_b64} url:m9%24Lr%407w \
             json:\"{A}\" tail {A}-exit {B}"
        );
        let secrets = [A, B, C];
        let whole = Redactor::new(&secrets).redact(input.as_bytes());
        let whole_str = String::from_utf8(whole.clone()).unwrap();
        // "xy" puts the secret at offset 2: base64 characters 3..13 depend on
        // it alone; the partial ones around it stay.
        assert_eq!(
            whole_str,
            format!(
                "start *** one *** two *** three *** b64:{}***{} url:*** json:\"***\" tail ***-exit ***",
                &c_b64[..3],
                &c_b64[13..]
            )
        );
        assert!(!whole_str.contains(&c_b64));
        let check = |out: &[u8], what: &str| {
            assert_eq!(out, whole.as_slice(), "{what}");
            let text = String::from_utf8_lossy(out);
            for secret in secrets {
                let bytes = secret.as_bytes();
                for w in bytes.windows(MIN_SECRET_LEN) {
                    let w = std::str::from_utf8(w).unwrap();
                    assert!(!text.contains(w), "{what}: {w:?} survived in {text}");
                }
            }
        };
        let base = Redactor::new(&secrets);
        let bytes = input.as_bytes();
        for i in 0..=bytes.len() {
            let mut r = base.clone();
            check(
                &stream(&mut r, &[&bytes[..i], &bytes[i..]]),
                &format!("split {i}"),
            );
            for j in i..=bytes.len() {
                let mut r = base.clone();
                let out = stream(&mut r, &[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                check(&out, &format!("split {i},{j}"));
            }
        }
        let mut r = base.clone();
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        check(&stream(&mut r, &chunks), "byte by byte");
        // The redactor is reusable after finish.
        check(&stream(&mut r, &chunks), "byte by byte again");
    }
}
