//! s3-mput as a state machine: each destination is a `Destination` in one `Phase`, driven by
//! `drive` over one shared `Feed` (the stdin reader) and the shared part `Buffers`:
//!
//! ```text
//! Starting ─┬─ first part short ─▶ Single ─────────────────────────┬─▶ Committing ─▶ Committed
//!           └─ first part full ──▶ Creating ─▶ Uploading ── EOF ───┘
//! failure, SIGINT or SIGTERM before Committing ─▶ Aborting: the upload aborted, nothing stored
//! ```
//!
//! The commit point is Committing: the single PUT, or CompleteMultipartUpload, sent once stdin
//! ended and passed its checks. Before it, a failure, SIGINT or SIGTERM aborts the upload and
//! nothing is stored; a CreateMultipartUpload in flight is waited for, so its upload is aborted
//! too. Once the commit is sent, a signal waits for its outcome, which is then told as it is
//! (see s3-mput(1), SIGNALS). A step awaits only what its phase holds, so a signal, which drops
//! the step, finds the phase as it is, and `Destination::stop` ends the upload from there.
//! Several destinations would be several machines fed the same parts.

use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sol_common::exit::{one_line, status_of};
use sol_common::{hex, Fail, Status};
use sol_s3::{self as s3, S3Url, MAX_PARTS};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio::task::{JoinError, JoinHandle, JoinSet};

use super::checks::{check_commit, check_complete};
use super::cli::Cli;
use super::commit::{complete, multipart_etag, put_single};
use super::copy::{self, Source};
use super::lock;
use super::reader::{self, Buffers, Feed, Part};
use super::requests::{self, abort, confirm, create, ensure_absent, upload_part, Ctx, Uploaded};

/// Where one destination's upload is.
enum Phase {
    /// Waiting for the first part (the key was found absent, unless --overwrite).
    Starting,
    /// The first part is all of stdin: once stdin passed its checks, one PutObject.
    Single { part: Part },
    /// CreateMultipartUpload in flight on a task of its own; `first` waits for its UploadId.
    Creating {
        task: JoinHandle<anyhow::Result<String>>,
        first: Option<Part>,
    },
    /// Parts uploading under `id`, each on a task, at most --concurrency at once.
    Uploading {
        id: String,
        tasks: JoinSet<anyhow::Result<Uploaded>>,
        done: Vec<Uploaded>,
    },
    /// Past the commit point: Complete of `id` (None: the single PUT) in flight on a task of
    /// its own; `want` is the ETag our data gives, `parts` how many it had.
    Committing {
        id: Option<String>,
        want: String,
        parts: usize,
        task: JoinHandle<anyhow::Result<String>>,
    },
    /// Stored, its ETag confirmed.
    Committed { etag: String, parts: usize },
    /// Failed or interrupted: the upload `id`, if any, is still to be aborted.
    Aborting { id: Option<String> },
}

/// One destination's upload: the machine `drive` steps through its phases.
pub struct Destination {
    ctx: Arc<Ctx>,
    /// --part-size: a first part shorter than this is all of stdin.
    part_size: u64,
    /// --concurrency: parts uploading at once.
    limit: usize,
    /// Where uploaded parts' buffers go back.
    buffers: Buffers,
    /// Where it is.
    phase: Phase,
    /// The lock to ask of its bucket before it starts (with several targets; the only
    /// target's lock is in its `Ctx` already).
    ask: Option<lock::Ask>,
}

/// How many parts a destination may fall behind the fastest one (parts read and not yet
/// taken by it) before it is dropped from the upload (s3-mput(1), SEVERAL TARGETS).
pub const WINDOW: usize = 8;

/// One destination's end of the fan-out: where its parts go, how far it is, how to stop
/// it, its task.
struct Link {
    url: S3Url,
    parts: Option<mpsc::Sender<Part>>,
    /// Parts sent to it, and (in its inbox) parts it took.
    sent: usize,
    taken: Arc<AtomicUsize>,
    verdict: Option<oneshot::Sender<Verdict>>,
    stop: watch::Sender<Option<Stop>>,
    task: JoinHandle<anyhow::Result<String>>,
}

