"""Scan text for many regular expressions in one pass.

With the `hyperscan` package the whole rule set compiles into one database and a
scan reads the text once, whatever the number of rules. Hyperscan only finds where
each rule matched, so Python's `re` then confirms the exact spans in those regions,
which keeps the results identical to the pure-`re` engine. Without hyperscan (it
cannot be imported), every rule is run with `re` in turn, so cost grows with the
number of rules.

Both engines use ASCII semantics for `\\w`, `\\d` and `\\b` and treat text as
Unicode code points, so offsets are string indices.
"""

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

try:
    import hyperscan
except ImportError:  # pragma: no cover - depends on the platform
    hyperscan = None


@dataclass(frozen=True)
class PatternRule:
    """One regular expression and the rule id reported when it matches."""

    id: str
    regex: str
    caseless: bool = False


@dataclass(frozen=True)
class Match:
    """A match of rules[rule] at text[start:end]."""

    rule: int
    start: int
    end: int


def compile_regex(rule: PatternRule) -> re.Pattern:
    """Compile a rule for `re`, rejecting patterns that match the empty string."""
    flags = re.ASCII | (re.IGNORECASE if rule.caseless else 0)
    pattern = re.compile(rule.regex, flags)
    if pattern.fullmatch("") is not None:
        raise ValueError(f"the pattern {rule.regex!r} matches the empty string.")
    return pattern


def available_engines() -> list[str]:
    return ["hyperscan", "re"] if hyperscan is not None else ["re"]


class PatternSet:
    """A compiled set of rules; scan() returns every match of every rule."""

    def __init__(self, rules: Sequence[PatternRule], engine: str = "auto") -> None:
        self.rules = list(rules)
        self.compiled = [compile_regex(rule) for rule in self.rules]
        use_hyperscan = engine in ("auto", "hyperscan") and hyperscan is not None
        if engine == "hyperscan" and hyperscan is None:
            raise ValueError("The hyperscan engine is not installed.")
        self.engine = "hyperscan" if use_hyperscan and self.rules else "re"
        self.database = None
        self.unsupported: set[int] = set()
        # Rules hyperscan can only approximate: a hit means "scan the whole text".
        self.prefiltered: set[int] = set()
        if self.engine == "hyperscan":
            self._compile_hyperscan()

    def __len__(self) -> int:
        return len(self.rules)

    def scan(self, text: str) -> list[Match]:
        """Return the matches of every rule, ordered by start, then by rule."""
        if not self.rules or not text:
            return []
        if self.engine == "re":
            found = [
                Match(index, hit.start(), hit.end())
                for index, pattern in enumerate(self.compiled)
                for hit in pattern.finditer(text)
            ]
        else:
            found = self._scan_hyperscan(text)
        found.sort(key=lambda match: (match.start, match.rule))
        return found

    def _compile_hyperscan(self) -> None:
        key = tuple((rule.regex, rule.caseless) for rule in self.rules)
        serialized, prefiltered, unsupported = _compiled_set(key)
        self.prefiltered, self.unsupported = set(prefiltered), set(unsupported)
        if serialized is not None:
            # Each set loads its own copy, so no two threads share scratch space.
            self.database = hyperscan.loadb(serialized, hyperscan.HS_MODE_BLOCK)
            self.database.scratch = hyperscan.Scratch(self.database)

    def _scan_hyperscan(self, text: str) -> list[Match]:
        data = text.encode("utf-8")
        regions: dict[int, list[list[int]]] = {}

        def on_match(rule: int, start: int, end: int, flags: int, context) -> None:
            spans = regions.setdefault(rule, [])
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
                spans[-1][0] = min(spans[-1][0], start)
            else:
                spans.append([start, end])

        if self.database is not None:
            self.database.scan(data, match_event_handler=on_match)
        for rule in self.unsupported:
            regions[rule] = [[0, len(data)]]
        ascii_text = len(data) == len(text)
        found = []
        for rule, spans in regions.items():
            pattern = self.compiled[rule]
            if rule in self.prefiltered or rule in self.unsupported:
                spans = [[0, len(data)]]
            for start, end in _merged(spans):
                if not ascii_text:
                    start, end = _char_offset(data, start), _char_offset(data, end)
                found.extend(
                    Match(rule, hit.start(), hit.end())
                    for hit in pattern.finditer(text, start, end)
                )
        return found


@functools.lru_cache(maxsize=64)
def _compiled_set(
    key: tuple[tuple[str, bool], ...],
) -> tuple[bytes | None, frozenset[int], frozenset[int]]:
    """Compile rules into a serialized database; cached because compiling takes ms to s.

    Returns the database (None when no rule compiles), the rules compiled as
    prefilters and the rules hyperscan cannot compile at all.
    """
    expressions = [regex.encode("utf-8") for regex, _ in key]
    flags = [_flags(caseless) | hyperscan.HS_FLAG_SOM_LEFTMOST for _, caseless in key]
    ids = list(range(len(key)))
    prefiltered: set[int] = set()
    unsupported: set[int] = set()
    database = _compiled(expressions, ids, flags)
    if database is None:
        # Some rule needs a construct hyperscan lacks (look-around, back
        # references): compile that one as a prefilter instead.
        kept = [], [], []
        for index, expression in enumerate(expressions):
            chosen = flags[index]
            if _compiled([expression], [0], [chosen]) is None:
                chosen = (
                    _flags(key[index][1])
                    | hyperscan.HS_FLAG_PREFILTER
                    | hyperscan.HS_FLAG_SINGLEMATCH
                )
                prefiltered.add(index)
                if _compiled([expression], [0], [chosen]) is None:
                    logger.warning(
                        "a rule cannot be compiled by hyperscan: %r", key[index][0][:80]
                    )
                    unsupported.add(index)
                    continue
            kept[0].append(expression)
            kept[1].append(index)
            kept[2].append(chosen)
        database = _compiled(*kept) if kept[0] else None
    serialized = hyperscan.dumpb(database) if database is not None else None
    return serialized, frozenset(prefiltered - unsupported), frozenset(unsupported)


def _flags(caseless: bool) -> int:
    return hyperscan.HS_FLAG_UTF8 | (hyperscan.HS_FLAG_CASELESS if caseless else 0)


def _compiled(expressions: list[bytes], ids: list[int], flags: list[int]):
    database = hyperscan.Database()
    try:
        database.compile(
            expressions=expressions, ids=ids, elements=len(expressions), flags=flags
        )
    except hyperscan.error:
        return None
    return database


def _merged(spans: list[list[int]]) -> list[list[int]]:
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def _char_offset(data: bytes, offset: int) -> int:
    return len(data[:offset].decode("utf-8", errors="ignore"))
