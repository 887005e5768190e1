#!/usr/bin/env bash
# Generates the TLS material for the test broker and its clients.
#
# Usage: scripts/kafka/certs.sh DIR
#
# Every store and every encrypted key uses the password "changeit". Files in DIR:
#
#   ca.key                          CA private key (PKCS#8 PEM, unencrypted)
#   ca.pem                          CA certificate (self-signed, the trust anchor)
#
#   broker.key / broker.pem         broker key and certificate; SAN DNS:localhost,
#                                   IP:127.0.0.1, IP:::1 so hostname checks pass
#   broker.keystore.p12             broker key + chain (PKCS12, alias "broker")
#   broker.truststore.p12           CA certificate (PKCS12); lets the broker verify
#                                   client certificates for mutual TLS
#
#   client.truststore.pem           CA certificate (PEM) \
#   client.truststore.jks           CA certificate (JKS)  > trust the broker
#   client.truststore.p12           CA certificate (PKCS12) /
#
#   client.pem                      client certificate (CN=sluice-test-client)
#   client.chain.pem                client certificate followed by the CA
#   client.key.pem                  client key, PKCS#8 PEM, unencrypted
#   client.key.encrypted.pem        client key, encrypted PKCS#8 PEM ("ENCRYPTED
#                                   PRIVATE KEY"), PBES2 with PBKDF2-HMAC-SHA256
#                                   and AES-256-CBC: what `openssl pkcs8 -topk8`
#                                   writes today. librdkafka reads it; the Java
#                                   17 Kafka client does not ("PBES2
#                                   SecretKeyFactory not available").
#   client.key.encrypted-3des.pem   the same key encrypted with the older
#                                   PKCS#12 PBE (SHA1 + 3DES), the form the Java
#                                   Kafka client accepts as ssl.keystore.key with
#                                   ssl.key.password. Both passwords: changeit.
#   client.keystore.pem             client.key.pem + client.chain.pem in one file
#   client.keystore.encrypted.pem   client.key.encrypted.pem + client.chain.pem
#   client.keystore.encrypted-3des.pem  client.key.encrypted-3des.pem + chain
#   client.keystore.jks             client key + chain (JKS, alias "client")
#   client.keystore.p12             client key + chain (PKCS12, alias "client")
#
# Idempotent: a DIR that already holds a complete set whose certificates stay
# valid for another day is left alone, so start.sh can be rerun on one DIR.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi
dir="$1"
pass="changeit"
days=825 # the longest validity that strict TLS clients accept for leaf certs

for tool in openssl keytool; do
  command -v "${tool}" >/dev/null 2>&1 || {
    echo "certs.sh: ${tool} not found (openssl package; keytool comes with Java 17)" >&2
    exit 1
  }
done

mkdir -p "${dir}"
cd "${dir}"

if [[ -f .complete ]] &&
  openssl x509 -in ca.pem -noout -checkend 86400 >/dev/null 2>&1 &&
  openssl x509 -in broker.pem -noout -checkend 86400 >/dev/null 2>&1 &&
  openssl x509 -in client.pem -noout -checkend 86400 >/dev/null 2>&1; then
  exit 0
fi
rm -f .complete

# A fresh set each time the old one is incomplete: mixing a new CA with an old
# leaf certificate would produce a chain that fails in confusing ways.
rm -f ca.* broker.* client.* ./*.csr ./*.ext

# RSA 2048 rather than EC: every client library under test (sarama, librdkafka,
# the JDK) supports it in every store format.
genkey() {
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null
}

genkey ca.key
openssl req -x509 -new -key ca.key -sha256 -days "${days}" \
  -subj "/O=Sluice test/CN=Sluice test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem

# sign NAME SUBJECT EXTFILE: issues NAME.pem from NAME.key with the CA.
sign() {
  openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -sha256 -days "${days}" -extfile "$3" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}

genkey broker.key
cat >broker.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
EXT
sign broker "/O=Sluice test/CN=localhost" broker.ext

genkey client.key
cat >client.ext <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=clientAuth
EXT
sign client "/O=Sluice test/CN=sluice-test-client" client.ext
rm -f ./*.ext ca.srl

# PEM forms. genpkey already writes PKCS#8; copy it under the documented name.
cp client.key client.key.pem
# Two encryptions of one key, because readers disagree (see the list above):
# a gateway that accepts user-supplied encrypted keys meets both in practice.
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256 -in client.key \
  -passout "pass:${pass}" -out client.key.encrypted.pem
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in client.key \
  -passout "pass:${pass}" -out client.key.encrypted-3des.pem
cat client.pem ca.pem >client.chain.pem
cat client.key.pem client.chain.pem >client.keystore.pem
cat client.key.encrypted.pem client.chain.pem >client.keystore.encrypted.pem
cat client.key.encrypted-3des.pem client.chain.pem >client.keystore.encrypted-3des.pem
cp ca.pem client.truststore.pem
rm -f client.key

# keytool is a JVM per call; C1-only and the serial GC trim its start-up CPU,
# which is what a busy two-core machine is short of.
kt() { keytool -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC "$@"; }

# Key stores: openssl writes PKCS12 with the chain, keytool converts to JKS.
p12() { # p12 NAME KEYFILE CERTFILE OUT
  openssl pkcs12 -export -name "$1" -inkey "$2" -in "$3" -certfile ca.pem \
    -passout "pass:${pass}" -out "$4"
}
p12 broker broker.key broker.pem broker.keystore.p12
p12 client client.key.pem client.pem client.keystore.p12
kt -importkeystore -noprompt \
  -srckeystore client.keystore.p12 -srcstoretype PKCS12 -srcstorepass "${pass}" \
  -destkeystore client.keystore.jks -deststoretype JKS -deststorepass "${pass}" \
  -destkeypass "${pass}" >/dev/null 2>&1

# Trust stores go through keytool: a PKCS12 file that openssl writes with only
# certificates holds no "trusted certificate" entries in the JDK's eyes.
truststore() { # truststore TYPE OUT
  kt -importcert -noprompt -alias ca -file ca.pem \
    -storetype "$1" -keystore "$2" -storepass "${pass}" >/dev/null 2>&1
}
truststore PKCS12 broker.truststore.p12
truststore PKCS12 client.truststore.p12
truststore JKS client.truststore.jks

# Private keys are secrets even in tests: keep them out of other users' reach.
chmod 600 ./*.key ./*.key*.pem client.keystore*.pem ./*.p12 ./*.jks
touch .complete
