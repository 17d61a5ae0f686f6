# Sourced by scripts/test: installs schemathesis and standardwebhooks (from
# PyPI, pinned) into a virtualenv under target/, where the integration tests
# `schemathesis_finds_nothing_with_every_check` and the receiver guide's
# (`guide.rs`, which runs docs/receiving.md's Python) find them, and makes
# those tests fail rather than skip when it is missing. Installs Python
# with apt-get first when there is none and we are root.
SCHEMATHESIS_VERSION=4.32.5
STANDARDWEBHOOKS_VERSION=1.1.0

st_provision() {
  local venv=target/schemathesis-venv
  if [ -x "$venv/bin/schemathesis" ] \
    && "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$SCHEMATHESIS_VERSION" \
    && "$venv/bin/pip" show standardwebhooks 2>/dev/null | grep -q "^Version: $STANDARDWEBHOOKS_VERSION$"; then
    echo "schemathesis: $SCHEMATHESIS_VERSION and standardwebhooks $STANDARDWEBHOOKS_VERSION in $venv"
  else
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "schemathesis: installing Python with apt-get"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
      else
        echo "schemathesis: needs python3 with venv; install it or run as root" >&2
        return 1
      fi
    fi
    echo "schemathesis: installing $SCHEMATHESIS_VERSION and standardwebhooks $STANDARDWEBHOOKS_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
      "schemathesis==$SCHEMATHESIS_VERSION" "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
  fi
  export ORGHOOKS_REQUIRE_SCHEMATHESIS=1
}
