#!/usr/bin/env bash
# Fetches the Apache Kafka broker (Scala 2.13 build) and every jar it needs at
# run time from Maven Central into a local cache, and prints the libs folder.
#
# Usage: scripts/kafka/fetch.sh            # prints e.g. ~/.cache/sluice/kafka-4.4.0/libs
#
# Environment:
#   SLUICE_KAFKA_VERSION  Kafka version to fetch (default below: the newest 4.x
#                         that Maven Central serves to this project's machines).
#   SLUICE_KAFKA_CACHE    cache root (default $HOME/.cache/sluice); jars land in
#                         $SLUICE_KAFKA_CACHE/kafka-<version>/libs, so versions
#                         never mix.
#   MVN                   Maven command (default mvn).
#
# Why Maven and not the binary tarball: the only network the project's machines
# and CI have is the package registries, and Maven Central serves the broker as
# ordinary artifacts. The tarball's libs/ is exactly the runtime closure of
# kafka_2.13 plus the tools and a log4j2 binding, which is what we resolve here.
#
# Idempotent: a finished cache carries a .complete marker and is reused as is;
# an interrupted fetch leaves only a temporary folder that the next run replaces.
# All progress goes to stderr so that callers can capture stdout.
set -euo pipefail

version="${SLUICE_KAFKA_VERSION:-4.4.0}"
cache_root="${SLUICE_KAFKA_CACHE:-${HOME:-/tmp}/.cache/sluice}"
dest="${cache_root}/kafka-${version}"
libs="${dest}/libs"
mvn_cmd="${MVN:-mvn}"

if [[ -f "${dest}/.complete" ]]; then
  printf '%s\n' "${libs}"
  exit 0
fi

command -v "${mvn_cmd}" >/dev/null 2>&1 || {
  echo "fetch.sh: ${mvn_cmd} not found; install Maven (apt-get install maven)" >&2
  exit 1
}

mkdir -p "${cache_root}"
work="$(mktemp -d "${cache_root}/.kafka-${version}.XXXXXX")"
# Remove the scratch folder on every exit path; after the final mv it is gone
# already, so this only cleans up failures and a copy another run beat us to.
trap 'rm -rf "${work}"' EXIT

# A throwaway project whose only purpose is to name the broker's artifacts.
# kafka_2.13 pulls in server, storage, metadata, raft and the coordinators;
# kafka-tools is listed because the storage formatter and admin tools moved
# there in 4.x (TopicCommand also serves start.sh as a readiness probe when
# kcat is missing), and log4j-core + log4j-slf4j2-impl make the broker actually log
# (Kafka's own POM marks its log4j2 binding as provided/optional).
cat >"${work}/pom.xml" <<POM
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.sluice.test</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <properties>
    <kafka.version>${version}</kafka.version>
    <log4j.version>2.25.5</log4j.version>
    <slf4j.version>2.0.17</slf4j.version>
  </properties>
  <!-- The clients' POM still names slf4j-api 1.7 for old applications; the
       broker distribution ships 2.x, which the log4j2 binding needs to bind
       at all (with 1.7 the broker runs silently with a NOP logger). -->
  <dependencyManagement>
    <dependencies>
      <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>\${slf4j.version}</version></dependency>
      <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-api</artifactId><version>\${log4j.version}</version></dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-server</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-storage</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-metadata</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-raft</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-group-coordinator</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-transaction-coordinator</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-share-coordinator</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>\${kafka.version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>\${log4j.version}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>\${log4j.version}</version></dependency>
  </dependencies>
</project>
POM

echo "fetch.sh: resolving Apache Kafka ${version} from Maven Central (first run only)..." >&2
# -B: batch mode, no progress bars. The plugin version is pinned so results do
# not depend on the Maven release installed. Output goes to a log that is shown
# only on failure: Debian's Maven 3.8 prints stray colour resets even with -q.
if ! "${mvn_cmd}" -B -q -f "${work}/pom.xml" \
  org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
  -DincludeScope=runtime \
  -DoutputDirectory="${work}/libs" >"${work}/mvn.log" 2>&1; then
  cat "${work}/mvn.log" >&2
  echo "fetch.sh: Maven could not resolve Kafka ${version}" >&2
  exit 1
fi

# Fail loudly rather than leave a cache that cannot start a broker.
if ! compgen -G "${work}/libs/kafka_2.13-${version}.jar" >/dev/null; then
  echo "fetch.sh: kafka_2.13-${version}.jar missing after resolution" >&2
  exit 1
fi

rm -f "${work}/pom.xml" "${work}/mvn.log"
touch "${work}/.complete"
# Another fetch may have finished meanwhile (two test runs started together):
# keep its copy, which a broker may already be using, and drop ours.
if [[ ! -f "${dest}/.complete" ]]; then
  rm -rf "${dest}"
  mv "${work}" "${dest}"
fi
echo "fetch.sh: $(find "${libs}" -name '*.jar' | wc -l) jars in ${libs}" >&2
printf '%s\n' "${libs}"
