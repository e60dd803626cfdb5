//! Archive classes: an object in GLACIER or DEEP_ARCHIVE cannot be read until a
//! RestoreObject request has been served (minutes to 48 hours), and then only until the
//! restored copy expires. Its state is read from the HEAD's `x-amz-storage-class` and
//! `x-amz-restore` headers and judged on the server's clock.

use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};

/// The classes whose objects must be restored before a GET (GLACIER_IR is read at once).
pub fn is_archive(class: &str) -> bool {
    matches!(class, "GLACIER" | "DEEP_ARCHIVE")
}

/// Whether an object can be read now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Thaw {
    /// Not in an archive class: read it.
    Warm,
    /// In an archive class, no restore asked (or the last restored copy is gone).
    Cold,
    /// A restore was asked and is not served yet.
    InProgress,
    /// Restored: readable until this time (seconds since the epoch).
    Ready(i64),
    /// The restored copy expired at this time: cold again.
    Expired(i64),
}

impl Thaw {
    /// From the HEAD's storage class and `x-amz-restore` header, on the server's clock
    /// `now` (seconds since the epoch).
    pub fn of(class: Option<&str>, restore: Option<&str>, now: i64) -> Thaw {
        if !class.is_some_and(is_archive) {
            return Thaw::Warm;
        }
        let Some(r) = restore else {
            return Thaw::Cold;
        };
        if r.contains("ongoing-request=\"true\"") {
            return Thaw::InProgress;
        }
        match expiry(r) {
            Some(t) if t > now => Thaw::Ready(t),
            Some(t) => Thaw::Expired(t),
            // Restored, with no expiry said: readable.
            None => Thaw::Ready(i64::MAX),
        }
    }

    /// Can the object be read now?
    pub fn readable(&self) -> bool {
        matches!(self, Thaw::Warm | Thaw::Ready(_))
    }

    /// One word for listings: `-` (not archived), `cold`, `thawing`, `ready-until-T`,
    /// `expired-T` (T in RFC 3339, UTC).
    pub fn word(&self) -> String {
        match self {
            Thaw::Warm => "-".into(),
            Thaw::Cold => "cold".into(),
            Thaw::InProgress => "thawing".into(),
            Thaw::Ready(i64::MAX) => "ready".into(),
            Thaw::Ready(t) => format!("ready-until-{}", sol_common::time::rfc3339(*t)),
            Thaw::Expired(t) => format!("expired-{}", sol_common::time::rfc3339(*t)),
        }
    }
}

/// The `expiry-date="..."` of an `x-amz-restore` header, in seconds since the epoch.
fn expiry(header: &str) -> Option<i64> {
    let rest = &header[header.find("expiry-date=\"")? + "expiry-date=\"".len()..];
    let date = &rest[..rest.find('"')?];
    Some(
        DateTime::from_str(date, DateTimeFormat::HttpDate)
            .ok()?
            .secs(),
    )
}

/// Why an archived object cannot be read, in one line after its URL, with what to do.
pub fn why_unreadable(class: &str, thaw: &Thaw, url: &str) -> String {
    let how = format!(
        "sol-restore --thaw for a sol's archive, or s3-ls --thaw DAYS {url} for any object"
    );
    match thaw {
        Thaw::InProgress => {
            format!("stored in {class}: restore in progress; it can be read once it is served")
        }
        Thaw::Expired(t) => format!(
            "stored in {class}: its restored copy expired at {}; thaw it again ({how})",
            sol_common::time::rfc3339(*t)
        ),
        _ => format!(
            "stored in {class} and not restored, so it cannot be read: thaw it first ({how})"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_restore_header_says_the_state() {
        let now = 1_765_000_000; // 2025-12-06
        assert_eq!(Thaw::of(None, None, now), Thaw::Warm);
        assert_eq!(Thaw::of(Some("STANDARD_IA"), None, now), Thaw::Warm);
        assert_eq!(Thaw::of(Some("GLACIER_IR"), None, now), Thaw::Warm);
        assert_eq!(Thaw::of(Some("GLACIER"), None, now), Thaw::Cold);
        let going = "ongoing-request=\"true\"";
        assert_eq!(
            Thaw::of(Some("DEEP_ARCHIVE"), Some(going), now),
            Thaw::InProgress
        );
        let done = "ongoing-request=\"false\", expiry-date=\"Fri, 12 Dec 2025 00:00:00 GMT\"";
        let t = 1_765_497_600;
        assert_eq!(Thaw::of(Some("GLACIER"), Some(done), now), Thaw::Ready(t));
        assert_eq!(Thaw::of(Some("GLACIER"), Some(done), t), Thaw::Expired(t));
        assert_eq!(
            Thaw::of(Some("GLACIER"), Some(done), now).word(),
            "ready-until-2025-12-12T00:00:00Z"
        );
        assert!(!Thaw::Expired(t).readable() && Thaw::Ready(t).readable());
        let odd = "ongoing-request=\"false\"";
        assert!(Thaw::of(Some("GLACIER"), Some(odd), now).readable());
    }
}
