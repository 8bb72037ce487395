#!/usr/bin/env node
// sigstore-js (@sigstore/verify) checks a key-signed Sigstore bundle v0.3
// whose Rekor v2 entry a shard of `stele serve` logged, against a trusted
// root FILE as `stele trust` writes it (trusted_root.json, or a part of
// it): the checkpoint must be signed by a tlog of that root whose key ID
// is the signature's and whose baseUrl holds the signature's key name (the
// shard's origin), the inclusion proof must lead to it, and the entry's
// body must be this signature over this artifact by this public key (found
// by the bundle's key hint, as sigstore-js's `keySelector` does).
//
// Usage: node verify_with_trusted_root.js BUNDLE ARTIFACT PUBLIC_KEY_PEM TRUSTED_ROOT
// Prints "verified by sigstore-js @sigstore/verify <version>" and exits 0,
// or prints the verification error and exits 1.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const [bundlePath, artifactPath, keyPath, rootPath] = process.argv.slice(2);
if (!rootPath) {
  console.error('usage: verify_with_trusted_root.js BUNDLE ARTIFACT PUBLIC_KEY_PEM TRUSTED_ROOT');
  process.exit(2);
}

function main() {
  const root = TrustedRoot.fromJSON(JSON.parse(fs.readFileSync(rootPath, 'utf8')));
  const signer = crypto.createPublicKey(fs.readFileSync(keyPath));
  const signerHint = crypto
    .createHash('sha256')
    .update(signer.export({ type: 'spki', format: 'der' }))
    .digest('hex');
  const keyFinder = (hint) => {
    if (hint !== signerHint) {
      throw new Error(`the bundle names key ${hint}, not ${signerHint}`);
    }
    return { publicKey: signer, validFor: () => true };
  };
  // A Rekor v2 entry carries no signed time, and a key-signed bundle no
  // certificate: only the log's proof is checked against the root.
  const verifier = new Verifier(toTrustMaterial(root, keyFinder), {
    tlogThreshold: 1,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  verifier.verify(toSignedEntity(bundle, fs.readFileSync(artifactPath)));
  const version = require('@sigstore/verify/package.json').version;
  console.log(`verified by sigstore-js @sigstore/verify ${version}`);
}

try {
  main();
} catch (err) {
  console.error(`sigstore-js verification failed: ${err.code ? `${err.code}: ` : ''}${err.message}`);
  process.exit(1);
}
