#!/usr/bin/env python3
"""Writes Rekor v2 hashedrekord request fixtures signed by independent tooling.

Keys, certificates and signatures come from Python `cryptography` (ECDSA,
RSA) and PyCryptodome (Ed25519ph, which `cryptography` does not offer), never
from the Rust code under test. One JSON file per case in OUTDIR:

    {"name", "valid", "expect" (for invalid cases: "key_mismatch" or
     "digest_length"), "request" (the CreateEntryRequest), "canonical"
     (for valid cases: the entry the log must store, built here with
     json.dumps(sort_keys=True) -- RFC 8785 for these ASCII-only values)}

Usage: make_fixtures.py OUTDIR
"""
import base64
import datetime
import hashlib
import json
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, utils
from cryptography.x509.oid import NameOID

HASHES = {"SHA2_256": (hashlib.sha256, hashes.SHA256), "SHA2_384": (hashlib.sha384, hashes.SHA384),
          "SHA2_512": (hashlib.sha512, hashes.SHA512)}


def b64(data):
    return base64.b64encode(data).decode()


def ed25519ph_sign(key, artifact):
    from Crypto.Hash import SHA512
    from Crypto.PublicKey import ECC
    from Crypto.Signature import eddsa
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption())
    signer = eddsa.new(ECC.construct(curve="Ed25519", seed=seed), "rfc8032")
    return signer.sign(SHA512.new(artifact))  # a hash object: Ed25519ph


def sign(key, hash_name, artifact):
    digest_fn, hash_cls = HASHES[hash_name]
    digest = digest_fn(artifact).digest()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return digest, key.sign(digest, ec.ECDSA(utils.Prehashed(hash_cls())))
    if isinstance(key, rsa.RSAPrivateKey):
        return digest, key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hash_cls()))
    return digest, ed25519ph_sign(key, artifact)


def certificate(key):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stele fixture")])
    now = datetime.datetime.now(datetime.timezone.utc)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, algorithm).public_bytes(serialization.Encoding.DER))


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def case(name, key, key_details, hash_name, as_cert, valid=True, expect=None):
    artifact = os.urandom(64)
    digest, signature = sign(key, hash_name, artifact)
    field, raw = ("x509Certificate", certificate(key)) if as_cert else ("publicKey", spki(key))
    verifier = {field: {"rawBytes": b64(raw)}, "keyDetails": key_details}
    request = {"hashedRekordRequestV002": {"digest": b64(digest),
                                           "signature": {"content": b64(signature), "verifier": verifier}}}
    out = {"name": name, "valid": valid, "request": request}
    if valid:
        entry = {"kind": "hashedrekord", "apiVersion": "0.0.2", "spec": {"hashedRekordV002": {
            "data": {"algorithm": hash_name, "digest": b64(digest)},
            "signature": {"content": b64(signature), "verifier": verifier}}}}
        out["canonical"] = json.dumps(entry, sort_keys=True, separators=(",", ":"))
    else:
        out["expect"] = expect
    return out


def main():
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    keys = {
        "p256": (ec.generate_private_key(ec.SECP256R1()), "PKIX_ECDSA_P256_SHA_256", "SHA2_256"),
        "p384": (ec.generate_private_key(ec.SECP384R1()), "PKIX_ECDSA_P384_SHA_384", "SHA2_384"),
        "p521": (ec.generate_private_key(ec.SECP521R1()), "PKIX_ECDSA_P521_SHA_512", "SHA2_512"),
        "rsa2048": (rsa.generate_private_key(65537, 2048), "PKIX_RSA_PKCS1V15_2048_SHA256", "SHA2_256"),
        "rsa3072": (rsa.generate_private_key(65537, 3072), "PKIX_RSA_PKCS1V15_3072_SHA256", "SHA2_256"),
        "rsa4096": (rsa.generate_private_key(65537, 4096), "PKIX_RSA_PKCS1V15_4096_SHA256", "SHA2_256"),
        "ed25519ph": (ed25519.Ed25519PrivateKey.generate(), "PKIX_ED25519_PH", "SHA2_512"),
    }
    cases = []
    for name, (key, details, hash_name) in keys.items():
        cases.append(case(f"{name}-key", key, details, hash_name, False))
        cases.append(case(f"{name}-cert", key, details, hash_name, True))
    p256, _, _ = keys["p256"]
    p384, _, _ = keys["p384"]
    rsa3072, _, _ = keys["rsa3072"]
    # Validly signed, but the digest is not SHA-256 long.
    cases.append(case("p256-digest-sha384", p256, "PKIX_ECDSA_P256_SHA_256", "SHA2_384", False,
                      valid=False, expect="digest_length"))
    # Validly signed with a key that keyDetails does not name.
    cases.append(case("p384-key-as-p256", p384, "PKIX_ECDSA_P256_SHA_256", "SHA2_256", False,
                      valid=False, expect="key_mismatch"))
    cases.append(case("rsa3072-key-as-2048", rsa3072, "PKIX_RSA_PKCS1V15_2048_SHA256", "SHA2_256", False,
                      valid=False, expect="key_mismatch"))
    for item in cases:
        with open(os.path.join(outdir, item["name"] + ".json"), "w") as f:
            json.dump(item, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
