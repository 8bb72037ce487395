// Command gointerop checks stele-tiles against an independent implementation
// of the same formats: Go's golang.org/x/mod/sumdb/tlog (RFC 6962 trees,
// tiles, proofs) and golang.org/x/mod/sumdb/note (signed notes, Ed25519 note
// keys).
//
// It is built and driven by tiles/tests/go_interop.rs, offline, from the
// Debian packages golang-go and golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o gointerop ./tiles/tests/gointerop
//
// Subcommands:
//
//	gointerop generate -seed N -out FILE
//	    Deterministically from the seed: Ed25519 note keys, signed notes,
//	    trees of several sizes with their tiles, proofs and signed
//	    checkpoints, tile paths, and tile lists for tree growth. Writes one
//	    JSON file for the Rust side to check.
//	gointerop verify -in FILE
//	    Reads a JSON file of the same schema written by the Rust side and
//	    checks everything in it with Go. Prints one line per failure, naming
//	    the item, and exits 1 if there was any.
//	gointerop writelog -dir DIR [-seed N] [-old M] [-size N] [-skey FILE]
//	    Writes a tlog-tiles log folder as a Go-based log would: every tile
//	    and entry bundle for tree size M then N (so the partial tiles of M
//	    stay), checkpoint.old and checkpoint signed with a note key made
//	    from the seed, its verifier key in DIR/vkey, the entries one a line
//	    in DIR/entries.txt, and with -skey the private key in FILE.
//
// Go's sumdb tile paths carry the tile height ("tile/8/L/NNN"), which
// c2sp.org/tlog-tiles leaves out ("tile/L/NNN"); this program writes both.
package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// tileHeight is the height c2sp.org/tlog-tiles fixes.
const tileHeight = 8

// The JSON schema shared with tiles/tests/go_interop.rs. Byte strings and
// hashes are standard padded base64.

type interopFile struct {
	Generator string     `json:"generator"`
	Seed      int64      `json:"seed"`
	Keys      []noteKey  `json:"keys"`
	Notes     []noteCase `json:"notes"`
	Trees     []treeCase `json:"trees"`
	// Tile coordinates and their paths, to compare the x-grouping of N.
	TilePaths []tilePath `json:"tile_paths"`
	// Tiles to publish when a tree grows, as Go's tlog.NewTiles lists them.
	Growth []growthCase `json:"growth"`
}

type noteKey struct {
	Name string `json:"name"`
	Skey string `json:"skey"`
	Vkey string `json:"vkey"`
}

type noteCase struct {
	Text   string `json:"text"`
	Keys   []int  `json:"keys"` // indices into Keys, in signature order
	Signed string `json:"signed"`
}

type treeCase struct {
	Size        int64             `json:"size"`
	Entries     []string          `json:"entries"`
	Root        string            `json:"root"`
	Tiles       []tileData        `json:"tiles"`
	Bundles     []tileData        `json:"bundles,omitempty"`
	Inclusion   []inclusionCase   `json:"inclusion"`
	Consistency []consistencyCase `json:"consistency"`
	Checkpoint  *checkpointCase   `json:"checkpoint,omitempty"`
}

type tileData struct {
	Path   string `json:"path"`              // c2sp.org/tlog-tiles path
	GoPath string `json:"go_path,omitempty"` // Go sumdb path, with the height
	Level  int    `json:"level"`
	Index  int64  `json:"index"`
	Width  int    `json:"width"`
	Data   string `json:"data"`
}

type inclusionCase struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	Root     string   `json:"root"`
	Proof    []string `json:"proof"`
}

type consistencyCase struct {
	OldSize int64    `json:"old_size"`
	NewSize int64    `json:"new_size"`
	OldRoot string   `json:"old_root"`
	NewRoot string   `json:"new_root"`
	Proof   []string `json:"proof"`
}

type checkpointCase struct {
	Origin     string   `json:"origin"`
	Size       int64    `json:"size"`
	Root       string   `json:"root"`
	Extensions []string `json:"extensions"`
	Key        int      `json:"key"`
	Signed     string   `json:"signed"`
}

type tilePath struct {
	Level  int    `json:"level"`
	Index  int64  `json:"index"`
	Width  int    `json:"width"`
	Path   string `json:"path"`
	GoPath string `json:"go_path"`
}

type growthCase struct {
	OldSize int64    `json:"old_size"`
	NewSize int64    `json:"new_size"`
	GoPaths []string `json:"go_paths"`
}

