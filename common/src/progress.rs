//! Progress on stderr: bytes, rate, elapsed. Only when asked (`--progress`) or, for tools that
//! choose so, when stderr is a terminal.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    enabled: bool,
    label: String,
    start: Instant,
    last: Instant,
    bytes: u64,
}

impl Progress {
    pub fn new(label: &str, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            label: label.to_string(),
            start: now,
            last: now,
            bytes: 0,
        }
    }

    /// Count `n` more bytes; redraws at most twice a second.
    pub fn add(&mut self, n: u64) {
        self.bytes += n;
        if self.enabled && self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            self.draw(false);
        }
    }

    /// Final line (newline-terminated) when enabled.
    pub fn done(&mut self) {
        if self.enabled {
            self.draw(true);
        }
    }

    fn draw(&self, last: bool) {
        let secs = self.start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 {
            self.bytes as f64 / secs
        } else {
            0.0
        };
        let end = if last { "\n" } else { "" };
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}: {} {}/s {:.1}s   {end}",
            self.label,
            human(self.bytes as f64),
            human(rate),
            secs
        );
        let _ = err.flush();
    }
}

/// 1536 -> "1.5 KiB".
pub fn human(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human_sizes() {
        assert_eq!(super::human(512.0), "512 B");
        assert_eq!(super::human(1536.0), "1.5 KiB");
        assert_eq!(super::human(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
