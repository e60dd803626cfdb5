//! The restore index (issue 15), stage by stage: each stage's side file describes its real
//! stream (checked with gzip), and `sol-crypt -d --chunks` opens any run of chunks and
//! nothing else.

use std::fs;
use std::path::Path;

use crate::recipients::identity;
use crate::util::*;

/// `sol-crypt -e ARGS --index FILE` of `data`: the stream and the index's crypt line fields.
fn seal_indexed(args: &[&str], dir: &Path, data: &[u8]) -> (Vec<u8>, Vec<u64>) {
    let idx = dir.join("crypt.idx");
    let out = tool("sol-crypt")
        .args(args)
        .arg("--index")
        .arg(&idx)
        .stdin(data.to_vec())
        .run();
    out.ok();
    let text = fs::read_to_string(&idx).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sol-crypt-index 1"));
    let f: Vec<u64> = lines
        .next()
        .unwrap()
        .split('\t')
        .skip(1)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(lines.next(), None, "{text}");
    (out.stdout.clone(), f)
}

/// The bytes `sol-crypt -d --chunks FIRST-LAST` reads: the header, then those chunks.
fn chunk_input(stream: &[u8], header: usize, chunk: usize, runs: &[(usize, usize)]) -> Vec<u8> {
    let mut v = stream[..header].to_vec();
    for &(a, b) in runs {
        let start = header + a * (chunk + 16);
        let end = (header + (b + 1) * (chunk + 16)).min(stream.len());
        // The stream's last chunk runs to the end, its trailer included.
        let end = if end + 32 > stream.len() {
            stream.len()
        } else {
            end
        };
        v.extend_from_slice(&stream[start..end]);
    }
    v
}

