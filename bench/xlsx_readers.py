""".xlsx readers compared on one workbook: time to the first 5,000 rows (what the upload's
suggestion needs), time for every row (what the import needs), and peak RSS.

    .venv/bin/python bench/xlsx_readers.py --rows 240000     # about 20 MB

Readers: ours (app/imports/xlsx.py, stdlib only), openpyxl in read-only mode (a dev dependency)
and python-calamine (not a dependency of the project: measured when importable, e.g. from a
scratch virtualenv: `uv venv /tmp/x && uv pip install --python /tmp/x python-calamine openpyxl psutil`,
then run this script with /tmp/x/bin/python). Each measurement runs in a fresh process.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEASURE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[4])
path, reader, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
n = 0
if reader == "ours":
    from app.imports import xlsx
    book = xlsx.open_workbook(open(path, "rb"))
    rows = (r.cells for r in xlsx.iter_rows(book, book.sheet(None)))
elif reader == "openpyxl":
    import openpyxl
    rows = openpyxl.load_workbook(path, read_only=True, data_only=True).worksheets[0].iter_rows(values_only=True)
else:
    import python_calamine
    rows = python_calamine.CalamineWorkbook.from_path(path).get_sheet_by_index(0).iter_rows()
for _ in rows:
    n += 1
    if limit and n >= limit:
        break
seconds = time.perf_counter() - started
# VmHWM belongs to this process's memory since exec (ru_maxrss would include the parent's peak)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"rows": n, "seconds": round(seconds, 2), "peak_rss_mb": round(peak / 1024)}))
"""


def available(reader: str) -> bool:
    module = {"ours": "zipfile", "openpyxl": "openpyxl", "calamine": "python_calamine"}[reader]
    return (
        subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, check=False
        ).returncode
        == 0
    )


def measure(path: Path, reader: str, limit: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path), reader, str(limit), str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1][:200]}
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=240_000)
    parser.add_argument("--file", type=Path, help="an existing workbook instead of a generated one")
    parser.add_argument(
        "--full", action="store_true", help="also read every row (openpyxl takes minutes)"
    )
    args = parser.parse_args()
    path = args.file
    if path is None:
        from bench.xlsx_feed import write_xlsx_feed

        path = Path(tempfile.mkdtemp(prefix="pim-bench-xlsx-")) / "feed.xlsx"
        started = time.perf_counter()
        size = write_xlsx_feed(path, args.rows)
        print(
            f"workbook: {args.rows:,} rows, {size / 1e6:.1f} MB, written in {time.perf_counter() - started:.1f} s"
        )
    results = {}
    for reader in ("ours", "openpyxl", "calamine"):
        if not available(reader):
            print(f"{reader}: not importable here, skipped")
            continue
        first = measure(path, reader, 5000)
        print(f"{reader}: first 5,000 rows {first}", flush=True)
        results[reader] = {"first_5000": first}
        if args.full:
            every = measure(path, reader, 0)
            print(f"{reader}: every row {every}", flush=True)
            results[reader]["every_row"] = every
    print(json.dumps(results))
    if args.file is None:
        path.unlink()
        path.parent.rmdir()


if __name__ == "__main__":
    main()
