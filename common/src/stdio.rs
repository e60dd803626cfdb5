//! stdin/stdout plumbing shared by the filters.
//!
//! Data moves through the raw file descriptors in large blocks (no `Stdout` line buffering or
//! locking), pipes are widened to 1 MiB, and binary output to a terminal is refused.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};

use crate::Fail;

/// Block size for moving data through pipes (1 MiB; [`widen_pipes`] asks for pipes as large).
pub const BLOCK: usize = 1 << 20;

/// A borrowed standard file descriptor that is never closed. `Send`, so it can be handed to
/// writer threads (gzp needs that).
pub struct StdFd {
    file: ManuallyDrop<File>,
    /// The process was started with this descriptor closed: reading it is an error.
    closed: bool,
}

impl StdFd {
    /// fd 0.
    pub fn stdin() -> StdFd {
        StdFd {
            // SAFETY: fd 0 is open for the life of the process (the Rust runtime opens
            // /dev/null on it if it was closed) and ManuallyDrop never closes it.
            file: ManuallyDrop::new(unsafe { File::from_raw_fd(0) }),
            closed: started_closed(0),
        }
    }
    /// fd 1.
    pub fn stdout() -> StdFd {
        StdFd {
            // SAFETY: as above, for fd 1.
            file: ManuallyDrop::new(unsafe { File::from_raw_fd(1) }),
            closed: started_closed(1),
        }
    }
}

/// True when `fd` was closed when the process started (`tool <&-`). The Rust runtime then
/// opens /dev/null read-write on it, so an empty input would look like a valid empty stream;
/// a shell's `< /dev/null` opens it read-only, which stays a valid empty input.
pub fn started_closed(fd: RawFd) -> bool {
    // SAFETY: fstat and fcntl on a plain fd with a zeroed out-parameter.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(fd, &mut st) != 0 {
            return true;
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let dev_null = (st.st_mode & libc::S_IFMT) == libc::S_IFCHR
            && libc::major(st.st_rdev) == 1
            && libc::minor(st.st_rdev) == 3;
        dev_null && flags >= 0 && (flags & libc::O_ACCMODE) == libc::O_RDWR
    }
}

impl Read for StdFd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::Error::other(
                "stdin is closed (give the data on stdin, or </dev/null for none)",
            ));
        }
        (&*self.file).read(buf)
    }
}

impl Write for StdFd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Err(io::Error::other(
                "stdout is closed (redirect it to a file, or to /dev/null to discard)",
            ));
        }
        (&*self.file).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn is_fifo(fd: RawFd) -> bool {
    // SAFETY: fstat on a plain fd with a zeroed out-parameter.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFIFO
    }
}

/// Raise the buffer of stdin/stdout pipes to 1 MiB (F_SETPIPE_SZ); failure is ignored (the
/// kernel caps unprivileged users at /proc/sys/fs/pipe-max-size).
pub fn widen_pipes() {
    for fd in [0, 1] {
        if is_fifo(fd) {
            // SAFETY: fcntl on a valid fd; an error return is harmless.
            unsafe {
                libc::fcntl(fd, libc::F_SETPIPE_SZ, BLOCK as libc::c_int);
            }
        }
    }
}

/// True when fd is a terminal.
pub fn is_terminal(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the fd.
    unsafe { libc::isatty(fd) == 1 }
}

/// stdin, after widening its pipe.
pub fn input() -> StdFd {
    widen_pipes();
    StdFd::stdin()
}

/// Buffered stdout for binary data. Refuses a terminal unless `force` (like gzip's
/// "compressed data not written to a terminal"). Callers must `flush()` it at the end: a
/// dropped `BufWriter` swallows errors.
pub fn binary_output(force: bool) -> Result<BufWriter<StdFd>, Fail> {
    if !force && is_terminal(1) {
        return Err(Fail::usage(
            "binary data not written to a terminal (redirect stdout, or use -f to force)",
        ));
    }
    widen_pipes();
    Ok(BufWriter::with_capacity(BLOCK, StdFd::stdout()))
}

/// Buffered stdout for text (reports, listings). Flush at the end.
pub fn text_output() -> BufWriter<StdFd> {
    widen_pipes();
    BufWriter::with_capacity(64 << 10, StdFd::stdout())
}

/// The named input file, or stdin for None and "-"; errors name the file.
pub fn open_input(file: Option<&std::path::Path>) -> anyhow::Result<Box<dyn Read + Send>> {
    use anyhow::Context;
    Ok(match file {
        Some(p) if p.as_os_str() != "-" => {
            Box::new(File::open(p).with_context(|| format!("'{}'", p.display()))?)
        }
        _ => Box::new(input()),
    })
}

/// Read until `buf` is full or EOF; returns the bytes read. Short reads from pipes are
/// normal, so every decoder that needs a whole block goes through here.
pub fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::read_full;
    use std::io::Read;

    /// A reader that hands out one byte per call, like a slow pipe.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn read_full_survives_short_reads() {
        let mut buf = [0u8; 4];
        assert_eq!(read_full(&mut Trickle(b"abcdef"), &mut buf).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        let mut big = [0u8; 10];
        assert_eq!(read_full(&mut Trickle(b"xyz"), &mut big).unwrap(), 3);
    }
}
