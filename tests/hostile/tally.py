"""The hostile corpus's score, printed once at the end of the session by tests/hostile/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Tally:
    cases: int = 0
    accepted: list[str] = field(default_factory=list)  # case ids answered 2xx
    server_errors: list[str] = field(default_factory=list)  # case ids answered 5xx (or raised)
    peak_growth_bytes: dict[str, int] = field(default_factory=dict)  # zip bombs: the worst measured

    def record(self, case_id: str, status: int | None) -> None:
        """One hostile request's answer; None when the request raised instead of answering."""
        self.cases += 1
        if status is None or status >= 500:
            self.server_errors.append(case_id)
        elif status < 300:
            self.accepted.append(case_id)

    def line(self) -> str:
        text = f"hostile corpus: {self.cases} cases, {len(self.accepted)} accepted, {len(self.server_errors)} 5xx"
        if self.peak_growth_bytes:
            worst_id = max(self.peak_growth_bytes, key=self.peak_growth_bytes.__getitem__)
            text += f"; zip bombs: peak memory growth at most {self._mib(worst_id)} ({worst_id})"
            text += "".join(f", {self._mib(i)} ({i})" for i in self.peak_growth_bytes if "4 GiB" in i)
        return text

    def _mib(self, case_id: str) -> str:
        return f"{self.peak_growth_bytes[case_id] / 2**20:.1f} MiB"


TALLY = Tally()
