"""Incident severity, Sev1 (full outage) to Sev4 (minor)."""

from __future__ import annotations

import enum


class Severity(enum.IntEnum):
    """Lower number = more severe, as on the DR plan."""

    SEV1 = 1
    SEV2 = 2
    SEV3 = 3
    SEV4 = 4

    @property
    def label(self) -> str:
        """The wire form: "sev1" … "sev4"."""
        return f"sev{self.value}"

    def raised(self) -> Severity:
        """One level more severe, stopping at Sev1."""
        return Severity(max(1, self.value - 1))

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse "sev1"/"Sev1"/"1"; ValueError on anything else."""
        value = text.strip().lower().removeprefix("sev")
        if value not in {"1", "2", "3", "4"}:
            raise ValueError(f"unknown severity {text!r}; expected sev1, sev2, sev3 or sev4")
        return cls(int(value))


# Azure Monitor's Sev0 is its most severe; the DR plan starts at Sev1.
AZURE_BASELINE = {
    "sev0": Severity.SEV1,
    "sev1": Severity.SEV2,
    "sev2": Severity.SEV3,
    "sev3": Severity.SEV4,
    "sev4": Severity.SEV4,
}
