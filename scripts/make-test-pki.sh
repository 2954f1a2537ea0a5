#!/usr/bin/env bash
# Makes a test PKI for SNC as TLS: a CA and one certificate per router name, each router in
# a SECUDIR-style directory of its own (saprouter.crt, saprouter.key, ca.crt).
#
#   scripts/make-test-pki.sh DIR [CN ...]      (default CNs: SAPROUTER1 SAPROUTER2)
#
# DIR/ca/ca.crt, DIR/ca/ca.key          the test CA (keep ca.key away from the routers)
# DIR/<cn in lower case>/saprouter.crt   router certificate, subject CN=<cn>
# DIR/<cn in lower case>/saprouter.key   its private key (mode 600)
# DIR/<cn in lower case>/ca.crt          copy of the CA certificate
#
# Then: SECUDIR=DIR/saprouter1 saprouter -r -K "p:CN=SAPROUTER1" ...
# Test material only: EC P-256 keys, one year of validity, no revocation.
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 DIR [CN ...]" >&2
    exit 2
fi
command -v openssl >/dev/null || { echo "$0: openssl not found (apt-get install openssl)" >&2; exit 1; }

dir=$1
shift
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(SAPROUTER1 SAPROUTER2)
days=${DAYS:-365}

umask 077
mkdir -p "$dir/ca"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -s "$dir/ca/ca.key" ]; then
    openssl ecparam -name prime256v1 -genkey -noout -out "$dir/ca/ca.key"
    openssl req -x509 -new -key "$dir/ca/ca.key" -sha256 -days "$days" \
        -subj "/O=saprouter-rs test/CN=saprouter-rs test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$dir/ca/ca.crt"
    echo "CA:     $dir/ca/ca.crt"
fi

cat > "$tmp/router.ext" <<'EXT'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EXT

for cn in "${names[@]}"; do
    out="$dir/$(printf '%s' "$cn" | tr '[:upper:]' '[:lower:]')"
    mkdir -p "$out"
    openssl ecparam -name prime256v1 -genkey -noout -out "$tmp/key.pem"
    openssl pkcs8 -topk8 -nocrypt -in "$tmp/key.pem" -out "$out/saprouter.key"
    openssl req -new -key "$out/saprouter.key" -subj "/CN=$cn" -out "$tmp/req.csr"
    openssl x509 -req -in "$tmp/req.csr" -CA "$dir/ca/ca.crt" -CAkey "$dir/ca/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days "$days" -sha256 \
        -extfile "$tmp/router.ext" -out "$out/saprouter.crt" 2>/dev/null
    cp "$dir/ca/ca.crt" "$out/ca.crt"
    chmod 600 "$out/saprouter.key"
    chmod 644 "$out/saprouter.crt" "$out/ca.crt"
    echo "router: $out  (-K \"p:CN=$cn\")"
done
