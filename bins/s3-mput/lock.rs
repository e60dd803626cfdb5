//! Object Lock (--retain, --retain-until, --lock-mode, --legal-hold): the lock is asked for
//! when the object is created (the single PUT, or CreateMultipartUpload), always with a
//! body checksum (Content-MD5 at least, which AWS requires of a locked write), and confirmed
//! by a HEAD once the object is stored. A server that ignored the headers (moto and Ceph
//! RGW 16 on CreateMultipartUpload) gets PutObjectRetention and PutObjectLegalHold for the
//! stored version, and the HEAD is repeated: an object stored but not locked is an error.

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockLegalHoldStatus, ObjectLockMode};
use sol_s3::{S3Client, S3Url};

use super::cli::Cli;

/// The lock asked of the object.
#[derive(Clone, Debug)]
pub struct Lock {
    pub mode: ObjectLockMode,
    /// The end of its retention (None: a legal hold only).
    pub until: Option<DateTime>,
    pub hold: bool,
}

/// What the command line asks: a retention (for DURATION from the server's now, or until a
/// time), its mode, a legal hold. Each target's bucket turns it into its `Lock` (`at`).
#[derive(Clone, Debug)]
pub struct Ask {
    retain: Option<std::time::Duration>,
    until: Option<DateTime>,
    mode: ObjectLockMode,
    hold: bool,
}

impl Ask {
    /// The lock `cli` asks for, if any.
    pub fn of(cli: &Cli) -> Option<Ask> {
        if cli.retain.is_none() && cli.retain_until.is_none() && !cli.legal_hold {
            return None;
        }
        Some(Ask {
            retain: cli.retain,
            until: cli.retain_until,
            mode: ObjectLockMode::from(cli.lock_mode.as_deref().unwrap_or("COMPLIANCE")),
            hold: cli.legal_hold,
        })
    }

    /// The lock asked for at `url`'s bucket, which must have Object Lock enabled; --retain
    /// counts from the server's clock (its answer's Date header).
    pub async fn at(&self, s3: &S3Client, url: &S3Url) -> anyhow::Result<Lock> {
        let conf = s3
            .call(|c| c.get_object_lock_configuration().bucket(&url.bucket).send())
            .await;
        let enabled = match &conf {
            Ok(o) => o
                .object_lock_configuration()
                .and_then(|c| c.object_lock_enabled())
                .is_some_and(|e| *e == ObjectLockEnabled::Enabled),
            // No configuration (404), or a server without Object Lock at all (501).
            Err(e) if matches!(e.status(), Some(404 | 501)) => false,
            Err(e) => return Err(e.at(url, "reading the bucket's Object Lock configuration")),
        };
        if !enabled {
            anyhow::bail!(
                "{url}: not stored: the bucket '{}' has no Object Lock \
                 (GetObjectLockConfiguration); a bucket must be created with Object Lock \
                 enabled to hold locked objects",
                url.bucket
            );
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let server = now + s3.clock.skew().unwrap_or(0);
        let until = match (&self.retain, &self.until) {
            (Some(d), _) => Some(DateTime::from_secs(server + d.as_secs() as i64)),
            (None, Some(t)) if t.secs() <= server => anyhow::bail!(
                "{url}: not stored: --retain-until {} is not in the future on the server's clock",
                t.fmt(DateTimeFormat::DateTime).unwrap_or_default()
            ),
            (None, Some(t)) => Some(*t),
            (None, None) => None,
        };
        Ok(Lock {
            mode: self.mode.clone(),
            until,
            hold: self.hold,
        })
    }
}

/// --retain-until: an RFC 3339 time in the future of this host's clock.
pub fn parse_until(s: &str) -> Result<DateTime, String> {
    DateTime::from_str(s, DateTimeFormat::DateTime)
        .map_err(|_| format!("'{s}': expected an RFC 3339 time like 2031-01-01T00:00:00Z"))
}

/// What the stored object's HEAD shows of its lock, against what was asked.
fn holds(h: &aws_sdk_s3::operation::head_object::HeadObjectOutput, lock: &Lock) -> bool {
    let retained = match lock.until {
        None => true,
        Some(want) => {
            h.object_lock_mode().map(|m| m.as_str()) == Some(lock.mode.as_str())
                && h.object_lock_retain_until_date()
                    .is_some_and(|d| d.secs() >= want.secs())
        }
    };
    let held =
        !lock.hold || h.object_lock_legal_hold_status() == Some(&ObjectLockLegalHoldStatus::On);
    retained && held
}

/// Once stored: the lock confirmed by a HEAD, or set on the stored version and confirmed
/// again. Returns the version's lock for --print, or why it is not locked.
pub async fn ensure(s3: &S3Client, url: &S3Url, lock: &Lock) -> anyhow::Result<()> {
    let head = |what: &'static str| async move {
        s3.head(url, None)
            .await
            .map_err(|e| e.at(url, what))?
            .ok_or_else(|| anyhow::anyhow!("{url}: stored, but a HEAD finds no object to lock"))
    };
    let h = head("confirming the lock").await?;
    if holds(&h, lock) {
        return Ok(());
    }
    let version = h.version_id().map(str::to_string);
    if let Some(until) = lock.until {
        let why = "stored, but setting its retention";
        s3.retain(url, version.clone(), (lock.mode.as_str(), until), why)
            .await?;
    }
    if lock.hold {
        s3.hold(url, version, "stored, but setting its legal hold")
            .await?;
    }
    if !holds(&head("confirming the lock").await?, lock) {
        let until = lock
            .until
            .map(|u| u.fmt(DateTimeFormat::DateTime).unwrap_or_default());
        anyhow::bail!(
            "{url}: stored, but the server does not show the lock asked for ({}{}{})",
            lock.mode.as_str(),
            until.map(|u| format!(" until {u}")).unwrap_or_default(),
            if lock.hold { ", legal hold" } else { "" }
        );
    }
    Ok(())
}
