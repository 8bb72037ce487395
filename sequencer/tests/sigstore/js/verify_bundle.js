#!/usr/bin/env node
// sigstore-js (@sigstore/verify, the verifier of the `sigstore` npm package)
// checks a Sigstore bundle v0.3 that `stele sign --sigstore` wrote: the
// bundle parses, the Rekor v2 entry's checkpoint is signed by the log's key
// (a trusted root built here from the log's key alone), its inclusion proof
// leads to that checkpoint, the entry's body is this signature over this
// artifact, and the signature verifies with the maintainer's public key,
// found by the bundle's key hint (as sigstore-js's `keySelector` does).
//
// Usage: node verify_bundle.js BUNDLE ARTIFACT MAINTAINER_PUB_PEM LOG_VKEY_FILE
// Prints "verified by sigstore-js @sigstore/verify <version>" and exits 0,
// or prints the verification error and exits 1.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const [bundlePath, artifactPath, maintainerPath, vkeyPath] = process.argv.slice(2);
if (!vkeyPath) {
  console.error('usage: verify_bundle.js BUNDLE ARTIFACT MAINTAINER_PUB_PEM LOG_VKEY_FILE');
  process.exit(2);
}

// The log's Ed25519 note verifier key, `name+keyid+base64(0x01 || key)`, as
// a Sigstore trusted root names a Rekor v2 log: its SPKI, and its log ID,
// SHA-256(name || "\n" || 0x01 || key), whose first four bytes are the
// checkpoint signature's key hint. sigstore-js also matches the signature's
// name against the log's base URL, so the URL carries the origin.
function trustedRoot(vkeyText) {
  // The name holds no '+'; the base64 may.
  const [name, keyIdHex, ...rest] = vkeyText.trim().split('+');
  const encoded = rest.join('+');
  const raw = Buffer.from(encoded, 'base64');
  if (raw.length !== 33 || raw[0] !== 0x01) {
    throw new Error(`not an Ed25519 note verifier key: ${vkeyText}`);
  }
  const publicKey = raw.subarray(1);
  const spki = crypto
    .createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') }, format: 'jwk' })
    .export({ type: 'spki', format: 'der' });
  const logId = crypto
    .createHash('sha256')
    .update(Buffer.concat([Buffer.from(name), Buffer.from([0x0a, 0x01]), publicKey]))
    .digest();
  if (logId.subarray(0, 4).toString('hex') !== keyIdHex) {
    throw new Error(`key ID ${keyIdHex} does not match the key ${vkeyText}`);
  }
  return TrustedRoot.fromJSON({
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: `https://${name}`,
        hashAlgorithm: 'SHA2_256',
        publicKey: {
          rawBytes: spki.toString('base64'),
          keyDetails: 'PKIX_ED25519',
          validFor: { start: '2020-01-01T00:00:00Z' },
        },
        logId: { keyId: logId.toString('base64') },
      },
    ],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
}

function main() {
  const bundleJSON = JSON.parse(fs.readFileSync(bundlePath, 'utf8'));
  const artifact = fs.readFileSync(artifactPath);
  const maintainer = crypto.createPublicKey(fs.readFileSync(maintainerPath));
  const maintainerHint = crypto
    .createHash('sha256')
    .update(maintainer.export({ type: 'spki', format: 'der' }))
    .digest('hex');
  // What sigstore-js's keySelector option builds: the key for a hint.
  const keyFinder = (hint) => {
    if (hint !== maintainerHint) {
      throw new Error(`the bundle names key ${hint}, not the maintainer's ${maintainerHint}`);
    }
    return { publicKey: maintainer, validFor: () => true };
  };
  const trustMaterial = toTrustMaterial(trustedRoot(fs.readFileSync(vkeyPath, 'utf8')), keyFinder);
  // A Rekor v2 entry carries no signed timestamp (no inclusion promise),
  // and a key-signed bundle has no certificate to check a time against.
  const verifier = new Verifier(trustMaterial, {
    tlogThreshold: 1,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  const bundle = bundleFromJSON(bundleJSON);
  verifier.verify(toSignedEntity(bundle, artifact));
  const version = require('@sigstore/verify/package.json').version;
  console.log(`verified by sigstore-js @sigstore/verify ${version}`);
}

try {
  main();
} catch (err) {
  console.error(`sigstore-js verification failed: ${err.code ? `${err.code}: ` : ''}${err.message}`);
  process.exit(1);
}
