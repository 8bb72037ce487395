#!/usr/bin/env python3
"""Writes the seeds of the note_ecdsa fuzz target into note_ecdsa/, signed by
Python's `cryptography` (an implementation independent of the p256 crate the
target tests): DER signatures over the target's MESSAGE, their mirrors (S
replaced by n - S), the key's SubjectPublicKeyInfo, and a signed note.

Usage: python3 fuzz/seeds/note_ecdsa.py
"""

import base64
import hashlib
import os

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

MESSAGE = b"fuzz.example/ecdsa\n1\nKgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
NAME = "fuzz.example/ecdsa"
KEY = b"""-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOMZNOBbRU3CHBjZoc13R8HYNUoqsvce5UlOmRzlOZqUoAoGCCqGSM49
AwEHoUQDQgAEeLw7gX40qy1z7JUhGMAaaDITbV7p2D+C5G9xPEsy/PVAo9H0mgS4
NYzpGirkXxBht+IvvL19WR1X9ANXha5ldQ==
-----END EC PRIVATE KEY-----
"""
# The order of the P-256 group.
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "note_ecdsa")
    key = serialization.load_pem_private_key(KEY, password=None)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    seeds = {"spki": spki}
    for i in range(3):
        der = key.sign(MESSAGE, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        seeds[f"signature-{i}"] = der
        seeds[f"signature-{i}-mirror"] = encode_dss_signature(r, N - s)
    key_id = hashlib.sha256(spki).digest()[:4]
    line = base64.b64encode(key_id + seeds["signature-0"]).decode()
    seeds["note"] = MESSAGE + f"\n\u2014 {NAME} {line}\n".encode()
    for name, data in seeds.items():
        with open(os.path.join(here, name), "wb") as out:
            out.write(data)


if __name__ == "__main__":
    main()
