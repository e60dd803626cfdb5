//! The S3 client of the sol toolkit, shared by s3-mput, s3-mget and s3-ls: `s3://` URLs,
//! client construction (endpoint, credentials, timeouts), the one retry helper with typed
//! failures (error.rs), the part-size schedule, and the man text the S3 tools share. Only
//! the tools that talk to S3 depend on it (and so on the AWS SDK and tokio). The contract is
//! man/s3-mput.1 (TIMEOUTS, INTEGRITY, CONFIRMATION) and the README's S3 section.

pub mod cold;
pub mod error;
pub mod etag;
pub mod requests;
pub mod target;

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::BehaviorVersion;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::interceptors::BeforeDeserializationInterceptorContextRef;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    ConfigBag, Intercept, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    RuntimeComponents, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_s3::Client;

pub use error::{S3Error, Why};

/// The ENVIRONMENT section of every S3 tool's man page.
pub const MAN_ENVIRONMENT: &str = include_str!("environment.roff");

/// An S3 tool's man text: its own sections, the S3 tools' ENVIRONMENT, then its END
/// (EXIT STATUS, SEE ALSO).
pub const fn man(page: &'static str, end: &'static str) -> sol_common::ManText {
    sol_common::ManText {
        page,
        environment: Some(MAN_ENVIRONMENT),
        end,
    }
}

/// A target: `s3://BUCKET/KEY` (KEY may be empty for a prefix), reached through the default
/// chain, or `PROFILE:s3://BUCKET/KEY`, reached through that profile only ([`target`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub profile: Option<String>,
    pub bucket: String,
    pub key: String,
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.profile {
            write!(f, "{p}:")?;
        }
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

impl S3Url {
    pub fn parse(s: &str) -> Result<S3Url, String> {
        let (profile, url) = target::split(s);
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("'{s}': expected s3://BUCKET/KEY or PROFILE:s3://BUCKET/KEY"))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.len() < 3 || bucket.len() > 63 {
            return Err(format!("'{s}': a bucket name has 3 to 63 characters"));
        }
        if !bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(format!("'{s}': invalid bucket name '{bucket}'"));
        }
        Ok(S3Url {
            profile: profile.map(str::to_string),
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    /// A URL naming one object: the key must not be empty or end in '/'.
    pub fn parse_object(s: &str) -> Result<S3Url, String> {
        let u = S3Url::parse(s)?;
        if u.key.is_empty() || u.key.ends_with('/') {
            return Err(format!(
                "'{s}': expected s3://BUCKET/KEY or PROFILE:s3://BUCKET/KEY with a key"
            ));
        }
        Ok(u)
    }
}

/// How request payloads are checksummed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Checksum {
    /// Content-MD5 on every request body: verified by AWS, MinIO, Ceph, Garage, s3s.
    Md5,
    /// x-amz-checksum-crc32c (AWS and newer servers).
    Crc32c,
    /// None beyond TCP and TLS (the ETag is still checked where it is an MD5).
    None,
}

/// Connection options shared by the S3 tools.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 for MinIO [env: AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// Region [default: from the AWS profile, else us-east-1]
    #[arg(long)]
    pub region: Option<String>,
    /// AWS profile for credentials and region [env: AWS_PROFILE]
    #[arg(long)]
    pub profile: Option<String>,
    /// Path-style addressing (http://host/bucket/key); implied by --endpoint-url.
    #[arg(long)]
    pub path_style: bool,
    /// Checksum sent with request bodies.
    #[arg(long, value_enum, default_value_t = Checksum::Md5)]
    pub checksum: Checksum,
    /// Attempts per request (a part, a range) before giving up.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub retries: u32,
    /// Seconds an attempt may wait for an answer (plus 1 s per 64 KiB of its body), or for a
    /// body to move, before it is abandoned and retried; connecting gets at most 10 s; three
    /// such timeouts in a row end the request. At the defaults a dead or silent endpoint
    /// fails a tool within 65 s.
    #[arg(long, value_name = "SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout: u64,
}

/// A client and the rules every request of the S3 tools follows: attempts, the time an
/// attempt may take, backoff, and how failures read.
#[derive(Clone)]
pub struct S3Client {
    pub client: Client,
    pub retries: u32,
    pub timeout: Duration,
    /// Where requests go, for messages.
    pub endpoint: String,
    /// The server's clock, as its last answer showed it.
    pub clock: Clock,
}

