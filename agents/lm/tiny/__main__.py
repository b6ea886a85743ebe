"""``python -m upbringing.agents.lm.tiny [--rebuild] [--cache DIR]``: retrain the tokenizer and/or build the tiny
model."""

from __future__ import annotations

import argparse
import sys

from upbringing.agents.lm.tiny import TOKENIZER_FILE, VOCAB_SIZE, build_tiny, train_tokenizer
from upbringing.agents.lm.tiny.corpus import corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m upbringing.agents.lm.tiny", description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="retrain tokenizer.json on the current env texts")
    parser.add_argument("--vocab-size", type=int, default=VOCAB_SIZE, help="BPE vocabulary size")
    parser.add_argument("--cache", default=None, help="cache directory for the built model")
    args = parser.parse_args(argv)
    if args.rebuild:
        lines = corpus()
        tokenizer = train_tokenizer(lines, args.vocab_size)
        tokenizer.save(str(TOKENIZER_FILE), pretty=False)
        print(f"trained on {len(lines)} texts; vocabulary {tokenizer.get_vocab_size()}; wrote {TOKENIZER_FILE}")
    path = build_tiny(args.cache)
    print(f"tiny model at {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