func main() {
	if len(os.Args) < 2 {
		fatalf("usage: gointerop generate -seed N -out FILE | gointerop verify -in FILE")
	}
	switch os.Args[1] {
	case "generate":
		flags := flag.NewFlagSet("generate", flag.ExitOnError)
		seed := flags.Int64("seed", 1, "seed of the deterministic generator")
		out := flags.String("out", "", "JSON file to write")
		flags.Parse(os.Args[2:])
		if *out == "" {
			fatalf("generate: -out is required")
		}
		file, err := generate(*seed)
		if err != nil {
			fatalf("generate: %v", err)
		}
		data, err := json.Marshal(file)
		if err != nil {
			fatalf("generate: %v", err)
		}
		if err := os.WriteFile(*out, data, 0o644); err != nil {
			fatalf("generate: %v", err)
		}
	case "verify":
		flags := flag.NewFlagSet("verify", flag.ExitOnError)
		in := flags.String("in", "", "JSON file to check")
		flags.Parse(os.Args[2:])
		if *in == "" {
			fatalf("verify: -in is required")
		}
		data, err := os.ReadFile(*in)
		if err != nil {
			fatalf("verify: %v", err)
		}
		var file interopFile
		if err := json.Unmarshal(data, &file); err != nil {
			fatalf("verify: parsing %s: %v", *in, err)
		}
		failures := verify(&file)
		for _, failure := range failures {
			fmt.Fprintln(os.Stderr, "FAIL:", failure)
		}
		if len(failures) > 0 {
			fmt.Fprintf(os.Stderr, "gointerop verify: %d failures in %s\n", len(failures), *in)
			os.Exit(1)
		}
		fmt.Printf("gointerop verify: ok (%d keys, %d notes, %d trees)\n", len(file.Keys), len(file.Notes), len(file.Trees))
	case "writelog":
		flags := flag.NewFlagSet("writelog", flag.ExitOnError)
		dir := flags.String("dir", "", "folder to write the log to")
		seed := flags.Int64("seed", 1, "seed of the log key")
		oldSize := flags.Int64("old", 0, "tree size of checkpoint.old")
		size := flags.Int64("size", 1000, "tree size of checkpoint")
		skeyFile := flags.String("skey", "", "file to write the log's private key to (mode 0600), if set")
		flags.Parse(os.Args[2:])
		if *dir == "" || *oldSize > *size {
			fatalf("writelog: -dir is required and -old may not exceed -size")
		}
		if err := writeLog(*dir, *seed, *oldSize, *size, *skeyFile); err != nil {
			fatalf("writelog: %v", err)
		}
	default:
		fatalf("unknown subcommand %q", os.Args[1])
	}
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "gointerop: "+format+"\n", args...)
	os.Exit(2)
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

func hashesToBase64(hashes []tlog.Hash) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = b64(h[:])
	}
	return out
}

// hashStore is an in-memory tlog.HashReader over stored hashes, indexed as
// tlog.StoredHashIndex lays them out.
type hashStore []tlog.Hash

func (s *hashStore) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(*s)) {
			return nil, fmt.Errorf("stored hash %d not written yet (have %d)", x, len(*s))
		}
		out[i] = (*s)[x]
	}
	return out, nil
}

// buildStore appends the entries to an empty tree, as a sumdb server does.
func buildStore(entries [][]byte) (*hashStore, error) {
	store := &hashStore{}
	for i, entry := range entries {
		hashes, err := tlog.StoredHashes(int64(i), entry, store)
		if err != nil {
			return nil, err
		}
		*store = append(*store, hashes...)
	}
	return store, nil
}

// rfcTreeHash is Go's TreeHash, except for the empty tree: tlog defines its
// hash as all zeros, RFC 6962 §2.1 (and c2sp.org/tlog-checkpoint) as
// SHA-256 of the empty string.
func rfcTreeHash(size int64, r tlog.HashReader) (tlog.Hash, error) {
	if size == 0 {
		return tlog.Hash(sha256.Sum256(nil)), nil
	}
	return tlog.TreeHash(size, r)
}

// c2spPath drops the height segment from a Go sumdb tile path.
func c2spPath(goPath string) string {
	prefix := fmt.Sprintf("tile/%d/", tileHeight)
	if !strings.HasPrefix(goPath, prefix) {
		return "(not a height-8 path: " + goPath + ")"
	}
	return "tile/" + strings.TrimPrefix(goPath, prefix)
}

