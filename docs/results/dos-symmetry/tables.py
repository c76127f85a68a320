"""Print this folder's tables (markdown) from its records: test error per method and budget, error cuts against the
network from scratch and against SimCLR, labels to reach the 3200-label error (photossl's label saving on the
finished cells' means over seeds), the tuning's candidates and choices,
where each method's cells ran, and the encoders' symmetry diagnostics.

    python docs/results/dos-symmetry/tables.py            # this folder
    python docs/results/dos-symmetry/tables.py runs/dos-symmetry
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

METHODS = ["supervised", "supervised-exact", "simclr", "essl", "essl-rel", "care", "gcare", "cheap-label"]
BUDGETS = [50, 100, 200, 400, 800, 1600, 3200]


def read_errors(folder: Path) -> tuple[dict, dict]:
    """({(method, budget): [test error per seed]}, {method: {device: cells}}) from the finished cells' records."""
    errors, devices = defaultdict(list), defaultdict(lambda: defaultdict(int))
    for path in sorted((folder / "cells").glob("*.json")):
        record = json.loads(path.read_text())
        if record.get("status") != "ok":
            continue
        errors[record["method"], record["budget"]].append(record["metrics"]["test"]["dos_rel_l1"])
        devices[record["method"]][record["metrics"].get("device", "?")] += 1
    return errors, devices


def mean(values):
    return statistics.fmean(values) if values else None


def percent(fraction: float) -> str:
    text = f"{100 * fraction:.1f}"
    return "0.0" if text == "-0.0" else text


def error_table(errors) -> str:
    lines = ["| method \\ labels | " + " | ".join(map(str, BUDGETS)) + " |", "|---" * (len(BUDGETS) + 1) + "|"]
    for method in METHODS:
        cells = []
        for budget in BUDGETS:
            values = errors.get((method, budget), [])
            cells.append(f"{100 * mean(values):.2f} ({100 * min(values):.2f}–{100 * max(values):.2f})"
                         + ("" if len(values) == 3 else f" [{len(values)} of 3 seeds]") if values else "–")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cut_table(errors) -> str:
    lines = ["| method | " + " | ".join(map(str, BUDGETS)) + " |", "|---" * (len(BUDGETS) + 1) + "|"]
    for method in METHODS[1:]:
        cells = []
        for budget in BUDGETS:
            own = mean(errors.get((method, budget), []))
            scratch, simclr = mean(errors.get(("supervised", budget), [])), mean(errors.get(("simclr", budget), []))
            if own is None or scratch is None:
                cells.append("–")
                continue
            against_simclr = "–" if simclr is None or method == "simclr" else percent(1 - own / simclr)
            cells.append(f"{percent(1 - own / scratch)} / {against_simclr}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def label_saving_record(errors) -> dict:
    """photossl's label saving (as in summary.json) from the finished cells' means over their seeds."""
    from photossl.evaluation.label_efficiency import label_saving

    rows = [{"method": method, "budget": budget, "dos_rel_l1": value}
            for (method, budget), values in errors.items() for value in values]
    return label_saving(rows, "dos_rel_l1").to_dict() if rows else {}


def saving_table(saving: dict, errors) -> str:
    if not saving:
        return "(no finished cells yet)"
    lines = [f"Reference: {saving['reference']} at {saving['reference_budget']:.0f} labels, "
             f"{100 * saving['at_error']:.2f} %.", "", "| method | labels to reach it | factor |", "|---|---|---|"]
    for method in sorted(saving["methods"], key=lambda m: METHODS.index(m) if m in METHODS else len(METHODS)):
        row = saving["methods"][method]
        partial = [f"{b}: {len(errors[method, b])} of 3 seeds" for b in BUDGETS if 0 < len(errors[method, b]) < 3]
        partial_note = f" [{'; '.join(partial)}]" if partial else ""
        if row.get("reached"):
            tail = " (extrapolated)" if row.get("extrapolated") else ""
            lines.append(f"| {method} | {row['budget']:.0f}{tail}{partial_note} | {row['factor']:.1f}× |")
        else:
            lines.append(f"| {method} | {row.get('reason') or 'not reached'}{partial_note} | – |")
    return "\n".join(lines)


def tuning_table(folder: Path) -> str:
    chosen = json.loads((folder / "tuning" / "chosen.json").read_text())
    lines = [f"Budget {chosen['budget']} labels, seeds {chosen['seeds']}, {chosen['selection']}.", "",
             "| method | candidate | overrides | validation error | chosen |", "|---|---|---|---|---|"]
    for method, result in chosen["methods"].items():
        for trial in result["trials"]:
            overrides = ", ".join(f"{k}={v}" for k, v in trial["overrides"].items()) or "as written"
            value = "–" if trial["validation"] is None else f"{100 * trial['validation']:.2f} %"
            mark = "**yes**" if trial["trial"] == result["chosen"] else ""
            lines.append(f"| {method} | {trial['trial']} | {overrides} | {value} | {mark} |")
    return "\n".join(lines)


def device_table(devices) -> str:
    lines = ["| method | cells per device |", "|---|---|"]
    for method in METHODS:
        found = ", ".join(f"{device}: {n}" for device, n in sorted(devices.get(method, {}).items())) or "–"
        lines.append(f"| {method} | {found} |")
    return "\n".join(lines)


def diagnostics_tables(folder: Path) -> str:
    """Per encoder: held-out transformation prediction, invariance and Wahba errors under r90 and mx; then, for
    known-group CARE, each irrep block against the prescribed representation."""
    lines = ["| encoder | held-out rotation prediction | invariance error r90 / mx | Wahba error r90 / mx |",
             "|---|---|---|---|"]
    blocks = []
    for path in sorted((folder / "diagnostics").glob("*.json")):
        found = json.loads(path.read_text())
        by_name = {t["name"]: t for t in found["transformations"] if "name" in t}
        prediction = found.get("prediction")
        accuracy = "–" if not prediction else f"{100 * prediction['accuracy']:.1f} % (chance 25 %)"
        errors = [by_name.get(name, {}) for name in ("r90", "mx")]
        invariance = " / ".join(f"{e['invariance_error']:.3g}" if e else "–" for e in errors)
        wahba = " / ".join(f"{e['wahba_error']:.3g}" if e else "–" for e in errors)
        lines.append(f"| {path.stem} | {accuracy} | {invariance} | {wahba} |")
        known = found.get("known_group")
        if known:
            blocks += [f"Known-group CARE ({path.stem}), per block of the prescribed D4 representation:", "",
                       "| block | dim | error against the prescribed ρ | Wahba error | composition error |",
                       "|---|---|---|---|---|"]
            for name, block in known["blocks"].items():
                blocks.append(f"| {name} | {block['dim']} | {block['prescribed_error']:.3f} | "
                              f"{block['wahba_error']:.3f} | {block['composition_error']:.3f} |")
    return "\n".join(lines + [""] + blocks)


def main(folder: Path) -> None:
    errors, devices = read_errors(folder)
    for title, table in [
        ("Test DOS error (relative L1 on bins 100–399, %), mean over seeds (min–max)", error_table(errors)),
        ("Error cut against the network from scratch / against SimCLR (%, of the means)", cut_table(errors)),
        ("Labels to reach the network from scratch's 3200-label error",
         saving_table(label_saving_record(errors), errors)),
        ("Tuning", tuning_table(folder)),
        ("Where the cells ran", device_table(devices)),
        ("What the encoders learned (1000 held-out test cells)", diagnostics_tables(folder)),
    ]:
        print(f"### {title}\n\n{table}\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent)
