#!/bin/bash
# TLS, SASL and ACLs against a real Kafka cluster of the test's own: each
# node also listens for SASL_SSL with SCRAM-SHA-512, its certificate
# signed by a CA made here with openssl (the keystore checked with
# keytool), and authorizes with ACLs.  Two SCRAM users: alice may use the
# namespace "a" (every topic repdisk.a.*), bob the namespace "b".
#   - alice mounts namespace a over SASL_SSL, the CA and her password in a
#     --kafka-config file; a follower with the same settings converges;
#   - a wrong password: the mount is refused with a message that says
#     authentication failed, and no topic appears;
#   - a CA that did not sign the brokers' certificate: refused, the message
#     says the certificate could not be verified, nothing written;
#   - alice on bob's namespace: refused, the message says she is not
#     authorized, and bob's topics hold only what bob wrote.
#
# The cluster runs Kafka 3.9.1, the fallback version: librdkafka before
# 2.6.1 (Debian 12 has 2.0.2) builds its SCRAM client-final message with
# the client nonce twice, which Kafka 4.x brokers refuse as invalid
# credentials (librdkafka#4895); 3.9 accepts it.  docs/KAFKA.md says so.
. "$(dirname "$0")/../lib/lib.sh"
requires openssl keytool kcat fusermount3 truncate cmp

export KAFKA_CLUSTER_DIR=$T/kafka
mkdir -p "$KAFKA_CLUSTER_DIR/tls"
tls=$KAFKA_CLUSTER_DIR/tls
pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$pw" > "$tls/password"

# --- certificates: a CA, the brokers' key and certificate (127.0.0.1) ----
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=repdisk test CA" \
	-keyout "$tls/ca.key" -out "$tls/ca.pem" 2> "$T/openssl.log" || fail "openssl: CA"
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
	-keyout "$tls/broker.key" -out "$tls/broker.csr" 2>> "$T/openssl.log" || fail "openssl: key"
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$tls/ext"
openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
	-CAcreateserial -days 2 -extfile "$tls/ext" -out "$tls/broker.pem" 2>> "$T/openssl.log" ||
	fail "openssl: sign"
openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -name broker \
	-passout "pass:$pw" -out "$tls/broker.p12" 2>> "$T/openssl.log" || fail "openssl: pkcs12"
keytool -list -storetype PKCS12 -keystore "$tls/broker.p12" -storepass "$pw" > "$T/keytool.out" 2>&1 ||
	fail "keytool: $(cat "$T/keytool.out")"
grep -q "broker, .*PrivateKeyEntry" "$T/keytool.out" || fail "keytool: no key entry: $(cat "$T/keytool.out")"
# a CA of nobody's
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
	-keyout "$T/other.key" -out "$T/other.pem" 2>> "$T/openssl.log" || fail "openssl: other CA"

alice_pw=alice-$RANDOM-$RANDOM bob_pw=bob-$RANDOM-$RANDOM
printf 'alice %s\nbob %s\n' "$alice_pw" "$bob_pw" > "$KAFKA_CLUSTER_DIR/scram-users"

KAFKA_VERSION=3.9.1 KAFKA_CLUSTER_SASL=1 start_kafka_cluster
sasl_bs=$(kcluster bootstrap-sasl)

