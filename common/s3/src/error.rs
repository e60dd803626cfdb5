//! What went wrong with an S3 request, typed: read from the SDK's raw response (the HTTP
//! status) and its error metadata (the S3 code), never from Debug text. One line for people,
//! with the usual fix where there is one.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::S3Url;

/// Why a request attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The server answered with an HTTP error status.
    Http {
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    /// The server answered, but the answer could not be read (not the XML S3 defines).
    Unreadable { status: u16 },
    /// Nothing listens at the endpoint.
    Refused { endpoint: String },
    /// No answer within the time allowed.
    TimedOut { after: Duration },
    /// The connection broke before the answer was complete.
    Dropped { detail: String },
    /// The credential chain found nothing.
    NoCredentials { detail: String },
    /// The answer arrived but fails a check of ours (e.g. an ETag that is not the data's MD5).
    Bad { detail: String },
    /// The request could not be built or sent (bad endpoint URL, ...).
    Other { detail: String },
}

/// A failed request: the last attempt's reason and how many attempts were made.
#[derive(Debug, Clone)]
pub struct S3Error {
    pub why: Why,
    pub attempts: u32,
    /// The failed attempt still moved data forward (a resumed download): it does not count
    /// against the retry budget.
    pub progressed: bool,
    /// Seconds the server's clock was ahead of this host's (negative: behind), as its
    /// answers' Date header showed (lib.rs, `Clock`); None when unknown.
    pub skew: Option<i64>,
}

impl From<Why> for S3Error {
    fn from(why: Why) -> S3Error {
        S3Error {
            why,
            attempts: 1,
            progressed: false,
            skew: None,
        }
    }
}

/// The Display texts of an error and its sources, joined (no Debug).
fn chain(e: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.iter().any(|o| o.contains(&s)) {
            out.push(s);
        }
        cur = e.source();
    }
    out
}

fn find<'a, T: StdError + 'static>(e: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur: Option<&'a (dyn StdError + 'static)> = Some(e);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// An answer with an HTTP status: an error status, or a success status whose body was not
/// the answer S3 defines (no code or message read from it).
fn answered(status: u16, code: Option<String>, message: Option<String>) -> Why {
    if code.is_none() && message.is_none() && (200..300).contains(&status) {
        Why::Unreadable { status }
    } else {
        Why::Http {
            status,
            code,
            message,
        }
    }
}

/// A request that got no answer: no credentials, a connection refused, timed out or
/// dropped, or a request that could not be sent; read from the error's source chain.
fn unanswered<E>(e: &SdkError<E, HttpResponse>, endpoint: &str) -> Why
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let err: &(dyn StdError + 'static) = e;
    if let Some(c) = find::<aws_credential_types::provider::error::CredentialsError>(err) {
        Why::NoCredentials {
            detail: chain(c).join(": "),
        }
    } else if let Some(io) = find::<io::Error>(err) {
        io_why(io, endpoint)
    } else if let SdkError::DispatchFailure(d) = e {
        if d.is_timeout() {
            Why::TimedOut {
                after: Duration::ZERO,
            }
        } else if d.is_io() || d.is_other() {
            Why::Dropped {
                detail: chain(err).into_iter().skip(1).last().unwrap_or_default(),
            }
        } else {
            Why::Other {
                detail: chain(err).join(": "),
            }
        }
    } else {
        Why::Other {
            detail: chain(err).join(": "),
        }
    }
}

/// An I/O error under a request: refused (naming `endpoint`), timed out, or dropped.
fn io_why(io: &io::Error, endpoint: &str) -> Why {
    match io.kind() {
        io::ErrorKind::ConnectionRefused => Why::Refused {
            endpoint: endpoint.to_string(),
        },
        io::ErrorKind::TimedOut => Why::TimedOut {
            after: Duration::ZERO,
        },
        _ => Why::Dropped {
            detail: io.to_string(),
        },
    }
}

impl S3Error {
    /// Classify an SDK error. `endpoint` names where requests go, for "refused".
    pub fn from_sdk<E>(e: &SdkError<E, HttpResponse>, endpoint: &str) -> S3Error
    where
        E: ProvideErrorMetadata + StdError + 'static,
    {
        let why = match e {
            SdkError::ServiceError(s) => {
                let meta = s.err();
                let (code, message) = (nonempty(meta.code()), nonempty(meta.message()));
                answered(s.raw().status().as_u16(), code, message)
            }
            SdkError::ResponseError(r) => answered(r.raw().status().as_u16(), None, None),
            SdkError::TimeoutError(_) => Why::TimedOut {
                after: Duration::ZERO,
            },
            _ => unanswered(e, endpoint),
        };
        why.into()
    }