/// A destination's end of its channel: it counts the parts it takes and says so.
struct Inbox {
    rx: mpsc::Receiver<Part>,
    taken: Arc<AtomicUsize>,
    moved: Arc<Notify>,
}

impl Inbox {
    /// The next part; None at the end of stdin. Cancel-safe.
    async fn recv(&mut self) -> Option<Part> {
        let p = self.rx.recv().await;
        if p.is_some() {
            self.taken.fetch_add(1, Ordering::AcqRel);
            self.moved.notify_one();
        }
        p
    }
}

/// What a destination is told once stdin ended: commit `total` bytes, or abort.
enum Verdict {
    Commit(u64),
    Abort(Stop),
}

/// Why a destination must stop before it is done: the status and the line to tell.
#[derive(Clone)]
struct Stop {
    status: Status,
    message: String,
}

impl Stop {
    fn of(err: &anyhow::Error) -> Stop {
        Stop {
            status: status_of(err),
            message: one_line(err),
        }
    }

    fn error(self) -> anyhow::Error {
        Fail {
            status: self.status,
            message: self.message,
        }
        .into()
    }
}

/// Upload stdin to `url` and every --also target as `cli` asks: stdin is read once and each
/// part handed to every destination; on failure, SIGINT or SIGTERM, each ends as the phase
/// it reached requires.
pub async fn upload(mut cli: Cli, url: S3Url) -> anyhow::Result<Status> {
    let started = Instant::now();
    let source = copy::layout(&mut cli).await?;
    let mut urls = vec![url];
    for t in &cli.also {
        urls.push(S3Url::parse_object(t).map_err(Fail::usage)?);
    }
    let min_ok = usize::from(cli.min_ok.unwrap_or(urls.len() as u16));
    if min_ok > urls.len() {
        Err(Fail::usage(format!(
            "--min-ok {min_ok}: only {} targets",
            urls.len()
        )))?;
    }
    let limit = usize::from(cli.concurrency);
    let buffers = Buffers::for_destinations(urls.len(), limit, WINDOW);
    let moved = Arc::new(Notify::new());
    let mut links = Vec::new();
    let (ask, several) = (lock::Ask::of(&cli), urls.len() > 1);
    for url in urls {
        let s3 = s3::client(&cli.conn, &url).await?;
        let mut ctx = Ctx::new(s3, url.clone(), &cli);
        ctx.copy_of = source.clone();
        let mut dest_ask = None;
        match &ask {
            // Of several targets, each asks its own bucket, and one that cannot lock (or does
            // not answer) fails alone (SEVERAL TARGETS).
            Some(ask) if several => dest_ask = Some(ask.clone()),
            // The only target: refused before stdin is read.
            Some(ask) => ctx.object.lock = Some(ask.at(&ctx.s3, &url).await?),
            None => {}
        }
        let dest = Destination::new(ctx, &cli, buffers.clone(), dest_ask);
        links.push(Link::start(dest, url, moved.clone()));
    }
    let verdict = tokio::select! {
        v = feed(&cli, source.as_ref(), &buffers, &mut links, &moved) => v,
        _ = s3::interrupted() => Err(Stop::of(&Fail::interrupted().into())),
    };
    let stream_failed = verdict.is_err();
    let results = finish(links, verdict, started).await;
    report(&cli, results, min_ok, stream_failed)
}

impl Link {
    /// Start `dest` on a task of its own, fed parts through a channel that holds its window
    /// (and one more, so that sending never waits: the window is kept by `hand_out`).
    fn start(dest: Destination, url: S3Url, moved: Arc<Notify>) -> Link {
        let (parts, rx) = mpsc::channel(WINDOW + 1);
        let taken = Arc::new(AtomicUsize::new(0));
        let inbox = Inbox {
            rx,
            taken: taken.clone(),
            moved,
        };
        let (verdict, vrx) = oneshot::channel();
        let (stop, srx) = watch::channel(None);
        let task = tokio::spawn(run_destination(dest, inbox, vrx, srx));
        Link {
            url,
            parts: Some(parts),
            sent: 0,
            taken,
            verdict: Some(verdict),
            stop,
            task,
        }
    }

