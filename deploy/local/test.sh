#!/usr/bin/env bash
# Runs every test of eaibus on this machine, setting up what the tests talk to first.
#   deploy/local/test.sh [extra cargo test arguments]
# PostgreSQL: tests read EAIBUS_TEST_POSTGRES (default: the local server, database "test").
# Kafka: a tansu broker is started on 127.0.0.1:9092 (deploy/local/broker.sh) for the run and
# stopped after it, also on failure; tests read EAIBUS_TEST_KAFKA. Set EAIBUS_TEST_KAFKA
# yourself to use another broker instead.
# Under CI=true a missing service fails the run instead of being skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."

export EAIBUS_TEST_POSTGRES="${EAIBUS_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"

postgres_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! postgres_up && command -v pg_ctlcluster >/dev/null 2>&1; then
  for version in /etc/postgresql/*; do
    [ -d "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start || true
  done
fi
if ! postgres_up; then
  if [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL is not reachable on 127.0.0.1:5432" >&2
    exit 1
  fi
  echo "note: PostgreSQL is not reachable; its tests will be skipped" >&2
  unset EAIBUS_TEST_POSTGRES
fi

# The web monitor's browser test (tests/web_browser.rs) drives headless Chromium through its driver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "installing chromium and chromium-driver for the browser test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "note: chromium/chromedriver are missing; the browser test will be skipped (fails under CI=true)" >&2
  fi
fi

if [ -z "${EAIBUS_TEST_KAFKA:-}" ]; then
  if deploy/local/broker.sh status >/dev/null 2>&1; then
    # Started by hand before this run: use it and leave it running.
    export EAIBUS_TEST_KAFKA=127.0.0.1:9092
  elif deploy/local/broker.sh start; then
    trap 'deploy/local/broker.sh stop' EXIT
    export EAIBUS_TEST_KAFKA=127.0.0.1:9092
  elif [ "${CI:-}" = "true" ]; then
    echo "the Kafka broker did not start" >&2
    exit 1
  else
    echo "note: the Kafka broker did not start; its tests will be skipped" >&2
  fi
fi

cargo test --all-targets "$@"
