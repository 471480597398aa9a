"""jellyfin-hardening-patch: upgrade Jellyfin as the patching role configured it.

    run [--random-delay SECONDS]

Reads /etc/jellyfin-hardening/patching/patching.json and runs the same module_utils code the jellyfin_version
module uses: the apt upgrade of only Jellyfin's packages (or the Compose pull and recreate), the health check,
the rollback. Every step goes to stdout or stderr (the journal) and to the log file; the outcome goes to the
status file. --random-delay waits up to SECONDS first (cron; the timer has RandomizedDelaySec).
Exits 0 when Jellyfin is patched, up to date or held back on a known-bad version; 1 when an upgrade failed
(rolled back or not); 2 for a bad command line or configuration; 3 when another run holds the lock.
"""
import json
import os
import random
import sys
import time

sys.path.insert(0, "/usr/local/lib/jellyfin-hardening")
os.environ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", "")

from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import hostlock  # noqa: E402
from ansible_collections.homelab.jellyfin_hardening.plugins.module_utils import jellyfin_patching  # noqa: E402

CONFIG = "/etc/jellyfin-hardening/patching/patching.json"
LOCK = "/run/jellyfin-hardening/patch.lock"


def main(argv):
    args = argv[1:]
    if args[:1] != ["run"] or len(args) not in (1, 3) or (len(args) == 3 and (
            args[1] != "--random-delay" or not args[2].isdigit())):
        sys.stderr.write(__doc__)
        return 2
    try:
        with open(CONFIG) as handle:
            config = json.load(handle)
    except (IOError, OSError, ValueError) as err:
        sys.stderr.write("cannot read %s: %s\n" % (CONFIG, err))
        return 2
    if len(args) == 3:
        time.sleep(random.SystemRandom().randint(0, int(args[2])))
    host = jellyfin_patching.Host()
    log = jellyfin_patching.Log(host, config.get("log_file"))
    try:
        with hostlock.Lock(LOCK, wait=60, what="patch run"):
            result = jellyfin_patching.run(config, host, log)
    except hostlock.LockTimeout as err:
        log.error(str(err))
        return 3
    return 0 if result["result"] in ("up_to_date", "upgraded", "held_back") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
