"""`python -m tether.js -c CODE` or `python -m tether.js FILE`: evaluate JavaScript and print
the result unless it is `undefined` (as `python -m jsrun` does)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import JavaScriptError, Runtime, undefined


def main(argv: list[str] | None = None) -> None:
    """Runs the CLI (exit status 1 on any error)."""
    parser = argparse.ArgumentParser(
        description="Execute JavaScript code using tether.js",
        prog="python -m tether.js",
    )
    parser.add_argument(
        "-c", "--command", dest="command", help="Execute JavaScript code from command line"
    )
    parser.add_argument("file", nargs="?", help="JavaScript file to execute")
    args = parser.parse_args(argv)
    if args.command and args.file:
        parser.error("Cannot specify both -c and a file argument")
    if not args.command and not args.file:
        parser.error("Must specify either -c or a file argument")
    try:
        with Runtime() as rt:
            if args.command:
                code = args.command
            else:
                path = Path(args.file)
                if not path.exists():
                    print(f"Error: File '{path}' not found", file=sys.stderr)
                    sys.exit(1)
                code = path.read_text(encoding="utf-8")
            result = rt.eval(code)
            if result is not undefined:
                print(result)
    except JavaScriptError as e:
        print(f"JavaScript Error: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # a CLI reports any failure
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
