"""`python -m golf.quant <job_dir> quant=NAME [quant.key=value ...] [budget.key=value ...]`"""

import sys
from pathlib import Path

from golf.errors import GolfError
from golf.quant.requant import Requant, summary


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip("`") + "\nre-quantizes a finished job's weights; see golf/quant/requant.py",
              file=sys.stderr)
        return 2
    try:
        result = Requant(Path(argv[0]), argv[1:]).run()
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
