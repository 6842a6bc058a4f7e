"""The `dr` command: `dr serve` runs the responder locally, `dr explain FILE` shows a decision."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from shared.errors import BadInput, PolicyError, SettingsError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `dr` console script."""
    parser = argparse.ArgumentParser(prog="dr", description="DR Responder: the incident responder, locally.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the registered functions on http://HOST:PORT/api")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=7071)
    serve.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DR_DATA_DIR", ".data")))
    serve.add_argument(
        "--app", default="function_app", help="module that defines `app` (default: function_app)"
    )
    serve.add_argument(
        "--function-key", default=os.environ.get("DR_FUNCTION_KEY"), help="default: DATA_DIR/function-key"
    )
    explain = commands.add_parser(
        "explain", help="show how a payload is normalized and classified; stores nothing"
    )
    explain.add_argument("file", type=Path, help="an Azure Monitor alert or Event Grid delivery (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("DR_LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "serve":
            from shared.localhost.server import serve as run

            run(args.host, args.port, args.data_dir, args.app, args.function_key)
            return 0
        print(json.dumps(explain_file(args.file), indent=2))
        return 0
    except PolicyError as e:
        print(f"dr: invalid policy: {e}", file=sys.stderr)
        return 2
    except SettingsError as e:
        print(f"dr: invalid settings: {e}", file=sys.stderr)
        return 2
    except BadInput as e:
        print(f"dr: {args.file if args.command == 'explain' else ''}: {e.error}: {e.detail}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"dr: {e}", file=sys.stderr)
        return 1


def explain_file(path: Path) -> dict[str, Any]:
    """Normalize and classify the payload in a file, as intake would; touches no state."""
    from shared.explain import explain

    return explain(path.read_bytes())


if __name__ == "__main__":
    sys.exit(main())