    /// Parts sent and not yet taken.
    fn queued(&self) -> usize {
        self.sent - self.taken.load(Ordering::Acquire)
    }

    /// Whether it still takes parts.
    fn live(&self) -> bool {
        self.parts.as_ref().is_some_and(|tx| !tx.is_closed())
    }
}

/// Stdin to every destination, part by part, at the pace of the fastest; then, once it
/// ended and passed its checks, the verdict: commit its length (or abort, and why).
async fn feed(
    cli: &Cli,
    source: Option<&Source>,
    buffers: &Buffers,
    links: &mut [Link],
    moved: &Notify,
) -> Result<u64, Stop> {
    let cfg = reader::Config {
        part_size: cli.part_size,
        limit_rate: cli.limit_rate,
        progress: cli.progress || sol_common::stdio::is_terminal(2),
    };
    let mut feed = Feed::start(sol_common::stdio::input(), cfg, buffers.clone());
    loop {
        if !fastest_caught_up(links, moved).await {
            // Every destination failed (each says why): stop reading.
            return Err(Stop {
                status: Status::Failure,
                message: "every target failed".into(),
            });
        }
        let Some(part) = feed.next().await else { break };
        hand_out(links, part);
    }
    for link in links.iter_mut() {
        link.parts = None; // the end of stdin
    }
    let url = links[0].url.clone();
    let sum = feed.finish(&url).map_err(|e| Stop::of(&e))?;
    check_complete(&sum, cli.require_complete, &url).map_err(|e| Stop::of(&e))?;
    check_commit(cli, &url).map_err(|e| Stop::of(&e))?;
    copy::check_length(source, sum.total, &url).map_err(|e| Stop::of(&e))?;
    Ok(sum.total)
}

/// Wait until a live destination has taken every part sent to it (the next part is then
/// worth reading); false when none is live.
async fn fastest_caught_up(links: &[Link], moved: &Notify) -> bool {
    loop {
        let waiting = moved.notified();
        if !links.iter().any(Link::live) {
            return false;
        }
        if links.iter().any(|l| l.live() && l.queued() == 0) {
            return true;
        }
        waiting.await;
    }
}

/// `part` to every live destination; one that has WINDOW parts queued already (it fell
/// that far behind the fastest, which has none) is dropped and told why.
fn hand_out(links: &mut [Link], part: Part) {
    for link in links.iter_mut().filter(|l| l.live()) {
        if link.queued() >= WINDOW {
            let message = format!(
                "{}: fell more than {WINDOW} parts behind the fastest target: dropped from this \
                 upload",
                link.url
            );
            let _ = link.stop.send(Some(Stop {
                status: Status::Failure,
                message,
            }));
            link.parts = None;
            continue;
        }
        if let Some(tx) = &link.parts {
            if tx.try_send(part.clone()).is_ok() {
                link.sent += 1;
            }
        }
    }
}