// goPath adds the height segment to a c2sp.org/tlog-tiles hash tile path.
func goPath(c2sp string) (string, error) {
	rest := strings.TrimPrefix(c2sp, "tile/")
	if rest == c2sp || strings.HasPrefix(rest, "entries/") {
		return "", fmt.Errorf("%q is not a hash tile path", c2sp)
	}
	return fmt.Sprintf("tile/%d/%s", tileHeight, rest), nil
}

func generate(seed int64) (*interopFile, error) {
	rng := rand.New(rand.NewSource(seed))
	file := &interopFile{Generator: "go", Seed: seed}

	// Keys: note.GenerateKey reads the Ed25519 seed from the seeded RNG.
	for _, name := range []string{"go.example/log", "witness.example/w1"} {
		skey, vkey, err := note.GenerateKey(rng, name)
		if err != nil {
			return nil, err
		}
		file.Keys = append(file.Keys, noteKey{Name: name, Skey: skey, Vkey: vkey})
	}
	signers := make([]note.Signer, len(file.Keys))
	for i, key := range file.Keys {
		signer, err := note.NewSigner(key.Skey)
		if err != nil {
			return nil, err
		}
		signers[i] = signer
	}
	sign := func(text string, keys ...int) (string, error) {
		list := make([]note.Signer, len(keys))
		for i, k := range keys {
			list[i] = signers[k]
		}
		signed, err := note.Sign(&note.Note{Text: text}, list...)
		return string(signed), err
	}

	// Signed notes: one line, several lines with non-ASCII text, two
	// signatures (in both orders), a text holding a blank line, and a random
	// text.
	noteCases := []struct {
		text string
		keys []int
	}{
		{"hello\n", []int{0}},
		{"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n", []int{0}},
		{"go.example/log\n42\ncafé — ☃ ünïcödé\n", []int{1}},
		{"two signers\n", []int{0, 1}},
		{"two signers, other order\n", []int{1, 0}},
		{"first paragraph\n\nsecond paragraph\n", []int{0}},
		{randomText(rng), []int{0, 1}},
	}
	for _, c := range noteCases {
		signed, err := sign(c.text, c.keys...)
		if err != nil {
			return nil, fmt.Errorf("signing %q: %v", c.text, err)
		}
		file.Notes = append(file.Notes, noteCase{Text: c.text, Keys: c.keys, Signed: signed})
	}

	// Trees. The sizes cover the empty tree, tile edges at levels 0 and 1,
	// and a random size, and one tree past 65536 leaves has level-2 tiles.
	sizes := []int64{0, 1, 2, 3, 7, 255, 256, 257, 511, 513,
		1000 + rng.Int63n(3000), 65536 + 1 + rng.Int63n(700)}
	for treeNumber, size := range sizes {
		tree, err := generateTree(rng, size)
		if err != nil {
			return nil, fmt.Errorf("tree of size %d: %v", size, err)
		}
		// A checkpoint per tree; every third one has extension lines.
		cp := &checkpointCase{Origin: "go.example/log", Size: size, Key: 0, Extensions: []string{}}
		if treeNumber%3 == 2 {
			cp.Extensions = []string{"extension line one", "ext2 — ünïcödé"}
		}
		store, err := buildStore(mustDecodeEntries(tree.Entries))
		if err != nil {
			return nil, err
		}
		root, err := rfcTreeHash(size, store)
		if err != nil {
			return nil, err
		}
		cp.Root = b64(root[:])
		text := fmt.Sprintf("%s\n%d\n%s\n", cp.Origin, cp.Size, cp.Root)
		for _, ext := range cp.Extensions {
			text += ext + "\n"
		}
		if cp.Signed, err = sign(text, cp.Key); err != nil {
			return nil, err
		}
		tree.Checkpoint = cp
		file.Trees = append(file.Trees, *tree)
	}

	// Tile paths: the x-grouping of N at its edges, several levels, full and
	// partial widths.
	indexes := []int64{0, 1, 5, 999, 1000, 1001, 999999, 1000000, 1234067,
		1 << 40, 1<<62 - 1, 1<<63 - 1, rng.Int63()}
	for _, level := range []int{0, 1, 2, 5, 63} {
		for _, index := range indexes {
			for _, width := range []int{1, 100, 255, 256} {
				t := tlog.Tile{H: tileHeight, L: level, N: index, W: width}
				file.TilePaths = append(file.TilePaths, tilePath{
					Level: level, Index: index, Width: width,
					Path: c2spPath(t.Path()), GoPath: t.Path(),
				})
			}
		}
	}

	// Growth: which tiles change when a tree grows.
	pairs := [][2]int64{{0, 1}, {0, 256}, {1, 2}, {255, 256}, {256, 257}, {300, 301},
		{65535, 65536}, {65536, 65537}, {1000, 70000}, {16777215, 16777216}}
	for i := 0; i < 20; i++ {
		oldSize := rng.Int63n(1 << 20)
		pairs = append(pairs, [2]int64{oldSize, oldSize + 1 + rng.Int63n(5000)})
	}
	for _, pair := range pairs {
		c := growthCase{OldSize: pair[0], NewSize: pair[1]}
		for _, t := range tlog.NewTiles(tileHeight, pair[0], pair[1]) {
			c.GoPaths = append(c.GoPaths, t.Path())
		}
		file.Growth = append(file.Growth, c)
	}
	return file, nil
}

