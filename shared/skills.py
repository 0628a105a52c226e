"""Skills are compared by a normal form: "Python", "python " and "PYTHON" are one skill."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")
MAX_SKILL_LENGTH = 50
MAX_SKILLS = 50


def normalize_skill(raw: str) -> str:
    """Unicode-normalised, trimmed, inner whitespace collapsed, case-folded."""
    text = unicodedata.normalize("NFKC", raw)
    return _SPACES.sub(" ", text).strip().casefold()


def normalize_skills(raw: list[str]) -> list[str]:
    """Normal forms, duplicates dropped, first-seen order kept; empty ones rejected."""
    seen: dict[str, None] = {}
    for item in raw:
        skill = normalize_skill(item)
        if not skill:
            raise ValueError("a skill cannot be empty")
        if len(skill) > MAX_SKILL_LENGTH:
            raise ValueError(f"a skill is at most {MAX_SKILL_LENGTH} characters")
        seen.setdefault(skill, None)
    if len(seen) > MAX_SKILLS:
        raise ValueError(f"at most {MAX_SKILLS} skills")
    return list(seen)
