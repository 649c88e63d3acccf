"""Find and redact personal data and secrets.

Candidates come from one multi-pattern scan; each is then checked by its validator
(Luhn for cards, python-stdnum for IBANs and national ids, phonenumbers for phone
numbers, the `ipaddress` module for IPs), which keeps digit runs such as order
numbers from being redacted. Where candidates overlap, the more specific entity
wins (a card number is not also a phone number).
"""

import bisect
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.br import cpf
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.in_ import aadhaar
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

from nexus.engine.hooks.base import (
    Decision,
    Hook,
    HookContext,
    Redaction,
    Segment,
    Verdict,
)
from nexus.engine.hooks.options import Option, OptionsSpec, positive, string_list
from nexus.engine.hooks.patterns import PatternRule, PatternSet

logger = logging.getLogger(__name__)

# stdnum rejects these SSNs because they were published (a wallet insert, an
# advertisement), yet text that carries them still discloses an SSN-shaped value.
PUBLISHED_SSNS = frozenset({"078051120", "457555462", "219099999"})


@dataclass(frozen=True)
class Detector:
    """One kind of personal data: candidate patterns, a validator and a label."""

    entity: str
    label: str
    patterns: tuple[str, ...]
    validate: Callable[[str], bool] | None = None
    # Wins over lower values where candidates overlap.
    specificity: int = 0
    caseless: bool = False


def _digits(value: str) -> str:
    return "".join(char for char in value if char.isdigit())


def _card(value: str) -> bool:
    digits = _digits(value)
    return 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn.is_valid(digits)


def _us_ssn(value: str) -> bool:
    digits = _digits(value)
    return ssn.is_valid(digits) or digits in PUBLISHED_SSNS


def _ip(value: str) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    if address.version == 6:
        return sum(1 for group in value.split(":") if group) >= 3
    return True


def _phone(regions: Sequence[str]) -> Callable[[str], bool]:
    def validate(value: str) -> bool:
        digits = _digits(value)
        if not 7 <= len(digits) <= 15:
            return False
        candidates = [None] if value.startswith("+") else list(regions)
        for region in candidates:
            try:
                number = phonenumbers.parse(value, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
        return False

    return validate


def _stdnum(module) -> Callable[[str], bool]:
    return module.is_valid


SECRET_PATTERNS = (
    r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}",
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    r"\bgithub_pat_[A-Za-z0-9_]{22,}\b",
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",
    r"\bAIza[0-9A-Za-z_-]{35}",
    r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
    r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    r"\bnvk_[A-Za-z0-9_-]{16,}",
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[A-Za-z0-9+/=\s]*"
    r"(?:-----END (?:[A-Z]+ )*PRIVATE KEY-----)?",
    r"\b(?:api[_-]?key|secret|token|password|passwd)\s*[:=]\s*[\"']?[^\s\"']{8,}",
)


