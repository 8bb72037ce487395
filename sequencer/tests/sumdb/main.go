// sumdblog serves a Go checksum database over HTTP, for the tests of
// `stele mirror --sumdb` (sequencer/tests/mirror.rs). The log is Go's own:
// golang.org/x/mod/sumdb's TestServer keeps the records and their tree
// (tlog), signs the tree note (note), and sumdb's Server answers /latest,
// /lookup/..., /tile/8/<L>/<N>[.p/<W>] and /tile/8/data/<N>[.p/<W>] exactly
// as a checksum database does.
//
//	sumdblog -listen ADDR -seed N -records N -vkey FILE
//
// The signing key is made from the seed; its verifier key is written to
// FILE. Once serving, it prints "listening on http://ADDR". A test grows
// the log with POST /grow?n=K (K more records, answered with the new tree
// size); every other path is the checksum database's.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	seed := flag.Int64("seed", 1, "seed of the signing key")
	records := flag.Int("records", 300, "records to start with")
	vkeyFile := flag.String("vkey", "", "file to write the verifier key to")
	flag.Parse()

	skey, vkey, err := note.GenerateKey(rand.New(rand.NewSource(*seed)), "sumdb.example/test")
	if err != nil {
		fatalf("generating the key: %v", err)
	}
	if *vkeyFile != "" {
		if err := os.WriteFile(*vkeyFile, []byte(vkey+"\n"), 0o644); err != nil {
			fatalf("writing %s: %v", *vkeyFile, err)
		}
	}

	// The go.sum lines of a module version: two lines, as the real
	// checksum database holds them, with hashes made from the name.
	gosum := func(path, version string) ([]byte, error) {
		sum := func(what string) string {
			digest := sha256.Sum256([]byte(what))
			return base64.StdEncoding.EncodeToString(digest[:])
		}
		return []byte(fmt.Sprintf("%s %s h1:%s\n%s %s/go.mod h1:%s\n",
			path, version, sum(path+"@"+version),
			path, version, sum(path+"@"+version+"/go.mod"))), nil
	}
	server := sumdb.NewTestServer(skey, gosum)

	var mu sync.Mutex
	next := 0
	grow := func(n int) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < n; i++ {
			version := module.Version{Path: fmt.Sprintf("example.com/m%05d", next), Version: "v1.0." + strconv.Itoa(next%7)}
			if _, err := server.Lookup(context.Background(), version); err != nil {
				return next, err
			}
			next++
		}
		return next, nil
	}
	if _, err := grow(*records); err != nil {
		fatalf("adding records: %v", err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/grow", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "n must be a count", http.StatusBadRequest)
			return
		}
		size, err := grow(n)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%d\n", size)
	})
	mux.Handle("/", sumdb.NewServer(server))

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		fatalf("listening on %s: %v", *listen, err)
	}
	fmt.Printf("listening on http://%s\n", listener.Addr())
	os.Stdout.Sync()
	if err := http.Serve(listener, mux); err != nil {
		fatalf("serving: %v", err)
	}
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "sumdblog: "+format+"\n", args...)
	os.Exit(2)
}
