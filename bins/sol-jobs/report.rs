//! The report of a run, from its rows (`SOL HOST STATUS CODE MS F1 F2 F3 NOTE...`): the
//! title, the start, the head (problems first), what the engine did (sols retried on another
//! host), one line per sol that was not skipped (the kind's columns, its host last), the
//! summary, the failures' causes and the warnings of sols that succeeded, the tail.

use std::fmt::Write as _;

use crate::common;

#[derive(Clone, Copy, PartialEq)]
pub enum Kind {
    /// F1 bytes in, F2 bytes out.
    Backup,
    /// F1 bytes, F2 files.
    Restore,
    /// F1 files, F2 bytes, F3 differences (its notes are problems, in the head).
    Audit,
}

pub struct Report<'a> {
    pub kind: Kind,
    pub title: String,
    /// What skipped sols are, in the summary.
    pub skipped: &'a str,
    pub head: String,
    pub engine: String,
    pub tail: String,
    /// No summary line when there are no rows (sol-audit --coverage-only).
    pub no_rows_no_summary: bool,
    pub started: String,
}

fn mb(b: i64) -> String {
    format!("{}.{} MB", b / 1_000_000, b % 1_000_000 / 100_000)
}
fn sec(t: i64) -> String {
    format!("{}.{}s", t / 1000, t % 1000 / 100)
}
fn rate(b: i64, t: i64) -> String {
    let r = b / t.max(1);
    format!("{}.{} MB/s", r / 1000, r % 1000 / 100)
}

fn line(kind: Kind, c: [&str; 7]) -> String {
    match kind {
        Kind::Audit => format!(
            "{:<16} {:<11} {:>10} {:>12} {:>11} {:>8}  {}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ),
        Kind::Restore => format!(
            "{:<16} {:<11} {:>12} {:>10} {:>12} {:>8}  {}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ),
        Kind::Backup => format!(
            "{:<16} {:<11} {:>12} {:>12} {:>12} {:>8}  {}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ),
    }
}

/// The report of ROWS, and the worst code (130 beats 3 beats 1 beats 0).
pub fn render(r: &Report, rows: &str) -> (String, u8) {
    let mut out = format!(
        "{}\nstarted {}, finished {}\n",
        r.title,
        r.started,
        common::utc(common::now())
    );
    out.push_str(&r.head);
    out.push_str(&r.engine);
    let (mut n, mut ok, mut skipped, mut intr, mut bad, mut worst) = (0, 0, 0, 0, 0, 0u8);
    let (mut t1, mut t2) = (0i64, 0i64);
    let (mut table, mut fail, mut warn) = (String::new(), String::new(), String::new());
    for row in rows.lines() {
        let f: Vec<&str> = row.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let s = |i: usize| *f.get(i).unwrap_or(&"");
        n += 1;
        if s(2) == "skipped" {
            skipped += 1;
            continue;
        }
        match s(2) {
            "ok" => ok += 1,
            "INTERRUPTED" => intr += 1,
            _ => bad += 1,
        }
        let code = num(3);
        worst = match (code, worst) {
            (130, _) | (_, 130) => 130,
            (3, _) | (_, 3) => 3,
            (0, w) => w,
            _ => 1,
        };
        t1 += num(5);
        t2 += num(6);
        let (a, b, c) = (num(5), num(6), num(7));
        let cols = match r.kind {
            Kind::Backup => [mb(a), mb(b), rate(a, num(4))],
            Kind::Restore => [mb(a), b.to_string(), rate(a, num(4))],
            Kind::Audit => [a.to_string(), mb(b), c.to_string()],
        };
        table.push_str(&line(
            r.kind,
            [s(0), s(2), &cols[0], &cols[1], &cols[2], &sec(num(4)), s(1)],
        ));
        for note in f.iter().skip(8) {
            if s(2) == "ok" {
                let _ = writeln!(warn, "  {}: {note}", s(0));
            } else if r.kind != Kind::Audit {
                let _ = writeln!(fail, "  {}: {note}", s(0));
            }
        }
    }
    if !table.is_empty() {
        let h = match r.kind {
            Kind::Backup => ["SOL", "STATUS", "IN", "OUT", "RATE", "TIME", "HOST"],
            Kind::Restore => ["SOL", "STATUS", "BYTES", "FILES", "RATE", "TIME", "HOST"],
            Kind::Audit => [
                "SOL",
                "STATUS",
                "FILES",
                "BYTES",
                "DIFFERENCES",
                "TIME",
                "HOST",
            ],
        };
        out.push_str(&line(r.kind, h));
        out.push_str(&table);
    }
    let what = match r.kind {
        Kind::Backup => format!("{} in, {} out", mb(t1), mb(t2)),
        Kind::Restore => format!("{}, {t2} files", mb(t1)),
        Kind::Audit => format!("{t1} files, {} compared", mb(t2)),
    };
    if !(r.no_rows_no_summary && n == 0) {
        let _ = writeln!(
            out,
            "summary: {n} sols: {ok} ok, {skipped} skipped ({}), {bad} failed, {intr} interrupted; {what}; {}",
            r.skipped,
            sec(common::elapsed_ms() as i64)
        );
    }
    if !fail.is_empty() {
        let _ = write!(out, "failures:\n{fail}");
    }
    if !warn.is_empty() {
        let _ = write!(out, "warnings (sols that succeeded):\n{warn}");
    }
    out.push_str(&r.tail);
    (out, worst)
}

/// Print a report on stdout (a closed stdout is not worth a message).
pub fn emit(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
}