/// The end of every destination: the verdict sent to each (or, on a signal, the order to
/// stop), then their outcomes. Once one target has stored the object, the others have as
/// long again as it took (at least LAGGARD_MIN) before they are dropped and aborted, so a
/// target that stopped answering cannot hold the upload for its whole retry budget.
async fn finish(
    mut links: Vec<Link>,
    verdict: Result<u64, Stop>,
    started: Instant,
) -> Vec<anyhow::Result<String>> {
    let interrupted = matches!(&verdict, Err(s) if s.status == Status::Interrupted);
    let mut tasks = JoinSet::new();
    for (i, link) in links.iter_mut().enumerate() {
        link.parts = None;
        if interrupted {
            let _ = link.stop.send(verdict.clone().err());
        } else if let Some(tx) = link.verdict.take() {
            let _ = tx.send(match &verdict {
                Ok(total) => Verdict::Commit(*total),
                Err(stop) => Verdict::Abort(stop.clone()),
            });
        }
        let task = mem::replace(&mut link.task, tokio::spawn(async { Ok(String::new()) }));
        tasks.spawn(async move { (i, task.await) });
    }
    let mut results: Vec<Option<anyhow::Result<String>>> = links.iter().map(|_| None).collect();
    let (mut deadline, mut grace, mut signalled) = (None::<Instant>, LAGGARD_MIN, interrupted);
    loop {
        let wait = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        tokio::select! {
            next = tasks.join_next() => {
                let Some(Ok((i, r))) = next else { break };
                let r = r.unwrap_or_else(|_| Err(anyhow::anyhow!("{}: the upload task died", links[i].url)));
                if r.is_ok() && deadline.is_none() && links.len() > 1 {
                    grace = started.elapsed().max(LAGGARD_MIN);
                    deadline = Some(Instant::now() + grace);
                }
                results[i] = Some(r);
            }
            // A second signal while a destination ends: every one is told to stop too.
            _ = s3::interrupted(), if !signalled => {
                signalled = true;
                for link in &links {
                    let _ = link.stop.send(Some(Stop::of(&Fail::interrupted().into())));
                }
            }
            _ = tokio::time::sleep(wait.unwrap_or_default()), if wait.is_some() => {
                deadline = None;
                drop_laggards(&links, &results, grace);
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("the upload task was lost"))))
        .collect()
}

/// A laggard gets at least this long after another target stored the object.
const LAGGARD_MIN: Duration = Duration::from_secs(60);

/// The targets still storing when the laggards' time ran out: each told to stop.
fn drop_laggards(links: &[Link], results: &[Option<anyhow::Result<String>>], grace: Duration) {
    for (link, r) in links.iter().zip(results) {
        if r.is_none() {
            let _ = link.stop.send(Some(Stop {
                status: Status::Failure,
                message: format!(
                    "{}: still storing {} s after another target stored the object: dropped \
                     from this upload",
                    link.url,
                    grace.as_secs()
                ),
            }));
        }
    }
}

/// One destination from its first part to its end: its parts, then the verdict; stopped
/// early when told (dropped, or SIGINT or SIGTERM). Returns --print's line.
async fn run_destination(
    mut dest: Destination,
    mut parts: Inbox,
    verdict: oneshot::Receiver<Verdict>,
    mut stop: watch::Receiver<Option<Stop>>,
) -> anyhow::Result<String> {
    let r = tokio::select! {
        r = dest.drive(&mut parts, verdict) => r,
        s = stop.wait_for(Option::is_some) => Err(match s.as_deref() {
            Ok(Some(s)) => s.clone().error(),
            _ => anyhow::anyhow!("{}: the upload was stopped", dest.ctx.url),
        }),
    };
    let moved = parts.moved.clone();
    drop(parts); // its queued parts free their places
    moved.notify_one(); // the feed may be waiting for it
    match r {
        Ok(line) => Ok(line),
        Err(err) => Err(dest.stop(err).await),
    }
}

