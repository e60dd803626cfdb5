//! A TCP proxy that counts the bytes the server sends: what a restore costs on the wire.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

pub struct Counter {
    /// http://127.0.0.1:PORT, to give a tool as its endpoint.
    pub endpoint: String,
    down: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

impl Counter {
    /// Forward every connection to `upstream` (one thread each way; the listener lives as
    /// long as the test process).
    pub fn start(upstream: SocketAddr) -> Counter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (d, c) = (down.clone(), connections.clone());
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                thread::spawn(move || pump(c2, s2, None));
                let d = d.clone();
                thread::spawn(move || pump(server, client, Some(d)));
            }
        });
        Counter {
            endpoint,
            down,
            connections,
        }
    }

    /// Bytes the server has sent so far (headers included).
    pub fn down(&self) -> u64 {
        self.down.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, count: Option<Arc<AtomicU64>>) {
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
