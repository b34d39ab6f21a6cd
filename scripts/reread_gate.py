"""Re-read kept gates (`perf-core ab --out` folders) under the rank test alone and with the family-wise
guard, so that the two rules are compared on the same runs (docs/gate.md, eighth pass).

    python scripts/reread_gate.py results/.../trial1 results/.../trial2 ...

Each folder's gate.json gives its metric, threshold, alpha, maximum pairs and looks' levels (the plan
it ran); the rule is read with and without the guard. Where a rule would have added a pair past the
runs the gate kept, the line says so. Printed per folder and rule: the benchmarks not unchanged, as (name, verdict, ratio,
rank-test p, family p, pairs of the last look).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from perf_core.analysis import ab, sequential


def main(folders: list[str]) -> int:
    for folder in map(Path, folders):
        runs = ab.collect(ab.run_files(folder))
        settings = json.loads((folder / ab.SETTINGS_FILE).read_text())
        plan = dataclasses.replace(ab.saved_rule(folder / ab.SETTINGS_FILE, settings), family=True)
        available = min(len(runs["base"]), len(runs["head"]))
        for label, rule in (("rank only", dataclasses.replace(plan, family=False)), ("family", plan)):
            looks = sequential.looks_upto(ab.samples(runs, settings["metric"]), rule, settings["threshold"])
            decided = ab.sequential_verdicts(runs, looks, rule, settings["threshold"], settings["metric"])
            changed = [
                (
                    d.verdict.name,
                    d.verdict.verdict,
                    round(d.verdict.ratio, 3),
                    None if d.verdict.p_value is None else round(d.verdict.p_value, 4),
                    None if d.verdict.family_p is None else round(d.verdict.family_p, 4),
                    looks[d.verdict.name].pairs,
                )
                for d in decided
                if d.verdict.verdict != "unchanged"
            ]
            short = sequential.should_continue(looks, rule) and available < rule.maximum
            note = f" (open after the {available} pairs kept: this rule would have run more)" if short else ""
            print(f"{folder}  {label:<9} {len(changed)} changed{note}: {changed}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