/// The server's clock against this host's: the HTTP `Date` header of the last answer
/// (success or error; every S3 server sends one), minus this host's time when it arrived.
/// A request signed with a clock more than 15 minutes off is refused (403), and a HEAD's
/// refusal has no body to say why: only the Date header can tell.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    skew: Arc<AtomicI64>,
    measured: Arc<AtomicBool>,
    /// The last answer's Date (seconds) and the instant it arrived (ms since the epoch).
    date: Arc<AtomicI64>,
    arrived: Arc<AtomicI64>,
}

impl Clock {
    /// Seconds the server's clock is ahead of this host's (negative: behind); None before
    /// an answer with a Date header arrived.
    pub fn skew(&self) -> Option<i64> {
        self.measured
            .load(Ordering::Acquire)
            .then(|| self.skew.load(Ordering::Relaxed))
    }

    /// The skew the last answer shows, judged from the middle of its round trip: the
    /// request was sent at `sent` (ms since the epoch). The time an answer takes to come
    /// back no longer reads as a server behind (up to a second under load, which made
    /// `--changed` miss a change); what is left is the Date header's whole second.
    pub fn skew_sent_at(&self, sent: i64) -> Option<i64> {
        self.measured.load(Ordering::Acquire).then(|| {
            let (date, arrived) = (
                self.date.load(Ordering::Relaxed),
                self.arrived.load(Ordering::Relaxed),
            );
            skew_between(date, sent, arrived)
        })
    }

    fn record(&self, skew: i64, date: i64, arrived: i64) {
        self.skew.store(skew, Ordering::Relaxed);
        self.date.store(date, Ordering::Relaxed);
        self.arrived.store(arrived, Ordering::Relaxed);
        self.measured.store(true, Ordering::Release);
    }
}

/// Milliseconds since the epoch (negative before it).
pub fn epoch_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The skew, in whole seconds, of a server whose answer to a request sent at `sent` and
/// arrived at `arrived` (ms since the epoch) was stamped `date` (whole seconds). The server
/// stamped it during the round trip, somewhere in the second `date` names: when that allows
/// clocks that agree, the skew is 0 (a busy server or a slow answer is no skew; found by CI,
/// where a loaded moto read as a second ahead and an unchanged sol as changed); else the
/// middle of the round trip is the best guess.
pub fn skew_between(date: i64, sent: i64, arrived: i64) -> i64 {
    let arrived = arrived.max(sent);
    let (lo, hi) = (date * 1000 - arrived, (date + 1) * 1000 - sent);
    if lo <= 0 && 0 <= hi {
        return 0;
    }
    let middle = sent + (arrived - sent) / 2;
    (date * 1000 + 500 - middle + 500).div_euclid(1000)
}

/// The skew an answer stamped `date` (an HTTP date, whole seconds) shows when it arrives at
/// `now`, in whole seconds. The server's time was somewhere in the second `date` names: its
/// middle is the best guess.
pub fn skew_of(date: &str, now: SystemTime) -> Option<i64> {
    let server = http_date(date)?;
    Some(skew_between(server, epoch_ms(now), epoch_ms(now)))
}

/// An HTTP date in seconds since the epoch.
fn http_date(date: &str) -> Option<i64> {
    Some(
        DateTime::from_str(date.trim(), DateTimeFormat::HttpDate)
            .ok()?
            .secs(),
    )
}

/// Reads the Date header of every answer into a [`Clock`].
#[derive(Debug)]
struct DateWatch(Clock);

impl Intercept for DateWatch {
    fn name(&self) -> &'static str {
        "sol-s3 date watch"
    }

    fn read_before_deserialization(
        &self,
        ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = ctx.response().headers();
        // An answer from a cache (Age) carries the date it was made, not the server's now.
        if headers.get("age").is_none() {
            let now = SystemTime::now();
            if let Some(date) = headers.get("date").and_then(http_date) {
                let arrived = epoch_ms(now);
                self.0
                    .record(skew_between(date, arrived, arrived), date, arrived);
            }
        }
        Ok(())
    }
}

/// The slowest upload rate an attempt is allowed before it is abandoned: a request with a
/// body of N bytes may take `--timeout` + N / this.
pub const FLOOR_RATE: u64 = 64 << 10;

