#!/usr/bin/env python3
"""Regenerate the sol-crypt v2 test vectors with an implementation of sol-crypt(5) written
independently of the Rust one (Python 'cryptography'); the results are committed and pinned.

usage: tests/vectors/v2/generate.py

Writes identities (SOL-SECRET-KEY-1...), a key file, plaintexts, streams NAME.sc and
manifest.tsv:
  name  credentials (comma-separated files; *.id identities, *.hex key files)
        expected-status  expected-stderr-substring  expected-plaintext-file
Streams use fixed file keys, salts and ephemeral keys, so a rerun gives the same bytes.
"""
import hashlib, hmac, os, struct, sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import serialization

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK = 1024
RAW = serialization.Encoding.Raw


def hkdf(ikm, salt, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info).derive(ikm)


# --- Bech32 (BIP 173) ---
CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def polymod(values):
    gen = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for v in values:
        top = chk >> 25
        chk = ((chk & 0x1FFFFFF) << 5) ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def bech32(hrp, data):
    acc = bits = 0
    groups = []
    for b in data:
        acc = (acc << 8) | b
        bits += 8
        while bits >= 5:
            bits -= 5
            groups.append((acc >> bits) & 31)
    if bits:
        groups.append((acc << (5 - bits)) & 31)
    exp = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    pm = polymod(exp + groups + [0] * 6) ^ 1
    check = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[g] for g in groups + check)


def fingerprint(pub):
    return hashlib.sha256(b"sol-crypt v2 recipient" + pub).digest()[:8]


def key_id(k):
    return hkdf(k, b"", b"sol-crypt v1 key id", 8)


def seal(wrap_key, file_key):
    return ChaCha20Poly1305(wrap_key).encrypt(b"\0" * 12, file_key, None)


def x25519_stanza(recipient_pub, eph_secret, file_key):
    e = X25519PrivateKey.from_private_bytes(eph_secret)
    share = e.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
    secret = e.exchange(X25519PublicKey.from_public_bytes(recipient_pub))
    assert secret != b"\0" * 32
    wk = hkdf(secret, share + recipient_pub, b"sol-crypt v2 X25519", 32)
    body = fingerprint(recipient_pub) + share + seal(wk, file_key)
    return bytes([1]) + struct.pack(">H", len(body)) + body


def key_stanza(k, salt, file_key):
    body = key_id(k) + seal(hkdf(k, salt, b"sol-crypt v2 key wrap", 32), file_key)
    return bytes([2]) + struct.pack(">H", len(body)) + body


def header(file_key, salt, stanzas, chunk=CHUNK):
    body = b"".join(stanzas)
    total = 52 + len(body) + 32
    signed = (b"SOLCRYPT" + bytes([2, 2]) + struct.pack(">II", chunk, total) + salt
              + struct.pack(">H", len(stanzas)) + body)
    mac_key = hkdf(file_key, salt, b"sol-crypt v2 header", 32)
    return signed + hmac.new(mac_key, signed, hashlib.sha256).digest()


def payload(file_key, salt, plain, chunk=CHUNK):
    aes = AESGCM(hkdf(file_key, salt, b"sol-crypt v2 payload", 32))
    out = b""
    n_full = len(plain) // chunk
    for i in range(n_full):
        nonce = struct.pack(">Q", i).rjust(11, b"\0") + b"\0"
        out += aes.encrypt(nonce, plain[i * chunk:(i + 1) * chunk], None)
    trailer = b"SOLC-END" + struct.pack(">Q", len(plain))
    nonce = struct.pack(">Q", n_full).rjust(11, b"\0") + b"\1"
    out += aes.encrypt(nonce, plain[n_full * chunk:], trailer)
    return out + trailer


def write(name, data, mode=0o644):
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def identity(name, seed):
    secret = hashlib.sha256(b"sol-crypt v2 test identity " + seed).digest()
    pub = X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes(
        RAW, serialization.PublicFormat.Raw)
    rec = bech32("sol-recipient-", pub)
    text = "# test identity %s\n# recipient: %s\n%s\n" % (name, rec, bech32("sol-secret-key-", secret).upper())
    write(name, text.encode(), 0o600)
    write(name[:-3] + ".recipient", (rec + "\n").encode())
    return pub


