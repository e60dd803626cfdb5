//! A real S3 server for the tests: s3s-fs in-process on loopback (or the server named by
//! SOL_TEST_S3_ENDPOINT), and a fault-injecting TCP proxy to put between it and the tools.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{tmp, tool, Rng, Run};

const ACCESS: &str = "sol-test";
const SECRET: &str = "sol-test-secret";

/// One tokio runtime for every server and proxy of the test process.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

pub struct S3 {
    pub endpoint: String,
    pub addr: Option<SocketAddr>,
    pub bucket: String,
    /// The served directory (None for an external server).
    pub root: Option<PathBuf>,
    access: String,
    secret: String,
    _dir: Option<tempfile::TempDir>,
    home: tempfile::TempDir,
}

impl S3 {
    /// A fresh bucket on the in-process server, or on SOL_TEST_S3_ENDPOINT.
    pub fn start() -> S3 {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let bucket = format!("sol-test-{}-{n}", std::process::id());
        let home = tmp();
        if let Ok(endpoint) = std::env::var("SOL_TEST_S3_ENDPOINT") {
            let access = std::env::var("AWS_ACCESS_KEY_ID")
                .expect("AWS_ACCESS_KEY_ID for SOL_TEST_S3_ENDPOINT");
            let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY too");
            let s = S3 {
                endpoint,
                addr: None,
                bucket,
                root: None,
                access,
                secret,
                _dir: None,
                home,
            };
            s.sdk(|c, b| async move {
                c.create_bucket()
                    .bucket(b)
                    .send()
                    .await
                    .expect("create bucket");
            });
            return s;
        }
        let dir = tmp();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join(&bucket)).unwrap();
        let listener = rt().block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sol::s3_local::serve(listener, &root, ACCESS, SECRET).unwrap();
        rt().spawn(server);
        S3 {
            endpoint: format!("http://{addr}"),
            addr: Some(addr),
            bucket,
            root: Some(root),
            access: ACCESS.into(),
            secret: SECRET.into(),
            _dir: Some(dir),
            home,
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Credentials and endpoint for a tool (the harness already cleared AWS_*).
    pub fn env(&self, run: Run) -> Run {
        self.env_at(run, &self.endpoint)
    }

    pub fn env_at(&self, run: Run, endpoint: &str) -> Run {
        let h = self.home.path();
        run.env("AWS_ENDPOINT_URL", endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", h.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", h.join("credentials"))
    }

    pub fn tool(&self, name: &str) -> Run {
        self.env(tool(name))
    }

    /// Leftovers of multipart uploads on the in-process server.
    pub fn pending_uploads(&self) -> Vec<String> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".upload"))
            .collect()
    }

    /// Run something with an SDK client of our own (the "other client" of interop tests).
    pub fn sdk<F, Fut, T>(&self, f: F) -> T
    where
        F: FnOnce(aws_sdk_s3::Client, String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let creds =
            aws_sdk_s3::config::Credentials::new(&self.access, &self.secret, None, None, "test");
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        rt().block_on(f(client, self.bucket.clone()))
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let key = key.to_string();
        self.sdk(|c, b| async move {
            let o = c.get_object().bucket(b).key(key).send().await.ok()?;
            Some(o.body.collect().await.ok()?.into_bytes().to_vec())
        })
    }
}

/// What the proxy does to connections.
#[derive(Clone, Copy)]
pub struct Faults {
    /// Chance that a new connection is answered 503 (or 500) and closed.
    pub error: f64,
    /// Chance that a new connection stalls (never forwards anything).
    pub stall: f64,
    /// Mean bytes a connection carries before the proxy cuts it (0: never).
    pub cut_mean: u64,
    /// Delay before forwarding each read (slows transfers down).
    pub delay: Duration,
}

impl Faults {
    pub const NONE: Faults = Faults {
        error: 0.0,
        stall: 0.0,
        cut_mean: 0,
        delay: Duration::ZERO,
    };
}

pub struct Proxy {
    pub endpoint: String,
    pub injected: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Proxy {
    pub fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> Proxy {
        let listener = rt().block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let injected = Arc::new(AtomicU64::new(0));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let count = injected.clone();
        rt().spawn(async move {
            let mut rng = Rng::new(seed);
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = &mut stop_rx => return,
                };
                let Ok((client, _)) = accepted else { continue };
                let roll = (rng.next() % 1_000_000) as f64 / 1_000_000.0;
                let cut = if faults.cut_mean > 0 {
                    rng.below(2 * faults.cut_mean)
                } else {
                    u64::MAX
                };
                let count = count.clone();
                let five = if rng.below(2) == 0 {
                    "503 Service Unavailable"
                } else {
                    "500 Internal Server Error"
                };
                tokio::spawn(async move {
                    if roll < faults.error {
                        count.fetch_add(1, Ordering::Relaxed);
                        answer_error(client, five).await;
                    } else if roll < faults.error + faults.stall {
                        count.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(120)).await;
                        drop(client);
                    } else {
                        relay(client, upstream, cut, faults.delay, count).await;
                    }
                });
            }
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            injected,
            stop: Some(stop_tx),
        }
    }
}

async fn answer_error(mut client: TcpStream, status: &str) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await;
    let body = "<Error><Code>ServiceUnavailable</Code><Message>injected fault</Message></Error>";
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = client.write_all(resp.as_bytes()).await;
    let _ = client.shutdown().await;
}

/// Forward both ways; after `cut` bytes in total, drop both sides mid-stream.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    cut: u64,
    delay: Duration,
    count: Arc<AtomicU64>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let budget = Arc::new(AtomicU64::new(cut));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let a = pump(cr, sw, budget.clone(), delay, count.clone());
    let b = pump(sr, cw, budget, delay, count);
    tokio::select! {
        _ = a => {}
        _ = b => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    budget: Arc<AtomicU64>,
    delay: Duration,
    count: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let left = budget.load(Ordering::Relaxed);
        if (n as u64) >= left {
            // Cut mid-stream: forward part of it, then drop the connection.
            let _ = to.write_all(&buf[..left as usize]).await;
            count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        budget.fetch_sub(n as u64, Ordering::Relaxed);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

pub fn root_of(s: &S3) -> &Path {
    s.root.as_deref().expect("in-process server")
}