/// The longest `connect` is given.
pub const CONNECT_TIMEOUT: u64 = 10;

/// Attempts in a row that time out before a request gives up, whatever `--retries` says.
pub const SILENT: u32 = 3;

/// The endpoint as given, checked: `http(s)://HOST[:PORT]` with nothing after it but an
/// optional `/` (a path would be joined to every key), and its user:password, if any,
/// left out of what messages show.
pub fn check_endpoint(e: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("endpoint '{}': {why}", shown(e)));
    let Some((scheme, rest)) = e.split_once("://") else {
        return bad("expected http://HOST[:PORT] or https://HOST[:PORT]");
    };
    if scheme != "http" && scheme != "https" {
        return bad("expected http://HOST[:PORT] or https://HOST[:PORT]");
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let hostport = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    if hostport.is_empty() || hostport.contains(['/', '?', '#', ' ']) {
        return bad("no path, query or spaces after HOST[:PORT]");
    }
    if let Some((_, port)) = hostport.rsplit_once(':').filter(|(h, _)| !h.ends_with(']')) {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return bad("the port must be 1-65535");
        }
    }
    Ok(shown(e))
}

/// A URL without its user:password.
fn shown(e: &str) -> String {
    match (e.split_once("://"), e.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://{host}"),
        _ => e.to_string(),
    }
}

/// Where a client connects and with which identity: the endpoint (as given, and as
/// messages show it) and the SDK's shared configuration.
struct Connection {
    endpoint: Option<(String, String)>,
    shared: aws_config::SdkConfig,
}

/// A plain `s3://` URL: the standard AWS chain (environment, profile, instance role) and the
/// options. A malformed endpoint is a usage error (status 2).
async fn default_chain(a: &ConnArgs) -> anyhow::Result<Connection> {
    let from_env = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|e| !e.is_empty());
    let endpoint = match a.endpoint_url.as_ref().or(from_env.as_ref()) {
        Some(e) => Some((
            e.clone(),
            check_endpoint(e).map_err(sol_common::Fail::usage)?,
        )),
        None => None,
    };
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(p) = &a.profile {
        loader = loader.profile_name(p);
    }
    if let Some(r) = &a.region {
        loader = loader.region(Region::new(r.clone()));
    }
    if let Some(e) = &a.endpoint_url {
        loader = loader.endpoint_url(e);
    }
    let shared = loader.load().await;
    // Else the endpoint_url of the profile the chain chose, if any.
    let endpoint = endpoint.or_else(|| {
        let e = shared.endpoint_url()?;
        Some((e.to_string(), shown(e)))
    });
    Ok(Connection { endpoint, shared })
}

/// A `PROFILE:` target: endpoint, region and credentials from that profile only.
async fn profile_only(name: &str) -> anyhow::Result<Connection> {
    let p = target::profiled(name)
        .await
        .map_err(sol_common::Fail::usage)?;
    let region = p.region.unwrap_or_else(|| "us-east-1".to_string());
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .profile_name(name)
        .region(Region::new(region))
        .credentials_provider(p.credentials)
        .load()
        .await;
    Ok(Connection {
        endpoint: p.endpoint,
        shared,
    })
}

/// Build the client that reaches `url` (its profile's connection, or the default chain and
/// the options) with the rules every request follows.
pub async fn client(a: &ConnArgs, url: &S3Url) -> anyhow::Result<S3Client> {
    let Connection { endpoint, shared } = match &url.profile {
        Some(name) => profile_only(name).await?,
        None => default_chain(a).await?,
    };
    let timeout = Duration::from_secs(a.timeout);
    let mut b = aws_sdk_s3::config::Builder::from(&shared);
    // A PROFILE: target's endpoint is its profile's, whatever AWS_ENDPOINT_URL says.
    b.set_endpoint_url(endpoint.as_ref().map(|(given, _)| given.clone()));
    let mut b = b
        .force_path_style(a.path_style || endpoint.is_some())
        // We checksum bodies ourselves (Content-MD5) unless told otherwise; the SDK's default
        // CRC trailers are not understood by every S3-compatible server.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        // Retries are ours (S3Client::retry), so one attempt per SDK call.
        .retry_config(RetryConfig::disabled())
        // The time to an answer is bounded per attempt by S3Client::send (it depends on the
        // body's size); a body that stops moving either way is cut after --timeout.
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(a.timeout.min(CONNECT_TIMEOUT)))
                .build(),
        )
        .stalled_stream_protection(
            StalledStreamProtectionConfig::enabled()
                .grace_period(timeout)
                .build(),
        );
    if shared.region().is_none() {
        b = b.region(Region::new("us-east-1"));
    }
    let clock = Clock::default();
    b = b.interceptor(DateWatch(clock.clone()));
    Ok(S3Client {
        client: Client::from_conf(b.build()),
        retries: a.retries,
        timeout,
        endpoint: endpoint
            .map(|(_, shown)| shown)
            .unwrap_or_else(|| "the AWS endpoint".to_string()),
        clock,
    })
}