fn list(runs: &[(usize, usize)]) -> String {
    runs.iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[test]
fn any_run_of_chunks_opens_to_its_plaintext_v1_and_v2() {
    let t = tmp();
    let key = keyfile(t.path(), "k", 256);
    let (id, recipient) = identity(t.path(), "id");
    let c = 1024usize;
    // Lengths: a last chunk of a few bytes, an empty last chunk, and one of C-16 bytes, whose
    // sealed bytes and trailer are exactly as long as a whole chunk.
    for len in [10 * c + 7, 10 * c, 10 * c + c - 16] {
        let data = Rng::new(len as u64).bytes(len);
        for (v, enc, dec) in [
            (
                1u64,
                vec!["-e", "-k", key.to_str().unwrap()],
                vec!["-d", "-k", key.to_str().unwrap()],
            ),
            (
                2,
                vec!["-e", "-r", recipient.as_str()],
                vec!["-d", "-i", id.to_str().unwrap()],
            ),
        ] {
            let mut args = enc.clone();
            args.extend(["--chunk-size", "1K"]);
            let (stream, f) = seal_indexed(&args, t.path(), &data);
            let header = f[1] as usize;
            assert_eq!(f[0], v);
            assert_eq!(f[2..], [c as u64, len as u64, stream.len() as u64]);
            let last = len / c;
            for runs in [
                vec![(0, 0)],
                vec![(3, 5)],
                vec![(1, 1), (4, 6), (9, last)],
                vec![(last, last)],
                vec![(0, last)],
            ] {
                let out = tool("sol-crypt")
                    .args(&dec)
                    .args(["--chunks", &list(&runs)])
                    .stdin(chunk_input(&stream, header, c, &runs))
                    .run();
                out.ok();
                let want: Vec<u8> = runs
                    .iter()
                    .flat_map(|&(a, b)| data[a * c..((b + 1) * c).min(len)].to_vec())
                    .collect();
                assert!(out.stdout == want, "v{v} len {len} runs {runs:?}");
            }
        }
    }
}

#[test]
fn chunks_out_of_place_cut_or_followed_by_more_are_refused() {
    let t = tmp();
    let key = keyfile(t.path(), "k", 256);
    let c = 1024usize;
    let data = Rng::new(7).bytes(8 * c + 100);
    let (stream, f) = seal_indexed(
        &["-e", "-k", key.to_str().unwrap(), "--chunk-size", "1K"],
        t.path(),
        &data,
    );
    let header = f[1] as usize;
    let d = |chunks: &str, input: Vec<u8>| {
        tool("sol-crypt")
            .args(["-d", "-k", key.to_str().unwrap(), "--chunks", chunks])
            .stdin(input)
            .run()
    };
    // Chunk 3's bytes given as chunk 4: its number is in its nonce.
    d("4-4", chunk_input(&stream, header, c, &[(3, 3)]))
        .code(3)
        .one_line_with("authentication failed at chunk 4");
    // Two chunks swapped.
    let mut swapped = chunk_input(&stream, header, c, &[(2, 2)]);
    swapped.extend_from_slice(&chunk_input(&stream, header, c, &[(1, 1)])[header..]);
    d("1-2", swapped)
        .code(3)
        .one_line_with("authentication failed at chunk 1");
    // Cut inside the last chunk named; more input than named.
    let mut cut = chunk_input(&stream, header, c, &[(2, 4)]);
    cut.truncate(cut.len() - 10);
    d("2-4", cut).code(3);
    d("2-3", chunk_input(&stream, header, c, &[(2, 4)]))
        .code(3)
        .one_line_with("the input goes on after chunk 3");
    // The stream's own last chunk, with more named after it.
    d("8-9", chunk_input(&stream, header, c, &[(8, 8)]))
        .code(3)
        .one_line_with("chunk 8 is the stream's last, but --chunks names more");
    // A changed header, and a chunk from another stream sealed with the same key.
    let mut bad = chunk_input(&stream, header, c, &[(1, 1)]);
    bad[20] ^= 1;
    d("1-1", bad).code(3).one_line_with("header");
    let (other, _) = seal_indexed(
        &["-e", "-k", key.to_str().unwrap(), "--chunk-size", "1K"],
        t.path(),
        &data,
    );
    let mut mixed = stream[..header].to_vec();
    mixed.extend_from_slice(&chunk_input(&other, header, c, &[(1, 1)])[header..]);
    d("1-1", mixed)
        .code(3)
        .one_line_with("authentication failed at chunk 1");
    // Malformed lists are usage errors; --chunks does not go with -e, nor --index with -d.
    for bad in ["", "3", "5-2", "1-2,2-3", "a-b"] {
        d(bad, stream.clone()).code(2);
    }
    tool("sol-crypt")
        .args(["-e", "-k", key.to_str().unwrap(), "--chunks", "0-1"])
        .stdin(data.clone())
        .run()
        .code(2);
    tool("sol-crypt")
        .args(["-d", "-k", key.to_str().unwrap(), "--index"])
        .arg(t.path().join("x"))
        .stdin(stream.clone())
        .run()
        .code(2);
}

#[test]
fn sol_zip_index_names_each_member_which_gzip_reads_alone() {
    let t = tmp();
    let mut rng = Rng::new(3);
    let mut data = rng.text(700_000);
    data.extend(rng.bytes(500_000));
    let idx = t.path().join("zip.idx");
    let out = tool("sol-zip")
        .args(["--block-size", "128K", "--index"])
        .arg(&idx)
        .stdin(data.clone())
        .run();
    out.ok();
    let gz = out.stdout.clone();
    let text = fs::read_to_string(&idx).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sol-zip-index 1"));
    let (mut u, mut members, mut end) = (0usize, 0, false);
    for line in lines.by_ref() {
        let f: Vec<&str> = line.split('\t').collect();
        if f[0] == "zip-end" {
            assert_eq!(f[1..], [data.len().to_string(), gz.len().to_string()]);
            end = true;
            break;
        }
        let n: Vec<usize> = f[1..].iter().map(|x| x.parse().unwrap()).collect();
        assert_eq!((f[0], n[0]), ("z", u), "{line}");
        // The member alone is a gzip stream of exactly its share of the input.
        let member = &gz[n[2]..n[2] + n[3]];
        let back = sh("gzip -dc").stdin(member.to_vec()).run();
        back.ok();
        assert!(back.stdout == data[n[0]..n[0] + n[1]], "{line}");
        u += n[1];
        members += 1;
    }
    assert!(end, "no zip-end line");
    assert_eq!(lines.next(), None);
    assert_eq!(u, data.len());
    assert_eq!(members, data.len().div_ceil(128 << 10));
    // An index file that cannot be made fails before any output.
    tool("sol-zip")
        .args(["--index", "/nonexistent/dir/zip.idx"])
        .stdin(data.clone())
        .run()
        .code(1)
        .one_line_with("index file '/nonexistent/dir/zip.idx'");
}
