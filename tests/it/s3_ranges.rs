//! `s3-mget --range LIST` and `--if-match ETAG` (issue 15: restore one file without
//! downloading the whole sol) against a real S3 server (see s3env.rs): exactly the bytes
//! asked for, in order, pinned to the ETag, and only about those bytes on the wire.

// A list holding one range is what a `--range` of one range is.
#![allow(clippy::single_range_in_vec_init)]

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::counting::Counter;
use crate::s3env::{faulty_network_opts, mput, Faults, Proxy, S3};
use crate::util::*;

/// What one answer's status line and headers may cost on the wire, on any server under
/// test (s3s-fs sends about 300 bytes, moto and Ceph RGW a few hundred more).
const PER_ANSWER: u64 = 2048;

/// `s3-mget [extra] --range LIST URL`, through `endpoint` when given.
fn ranged(s3: &S3, endpoint: Option<&str>, key: &str, list: &str, extra: &[&str]) -> Out {
    let run = match endpoint {
        Some(e) => s3.env_at(tool("s3-mget"), e),
        None => s3.tool("s3-mget"),
    };
    run.args(extra)
        .args(["--range", list])
        .arg(s3.url(key))
        .run()
}

/// The inclusive text of half-open ranges (written here, not taken from the code under test).
fn text(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end - 1))
        .collect();
    parts.join(",")
}

/// What `--range` must write: the ranges' bytes, back to back.
fn expected(data: &[u8], ranges: &[Range<u64>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in ranges {
        out.extend_from_slice(&data[r.start as usize..r.end as usize]);
    }
    out
}

fn total(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start).sum()
}

/// `n` increasing ranges inside `within`, each 1..=`longest` bytes long, the gaps between
/// them 0 (they touch) to `widest` bytes.
fn plan(rng: &mut Rng, within: Range<u64>, n: usize, longest: u64, widest: u64) -> Vec<Range<u64>> {
    let mut out = Vec::new();
    let mut at = within.start + rng.below(widest);
    while out.len() < n {
        let len = 1 + rng.below(longest);
        if at + len > within.end {
            break;
        }
        out.push(at..at + len);
        at += len
            + if rng.below(8) == 0 {
                0
            } else {
                rng.below(widest)
            };
    }
    assert_eq!(out.len(), n, "the object is too small for the plan");
    out
}

/// The object's ETag as the server gives it to another client (quotes kept).
fn etag_of(s3: &S3, key: &str) -> String {
    let key = key.to_string();
    s3.sdk(|c, b| async move {
        let h = c.head_object().bucket(b).key(key).send().await.unwrap();
        h.e_tag().unwrap_or_default().to_string()
    })
}

#[test]
fn ranges_are_byte_exact_on_single_and_multipart_objects() {
    let s3 = S3::start();
    let single = Rng::new(101).bytes(3 << 20);
    let put = mput(&s3, "single", &single, &["--print"]);
    put.ok();
    assert!(put.stdout_str().ends_with("\t1\n"), "{}", put.stdout_str());
    let multi = Rng::new(102).bytes(23 << 20);
    let put = mput(&s3, "multi", &multi, &["--part-size", "5M", "--print"]);
    put.ok();
    assert!(put.stdout_str().ends_with("\t5\n"), "{}", put.stdout_str());
    let mut rng = Rng::new(103);
    for (key, data) in [("single", &single), ("multi", &multi)] {
        let n = data.len() as u64;
        let m = 1u64 << 20;
        let mut cases: Vec<(&str, Vec<Range<u64>>)> = vec![
            ("the first byte", vec![0..1]),
            ("the last byte", vec![n - 1..n]),
            ("the whole object", vec![0..n]),
            ("touching ranges", vec![0..10, 10..20, 20..21]),
            // Across piece boundaries at --part-size 1M, and for the multipart object across
            // its 5 MiB parts too.
            ("across boundaries", vec![m - 3..n - m + 5]),
            ("a byte each side of 1 MiB", vec![m - 1..m, m..m + 1]),
            ("many small", plan(&mut rng, 0..n, 300, 8_000, 6_000)),
        ];
        if key == "multi" {
            cases.push((
                "each side of every part boundary",
                (1..5)
                    .map(|p| p * (5 << 20) - 7..p * (5 << 20) + 9)
                    .collect(),
            ));
        }
        for (what, ranges) in &cases {
            let want = expected(data, ranges);
            for opts in [
                &[][..],
                &["--part-size", "1M", "--concurrency", "3"][..],
                &["--concurrency", "1"][..],
            ] {
                let out = ranged(&s3, None, key, &text(ranges), opts);
                out.ok();
                assert_eq!(out.stderr, "", "{key}: {what} {opts:?}");
                assert_eq!(out.stdout.len(), want.len(), "{key}: {what} {opts:?}");
                assert!(out.stdout == want, "{key}: {what} {opts:?}: bytes differ");
            }
        }
    }
}

