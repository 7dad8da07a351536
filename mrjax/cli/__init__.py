"""The command line, one console script with subcommands:

- ``mrjax study``: the paper's Monte-Carlo protocol on the simulator or RouteLLM's real data;
- ``mrjax fit``, ``mrjax route``, ``mrjax evaluate``: a user's table → a saved router → decisions and
  an evaluation;
- ``mrjax sweep``: a grid of studies, resumable, with tidy results.

Mistakes (a flag, a setting, a column, a file) are one line on stderr and exit status 2; results that
cannot be reported, exit status 1. Either way nothing is written.
"""
from __future__ import annotations

import sys

from mrjax.cli import _router, _study, _sweep
from mrjax.cli._common import Failed, Parser, UsageError, distributed
from mrjax.cli._study import _settings, study_config, study_options  # noqa: F401  (used by tests and docs)

__all__ = ["main", "study_options", "study_config", "_settings"]


def _parser() -> Parser:
    p = Parser(prog="mrjax", description="Meta-Router in JAX: fit, route and evaluate LLM routers from gold and "
                                         "preference labels, and run the paper's studies.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    _study.add_parser(sub)
    _router.add_parsers(sub)
    _sweep.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command in ("study", "sweep"):
            distributed()
        return args.run(args)
    except UsageError as err:
        print(f"mrjax: error: {err}", file=sys.stderr)
        return 2
    except Failed as err:
        print(f"mrjax: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
