// The page's checkpoint verification (src/note.js) with ML-DSA-44 log keys,
// on vectors signed by Stele's Rust code (stele-tiles, AWS-LC's ML-DSA-44):
// the committed test/vectors/mldsa.json, or the file STELE_EXPLORER_VECTORS
// names (tests/tests/explorer/mldsa.rs signs fresh ones and runs this file
// on them). The page verifies with @noble/post-quantum, an independent
// implementation. Altered signatures, key IDs, timestamp bytes, checkpoint
// lines and extension lines are made here from the signed vectors.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { concat, fromBase64, fromHex, toBase64, toHex, utf8 } from '../src/bytes.js';
import { options } from '../src/log.js';
import { SUBTREE_V1_LENGTH, VerificationError, parseLogKey, parseLogKeys, parseWitnessKey, subtreeMessage, verifyCheckpoint } from '../src/note.js';

const file = process.env.STELE_EXPLORER_VECTORS ?? new URL('vectors/mldsa.json', import.meta.url);
const V = JSON.parse(readFileSync(file, 'utf8'));
const mldsaKey = () => parseLogKey(V.mldsa_log.vkey);
const hybridKeys = () => parseLogKeys([V.hybrid_log.ed25519_vkey, V.hybrid_log.mldsa_vkey]);

/** The note's lines: text lines, '', signature lines, and the final ''. */
const lines = (note) => note.split('\n');
/** The key bytes of a vkey `name+id+base64` (the base64 may hold '+'). */
const vkeyBytes = (vkey) => fromBase64(vkey.split('+').slice(2).join('+'));
const join = (ls) => utf8(ls.join('\n'));

/** Rewrites signature line `n` (0-based among signature lines): `change(blob)` alters the bytes after the name. */
function alterSignature(note, n, change) {
  const ls = lines(note);
  const first = ls.indexOf('') + 1;
  const [dash, name, sig] = ls[first + n].split(' ');
  const blob = fromBase64(sig).slice();
  change(blob);
  ls[first + n] = `${dash} ${name} ${toBase64(blob)}`;
  return join(ls);
}

function fails(bytes, keys, says, witnesses = []) {
  assert.throws(
    () => verifyCheckpoint(bytes, keys, witnesses),
    (err) => err instanceof VerificationError && err.message.includes(says),
    `expected a VerificationError saying ${JSON.stringify(says)}`,
  );
}

test('an ML-DSA-44 vkey is read with its key ID checked', () => {
  const key = mldsaKey();
  const [name, id] = V.mldsa_log.vkey.split('+');
  assert.equal(key.algorithm, 'ML-DSA-44');
  assert.equal(key.name, name);
  assert.equal(key.id, parseInt(id, 16));
  assert.equal(key.signsExtensions, false);
  assert.equal(vkeyBytes(V.mldsa_log.vkey).length, 1 + 1312);
  // Another key ID, a truncated key, a witness (0x04) key as a log key.
  const wrongId = V.mldsa_log.vkey.replace(`+${id}+`, `+${((parseInt(id, 16) ^ 1) >>> 0).toString(16).padStart(8, '0')}+`);
  assert.throws(() => parseLogKey(wrongId), /key ID .* does not match/);
  const raw = vkeyBytes(V.mldsa_log.vkey);
  assert.throws(() => parseLogKey(`${name}+${id}+${toBase64(raw.subarray(0, 1000))}`), /ML-DSA-44 key is 1312 bytes/);
  assert.throws(() => parseLogKey(V.witnesses.ed25519_vkey), /type byte 0x04 is not a log key/);
  // A vkey pasted unencoded in a query string ('+' read as a space).
  assert.equal(parseLogKey(V.mldsa_log.vkey.replace(/\+/g, ' ')).id, key.id);
  assert.equal(parseLogKey(V.hybrid_log.ed25519_vkey.replace(/\+/g, ' ')).algorithm, 'Ed25519');
  // Even one whose base64 ends in '+' (the space at its end is that '+'),
  // and log.vkey's final newline is not part of the key.
  const bytes = new Uint8Array(33);
  bytes[0] = 0x01;
  bytes[32] = 0x3e;
  const plus = `k+${toHex(sha256(concat(utf8('k\n'), bytes)).subarray(0, 4))}+${toBase64(bytes)}`;
  assert.ok(plus.endsWith('+'));
  assert.equal(parseLogKey(plus.replace(/\+/g, ' ')).text, plus);
  assert.equal(parseLogKey(`${plus}\n`).text, plus);
  assert.equal(parseWitnessKey(`${V.witnesses.mldsa_vkey.replace(/\+/g, ' ')}\n`).text, V.witnesses.mldsa_vkey);
});

