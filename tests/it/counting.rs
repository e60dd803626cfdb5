//! A TCP proxy that counts the bytes the server sends: what a download or a restore costs
//! on the wire (s3_ranges, restore_path).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A TCP proxy (plain threads) that counts the bytes the server sends the client.
pub struct Counter {
    pub endpoint: String,
    addr: SocketAddr,
    down: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Counter {
    pub fn start(upstream: SocketAddr) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (down.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || forward(c2, s2, None));
                let d = d.clone();
                std::thread::spawn(move || forward(server, client, Some(d)));
            }
        });
        Counter {
            endpoint: format!("http://{addr}"),
            addr,
            down,
            stop,
        }
    }

    /// Bytes sent by the server since the last call.
    pub fn take(&self) -> u64 {
        self.down.swap(0, Ordering::SeqCst)
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accepting thread
    }
}

fn forward(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(c) = &count {
            c.fetch_add(n as u64, Ordering::SeqCst);
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Counter {
    /// Bytes the server has sent so far (headers included).
    pub fn down(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }
}
