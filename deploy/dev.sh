#!/usr/bin/env bash
# The two commands of the README quick start (and of CI):
#   deploy/dev.sh serve [router serve flags...]   set up .venv, start the proxy with the bundled policies
#   deploy/dev.sh test  [pytest args...]          set up .venv, run ruff, mypy and the whole test suite
#   deploy/dev.sh setup                           set up .venv only (what the other two do first)
# Set-up is idempotent: it reinstalls only when pyproject.toml changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"

find_python() {
  for py in "${PYTHON:-}" python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  echo "hybrid-llm-router needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    "$(find_python)" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ -f "$stamp" ]; then
    return 0
  fi
  echo "setting up $VENV (first run takes a minute or two)..." >&2
  local log="$VENV/install.log"
  {
    "$VENV/bin/python" -m pip install --upgrade pip
    # torch first, pinned: the CPU build. Unpinned (or pulled in by sentence-transformers) it is a
    # multi-GB CUDA build. Elsewhere than this machine kind, add
    # PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu to get the CPU wheel.
    "$VENV/bin/python" -m pip install "torch==2.13.0"
    "$VENV/bin/python" -m pip install -e ".[test]"
  } >"$log" 2>&1 || { tail -n 40 "$log" >&2; echo "install failed; full log: $log" >&2; exit 1; }
  if "$VENV/bin/python" -m pip show litellm 2>/dev/null | grep -q '^Version: 1.107.0$'; then
    echo "litellm 1.107.0 is a compromised release; refusing to continue" >&2
    exit 1
  fi
  rm -f "$VENV"/.installed-*
  touch "$stamp"
}

ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    return 0
  fi
  if command -v redis-server >/dev/null 2>&1; then
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 50); do
      redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
      sleep 0.1
    done
  fi
  echo "warning: Redis is not answering at 127.0.0.1:6379 (tests of shared state need it)" >&2
}

ensure_test_tools() {
  # Debian's prometheus (prometheus and promtool: the rule unit tests, the dashboard's integration test)
  # and docker-compose 1.29 (validates deploy/compose without a Docker engine), when missing.
  local missing=()
  command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
  command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's ${missing[*]} for the tests..." >&2
    local log="$VENV/apt-test-tools.log"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; }
    } >"$log" 2>&1 || echo "warning: could not install ${missing[*]} (see $log); their tests will be skipped" >&2
  else
    echo "warning: ${missing[*]} not found (apt-get install ${missing[*]}); their tests will be skipped" >&2
  fi
}

export LITELLM_LOCAL_MODEL_COST_MAP=True HF_HUB_OFFLINE=1

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  serve)
    setup
    exec "$VENV/bin/router" serve --policies "$ROOT/policies" --emulate-missing "$@"
    ;;
  setup)
    setup
    ;;
  test)
    setup
    ensure_redis
    ensure_test_tools
    echo "== ruff" && "$VENV/bin/ruff" check router tests && "$VENV/bin/ruff" format --check router tests
    echo "== mypy (strict)" && "$VENV/bin/mypy"
    echo "== policy check and lint (bundled)" && "$VENV/bin/router" policy check "$ROOT/policies" \
      && "$VENV/bin/router" policy lint "$ROOT/policies"
    # The diff a policy change runs in CI (docs/policy-authoring.md), here on the bundled policy against
    # itself over the shipped held-out prompts: the replay is deterministic, so nothing may change.
    echo "== policy diff (bundled, held-out prompts)" && "$VENV/bin/router" policy diff "$ROOT/policies" \
      "$ROOT/policies" --traffic "$ROOT/router/classifier/data/heldout-tasks.jsonl" --show 0 --max-changed 0
    echo "== pytest"
    set +e
    "$VENV/bin/pytest" -q -p no:cacheprovider "$@"
    rc=$?
    set -e
    [ "$rc" -eq 5 ] && { echo "pytest collected no tests" >&2; exit 1; }
    exit "$rc"
    ;;
  *)
    echo "usage: deploy/dev.sh serve|test|setup [args...]" >&2
    exit 2
    ;;
esac
