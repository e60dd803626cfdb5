//! A lazy, sorted, depth-first walk: directories come before their contents, siblings in
//! byte order of their names. Memory grows with the depth of the tree, not its size.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use sol_common::io_msg;

/// One thing to archive.
pub struct Node {
    /// Name in the archive (no trailing slash).
    pub name: Vec<u8>,
    /// Where it is on disk.
    pub path: PathBuf,
    pub meta: Metadata,
}

pub enum Step {
    Node(Node),
    /// Something that could not be read (reported; the walk goes on).
    Error(String),
}

pub struct Walk {
    /// Pending (name, path) pairs, in reverse so `pop` yields them in order.
    stack: Vec<(Vec<u8>, PathBuf)>,
    /// A step to yield before walking on.
    pending: Option<Step>,
}

impl Walk {
    /// `roots`: (archive name, disk path), walked in the given order.
    pub fn new(roots: Vec<(Vec<u8>, PathBuf)>) -> Walk {
        let mut stack = roots;
        stack.reverse();
        Walk {
            stack,
            pending: None,
        }
    }
}

impl Iterator for Walk {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        if let Some(step) = self.pending.take() {
            return Some(step);
        }
        let (name, path) = self.stack.pop()?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) => return Some(Step::Error(format!("{}: {}", path.display(), io_msg(&e)))),
        };
        if meta.is_dir() {
            match fs::read_dir(&path) {
                Ok(rd) => {
                    let mut children: Vec<OsString> = Vec::new();
                    let mut err = None;
                    for e in rd {
                        match e {
                            Ok(e) => children.push(e.file_name()),
                            Err(e) => err = Some(e),
                        }
                    }
                    children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                    for child in children.into_iter().rev() {
                        let mut cname = name.clone();
                        if !cname.is_empty() && !cname.ends_with(b"/") {
                            cname.push(b'/');
                        }
                        let cpath = path.join(&child);
                        cname.extend_from_slice(&child.into_vec());
                        self.stack.push((cname, cpath));
                    }
                    if let Some(e) = err {
                        self.pending = Some(Step::Error(format!(
                            "{}: cannot read directory: {}",
                            path.display(),
                            io_msg(&e)
                        )));
                    }
                }
                Err(e) => {
                    // Still archive the directory itself, then say what is missing.
                    self.pending = Some(Step::Error(format!(
                        "{}: cannot open directory: {}",
                        path.display(),
                        io_msg(&e)
                    )));
                }
            }
        }
        Some(Step::Node(Node { name, path, meta }))
    }
}
