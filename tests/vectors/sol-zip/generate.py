#!/usr/bin/env python3
"""Regenerate the sol-zip test vectors (run once; the results are committed and pinned).

usage: tests/vectors/sol-zip/generate.py NEW/sol-zip OLD/sol-zip

NEW is a sol-zip that writes version 2 streams (man/sol-zip.5), OLD one from before them
(version 1, kept to prove old streams still decode). Each case is a file NAME.gz with a line
in manifest.tsv:
  name  expected-status  expected-stderr-substring  expected-output-file
"""
import os, struct, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
NEW, OLD = sys.argv[1], sys.argv[2]
WORDS = b"sol rover dust image spectra camera mast drill sample cache wind".split()


def plain():
    # Compressible (small vectors), but no two members alike (so a swap changes the CRC).
    out, i = bytearray(), 0
    while len(out) < 200_000:
        out += b" ".join(WORDS) + (b" line %d\n" % i if i % 50 == 0 else b"\n")
        i += 1
    return bytes(out[:200_000])


def zip_with(tool, data):
    return subprocess.run([tool, "-b", "64K", "-p", "1"], input=data, check=True,
                          capture_output=True).stdout


def members(gz):
    """Split an Mgzip stream into its members (IG subfield = member size)."""
    out, i = [], 0
    while i < len(gz):
        assert gz[i:i + 4] == b"\x1f\x8b\x08\x04" and gz[i + 12:i + 14] == b"IG", i
        size = struct.unpack("<I", gz[i + 16:i + 20])[0]
        out.append(gz[i:i + size])
        i += size
    return out


def main():
    data = plain()
    with open(os.path.join(HERE, "plain.bin"), "wb") as f:
        f.write(data)
    v2, v1 = zip_with(NEW, data), zip_with(OLD, data)
    m = members(v2)
    start, body, end = m[0], m[1:-1], m[-1]
    assert start[4:8] == b"SZ\x02S" and end[4:8] == b"SZ\x02E" and len(body) >= 4, len(body)
    assert members(v1)[0][4:8] == b"SZ\x01S"
    end1 = members(v1)[-1]
    spliced = "members dropped, duplicated or reordered"
    cases = [
        ("ok-v2", v2, 0, "", "plain.bin"),
        ("ok-v1", v1, 0, "", "plain.bin"),
        ("dropped-member", b"".join([start, body[0], *body[2:], end]), 3, spliced, ""),
        ("duplicated-member", b"".join([start, body[0], body[1], *body[1:], end]), 3, spliced, ""),
        ("swapped-members", b"".join([start, body[1], body[0], *body[2:], end]), 3, spliced, ""),
        ("dropped-last-member", b"".join([start, *body[:-1], end]), 3, spliced, ""),
        ("no-end", b"".join([start, *body]), 3, "end marker is missing", ""),
        ("end-count-changed", b"".join([start, *body, end[:24] + struct.pack("<Q", len(body) + 1)
                                        + end[32:]]), 3, spliced, ""),
        ("two-starts", b"".join([start, start, *body, end]), 3, "second start marker", ""),
        ("v1-end-after-v2-start", b"".join([start, *body, end1]), 3,
         "does not match the start marker", ""),
        ("end-without-start", b"".join([*body, end]), 3, "end marker without a start", ""),
        ("truncated-mid-member", v2[:len(start) + len(body[0]) + 100], 3,
         "unexpected end of stream inside a member", ""),
    ]
    with open(os.path.join(HERE, "manifest.tsv"), "w") as f:
        f.write("# name\tstatus\tstderr contains\toutput\n")
        for name, gz, status, msg, out in cases:
            with open(os.path.join(HERE, name + ".gz"), "wb") as g:
                g.write(gz)
            f.write(f"{name}\t{status}\t{msg}\t{out}\n")


main()
