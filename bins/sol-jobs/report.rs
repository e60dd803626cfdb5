//! The report of a run, from its rows (`SOL HOST STATUS CODE MS F1 F2 F3 NOTE...`): the
//! title, the start, the head (problems first), what the engine did (sols retried on another
//! host), one line per sol that was not skipped (the kind's columns, its host last), the
//! summary, the failures' causes and the warnings of sols that succeeded, the tail.

use std::fmt::Write as _;

use crate::common::{self, Work};

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
    /// sol-backup with several targets: how many (a column each, from the rows' third
    /// field); 0: no such columns.
    pub targets: usize,
    /// sol-audit with several targets: the FROM column (the target each sol was read from).
    pub from: std::collections::HashMap<String, String>,
    /// No summary line when there are no rows (sol-audit --coverage-only).
    pub no_rows_no_summary: bool,
    pub started: String,
}

impl Report<'_> {
    /// A report with nothing before the table but what the engine did, and no tail.
    pub fn of<'a>(kind: Kind, title: String, skipped: &'a str, work: &Work) -> Report<'a> {
        Report {
            kind,
            title,
            skipped,
            head: String::new(),
            engine: std::fs::read_to_string(work.path("engine")).unwrap_or_default(),
            tail: String::new(),
            targets: 0,
            from: Default::default(),
            no_rows_no_summary: false,
            started: common::started(),
        }
    }

    /// Print it, from the run's rows; returns the worst code.
    pub fn print(&self, work: &Work) -> anyhow::Result<u8> {
        let (text, code) = render(self, &std::fs::read_to_string(work.path("rows"))?);
        emit(&text);
        Ok(code)
    }
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

/// A line of the table; `each` is a cell per target (sol-backup --also), before the host.
fn line(kind: Kind, c: [&str; 7], each: &[&str]) -> String {
    let each: String = each.iter().map(|e| format!("{e:<8}")).collect();
    match kind {
        Kind::Audit => format!(
            "{:<16} {:<11} {:>10} {:>12} {:>11} {:>8}  {each}{}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ),
        Kind::Restore => format!(
            "{:<16} {:<11} {:>12} {:>10} {:>12} {:>8}  {}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ),
        Kind::Backup => format!(
            "{:<16} {:<11} {:>12} {:>12} {:>12} {:>8}  {each}{}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ),
    }
}

/// What the rows add up to.
#[derive(Default)]
struct Tally {
    n: usize,
    ok: usize,
    skipped: usize,
    intr: usize,
    bad: usize,
    /// WAITING (a restore from cold storage in progress): status 5 unless worse.
    waiting: usize,
    worst: u8,
    t1: i64,
    t2: i64,
    table: String,
    fail: String,
    warn: String,
    wait: String,
}

impl Tally {
    fn add(&mut self, r: &Report, row: &str) {
        let (kind, targets) = (r.kind, r.targets);
        let f: Vec<&str> = row.split('\t').collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        let s = |i: usize| *f.get(i).unwrap_or(&"");
        self.n += 1;
        if s(2) == "skipped" {
            self.skipped += 1;
            return;
        }
        match s(2) {
            "ok" => self.ok += 1,
            "INTERRUPTED" => self.intr += 1,
            "WAITING" => self.waiting += 1,
            _ => self.bad += 1,
        }
        self.worst = worse(num(3), self.worst);
        self.t1 += num(5);
        self.t2 += num(6);
        let (a, b, c) = (num(5), num(6), num(7));
        let cols = match kind {
            Kind::Backup => [mb(a), mb(b), rate(a, num(4))],
            Kind::Restore => [mb(a), b.to_string(), rate(a, num(4))],
            Kind::Audit => [a.to_string(), mb(b), c.to_string()],
        };
        let cells = [s(0), s(2), &cols[0], &cols[1], &cols[2], &sec(num(4)), s(1)];
        let mut each: Vec<&str> = s(7).split(',').take(targets).collect();
        each.resize(targets, "-");
        if !r.from.is_empty() {
            each = vec![r.from.get(s(0)).map_or("-", String::as_str)];
        }
        self.table.push_str(&line(kind, cells, &each));
        for note in f.iter().skip(8) {
            if s(2) == "WAITING" {
                let _ = writeln!(self.wait, "  {}: {note}", s(0));
            } else if s(2) == "ok" {
                let _ = writeln!(self.warn, "  {}: {note}", s(0));
            } else if kind != Kind::Audit {
                let _ = writeln!(self.fail, "  {}: {note}", s(0));
            }
        }
    }
}

/// The worse of two codes: 130 beats 3 beats 1 (and any other failure) beats 5 (WAITING:
/// nothing failed, come back later) beats 0.
fn worse(code: i64, worst: u8) -> u8 {
    match (code, worst) {
        (130, _) | (_, 130) => 130,
        (3, _) | (_, 3) => 3,
        (0, w) => w,
        (5, 0 | 5) => 5,
        (5, w) => w,
        _ => 1,
    }
}

/// The report of ROWS, and the worst code (130 beats 3 beats 1 beats 5 beats 0).
pub fn render(r: &Report, rows: &str) -> (String, u8) {
    let now = common::utc(common::now());
    let mut out = format!("{}\nstarted {}, finished {now}\n", r.title, r.started);
    out.push_str(&r.head);
    out.push_str(&r.engine);
    let mut t = Tally::default();
    rows.lines().for_each(|row| t.add(r, row));
    if !t.table.is_empty() {
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
        let mut labels: Vec<String> = (1..=r.targets).map(|i| format!("T{i}")).collect();
        if !r.from.is_empty() {
            labels = vec!["FROM".into()];
        }
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        out.push_str(&line(r.kind, h, &labels));
        out.push_str(&t.table);
    }
    let what = match r.kind {
        Kind::Backup => format!("{} in, {} out", mb(t.t1), mb(t.t2)),
        Kind::Restore => format!("{}, {} files", mb(t.t1), t.t2),
        Kind::Audit => format!("{} files, {} compared", t.t1, mb(t.t2)),
    };
    if !(r.no_rows_no_summary && t.n == 0) {
        let (n, ok, skipped, bad, intr) = (t.n, t.ok, t.skipped, t.bad, t.intr);
        let took = sec(common::elapsed_ms() as i64);
        let waiting = match t.waiting {
            0 => String::new(),
            w => format!(", {w} waiting (thawing: run again later)"),
        };
        let _ = writeln!(
            out,
            "summary: {n} sols: {ok} ok, {skipped} skipped ({}), {bad} failed{waiting}, {intr} interrupted; {what}; {took}",
            r.skipped
        );
    }
    if !t.fail.is_empty() {
        let _ = write!(out, "failures:\n{}", t.fail);
    }
    if !t.wait.is_empty() {
        let _ = write!(out, "waiting (from cold storage):\n{}", t.wait);
    }
    if !t.warn.is_empty() {
        let _ = write!(out, "warnings (sols that succeeded):\n{}", t.warn);
    }
    out.push_str(&r.tail);
    (out, t.worst)
}

/// Print a report on stdout (a closed stdout is not worth a message).
pub fn emit(text: &str) {
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
}
