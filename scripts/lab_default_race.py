"""Measure the Lab's default race and save it for docs/lab.md and the Lab page.

    python scripts/lab_default_race.py [--seeds 0,1,2] [--from RACE.json] [--note TEXT]

The text it writes states the machine, the command and the conditions of the runs, nothing
about what else the machine was doing.

Runs ``python -m explorer race inception_v4 inception_resnet_v2 --seeds 0,1,2 --json`` (or takes
its saved output with --from) and writes assets/lab/default_race.json: the runs, the summary and
the conditions it was measured under.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.lab.present import MEASURED  # noqa: E402
from explorer.lab.training import RECIPES, THREADS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--from", dest="source", help="a saved `race --json` output")
    ap.add_argument("--note", default="", help="a further condition of the runs (a setting), "
                    "not what else ran on the machine")
    ap.add_argument("--commit", help="the commit the race ran at (default: HEAD)")
    args = ap.parse_args()
    load = ""
    if args.source:
        race = json.loads(Path(args.source).read_text())
    else:
        before = os.getloadavg()[0]
        out = subprocess.run([sys.executable, "-m", "explorer", "race", "inception_v4",
                              "inception_resnet_v2", "--seeds", args.seeds, "--json"],
                             cwd=ROOT, check=True, capture_output=True, text=True)
        race = json.loads(out.stdout)
        low, high = sorted((before, os.getloadavg()[0]))
        load = f" Load average {low:.1f} to {high:.1f} (1-minute, at the start and the end)."
    run = race["runs"][0]
    commit = args.commit or subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                           capture_output=True, text=True).stdout.strip()
    conditions = (
        f"{len(race['runs'])} runs ({len(race['summary'])} networks x "
        f"{len(race['summary'][0]['seeds'])} seeds), {run['steps']} steps of batch {run['batch']}, "
        f"width {run['config']['width']}, paper layouts, {run['config']['input_size']} px, "
        f"{RECIPES[run['optimizer']].title}; on {run['device']} "
        f"({THREADS} training thread per run, the networks of a seed trained side by side, "
        f"{run.get('precision', 'float32')} arithmetic, {os.cpu_count()} cores, "
        f"{platform.processor() or platform.machine()}), code at commit {commit}; command: "
        f"python -m explorer race inception_v4 inception_resnet_v2 --seeds {args.seeds}. "
        f"Seconds are training time per run, validation passes not counted.{load} "
        f"{args.note}").strip()
    MEASURED.parent.mkdir(parents=True, exist_ok=True)
    MEASURED.write_text(json.dumps({"conditions": conditions, **race}, indent=1) + "\n")
    print(f"wrote {MEASURED.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
