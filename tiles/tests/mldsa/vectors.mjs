// ML-DSA-44 `subtree/v1` signatures (c2sp.org/tlog-cosignature, signature
// type 0x06) made and checked by an implementation independent of Stele's:
// @noble/post-quantum's ml_dsa44. The encodings around the signature (key
// IDs, vkeys, private key texts, the subtree/v1 message, checkpoint texts,
// signature lines) are written here again from the specifications, not
// taken from stele-tiles.
//
//   node vectors.mjs generate > ../mldsa_vectors.json
//       From fixed seeds: the key pairs and their texts, checkpoint
//       signatures (signed notes) and subtree signatures. Signing is hedged
//       with fixed extra entropy per signature, so the output is the same on
//       every run: tiles/tests/mldsa_vectors.rs compares the committed file
//       with a fresh run when node is installed.
//   node vectors.mjs verify FILE
//       FILE holds signed notes and subtree signatures Stele made, each with
//       its vkey; prints, as JSON, whether each verifies here.
//
// Installed by scripts/install-test-deps.sh (`npm ci` in this folder).

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ml_dsa44 } from '@noble/post-quantum/ml-dsa.js';

const TYPE = 0x06;
const LABEL = Buffer.from('subtree/v1\n\0', 'latin1');
const SIGNATURE_LENGTH = 2420;
const EM_DASH = '\u2014';

const sha256 = (...parts) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

const u64 = (value) => {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(value));
  return bytes;
};

// SHA-256(name || 0x0A || 0x06 || public key)[:4]
const keyId = (name, publicKey) =>
  sha256(Buffer.from(name, 'utf8'), Buffer.from([0x0a, TYPE]), publicKey).subarray(0, 4);

const vkey = (name, publicKey) =>
  `${name}+${keyId(name, publicKey).toString('hex')}+` +
  Buffer.concat([Buffer.from([TYPE]), publicKey]).toString('base64');

const privateKey = (name, seed, publicKey) =>
  `PRIVATE+KEY+${name}+${keyId(name, publicKey).toString('hex')}+` +
  Buffer.concat([Buffer.from([TYPE]), seed]).toString('base64');

const lengthPrefixed = (text) => {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length < 1 || bytes.length > 255) throw new Error(`bad length: ${text}`);
  return Buffer.concat([Buffer.from([bytes.length]), bytes]);
};

// The cosigned_message structure of tlog-cosignature.
const subtreeMessage = (cosigner, timestamp, origin, start, end, hash) =>
  Buffer.concat([
    LABEL,
    lengthPrefixed(cosigner),
    u64(timestamp),
    lengthPrefixed(origin),
    u64(start),
    u64(end),
    hash,
  ]);

// The first three lines of a checkpoint (tlog-checkpoint).
const parseCheckpoint = (text) => {
  const lines = text.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') throw new Error('not a checkpoint');
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error('bad size');
  const root = Buffer.from(lines[2], 'base64');
  if (root.length !== 32 || root.toString('base64') !== lines[2]) throw new Error('bad root');
  return { origin: lines[0], size: BigInt(lines[1]), root };
};

const signatureLine = (name, publicKey, timestamp, signature) =>
  `${EM_DASH} ${name} ` +
  Buffer.concat([keyId(name, publicKey), u64(timestamp), signature]).toString('base64');

// Fixed per-signature entropy: the hedged signature, reproducibly.
const entropy = (label) => new Uint8Array(sha256(Buffer.from(`stele vector entropy ${label}`)));

const KEYS = [
  { name: 'example.com/log', seed: Buffer.from([...Array(32).keys()]) },
  { name: 'witness.example/w1', seed: sha256(Buffer.from('stele ML-DSA-44 vector seed 1')) },
  { name: 'oid/1.3.6.1.4.1.99999.7', seed: Buffer.alloc(32, 0xff) },
];

const ROOT = (label) => sha256(Buffer.from(`stele vector root ${label}`));

