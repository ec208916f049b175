"""Language detection from text with lingua (models ship inside the wheel: works offline), restricted
to the tenant's languages: fewer candidates is faster and cannot answer a language nobody speaks.
lingua is the `enrichment` extra of pyproject.toml: in the image switchboard-enrichment, not in switchboard."""

from __future__ import annotations

import threading
from functools import lru_cache

try:
    from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder
except ImportError as exc:
    raise ImportError(
        f"enrichment needs lingua-language-detector ({exc}): run it from the image switchboard-enrichment, "
        "not switchboard, or install the extra: pip install '.[enrichment]'"
    ) from None

_lock = threading.Lock()
MAX_CHARS = 2000  # the first 2000 characters decide: enough for any language, bounded cost


def _language(code: str) -> Language | None:
    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
    except (ValueError, AttributeError):
        return None


def supported(code: str) -> bool:
    return _language(code) is not None


@lru_cache(maxsize=64)
def _detector(codes: tuple[str, ...]) -> LanguageDetector:
    langs = [lang for lang in (_language(c) for c in codes) if lang is not None]
    return LanguageDetectorBuilder.from_languages(*langs).with_minimum_relative_distance(0.1).build()


def detect(text: str, languages: tuple[str, ...]) -> str:
    """ISO 639-1 code of `text` among `languages` (2 or more), or "" when unsure or too short."""
    text = text.strip()[:MAX_CHARS]
    if len(languages) < 2 or len(text) < 3:
        return ""
    with _lock:
        detector = _detector(tuple(sorted(languages)))
    found = detector.detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found is not None else ""


def warm_up(languages: tuple[str, ...]) -> None:
    """Load the models before the first contact (they load lazily otherwise, ~1 s)."""
    if len(languages) >= 2:
        detect("warm up the models", languages)
