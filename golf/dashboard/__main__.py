"""`python -m golf.dashboard <sweep dir> [publish]`: the W&B Workspace and Report of a sweep launch.

Without `publish` (no network): writes <sweep dir>/dashboard/{workspace.json, report.json, report.md,
report.png}. With `publish`: also syncs the launch's offline runs and saves both views to W&B, printing
their URLs.
"""

import argparse
import sys
from pathlib import Path

from golf.dashboard.offline import write_offline
from golf.dashboard.publish import publish
from golf.dashboard.sweep import load_sweep
from golf.errors import GolfError


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m golf.dashboard", description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir", type=Path, help="a sweep launch dir (outputs/multirun/<launch>) or a single run's dir")
    p.add_argument("action", nargs="?", choices=["publish"], help="sync the runs and save the views to W&B")
    p.add_argument("--baseline", help="the reference group as K=V[,K=V] (default: the first group)")
    p.add_argument("--entity", help="with publish: W&B entity (default: the runs' logger.entity, else yours)")
    p.add_argument("--project", help="with publish: W&B project (default: the runs' logger.project)")
    args = p.parse_args(argv)
    try:
        sweep = load_sweep(args.sweep_dir, args.baseline)
        out = write_offline(sweep)
        print(f"wrote {out}/workspace.json, report.json, report.md (W&B group {sweep.group})")
        if args.action == "publish":
            for view, url in publish(sweep, args.entity, args.project).items():
                print(f"{view}: {url}")
    except GolfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