func randomText(rng *rand.Rand) string {
	var b strings.Builder
	lines := 1 + rng.Intn(5)
	for i := 0; i < lines; i++ {
		length := 1 + rng.Intn(60)
		for j := 0; j < length; j++ {
			b.WriteByte(byte(' ' + rng.Intn(95))) // printable ASCII
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func mustDecodeEntries(encoded []string) [][]byte {
	entries := make([][]byte, len(encoded))
	for i, e := range encoded {
		data, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			panic(err)
		}
		entries[i] = data
	}
	return entries
}

func generateTree(rng *rand.Rand, size int64) (*treeCase, error) {
	// Empty slices, not nil, so that the JSON has [] rather than null.
	tree := &treeCase{Size: size, Entries: []string{}, Tiles: []tileData{},
		Inclusion: []inclusionCase{}, Consistency: []consistencyCase{}}
	entries := make([][]byte, size)
	for i := range entries {
		// Small random entries, some empty, a few longer.
		length := rng.Intn(48)
		if rng.Intn(100) == 0 {
			length = 200 + rng.Intn(800)
		}
		entries[i] = make([]byte, length)
		rng.Read(entries[i])
		tree.Entries = append(tree.Entries, b64(entries[i]))
	}
	store, err := buildStore(entries)
	if err != nil {
		return nil, err
	}
	root, err := tlog.TreeHash(size, store)
	if err != nil {
		return nil, err
	}
	// Go's own root, all zeros for the empty tree: the Rust side checks that
	// this is the one place where the two differ.
	tree.Root = b64(root[:])

	// Every tile Go would publish for the tree, including each width of the
	// partial tiles.
	for _, t := range tlog.NewTiles(tileHeight, 0, size) {
		data, err := tlog.ReadTileData(t, store)
		if err != nil {
			return nil, err
		}
		tree.Tiles = append(tree.Tiles, tileData{
			Path: c2spPath(t.Path()), GoPath: t.Path(),
			Level: t.L, Index: t.N, Width: t.W, Data: b64(data),
		})
	}
	if size == 0 {
		return tree, nil
	}

	// Inclusion proofs: the first and last leaf in the whole tree, then
	// random leaves in random prefixes of it.
	type pair struct{ index, treeSize int64 }
	inclusion := []pair{{0, size}, {size - 1, size}}
	for i := 0; i < 10; i++ {
		index := rng.Int63n(size)
		treeSize := size
		if rng.Intn(2) == 0 {
			treeSize = index + 1 + rng.Int63n(size-index)
		}
		inclusion = append(inclusion, pair{index, treeSize})
	}
	for _, p := range inclusion {
		proof, err := tlog.ProveRecord(p.treeSize, p.index, store)
		if err != nil {
			return nil, err
		}
		root, err := tlog.TreeHash(p.treeSize, store)
		if err != nil {
			return nil, err
		}
		tree.Inclusion = append(tree.Inclusion, inclusionCase{
			Index: p.index, TreeSize: p.treeSize, Root: b64(root[:]),
			Proof: hashesToBase64(proof),
		})
	}

	// Consistency proofs: from 1, from the size itself (empty proof), then
	// random pairs of prefixes.
	sizes := [][2]int64{{1, size}, {size, size}}
	for i := 0; i < 10; i++ {
		newSize := 1 + rng.Int63n(size)
		if rng.Intn(2) == 0 {
			newSize = size
		}
		sizes = append(sizes, [2]int64{1 + rng.Int63n(newSize), newSize})
	}
	for _, s := range sizes {
		proof, err := tlog.ProveTree(s[1], s[0], store)
		if err != nil {
			return nil, err
		}
		oldRoot, err := tlog.TreeHash(s[0], store)
		if err != nil {
			return nil, err
		}
		newRoot, err := tlog.TreeHash(s[1], store)
		if err != nil {
			return nil, err
		}
		tree.Consistency = append(tree.Consistency, consistencyCase{
			OldSize: s[0], NewSize: s[1],
			OldRoot: b64(oldRoot[:]), NewRoot: b64(newRoot[:]),
			Proof: hashesToBase64(proof),
		})
	}
	return tree, nil
}

// verifier collects failures, each naming the item that failed.
type verifier struct {
	failures []string
}

func (v *verifier) failf(format string, args ...interface{}) {
	v.failures = append(v.failures, fmt.Sprintf(format, args...))
}

func decodeHash(text string) (tlog.Hash, error) {
	return tlog.ParseHash(text)
}

func decodeProof(texts []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(texts))
	for i, text := range texts {
		h, err := tlog.ParseHash(text)
		if err != nil {
			return nil, fmt.Errorf("proof hash %d: %v", i, err)
		}
		out[i] = h
	}
	return out, nil
}

func equalHashes(a, b []tlog.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func verify(file *interopFile) []string {
	v := &verifier{}

	// Keys: Go parses the verifier key and the private key, and derives the
	// same verifier key text from the private key's seed.
	verifiers := make([]note.Verifier, len(file.Keys))
	signers := make([]note.Signer, len(file.Keys))
	for i, key := range file.Keys {
		verifier, err := note.NewVerifier(key.Vkey)
		if err != nil {
			v.failf("key %d (%s): note.NewVerifier(%q): %v", i, key.Name, key.Vkey, err)
			continue
		}
		verifiers[i] = verifier
		if verifier.Name() != key.Name {
			v.failf("key %d (%s): verifier key names %q", i, key.Name, verifier.Name())
		}
		if key.Skey == "" {
			continue
		}
		signer, err := note.NewSigner(key.Skey)
		if err != nil {
			v.failf("key %d (%s): note.NewSigner: %v", i, key.Name, err)
			continue
		}
		signers[i] = signer
		if signer.Name() != key.Name || signer.KeyHash() != verifier.KeyHash() {
			v.failf("key %d (%s): private key is %s+%08x, verifier key %s+%08x",
				i, key.Name, signer.Name(), signer.KeyHash(), verifier.Name(), verifier.KeyHash())
		}
		// PRIVATE+KEY+<name>+<hex ID>+<base64>; the base64 may hold '+'.
		fields := strings.SplitN(key.Skey, "+", 5)
		raw, err := base64.StdEncoding.DecodeString(fields[len(fields)-1])
		if err != nil || len(raw) != 1+ed25519.SeedSize {
			v.failf("key %d (%s): private key does not hold a 32-byte seed", i, key.Name)
			continue
		}
		public := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
		derived, err := note.NewEd25519VerifierKey(key.Name, public)
		if err != nil || derived != key.Vkey {
			v.failf("key %d (%s): verifier key from the private key is %q, file has %q (%v)",
				i, key.Name, derived, key.Vkey, err)
		}
	}

	// Notes: Go opens them with the named keys, and signing the same text
	// with the same private keys gives the same bytes (Ed25519 is
	// deterministic).
	for i, c := range file.Notes {
		var list []note.Verifier
		var sigs []note.Signer
		for _, k := range c.Keys {
			if k < 0 || k >= len(verifiers) || verifiers[k] == nil {
				v.failf("note %d: unknown key %d", i, k)
				continue
			}
			list = append(list, verifiers[k])
			if signers[k] != nil {
				sigs = append(sigs, signers[k])
			}
		}
		opened, err := note.Open([]byte(c.Signed), note.VerifierList(list...))
		if err != nil {
			v.failf("note %d: note.Open: %v", i, err)
			continue
		}
		if opened.Text != c.Text {
			v.failf("note %d: text %q, want %q", i, opened.Text, c.Text)
		}
		if len(opened.Sigs) != len(c.Keys) {
			v.failf("note %d: %d verified signatures, want %d", i, len(opened.Sigs), len(c.Keys))
		}
		if len(sigs) == len(c.Keys) {
			resigned, err := note.Sign(&note.Note{Text: c.Text}, sigs...)
			if err != nil || string(resigned) != c.Signed {
				v.failf("note %d: Go signs it as %q, file has %q (%v)", i, resigned, c.Signed, err)
			}
		}
	}

	for i := range file.Trees {
		verifyTree(v, i, &file.Trees[i], verifiers)
	}
	return v.failures
}

// memTiles serves tiles to tlog.TileHashReader, which authenticates each
// tile it reads against the tree's root.
type memTiles map[string][]byte

func (m memTiles) Height() int { return tileHeight }

func (m memTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, ok := m[t.Path()]
		if !ok {
			return nil, fmt.Errorf("tile %s (%s) is missing", c2spPath(t.Path()), t.Path())
		}
		out[i] = data
	}
	return out, nil
}

func (m memTiles) SaveTiles([]tlog.Tile, [][]byte) {}

func verifyTree(v *verifier, number int, tree *treeCase, verifiers []note.Verifier) {
	name := fmt.Sprintf("tree %d (size %d)", number, tree.Size)
	if int64(len(tree.Entries)) != tree.Size {
		v.failf("%s: %d entries", name, len(tree.Entries))
		return
	}
	entries := make([][]byte, len(tree.Entries))
	for i, e := range tree.Entries {
		data, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			v.failf("%s: entry %d: %v", name, i, err)
			return
		}
		entries[i] = data
	}
	store, err := buildStore(entries)
	if err != nil {
		v.failf("%s: %v", name, err)
		return
	}
	root, err := decodeHash(tree.Root)
	if err != nil {
		v.failf("%s: root: %v", name, err)
		return
	}
	goRoot, err := rfcTreeHash(tree.Size, store)
	if err != nil || goRoot != root {
		v.failf("%s: root is %s, Go computes %s from the entries (%v)", name, tree.Root, goRoot, err)
	}

	// Tiles: each path parses in Go (with the height added), its bytes are
	// what Go computes, and every tile the tree has is there.
	tiles := memTiles{}
	for _, t := range tree.Tiles {
		gp, err := goPath(t.Path)
		if err != nil {
			v.failf("%s: tile %s: %v", name, t.Path, err)
			continue
		}
		parsed, err := tlog.ParseTilePath(gp)
		if err != nil {
			v.failf("%s: tile %s: tlog.ParseTilePath(%q): %v", name, t.Path, gp, err)
			continue
		}
		if parsed.L != t.Level || parsed.N != t.Index || parsed.W != t.Width || parsed.Path() != gp {
			v.failf("%s: tile %s: Go reads it as level %d index %d width %d, file says %d %d %d",
				name, t.Path, parsed.L, parsed.N, parsed.W, t.Level, t.Index, t.Width)
		}
		data, err := base64.StdEncoding.DecodeString(t.Data)
		if err != nil {
			v.failf("%s: tile %s: %v", name, t.Path, err)
			continue
		}
		want, err := tlog.ReadTileData(parsed, store)
		if err != nil || !bytes.Equal(data, want) {
			v.failf("%s: tile %s: bytes differ from Go's (%d bytes, Go %d) (%v)", name, t.Path, len(data), len(want), err)
		}
		tiles[gp] = data
	}
	for _, t := range tlog.NewTiles(tileHeight, 0, tree.Size) {
		if t.W != tileWidth(t.L, t.N, tree.Size) {
			continue // Go also lists the narrower partial tiles.
		}
		if _, ok := tiles[t.Path()]; !ok {
			v.failf("%s: tile %s is missing", name, c2spPath(t.Path()))
		}
	}
	if tree.Size > 0 {
		// Go's tile reader checks every tile it reads against the root.
		reader := tlog.TileHashReader(tlog.Tree{N: tree.Size, Hash: root}, tiles)
		if fromTiles, err := tlog.TreeHash(tree.Size, reader); err != nil || fromTiles != root {
			v.failf("%s: root from the tiles is %s, want %s (%v)", name, fromTiles, tree.Root, err)
		}
	}

	// Entry bundles (c2sp.org/tlog-tiles): big-endian uint16 length, then
	// the entry, for each entry of a level-0 tile.
	for _, b := range tree.Bundles {
		verifyBundle(v, name, b, entries)
	}

	for i, c := range tree.Inclusion {
		what := fmt.Sprintf("%s: inclusion proof %d (index %d, tree size %d)", name, i, c.Index, c.TreeSize)
		if c.Index < 0 || c.Index >= c.TreeSize || c.TreeSize > tree.Size {
			v.failf("%s: out of range", what)
			continue
		}
		proof, err := decodeProof(c.Proof)
		if err != nil {
			v.failf("%s: %v", what, err)
			continue
		}
		caseRoot, err := decodeHash(c.Root)
		if err != nil {
			v.failf("%s: root: %v", what, err)
			continue
		}
		if want, err := tlog.TreeHash(c.TreeSize, store); err != nil || want != caseRoot {
			v.failf("%s: root is %s, Go computes %s (%v)", what, c.Root, want, err)
		}
		leaf := tlog.RecordHash(entries[c.Index])
		if err := tlog.CheckRecord(proof, c.TreeSize, caseRoot, c.Index, leaf); err != nil {
			v.failf("%s: tlog.CheckRecord: %v", what, err)
		}
		if want, err := tlog.ProveRecord(c.TreeSize, c.Index, store); err != nil || !equalHashes(proof, want) {
			v.failf("%s: differs from Go's tlog.ProveRecord (%v)", what, err)
		}
	}

	for i, c := range tree.Consistency {
		what := fmt.Sprintf("%s: consistency proof %d (%d to %d)", name, i, c.OldSize, c.NewSize)
		if c.OldSize < 1 || c.OldSize > c.NewSize || c.NewSize > tree.Size {
			v.failf("%s: out of range", what)
			continue
		}
		proof, err := decodeProof(c.Proof)
		if err != nil {
			v.failf("%s: %v", what, err)
			continue
		}
		oldRoot, err1 := decodeHash(c.OldRoot)
		newRoot, err2 := decodeHash(c.NewRoot)
		if err1 != nil || err2 != nil {
			v.failf("%s: roots: %v %v", what, err1, err2)
			continue
		}
		if err := tlog.CheckTree(proof, c.NewSize, newRoot, c.OldSize, oldRoot); err != nil {
			v.failf("%s: tlog.CheckTree: %v", what, err)
		}
		if want, err := tlog.ProveTree(c.NewSize, c.OldSize, store); err != nil || !equalHashes(proof, want) {
			v.failf("%s: differs from Go's tlog.ProveTree (%v)", what, err)
		}
	}

	if cp := tree.Checkpoint; cp != nil {
		verifyCheckpoint(v, name, cp, root, tree.Size, verifiers)
	}
}