/// The end of the run: --print's lines, a line on stderr per failed target, and the
/// status. The only target's failure is told as it is; of several, each different failure
/// once, and when the stream itself failed (or was interrupted) the last of them is the
/// error, else the count stored when fewer than --min-ok.
fn report(
    cli: &Cli,
    results: Vec<anyhow::Result<String>>,
    min_ok: usize,
    stream_failed: bool,
) -> anyhow::Result<Status> {
    if cli.also.is_empty() {
        let line = results.into_iter().next().expect("one destination")?;
        if cli.print {
            print_line(&line)?;
        }
        return Ok(Status::Success);
    }
    let targets = std::iter::once(&cli.url).chain(cli.also.iter());
    let (mut lines, mut failures) = (Vec::new(), Vec::<anyhow::Error>::new());
    for (target, r) in targets.zip(results) {
        match r {
            Ok(line) => lines.push(format!("{target}\t{line}")),
            Err(e) if failures.iter().all(|f| one_line(f) != one_line(&e)) => failures.push(e),
            Err(_) => {}
        }
    }
    if cli.print && !lines.is_empty() {
        print_line(&lines.join("\n"))?;
    }
    let worst = failures.iter().map(status_of).max_by_key(|s| rank(*s));
    let last = if stream_failed { failures.pop() } else { None };
    for f in &failures {
        sol_common::warn(super::TOOL, one_line(f));
    }
    let (stored, n) = (lines.len(), cli.also.len() + 1);
    let message = match last {
        Some(last) => one_line(&last),
        None if stored < min_ok => {
            format!("{stored} of {n} targets stored the object (--min-ok {min_ok})")
        }
        None => return Ok(Status::Success),
    };
    Err(Fail {
        status: worst.unwrap_or(Status::Failure),
        message,
    }
    .into())
}

/// Which failure's status the run ends with: an interruption, then an integrity failure,
/// then any other.
fn rank(s: Status) -> u8 {
    match s {
        Status::Interrupted => 3,
        Status::Integrity => 2,
        _ => 1,
    }
}

impl Destination {
    /// The machine for the upload `ctx` describes, at its start; `ask`, the lock to ask of
    /// its bucket first.
    fn new(ctx: Ctx, cli: &Cli, buffers: Buffers, ask: Option<lock::Ask>) -> Destination {
        Destination {
            ctx: Arc::new(ctx),
            part_size: cli.part_size,
            limit: usize::from(cli.concurrency),
            buffers,
            phase: Phase::Starting,
            ask,
        }
    }

    /// Its parts as they come, then, once stdin ended, the verdict: commit (the key is
    /// looked up first unless --overwrite) or abort. Returns --print's line.
    async fn drive(
        &mut self,
        parts: &mut Inbox,
        verdict: oneshot::Receiver<Verdict>,
    ) -> anyhow::Result<String> {
        if let Some(ask) = self.ask.take() {
            let lock = ask.at(&self.ctx.s3, &self.ctx.url).await?;
            // Nothing shares the context before the first part.
            match Arc::get_mut(&mut self.ctx) {
                Some(ctx) => ctx.object.lock = Some(lock),
                None => anyhow::bail!("{}: the upload's context was shared", self.ctx.url),
            }
        }
        if !self.ctx.object.overwrite {
            ensure_absent(&self.ctx).await?;
        }
        while let Some(part) = self.next_part(parts).await? {
            self.accept(part)?;
        }
        self.settle().await?;
        let total = match verdict.await {
            Ok(Verdict::Commit(total)) => total,
            Ok(Verdict::Abort(stop)) => return Err(stop.error()),
            Err(_) => anyhow::bail!("{}: reading stdin: the reader stopped", self.ctx.url),
        };
        if matches!(self.phase, Phase::Starting) {
            anyhow::bail!("reading stdin: the reader stopped");
        }
        self.check_copy()?;
        self.commit(total).await?;
        self.settle().await?;
        if let Some(l) = &self.ctx.object.lock {
            lock::ensure(&self.ctx.s3, &self.ctx.url, l).await?;
        }
        if let Some(class) = &self.ctx.object.storage_class {
            requests::confirm_class(&self.ctx.s3, &self.ctx.url, class).await?;
        }
        self.line(total)
    }

    /// --copy-of: the ETag our data gives is the source's, or nothing is committed (the
    /// upload, still pending, is aborted).
    fn check_copy(&mut self) -> anyhow::Result<()> {
        let ours = match &mut self.phase {
            _ if self.ctx.copy_of.is_none() => return Ok(()),
            Phase::Single { part } => hex(&part.md5()),
            Phase::Uploading { done, .. } => {
                done.sort_by_key(|u| u.number);
                multipart_etag(done)
            }
            _ => return Ok(()),
        };
        copy::check_etag(self.ctx.copy_of.as_ref(), &ours, &self.ctx.url)
    }

