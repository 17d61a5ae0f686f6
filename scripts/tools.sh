# Sourced by scripts/test: makes sure the shell tools the README's tour uses
# (curl and jq; tests/it/tour.rs runs the tour as written) are installed,
# with apt-get when missing and we are root.
tools_provision() {
  local missing=()
  for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "tools: installing ${missing[*]} with apt-get"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
      echo "tools: the README tour's test needs ${missing[*]}; install them or run as root" >&2
      return 1
    fi
  fi
}
