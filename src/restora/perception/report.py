"""The perception report: one finding per degradation type, JSON-serialisable.

Examples:
    >>> from restora.perception.report import DegradationReport, Finding
    >>> from restora.taxonomy import Degradation
    >>> f = {d.value: Finding(degradation=d, present=False, severity=0.0) for d in Degradation}
    >>> report = DegradationReport(findings=f, width=64, height=48)
    >>> report.is_clean(), report.present()
    (True, [])
    >>> DegradationReport.model_validate_json(report.model_dump_json()) == report
    True
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from restora.taxonomy import Degradation


class Finding(BaseModel):
    """What perception concluded about one degradation type.

    ``evidence`` holds the measurements behind the call (floats only), e.g. ``noise_sigma`` in
    0-255 units, ``jpeg_quality`` (1-100), ``blur_length``/``blur_angle`` (px, degrees),
    ``defocus_radius`` (px), ``lowres_factor`` (1 = full resolution), ``mean_luma`` (0-1).
    """

    model_config = ConfigDict(frozen=True)

    degradation: Degradation
    present: bool
    severity: float = Field(ge=0.0, le=1.0, description="0 = none, 1 = as bad as the synthetic maximum")
    evidence: dict[str, float] = Field(default_factory=dict)

    @field_validator("evidence")
    @classmethod
    def _finite(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, x in v.items() if not math.isfinite(x)]
        if bad:
            raise ValueError(f"evidence values must be finite floats: {bad}")
        return v


class DegradationReport(BaseModel):
    """Findings for every :class:`~restora.taxonomy.Degradation`, keyed by its name."""

    model_config = ConfigDict(frozen=True)

    findings: dict[str, Finding]
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    seconds: float = Field(default=0.0, ge=0.0, description="time perception took")
    _judge: DegradationReport | None = PrivateAttr(default=None)

    @property
    def judge(self) -> DegradationReport:
        """The reading the accept score judges a step by: this report, or the independent one set
        by :meth:`judged_by` (a learned perception that chooses the tools is not also the judge
        of whether they worked: after a tool aimed at what it found, it tends to read the result
        clean, damage included)."""
        return self._judge if self._judge is not None else self

    def judged_by(self, judge: DegradationReport | None) -> DegradationReport:
        """This report with ``judge`` as :attr:`judge` (returns self)."""
        self._judge = judge
        return self

    @model_validator(mode="after")
    def _all_types(self) -> DegradationReport:
        missing = [d.value for d in Degradation if d.value not in self.findings]
        if missing:
            raise ValueError(f"report lacks findings for: {', '.join(missing)}")
        wrong = [k for k, f in self.findings.items() if f.degradation.value != k]
        if wrong:
            raise ValueError(f"findings filed under the wrong key: {wrong}")
        return self

    def present(self) -> list[Finding]:
        """The findings marked present, most severe first.

        Examples:
            >>> [f.degradation.value for f in report.present()]   # doctest: +SKIP
            ['noise', 'jpeg']
        """
        found = [f for f in self.findings.values() if f.present]
        return sorted(found, key=lambda f: -f.severity)

    def is_clean(self) -> bool:
        """True when no degradation is present.

        Examples:
            >>> report.is_clean()   # doctest: +SKIP
            False
        """
        return not any(f.present for f in self.findings.values())

    def summary(self) -> str:
        """One line for logs: ``noise 0.42, jpeg 0.30`` or ``clean``.

        Examples:
            >>> report.summary()   # doctest: +SKIP
            'noise 0.42, jpeg 0.30'
        """
        found = self.present()
        if not found:
            return "clean"
        return ", ".join(f"{f.degradation.value} {f.severity:.2f}" for f in found)
