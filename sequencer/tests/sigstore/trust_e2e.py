#!/usr/bin/env python3
"""sigstore-python against the trust material `stele trust` wrote for a
running `stele serve` with several shards.

Everything the client trusts comes from `stele trust`'s folder, merged the
way a deployment merges it into its own material:

- `signing_config.json`, with a CA service added (a signing config without
  one is refused), is loaded by sigstore-python's `SigningConfig.from_file`,
  which must select one of the shards as its Rekor v2 log; each shard's
  entries are then submitted with `RekorV2Client` to the URL its service
  names (`URL/api/v2/log/entries`);
- `trusted_root.json`, with this test's signing certificate added as a
  certificate authority, is loaded by `TrustedRoot.from_file`; each tlog
  must describe its shard's key as the shard's `<name>.vkey` gives it,
  worked out here independently (sigstore_python_e2e.LogKey: DER SPKI,
  rekor-tiles' log ID, the checkpoint key ID = its first four bytes).

For each shard, sigstore-python's own checks (sigstore_python_e2e.
check_entry: `TransparencyLogEntry._verify` with the trusted root's Rekor
keyring, and the entry body against the signed artifact) must accept its
entries with the whole trusted root and with the shard's tlog alone, and
refuse them with a trusted root holding only the other shards' tlogs.

With --bundles DIR it also writes, per shard, a key-signed Sigstore bundle
v0.3 (`<name>.bundle.json`, its artifact `<name>.artifact` and public key
`<name>.pub.pem`) and the one-shard trusted roots (`<name>.own.json`,
`<name>.others.json`), for sigstore-js to check.

Usage: trust_e2e.py --trust DIR [--entries N] [--bundles DIR]
Exits 0 when every check passes (and every refusal happens), 1 otherwise.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sigstore  # noqa: E402
import sigstore_python_e2e as e2e  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from sigstore._internal.rekor import EntryRequestBody  # noqa: E402
from sigstore._internal.rekor.client_v2 import RekorV2Client  # noqa: E402
from sigstore._internal.trust import KeyringPurpose  # noqa: E402
from sigstore._utils import sha256_digest  # noqa: E402
from sigstore.errors import VerificationError  # noqa: E402
from sigstore.models import SigningConfig, TrustedRoot  # noqa: E402
from sigstore_models.common import v1 as common_v1  # noqa: E402
from sigstore_models.rekor import v2 as rekor_v2  # noqa: E402

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def b64(data):
    return base64.b64encode(data).decode()


def load(path):
    with open(path) as file:
        return json.load(file)


def dump(document, path):
    with open(path, "w") as file:
        json.dump(document, file, indent=1)
    return path


def certificate_authority(certificate):
    """This test's signing certificate as a trusted root's CA entry: the
    material a deployment's own trusted root holds beside the logs."""
    return {
        "subject": {"organization": "stele test", "commonName": "stele sigstore-python test"},
        "uri": "https://ca.invalid",
        "certChain": {
            "certificates": [
                {"rawBytes": b64(certificate.public_bytes(serialization.Encoding.DER))}
            ]
        },
        "validFor": {"start": "2020-01-01T00:00:00Z"},
    }


def trusted_root(root, tlogs, certificate, path):
    """`root` with only `tlogs`, merged with the test's CA, as
    sigstore-python loads a custom trusted root."""
    document = dict(root)
    document["tlogs"] = tlogs
    document["certificateAuthorities"] = [certificate_authority(certificate)]
    return TrustedRoot.from_file(dump(document, path))


def check_tlog(tlog, shard, log_key):
    """The tlog `stele trust` wrote against the key worked out here from
    the shard's verifier key."""
    expected = {
        "baseUrl": shard["url"],
        "hashAlgorithm": "SHA2_256",
        "rawBytes": b64(log_key.spki),
        "keyDetails": log_key.key_details,
        "logId": b64(log_key.log_id),
        "checkpointKeyId": b64(log_key.log_id[:4]),
    }
    found = {
        "baseUrl": tlog["baseUrl"],
        "hashAlgorithm": tlog["hashAlgorithm"],
        "rawBytes": tlog["publicKey"]["rawBytes"],
        "keyDetails": tlog["publicKey"]["keyDetails"],
        "logId": tlog["logId"]["keyId"],
        "checkpointKeyId": tlog["checkpointKeyId"]["keyId"],
    }
    if found != expected:
        raise SystemExit(f"shard {shard['name']}: tlog {found} is not {expected}")
    if shard["origin"] not in tlog["baseUrl"]:
        raise SystemExit(f"shard {shard['name']}: baseUrl without its origin")
    valid_for = tlog["publicKey"]["validFor"]
    if shard["accept_from"] is not None and valid_for["start"] != shard["accept_from"]:
        raise SystemExit(f"shard {shard['name']}: validFor {valid_for} is not its window")


