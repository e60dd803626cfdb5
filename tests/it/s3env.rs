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

use crate::util::{tmp, tool, Out, Rng, Run};

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

/// Which server the S3 tests talk to: `SOL_TEST_S3_SERVER` names it (moto, ceph, minio,
/// ...) when `SOL_TEST_S3_ENDPOINT` points the tests elsewhere; "s3s-fs" in process.
pub fn server() -> String {
    if std::env::var_os("SOL_TEST_S3_ENDPOINT").is_none() {
        return "s3s-fs".into();
    }
    std::env::var("SOL_TEST_S3_SERVER").unwrap_or_else(|_| "external".into())
}

pub struct S3 {
    pub endpoint: String,
    /// Where the server listens (a fault proxy can sit in front of it).
    pub addr: SocketAddr,
    pub bucket: String,
    /// The served directory (None for an external server).
    pub root: Option<PathBuf>,
    /// The credentials the tools get (a request signed by hand needs them).
    pub access: String,
    pub secret: String,
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
            return S3::at(&endpoint, &access, &secret, &bucket, home);
        }
        S3::start_local()
    }

    /// A fresh bucket named BUCKET on the server at ENDPOINT (http://HOST:PORT).
    pub fn at(
        endpoint: &str,
        access: &str,
        secret: &str,
        bucket: &str,
        home: tempfile::TempDir,
    ) -> S3 {
        let (endpoint, access, secret, bucket) = (
            endpoint.to_string(),
            access.to_string(),
            secret.to_string(),
            bucket.to_string(),
        );
        let addr = {
            use std::net::ToSocketAddrs;
            let hostport = endpoint
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string();
            hostport
                .to_socket_addrs()
                .expect("SOL_TEST_S3_ENDPOINT: http://HOST:PORT")
                .next()
                .expect("an address for SOL_TEST_S3_ENDPOINT")
        };
        let s = S3 {
            endpoint,
            addr,
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
        s
    }

    /// A fresh bucket with Object Lock on SOL_TEST_S3_ENDPOINT (moto, Ceph RGW); None on the
    /// in-process s3s-fs, which has no Object Lock.
    pub fn start_locked() -> Option<S3> {
        std::env::var("SOL_TEST_S3_ENDPOINT").ok()?;
        let mut s = S3::start();
        s.bucket = format!("{}-lock", s.bucket);
        s.sdk(|c, b| async move {
            c.create_bucket()
                .bucket(b)
                .object_lock_enabled_for_bucket(true)
                .send()
                .await
                .expect("create a bucket with Object Lock");
        });
        Some(s)
    }

    /// A fresh bucket on a new in-process s3s-fs server.
    pub fn start_local() -> S3 {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let bucket = format!("sol-local-{}-{n}", std::process::id());
        let home = tmp();
        let dir = tmp();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join(&bucket)).unwrap();
        let listener = rt().block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sol::s3_local::serve(listener, &root, ACCESS, SECRET).unwrap();
        rt().spawn(server);
        S3 {
            endpoint: format!("http://{addr}"),
            addr,
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

    /// The directory of the shared AWS files (`config`, `credentials`) that `env` names.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// Add this server as profile `name` to the shared config and credentials files in
    /// `dir` (`config`, `credentials`): its endpoint, keys and region.
    pub fn add_profile(&self, dir: &Path, name: &str) {
        self.add_profile_at(dir, name, &self.endpoint);
    }

    /// [`S3::add_profile`] with another endpoint (a proxy in front of this server).
    pub fn add_profile_at(&self, dir: &Path, name: &str, endpoint: &str) {
        let add = |file: &str, text: String| {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(file))
                .unwrap();
            std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        };
        add(
            "config",
            format!("[profile {name}]\nendpoint_url = {endpoint}\nregion = us-east-1\n\n"),
        );
        let (a, s) = (&self.access, &self.secret);
        add(
            "credentials",
            format!("[{name}]\naws_access_key_id = {a}\naws_secret_access_key = {s}\n\n"),
        );
    }

    /// A plain `Command` for one of our tools with this server's environment (for tests
    /// that signal the process): AWS_* and SOL_* cleared, then set as `env` does.
    pub fn command(&self, name: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new(crate::util::bin(name));
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().to_string();
            if k.starts_with("AWS_") || k.starts_with("SOL_") {
                cmd.env_remove(&k);
            }
        }
        let h = self.home.path();
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", &self.access)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", h.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", h.join("credentials"));
        cmd
    }

    /// Multipart uploads left pending in the bucket, asked of the server under test
    /// (ListMultipartUploads).
    pub fn pending_uploads(&self) -> Vec<String> {
        self.sdk(|c, b| async move {
            let out = c
                .list_multipart_uploads()
                .bucket(b)
                .send()
                .await
                .expect("ListMultipartUploads");
            out.uploads()
                .iter()
                .map(|u| {
                    format!(
                        "{} ({})",
                        u.key().unwrap_or_default(),
                        u.upload_id().unwrap_or_default()
                    )
                })
                .collect()
        })
    }

    /// No multipart upload is left pending in the bucket.
    #[track_caller]
    pub fn assert_no_pending_uploads(&self) {
        let left = self.pending_uploads();
        assert!(left.is_empty(), "left {left:?}");
    }

    /// Start a multipart upload of each key with the SDK (and leave it pending): their
    /// UploadIds, in order.
    pub fn start_uploads(&self, keys: &[&str]) -> Vec<String> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        self.sdk(|c, b| async move {
            let mut ids = Vec::new();
            for key in keys {
                let started = c.create_multipart_upload().bucket(&b).key(key).send();
                ids.push(started.await.unwrap().upload_id.unwrap());
            }
            ids
        })
    }

    /// `s3-ls ARGS` of the prefix, with this server's environment.
    pub fn ls(&self, args: &[&str], prefix: &str) -> Out {
        self.tool("s3-ls").args(args).arg(self.url(prefix)).run()
    }

    /// `s3-mput ARGS` of the key, with `data` on stdin.
    pub fn mput(&self, key: &str, data: &[u8], args: &[&str]) -> Out {
        let run = self.tool("s3-mput").args(args).arg(self.url(key));
        run.stdin(data.to_vec()).run()
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

    /// Store DATA as KEY by another client (one PutObject of the SDK), replacing what is
    /// there.
    pub fn put(&self, key: &str, data: Vec<u8>) {
        let key = key.to_string();
        self.sdk(|c, b| async move {
            let sent = c.put_object().bucket(b).key(&key).body(data.into()).send();
            sent.await.unwrap_or_else(|e| panic!("put {key:?}: {e}"));
        });
    }

    /// Delete KEY by another client (one DeleteObject of the SDK).
    pub fn delete(&self, key: &str) {
        let key = key.to_string();
        self.sdk(|c, b| async move {
            let sent = c.delete_object().bucket(b).key(&key).send();
            sent.await.unwrap_or_else(|e| panic!("delete {key:?}: {e}"));
        });
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
    // What befalls a new connection.
    /// Chance that a new connection is answered 503 (or 500) and closed.
    pub error: f64,
    /// Chance that a new connection stalls (never forwards anything).
    pub stall: f64,
    /// Hold or cut the answer to requests that contain a pattern.
    pub on: Option<Trigger>,
    // What befalls the bytes it carries.
    /// Mean bytes a connection carries before the proxy cuts it (0: never).
    pub cut_mean: u64,
    /// Flip one byte at this offset of what the server sends on each connection.
    pub flip_at: Option<u64>,
    /// Replace every FROM in what the server sends by TO (the same length, so lengths and
    /// framing stay right): a server that answers otherwise, e.g. another Last-Modified.
    pub rewrite: Option<(&'static [u8], &'static [u8])>,
    /// Delay before forwarding each read (slows transfers down).
    pub delay: Duration,
}

/// What to do to the answer of a request that contains `pattern` (the first `times` ones).
#[derive(Clone, Copy)]
pub struct Trigger {
    pub pattern: &'static [u8],
    /// Delay the server's answer by this much.
    pub hold: Duration,
    /// Then cut the connection instead of forwarding the answer (the server has acted).
    pub cut: bool,
    pub times: u64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        error: 0.0,
        stall: 0.0,
        on: None,
        cut_mean: 0,
        flip_at: None,
        rewrite: None,
        delay: Duration::ZERO,
    };
}

