"""The csv domain's reader against pandas' ``read_csv`` (the named peer) on the same file.

    python benchmarks/csv_read.py                  # 1,000,000 rows x 5 columns (~95 MB)
    python benchmarks/csv_read.py --rows 200000    # smaller
    python benchmarks/csv_read.py --exact          # also the exact (cell by cell) reader, once
    python benchmarks/csv_read.py --text           # plus a quoted text column (left out) and comments

The file is written like /tmp/owndata/gen_big.py writes it (pandas ``to_csv`` of the truth SEM
plus two noise columns, full ``repr`` precision). Timed: the whole read of a file not read before
(``csv_file._read_checked``: parse, select, the constant and row-count checks), with the fast
reader the installation has (pyarrow's CSV reader when installed), with numpy's ``loadtxt`` (the
reader without pyarrow), and pandas' ``read_csv`` to a float64 array. Each side's values are
checked to equal pandas' bit for bit. Best of ``--repeat``, the sides alternating. ``--text``
adds a quoted ``site`` column (``"LNGS"``, as R's write.csv quotes text) that ``columns`` leaves
out and a ``#`` comment line every 100,000 rows: the file the quote and comment scans before the
fast reader work on (pandas reads it with ``usecols`` and ``comment="#"``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dmca_core.domains import csv_file


def write(path: Path, n: int, text: bool = False) -> None:
    import pandas as pd

    rng = np.random.default_rng(3)
    depth = rng.uniform(1, 6, n)
    exposure = 60 + 20 * depth + rng.normal(0, 10, n)
    counts = 0.8 * exposure - 30 * depth + rng.normal(0, 10, n)
    cols = {"depth [km w.e.]": depth, "exposure [kg*day]": exposure, "counts": counts}
    for j in range(2):
        cols[f"aux_{j:02d} [a.u.]"] = (0.3 * depth if j % 2 == 0 else 0) + rng.normal(0, 1, n)
    if not text:
        pd.DataFrame(cols).to_csv(path, index=False)
        return
    cols["site"] = np.where(rng.uniform(size=n) < 0.5, "LNGS", "SNOLAB")
    lines = pd.DataFrame(cols).to_csv(index=False, quoting=2).splitlines()  # 2: QUOTE_NONNUMERIC
    for k in range(len(lines) - len(lines) % 100_000, 0, -100_000):
        lines.insert(k, f"# run {k // 100_000} starts here")
    path.write_text("\n".join(lines) + "\n")


def timed(fn: Any, times: dict[str, list[float]], name: str) -> np.ndarray:
    t = time.perf_counter()
    out = fn()
    times.setdefault(name, []).append(time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--exact", action="store_true", help="also time the exact reader (slow), once")
    ap.add_argument("--text", action="store_true", help="a quoted text column left out, and comments")
    args = ap.parse_args()
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        write(path, args.rows, args.text)
        mb = path.stat().st_size / 1e6
        installed = csv_file._fast_reader().__name__.removeprefix("_fast_")
        shape = "5 numeric columns + a quoted text one, comments" if args.text else "5 columns"
        print(f"{path.name}: {args.rows:,} rows x {shape}, {mb:.0f} MB; fast reader installed: {installed}")
        print(f"load average {os.getloadavg()[0]:.2f}")
        used = None
        if args.text:
            used = [n for n in pd.read_csv(path, nrows=1, comment="#").columns if n != "site"]
        sides = {
            "pandas read_csv": lambda: pd.read_csv(
                path, usecols=used, comment="#" if args.text else None
            ).to_numpy(dtype=np.float64),
            f"dmca ({installed})": lambda: csv_file._read_checked(path, used).values,
            "dmca (numpy loadtxt)": lambda: _with_reader(path, csv_file._fast_numpy, used),
        }
        times: dict[str, list[float]] = {}
        ref = None
        for _ in range(args.repeat):
            for name, fn in sides.items():
                vals = timed(fn, times, name)
                if ref is None:
                    ref = vals
                elif not np.array_equal(vals, ref):
                    raise SystemExit(f"{name}: values differ from pandas'")
        if args.exact:
            vals = timed(lambda: _with_reader(path, False, used), times, "dmca (exact reader)")
            if not np.array_equal(vals, ref):
                raise SystemExit("exact reader: values differ from pandas'")
        peer = min(times["pandas read_csv"])
        for name, ts in times.items():
            print(f"  {name:24s} {min(ts):7.3f} s   {min(ts) / peer:5.2f}x pandas' time")
        print(f"load average {os.getloadavg()[0]:.2f}")


def _with_reader(path: Path, reader: Any, columns: list[str] | None = None) -> np.ndarray:
    return csv_file._read_csv(path, columns, reader).values


if __name__ == "__main__":
    main()
