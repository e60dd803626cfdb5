#!/usr/bin/env python3
"""Regenerate the sol-crypt test vectors (run once; the results are committed and pinned).

usage: tests/vectors/generate.py PATH/TO/sol-crypt

Each case is a file NAME.sc with a line in manifest.tsv:
  name  key-file  expected-status  expected-stderr-substring  expected-plaintext-file
Positive cases decrypt to the plaintext; negative cases must fail with status 3, the given
message, and no output.
"""
import os, subprocess, sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = sys.argv[1]
CHUNK = 1024
TAG = 16
HEADER = 86
TRAILER = 16


def key(name, hexkey):
    path = os.path.join(HERE, name)
    with open(path, "w") as f:
        f.write(hexkey + "\n")
    os.chmod(path, 0o600)
    return name


def enc(keyname, plain):
    p = os.path.join(HERE, keyname)
    return subprocess.run([TOOL, "-e", "-k", p, "--chunk-size", str(CHUNK)], input=plain,
                          check=True, capture_output=True).stdout


def chunks(sc):
    body = sc[HEADER:len(sc) - TRAILER]
    out, i = [], 0
    while i < len(body):
        out.append(body[i:i + CHUNK + TAG])
        i += CHUNK + TAG
    return sc[:HEADER], out, sc[len(sc) - TRAILER:]


k256 = key("key256.hex", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
k128 = key("key128.hex", "f0e0d0c0b0a090807060504030201000")
other = key("other256.hex", "ff" * 32)

plains = {
    "plain-empty.bin": b"",
    "plain-2500.bin": bytes((i * 7 + 3) % 251 for i in range(2500)),
    "plain-2048.bin": bytes((i * 13) % 256 for i in range(2048)),
}
for name, data in plains.items():
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)

cases = []


def case(name, data, keyname, status, msg, plain):
    with open(os.path.join(HERE, name + ".sc"), "wb") as f:
        f.write(data)
    cases.append((name, keyname, str(status), msg, plain))


p2500 = plains["plain-2500.bin"]
good = enc(k256, p2500)
case("ok-multi-chunk", good, k256, 0, "", "plain-2500.bin")
case("ok-empty", enc(k256, b""), k256, 0, "", "plain-empty.bin")
case("ok-exact-multiple", enc(k256, plains["plain-2048.bin"]), k256, 0, "", "plain-2048.bin")
case("ok-aes128", enc(k128, p2500), k128, 0, "", "plain-2500.bin")

h, cs, tr = chunks(good)
assert len(cs) == 3, len(cs)
flip = bytearray(good); flip[HEADER + 100] ^= 1
case("flipped-bit-chunk", bytes(flip), k256, 3, "authentication failed at chunk 0", "")
flip = bytearray(good); flip[20] ^= 1
case("flipped-bit-header-salt", bytes(flip), k256, 3, "header authentication failed", "")
flip = bytearray(good); flip[-20] ^= 1
case("flipped-bit-final-tag", bytes(flip), k256, 3, "authentication failed at chunk 2", "")
flip = bytearray(good); flip[-1] ^= 1
case("flipped-bit-trailer", bytes(flip), k256, 3, "authentication failed at chunk 2", "")
case("truncated-mid-chunk", good[:HEADER + 700], k256, 3, "no end trailer", "")
case("truncated-header", good[:40], k256, 3, "truncated stream: header has 40 of 86 bytes", "")
case("no-final-chunk", h + cs[0] + cs[1], k256, 3, "truncated", "")
case("no-trailer", h + b"".join(cs), k256, 3, "truncated", "")
case("two-final-chunks", h + b"".join(cs) + cs[2] + tr, k256, 3, "authentication failed", "")
case("appended-chunk", good + cs[0], k256, 3, "authentication failed at chunk 2", "")
case("trailing-garbage", good + b"garbage", k256, 3, "no end trailer", "")
case("reordered-chunks", h + cs[1] + cs[0] + cs[2] + tr, k256, 3, "authentication failed at chunk 0", "")
case("wrong-key", good, other, 3, "wrong key: the stream was encrypted with key id", "")
case("not-sol-crypt", b"hello, this is not encrypted at all, not even a little bit." * 3, k256, 3,
     "not a sol-crypt stream (bad magic)", "")

with open(os.path.join(HERE, "manifest.tsv"), "w") as f:
    f.write("# name\tkey\tstatus\tstderr contains\tplaintext\n")
    for c in cases:
        f.write("\t".join(c) + "\n")
print(f"{len(cases)} vectors written")