impl S3Client {
    /// Seconds the server's clock is ahead of this host's (negative: behind), from the Date
    /// header of the last answer; None before one arrived.
    pub fn skew(&self) -> Option<i64> {
        self.clock.skew()
    }

    /// Now on the server's clock (seconds since the epoch), as its last answer showed it.
    pub fn server_now(&self) -> i64 {
        epoch_ms(SystemTime::now()).div_euclid(1000) + self.skew().unwrap_or(0)
    }

    /// One attempt: send, bounded in time (`--timeout`, plus the time a body of `body` bytes
    /// needs at FLOOR_RATE), the failure classified.
    pub async fn send<T, E>(
        &self,
        body: u64,
        request: impl std::future::Future<
            Output = Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
        >,
    ) -> Result<T, S3Error>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let allowed = self.timeout + Duration::from_secs(body / FLOOR_RATE);
        let mut err = match tokio::time::timeout(allowed, request).await {
            Err(_) => S3Error::from(Why::TimedOut { after: allowed }),
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => {
                let mut err = S3Error::from_sdk(&e, &self.endpoint);
                if let Why::TimedOut { after } = &mut err.why {
                    *after = self.timeout.min(Duration::from_secs(CONNECT_TIMEOUT));
                }
                err
            }
        };
        // A refusal may be the clock's doing: error.rs's hint says so when it is far off.
        err.skew = self.skew();
        Err(err)
    }

    /// Run `attempt` until it succeeds, fails for good, or `--retries` attempts failed; with
    /// backoff between attempts. An attempt that made progress is not counted. Three
    /// attempts in a row without an answer end the request: the server is gone silent.
    pub async fn retry<T, F, Fut>(&self, mut attempt: F) -> Result<T, S3Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, S3Error>>,
    {
        let mut counted = 0;
        let mut made = 0;
        let mut silent = 0;
        loop {
            counted += 1;
            made += 1;
            tokio::time::sleep(backoff(counted)).await;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if e.retryable()
                        && (e.progressed || counted < self.retries)
                        && !(matches!(e.why, Why::TimedOut { .. }) && silent + 1 >= SILENT) =>
                {
                    if matches!(e.why, Why::TimedOut { .. }) {
                        silent += 1;
                    } else {
                        silent = 0;
                    }
                    if e.progressed {
                        counted = 1;
                    }
                }
                Err(mut e) => {
                    e.attempts = made;
                    return Err(e);
                }
            }
        }
    }

    /// A request without a body, retried: `request` builds and sends it anew for each
    /// attempt.
    pub async fn call<T, E, Fut>(&self, request: impl Fn(&Client) -> Fut) -> Result<T, S3Error>
    where
        Fut: std::future::Future<Output = Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        self.retry(|| self.send(0, request(&self.client))).await
    }
}

/// A listing's pages, each given to `each` in order: `fetch` asks for the page after a
/// marker (None: the first), `next` reads from a page whether the server has more and the
/// marker to ask for it with. A page that says there is more but gives no marker, or one
/// already asked with, is an error: a listing cut short is never taken for the whole, and
/// one that goes round in circles never runs forever (every tool that lists, and every
/// report built on a listing, rests on this).
pub async fn pages<M, P, Fut>(
    url: &S3Url,
    mut fetch: impl FnMut(Option<M>) -> Fut,
    next: impl Fn(&P) -> (bool, Option<M>),
    mut each: impl FnMut(P) -> anyhow::Result<()>,
) -> anyhow::Result<()>
where
    M: std::hash::Hash + Eq + Clone,
    Fut: std::future::Future<Output = anyhow::Result<P>>,
{
    let mut marker: Option<M> = None;
    let mut asked = std::collections::HashSet::new();
    loop {
        let page = fetch(marker.clone()).await?;
        let (more, after) = next(&page);
        each(page)?;
        if !more {
            return Ok(());
        }
        match after {
            Some(m) if asked.insert(m.clone()) => marker = Some(m),
            _ => anyhow::bail!(
                "{url}: listing: the server says the listing goes on but gives no way on \
                 (no new marker): a part of it is not taken for the whole"
            ),
        }
    }
}