def detectors(phone_regions: Sequence[str]) -> dict[str, Detector]:
    """Return every known detector by entity name."""
    found = [
        Detector("secret", "[SECRET]", SECRET_PATTERNS, None, 90, caseless=False),
        Detector("card", "[CARD]", (r"\b(?:\d[ -]?){12,18}\d\b",), _card, 80),
        Detector(
            "iban",
            "[IBAN]",
            (r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b",),
            stdnum_iban.is_valid,
            70,
        ),
        Detector(
            "us_ssn",
            "[SSN]",
            (r"\b\d{3}-\d{2}-\d{4}\b", r"\b\d{3} \d{2} \d{4}\b"),
            _us_ssn,
            60,
        ),
        Detector(
            "es_dni", "[NATIONAL_ID]", (r"\b\d{8}-?[A-Za-z]\b",), _stdnum(dni), 60
        ),
        Detector(
            "br_cpf",
            "[NATIONAL_ID]",
            (r"\b\d{3}\.?\d{3}\.?\d{3}-?\d{2}\b",),
            _stdnum(cpf),
            60,
        ),
        Detector(
            "in_aadhaar",
            "[NATIONAL_ID]",
            (r"\b\d{4} ?\d{4} ?\d{4}\b",),
            _stdnum(aadhaar),
            55,
        ),
        Detector(
            "fr_nir",
            "[NATIONAL_ID]",
            (r"\b[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}\b",),
            _stdnum(nir),
            60,
        ),
        Detector("nl_bsn", "[NATIONAL_ID]", (r"\b\d{9}\b",), _stdnum(bsn), 50),
        Detector("de_idnr", "[NATIONAL_ID]", (r"\b\d{11}\b",), _stdnum(idnr), 50),
        Detector(
            "it_codicefiscale",
            "[NATIONAL_ID]",
            (r"\b[A-Za-z]{6}\d{2}[A-Za-z]\d{2}[A-Za-z]\d{3}[A-Za-z]\b",),
            _stdnum(codicefiscale),
            60,
        ),
        Detector(
            "email",
            "[EMAIL]",
            (r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",),
            None,
            50,
        ),
        Detector(
            "ip",
            "[IP]",
            (
                r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
                r"\b[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7}\b",
            ),
            _ip,
            40,
        ),
        Detector(
            "phone",
            "[PHONE]",
            (
                r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\b\d{2,4}(?:[ .-]?\d{2,4}){1,4}\b",
            ),
            _phone(phone_regions),
            10,
        ),
    ]
    return {detector.entity: detector for detector in found}


ENTITIES = tuple(detectors(("US",)))
DEFAULT_ENTITIES = ["email", "phone", "us_ssn", "card", "iban", "ip", "secret"]


def _regions(value: list) -> None:
    string_list(value)
    for region in value:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{region!r} is not a phone region code such as US or DE.")


class PiiHook(Hook):
    """Redact (or block on) personal data and secrets."""

    kind = "pii"
    label = "Personal data and secrets"
    stream_window = 256
    options = OptionsSpec(
        {
            "entities": Option(
                "list",
                DEFAULT_ENTITIES,
                choices=ENTITIES,
                help="Entities to look for.",
            ),
            "action": Option(
                "str", "redact", choices=("redact", "block"), help="What a match does."
            ),
            "block_entities": Option(
                "list",
                [],
                choices=ENTITIES,
                help="Entities that block even when the action is redact.",
            ),
            "phone_regions": Option(
                "list",
                ["US"],
                check=_regions,
                help="Regions for phone numbers written without a country code.",
            ),
            "stream_window": Option(
                "int", 256, check=positive, help="Characters held back in streams."
            ),
        }
    )

    def __init__(self, config, services) -> None:
        super().__init__(config, services)
        known = detectors(self.config["phone_regions"])
        self.detectors = [known[name] for name in self.config["entities"]]
        rules, self.owners = [], []
        for detector in self.detectors:
            for pattern in detector.patterns:
                rules.append(
                    PatternRule(f"pii.{detector.entity}", pattern, detector.caseless)
                )
                self.owners.append(detector)
        self.patterns = PatternSet(rules)
        self.stream_window = self.config["stream_window"]
        self.blocking = set(self.config["block_entities"])
        if self.config["action"] == "block":
            self.blocking |= set(self.config["entities"])

    def find(self, text: str) -> list[tuple[Detector, int, int]]:
        """Return validated, non-overlapping findings in text as (detector, start, end)."""
        candidates = []
        for match in self.patterns.scan(text):
            detector = self.owners[match.rule]
            value = text[match.start : match.end]
            if detector.validate is None or detector.validate(value):
                candidates.append((detector, match.start, match.end))
        candidates.sort(key=lambda item: (-item[0].specificity, item[1] - item[2]))
        # Kept spans never overlap, so ordered by start they are also ordered by
        # end, and one bisect finds the only neighbours a candidate can overlap.
        starts: list[int] = []
        kept: list[tuple[Detector, int, int]] = []
        for candidate in candidates:
            position = bisect.bisect_left(starts, candidate[1])
            if position > 0 and kept[position - 1][2] > candidate[1]:
                continue
            if position < len(kept) and kept[position][1] < candidate[2]:
                continue
            starts.insert(position, candidate[1])
            kept.insert(position, candidate)
        return kept

    def check(self, context: HookContext, segments: Sequence[Segment]) -> Verdict:
        redactions = []
        entities: set[str] = set()
        for index, segment in enumerate(segments):
            for detector, start, end in self.find(segment.text):
                entities.add(detector.entity)
                redactions.append(
                    Redaction(
                        index, start, end, detector.label, f"pii.{detector.entity}"
                    )
                )
        if not redactions:
            return Verdict()
        names = sorted(entities)
        tags = frozenset(f"pii:{name}" for name in names)
        rule_ids = tuple(f"pii.{name}" for name in names)
        blocked = sorted(entities & self.blocking)
        if blocked:
            return Verdict(
                Decision.BLOCK,
                f"found {', '.join(blocked)}.",
                rule_ids,
                tags,
                code="pii_detected",
            )
        return Verdict(
            Decision.REDACT,
            f"redacted {', '.join(names)}.",
            rule_ids,
            tags,
            tuple(redactions),
        )