# --- ACLs, given on the plaintext listener (the cluster's own) -------------
acl() { kcluster admin kafka-acls "$@" > "$T/acl.out" 2>&1 || fail "kafka-acls $*: $(cat "$T/acl.out")"; }
for u in a:alice b:bob; do
	ns=${u%%:*} user=${u#*:}
	acl --add --allow-principal "User:$user" --operation All \
		--topic "repdisk.$ns." --resource-pattern-type prefixed
	acl --add --allow-principal "User:$user" --operation IdempotentWrite --cluster
done

# kconfig FILE USER PASSWORD CA: a --kafka-config file, mode 0600
kconfig() {
	cat > "$1" <<-EOF
	security.protocol=SASL_SSL
	sasl.mechanisms=SCRAM-SHA-512
	sasl.username=$2
	sasl.password=$3
	ssl.ca.location=$4
	EOF
	chmod 600 "$1"
}
kconfig "$T/alice.conf" alice "$alice_pw" "$tls/ca.pem"
kconfig "$T/bob.conf" bob "$bob_pw" "$tls/ca.pem"
kconfig "$T/wrongpw.conf" alice "not-$alice_pw" "$tls/ca.pem"
kconfig "$T/wrongca.conf" alice "$alice_pw" "$T/other.pem"
topics() { kcat -L -b "$KAFKA_BOOTSTRAP" 2> /dev/null | grep -o 'topic "repdisk\.[^"]*"' | sort; }

# --- bob writes his namespace; alice hers, and a follower of hers converges
LOGB="kafka:$sasl_bs?ns=b&timeout_ms=15000"
mount_disks "$T/bdata" "$T/bmnt" --log "$LOGB" --kafka-config "$T/bob.conf"
truncate -s 4M "$T/bmnt/bob.img"
head -c 1M /dev/urandom > "$T/bob.bin"
dd if="$T/bob.bin" of="$T/bmnt/bob.img" bs=64k oflag=direct conv=notrunc status=none || fail "bob's write"
unmount_disks "$T/bmnt"
btopics=$(topics | grep 'repdisk\.b\.')
[ "$(wc -l <<< "$btopics")" = 2 ] || fail "bob's topics: $btopics"
bend=$(kcat -C -b "$KAFKA_BOOTSTRAP" -t "repdisk.b.catalog" -p 0 -o beginning -e -q -f '%o\n' | tail -1)

LOGA="kafka:$sasl_bs?ns=a&timeout_ms=15000"
mount_disks "$T/adata" "$T/amnt" --log "$LOGA" --kafka-config "$T/alice.conf"
truncate -s 4M "$T/amnt/alice.img"
head -c 1M /dev/urandom > "$T/alice.bin"
dd if="$T/alice.bin" of="$T/amnt/alice.img" bs=64k oflag=direct conv=notrunc status=none || fail "alice's write"
expect_exit 0 timeout 60 "$REPDISK" follow --once --log "$LOGA" --kafka-config "$T/alice.conf" "$T/areplica"
cmp "$T/adata/alice.img" "$T/areplica/alice.img" || fail "alice's follower differs"
unmount_disks "$T/amnt"
say "SASL_SSL with SCRAM-SHA-512: mount, write and follow work"

# refused DATADIR CONFIG LOG REGEX: the mount is refused with a message
# matching REGEX, and no topic appeared or changed
refused() {
	local before
	before=$(topics)
	mkdir -p "$T/$1" "$T/m-$1"
	cleanup_mount "$T/m-$1"
	expect_exit 1 timeout 120 "$REPDISK" mount --log "$3" --kafka-config "$2" "$T/$1" "$T/m-$1"
	expect_stderr "$4"
	grep -qs " $T/m-$1 " /proc/mounts && fail "$1: a refused mount is mounted"
	[ "$(topics)" = "$before" ] || fail "$1: topics changed: $(topics)"
}
refused wrongpw "$T/wrongpw.conf" "kafka:$sasl_bs?ns=c&timeout_ms=15000" \
	"[Aa]uthentication failed.*(invalid credentials|SCRAM)"
refused wrongca "$T/wrongca.conf" "kafka:$sasl_bs?ns=c&timeout_ms=15000" \
	"certificate verify failed|certificate verification failed|unable to get local issuer certificate"
refused alice-on-b "$T/alice.conf" "$LOGB" \
	"[Nn]ot authorized|[Aa]uthorization failed"
got=$(kcat -C -b "$KAFKA_BOOTSTRAP" -t "repdisk.b.catalog" -p 0 -o beginning -e -q -f '%o\n' | tail -1)
[ "$got" = "$bend" ] || fail "alice wrote to bob's catalog (ends at $got, was $bend)"
say "ok"