pub struct Proxy {
    pub endpoint: String,
    pub injected: Arc<AtomicU64>,
    /// Requests that matched the trigger so far.
    pub matched: Arc<AtomicU64>,
    /// Set: every connection is cut and new ones are refused (the server is "gone").
    dead: Arc<std::sync::atomic::AtomicBool>,
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
    /// The server behind the proxy "dies": open connections are cut, new ones refused.
    pub fn kill(&mut self) {
        self.dead.store(true, Ordering::SeqCst);
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// A proxy that passes everything through and counts the requests that contain
    /// `pattern` (in `matched`).
    pub fn counting(upstream: SocketAddr, pattern: &'static [u8]) -> Proxy {
        let on = Some(Trigger {
            pattern,
            hold: Duration::ZERO,
            cut: false,
            times: u64::MAX,
        });
        Proxy::start(upstream, Faults { on, ..Faults::NONE }, 1)
    }

    /// A proxy that holds (or, with `cut`, drops) the answer to the first request that
    /// contains `pattern`, and passes everything else through.
    pub fn on_first(
        upstream: SocketAddr,
        pattern: &'static [u8],
        hold: Duration,
        cut: bool,
        seed: u64,
    ) -> Proxy {
        let on = Some(Trigger {
            pattern,
            hold,
            cut,
            times: 1,
        });
        Proxy::start(upstream, Faults { on, ..Faults::NONE }, seed)
    }

    pub fn start(upstream: SocketAddr, faults: Faults, seed: u64) -> Proxy {
        let listener = rt().block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let injected = Arc::new(AtomicU64::new(0));
        let matched = Arc::new(AtomicU64::new(0));
        let left = Arc::new(AtomicU64::new(faults.on.map_or(0, |t| t.times)));
        let dead = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (matched2, left2) = (matched.clone(), left.clone());
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let count = injected.clone();
        let dead2 = dead.clone();
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
                let dead = dead2.clone();
                let trig = (matched2.clone(), left2.clone());
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
                        relay(client, upstream, cut, faults, count, dead, trig).await;
                    }
                });
            }
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            injected,
            matched,
            dead,
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
    faults: Faults,
    count: Arc<AtomicU64>,
    dead: Arc<std::sync::atomic::AtomicBool>,
    trig: (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let budget = Arc::new(AtomicU64::new(cut));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let delay = faults.delay;
    let armed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let up = Side {
        rewrite: None,
        flip_at: None,
        trigger: faults.on,
        watch: true,
        armed: armed.clone(),
        matched: trig.0.clone(),
        left: trig.1.clone(),
    };
    let down = Side {
        rewrite: faults.rewrite,
        flip_at: faults.flip_at,
        trigger: faults.on,
        watch: false,
        armed,
        matched: trig.0,
        left: trig.1,
    };
    let a = pump(
        cr,
        sw,
        budget.clone(),
        delay,
        up,
        count.clone(),
        dead.clone(),
    );
    let b = pump(sr, cw, budget, delay, down, count, dead);
    tokio::select! {
        _ = a => {}
        _ = b => {}
    }
}