// tileWidth is the width of tile index at level in a tree of size leaves.
func tileWidth(level int, index int64, size int64) int {
	count := size >> (tileHeight * uint(level))
	start := index << tileHeight
	if count <= start {
		return 0
	}
	if count-start >= 1<<tileHeight {
		return 1 << tileHeight
	}
	return int(count - start)
}

func verifyBundle(v *verifier, name string, b tileData, entries [][]byte) {
	what := fmt.Sprintf("%s: bundle %s", name, b.Path)
	rest := strings.TrimPrefix(b.Path, "tile/entries/")
	if rest == b.Path {
		v.failf("%s: not an entry bundle path", what)
		return
	}
	// The same index and width as the level-0 tile at the same place.
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/0/%s", tileHeight, rest))
	if err != nil || t.N != b.Index || t.W != b.Width {
		v.failf("%s: Go reads the path as index %d width %d, file says %d %d (%v)", what, t.N, t.W, b.Index, b.Width, err)
		return
	}
	data, err := base64.StdEncoding.DecodeString(b.Data)
	if err != nil {
		v.failf("%s: %v", what, err)
		return
	}
	first := t.N << tileHeight
	for k := 0; k < t.W; k++ {
		if len(data) < 2 {
			v.failf("%s: ends before entry %d", what, k)
			return
		}
		length := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+length {
			v.failf("%s: entry %d is cut short", what, k)
			return
		}
		index := first + int64(k)
		if index >= int64(len(entries)) || !bytes.Equal(data[2:2+length], entries[index]) {
			v.failf("%s: entry %d differs from entry %d of the tree", what, k, index)
			return
		}
		data = data[2+length:]
	}
	if len(data) != 0 {
		v.failf("%s: %d bytes after the last entry", what, len(data))
	}
}

