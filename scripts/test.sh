#!/usr/bin/env bash
# The one test command: installs what the tests need when it is missing,
# then runs formatting, lints and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)"; exit 1; }
command -v sh >/dev/null || need_apt+=(dash)
command -v sleep >/dev/null || need_apt+=(coreutils)
# Real ZooKeeper for the coord and integration tests (Debian's package, which
# brings a JRE; the tests start their own servers, not the system service).
[ -f /usr/share/java/zookeeper.jar ] || need_apt+=(zookeeper)
# openssl makes the certificate of the HTTPS health check test.
command -v openssl >/dev/null || need_apt+=(openssl)
# A static busybox, from which the Docker tests build their images (no
# registry is reachable; the dynamic `busybox` package would not run alone
# in an image).
dpkg -s busybox-static >/dev/null 2>&1 || need_apt+=(busybox-static)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"
  fi
fi
# The marathon-python client from PyPI, for the test that drives Marathon as
# a user's script would; kept in a virtualenv under target/.
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq "${need_apt[@]}"
  fi
  need_apt=()
fi
venv=target/python-venv
if ! "$venv/bin/python" -c "import marathon" 2>/dev/null; then
  python3 -m venv "$venv" || { apt-get install -y -qq python3-venv && python3 -m venv "$venv"; }
  "$venv/bin/pip" install -q "marathon==0.13.0"
fi
export AGORA_TEST_PYTHON="$PWD/$venv/bin/python"
# The Docker tests need the engine answering on its socket. A socket left
# by an engine that has since stopped refuses connections: start the engine
# when it is installed but not running, and wait until it answers.
if command -v dockerd >/dev/null && ! docker version >/dev/null 2>&1; then
  echo "== starting the Docker engine"
  if [ "$(id -u)" = 0 ]; then
    (cd / && nohup dockerd >>/var/log/agora-test-dockerd.log 2>&1 &)
  else
    (cd / && sudo -b nohup dockerd >>/tmp/agora-test-dockerd.log 2>&1)
  fi
  for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 1; done
  docker version >/dev/null 2>&1 || { echo "the Docker engine did not start (see its log)"; exit 1; }
fi
rustup component list --installed 2>/dev/null | grep -q rustfmt || rustup component add rustfmt clippy 2>/dev/null || true

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace -- --test-threads="${AGORA_TEST_THREADS:-2}"
