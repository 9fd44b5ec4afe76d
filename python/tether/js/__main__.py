"""`python -m tether.js -c CODE` or `python -m tether.js FILE`: evaluate JavaScript and print
the result (unless it is `undefined`); promises are awaited."""

from __future__ import annotations

import argparse
import asyncio
import sys

from . import JavaScriptError, Runtime, RuntimeConfig, undefined


async def _run(code: str) -> object:
    with Runtime(RuntimeConfig(enable_console=True)) as rt:
        return await rt.eval_async(code)


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m tether.js", description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-c", dest="code", metavar="CODE", help="JavaScript source to evaluate")
    group.add_argument("file", nargs="?", help="a JavaScript file to evaluate")
    args = parser.parse_args(argv)
    if args.code is not None:
        code = args.code
    else:
        with open(args.file, encoding="utf-8") as f:
            code = f.read()
    try:
        result = asyncio.run(_run(code))
    except JavaScriptError as e:
        print(e.stack or str(e), file=sys.stderr)
        return 1
    except RuntimeError as e:
        print(str(e), file=sys.stderr)
        return 1
    if result is not undefined:
        print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