test('the subtree/v1 message is the one Stele signs', () => {
  const m = V.subtree_message;
  const timestamp = new Uint8Array(8);
  new DataView(timestamp.buffer).setBigUint64(0, BigInt(m.timestamp));
  const message = subtreeMessage(m.cosigner, timestamp, m.origin, m.size, fromHex(m.root_hex));
  assert.equal(toHex(message), m.message_hex);
  assert.equal(subtreeMessage('', timestamp, m.origin, m.size, fromHex(m.root_hex)), null);
  assert.equal(subtreeMessage(m.cosigner, timestamp, 'o'.repeat(256), m.size, fromHex(m.root_hex)), null);
});

test("an ML-DSA-44 log's checkpoint verifies, with its signing time", () => {
  const cp = verifyCheckpoint(utf8(V.mldsa_log.checkpoint), [mldsaKey()]);
  assert.equal(cp.size, V.mldsa_log.size);
  assert.deepEqual(cp.algorithms, ['ML-DSA-44']);
  assert.deepEqual(cp.verifiedBy, [{ algorithm: 'ML-DSA-44', name: mldsaKey().name, id: mldsaKey().id, time: V.timestamp }]);
  assert.deepEqual(cp.cosignatures, []);
  // One key (not a list) is taken too; an empty tree's checkpoint verifies.
  assert.equal(verifyCheckpoint(utf8(V.mldsa_log.empty_checkpoint), mldsaKey()).size, 0);
  const line = lines(V.mldsa_log.checkpoint).at(-2);
  assert.equal(fromBase64(line.split(' ')[2]).length, 4 + SUBTREE_V1_LENGTH);
});

test('a tampered ML-DSA-44 signature is refused', () => {
  for (const at of [12, 12 + 1000, 4 + SUBTREE_V1_LENGTH - 1]) {
    fails(alterSignature(V.mldsa_log.checkpoint, 0, (b) => (b[at] ^= 0x01)), [mldsaKey()], 'ML-DSA-44 signature on the checkpoint does not verify');
  }
  // Truncated, or a byte longer.
  const ls = lines(V.mldsa_log.checkpoint);
  const first = ls.indexOf('') + 1;
  const [dash, name, sig] = ls[first].split(' ');
  const blob = fromBase64(sig);
  for (const bad of [blob.subarray(0, blob.length - 1), Uint8Array.from([...blob, 0])]) {
    const copy = [...ls];
    copy[first] = `${dash} ${name} ${toBase64(bad)}`;
    fails(join(copy), [mldsaKey()], 'does not verify');
  }
});

test('a wrong key ID is no signature by the log', () => {
  fails(alterSignature(V.mldsa_log.checkpoint, 0, (b) => (b[3] ^= 0x01)), [mldsaKey()], "no signature by the log's ML-DSA-44 key");
  // The right key ID under another name.
  const renamed = V.mldsa_log.checkpoint.replace(`\u2014 ${mldsaKey().name} `, '\u2014 someone.else ');
  fails(utf8(renamed), [mldsaKey()], "no signature by the log's ML-DSA-44 key");
});

test('wrong timestamp bytes are refused', () => {
  // One second later, a whole other time, and above 2^63 - 1.
  for (const change of [(b) => (b[11] ^= 0x01), (b) => (b[6] ^= 0x10), (b) => (b[4] |= 0x80)]) {
    fails(alterSignature(V.mldsa_log.checkpoint, 0, change), [mldsaKey()], 'does not verify');
  }
});

test('an altered size, root or origin is refused', () => {
  const ls = lines(V.mldsa_log.checkpoint);
  for (const change of [(l) => (l[1] = String(Number(l[1]) + 1)), (l) => (l[2] = (l[2][0] === 'A' ? 'B' : 'A') + l[2].slice(1))]) {
    const copy = [...ls];
    change(copy);
    fails(join(copy), [mldsaKey()], 'does not verify');
  }
  const moved = V.mldsa_log.checkpoint.replace(/^[^\n]+/, 'example.com/other-log');
  fails(utf8(moved), [mldsaKey()], 'is not the key\'s name');
});

test('extension lines are refused when the only key is ML-DSA-44', () => {
  // Added to an ML-DSA-44 log's checkpoint: the signature still verifies
  // (subtree/v1 does not sign them), so only this rule stops them.
  const ls = lines(V.mldsa_log.checkpoint);
  ls.splice(3, 0, 'an extension line');
  fails(join(ls), [mldsaKey()], 'extension line');
  // A hybrid log's checkpoint with an extension line: its Ed25519 key signs it.
  const extended = utf8(V.hybrid_log.extended_checkpoint);
  const [ed, pq] = hybridKeys();
  fails(extended, [pq], 'extension line');
  assert.deepEqual(verifyCheckpoint(extended, [ed, pq]).extensions, ['extension line']);
  assert.deepEqual(verifyCheckpoint(extended, [ed]).algorithms, ['Ed25519']);
  // The Ed25519 signature covers the line: altering it fails.
  fails(utf8(V.hybrid_log.extended_checkpoint.replace('extension line', 'extension lime')), [ed, pq], 'Ed25519 signature on the checkpoint does not verify');
});