    /// The next part (None at the end of stdin), moving the upload along meanwhile.
    async fn next_part(&mut self, parts: &mut Inbox) -> anyhow::Result<Option<Part>> {
        // Every wait also watches its tasks, so a part that failed past its retries ends the
        // upload at once (the reader may be waiting for a buffer only a successful part frees).
        loop {
            tokio::select! {
                p = parts.recv(), if self.ready() => return Ok(p),
                r = self.advance(), if self.busy() => r?,
            }
        }
    }

    /// Whether it takes the next part (or the end of stdin) now. While stdin is read, a
    /// destination that is not ready is `busy`.
    fn ready(&self) -> bool {
        match &self.phase {
            Phase::Starting | Phase::Single { .. } => true,
            Phase::Uploading { tasks, .. } => tasks.len() < self.limit,
            _ => false,
        }
    }

    /// Whether something is in flight for `advance` to wait for.
    fn busy(&self) -> bool {
        match &self.phase {
            Phase::Creating { .. } | Phase::Committing { .. } => true,
            Phase::Uploading { tasks, .. } => !tasks.is_empty(),
            _ => false,
        }
    }

    /// Take the next part of stdin: the first one decides between a single PUT and a
    /// multipart upload; the others are uploaded.
    fn accept(&mut self, part: Part) -> anyhow::Result<()> {
        match &mut self.phase {
            Phase::Starting if part.len < self.part_size as usize => {
                self.phase = Phase::Single { part };
            }
            Phase::Starting => {
                let (ctx, part_size) = (self.ctx.clone(), self.part_size);
                let task = tokio::spawn(async move { create(&ctx, part_size).await });
                self.phase = Phase::Creating {
                    task,
                    first: Some(part),
                };
            }
            Phase::Uploading { id, tasks, .. } => {
                spawn_part(&self.ctx, &self.buffers, id, tasks, part)?;
            }
            // The reader sends nothing after a short part, and no part to a busy machine.
            _ => anyhow::bail!("{}: reading stdin: a part after the last one", self.ctx.url),
        }
        Ok(())
    }

    /// Wait for what is in flight (the UploadId, a part, or the commit) and move on.
    /// Cancel-safe: it awaits only what the phase holds.
    async fn advance(&mut self) -> anyhow::Result<()> {
        match &mut self.phase {
            Phase::Creating { task, first } => {
                let r = task.await;
                let first = first.take();
                self.created(r, first)
            }
            Phase::Uploading { tasks, done, .. } => {
                if let Some(r) = tasks.join_next().await {
                    done.push(r.context("an upload task died")??);
                }
                Ok(())
            }
            Phase::Committing {
                task,
                id,
                want,
                parts,
            } => {
                let r = task.await;
                let (id, want, parts) = (id.take(), mem::take(want), *parts);
                self.committed(r, id, want, parts)
            }
            _ => Ok(()),
        }
    }

    /// Wait until nothing is in flight: every part uploaded, or the commit answered.
    async fn settle(&mut self) -> anyhow::Result<()> {
        while self.busy() {
            self.advance().await?;
        }
        Ok(())
    }

    /// Create answered `r`: Uploading under its UploadId, starting with `first`.
    fn created(
        &mut self,
        r: Result<anyhow::Result<String>, JoinError>,
        first: Option<Part>,
    ) -> anyhow::Result<()> {
        self.phase = Phase::Aborting { id: None };
        let id = r.context("the upload task died")??;
        self.phase = Phase::Uploading {
            id,
            tasks: JoinSet::new(),
            done: Vec::new(),
        };
        match first {
            Some(part) => self.accept(part),
            None => Ok(()),
        }
    }

