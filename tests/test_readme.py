"""The README stays true: the two commands, every setting, and the CI script running the test command."""

from __future__ import annotations

import re
from pathlib import Path

from rag.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    test_command = next(b.strip() for b in blocks if "setup.sh --test" in b and "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_documented() -> None:
    for name in Settings.model_fields:
        assert f"`RAG_{name.upper()}`" in README, f"setting {name} is missing from the README table"


def test_settings_table_is_current() -> None:
    from rag.config import settings_table

    assert settings_table() in README, "regenerate the README table with `python -m rag.config`"