function generate() {
  const keys = KEYS.map(({ name, seed }) => {
    const { publicKey, secretKey } = ml_dsa44.keygen(new Uint8Array(seed));
    return { name, seed, publicKey: Buffer.from(publicKey), secretKey };
  });
  const sign = (key, message, label) =>
    Buffer.from(ml_dsa44.sign(message, key.secretKey, { extraEntropy: entropy(label) }));

  // Checkpoints: the log's own signature, witnesses' cosignatures (one over
  // a checkpoint with an extension line, which is not signed), timestamp 0
  // and 2^63 - 1.
  const checkpointCases = [
    { key: 0, origin: 'example.com/log', size: 13n, extensions: [], timestamp: 1767225600n },
    { key: 0, origin: 'example.com/log', size: 0n, extensions: [], timestamp: 1n },
    { key: 0, origin: 'example.com/log', size: 2n ** 40n + 5n, extensions: [], timestamp: 1767225601n },
    { key: 1, origin: 'example.com/log', size: 13n, extensions: [], timestamp: 1767225602n },
    { key: 1, origin: 'example.com/log', size: 21n, extensions: ['extension line'], timestamp: 1767225603n },
    { key: 2, origin: 'example.com/other-log', size: 1n, extensions: [], timestamp: 0n },
    { key: 2, origin: 'example.com/other-log', size: 2n, extensions: [], timestamp: 2n ** 63n - 1n },
  ];
  const checkpoints = checkpointCases.map((c, index) => {
    const key = keys[c.key];
    const root = ROOT(`${c.origin} ${c.size}`);
    const text = [c.origin, c.size.toString(), root.toString('base64'), ...c.extensions]
      .map((line) => `${line}\n`)
      .join('');
    const message = subtreeMessage(key.name, c.timestamp, c.origin, 0, c.size, root);
    const signature = sign(key, message, `checkpoint ${index}`);
    if (signature.length !== SIGNATURE_LENGTH) throw new Error('signature length');
    if (!ml_dsa44.verify(signature, message, key.publicKey)) throw new Error('does not verify');
    return {
      key: c.key,
      timestamp: c.timestamp.toString(),
      text,
      message_hex: message.toString('hex'),
      note: `${text}\n${signatureLine(key.name, key.publicKey, c.timestamp, signature)}\n`,
    };
  });

  // Subtrees, as sign-subtree answers: timestamp 0.
  const subtreeCases = [
    { key: 1, origin: 'example.com/log', start: 8n, end: 13n },
    { key: 1, origin: 'example.com/log', start: 0n, end: 8n },
    { key: 1, origin: 'example.com/log', start: 16n, end: 32n },
    { key: 2, origin: 'example.com/other-log', start: 2n ** 40n, end: 2n ** 40n + 1n },
  ];
  const subtrees = subtreeCases.map((c, index) => {
    const key = keys[c.key];
    const hash = ROOT(`${c.origin} [${c.start}, ${c.end})`);
    const message = subtreeMessage(key.name, 0, c.origin, c.start, c.end, hash);
    const signature = sign(key, message, `subtree ${index}`);
    return {
      key: c.key,
      origin: c.origin,
      start: c.start.toString(),
      end: c.end.toString(),
      hash: hash.toString('base64'),
      message_hex: message.toString('hex'),
      line: signatureLine(key.name, key.publicKey, 0, signature),
    };
  });

  const out = {
    comment:
      'Written by tiles/tests/mldsa/vectors.mjs generate with @noble/post-quantum; do not edit',
    generator: `@noble/post-quantum ${packageVersion()} ml_dsa44`,
    keys: keys.map((key) => ({
      name: key.name,
      seed_hex: key.seed.toString('hex'),
      public_key_hex: key.publicKey.toString('hex'),
      key_id: keyId(key.name, key.publicKey).toString('hex'),
      vkey: vkey(key.name, key.publicKey),
      private_key: privateKey(key.name, key.seed, key.publicKey),
    })),
    checkpoints,
    subtrees,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

function packageVersion() {
  const path = new URL('./node_modules/@noble/post-quantum/package.json', import.meta.url);
  return JSON.parse(readFileSync(path, 'utf8')).version;
}

// A vkey of type 0x06 whose key ID is the one its name and key give.
const parseVkey = (text) => {
  const [name, id, encoded] = [
    text.slice(0, text.indexOf('+')),
    text.slice(text.indexOf('+') + 1, text.indexOf('+') + 9),
    text.slice(text.indexOf('+') + 10),
  ];
  const material = Buffer.from(encoded, 'base64');
  if (material[0] !== TYPE || material.length !== 1 + 1312) throw new Error(`not an ML-DSA-44 vkey: ${text}`);
  const publicKey = material.subarray(1);
  if (keyId(name, publicKey).toString('hex') !== id) throw new Error(`wrong key ID: ${text}`);
  return { name, id, publicKey };
};

// The timestamp and signature of a signature line by `key`, if it has one.
const parseLine = (line, key) => {
  const prefix = `${EM_DASH} ${key.name} `;
  if (!line.startsWith(prefix)) return null;
  const bytes = Buffer.from(line.slice(prefix.length), 'base64');
  if (bytes.subarray(0, 4).toString('hex') !== key.id) return null;
  if (bytes.length !== 4 + 8 + SIGNATURE_LENGTH) return { bad: true };
  return { timestamp: bytes.readBigUInt64BE(4), signature: bytes.subarray(12) };
};

// A signed note verifies when it has a line by the key and every such line
// verifies over the subtree/v1 message of its checkpoint.
const verifyNote = (note, key) => {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return false;
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2).split('\n').filter((line) => line !== '');
  let checkpoint;
  try {
    checkpoint = parseCheckpoint(text);
  } catch {
    return false;
  }
  let found = 0;
  for (const line of lines) {
    const parsed = parseLine(line, key);
    if (parsed === null) continue;
    if (parsed.bad || parsed.timestamp > 2n ** 63n - 1n) return false;
    const message = subtreeMessage(
      key.name,
      parsed.timestamp,
      checkpoint.origin,
      0,
      checkpoint.size,
      checkpoint.root,
    );
    if (!ml_dsa44.verify(parsed.signature, message, key.publicKey)) return false;
    found += 1;
  }
  return found > 0;
};

const verifySubtree = (c, key) => {
  const parsed = parseLine(c.line, key);
  if (parsed === null || parsed.bad || parsed.timestamp !== 0n) return false;
  const hash = Buffer.from(c.hash, 'base64');
  if (hash.length !== 32) return false;
  const message = subtreeMessage(key.name, 0, c.origin, BigInt(c.start), BigInt(c.end), hash);
  return ml_dsa44.verify(parsed.signature, message, key.publicKey);
};

function verify(file) {
  const input = JSON.parse(readFileSync(file, 'utf8'));
  const out = {
    checkpoints: input.checkpoints.map((c) => verifyNote(c.note, parseVkey(c.vkey))),
    subtrees: input.subtrees.map((c) => verifySubtree(c, parseVkey(c.vkey))),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

const [mode, file] = process.argv.slice(2);
if (mode === 'generate') {
  generate();
} else if (mode === 'verify' && file) {
  verify(file);
} else {
  process.stderr.write('usage: node vectors.mjs generate | verify FILE\n');
  process.exit(2);
}
