"""Unit tests import the collection as ansible_collections.homelab.jellyfin_hardening (from .cache/collections)."""

import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".cache" / "collections"
if not (COLLECTIONS / "ansible_collections" / "homelab" / "jellyfin_hardening").exists():
    raise RuntimeError("run the unit tests through `make unit` (tests/lab/env.sh lays out %s)" % COLLECTIONS)
sys.path.insert(0, str(COLLECTIONS))
