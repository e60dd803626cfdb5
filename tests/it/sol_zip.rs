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
    if !has("pigz") {
        skip("the pigz part: no pigz(1)");
    }
}

#[test]
fn we_read_gzip_and_pigz_output_including_multi_member() {
    let data = Rng::new(3).text(1 << 20);
    let mut tools = vec!["gzip -c", "gzip -1 -c"];
    if has("pigz") {
        tools.push("pigz -c -p 2");
    } else {
        skip("the pigz part: no pigz(1)");
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
    let zip = |args: [&str; 3]| {
        let out = tool("sol-zip").args(args).stdin(data.clone()).run();
        out.stdout.clone()
    };
    let fast = zip(["-1", "-p", "1"]);
    let best = zip(["-9", "-p", "3"]);
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
        gz.len() - 55,
        gz.len() - 54,
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
        // util-linux's script gives the tool a real terminal
        skip("no script(1) to give the tools a terminal");
        return;
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
    split(gz).1.len()
}

/// A sol-zip stream as (start marker, data members, end member), from the members' `IG`
/// size fields.
fn split(gz: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let mut all = Vec::new();
    let mut at = 0;
    while at < gz.len() {
        assert_eq!(&gz[at + 12..at + 14], b"IG", "member at {at}");
        let size = u32::from_le_bytes(gz[at + 16..at + 20].try_into().unwrap()) as usize;
        all.push(gz[at..at + size].to_vec());
        at += size;
    }
    assert_eq!(at, gz.len(), "member sizes do not add up");
    let end = all.pop().unwrap();
    let start = all.remove(0);
    assert_eq!(&start[4..8], b"SZ\x02S");
    assert_eq!(&end[4..8], b"SZ\x02E");
    (start, all, end)
}

fn join(start: &[u8], body: &[&Vec<u8>], end: &[u8]) -> Vec<u8> {
    let mut v = start.to_vec();
    for m in body {
        v.extend_from_slice(m);
    }
    v.extend_from_slice(end);
    v
}

/// Issue 11, item 1: a 3 MB text in 64 KiB members with one member dropped, duplicated or
/// two swapped decoded to the wrong bytes with status 0. The end member's count, length and
/// CRC-32 catch each; gunzip still reads every stream sol-zip writes.
#[test]
fn spliced_streams_exit_3() {
    let data = Rng::new(11).text(3 << 20);
    let gz = tool("sol-zip")
        .args(["-b", "64K"])
        .stdin(data.clone())
        .run();
    gz.ok();
    let g = sh("gzip -dc").stdin(gz.stdout.clone()).run();
    g.ok();
    assert!(g.stdout == data, "gunzip reads the stream");
    let (start, body, end) = split(&gz.stdout);
    assert!(body.len() >= 40);
    let b: Vec<&Vec<u8>> = body.iter().collect();
    let n = b.len();
    let dropped = [&b[..5], &b[6..]].concat();
    let duplicated = [&b[..6], &b[5..]].concat();
    let swapped = [&b[..5], &[b[6], b[5]], &b[7..]].concat();
    let last_dropped = b[..n - 1].to_vec();
    for (what, members) in [
        ("dropped", &dropped),
        ("duplicated", &duplicated),
        ("swapped", &swapped),
        ("last dropped", &last_dropped),
    ] {
        let spliced = join(&start, members, &end);
        // Every member is still a valid gzip member: gunzip cannot tell.
        sh("gzip -dc > /dev/null").stdin(spliced.clone()).run().ok();
        let out = tool("sol-zip").arg("-d").stdin(spliced).run();
        assert_eq!(out.code, 3, "{what}: {}", out.stderr);
        out.one_line_with("sol-zip: corrupt input: members dropped, duplicated or reordered");
    }
    // Cut at a member boundary, before the end member.
    tool("sol-zip")
        .arg("-d")
        .stdin(join(&start, &b, &[]))
        .run()
        .code(3)
        .stderr_is("sol-zip: truncated input: the stream's end marker is missing");
    // Two whole streams one after the other are each checked, and pass.
    let twice = [gz.stdout.clone(), gz.stdout.clone()].concat();
    let out = tool("sol-zip").arg("-d").stdin(twice).run();
    out.ok();
    assert!(out.stdout == [data.clone(), data].concat());
}

fn vectors() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/sol-zip")
}