/// Backoff before attempt `n` (1-based; attempt 1 has none): 200 ms doubling, capped at
/// 10 s, with jitter.
pub fn backoff(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    let base = 200u64.saturating_mul(1 << (n - 2).min(6)).min(10_000);
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()) % (base / 2 + 1))
        .unwrap_or(0);
    Duration::from_millis(base / 2 + jitter)
}

/// Resolves on SIGINT or SIGTERM (the S3 tools then clean up and exit 130).
pub async fn interrupted() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}

/// S3 allows at most this many parts.
pub const MAX_PARTS: u64 = 10_000;
/// And parts of at most 5 GiB.
pub const MAX_PART: u64 = 5 << 30;
/// And at least 5 MiB (but the last).
pub const MIN_PART: u64 = 5 << 20;
/// Parts per step of the schedule.
pub const STEP: u64 = 1000;

/// The size of part `n` (1-based) for a stream of unknown length uploaded with initial part
/// size `p`: p for parts 1-1000, 2p for 1001-2000, 4p for 2001-3000, ... capped at 5 GiB.
/// With the default 16 MiB, 10,000 parts hold 8 TiB, more than S3's 5 TiB object limit.
pub fn part_size(p: u64, n: u64) -> u64 {
    let doublings = ((n.max(1) - 1) / STEP).min(20) as u32;
    p.saturating_mul(1u64 << doublings).min(MAX_PART)
}