def public_key_entry(client, signing_key, workdir, name):
    """Logs an artifact signed by a bare public key (no certificate) and
    writes the key-signed bundle sigstore-js checks. Returns the entry."""
    artifact = os.urandom(16) + f" artifact for sigstore-js, shard {name}".encode()
    hashed = sha256_digest(artifact)
    signature = signing_key.sign(hashed.digest, ec.ECDSA(hashed._as_prehashed()))
    spki = signing_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    request = rekor_v2.entry.CreateEntryRequest(
        hashed_rekord_request_v002=rekor_v2.hashedrekord.HashedRekordRequestV002(
            digest=base64.b64encode(hashed.digest),
            signature=rekor_v2.verifier.Signature(
                content=base64.b64encode(signature),
                verifier=rekor_v2.verifier.Verifier(
                    public_key=rekor_v2.verifier.PublicKey(raw_bytes=base64.b64encode(spki)),
                    key_details=common_v1.PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
                ),
            ),
        )
    )
    entry = client.create_entry(EntryRequestBody(request.to_dict()))
    if workdir is not None:
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "publicKey": {"hint": hashlib.sha256(spki).hexdigest()},
                "tlogEntries": [entry._inner.to_dict()],
            },
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(hashed.digest)},
                "signature": b64(signature),
            },
        }
        dump(bundle, os.path.join(workdir, f"{name}.bundle.json"))
        with open(os.path.join(workdir, f"{name}.artifact"), "wb") as file:
            file.write(artifact)
        with open(os.path.join(workdir, f"{name}.pub.pem"), "wb") as file:
            file.write(
                signing_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
    return entry


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trust", required=True, help="the folder `stele trust` wrote")
    parser.add_argument("--entries", type=int, default=2)
    parser.add_argument("--bundles", help="where to write bundles for sigstore-js")
    args = parser.parse_args()

    print(f"sigstore-python {sigstore.__version__}")
    shards = load(os.path.join(args.trust, "shards.json"))["shards"]
    root = load(os.path.join(args.trust, "trusted_root.json"))
    signing = load(os.path.join(args.trust, "signing_config.json"))
    if len(shards) < 2:
        raise SystemExit("this check needs two shards or more")
    workdir = tempfile.mkdtemp(prefix="stele-trust-e2e-")
    signing_key, certificate = e2e.signing_identity()

    # The signing config as a client takes it: with a CA beside the logs.
    merged = dict(signing)
    merged["caUrls"] = [
        {
            "url": "https://ca.invalid",
            "majorApiVersion": 1,
            "validFor": {"start": "2020-01-01T00:00:00Z"},
            "operator": "ca.invalid",
        }
    ]
    config = SigningConfig.from_file(dump(merged, os.path.join(workdir, "signing_config.json")))
    chosen = [tlog.url for tlog in config.get_tlogs()]
    services = {service["url"]: service for service in signing["rekorTlogUrls"]}
    if len(chosen) != 1 or chosen[0].removesuffix("/api/v2") not in services:
        raise SystemExit(f"sigstore-python chose {chosen} from {sorted(services)}")
    print(f"sigstore-python's signing config chose {chosen[0]} (Rekor v2)")

    tlogs = {tlog["baseUrl"]: tlog for tlog in root["tlogs"]}
    whole = trusted_root(root, root["tlogs"], certificate, os.path.join(workdir, "all.json"))
    for shard in shards:
        name = shard["name"]
        with open(os.path.join(args.trust, f"{name}.vkey")) as file:
            vkey = file.read()
        if vkey.strip() != shard["vkey"].strip():
            raise SystemExit(f"shard {name}: {name}.vkey is not shards.json's vkey")
        log_key = e2e.LogKey(vkey, shard["origin"])
        tlog = tlogs[shard["url"]]
        check_tlog(tlog, shard, log_key)
        service = services[shard["url"]]
        if service["majorApiVersion"] != 2 or service["operator"] != signing["rekorTlogUrls"][0]["operator"]:
            raise SystemExit(f"shard {name}: service {service}")

        own = trusted_root(root, [tlog], certificate, os.path.join(workdir, f"{name}.own.json"))
        others_tlogs = [other for other in root["tlogs"] if other is not tlog]
        others = trusted_root(
            root, others_tlogs, certificate, os.path.join(workdir, f"{name}.others.json")
        )
        if args.bundles:
            dump(dict(root, tlogs=[tlog]), os.path.join(args.bundles, f"{name}.own.json"))
            dump(dict(root, tlogs=others_tlogs), os.path.join(args.bundles, f"{name}.others.json"))

        client = RekorV2Client(service["url"])
        for number in range(args.entries):
            artifact = os.urandom(16) + f" artifact {number} of shard {name}".encode()
            hashed = sha256_digest(artifact)
            signature = signing_key.sign(hashed.digest, ec.ECDSA(hashed._as_prehashed()))
            request = RekorV2Client._build_hashed_rekord_request(
                hashed_input=hashed, signature=signature, certificate=certificate
            )
            entry = client.create_entry(request)
            content = (artifact, signature)
            e2e.check_entry(entry, content, certificate, whole, log_key)
            e2e.check_entry(entry, content, certificate, own, log_key)
            e2e.expect_refused(
                f"shard {name}'s entry with only the other shards' tlogs",
                lambda: e2e.check_entry(entry, content, certificate, others, log_key),
            )
            proof = entry._inner.inclusion_proof
            print(
                f"verified by sigstore-python: shard {name}, index {entry._inner.log_index} in "
                f"tree of {proof.tree_size}, log ID {b64(entry._inner.log_id.key_id)}"
            )

        entry = public_key_entry(client, signing_key, args.bundles, name)
        entry._verify(whole.rekor_keyring(KeyringPurpose.VERIFY))
        e2e.expect_refused(
            f"shard {name}'s key-signed entry with only the other shards' tlogs",
            lambda: entry._verify(others.rekor_keyring(KeyringPurpose.VERIFY)),
        )
        print(f"verified by sigstore-python: shard {name}, a key-signed entry")
    print(f"all {len(shards)} shards checked")


if __name__ == "__main__":
    try:
        main()
    except VerificationError as error:
        print(f"sigstore-python verification failed: {error}", file=sys.stderr)
        sys.exit(1)
