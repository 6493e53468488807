# Sourced by the other scripts: create .venv once and keep it in step with a
# requirements file (reinstalled only when the file changes).
# PyICU (confusable names) compiles against the system's ICU.
ensure_icu() {
    if pkg-config --exists icu-uc 2>/dev/null; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing ICU (libicu-dev, pkg-config) for PyICU..."
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq libicu-dev pkg-config g++ >/dev/null
    else
        echo "PyICU needs ICU's headers and pkg-config: install libicu-dev and" \
             "pkg-config (Debian, Ubuntu), libicu-devel (Fedora) or icu4c" \
             "(Homebrew, with its pkgconfig on PKG_CONFIG_PATH), then run again" >&2
        exit 1
    fi
}

ensure_venv() {
    local requirements=$1
    local stamp=".venv/.installed-$(basename "$requirements")"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] \
        || [ requirements.pip -nt "$stamp" ]; then
        ensure_icu
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            -r "$requirements"
        touch "$stamp"
    fi
}