test("a hybrid log: every key given must verify, the other line is listed", () => {
  const note = V.hybrid_log.checkpoint;
  const [ed, pq] = hybridKeys();
  const both = verifyCheckpoint(utf8(note), [ed, pq]);
  assert.deepEqual(both.algorithms, ['Ed25519', 'ML-DSA-44']);
  assert.equal(both.verifiedBy[1].time, V.timestamp);
  assert.equal(both.verifiedBy[0].time, null);
  assert.deepEqual(both.cosignatures, []);
  assert.deepEqual(verifyCheckpoint(utf8(note), [pq, ed]).algorithms, ['ML-DSA-44', 'Ed25519']);
  // Either key alone: the other line is another key of the log's, unchecked.
  for (const [key, other, algorithm] of [[ed, pq, 'ML-DSA-44?'], [pq, ed, 'Ed25519?']]) {
    const cp = verifyCheckpoint(utf8(note), [key]);
    assert.deepEqual(cp.algorithms, [key.algorithm]);
    assert.deepEqual(cp.cosignatures, [{ name: other.name, id: other.id, status: 'other-log-key', algorithm }]);
  }
  // Signature line 0 is Ed25519, line 1 ML-DSA-44.
  const badPq = alterSignature(note, 1, (b) => (b[100] ^= 0x01));
  fails(badPq, [ed, pq], 'ML-DSA-44 signature on the checkpoint does not verify');
  fails(badPq, [pq], 'ML-DSA-44 signature');
  assert.deepEqual(verifyCheckpoint(badPq, [ed]).algorithms, ['Ed25519']);
  const badEd = alterSignature(note, 0, (b) => (b[10] ^= 0x01));
  fails(badEd, [ed, pq], 'Ed25519 signature on the checkpoint does not verify');
  assert.deepEqual(verifyCheckpoint(badEd, [pq]).algorithms, ['ML-DSA-44']);
  // A key given is required: the ML-DSA-44 line removed.
  const ls = lines(note);
  fails(join(ls.filter((_, i) => i !== ls.length - 2)), [ed, pq], "no signature by the log's ML-DSA-44 key");
  // The same key twice is a mistake in the URL.
  assert.throws(() => parseLogKeys([V.hybrid_log.mldsa_vkey, V.hybrid_log.mldsa_vkey]), /given twice/);
  assert.throws(() => parseLogKeys([]), /no log key/);
});

test('witness cosignatures: Ed25519 cosignature/v1 and ML-DSA-44', () => {
  const bytes = utf8(V.witnesses.checkpoint);
  const ed = parseWitnessKey(V.witnesses.ed25519_vkey);
  const pq = parseWitnessKey(V.witnesses.mldsa_vkey);
  assert.equal(pq.algorithm, 'ML-DSA-44');
  const cp = verifyCheckpoint(bytes, [mldsaKey()], [ed, pq]);
  assert.deepEqual(
    cp.cosignatures.map((c) => [c.name, c.status, c.algorithm, c.time]),
    [
      [ed.name, 'verified', 'Ed25519', V.witnesses.cosigned],
      [pq.name, 'verified', 'ML-DSA-44', V.witnesses.cosigned],
    ],
  );
  // Without their keys, they are listed unchecked.
  assert.deepEqual(
    verifyCheckpoint(bytes, [mldsaKey()]).cosignatures.map((c) => c.status),
    ['unknown', 'unknown'],
  );
  // Line 0 is the log's, 1 the Ed25519 witness's, 2 the ML-DSA-44 witness's.
  fails(alterSignature(V.witnesses.checkpoint, 2, (b) => (b[2000] ^= 0x01)), [mldsaKey()], 'ML-DSA-44 cosignature of witness', [ed, pq]);
  fails(alterSignature(V.witnesses.checkpoint, 2, (b) => (b[11] ^= 0x01)), [mldsaKey()], 'ML-DSA-44 cosignature of witness', [ed, pq]);
  fails(alterSignature(V.witnesses.checkpoint, 1, (b) => (b[11] ^= 0x01)), [mldsaKey()], 'Ed25519 cosignature of witness', [ed, pq]);
  // A log key is not a witness key.
  assert.throws(() => parseWitnessKey(V.hybrid_log.ed25519_vkey), /type byte 0x01 is not a witness key/);
});

test('?vkey= may be repeated, one key each', () => {
  const search = `?vkey=${encodeURIComponent(V.hybrid_log.ed25519_vkey)}&vkey=${encodeURIComponent(V.hybrid_log.mldsa_vkey)}&vkey=`;
  const opts = options(new URL(`https://log.example/explorer/${search}`));
  assert.deepEqual(opts.vkeys, [V.hybrid_log.ed25519_vkey, V.hybrid_log.mldsa_vkey]);
  assert.equal(opts.base, 'https://log.example/');
  assert.deepEqual(parseLogKeys(opts.vkeys).map((k) => k.algorithm), ['Ed25519', 'ML-DSA-44']);
});
