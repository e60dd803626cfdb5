use std::fs;

use crate::util::*;

fn samples() -> Vec<Vec<u8>> {
    let mut r = Rng::new(7);
    let mut v = vec![Vec::new(), b"x".to_vec()];
    for n in [(128 << 10) - 1, 128 << 10, (128 << 10) + 1, 3 << 20] {
        v.push(r.text(n));
    }
    let mut mixed = r.text(2 << 20);
    mixed.extend(r.bytes(1 << 20));
    v.push(mixed);
    v
}

#[test]
fn round_trip_and_gunzip_read_our_output() {
    for data in samples() {
        let gz = tool("sol-zip")
            .stdin(data.clone())
            .feed(Feed::Trickle)
            .run();
        gz.ok();
        let back = tool("sol-zip")
            .arg("-d")
            .stdin(gz.stdout.clone())
            .feed(Feed::Trickle)
            .run();
        back.ok();
        assert!(
            back.stdout == data,
            "sol-zip -d: {} bytes differ",
            data.len()
        );
        let g = sh("gzip -dc").stdin(gz.stdout.clone()).run();
        g.ok();
        assert!(
            g.stdout == data,
            "gzip -dc differs for {} bytes",
            data.len()
        );
        if has("pigz") {
            let p = sh("pigz -dc").stdin(gz.stdout.clone()).run();
            p.ok();
            assert!(p.stdout == data, "pigz -dc differs");
        }
    }
}

#[test]
fn we_read_gzip_and_pigz_output_including_multi_member() {
    let data = Rng::new(3).text(1 << 20);
    let mut tools = vec!["gzip -c", "gzip -1 -c"];
    if has("pigz") {
        tools.push("pigz -c -p 2");
    }
    for t in tools {
        let gz = sh(t).stdin(data.clone()).run();
        gz.ok();
        let back = tool("sol-zip").arg("-d").stdin(gz.stdout.clone()).run();
        back.ok();
        assert!(back.stdout == data, "{t}");
        // Two members, and ours followed by theirs.
        let ours = tool("sol-zip").stdin(data.clone()).run().stdout.clone();
        for cat in [
            [gz.stdout.clone(), gz.stdout.clone()].concat(),
            [ours.clone(), gz.stdout.clone()].concat(),
        ] {
            let back = tool("sol-zip").arg("-d").stdin(cat).run();
            back.ok();
            assert!(
                back.stdout == [data.clone(), data.clone()].concat(),
                "{t}: concatenation"
            );
        }
    }
}

#[test]
fn levels_and_threads_change_size_not_content() {
    let data = Rng::new(5).text(2 << 20);
    let fast = tool("sol-zip")
        .args(["-1", "-p", "1"])
        .stdin(data.clone())
        .run()
        .stdout
        .clone();
    let best = tool("sol-zip")
        .args(["-9", "-p", "3"])
        .stdin(data.clone())
        .run()
        .stdout
        .clone();
    assert!(
        best.len() < fast.len(),
        "-9 ({}) not smaller than -1 ({})",
        best.len(),
        fast.len()
    );
    for gz in [fast, best] {
        assert!(tool("sol-zip").arg("-d").stdin(gz).run().stdout == data);
    }
    tool("sol-zip").arg("-0").run().code(2);
}

#[test]
fn corruption_and_truncation_exit_3() {
    let data = Rng::new(9).text(1 << 20);
    let gz = tool("sol-zip").stdin(data).run().stdout.clone();
    let mut flipped = gz.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    tool("sol-zip")
        .arg("-d")
        .stdin(flipped)
        .run()
        .code(3)
        .one_line_with("corrupt input");
    for cut in [
        10,
        40,
        gz.len() / 3,
        gz.len() - 31,
        gz.len() - 30,
        gz.len() - 1,
    ] {
        tool("sol-zip")
            .arg("-d")
            .stdin(gz[..cut].to_vec())
            .run()
            .code(3)
            .one_line_with("sol-zip: ");
    }
    tool("sol-zip")
        .arg("-d")
        .stdin(b"hello".to_vec())
        .run()
        .code(3)
        .stderr_is("sol-zip: not in gzip format");
    tool("sol-zip").arg("-d").stdin(Vec::new()).run().code(3);
    // A truncated plain gzip stream too.
    let g = sh("gzip -c")
        .stdin(Rng::new(1).text(300_000))
        .run()
        .stdout
        .clone();
    tool("sol-zip")
        .arg("-d")
        .stdin(g[..g.len() - 4].to_vec())
        .run()
        .code(3);
}

#[test]
fn closed_stdout_is_quiet_with_status_141() {
    let data = Rng::new(2).bytes(4 << 20);
    let out = tool("sol-zip").stdin(data.clone()).close_stdout().run();
    out.code(141);
    assert_eq!(out.stderr, "");
    let gz = tool("sol-zip").stdin(data).run().stdout.clone();
    let out = tool("sol-zip").arg("-d").stdin(gz).close_stdout().run();
    out.code(141);
    assert_eq!(out.stderr, "");
}

#[test]
fn missing_input_file_names_it() {
    let t = tmp();
    tool("sol-zip")
        .arg("nope.tar")
        .dir(t.path())
        .run()
        .code(1)
        .stderr_is("sol-zip: 'nope.tar': No such file or directory");
    fs::write(t.path().join("in"), b"abc").unwrap();
    let out = tool("sol-zip").arg("in").dir(t.path()).run();
    out.ok();
    assert_eq!(
        tool("sol-zip")
            .arg("-d")
            .stdin(out.stdout.clone())
            .run()
            .stdout,
        b"abc"
    );
}

#[test]
fn binary_output_to_a_terminal_is_refused() {
    if !has("script") {
        return; // util-linux's script gives the tool a real terminal
    }
    for cmd in [
        "sol-zip < /dev/null",
        "sol-crypt -e -k /nonexistent < /dev/null",
        "sol-tar create /dev/null",
    ] {
        let out = sh(&format!("script -qec '{cmd}' /dev/null")).run();
        assert_eq!(out.code, 2, "{cmd}: {}", out.stdout_str());
        assert!(
            out.stdout_str().contains("not written to a terminal"),
            "{cmd}: {}",
            out.stdout_str()
        );
    }
}

/// The number of Mgzip members between sol-zip's start and end markers.
fn members(gz: &[u8]) -> usize {
    let (marker, end) = (30, gz.len() - 30);
    let (mut at, mut n) = (marker, 0);
    while at < end {
        at += u32::from_le_bytes(gz[at + 16..at + 20].try_into().unwrap()) as usize;
        n += 1;
    }
    assert_eq!(at, end, "member sizes do not add up");
    n
}

#[test]
fn block_size_sets_the_member_size() {
    let data = Rng::new(9).text(3 << 20);
    for (block, threads, want) in [("64K", "1", 48), ("1M", "2", 3), ("8M", "2", 1)] {
        let gz = tool("sol-zip")
            .args(["-b", block, "-p", threads])
            .stdin(data.clone())
            .run();
        gz.ok();
        assert_eq!(members(&gz.stdout), want, "-b {block}");
        assert!(sh("gzip -dc").stdin(gz.stdout.clone()).run().stdout == data);
        assert!(
            tool("sol-zip")
                .arg("-d")
                .stdin(gz.stdout.clone())
                .run()
                .stdout
                == data
        );
    }
    let small = tool("sol-zip").args(["-b", "16K"]).run();
    small.code(2);
    assert!(small
        .stderr
        .contains("block size must be between 65536 and 8388608 bytes"));
    tool("sol-zip").args(["-b", "9M"]).run().code(2);
}