    /// Stdin ended and passed its checks (`total` bytes): send the commit on a task of its
    /// own, which a signal then waits for: the single PUT, or Complete.
    async fn commit(&mut self, total: u64) -> anyhow::Result<()> {
        if matches!(self.phase, Phase::Uploading { .. }) && !self.ctx.object.overwrite {
            // Narrow the window of servers that ignore If-None-Match on Complete: look again
            // right before committing.
            ensure_absent(&self.ctx).await?;
        }
        let ctx = self.ctx.clone();
        self.phase = match mem::replace(&mut self.phase, Phase::Aborting { id: None }) {
            Phase::Single { part } => {
                let md5 = part.md5();
                let task = tokio::spawn(async move { put_single(&ctx, part, md5).await });
                let (id, want, parts) = (None, hex(&md5), 1);
                Phase::Committing {
                    id,
                    want,
                    parts,
                    task,
                }
            }
            Phase::Uploading { id, mut done, .. } => {
                done.sort_by_key(|u| u.number);
                let (want, parts, sent) = (multipart_etag(&done), done.len(), id.clone());
                let task = tokio::spawn(async move { complete(&ctx, &sent, &done, total).await });
                let id = Some(id);
                Phase::Committing {
                    id,
                    want,
                    parts,
                    task,
                }
            }
            other => other,
        };
        Ok(())
    }

    /// The commit of upload `id` (None: the PUT) of `parts` parts, whose ETag should be
    /// `want`, answered `r`: Committed, or Aborting the upload it leaves pending.
    fn committed(
        &mut self,
        r: Result<anyhow::Result<String>, JoinError>,
        id: Option<String>,
        want: String,
        parts: usize,
    ) -> anyhow::Result<()> {
        match r.context("the completion task died").and_then(|r| r) {
            Ok(etag) => {
                debug_assert!(id.is_none() || !self.ctx.etag_is_md5 || etag == want);
                self.phase = Phase::Committed { etag, parts };
                Ok(())
            }
            Err(e) => {
                self.phase = Phase::Aborting { id };
                Err(e)
            }
        }
    }

    /// --print's line once Committed: ETAG, BYTES (`total`) and PARTS, tab-separated.
    fn line(&self, total: u64) -> anyhow::Result<String> {
        match &self.phase {
            Phase::Committed { etag, parts } => Ok(format!("{etag}\t{total}\t{parts}")),
            _ => anyhow::bail!("{}: the completion task was lost", self.ctx.url),
        }
    }

    /// End after `err` (a failure, or SIGINT/SIGTERM) from the phase reached: wait for what
    /// is in flight where that decides what is stored, abort what is pending; the error to tell.
    async fn stop(&mut self, err: anyhow::Error) -> anyhow::Error {
        let interrupted = status_of(&err) == Status::Interrupted;
        let url = self.ctx.url.clone();
        let id = match mem::replace(&mut self.phase, Phase::Aborting { id: None }) {
            Phase::Committed { etag, .. } if interrupted => return stored_anyway(&url, &etag),
            // Past the commit point (only a signal stops a machine there).
            Phase::Committing {
                id,
                want,
                parts,
                task,
            } => return self.stop_committing(id, want, parts, task).await,
            // A Create in flight: wait for its UploadId, so that its upload is aborted too.
            Phase::Creating { task, .. } => created_id(task, self.ctx.s3.timeout * 2).await,
            // The part tasks end before the abort.
            Phase::Uploading { id, tasks, .. } => {
                drop(tasks);
                Some(id)
            }
            Phase::Aborting { id } => id,
            Phase::Starting | Phase::Single { .. } | Phase::Committed { .. } => None,
        };
        self.phase = Phase::Aborting { id };
        let err = if interrupted {
            interrupted_err(&url)
        } else {
            err
        };
        self.abort_pending(err).await
    }

