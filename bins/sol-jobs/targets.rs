//! Several targets (--also): the same prefix at other buckets or vendors. Each is listed
//! once per run; one that cannot be listed is dead for the run (no sol waits on it, and the
//! next run catches its sols up). The report has a column per target: T1 is the
//! destination, T2... each --also in order.

use std::collections::HashMap;

use anyhow::Result;

use sol_common::exit::status_of;
use sol_common::Status;

use crate::common::{self, Listed, Work};

/// The run's targets and what each holds.
pub struct Targets {
    pub urls: Vec<String>,
    /// Per target: its listing, or why it could not be listed (dead for this run).
    pub lists: Vec<Result<Vec<Listed>, String>>,
}

/// A sol's cells, one per target: what sol-jobs knew before the job (`had`, `DEAD`), the
/// rest (`passed`, in the order given to sol-backup-one) filled from its row.
pub struct Cells {
    pub known: Vec<&'static str>,
    pub passed: Vec<usize>,
}

impl Cells {
    /// What is known of a sol before its job: DEAD targets, those that `have` it (`had`
    /// unless passed), and the targets passed to its job.
    pub fn of(t: &Targets, have: &[usize], passed: Vec<usize>) -> Cells {
        let known = (0..t.urls.len())
            .map(|i| match (t.lists[i].is_err(), have.contains(&i)) {
                (true, _) => "DEAD",
                (false, true) => "had",
                _ => "-",
            })
            .collect();
        Cells { known, passed }
    }
}

impl Targets {
    /// List every target. With one target a failed listing is the run's error, as ever;
    /// with several, that target is dead, unless all are.
    pub fn list(urls: Vec<String>) -> Result<Targets> {
        let mut lists = Vec::new();
        for (i, u) in urls.iter().enumerate() {
            let what = format!("{u}/");
            match common::listing(&what, &what) {
                Ok(l) => lists.push(Ok(l)),
                // A target named wrong (its profile in neither file): no run at all.
                Err(e) if status_of(&e) == Status::Usage => return Err(e),
                Err(e) => {
                    if urls.len() > 1 {
                        common::say(format!("T{} {u}/: dead for this run: {e:#}", i + 1));
                    }
                    lists.push(Err(format!("{e:#}")));
                }
            }
        }
        if lists.iter().all(|l| l.is_err()) {
            let first = lists.swap_remove(0).err().unwrap_or_default();
            anyhow::bail!(first);
        }
        Ok(Targets { urls, lists })
    }

    /// The live targets' indices, in order.
    pub fn live(&self) -> Vec<usize> {
        (0..self.urls.len())
            .filter(|&i| self.lists[i].is_ok())
            .collect()
    }

    /// The report's lines before the table: what each column is, and each dead target.
    pub fn legend(&self) -> String {
        if self.urls.len() < 2 {
            return String::new();
        }
        let mut out = String::from("targets:");
        for (i, u) in self.urls.iter().enumerate() {
            out.push_str(&format!(" T{} {u}/", i + 1));
        }
        out.push('\n');
        for (i, l) in self.lists.iter().enumerate() {
            if let Err(why) = l {
                out.push_str(&format!(
                    "T{} DEAD for this run: {why}; its sols are caught up by a later run that reaches it\n",
                    i + 1
                ));
            }
        }
        out
    }
}

/// Each row's targets field (sol-backup-one's states of the targets it was given) made one
/// cell per target of the run, comma-separated, from what was known of each sol.
pub fn merge_rows(work: &Work, cells: &HashMap<String, Cells>) -> Result<()> {
    let rows = std::fs::read_to_string(work.path("rows"))?;
    let mut out = String::new();
    for row in rows.lines() {
        let mut f: Vec<String> = row.split('\t').map(str::to_string).collect();
        if let (Some(c), true) = (cells.get(&f[0]), f.len() > 7) {
            let mut all: Vec<String> = c.known.iter().map(|s| s.to_string()).collect();
            let given: Vec<&str> = f[7].split(',').filter(|s| !s.is_empty()).collect();
            for (n, &i) in c.passed.iter().enumerate() {
                all[i] = given.get(n).copied().unwrap_or("-").to_string();
            }
            f[7] = all.join(",");
        }
        out.push_str(&f.join("\t"));
        out.push('\n');
    }
    std::fs::write(work.path("rows"), out)?;
    Ok(())
}
