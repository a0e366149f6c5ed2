"""What refusing a hostile case file costs, measured side by side in one run.

Each input is loaded in a fresh process by cases.load_suite (the plugin's path) and, for
comparison, by PyYAML's own safe loader on the same text (what a naive loader would do);
the figures are wall time and the process's peak memory (ru_maxrss). Inputs:

  many-small-50MB   a 50 MB file of small values (refused by the size limit unread)
  many-small-4MB    just under the size limit: the value cap stops the parse
  alias-bomb        9 levels of ten-fold aliases, 1 kB of text
  megabyte-string   a 1 MB string in a list where a title belongs (the message quotes 60 chars)
  nesting-5000      5000 nested lists

    python bench/bench_bad_input.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HEAD = "format: 1\nid: hostile\ntitle: t\nreferences: []\noracles: {}\n"

CHILD = textwrap.dedent(
    """
    import json, resource, sys, time
    how, path = sys.argv[1], sys.argv[2]
    start = time.perf_counter()
    outcome = "accepted"
    if how == "plugin":
        from pytest_bindconform.cases import load_suite
        from pytest_bindconform.yamlsrc import CaseFileError
        try:
            load_suite(path)
        except CaseFileError as exc:
            outcome = "refused: " + exc.errors[0].message[:70]
            outcome += f" [message {max(len(e.message) for e in exc.errors)} chars]"
    else:
        import yaml
        try:
            with open(path, encoding="utf-8") as fh:
                yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (yaml.YAMLError, RecursionError) as exc:
            outcome = "raised " + type(exc).__name__
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "outcome": outcome}))
    """
)


def inputs(where: Path) -> dict[str, Path]:
    made = {}

    def write(name: str, text: str, repeat: str = "", times: int = 0) -> None:
        """In chunks: Linux keeps a process's peak memory across exec, so this one stays small."""
        made[name] = where / f"{name}.bind.yaml"
        with made[name].open("w", encoding="utf-8") as fh:
            fh.write(text)
            for _ in range(times // 10_000):
                fh.write(repeat * 10_000)

    write("many-small-50MB", HEAD + "filler:\n", "- 0\n", 12_500_000)
    write("many-small-4MB", HEAD + "filler:\n", "- 0\n", 1_000_000)
    laughs = "".join(
        f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 10) + "]\n" for i in range(9)
    )
    write("alias-bomb", HEAD + laughs)
    write("megabyte-string", HEAD.replace("title: t", "title: [" + "y" * 1_000_000 + "]"))
    write("nesting-5000", HEAD + "filler: " + "[" * 5000 + "]" * 5000 + "\n")
    return made


def measure(how: str, path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, how, str(path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in inputs(Path(tmp)).items():
            size = path.stat().st_size
            print(f"{name} ({size / 1e6:.1f} MB)")
            for how in ("plugin", "pyyaml"):
                if how == "pyyaml" and size > 10_000_000:
                    print("  pyyaml  skipped (minutes and gigabytes: see many-small-4MB x 12)")
                    continue
                r = measure(how, path)
                print(
                    f"  {how:<7} {r['seconds']:7.2f} s {r['peak_mb']:8.0f} MB peak  {r['outcome']}"
                )


if __name__ == "__main__":
    main()
