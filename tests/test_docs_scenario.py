"""docs/scenario.md is generated from the schema table and must be current.

Regenerate with ``python -m twin.scenario > docs/scenario.md``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from twin.scenario import SCHEMA, schema_markdown

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "scenario.md"
REGEN = "python -m twin.scenario > docs/scenario.md"


def test_docs_scenario_md_is_current():
    # print() adds one trailing newline
    assert DOC.read_text(encoding="utf-8") == schema_markdown() + "\n", f"stale: run `{REGEN}`"


def test_regeneration_command_reproduces_the_page():
    out = subprocess.run([sys.executable, "-m", "twin.scenario"], cwd=REPO, capture_output=True,
                         text=True, encoding="utf-8", timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == DOC.read_text(encoding="utf-8")


def test_every_schema_key_has_a_row():
    text = DOC.read_text(encoding="utf-8")
    for section, keys in SCHEMA.items():
        heading = "## top level" if not section else f"## [{section}]"
        assert heading in text
        body = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for key in keys:
            assert f"| `{key.name}` | {key.kind} | {key.unit} |" in body, (section, key.name)