    pub fn status(&self) -> Option<u16> {
        match &self.why {
            Why::Http { status, .. } | Why::Unreadable { status } => Some(*status),
            _ => None,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match &self.why {
            Why::Http { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// 404 for the object itself (not for the bucket or an upload).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404) && !matches!(self.code(), Some("NoSuchBucket" | "NoSuchUpload"))
    }

    pub fn is_precondition_failed(&self) -> bool {
        self.status() == Some(412) || self.code() == Some("PreconditionFailed")
    }

    pub fn is_not_implemented(&self) -> bool {
        self.status() == Some(501) || self.code() == Some("NotImplemented")
    }

    /// Worth another attempt: throttling, 5xx, timeouts, dropped connections, unreadable
    /// answers, a refused connection (a restarting server) and failed checks of ours.
    pub fn retryable(&self) -> bool {
        match &self.why {
            Why::Http { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || *status == 408
                    || matches!(
                        code.as_deref(),
                        Some(
                            "SlowDown"
                                | "RequestTimeout"
                                | "InternalError"
                                | "ServiceUnavailable"
                                | "Throttling"
                                | "RequestTimeTooSkewed"
                        )
                    )
            }
            Why::Unreadable { .. }
            | Why::Refused { .. }
            | Why::TimedOut { .. }
            | Why::Dropped { .. }
            | Why::Bad { .. } => true,
            Why::NoCredentials { .. } | Why::Other { .. } => false,
        }
    }

    /// The reason, for people: status, code, message and the usual fix.
    pub fn reason(&self, url: &S3Url) -> String {
        let mut s = match &self.why {
            Why::Http {
                status,
                code,
                message,
            } => {
                let mut s = format!("HTTP {status}");
                if let Some(c) = code {
                    s.push(' ');
                    s.push_str(c);
                }
                if let Some(m) = message {
                    s.push_str(": ");
                    s.push_str(m);
                }
                if let Some(h) = hint(*status, code.as_deref(), url, self.skew) {
                    s.push_str(" (");
                    s.push_str(&h);
                    s.push(')');
                }
                s
            }
            Why::Unreadable { status } => {
                format!("the server's answer (HTTP {status}) could not be read as S3 XML")
            }
            Why::Refused { endpoint } => format!("connection refused by {endpoint}"),
            Why::TimedOut { after } if after.is_zero() => "timed out".to_string(),
            Why::TimedOut { after } => format!("no answer in {} s (timed out)", after.as_secs()),
            Why::Dropped { detail } if detail.is_empty() => "the connection dropped".to_string(),
            Why::Dropped { detail } => format!("the connection dropped ({detail})"),
            Why::NoCredentials { detail } if url.profile.is_some() => format!(
                "no credentials from profile '{}' (its keys or credential_process, in the \
                 files AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE name): {detail}",
                url.profile.as_deref().unwrap_or_default()
            ),
            Why::NoCredentials { .. } => "no credentials: set AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials (looked at the \
                 environment, ~/.aws/config, ~/.aws/credentials, web identity, container and \
                 instance metadata)"
                .to_string(),
            Why::Bad { detail } | Why::Other { detail } => detail.clone(),
        };
        if self.attempts > 1 {
            s.push_str(&format!(" (gave up after {} attempts)", self.attempts));
        }
        one_line(&s)
    }

    /// `URL: WHAT: REASON` as an error with exit status 1.
    pub fn at(&self, url: &S3Url, what: &str) -> anyhow::Error {
        anyhow::anyhow!("{url}: {what}: {}", self.reason(url))
    }
}

/// Control characters (a server's message may carry newlines) become spaces, and a
/// message of more than 400 characters is cut.
fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(400)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().nth(400).is_some() {
        out.push_str("...");
    }
    out
}

/// Beyond this many seconds either way, a refusal is put down to the clock: AWS refuses a
/// request signed more than 15 minutes off, other servers sooner or later.
pub const SKEWED: i64 = 5 * 60;

/// `17m 3s`, `2h 0m`, `3d 4h`, `45s`.
pub fn span(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {}s", secs / 60, secs % 60),
        3600..=86_399 => format!("{}h {}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d {}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

fn hint(status: u16, code: Option<&str>, url: &S3Url, skew: Option<i64>) -> Option<String> {
    if let Some(skew) = skew.filter(|s| s.abs() > SKEWED) {
        if status == 403 || code == Some("RequestTimeTooSkewed") {
            return Some(format!(
                "the server's clock is {} {} this host's: fix this host's clock, e.g. with NTP",
                span(skew.unsigned_abs()),
                if skew > 0 { "ahead of" } else { "behind" }
            ));
        }
    }
    Some(match (status, code) {
        (_, Some("NoSuchBucket")) => format!("the bucket '{}' does not exist", url.bucket),
        (_, Some("InvalidStorageClass")) => "the server does not accept this storage class".into(),
        (_, Some("PermanentRedirect" | "AuthorizationHeaderMalformed")) | (301, _) => {
            "the bucket is in another region: give it with --region or AWS_REGION".into()
        }
        (_, Some("RequestTimeTooSkewed")) => "this machine's clock is wrong".into(),
        (_, Some("SlowDown")) | (429 | 503, _) => "the server is throttling requests".into(),
        (403, _) | (_, Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch")) => {
            "check the credentials and the bucket policy".into()
        }
        (404, None) => "not found".into(),
        (412, _) => "a condition of the request was not met".into(),
        (501, _) => "the server does not implement this request".into(),
        (500..=599, _) => "a server error".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> S3Url {
        S3Url::parse("s3://bkt/k").unwrap()
    }

    #[test]
    fn reasons_are_one_line_with_status_code_and_hint() {
        let e = S3Error::from(Why::Http {
            status: 403,
            code: Some("SignatureDoesNotMatch".into()),
            message: Some("The request signature\nwe calculated".into()),
        });
        assert_eq!(
            e.reason(&url()),
            "HTTP 403 SignatureDoesNotMatch: The request signature we calculated \
             (check the credentials and the bucket policy)"
        );
        let e = S3Error::from(Why::Http {
            status: 404,
            code: Some("NoSuchBucket".into()),
            message: None,
        });
        assert_eq!(
            e.reason(&url()),
            "HTTP 404 NoSuchBucket (the bucket 'bkt' does not exist)"
        );
        assert!(!e.is_not_found());
        let mut e = S3Error::from(Why::Refused {
            endpoint: "http://127.0.0.1:9".into(),
        });
        e.attempts = 3;
        assert_eq!(
            e.reason(&url()),
            "connection refused by http://127.0.0.1:9 (gave up after 3 attempts)"
        );
        assert!(e.retryable());
    }

    #[test]
    fn a_refusal_with_the_clock_far_off_is_put_down_to_the_clock() {
        // A HEAD refused has no body: the status and the Date header are all there is.
        let mut e = S3Error::from(Why::Http {
            status: 403,
            code: None,
            message: None,
        });
        assert_eq!(
            e.reason(&url()),
            "HTTP 403 (check the credentials and the bucket policy)"
        );
        e.skew = Some(17 * 60 + 3);
        assert_eq!(
            e.reason(&url()),
            "HTTP 403 (the server's clock is 17m 3s ahead of this host's: fix this host's \
             clock, e.g. with NTP)"
        );
        e.skew = Some(-2 * 3600);
        assert!(e.reason(&url()).contains("is 2h 0m behind this host's"));
        // Within five minutes, the clock is not the reason.
        e.skew = Some(-SKEWED);
        assert!(e.reason(&url()).contains("check the credentials"));
        // RequestTimeTooSkewed whatever the status; other refusals keep their hint.
        let mut e = S3Error::from(Why::Http {
            status: 400,
            code: Some("RequestTimeTooSkewed".into()),
            message: None,
        });
        e.skew = Some(-1200);
        assert!(e.reason(&url()).contains("20m 0s behind this host's"));
        let mut e = S3Error::from(Why::Http {
            status: 404,
            code: Some("NoSuchBucket".into()),
            message: None,
        });
        e.skew = Some(1200);
        assert!(e.reason(&url()).contains("does not exist"));
        assert_eq!(span(45), "45s");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }
}
