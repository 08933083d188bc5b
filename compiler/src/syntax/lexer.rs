//! The lexer: source text to a flat token stream with byte spans.
//!
//! Strings are lexed into several tokens so that the parser sees
//! interpolations as ordinary expressions: `"a ${x} b"` becomes
//! `StrStart Text("a ") InterpStart Ident(x) InterpEnd Text(" b") StrEnd`.
//! A mode stack tracks whether the lexer is inside a string or inside an
//! interpolation (where `}` at brace depth zero closes the interpolation).
//!
//! Comments do not reach the parser; they are collected on the side for the
//! formatter and for doc comments (`///`). The lexer never fails: an invalid
//! character becomes an error token plus a diagnostic.

use super::shift::Shift;
use crate::diagnostics::{Code, Diagnostic, Span};

/// The deepest bracket nesting the parser accepts.
pub const MAX_NESTING: usize = 128;

/// The text of a name or of a piece of string: a range of
/// [`Lexed::strings`]. Tokens are `Copy` (the parser copies them as it
/// peeks) and can be shared between the threads that parse a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sym {
    start: u32,
    len: u32,
}

impl Sym {
    /// The text, given the strings of the lexer that made the symbol.
    pub fn get(self, strings: &str) -> &str {
        strings
            .get(self.start as usize..(self.start + self.len) as usize)
            .unwrap_or("")
    }
}

/// A number in a token, kept as two 4-byte halves: with no field aligned
/// to 8 bytes, a token and its span take 20 bytes instead of 24, and a
/// large file has half a million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Num([u32; 2]);

impl Num {
    pub fn new(v: u64) -> Num {
        Num([v as u32, (v >> 32) as u32])
    }

    pub fn get(self) -> u64 {
        u64::from(self.0[0]) | (u64::from(self.0[1]) << 32)
    }

