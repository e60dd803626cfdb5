//! Parallel read-ahead: a dispatcher walks the tree in order and hands small regular files
//! to a pool of reader threads; the writer takes items in walk order and waits only for the
//! contents it is about to write. A byte budget bounds what is read ahead.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use sol_common::ordered::{Ticket, Workers};

use super::walk::{Node, Step, Walk};

/// Files up to this size are read ahead whole; larger ones are streamed by the writer.
pub const SMALL: u64 = 1 << 20;
/// Bytes read ahead at most.
pub const BUDGET: u64 = 64 << 20;

pub enum Body {
    /// Directory or symlink: header only.
    Empty,
    /// A later name of an inode already archived under this name.
    HardLink(Vec<u8>),
    /// Contents being read ahead.
    Small(Ticket<Contents>),
    /// Contents to stream from disk.
    Large,
    /// Not archived (socket, device, fifo), with the reason.
    Skip(&'static str),
}

pub enum Item {
    Entry(Box<Node>, Body),
    Error(String),
}

pub struct Contents {
    /// The bytes read, or the open/read error.
    pub data: io::Result<Vec<u8>>,
    /// Size or mtime differed after reading.
    pub changed: bool,
}

/// Counts bytes read ahead and blocks the dispatcher past the budget.
#[derive(Clone, Default)]
pub struct Budget(Arc<(Mutex<u64>, Condvar)>);

impl Budget {
    fn take(&self, n: u64) {
        let (lock, cv) = &*self.0;
        let mut used = lock.lock().unwrap_or_else(|p| p.into_inner());
        while *used > 0 && *used + n > BUDGET {
            used = cv.wait(used).unwrap_or_else(|p| p.into_inner());
        }
        *used += n;
    }
    pub fn give(&self, n: u64) {
        let (lock, cv) = &*self.0;
        let mut used = lock.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(n);
        cv.notify_all();
    }
}

/// What a small file costs against the budget (empty files still cost a little).
pub fn cost(size: u64) -> u64 {
    size.max(512)
}

/// Files queued for a reader at most (the byte budget bounds them first, as a rule).
const QUEUE: usize = 4096;

type Readers = Workers<(PathBuf, Metadata), Contents>;

/// Start the dispatcher and readers; returns the ordered stream of items.
pub fn start(walk: Walk, readers: usize, budget: Budget) -> Receiver<Item> {
    let (item_tx, item_rx) = mpsc::sync_channel::<Item>(4096);
    let readers: Readers = Workers::new(
        readers,
        QUEUE,
        || (),
        |_, (path, meta): (PathBuf, Metadata)| read_small(&path, &meta),
    );
    thread::spawn(move || dispatch(walk, &item_tx, &readers, &budget));
    item_rx
}

fn dispatch(walk: Walk, items: &SyncSender<Item>, readers: &Readers, budget: &Budget) {
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for step in walk {
        let item = match step {
            Step::Error(msg) => Item::Error(msg),
            Step::Node(node) => {
                let ft = node.meta.file_type();
                let body = if ft.is_dir() || ft.is_symlink() {
                    Body::Empty
                } else if !ft.is_file() {
                    Body::Skip(if ft_is_socket(&node.meta) {
                        "socket ignored"
                    } else {
                        "special file ignored"
                    })
                } else if let Some(first) = (node.meta.nlink() > 1)
                    .then(|| links.get(&(node.meta.dev(), node.meta.ino())).cloned())
                    .flatten()
                {
                    Body::HardLink(first)
                } else {
                    if node.meta.nlink() > 1 {
                        links.insert((node.meta.dev(), node.meta.ino()), node.name.clone());
                    }
                    if node.meta.len() <= SMALL {
                        budget.take(cost(node.meta.len()));
                        match readers.submit((node.path.clone(), node.meta.clone())) {
                            Ok(ticket) => Body::Small(ticket),
                            Err(_) => return,
                        }
                    } else {
                        Body::Large
                    }
                };
                Item::Entry(Box::new(node), body)
            }
        };
        if items.send(item).is_err() {
            return; // the writer stopped
        }
    }
}

fn ft_is_socket(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    meta.file_type().is_socket()
}

/// True when the file's size or mtime moved between the walk and now.
pub fn changed_since(before: &std::fs::Metadata, now: &std::fs::Metadata) -> bool {
    before.len() != now.len()
        || before.mtime() != now.mtime()
        || before.mtime_nsec() != now.mtime_nsec()
}

fn read_small(path: &std::path::Path, meta: &Metadata) -> Contents {
    let mut changed = false;
    let data = File::open(path).and_then(|f| {
        let mut data = Vec::with_capacity(meta.len() as usize);
        // Read to EOF, but never more than twice the small limit (a file growing fast).
        (&f).take(2 * SMALL).read_to_end(&mut data)?;
        let now = f.metadata()?;
        changed = data.len() as u64 != meta.len() || changed_since(meta, &now);
        Ok(data)
    });
    Contents { data, changed }
}