/// One direction of a relayed connection.
struct Side {
    rewrite: Option<(&'static [u8], &'static [u8])>,
    flip_at: Option<u64>,
    trigger: Option<Trigger>,
    /// The client's side: looks for the trigger's pattern and arms the answer's side.
    watch: bool,
    armed: Arc<std::sync::atomic::AtomicBool>,
    matched: Arc<AtomicU64>,
    left: Arc<AtomicU64>,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    budget: Arc<AtomicU64>,
    delay: Duration,
    side: Side,
    count: Arc<AtomicU64>,
    dead: Arc<std::sync::atomic::AtomicBool>,
) {
    let mut buf = vec![0u8; 64 << 10];
    let mut offset = 0u64;
    // With a rewrite, bytes at the end of a read that may begin a match wait for the next.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let read = tokio::select! {
            r = from.read(&mut buf) => r,
            _ = async {
                while !dead.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            } => return,
        };
        let n = match read {
            Ok(0) | Err(_) => {
                let _ = to.write_all(&carry).await;
                return;
            }
            Ok(n) => n,
        };
        if let Some((from_, to_)) = side.rewrite {
            carry.extend_from_slice(&buf[..n]);
            rewrite(&mut carry, from_, to_);
            let keep = (1..from_.len().min(carry.len() + 1))
                .rev()
                .find(|&k| carry.ends_with(&from_[..k]))
                .unwrap_or(0);
            let ready: Vec<u8> = carry.drain(..carry.len() - keep).collect();
            if to.write_all(&ready).await.is_err() {
                return;
            }
            continue;
        }
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if dead.load(Ordering::SeqCst) {
            return;
        }
        if let Some(t) = side.trigger {
            if side.watch {
                let hit = buf[..n].windows(t.pattern.len()).any(|w| w == t.pattern);
                if hit
                    && side
                        .left
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |l| l.checked_sub(1))
                        .is_ok()
                {
                    side.armed.store(true, Ordering::SeqCst);
                    side.matched.fetch_add(1, Ordering::SeqCst);
                }
            } else if side.armed.swap(false, Ordering::SeqCst) {
                tokio::time::sleep(t.hold).await;
                if t.cut {
                    count.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        if let Some(at) = side.flip_at {
            if at >= offset && at < offset + n as u64 {
                buf[(at - offset) as usize] ^= 0x01;
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        offset += n as u64;
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

/// `s3-mput [EXTRA] URL-of-KEY` with DATA on stdin.
pub fn mput(s3: &S3, key: &str, data: &[u8], extra: &[&str]) -> Out {
    s3.tool("s3-mput")
        .args(extra)
        .arg(s3.url(key))
        .stdin(data.to_vec())
        .run()
}

/// Options for a faulty network: PART_SIZE parts, 4 at once, short time-outs, many retries.
pub fn faulty_network_opts(part_size: &str) -> [&str; 8] {
    [
        "--part-size",
        part_size,
        "--concurrency",
        "4",
        "--timeout",
        "3",
        "--retries",
        "12",
    ]
}

/// The in-process server's directory, for the tests of s3-local itself.
pub fn root_of(s: &S3) -> &Path {
    s.root.as_deref().expect("in-process server")
}

/// Every FROM in DATA replaced by TO (the same length).
fn rewrite(data: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len(), "a rewrite keeps lengths");
    let mut i = 0;
    while i + from.len() <= data.len() {
        if &data[i..i + from.len()] == from {
            data[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
}