func verifyCheckpoint(v *verifier, name string, cp *checkpointCase, root tlog.Hash, size int64, verifiers []note.Verifier) {
	what := fmt.Sprintf("%s: checkpoint", name)
	if cp.Key < 0 || cp.Key >= len(verifiers) || verifiers[cp.Key] == nil {
		v.failf("%s: unknown key %d", what, cp.Key)
		return
	}
	opened, err := note.Open([]byte(cp.Signed), note.VerifierList(verifiers[cp.Key]))
	if err != nil {
		v.failf("%s: note.Open: %v", what, err)
		return
	}
	// c2sp.org/tlog-checkpoint: origin, decimal size, base64 root, then
	// extension lines.
	lines := strings.Split(strings.TrimSuffix(opened.Text, "\n"), "\n")
	if len(lines) < 3 {
		v.failf("%s: %d lines of text", what, len(lines))
		return
	}
	if lines[0] != cp.Origin {
		v.failf("%s: origin %q, want %q", what, lines[0], cp.Origin)
	}
	if parsed, err := strconv.ParseInt(lines[1], 10, 64); err != nil || parsed != size || strconv.FormatInt(parsed, 10) != lines[1] {
		v.failf("%s: size line %q, want %d", what, lines[1], size)
	}
	if h, err := tlog.ParseHash(lines[2]); err != nil || h != root {
		v.failf("%s: root line %q, want %s", what, lines[2], b64(root[:]))
	}
	if got := lines[3:]; strings.Join(got, "\n") != strings.Join(cp.Extensions, "\n") {
		v.failf("%s: extension lines %q, want %q", what, got, cp.Extensions)
	}
}