#[test]
fn hundreds_of_small_ranges_cross_the_wire_as_about_their_own_bytes() {
    let s3 = S3::start();
    let data = Rng::new(104).bytes(24 << 20);
    mput(&s3, "obj", &data, &["--part-size", "5M"]).ok();
    let counter = Counter::start(s3.addr);
    let n = data.len() as u64;

    // The counter sees what crosses: a whole download is at least the object.
    let whole = s3
        .env_at(tool("s3-mget"), &counter.endpoint)
        .arg(s3.url("obj"))
        .run();
    whole.ok();
    assert!(whole.stdout == data);
    let got = counter.take();
    assert!(
        got >= n,
        "the counter saw {got} bytes of a {n}-byte download"
    );

    // One byte: a HEAD and one ranged GET.
    let out = ranged(&s3, Some(&counter.endpoint), "obj", &text(&[n - 1..n]), &[]);
    out.ok();
    assert_eq!(out.stdout, &data[data.len() - 1..]);
    let got = counter.take();
    assert!(
        got <= 1 + 2 * PER_ANSWER,
        "{got} bytes crossed for one byte"
    );

    // 400 ranges of up to 48 KiB with gaps of up to 48 KiB: about a third of the object.
    // At the default 16M part size, one range at most is cut in two (at 16 MiB).
    let ranges = plan(&mut Rng::new(105), 0..n, 400, 48 << 10, 48 << 10);
    let asked = total(&ranges);
    let started = Instant::now();
    let out = ranged(&s3, Some(&counter.endpoint), "obj", &text(&ranges), &[]);
    out.ok();
    assert!(out.stdout == expected(&data, &ranges), "bytes differ");
    let got = counter.take();
    let allowed = asked + (ranges.len() as u64 + 2) * PER_ANSWER;
    assert!(
        (asked..=allowed).contains(&got),
        "{got} bytes crossed for {asked} asked in {} ranges (allowed {allowed})",
        ranges.len()
    );
    assert!(asked < n / 2, "the plan covers {asked} of {n} bytes");
    eprintln!(
        "s3_ranges: {} ranges, {asked} bytes asked, {got} crossed, {:?} ({})",
        ranges.len(),
        started.elapsed(),
        crate::s3env::server()
    );
}

#[test]
fn if_match_pins_the_etag_and_a_wrong_one_is_status_3_with_no_output() {
    let s3 = S3::start();
    let data = Rng::new(106).bytes(100_000);
    mput(&s3, "k", &data, &[]).ok();
    let quoted = etag_of(&s3, "k");
    let bare = quoted.trim_matches('"').to_string();
    assert!(!bare.is_empty(), "the server gave no ETag");
    // The right ETag, with or without its quotes: the object, or its ranges.
    for e in [&quoted, &bare] {
        let out = s3
            .tool("s3-mget")
            .args(["--if-match", e])
            .arg(s3.url("k"))
            .run();
        out.ok();
        assert!(out.stdout == data);
        let out = ranged(&s3, None, "k", "5-9,99999-99999", &["--if-match", e]);
        out.ok();
        assert_eq!(out.stdout, [&data[5..10], &data[99_999..]].concat());
    }
    // Another ETag: status 3, one line, nothing written.
    let wrong = "0123456789abcdef0123456789abcdef";
    for (e, extra) in [
        (wrong.to_string(), vec![]),
        (format!("\"{wrong}\""), vec!["--range", "0-9"]),
        (format!("{bare}-2"), vec![]),
    ] {
        let out = s3
            .tool("s3-mget")
            .args(["--if-match", &e])
            .args(&extra)
            .arg(s3.url("k"))
            .run();
        out.code(3);
        out.stderr_is(&format!(
            "s3-mget: {}: the object's ETag is \"{bare}\", not \"{}\" (it was replaced)",
            s3.url("k"),
            e.trim_matches('"')
        ));
        assert!(
            out.stdout.is_empty(),
            "{e}: wrote {} bytes",
            out.stdout.len()
        );
    }
    // An empty ETag is a usage error.
    let out = s3
        .tool("s3-mget")
        .args(["--if-match", "\"\""])
        .arg(s3.url("k"))
        .run();
    out.code(2);
    assert!(out.stderr.starts_with("s3-mget: "), "{}", out.stderr);
    assert!(out.stdout.is_empty());
}