    pub fn signed(self) -> i64 {
        self.get() as i64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tok {
    Ident(Sym),
    Int(Num),
    /// Milliseconds.
    Duration(Num),
    /// Bytes.
    Size(Num),
    /// Hundredths of a percent: `12.5%` is 1250.
    Percent(Num),
    /// `"` or `"""` (true).
    StrStart(bool),
    Text(Sym),
    InterpStart,
    InterpEnd,
    StrEnd,
    Kw(Kw),
    P(P),
    Error,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kw {
    Use,
    As,
    Plugin,
    Param,
    Let,
    Fn,
    Pub,
    Enum,
    Type,
    Pipeline,
    Default,
    On,
    Step,
    Stage,
    Gate,
    Approval,
    Policy,
    Require,
    Else,
    For,
    In,
    If,
    When,
    Match,
    True,
    False,
    None,
    OnFailure,
}

impl Kw {
    pub fn as_str(self) -> &'static str {
        match self {
            Kw::Use => "use",
            Kw::As => "as",
            Kw::Plugin => "plugin",
            Kw::Param => "param",
            Kw::Let => "let",
            Kw::Fn => "fn",
            Kw::Pub => "pub",
            Kw::Enum => "enum",
            Kw::Type => "type",
            Kw::Pipeline => "pipeline",
            Kw::Default => "default",
            Kw::On => "on",
            Kw::Step => "step",
            Kw::Stage => "stage",
            Kw::Gate => "gate",
            Kw::Approval => "approval",
            Kw::Policy => "policy",
            Kw::Require => "require",
            Kw::Else => "else",
            Kw::For => "for",
            Kw::In => "in",
            Kw::If => "if",
            Kw::When => "when",
            Kw::Match => "match",
            Kw::True => "true",
            Kw::False => "false",
            Kw::None => "none",
            Kw::OnFailure => "on_failure",
        }
    }
    pub const ALL: &'static [Kw] = &[
        Kw::Use,
        Kw::As,
        Kw::Plugin,
        Kw::Param,
        Kw::Let,
        Kw::Fn,
        Kw::Pub,
        Kw::Enum,
        Kw::Type,
        Kw::Pipeline,
        Kw::Default,
        Kw::On,
        Kw::Step,
        Kw::Stage,
        Kw::Gate,
        Kw::Approval,
        Kw::Policy,
        Kw::Require,
        Kw::Else,
        Kw::For,
        Kw::In,
        Kw::If,
        Kw::When,
        Kw::Match,
        Kw::True,
        Kw::False,
        Kw::None,
        Kw::OnFailure,
    ];
    fn from_str(s: &str) -> Option<Kw> {
        // A match compiles to a few length and byte comparisons; scanning
        // `ALL` compared every identifier of a file with 28 strings.
        Some(match s {
            "use" => Kw::Use,
            "as" => Kw::As,
            "plugin" => Kw::Plugin,
            "param" => Kw::Param,
            "let" => Kw::Let,
            "fn" => Kw::Fn,
            "pub" => Kw::Pub,
            "enum" => Kw::Enum,
            "type" => Kw::Type,
            "pipeline" => Kw::Pipeline,
            "default" => Kw::Default,
            "on" => Kw::On,
            "step" => Kw::Step,
            "stage" => Kw::Stage,
            "gate" => Kw::Gate,
            "approval" => Kw::Approval,
            "policy" => Kw::Policy,
            "require" => Kw::Require,
            "else" => Kw::Else,
            "for" => Kw::For,
            "in" => Kw::In,
            "if" => Kw::If,
            "when" => Kw::When,
            "match" => Kw::Match,
            "true" => Kw::True,
            "false" => Kw::False,
            "none" => Kw::None,
            "on_failure" => Kw::OnFailure,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum P {
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Colon,
    Semi,
    Dot,
    Eq,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    AndAnd,
    OrOr,
    Bang,
    Arrow,
    FatArrow,
    Question,
    QQ,
    Pipe,
}

impl P {
    pub fn as_str(self) -> &'static str {
        match self {
            P::LBrace => "{",
            P::RBrace => "}",
            P::LParen => "(",
            P::RParen => ")",
            P::LBracket => "[",
            P::RBracket => "]",
            P::Comma => ",",
            P::Colon => ":",
            P::Semi => ";",
            P::Dot => ".",
            P::Eq => "=",
            P::EqEq => "==",
            P::Ne => "!=",
            P::Lt => "<",
            P::Le => "<=",
            P::Gt => ">",
            P::Ge => ">=",
            P::Plus => "+",
            P::Minus => "-",
            P::Star => "*",
            P::Slash => "/",
            P::AndAnd => "&&",
            P::OrOr => "||",
            P::Bang => "!",
            P::Arrow => "->",
            P::FatArrow => "=>",
            P::Question => "?",
            P::QQ => "??",
            P::Pipe => "|",
        }
    }
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Ident(_) => f.write_str("a name"),
            Tok::Int(_) | Tok::Duration(_) | Tok::Size(_) | Tok::Percent(_) => {
                f.write_str("number")
            }
            Tok::StrStart(_) | Tok::Text(_) => f.write_str("string"),
            Tok::StrEnd => f.write_str("end of string"),
            Tok::InterpStart => f.write_str("`${`"),
            Tok::InterpEnd => f.write_str("`}`"),
            Tok::Kw(k) => write!(f, "`{}`", k.as_str()),
            Tok::P(p) => write!(f, "`{}`", p.as_str()),
            Tok::Error => f.write_str("invalid character"),
        }
    }
}

/// A comment kept for the formatter and for documentation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Comment {
    pub span: Span,
    /// The text after `//` or `///`.
    pub text: String,
    pub doc: bool,
    /// True when code precedes the comment on its line.
    pub trailing: bool,
}

#[derive(Debug, PartialEq)]
pub struct Lexed {
    pub tokens: Vec<(Tok, Span)>,
    /// The texts of the names and string pieces, one after the other.
    pub strings: String,
    pub comments: Vec<Comment>,
    pub diagnostics: Vec<Diagnostic>,
    /// Set when nesting exceeded [`MAX_NESTING`]; the parser then refuses the file.
    pub too_deep: bool,
}

impl Lexed {
    /// The text of a name or string piece of this lexer's tokens.
    pub fn text(&self, sym: Sym) -> &str {
        sym.get(&self.strings)
    }
}

enum Mode {
    /// Inside `${ ... }`, counting open braces.
    Interp(usize),
    /// Inside a string; `indent` is what multi-line strings strip per line.
    Str { multi: bool, indent: usize },
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    file: &'a str,
    out: Lexed,
    modes: Vec<Mode>,
    depth: usize,
    /// Lexing the second half of a file without knowing the depth it
    /// starts at: `depth` is not used; `rel` counts from zero and its
    /// extremes are kept, to be checked once the depth is known.
    relative: bool,
    rel: i64,
    rel_min: i64,
    rel_max: i64,
    /// The text ran out inside a string.
    ended_in_string: bool,
}

/// Files at least this long are lexed in two halves at once.
const PARALLEL_LEX_BYTES: usize = 512 * 1024;

pub fn lex(file: &str, src: &str) -> Lexed {
    // The cut follows a newline, so it falls between characters even when
    // the middle byte is inside one.
    if src.len() >= PARALLEL_LEX_BYTES
        && let Some(nl) = src.as_bytes()[src.len() / 2..]
            .iter()
            .position(|&b| b == b'\n')
        && let Some(l) = lex_split(file, src, src.len() / 2 + nl + 1)
    {
        return l;
    }
    let mut lx = Lexer::new(file, src, 0, src.len());
    lx.run();
    lx.out
}

/// Lexes `..cut` and `cut..` on two threads. `cut` must start a line. The
/// second half is lexed as if `cut` were outside any string; if the first
/// half shows it was not (or the nesting depth needs the first half to be
/// known), there is no result and the caller lexes the file in one go.
fn lex_split(file: &str, src: &str, cut: usize) -> Option<Lexed> {
    if cut >= src.len() || !src.is_char_boundary(cut) || !src[..cut].ends_with('\n') {
        return None;
    }
    let (first, second) = std::thread::scope(|scope| {
        let second = std::thread::Builder::new().spawn_scoped(scope, || {
            let mut lx = Lexer::new(file, src, cut, src.len() - cut);
            lx.relative = true;
            lx.run();
            lx
        });
        // The first half's tokens and texts become the whole file's: room
        // for all of them.
        let mut first = Lexer::new(file, &src[..cut], 0, src.len());
        first.run();
        (first, second.ok().and_then(|h| h.join().ok()))
    });
    let second = second?;
    let depth = first.depth as i64;
    if !first.modes.is_empty()
        || first.ended_in_string
        || depth + second.rel_min < 0
        || depth + second.rel_max > MAX_NESTING as i64
    {
        return None;
    }
    let mut out = first.out;
    let offset = out.strings.len() as u32;
    out.strings.push_str(&second.out.strings);
    // Room was made for the whole file's tokens; if the guess fell short,
    // grow once, to the size needed, rather than doubling.
    out.tokens.reserve_exact(second.out.tokens.len());
    out.tokens.extend(
        second
            .out
            .tokens
            .into_iter()
            .map(|(t, span)| (t.with_strings_at(offset), span)),
    );
    out.comments.extend(second.out.comments);
    out.diagnostics.extend(second.out.diagnostics);
    Some(out)
}

impl Tok {
    /// The same token for a strings buffer its lexer's strings were
    /// appended to at `offset`.
    fn with_strings_at(self, offset: u32) -> Tok {
        let moved = |s: Sym| Sym {
            start: s.start + offset,
            len: s.len,
        };
        match self {
            Tok::Ident(s) => Tok::Ident(moved(s)),
            Tok::Text(s) => Tok::Text(moved(s)),
            other => other,
        }
    }
}

/// The lengths of the longest common prefix and suffix of `a` and `b` that
/// do not overlap in either.
fn common_ends(a: &[u8], b: &[u8]) -> (usize, usize) {
    const STEP: usize = 256;
    let n = a.len().min(b.len());
    let mut p = 0;
    while p + STEP <= n && a[p..p + STEP] == b[p..p + STEP] {
        p += STEP;
    }
    while p < n && a[p] == b[p] {
        p += 1;
    }
    let m = n - p;
    let (ea, eb) = (a.len(), b.len());
    let mut s = 0;
    while s + STEP <= m && a[ea - s - STEP..ea - s] == b[eb - s - STEP..eb - s] {
        s += STEP;
    }
    while s < m && a[ea - s - 1] == b[eb - s - 1] {
        s += 1;
    }
    (p, s)
}

/// Lexes `src`, a new version of `old_src` lexed to `old`, by lexing again
/// only the text between two `restarts` around what changed and moving the
/// other tokens. `restarts` are offsets in `old_src` where a token starts
/// outside any string, each at nesting `depth`, with white space before it
/// (where a pipeline's statements start). The result is what [`lex`]
/// gives; `None` when it cannot be had this way (then lex it all).
pub fn relex(
    file: &str,
    src: &str,
    old_src: &str,
    mut old: Lexed,
    restarts: &[u32],
    depth: usize,
) -> Option<Lexed> {
    if !old.diagnostics.is_empty() || old.too_deep {
        return None;
    }
    // The strings of replaced tokens stay in the buffer: lex it all again
    // once they are as many as the live ones.
    if old.strings.len() > 2 * src.len() + (1 << 16) {
        return None;
    }
    let (a, b) = (old_src.as_bytes(), src.as_bytes());
    let (same_before, same_after) = common_ends(a, b);
    let changed_end = a.len() - same_after;
    // From the last restart at or before the change to the first one
    // strictly after it: that one and the byte before it are unchanged.
    let from = *restarts.get(
        restarts
            .partition_point(|&r| r as usize <= same_before)
            .checked_sub(1)?,
    )? as usize;
    let to = *restarts.get(restarts.partition_point(|&r| r as usize <= changed_end))? as usize;
    let by = b.len() as i64 - a.len() as i64;
    let to_now = usize::try_from(to as i64 + by).ok()?;
    let spaced = |i: usize| i > 0 && b.get(i - 1).is_some_and(u8::is_ascii_whitespace);
    if !spaced(from) || !spaced(to_now) || to_now < from || !src.is_char_boundary(to_now) {
        return None;
    }
    let mut lx = Lexer::new(file, &src[..to_now], from, to_now - from);
    lx.relative = true;
    lx.run();
    if !lx.modes.is_empty()
        || lx.ended_in_string
        || lx.rel != 0
        || lx.rel_min < 0
        || depth as i64 + lx.rel_max > MAX_NESTING as i64
        || !lx.out.diagnostics.is_empty()
        // A comment running into the end was cut by it (it would go on).
        || lx.out.comments.last().is_some_and(|c| c.span.end as usize >= to_now)
    {
        return None;
    }
    let offset = old.strings.len() as u32;
    old.strings.push_str(&lx.out.strings);
    let first = old
        .tokens
        .partition_point(|(_, sp)| (sp.start as usize) < from);
    let after = old
        .tokens
        .partition_point(|(_, sp)| (sp.start as usize) < to);
    let n = lx.out.tokens.len();
    old.tokens.splice(
        first..after,
        lx.out
            .tokens
            .into_iter()
            .map(|(t, span)| (t.with_strings_at(offset), span)),
    );
    if by != 0 {
        for (_, span) in &mut old.tokens[first + n..] {
            span.shift(by);
        }
    }
    let first = old
        .comments
        .partition_point(|c| (c.span.start as usize) < from);
    let after = old
        .comments
        .partition_point(|c| (c.span.start as usize) < to);
    let n = lx.out.comments.len();
    old.comments.splice(first..after, lx.out.comments);
    if by != 0 {
        for c in &mut old.comments[first + n..] {
            c.span.shift(by);
        }
    }
    Some(old)
}

impl<'a> Lexer<'a> {
    /// A lexer of `src` from `pos`, with room for the tokens of `room`
    /// bytes of text.
    fn new(file: &'a str, src: &'a str, pos: usize, room: usize) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos,
            file,
            out: Lexed {
                // A token for every three bytes: more than there are in
                // a typical pipeline (one for every four), so the list is
                // not copied as it grows. For a large file, pages of the
                // room that are never written are never touched.
                tokens: Vec::with_capacity(room / 3),
                strings: String::with_capacity(room / 2),
                comments: Vec::new(),
                diagnostics: Vec::new(),
                too_deep: false,
            },
            modes: Vec::new(),
            depth: 0,
            relative: false,
            rel: 0,
            rel_min: 0,
            rel_max: 0,
            ended_in_string: false,
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}
fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> u8 {
        self.bytes.get(self.pos + off).copied().unwrap_or(0)
    }
    fn sym(&mut self, text: &str) -> Sym {
        let start = self.out.strings.len() as u32;
        self.out.strings.push_str(text);
        Sym {
            start,
            len: text.len() as u32,
        }
    }
    fn push(&mut self, tok: Tok, start: usize) {
        self.out.tokens.push((tok, Span::new(start, self.pos)));
    }
    fn error(&mut self, code: Code, span: Span, msg: impl Into<String>, label: impl Into<String>) {
        self.out
            .diagnostics
            .push(Diagnostic::error(code, self.file, span, msg).with_label(label));
    }
    fn open(&mut self, start: usize) {
        if self.relative {
            self.rel += 1;
            self.rel_max = self.rel_max.max(self.rel);
            return;
        }
        self.depth += 1;
        if self.depth > MAX_NESTING && !self.out.too_deep {
            self.out.too_deep = true;
            let d = Diagnostic::error(
                Code::NestingTooDeep,
                self.file,
                Span::new(start, self.pos),
                format!("brackets are nested more than {MAX_NESTING} levels deep"),
            )
            .with_label("this bracket is too deep")
            .with_help("split the expression into `let` bindings or functions");
            self.out.diagnostics.push(d);
        }
    }
    fn close(&mut self) {
        if self.relative {
            self.rel -= 1;
            self.rel_min = self.rel_min.min(self.rel);
            return;
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn run(&mut self) {
        while self.pos < self.bytes.len() {
            match self.modes.last() {
                Some(Mode::Str { multi, indent }) => {
                    let (multi, indent) = (*multi, *indent);
                    self.string_body(multi, indent);
                }
                _ => self.token(),
            }
        }
        if let Some(Mode::Str { .. }) = self.modes.last() {
            // string_body reports the unterminated string itself
        }
    }

    fn line_has_code_before(&self, at: usize) -> bool {
        let line_start = self.src[..at].rfind('\n').map_or(0, |i| i + 1);
        !self.src[line_start..at].trim().is_empty()
    }

    fn token(&mut self) {
        let start = self.pos;
        let c = self.peek(0);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                self.pos += 1;
                while matches!(self.peek(0), b' ' | b'\t' | b'\n' | b'\r') {
                    self.pos += 1;
                }
            }
            b'/' if self.peek(1) == b'/' => {
                let doc = self.peek(2) == b'/' && self.peek(3) != b'/';
                let end = self.src[start..]
                    .find('\n')
                    .map_or(self.src.len(), |i| start + i);
                let text_start = start + if doc { 3 } else { 2 };
                let text = self.src[text_start..end].trim_end_matches('\r').to_owned();
                let trailing = self.line_has_code_before(start);
                self.pos = end;
                self.out.comments.push(Comment {
                    span: Span::new(start, end),
                    text,
                    doc,
                    trailing,
                });
            }
            b'"' => {
                let multi = self.peek(1) == b'"' && self.peek(2) == b'"';
                self.pos += if multi { 3 } else { 1 };
                let indent = if multi { self.multiline_indent() } else { 0 };
                if multi {
                    // The line break right after the opening quotes is not content.
                    if self.peek(0) == b'\r' && self.peek(1) == b'\n' {
                        self.pos += 2;
                    } else if self.peek(0) == b'\n' {
                        self.pos += 1;
                    }
                    self.skip_indent(indent);
                }
                self.push(Tok::StrStart(multi), start);
                self.modes.push(Mode::Str { multi, indent });
            }
            b'0'..=b'9' => self.number(),
            c if is_ident_start(c) => {
                while is_ident_char(self.peek(0)) {
                    self.pos += 1;
                }
                let word = &self.src[start..self.pos];
                let tok = Kw::from_str(word).map_or_else(|| Tok::Ident(self.sym(word)), Tok::Kw);
                self.push(tok, start);
            }
            b'{' => {
                self.pos += 1;
                if let Some(Mode::Interp(d)) = self.modes.last_mut() {
                    *d += 1;
                }
                self.open(start);
                self.push(Tok::P(P::LBrace), start);
            }
            b'}' => {
                self.pos += 1;
                self.close();
                match self.modes.last_mut() {
                    Some(Mode::Interp(0)) => {
                        self.modes.pop();
                        self.push(Tok::InterpEnd, start);
                    }
                    Some(Mode::Interp(d)) => {
                        *d -= 1;
                        self.push(Tok::P(P::RBrace), start);
                    }
                    _ => self.push(Tok::P(P::RBrace), start),
                }
            }
            _ => {
                let two = [c, self.peek(1)];
                let (p, len) = match &two {
                    b"==" => (Some(P::EqEq), 2),
                    b"!=" => (Some(P::Ne), 2),
                    b"<=" => (Some(P::Le), 2),
                    b">=" => (Some(P::Ge), 2),
                    b"&&" => (Some(P::AndAnd), 2),
                    b"||" => (Some(P::OrOr), 2),
                    b"->" => (Some(P::Arrow), 2),
                    b"=>" => (Some(P::FatArrow), 2),
                    b"??" => (Some(P::QQ), 2),
                    _ => (
                        match c {
                            b'(' => Some(P::LParen),
                            b')' => Some(P::RParen),
                            b'[' => Some(P::LBracket),
                            b']' => Some(P::RBracket),
                            b',' => Some(P::Comma),
                            b':' => Some(P::Colon),
                            b';' => Some(P::Semi),
                            b'.' => Some(P::Dot),
                            b'=' => Some(P::Eq),
                            b'<' => Some(P::Lt),
                            b'>' => Some(P::Gt),
                            b'+' => Some(P::Plus),
                            b'-' => Some(P::Minus),
                            b'*' => Some(P::Star),
                            b'/' => Some(P::Slash),
                            b'!' => Some(P::Bang),
                            b'?' => Some(P::Question),
                            b'|' => Some(P::Pipe),
                            _ => None,
                        },
                        1,
                    ),
                };
                if let Some(p) = p {
                    self.pos += len;
                    match p {
                        P::LParen | P::LBracket => self.open(start),
                        P::RParen | P::RBracket => self.close(),
                        _ => {}
                    }
                    self.push(Tok::P(p), start);
                } else {
                    let ch = self.src[start..].chars().next().unwrap_or('\u{fffd}');
                    self.pos += ch.len_utf8().max(1);
                    let shown = if ch.is_control() {
                        format!("{ch:?}")
                    } else {
                        format!("`{ch}`")
                    };
                    self.error(
                        Code::InvalidCharacter,
                        Span::new(start, self.pos),
                        format!("unexpected character {shown}"),
                        "no token starts with this character",
                    );
                    self.push(Tok::Error, start);
                }
            }
        }
    }

