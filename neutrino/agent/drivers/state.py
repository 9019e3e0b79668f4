"""What the agent remembers across its runs: digests of what it applied, in JSON files of its
state directory, which let a restart leave the kernel as it is when it still holds that."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def remembered(state_file: Path) -> dict[str, Any]:
    """What the last run wrote to `state_file`; nothing when there is no file, or none that
    reads whole (a run stopped as it wrote): what it describes is then made again."""
    try:
        found = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
