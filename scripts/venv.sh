# Sourced by the other scripts: create .venv once and keep it in step with a
# requirements file (reinstalled only when the file changes).
ensure_venv() {
    local requirements=$1
    local stamp=".venv/.installed-$(basename "$requirements")"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ "$requirements" -nt "$stamp" ] \
        || [ requirements.pip -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check \
            -r "$requirements"
        touch "$stamp"
    fi
}