    /// Interrupted with the commit in flight: wait for its outcome (within the --timeout
    /// budget) and tell it as it is; without one in time, what the key holds decides.
    async fn stop_committing(
        &mut self,
        id: Option<String>,
        want: String,
        parts: usize,
        mut task: JoinHandle<anyhow::Result<String>>,
    ) -> anyhow::Error {
        let url = self.ctx.url.clone();
        let Ok(joined) = tokio::time::timeout(self.ctx.s3.timeout * 2, &mut task).await else {
            task.abort();
            return self.decide_by_key(id, &want).await;
        };
        match joined {
            Ok(Ok(etag)) => {
                let e = stored_anyway(&url, &etag);
                self.phase = Phase::Committed { etag, parts };
                e
            }
            Ok(Err(_)) => {
                self.phase = Phase::Aborting { id };
                self.abort_pending(interrupted_err(&url)).await
            }
            Err(_) => anyhow::anyhow!("{url}: the completion task died"),
        }
    }

    /// The commit did not answer in time: the key decides, before and after the abort (a
    /// Complete may land after all; its abort then meets NoSuchUpload).
    async fn decide_by_key(&mut self, id: Option<String>, want: &str) -> anyhow::Error {
        let url = self.ctx.url.clone();
        if self.holds(want).await {
            return stored_anyway(&url, want);
        }
        self.phase = Phase::Aborting { id };
        let e = self.abort_pending(interrupted_err(&url)).await;
        if self.holds(want).await {
            return stored_anyway(&url, want);
        }
        e
    }

    /// Whether the key holds an object whose ETag is `want`.
    async fn holds(&self, want: &str) -> bool {
        let head = confirm(&self.ctx).await.ok().flatten();
        head.is_some_and(|(etag, _)| etag == want)
    }

    /// Abort the upload an Aborting phase leaves pending, if any: `err`, with what could not
    /// be cleaned up on the same line.
    async fn abort_pending(&mut self, err: anyhow::Error) -> anyhow::Error {
        let pending = match &mut self.phase {
            Phase::Aborting { id } => id.take(),
            _ => None,
        };
        let Some(id) = pending else { return err };
        match abort(&self.ctx, &id).await {
            None => err,
            Some(note) => Fail {
                status: status_of(&err),
                message: format!("{}{note}", one_line(&err)),
            }
            .into(),
        }
    }
}

/// Start uploading `part` under upload `id` on a task in `tasks` (an empty part only gives
/// its buffer back).
fn spawn_part(
    ctx: &Arc<Ctx>,
    buffers: &Buffers,
    id: &str,
    tasks: &mut JoinSet<anyhow::Result<Uploaded>>,
    part: Part,
) -> anyhow::Result<()> {
    if part.len == 0 {
        part.recycle(buffers);
        return Ok(());
    }
    if part.number > MAX_PARTS {
        anyhow::bail!("{}: the stream needs more than {MAX_PARTS} parts", ctx.url);
    }
    let (ctx, id, buffers) = (ctx.clone(), id.to_string(), buffers.clone());
    tasks.spawn(async move { upload_part(&ctx, &id, part, &buffers).await });
    Ok(())
}

/// Wait (within `budget`) for a Create in flight: the UploadId to abort, if one came.
async fn created_id(task: JoinHandle<anyhow::Result<String>>, budget: Duration) -> Option<String> {
    tokio::time::timeout(budget, task).await.ok()?.ok()?.ok()
}

/// `--print`'s line on stdout; a closed stdout is an error (status 1; 141 for a closed
/// pipe), never a panic.
fn print_line(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if sol_common::stdio::started_closed(1) {
        anyhow::bail!("writing --print's line: stdout is closed");
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|_| out.flush())
        .context("writing --print's line")
}

/// A signal came after the commit: the object is stored all the same.
fn stored_anyway(url: &S3Url, etag: &str) -> anyhow::Error {
    Fail::interrupted_with(format!(
        "{url}: interrupted after the upload was committed: the object is stored and \
         complete (ETag {etag})"
    ))
    .into()
}

/// A signal came before the commit: nothing is stored.
fn interrupted_err(url: &S3Url) -> anyhow::Error {
    Fail::interrupted_with(format!("{url}: interrupted: nothing is stored")).into()
}
