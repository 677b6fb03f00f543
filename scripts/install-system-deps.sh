#!/usr/bin/env bash
# Installs the Debian packages the test suite drives for real: Wireshark's tshark/text2pcap
# (independent Diameter decoder), PostgreSQL, SIPp, Chromium (console browser tests), and Java +
# Maven for the local Kafka broker.
# Idempotent: a no-op when everything is present.
set -euo pipefail

need=()
command -v tshark >/dev/null 2>&1 || need+=(tshark)
command -v text2pcap >/dev/null 2>&1 || need+=(wireshark-common)
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# Java 17 + Maven fetch and run the Kafka broker for the CDR tests (scripts/kafka-local.sh).
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)

[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
