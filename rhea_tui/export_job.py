"""`python -m rhea_tui.export_job HOME RUN`: export a run in a process of its own.

The TUI starts this so that torch and the model never load into its own process (its
memory stays where it was); the result, or the user-facing error, comes back as one line
of JSON on stdout. The export itself is `rhea_engine.export.export_run`, as for `rhea export`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from rhea_engine.errors import RheaError

    home, handle = argv
    try:
        from rhea_engine.export import export_run

        result = export_run(Path(home), handle)
    except RheaError as exc:
        print(json.dumps({"error": exc.message, "title": exc.title}), flush=True)
        return exc.exit_code
    print(
        json.dumps(
            {
                "path": str(result.path),
                "card": str(result.card_path),
                "epoch": result.epoch,
                "parity": result.parity,
                "seconds": result.seconds,
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