    fn number(&mut self) {
        let start = self.pos;
        let mut total_ms: u128 = 0;
        let mut is_duration = false;
        loop {
            let num_start = self.pos;
            while self.peek(0).is_ascii_digit() || self.peek(0) == b'_' {
                self.pos += 1;
            }
            let mut frac: Option<usize> = None;
            if self.peek(0) == b'.' && self.peek(1).is_ascii_digit() {
                self.pos += 1;
                let fs = self.pos;
                while self.peek(0).is_ascii_digit() {
                    self.pos += 1;
                }
                frac = Some(fs);
            }
            let digits = &self.src[num_start..self.pos];
            let unit_start = self.pos;
            while self.peek(0).is_ascii_alphabetic()
                || self.peek(0) == b'%' && self.pos == unit_start
            {
                let was_pct = self.peek(0) == b'%';
                self.pos += 1;
                if was_pct {
                    break;
                }
            }
            let unit = &self.src[unit_start..self.pos];
            let span = Span::new(start, self.pos);
            let int_part: String = digits
                .split('.')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| *c != '_')
                .collect();
            let Ok(whole) = int_part.parse::<u64>() else {
                self.invalid(span, "the number is too large");
                return;
            };
            let dur = match unit {
                "ms" => Some(1u128),
                "s" => Some(1000),
                "m" => Some(60_000),
                "h" => Some(3_600_000),
                "d" => Some(86_400_000),
                _ => None,
            };
            if let Some(mult) = dur {
                if frac.is_some() {
                    self.invalid(
                        span,
                        "durations take whole numbers: write `1m30s`, not `1.5m`",
                    );
                    return;
                }
                total_ms = total_ms.saturating_add(u128::from(whole) * mult);
                is_duration = true;
                if self.peek(0).is_ascii_digit() {
                    continue;
                }
                if total_ms > u128::from(u64::MAX) {
                    self.invalid(span, "the duration is too long");
                    return;
                }
                self.push(Tok::Duration(Num::new(total_ms as u64)), start);
                return;
            }
            if is_duration {
                self.invalid(
                    span,
                    "a duration continues with a number and a unit: `ms`, `s`, `m`, `h` or `d`",
                );
                return;
            }
            let size = match unit {
                "B" => Some(1u128),
                "KB" => Some(1000),
                "MB" => Some(1_000_000),
                "GB" => Some(1_000_000_000),
                "TB" => Some(1_000_000_000_000),
                "KiB" => Some(1 << 10),
                "MiB" => Some(1 << 20),
                "GiB" => Some(1 << 30),
                "TiB" => Some(1 << 40),
                _ => None,
            };
            if let Some(mult) = size {
                if frac.is_some() {
                    self.invalid(
                        span,
                        "sizes take whole numbers: write `1536MiB`, not `1.5GiB`",
                    );
                    return;
                }
                let v = u128::from(whole) * mult;
                if v > u128::from(u64::MAX) {
                    self.invalid(span, "the size is too large");
                    return;
                }
                self.push(Tok::Size(Num::new(v as u64)), start);
                return;
            }
            if unit == "%" {
                let frac_digits = frac.map_or("", |fs| &self.src[fs..unit_start]);
                if frac_digits.len() > 2 {
                    self.invalid(span, "percentages take at most two decimals");
                    return;
                }
                let hundredths = format!("{frac_digits:0<2}").parse::<i64>().unwrap_or(0);
                if whole > 100_000 {
                    self.invalid(span, "the percentage is too large");
                    return;
                }
                self.push(
                    Tok::Percent(Num::new((whole as i64 * 100 + hundredths) as u64)),
                    start,
                );
                return;
            }
            if !unit.is_empty() {
                self.invalid(span, &format!("unknown unit `{unit}`: durations use ms, s, m, h, d; sizes use B, KB, MB, GB, KiB, MiB, GiB; percentages use %"));
                return;
            }
            if frac.is_some() {
                self.invalid(
                    span,
                    "Weir has no fractional numbers; only percentages take decimals",
                );
                return;
            }
            if whole > i64::MAX as u64 {
                self.invalid(span, "the number is too large");
                return;
            }
            self.push(Tok::Int(Num::new(whole as i64 as u64)), start);
            return;
        }
    }

    fn invalid(&mut self, span: Span, why: &str) {
        self.error(
            Code::InvalidLiteral,
            span,
            format!("invalid literal `{}`", &self.src[span.range()]),
            why,
        );
        self.push(Tok::Error, span.start as usize);
    }

    /// The indentation common to the non-blank lines of the multi-line string
    /// that starts at `self.pos`.
    fn multiline_indent(&self) -> usize {
        let rest = &self.src[self.pos..];
        let end = rest.find("\"\"\"").unwrap_or(rest.len());
        let body = &rest[..end];
        body.split('\n')
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start_matches([' ', '\t']).len())
            .min()
            .unwrap_or(0)
    }

    fn skip_indent(&mut self, indent: usize) {
        let mut n = 0;
        while n < indent && matches!(self.peek(0), b' ' | b'\t') {
            self.pos += 1;
            n += 1;
        }
    }

    fn string_body(&mut self, multi: bool, indent: usize) {
        let start = self.pos;
        let mut text = String::new();
        loop {
            if self.pos >= self.bytes.len() {
                if !text.is_empty() {
                    {
                        let sym = self.sym(&text);
                        self.push(Tok::Text(sym), start);
                    }
                }
                let open = self
                    .out
                    .tokens
                    .iter()
                    .rev()
                    .find(|(t, _)| matches!(t, Tok::StrStart(_)))
                    .map_or(Span::new(start, start), |(_, s)| *s);
                self.ended_in_string = true;
                self.error(
                    Code::UnterminatedString,
                    open,
                    "this string is never closed",
                    "the string starts here",
                );
                if let Some(d) = self.out.diagnostics.last_mut() {
                    d.help = Some(if multi {
                        "close it with `\"\"\"`".into()
                    } else {
                        "close it with `\"` before the end of the line".into()
                    });
                }
                self.modes.pop();
                self.push(Tok::StrEnd, self.pos);
                return;
            }
            // Plain text up to the next byte that means something in a
            // string, copied at once (those bytes are ASCII, so the cut is
            // on a character boundary).
            let plain = self.bytes[self.pos..]
                .iter()
                .position(|b| matches!(b, b'"' | b'\\' | b'$' | b'\n' | b'\r'))
                .map_or(self.bytes.len(), |i| self.pos + i);
            if plain > self.pos {
                text.push_str(&self.src[self.pos..plain]);
                self.pos = plain;
                continue;
            }
            let c = self.peek(0);
            if multi && c == b'"' && self.peek(1) == b'"' && self.peek(2) == b'"' {
                // A whitespace-only last line belongs to the closing quotes.
                if let Some(nl) = text.rfind('\n')
                    && text[nl + 1..].trim().is_empty()
                {
                    text.truncate(nl + 1);
                }
                if !text.is_empty() {
                    {
                        let sym = self.sym(&text);
                        self.push(Tok::Text(sym), start);
                    }
                }
                let s = self.pos;
                self.pos += 3;
                self.modes.pop();
                self.push(Tok::StrEnd, s);
                return;
            }
            if !multi && c == b'"' {
                if !text.is_empty() {
                    {
                        let sym = self.sym(&text);
                        self.push(Tok::Text(sym), start);
                    }
                }
                let s = self.pos;
                self.pos += 1;
                self.modes.pop();
                self.push(Tok::StrEnd, s);
                return;
            }
            if !multi && c == b'\n' {
                if !text.is_empty() {
                    {
                        let sym = self.sym(&text);
                        self.push(Tok::Text(sym), start);
                    }
                }
                let open = self
                    .out
                    .tokens
                    .iter()
                    .rev()
                    .find(|(t, _)| matches!(t, Tok::StrStart(_)))
                    .map_or(Span::new(start, start), |(_, s)| *s);
                self.error(
                    Code::UnterminatedString,
                    open.to(Span::new(self.pos, self.pos)),
                    "this string is not closed before the end of the line",
                    "the string starts here",
                );
                if let Some(d) = self.out.diagnostics.last_mut() {
                    d.help = Some("close it with `\"`; for text over several lines use a multi-line string `\"\"\"`".into());
                }
                self.modes.pop();
                self.push(Tok::StrEnd, self.pos);
                return;
            }
            if c == b'$' && self.peek(1) == b'{' {
                if !text.is_empty() {
                    let sym = self.sym(&text);
                    text.clear();
                    self.push(Tok::Text(sym), start);
                }
                let s = self.pos;
                self.pos += 2;
                self.open(s);
                self.push(Tok::InterpStart, s);
                self.modes.push(Mode::Interp(0));
                return;
            }
            if c == b'\\' {
                let esc_start = self.pos;
                let e = self.peek(1);
                let r = match e {
                    b'n' => Some('\n'),
                    b't' => Some('\t'),
                    b'r' => Some('\r'),
                    b'\\' => Some('\\'),
                    b'"' => Some('"'),
                    b'$' => Some('$'),
                    b'0' => Some('\0'),
                    _ => None,
                };
                if let Some(r) = r {
                    text.push(r);
                    self.pos += 2;
                } else {
                    let ch = self.src[self.pos + 1..].chars().next().unwrap_or(' ');
                    self.pos += 1 + ch.len_utf8();
                    let shown: String = ch.escape_debug().collect();
                    self.error(
                        Code::InvalidEscape,
                        Span::new(esc_start, self.pos),
                        format!("unknown escape sequence `\\{shown}`"),
                        "not a known escape",
                    );
                    if let Some(d) = self.out.diagnostics.last_mut() {
                        d.help = Some("the escapes are \\n \\t \\r \\\\ \\\" \\$ and \\0; write `\\\\` for a backslash".into());
                    }
                }
                continue;
            }
            let ch = self.src[self.pos..].chars().next().unwrap_or('\u{fffd}');
            self.pos += ch.len_utf8();
            if ch == '\r' && multi && self.peek(0) == b'\n' {
                continue;
            }
            text.push(ch);
            if ch == '\n' && multi {
                self.skip_indent(indent);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers survive being split into halves, at both ends of their
    /// range, and the literals of the language come out as written.
    #[test]
    fn numbers_in_tokens_keep_their_values_in_twenty_bytes() {
        for v in [
            0u64,
            1,
            41,
            u64::from(u32::MAX),
            u64::from(u32::MAX) + 1,
            u64::MAX,
        ] {
            assert_eq!(Num::new(v).get(), v);
        }
        for v in [0i64, -1, i64::MIN, i64::MAX, -1250] {
            assert_eq!(Num::new(v as u64).signed(), v);
        }
        assert_eq!(std::mem::size_of::<(Tok, Span)>(), 20);
        let l = lex("n.weir", "9223372036854775807 1h30m 512MiB 12.5% 0");
        let values: Vec<Option<i128>> = l
            .tokens
            .iter()
            .map(|(t, _)| match t {
                Tok::Int(n) | Tok::Percent(n) => Some(i128::from(n.signed())),
                Tok::Duration(n) | Tok::Size(n) => Some(i128::from(n.get())),
                _ => None,
            })
            .collect();
        assert_eq!(
            values,
            [
                Some(i128::from(i64::MAX)),
                Some(5_400_000),
                Some(512 << 20),
                Some(1250),
                Some(0)
            ]
        );
    }

    /// Where a pipeline body's statements start (a `let` or `stage` at
    /// depth one, not after a `.`) and where it ends: the restarts the
    /// parser gives [`relex`].
    fn restarts(l: &Lexed) -> Vec<u32> {
        let mut out = Vec::new();
        let mut depth = 0i64;
        let mut prev = Tok::Error;
        for &(t, span) in &l.tokens {
            match t {
                Tok::Kw(Kw::Let | Kw::Stage) if depth == 1 && prev != Tok::P(P::Dot) => {
                    out.push(span.start);
                }
                Tok::P(P::LBrace | P::LParen | P::LBracket)
                | Tok::InterpStart
                | Tok::StrStart(_) => {
                    depth += 1;
                }
                Tok::P(P::RBrace | P::RParen | P::RBracket) | Tok::InterpEnd | Tok::StrEnd => {
                    depth -= 1;
                    if depth == 0 {
                        out.push(span.start);
                    }
                }
                _ => {}
            }
            prev = t;
        }
        out
    }

    /// Tokens with their texts, and comments: what two lexes of one text
    /// must agree on (their strings buffers may be laid out differently).
    type Seen<'a> = (Vec<(Tok, Span, &'a str)>, &'a [Comment], bool);

    fn seen(l: &Lexed) -> Seen<'_> {
        let toks = l
            .tokens
            .iter()
            .map(|&(t, span)| match t {
                Tok::Ident(s) => (Tok::Ident(Sym { start: 0, len: 0 }), span, l.text(s)),
                Tok::Text(s) => (Tok::Text(Sym { start: 0, len: 0 }), span, l.text(s)),
                other => (other, span, ""),
            })
            .collect();
        (toks, &l.comments, l.too_deep)
    }

    #[test]
    fn relexing_around_an_edit_is_lexing_the_new_text() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut text = crate::generated::pipeline(60).replace(
            "  let s7 =",
            "  // a comment\n  stage st { let m = step \"m\" { run: \"\"\"\n    multi ${x}\n    \"\"\" } }\n  let s7 =",
        );
        assert_eq!(lex("g.weir", &text).diagnostics, Vec::new());
        let mut clean = text.clone();
        let (mut relexed, mut lexed_clean) = (0, 0);
        for round in 0..400 {
            let before = text.clone();
            let old = lex("g.weir", &before);
            let at =
                crate::diagnostics::floor_char_boundary(&text, rng.random_range(0..text.len()));
            match round % 5 {
                0 | 1 => {
                    let ins = [
                        "a",
                        "7",
                        " ",
                        "\n",
                        "{",
                        "}",
                        "\"",
                        "${",
                        "//",
                        "é",
                        "let ",
                        "\n  let z = 1\n",
                    ][rng.random_range(0..12)];
                    text.insert_str(at, ins);
                }
                2 => {
                    let end = (at + rng.random_range(1..40)).min(text.len());
                    if text.is_char_boundary(end) {
                        text.replace_range(at..end, "");
                    }
                }
                _ => {
                    if let Some(i) = text[at..].find(|c: char| c.is_ascii_digit()) {
                        text.replace_range((at + i)..=(at + i), "9");
                    }
                }
            }
            let fresh = lex("g.weir", &text);
            // Restarts come from a clean parse of the old text.
            let parsed_clean = crate::syntax::parse("g.weir", &before)
                .diagnostics
                .is_empty();
            let starts = if parsed_clean {
                restarts(&old)
            } else {
                Vec::new()
            };
            lexed_clean += usize::from(parsed_clean);
            if let Some(again) = relex("g.weir", &text, &before, old, &starts, 1) {
                relexed += 1;
                assert!(
                    fresh.diagnostics.is_empty(),
                    "round {round}: {:?}",
                    fresh.diagnostics
                );
                let (x, y) = (seen(&again), seen(&fresh));
                if x != y {
                    let i = x.0.iter().zip(&y.0).position(|(a, b)| a != b).unwrap_or(0);
                    panic!(
                        "round {round}: token {i}: {:?} against {:?}; comments {:?} against {:?}\n{:?}",
                        x.0.get(i.saturating_sub(2)..i + 3),
                        y.0.get(i.saturating_sub(2)..i + 3),
                        x.1,
                        y.1,
                        text.get(
                            x.0.get(i)
                                .map_or(0, |t| t.1.start as usize)
                                .saturating_sub(80)..
                        )
                        .map(|t| &t[..t.len().min(200)])
                    );
                }
            }
            // Mostly keep to texts that parse cleanly.
            if crate::syntax::parse("g.weir", &text).diagnostics.is_empty() {
                clean.clone_from(&text);
            } else if rng.random_range(0..4) > 0 {
                text.clone_from(&clean);
            }
        }
        assert!(relexed > lexed_clean / 2, "{relexed} of {lexed_clean}");
    }

    #[test]
    fn every_keyword_lexes_as_itself_and_nothing_else_does() {
        for k in Kw::ALL {
            assert_eq!(Kw::from_str(k.as_str()), Some(*k));
        }
        for word in ["uses", "Let", "step_", "on_failures", "nonee", ""] {
            assert_eq!(Kw::from_str(word), None, "{word}");
        }
    }

    #[test]
    fn a_file_lexed_in_two_halves_is_the_file_lexed_at_once() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut sources = vec![
            crate::generated::pipeline(200),
            "let a = \"\"\"\n  x\n  y ${ {\n b: 1 } }\n  \"\"\"\n// c\nlet b = \"\n\"\n/// d\nlet c = [\n1]\n".to_owned(),
            "}\n}\n{\n".to_owned(),
        ];
        for dir in [
            "examples/rust-service",
            "examples/promotion",
            "compiler/tests/ui",
        ] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let p = e.unwrap().path();
                if p.extension().is_some_and(|x| x == "weir") {
                    sources.push(std::fs::read_to_string(p).unwrap());
                }
            }
        }
        let (mut split, mut refused) = (0, 0);
        for src in &sources {
            let whole = lex("t.weir", src);
            for (i, _) in src.match_indices('\n') {
                match lex_split("t.weir", src, i + 1) {
                    Some(halves) => {
                        assert_eq!(halves, whole, "cut at {}:\n{src}", i + 1);
                        split += 1;
                    }
                    None => refused += 1,
                }
            }
        }
        // Cuts inside strings, or where depth matters, are refused.
        assert!(split > 1000 && refused > 10, "{split} {refused}");
    }

    #[test]
    fn a_large_file_whose_middle_byte_is_inside_a_character_lexes_in_two_halves() {
        let mut src = String::from("// ");
        src.push_str(&"é".repeat(300_000));
        src.push_str("\nlet a = \"ü\"\n");
        assert!(src.len() >= PARALLEL_LEX_BYTES && !src.is_char_boundary(src.len() / 2));
        let mut one = Lexer::new("t.weir", &src, 0, src.len());
        one.run();
        assert_eq!(lex("t.weir", &src), one.out);
        let cut = src.find('\n').unwrap() + 1;
        assert!(lex_split("t.weir", &src, cut).is_some());
    }

    #[test]
    fn string_text_keeps_multibyte_characters_around_escapes_and_interpolations() {
        let l = lex("t.weir", "\"é ${x} \\n ü\"");
        let texts: Vec<String> = l
            .tokens
            .iter()
            .filter_map(|(t, _)| match t {
                Tok::Text(s) => Some(s.get(&l.strings).to_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(texts, vec!["é ".to_owned(), " \n ü".to_owned()]);
        assert!(l.diagnostics.is_empty());
    }
}
