# Sourced by scripts/test: makes sure Debian's chromium and chromium-driver
# are installed (apt-get, when missing and we are root), for the dashboard's
# browser tests, and makes those tests fail rather than skip without them.
browser_provision() {
  if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "browser: installing chromium and chromium-driver with apt-get"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
      echo "browser: the dashboard tests need chromium and chromium-driver; install them or run as root" >&2
      return 1
    fi
  fi
  echo "browser: $(chromium --version 2>/dev/null | head -1); $(chromedriver --version | head -1)"
  export ORGHOOKS_REQUIRE_BROWSER=1
}