/// Where part `n` starts, for the same schedule.
pub fn part_offset(p: u64, n: u64) -> u64 {
    (1..n).map(|i| part_size(p, i)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages from a table: page i says whether more follow and the marker to ask with.
    fn listed(table: &[(bool, Option<&str>)]) -> anyhow::Result<Vec<usize>> {
        let url = S3Url::parse_object("s3://bkt/p/x").unwrap();
        let mut seen = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let fetch = |m: Option<String>| async move {
            // Marker "iN" asks for page N; page 0 is the first.
            Ok(m.map_or(0, |m| m[1..].parse::<usize>().unwrap()))
        };
        let next = |&i: &usize| (table[i].0, table[i].1.map(str::to_string));
        rt.block_on(pages(&url, fetch, next, |i| {
            seen.push(i);
            Ok(())
        }))?;
        Ok(seen)
    }

    #[test]
    fn a_listing_ends_where_it_says_and_never_goes_round() {
        assert_eq!(listed(&[(false, None)]).unwrap(), [0]);
        let three = [(true, Some("i1")), (true, Some("i2")), (false, None)];
        assert_eq!(listed(&three).unwrap(), [0, 1, 2]);
        for bad in [
            &[(true, None)][..],                       // more, but no marker
            &[(true, Some("i1")), (true, Some("i1"))], // the same marker again
            &[(true, Some("i1")), (true, Some("i2")), (true, Some("i1"))], // a cycle
        ] {
            let e = listed(bad).unwrap_err().to_string();
            assert!(e.contains("gives no way on"), "{e}");
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            S3Url::parse_object("s3://bkt/a/b.sc").unwrap(),
            S3Url {
                profile: None,
                bucket: "bkt".into(),
                key: "a/b.sc".into()
            }
        );
        let t = S3Url::parse_object("ceph:s3://bkt/a").unwrap();
        assert_eq!(t.profile.as_deref(), Some("ceph"));
        assert_eq!(t.to_string(), "ceph:s3://bkt/a");
        assert!(S3Url::parse("a b:s3://bkt/k").is_err());
        assert_eq!(S3Url::parse("s3://bkt").unwrap().key, "");
        assert!(S3Url::parse("s3://ab/k").is_err());
        assert!(S3Url::parse("http://bkt/k").is_err());
        assert!(S3Url::parse_object("s3://bkt/dir/").is_err());
        assert!(S3Url::parse("s3://Bad_Bucket/k").is_err());
    }

    #[test]
    fn ten_thousand_parts_cover_five_tib_from_the_default() {
        let p = 16 << 20;
        assert_eq!(part_size(p, 1), p);
        assert_eq!(part_size(p, 1000), p);
        assert_eq!(part_size(p, 1001), 2 * p);
        assert_eq!(part_size(p, 9999), MAX_PART);
        let total: u64 = (1..=MAX_PARTS).map(|n| part_size(p, n)).sum();
        assert!(total >= 5 << 40, "10,000 parts hold only {total} bytes");
        // The smallest part size S3 allows still reaches 4.8 TiB.
        let small: u64 = (1..=MAX_PARTS).map(|n| part_size(MIN_PART, n)).sum();
        assert!(small >= 48 * (1 << 40) / 10);
        assert_eq!(part_offset(p, 1), 0);
        assert_eq!(part_offset(p, 1002), 1000 * p + 2 * p);
    }

    #[test]
    fn a_dead_endpoint_fails_within_65_s_at_the_defaults() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            conn: ConnArgs,
        }
        let a = T::parse_from(["t"]).conn;
        // Every attempt of a bodiless request (the first request of every tool) is cut
        // after --timeout; between attempts the backoff is at most its base.
        let waits: u64 = (2..=a.retries)
            .map(|n| 200u64.saturating_mul(1 << (n - 2).min(6)).min(10_000))
            .sum();
        // Refused at once: the backoff only. Silent (or connecting in vain): at most SILENT
        // attempts of --timeout each.
        let silent = u64::from(SILENT.min(a.retries)) * a.timeout * 1000 + waits;
        assert!(silent <= 70_000, "{silent} ms");
        assert_eq!(
            check_endpoint("http://u:p@127.0.0.1:9/"),
            Ok("http://127.0.0.1:9/".into())
        );
        for bad in [
            "notaurl",
            "http://",
            "ftp://h:1",
            "http://h:99999",
            "http://h/p",
            " http://h",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad}");
        }
        assert!(a.timeout.min(CONNECT_TIMEOUT) <= a.timeout);
    }

    #[test]
    fn skew_is_read_from_an_http_date_to_the_nearest_second() {
        let at = |secs: u64, ms: u64| UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms);
        // Sun, 06 Nov 1994 08:49:37 GMT is 784111777.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        assert_eq!(skew_of(date, at(784_111_777, 300)), Some(0));
        assert_eq!(skew_of(date, at(784_111_778, 0)), Some(0));
        assert_eq!(skew_of(date, at(784_111_778, 100)), Some(-1));
        assert_eq!(skew_of(date, at(784_111_777 - 600, 500)), Some(600));
        assert_eq!(skew_of(date, at(784_111_777 + 1200, 400)), Some(-1200));
        assert_eq!(skew_of("yesterday", at(0, 0)), None);
        // An answer stamped early in its second that took 0.85 s to come back: the server's
        // clock is this host's, not a second behind.
        let (sent, arrived) = (784_111_777_300, 784_111_778_200);
        assert_eq!(skew_of(date, at(784_111_778, 200)), Some(-1));
        assert_eq!(skew_between(784_111_777, sent, arrived), 0);
        assert_eq!(skew_between(784_111_777 + 600, sent, arrived), 600);
        assert_eq!(skew_between(784_111_777 - 30, sent, arrived), -30);
        // An answer that arrived before it was sent (a clock set back): no negative trip.
        assert_eq!(skew_between(784_111_777, sent, sent - 5_000), 0);
        // A busy server: sent at .500, stamped 0.55 s later in the next second, back at
        // .100: clocks that agree explain it (the middle of the trip said a second ahead).
        assert_eq!(
            skew_between(784_111_778, 784_111_777_500, 784_111_778_100),
            0
        );
        // Ten minutes ahead, seen through a slow trip, is still ten minutes.
        assert_eq!(
            skew_between(784_112_377, 784_111_776_900, 784_111_778_100),
            600
        );
        let clock = Clock::default();
        assert_eq!(clock.skew(), None);
        clock.record(-30, 0, 0);
        assert_eq!(clock.clone().skew(), Some(-30));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert!(
            backoff(2) >= Duration::from_millis(100) && backoff(2) <= Duration::from_millis(200)
        );
        assert!(backoff(30) <= Duration::from_secs(10));
    }
}