def main():
    site = identity("site.id", b"site")
    escrow = identity("escrow.id", b"escrow")
    identity("other.id", b"other")
    k = bytes(range(32))
    write("key256.hex", (k.hex() + "\n").encode(), 0o600)
    plain = bytes((i * 7 + i // 251) & 0xFF for i in range(2500))
    write("plain-2500.bin", plain)
    write("plain-empty.bin", b"")
    fk = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
    salt = bytes([0x5A]) * 32
    e1 = hashlib.sha256(b"ephemeral 1").digest()
    e2 = hashlib.sha256(b"ephemeral 2").digest()
    rows = []

    def case(name, data, creds, status, msg, plain_name=""):
        write(name + ".sc", data)
        rows.append("\t".join([name, creds, str(status), msg, plain_name]))

    two = header(fk, salt, [x25519_stanza(site, e1, fk), x25519_stanza(escrow, e2, fk)])
    body = payload(fk, salt, plain)
    case("ok-site-escrow", two + body, "site.id", 0, "", "plain-2500.bin")
    case("ok-site-escrow-by-escrow", two + body, "escrow.id", 0, "", "plain-2500.bin")
    case("ok-site-escrow-by-both", two + body, "other.id,escrow.id", 0, "", "plain-2500.bin")
    with_key = header(fk, salt, [key_stanza(k, salt, fk), x25519_stanza(escrow, e1, fk)])
    case("ok-key-and-escrow", with_key + body, "key256.hex", 0, "", "plain-2500.bin")
    # An unknown stanza type is skipped by identities (and covered by the MAC).
    unknown = header(fk, salt, [bytes([9, 0, 3]) + b"abc", x25519_stanza(site, e1, fk)])
    case("ok-unknown-stanza-skipped", unknown + body, "site.id", 0, "", "plain-2500.bin")
    empty = header(fk, salt, [x25519_stanza(site, e1, fk)])
    case("ok-empty", empty + payload(fk, salt, b""), "site.id", 0, "", "plain-empty.bin")
    case("no-stanza-for-identity", two + body, "other.id", 3, "no stanza in this stream for identity")
    case("v2-with-wrong-key", two + body, "key256.hex", 3, "wrong key: no stanza")

    def flip(data, at):
        b = bytearray(data)
        b[at] ^= 0x01
        return bytes(b)

    h = len(two)
    case("flipped-chunk-size", flip(two, 12) + body, "site.id", 3, "header authentication failed")
    case("flipped-salt", flip(two, 20) + body, "site.id", 3, "header authentication failed")
    case("flipped-other-stanza", flip(two, 52 + 75 + 20) + body, "site.id", 3, "header authentication failed")
    case("flipped-own-share", flip(two, 52 + 3 + 8 + 4) + body, "site.id", 3, "does not open")
    case("flipped-own-sealed-key", flip(two, 52 + 3 + 50) + body, "site.id", 3, "does not open")
    case("flipped-mac", flip(two, h - 1) + body, "site.id", 3, "header authentication failed")
    case("flipped-header-length", flip(two, 17) + body, "site.id", 3, "corrupt header")
    case("flipped-payload", two + flip(body, 10), "site.id", 3, "authentication failed at chunk 0")
    case("truncated-header", two[:120], "site.id", 3, "truncated stream: header has 120 of")
    # A header whose MAC key is another file key's (the stanzas re-sealed): a splice.
    fk2 = bytes(16)
    spliced = header(fk2, salt, [x25519_stanza(site, e1, fk2)]) + body
    case("spliced-header", spliced, "site.id", 3, "authentication failed at chunk 0")
    # A stanza body one byte short (lengths are checked before any decryption).
    st = x25519_stanza(site, e1, fk)
    short = bytes([1]) + struct.pack(">H", 71) + st[3:-1]
    case("short-stanza", header(fk, salt, [short]) + body, "site.id", 3, "has 71 bytes, not 72")
    # A low-order ephemeral share: all-zero shared secret, refused.
    low = bytes([1, 0, 72]) + fingerprint(site) + b"\0" * 32 + b"\0" * 32
    case("zero-share", header(fk, salt, [low]) + body, "site.id", 3, "all-zero shared secret")
    with open(os.path.join(HERE, "manifest.tsv"), "w") as f:
        f.write("# name\tcredentials\tstatus\tstderr contains\tplaintext\n")
        f.write("\n".join(rows) + "\n")
    # The Rust unit test's known-answer header (recipient.rs, known_answer_header).
    alice = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    kat = header(b"\x42" * 16, b"\x17" * 32,
                 [key_stanza(b"\x11" * 32, b"\x17" * 32, b"\x42" * 16), x25519_stanza(alice, bob, b"\x42" * 16)])
    print("KAT header", kat.hex())
    print("KAT payload key", hkdf(b"\x42" * 16, b"\x17" * 32, b"sol-crypt v2 payload", 32).hex())


main()
