"""Offline replacement for the get-pip.py that ansible-test downloads to bootstrap its sanity venvs.

ansible-test looks for a cached copy at ~/.ansible/test/cache/get_pip_<version>.py before it tries
to download one; `make setup` puts this file there. It bootstraps the venv's bundled pip with
ensurepip, then installs what ansible-test asked for from the package index.
"""

import os
import subprocess
import sys

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def main():
    args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
    subprocess.run([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    cert = []
    if os.path.exists(CA_BUNDLE):
        cert = ["--cert", CA_BUNDLE]
        # The venv does not inherit the machine's pip settings; later installs read this file.
        with open(os.path.join(sys.prefix, "pip.conf"), "w", encoding="utf-8") as handle:
            handle.write("[global]\ncert = %s\n" % CA_BUNDLE)
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + cert + args))


if __name__ == "__main__":
    main()
