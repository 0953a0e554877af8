"""Make the collection importable as ``ansible_collections.persist.docker`` for unit tests.

Unit tests cover pure logic and import it directly, without Ansible's loader. When the
checkout is not already on an ``ansible_collections/persist/docker`` path, a temporary
one is linked to it.
"""

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _ensure_collection_importable():
    try:
        import ansible_collections.persist.docker.plugins.module_utils._frames  # noqa: F401
        return
    except ImportError:
        pass
    base = Path(tempfile.mkdtemp(prefix="persist-unit-"))
    atexit.register(shutil.rmtree, base, True)
    namespace = base / "ansible_collections" / "persist"
    namespace.mkdir(parents=True)
    (namespace / "docker").symlink_to(ROOT)
    sys.path.insert(0, str(base))


_ensure_collection_importable()
