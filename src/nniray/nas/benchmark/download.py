"""``python -m nniray.nas.benchmark.download <name>``: fetch a prebuilt database from NNI's blob
store into ``$NASBENCHMARK_DIR``.  Offline it fails with a message that says what to do."""
from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from .db import benchmark_dir

URLS = {
    "nasbench101": "https://nni.blob.core.windows.net/nasbenchmark/nasbench101-209f5694.db",
    "nasbench201": "https://nni.blob.core.windows.net/nasbenchmark/nasbench201-b2b60732.db",
    "nds": "https://nni.blob.core.windows.net/nasbenchmark/nds-5745c235.db",
}


def download(name: str, timeout: float = 20.0) -> str:
    if name not in URLS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(URLS)} (nlp has no prebuilt file)")
    target = benchmark_dir() / f"{name}.db"
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(URLS[name], timeout=timeout) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        tmp.unlink(missing_ok=True)
        raise ConnectionError(f"cannot download {name} from {URLS[name]}: {e}. This machine may be offline: copy "
                              f"{name}.db into {target.parent} (or set NASBENCHMARK_DIR), or generate a small "
                              f"database with benchmarks/nas/make_benchmark_db.py") from None
    tmp.replace(target)
    return str(target)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m nniray.nas.benchmark.download")
    p.add_argument("name", choices=sorted(URLS))
    args = p.parse_args(argv)
    try:
        print(download(args.name))
    except ConnectionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
