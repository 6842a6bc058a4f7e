"""NCRONTAB schedules as Azure Functions timers use them: "sec min hour day month weekday"."""

from __future__ import annotations

from datetime import datetime, timedelta

_RANGES = ((0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


class Schedule:
    """A six-field schedule; supports *, n, a-b, a,b and */n (and a-b/n)."""

    def __init__(self, text: str) -> None:
        fields = text.split()
        if len(fields) != 6:
            raise ValueError(f"NCRONTAB {text!r} needs 6 fields (sec min hour day month weekday)")
        self.text = text
        self.allowed = [_expand(f, lo, hi) for f, (lo, hi) in zip(fields, _RANGES, strict=True)]

    def matches(self, moment: datetime) -> bool:
        """Whether a whole second fires."""
        sec, minute, hour, day, month, weekday = self.allowed
        return (
            moment.second in sec
            and moment.minute in minute
            and moment.hour in hour
            and moment.day in day
            and moment.month in month
            and (moment.isoweekday() % 7) in weekday
        )

    def next_after(self, moment: datetime) -> datetime:
        """The first firing second strictly after `moment` (within a year)."""
        candidate = moment.replace(microsecond=0) + timedelta(seconds=1)
        # Step by minutes once the seconds field cannot match within this minute.
        for _ in range(366 * 24 * 60 * 2):
            if self.matches(candidate):
                return candidate
            if candidate.second >= max(self.allowed[0]):
                candidate = (candidate + timedelta(minutes=1)).replace(second=min(self.allowed[0]))
            else:
                candidate += timedelta(seconds=1)
        raise ValueError(f"NCRONTAB {self.text!r} never fires")


def _expand(field: str, lo: int, hi: int) -> frozenset[int]:
    values: set[int] = set()
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = lo, hi
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = int(a), int(b)
        else:
            start = end = int(body)
            if step_text:
                end = hi
        if not (lo <= start <= end <= hi) or step < 1:
            raise ValueError(f"NCRONTAB field {field!r} out of range {lo}-{hi}")
        values.update(range(start, end + 1, step))
    return frozenset(values)