/// The framing of man/sol-zip.5, pinned: version 2 and version 1 (older) streams decode,
/// spliced ones fail as the manifest says. Any gzip reader reads the good ones.
#[test]
fn committed_vectors_give_their_expected_outcome() {
    let manifest = fs::read_to_string(vectors().join("manifest.tsv")).unwrap();
    let mut n = 0;
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split('\t').collect();
        let (name, status, msg, plain) = (f[0], f[1].parse::<i32>().unwrap(), f[2], f[3]);
        let input = fs::read(vectors().join(format!("{name}.gz"))).unwrap();
        let out = tool("sol-zip").arg("-d").stdin(input.clone()).run();
        assert_eq!(out.code, status, "vector {name}: {}", out.stderr);
        if status == 0 {
            let want = fs::read(vectors().join(plain)).unwrap();
            assert!(out.stdout == want, "vector {name}: output");
            assert_eq!(out.stderr, "");
            let g = sh("gzip -dc").stdin(input).run();
            g.ok();
            assert!(g.stdout == want, "vector {name}: gzip -dc");
        } else {
            out.one_line_with(msg);
        }
        n += 1;
    }
    assert!(n >= 12, "only {n} vectors");
}

/// Issue 11, item 5: the other stages' streams are named, with the stage that comes first.
#[test]
fn other_formats_are_named_with_the_stage_they_need() {
    let t = tmp();
    let k = keyfile(t.path(), "k", 256);
    let plain = Rng::new(4).text(10_000);
    let sc = seal(&k, plain.clone());
    tool("sol-zip")
        .arg("-d")
        .stdin(sc.clone())
        .run()
        .code(3)
        .stderr_is(
            "sol-zip: not in gzip format: this is a sol-crypt stream: decrypt it first with \
             sol-crypt -d",
        );
    tool("sol-zip")
        .arg("-d")
        .stdin([b"Salted__".as_slice(), &[7u8; 40]].concat())
        .run()
        .code(3)
        .stderr_is(
            "sol-zip: not in gzip format: this is an openssl enc stream: decrypt it first with \
             sol-crypt -d --openssl",
        );
    fs::write(t.path().join("f"), &plain).unwrap();
    let tar = sh(&format!("tar -cf - -C '{}' f", t.path().display())).run();
    tar.ok();
    tool("sol-zip")
        .arg("-d")
        .stdin(tar.stdout.clone())
        .run()
        .code(3)
        .stderr_is(
            "sol-zip: not in gzip format: this is a tar stream (not compressed): read it with \
             sol-tar or tar-md5",
        );
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

/// Issue 28, item 1: a block that does not compress (random bytes: an image, an archive) is
/// stored in deflate's stored blocks, not deflated, so its member is its bytes plus 5 bytes
/// per 64 KiB; a text block next to it is deflated; gzip, pigz and `sol-zip -d` read both.
#[test]
fn blocks_that_do_not_compress_are_stored() {
    let mut r = Rng::new(28);
    let mut data = r.bytes(2 << 20);
    data.extend(r.text(1 << 20));
    let gz = tool("sol-zip").stdin(data.clone()).run();
    gz.ok();
    let (_, body, _) = split(&gz.stdout);
    assert_eq!(body.len(), 3);
    let stored = 20 + (1 << 20) + 5 * 17 + 8;
    assert_eq!(body[0].len(), stored, "the random block is not stored");
    assert_eq!(body[1].len(), stored, "the random block is not stored");
    // A stored block's first deflate header: final bit clear, type 00, LEN 65535.
    assert_eq!(&body[0][20..25], &[0, 0xff, 0xff, 0, 0]);
    assert!(
        body[2].len() < (1 << 20) / 2,
        "the text block is not deflated"
    );
    let mut readers = vec!["gzip -dc"];
    if has("pigz") {
        readers.push("pigz -dc");
    }
    for reader in readers {
        let back = sh(reader).stdin(gz.stdout.clone()).run();
        back.ok();
        assert!(back.stdout == data, "{reader} differs");
    }
    let back = tool("sol-zip").arg("-d").stdin(gz.stdout.clone()).run();
    back.ok();
    assert!(back.stdout == data, "sol-zip -d differs");
    if !has("pigz") {
        skip("the pigz part: no pigz(1)");
    }
}
