#!/usr/bin/env python3
"""Checks a checkpoint signed with an ECDSA P-256 log key, independently of
stele: Python `cryptography` verifies the signature, and the key ID is worked
out here from the public key.

The rules, as Rekor v2 (sigstore/rekor-tiles, pkg/note/note.go) signs its
checkpoints and c2sp.org/signed-note describes them for ECDSA keys:

- the note is the checkpoint text (origin, size, base64 root hash, each on a
  line ending in a newline), a blank line, then signature lines
  `\u2014 <key name> <base64(4-byte key ID || signature)>`;
- the key name is the origin;
- key ID = SHA-256(DER SubjectPublicKeyInfo)[:4], and the log ID that a
  Sigstore TransparencyLogEntry names the log by is the whole hash;
- the signature is ASN.1 DER ECDSA over SHA-256 of the note text, final
  newline included.

Usage: check_ecdsa_checkpoint.py CHECKPOINT PUBLIC_KEY_PEM ORIGIN [LOG_ID_BASE64]

Exits 0 and prints the size if every check passes, 1 with the reason if not.
"""

import base64
import hashlib
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

EM_DASH = "\u2014"


def fail(reason):
    print(f"check_ecdsa_checkpoint: {reason}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) not in (4, 5):
        fail("usage: CHECKPOINT PUBLIC_KEY_PEM ORIGIN [LOG_ID_BASE64]")
    with open(sys.argv[1], "rb") as file:
        note = file.read().decode("utf-8")
    with open(sys.argv[2], "rb") as file:
        public_key = serialization.load_pem_public_key(file.read())
    origin = sys.argv[3]
    expected_log_id = sys.argv[4] if len(sys.argv) == 5 else None

    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        fail(f"the public key is not ECDSA P-256: {public_key!r}")
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    log_id = hashlib.sha256(spki).digest()
    key_id = log_id[:4]
    if expected_log_id is not None and base64.b64decode(expected_log_id) != log_id:
        fail(
            f"log ID {expected_log_id} is not SHA-256(DER SPKI) = "
            f"{base64.b64encode(log_id).decode()}"
        )

    text, separator, signature_block = note.partition("\n\n")
    if not separator:
        fail("no blank line between the text and the signatures")
    text += "\n"
    lines = text.split("\n")
    if lines[0] != origin:
        fail(f"origin line {lines[0]!r}, expected {origin!r}")
    size = int(lines[1])
    if len(base64.b64decode(lines[2], validate=True)) != 32:
        fail(f"root hash line {lines[2]!r} is not 32 bytes")

    ours = []
    for line in signature_block.split("\n"):
        if not line:
            continue
        dash, name, encoded = line.split(" ")
        if dash != EM_DASH:
            fail(f"signature line {line!r} does not start with an em dash")
        raw = base64.b64decode(encoded, validate=True)
        if name == origin and raw[:4] == key_id:
            ours.append(raw[4:])
    if len(ours) != 1:
        fail(
            f"expected one signature by {origin} with key ID {key_id.hex()}, found "
            f"{len(ours)} in:\n{signature_block}"
        )
    signature = ours[0]
    try:
        public_key.verify(signature, text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        fail("the ECDSA signature does not verify over the note text")
    # The same signature must not verify over other text: this check can fail.
    other = text.replace(f"\n{size}\n", f"\n{size + 1}\n", 1)
    try:
        public_key.verify(signature, other.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        fail("the signature also verifies over a changed text")
    except InvalidSignature:
        pass
    print(f"ok: {origin} size {size} key ID {key_id.hex()}")


if __name__ == "__main__":
    main()