// writeLog writes a tlog-tiles folder of entries "go entry <i>" for tree
// sizes old and then size; see the package comment. With skeyFile, the
// private key goes there (for a log to be taken over with its key).
func writeLog(dir string, seed, old, size int64, skeyFile string) error {
	rng := rand.New(rand.NewSource(seed))
	name := "go.example/interop-log"
	skey, vkey, err := note.GenerateKey(rng, name)
	if err != nil {
		return err
	}
	if skeyFile != "" {
		if err := os.WriteFile(skeyFile, []byte(skey+"\n"), 0o600); err != nil {
			return err
		}
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	entries := make([][]byte, size)
	var listing strings.Builder
	for i := range entries {
		entries[i] = []byte(fmt.Sprintf("go entry %d %s", i, strings.Repeat("g", i%5)))
		listing.Write(entries[i])
		listing.WriteByte('\n')
	}
	write := func(path string, data []byte) error {
		full := dir + "/" + path
		if err := os.MkdirAll(full[:strings.LastIndex(full, "/")], 0o755); err != nil {
			return err
		}
		return os.WriteFile(full, data, 0o644)
	}
	for _, step := range []struct {
		from, to int64
		file     string
	}{{0, old, "checkpoint.old"}, {old, size, "checkpoint"}} {
		store, err := buildStore(entries[:step.to])
		if err != nil {
			return err
		}
		for _, tile := range tlog.NewTiles(tileHeight, step.from, step.to) {
			data, err := tlog.ReadTileData(tile, store)
			if err != nil {
				return err
			}
			if err := write(c2spPath(tile.Path()), data); err != nil {
				return err
			}
			if tile.L != 0 {
				continue
			}
			// The entry bundle beside each level-0 tile.
			var bundle []byte
			start := tile.N << tileHeight
			for _, entry := range entries[start : start+int64(tile.W)] {
				bundle = binary.BigEndian.AppendUint16(bundle, uint16(len(entry)))
				bundle = append(bundle, entry...)
			}
			path := strings.Replace(c2spPath(tile.Path()), "tile/0/", "tile/entries/", 1)
			if err := write(path, bundle); err != nil {
				return err
			}
		}
		root, err := rfcTreeHash(step.to, store)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("%s\n%d\n%s\n", name, step.to, b64(root[:]))
		signed, err := note.Sign(&note.Note{Text: text}, signer)
		if err != nil {
			return err
		}
		if err := write(step.file, signed); err != nil {
			return err
		}
	}
	if err := write("vkey", []byte(vkey+"\n")); err != nil {
		return err
	}
	return write("entries.txt", []byte(listing.String()))
}
