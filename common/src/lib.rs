//! The process plumbing of the sol toolkit, shared by every tool.
//!
//! Every tool ends through [`exit::finish`], so exit statuses (and the table their man text
//! comes from), the one-line error format, the one warning path ([`exit::warn`]) and the
//! closed-stdout rule (README.md, Conventions; each man page's EXIT STATUS) live here once.
//! Stdin/stdout handling (pipe sizing, refusing binary output to a terminal), command-line
//! parsing, sizes, durations, progress reporting and the bounded ordered-results worker
//! pool ([`ordered`]) live here too. The S3 client is the crate next door (common/s3), the
//! on-stream formats another (common/formats).

pub mod cli;
pub mod exit;
pub mod ordered;
pub mod pool;
pub mod progress;
pub mod ranges;
pub mod size;
pub mod stdio;
pub mod target;
pub mod time;

pub use cli::{parse_cli, parse_cli_from, ManText};
pub use exit::{finish, io_msg, warn, Fail, Status};
pub use size::parse_size;

/// Lower-case hex of some bytes (digests, key ids).
/// A key as one unambiguous field: a backslash, a tab, a newline and every other control
/// character are escaped (`\\`, `\t`, `\n`, `\r`, `\xHH`, `\u{HHHH}`), so a listing line
/// is always exactly one object and its first field is exactly its key. Keys without such
/// characters are printed as they are.
pub fn escape_key(key: &str) -> std::borrow::Cow<'_, str> {
    if !key.chars().any(|c| c == '\\' || c.is_control()) {
        return key.into();
    }
    let mut s = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '\t' => s.push_str("\\t"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            c if c.is_control() && (c as u32) < 0x80 => s.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => s.push_str(&format!("\\u{{{:04x}}}", c as u32)),
            c => s.push(c),
        }
    }
    s.into()
}

/// A word as it can be pasted into a shell: as it is when it holds only characters no
/// shell treats specially, else quoted as bash's `${s@Q}` quotes it ('...', or $'...' when
/// it holds a quote or a control character).
pub fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "._/:@%+=,-".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        return s.to_string();
    }
    shell_quoted(s)
}

/// A word quoted as bash's `${s@Q}` quotes it: '...', or $'...' when it holds a quote or a
/// control character.
pub fn shell_quoted(s: &str) -> String {
    if !s.chars().any(|c| c == '\'' || c.is_control()) {
        return format!("'{s}'");
    }
    let mut q = String::from("$'");
    for c in s.chars() {
        match c {
            '\'' => q.push_str("\\'"),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => q.push_str(&format!("\\{:03o}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('\'');
    q
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod shell_word_tests {
    #[test]
    fn words_paste_as_themselves() {
        use super::shell_word;
        assert_eq!(shell_word("s3://b/p/sol0001"), "s3://b/p/sol0001");
        assert_eq!(shell_word("it's a $(x)"), "$'it\\'s a $(x)'");
        assert_eq!(shell_word("a $(touch x)"), "'a $(touch x)'");
        assert_eq!(shell_word("a\nb"), "$'a\\nb'");
        assert_eq!(shell_word(""), "''");
    }
}