#[test]
fn an_object_replaced_between_head_and_get_is_an_error_not_a_mix() {
    let s3 = S3::start();
    let old = Rng::new(107).bytes(3 << 20);
    for (i, pin) in [false, true].into_iter().enumerate() {
        let key = format!("moving{i}");
        mput(&s3, &key, &old, &["--overwrite"]).ok();
        let etag = etag_of(&s3, &key);
        // The answer to the HEAD is held for 4 s: the server has read the old object's
        // metadata, and the object is replaced before s3-mget sees it and sends its GETs.
        let proxy = Proxy::on_first(s3.addr, b"HEAD ", Duration::from_secs(4), false, 3);
        let endpoint = proxy.endpoint.clone();
        let mut extra = vec!["--range".to_string(), "10-20,2000000-2100000".to_string()];
        if pin {
            extra.extend(["--if-match".to_string(), etag.clone()]);
        }
        let handle = std::thread::spawn({
            let run = s3
                .env_at(tool("s3-mget"), &endpoint)
                .args(&extra)
                .arg(s3.url(&key));
            move || run.run()
        });
        let start = Instant::now();
        while proxy.matched.load(Ordering::SeqCst) == 0 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "no HEAD was sent"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(500)); // the server answers the HEAD
        mput(&s3, &key, &Rng::new(108).bytes(3 << 20), &["--overwrite"]).ok();
        assert_ne!(etag_of(&s3, &key), etag, "the object was not replaced");
        let out = handle.join().unwrap();
        assert!(
            start.elapsed() >= Duration::from_secs(3),
            "the HEAD's answer was not held"
        );
        out.code(3);
        out.one_line_with("changed during the download");
        assert!(out.stdout.is_empty(), "wrote {} bytes", out.stdout.len());
    }
}

#[test]
fn malformed_range_lists_are_usage_errors() {
    let s3 = S3::start();
    mput(&s3, "k", b"0123456789", &[]).ok();
    // Every malformed kind is refused by the parser (common/src/ranges.rs's unit test);
    // here, one of each shape reaches the command line as a usage error.
    for bad in ["", "-5", "9-3", "5-9,0-3", "0-1,", "0-18446744073709551615"] {
        // `--range=LIST`, so that "-5" is a value, not an option.
        let out = s3
            .tool("s3-mget")
            .arg(format!("--range={bad}"))
            .arg(s3.url("k"))
            .run();
        out.code(2);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("s3-mget: ") && first.contains("--range"),
            "{bad:?}: {}",
            out.stderr
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_range_past_the_end_is_refused_before_any_output() {
    let s3 = S3::start();
    let data = Rng::new(109).bytes(1000);
    mput(&s3, "k", &data, &[]).ok();
    mput(&s3, "empty", b"", &[]).ok();
    ranged(&s3, None, "k", "0-999", &[]).ok();
    for (key, list, named, size) in [
        ("k", "0-9,990-1000", "990-1000", 1000),
        ("k", "0-9,1000-1000", "1000-1000", 1000),
        ("k", "5000-6000", "5000-6000", 1000),
        ("empty", "0-0", "0-0", 0),
    ] {
        let out = ranged(&s3, None, key, list, &[]);
        out.code(1);
        out.stderr_is(&format!(
            "s3-mget: {}: the range {named} ends past the object's end (it has {size} bytes)",
            s3.url(key)
        ));
        assert!(out.stdout.is_empty(), "{list}: wrote {}", out.stdout.len());
    }
}

#[test]
fn ranges_are_resumed_through_a_faulty_network() {
    let s3 = S3::start();
    let data = Rng::new(110).bytes(24 << 20);
    mput(&s3, "obj", &data, &["--part-size", "5M"]).ok();
    let proxy = Proxy::start(
        s3.addr,
        Faults {
            error: 0.1,
            cut_mean: 1 << 20,
            ..Faults::NONE
        },
        0xFA17,
    );
    // Long ranges (cut into 1 MiB pieces) and many small ones.
    let mut ranges = vec![100..(6 << 20) + 3];
    ranges.extend(plan(
        &mut Rng::new(111),
        (6 << 20) + 3..19 << 20,
        200,
        64 << 10,
        16 << 10,
    ));
    ranges.push((19 << 20) + 1..(24 << 20) - 1);
    let out = ranged(
        &s3,
        Some(&proxy.endpoint),
        "obj",
        &text(&ranges),
        &faulty_network_opts("1M"),
    );
    out.ok();
    assert!(out.stdout == expected(&data, &ranges), "bytes differ");
    let n = proxy.injected.load(Ordering::Relaxed);
    assert!(n >= 3, "only {n} faults were injected");
}
