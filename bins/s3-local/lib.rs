//! s3-local: a directory served as S3 on loopback (the s3s-fs crate), for the demo, the
//! benchmark and the tests. Not for production: one process, no TLS.

pub mod cli;
pub mod local;

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use sol_common::Status;
use tokio::net::TcpListener;

pub const TOOL: &str = "s3-local";

pub fn main() -> ExitCode {
    sol_common::finish(TOOL, run(sol_common::parse_cli::<cli::Cli>(TOOL)))
}

fn run(cli: cli::Cli) -> anyhow::Result<Status> {
    std::fs::create_dir_all(&cli.dir).with_context(|| format!("'{}'", cli.dir.display()))?;
    for b in &cli.bucket {
        std::fs::create_dir_all(cli.dir.join(b)).with_context(|| format!("bucket '{b}'"))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = TcpListener::bind((cli.host.as_str(), cli.port))
            .await
            .with_context(|| format!("listening on {}:{}", cli.host, cli.port))?;
        let addr = listener.local_addr()?;
        // The first line on stdout is the endpoint, for scripts that started us on port 0.
        {
            use std::io::Write;
            let mut out = std::io::stdout();
            let _ = writeln!(out, "http://{addr}").and_then(|_| out.flush());
        }
        sol_common::warn(
            TOOL,
            format!(
                "serving '{}' at http://{addr} (access key '{}')",
                cli.dir.display(),
                cli.access_key
            ),
        );
        let server = serve(listener, &cli.dir, &cli.access_key, &cli.secret_key)?;
        tokio::select! {
            r = server => r,
            _ = shutdown_signal() => Ok(()),
        }
    })?;
    Ok(Status::Success)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Serve `root` as S3 on `listener` until the future is dropped. Buckets are the top-level
/// directories of `root`.
pub fn serve(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
) -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    let mut b = S3ServiceBuilder::new(local::Local::new(root)?);
    b.set_auth(SimpleAuth::from_single(access_key, secret_key));
    b.set_access(local::Checks::new(root));
    let service = b.build();
    Ok(async move {
        let http = ConnBuilder::new(TokioExecutor::new());
        loop {
            let (socket, _): (_, SocketAddr) = listener.accept().await?;
            let conn = http
                .serve_connection(TokioIo::new(socket), service.clone())
                .into_owned();
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
    })
}
