"""`make bench`: run every benchmark script in its own process and print what each reports.

Targets are printed beside the figures; a benchmark never fails the build.
"""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    scripts = sorted(p for p in HERE.glob("bench_*.py"))
    only = set(sys.argv[1:])
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        print(f"=== {name} ===", flush=True)
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, check=False)
        if result.returncode:
            print(f"({name} exited with status {result.returncode})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
