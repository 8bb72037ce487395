// The proof maths of src/tlog.js against RFC 6962's reference tree (the
// eight-leaf test vectors of the certificate-transparency project) and a
// naive model written straight from RFC 9162's definitions, with the
// proof's nodes read from tiles of several heights.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { fromHex, toHex } from '../src/bytes.js';
import { TileTree, inclusionRanges, leafHash, nodeHash, rootFromInclusionProof, tileIndexPath, tilePath, verifyInclusion } from '../src/tlog.js';

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];

// MTH(D[n]) exactly as RFC 9162 §2.1.1 defines it.
function mth(leaves) {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return leafHash(leaves[0]);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

// PATH(m, D[n]) exactly as RFC 9162 §2.1.3.1 defines it.
function path(m, leaves) {
  if (leaves.length <= 1) return [];
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return m < k ? [...path(m, leaves.slice(0, k)), mth(leaves.slice(k))] : [...path(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

// The tiles of a tree, as a log writes them: tile (level, index) holds the
// hashes of the complete subtrees of height level*height, 2^height a tile.
function tiles(leaves, height) {
  const perTile = 2 ** height;
  const store = new Map();
  for (let level = 0; ; level++) {
    const span = 2 ** (level * height);
    const count = Math.floor(leaves.length / span);
    if (count === 0) break;
    for (let index = 0; index * perTile < count; index++) {
      const width = Math.min(perTile, count - index * perTile);
      const hashes = [];
      for (let k = index * perTile; k < index * perTile + width; k++) hashes.push(mth(leaves.slice(k * span, (k + 1) * span)));
      store.set(`${level}/${index}/${width}`, Uint8Array.from(hashes.flatMap((h) => [...h])));
    }
  }
  return (level, index, width) => {
    const bytes = store.get(`${level}/${index}/${width}`);
    if (!bytes) throw new Error(`no tile ${level}/${index}/${width}`);
    return bytes;
  };
}

const leavesOf = (n) => Array.from({ length: n }, (_, i) => new TextEncoder().encode(`leaf ${i}`));

test('roots of the RFC 6962 reference tree', async () => {
  for (let n = 1; n <= 8; n++) {
    assert.equal(toHex(mth(LEAVES.slice(0, n))), ROOTS[n - 1], `naive root of ${n}`);
    const tree = new TileTree(n, tiles(LEAVES.slice(0, n), 1), 1);
    assert.equal(toHex(await tree.root()), ROOTS[n - 1], `root of ${n} from tiles`);
  }
});

test('inclusion proofs of the reference tree verify, and nothing else does', () => {
  for (let n = 1; n <= 8; n++) {
    const root = fromHex(ROOTS[n - 1]);
    for (let m = 0; m < n; m++) {
      const proof = path(m, LEAVES.slice(0, n));
      const leaf = leafHash(LEAVES[m]);
      assert.ok(verifyInclusion(m, n, leaf, proof, root), `proof of ${m} in ${n}`);
      assert.ok(!verifyInclusion(m, n, leafHash(new Uint8Array([9])), proof, root), 'another leaf');
      if (n > 1) {
        assert.ok(!verifyInclusion((m + 1) % n, n, leaf, proof, root), 'another index');
        assert.ok(!verifyInclusion(m, n, leaf, proof.slice(0, -1), root), 'a short proof');
        const bad = proof.map((p) => p.slice());
        bad[0][0] ^= 1;
        assert.ok(!verifyInclusion(m, n, leaf, bad, root), 'a flipped bit');
      }
      assert.ok(!verifyInclusion(m, n, leaf, [...proof, new Uint8Array(32)], root), 'a long proof');
    }
  }
  assert.equal(rootFromInclusionProof(3, 3, new Uint8Array(32), []), null);
});

test('tile-based proofs equal the definition, for every leaf of small trees and tile heights 1 to 3', async () => {
  for (const height of [1, 2, 3]) {
    for (let n = 1; n <= 40; n++) {
      const leaves = leavesOf(n);
      const tree = new TileTree(n, tiles(leaves, height), height);
      const root = mth(leaves);
      assert.equal(toHex(await tree.root()), toHex(root));
      for (let m = 0; m < n; m++) {
        const proof = await tree.inclusionProof(m);
        assert.deepEqual(proof.map(toHex), path(m, leaves).map(toHex), `height ${height}, leaf ${m} of ${n}`);
        assert.ok(verifyInclusion(m, n, leafHash(leaves[m]), proof, root));
      }
    }
  }
});

test('tile-based proofs at height 8 across tile boundaries', async () => {
  for (const n of [255, 256, 257, 511, 512, 513, 700]) {
    const leaves = leavesOf(n);
    const tree = new TileTree(n, tiles(leaves, 8));
    const root = mth(leaves);
    for (const m of [0, 1, 254, 255, 256, n - 2, n - 1].filter((m) => m >= 0 && m < n)) {
      const proof = await tree.inclusionProof(m);
      assert.deepEqual(proof.map(toHex), path(m, leaves).map(toHex), `leaf ${m} of ${n}`);
      assert.ok(verifyInclusion(m, n, leafHash(leaves[m]), proof, root));
    }
  }
});

test('a tile with one byte changed makes the proof fail', async () => {
  const n = 300;
  const leaves = leavesOf(n);
  const good = tiles(leaves, 8);
  const root = mth(leaves);
  const tampered = (level, index, width) => {
    const bytes = good(level, index, width).slice();
    if (level === 0 && index === 0) bytes[5 * 32 + 7] ^= 0x40; // the hash of leaf 5
    return bytes;
  };
  const tree = new TileTree(n, tampered);
  for (const m of [0, 4, 100, 255]) {
    const proof = await tree.inclusionProof(m);
    assert.ok(!verifyInclusion(m, n, leafHash(leaves[m]), proof, root), `leaf ${m}`);
  }
  // Leaves past the first 256 take the first 256 as one node of tile/1/000.
  assert.ok(verifyInclusion(299, n, leafHash(leaves[299]), await tree.inclusionProof(299), root));
  // Leaf 5's own hash is not part of its proof.
  assert.ok(verifyInclusion(5, n, leafHash(leaves[5]), await tree.inclusionProof(5), root));
});

test('inclusion ranges cover every leaf but the proved one', () => {
  for (let n = 1; n <= 70; n++) {
    for (let m = 0; m < n; m++) {
      const covered = inclusionRanges(m, n).flatMap(([lo, hi]) => Array.from({ length: hi - lo }, (_, k) => lo + k));
      assert.deepEqual(covered.sort((a, b) => a - b), Array.from({ length: n }, (_, k) => k).filter((k) => k !== m));
    }
  }
});

test('tile paths as c2sp.org/tlog-tiles writes them', () => {
  assert.equal(tileIndexPath(0), '000');
  assert.equal(tileIndexPath(5), '005');
  assert.equal(tileIndexPath(1234), 'x001/234');
  assert.equal(tileIndexPath(1234067), 'x001/x234/067');
  assert.equal(tilePath(0, 1234, 256), 'tile/0/x001/234');
  assert.equal(tilePath('entries', 0, 17), 'tile/entries/000.p/17');
  assert.equal(tilePath(1, 3, 255), 'tile/1/003.p/255');
});
