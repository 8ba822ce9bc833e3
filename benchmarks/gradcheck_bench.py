"""Gradient-check benchmark: every layer, block and loss of npcnn, float64 and float32, in one table.

Runs ``npcnn.diagnostics.gradcheck_all`` over ``npcnn.diagnostics.GRADCHECK_CASES`` (a plain list:
append a ``GradcheckCase(name, factory, input_shape)`` to cover a new layer). float64: central
differences against the analytic backward (tolerance 1e-6, expect ~1e-9). float32: the float32
backward against float64 central differences at the same point (tolerance 1e-4, expect 1e-7).
``python -m npcnn gradcheck --all`` calls the same function.

    python benchmarks/gradcheck_bench.py               # both dtypes (~5 s)
    python benchmarks/gradcheck_bench.py --quick       # float64 only
    python benchmarks/gradcheck_bench.py --only Conv BatchNorm
Writes gradcheck.md/.csv to --out; exits with status 1 if any check fails.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from npcnn.diagnostics import gradcheck_all  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gradcheck")
    parser.add_argument("--quick", action="store_true", help="float64 only")
    parser.add_argument("--only", nargs="+", default=None, help="cases whose name contains one of these")
    args = parser.parse_args(argv)
    dtypes = ("float64",) if args.quick else ("float64", "float32")
    table = gradcheck_all(dtypes=dtypes, names=args.only, verbose=True)
    table.save(args.out, "gradcheck", "Gradient check of every layer (max relative error over all tensors)")
    failed = [f"{r['case']} ({r['dtype']})" for r in table if not r["ok"]]
    print(f"\n{len(table) - len(failed)}/{len(table)} checks pass; worst float64 "
          f"{max(table.where(dtype='float64').column('max_rel_error')):.2e}; table in {args.out}/gradcheck.md")
    if failed:
        print("FAILED:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
