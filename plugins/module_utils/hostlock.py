# -*- coding: utf-8 -*-
# Copyright: homelab.jellyfin_hardening contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time on a host: the timers, cron jobs, boot units and Ansible share one lock file per job."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import time


class LockTimeout(RuntimeError):
    """Another run held the lock for longer than the wait."""


class Lock(object):
    """flock() on `path`, waiting at most `wait` seconds; released when the process ends, even killed."""

    def __init__(self, path, wait=300, what="run"):
        self.path, self.wait, self.what, self.handle = path, wait, what, None

    def __enter__(self):
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        self.handle = open(self.path, "a")
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except (IOError, OSError) as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    self.handle.close()
                    raise LockTimeout("another %s holds %s for more than %d s" % (self.what, self.path, self.wait))
                time.sleep(0.2)

    def __exit__(self, *exc):
        self.handle.close()
