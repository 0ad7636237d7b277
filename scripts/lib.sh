# Shared by the scripts that install system packages (sourced: `. "$(dirname "$0")/lib.sh"`).

# Run a command as root: directly when we are root, else through sudo without a prompt (a build
# never waits for a password); says why and fails when neither is possible.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        echo "$(basename "$0"): needs root or sudo to run: $*" >&2
        return 1
    fi
}

# Install Debian packages (apt-get update first), as root.
apt_install() {
    as_root apt-get update -qq >/dev/null || return 1
    # env inside as_root: sudo would drop DEBIAN_FRONTEND from our environment
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
