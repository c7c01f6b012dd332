"""Who is on duty: shifts and rotations from the policy, leave, swaps, the duty office's CSV.

Precedence for one shift's position, highest first: a row imported from the
duty office's sheet (``duty import``, table ``duty_assignments``), an override
in the policy, the rotation (skipping members on leave: the next member
stands in). A shift is named by the date it starts on: the night shift that
starts on 1 October at 18:00 covers 03:00 on 2 October.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy import and_, delete, insert, select

from agent.calendar_cn import SHANGHAI, WorkCalendar, local_time
from agent.detectors.documents.checker.extract import ExtractionError, decode_text
from collector.errors import CollectorError
from collector.messages import _
from collector.routing.policy import POSITION_NAMES, POSITIONS, AlertingPolicy, Shift
from collector.store.database import Database
from collector.store.tables import duty_assignments

#: Column headings the duty office's sheets use, in Chinese or English.
CSV_COLUMNS: Final = {
    "date": ("日期", "date"),
    "shift": ("班次", "shift"),
    "position": ("岗位", "position"),
    "person": ("姓名", "人员", "person"),
}
MAX_CSV_BYTES: Final = 2 * 1024 * 1024


class DutyImportError(CollectorError):
    """The sheet cannot be imported; the message names every bad line."""


@dataclass(frozen=True)
class ShiftSlot:
    """One occurrence of a shift: which, the date it starts, its span in Asia/Shanghai."""

    shift: str
    label: str
    day: date
    starts_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class DutyStaff:
    """Who holds each position in one shift (None: nobody is assigned)."""

    slot: ShiftSlot
    people: Mapping[str, str | None] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)

    def person(self, position: str) -> str | None:
        return self.people.get(position)


def _span(shift: Shift, day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, shift.start, SHANGHAI)
    end_day = day + timedelta(days=1) if shift.end <= shift.start else day
    return start, datetime.combine(end_day, shift.end, SHANGHAI)


def slots_around(policy: AlertingPolicy, moment: datetime) -> list[ShiftSlot]:
    """Shift occurrences starting the day before ``moment`` up to two days after, in order."""
    local = local_time(moment)
    slots = []
    for offset in (-1, 0, 1, 2):
        day = local.date() + timedelta(days=offset)
        for name, shift in policy.duty.shifts.items():
            start, end = _span(shift, day)
            slots.append(ShiftSlot(name, shift.label, day, start, end))
    return sorted(slots, key=lambda s: (s.starts_at, s.shift))


def current_slot(policy: AlertingPolicy, moment: datetime) -> ShiftSlot | None:
    """The shift covering ``moment`` (the latest started, if shifts overlap)."""
    covering = [s for s in slots_around(policy, moment) if s.starts_at <= moment < s.ends_at]
    return covering[-1] if covering else None


def next_slot(policy: AlertingPolicy, moment: datetime) -> ShiftSlot | None:
    later = [s for s in slots_around(policy, moment) if s.starts_at > moment]
    return later[0] if later else None


def _on_leave(policy: AlertingPolicy, person: str, day: date) -> bool:
    return any(leave.person == person and leave.start <= day <= leave.end
               for leave in policy.duty.leave)


def rotation_person(
    policy: AlertingPolicy, calendar: WorkCalendar, slot: ShiftSlot, position: str
) -> str | None:
    """The rotation member due at ``position`` in ``slot``; members on leave are skipped."""
    kind = calendar.day_kind(slot.day)
    for rotation in policy.duty.rotations:
        if rotation.position != position or slot.shift not in rotation.shifts:
            continue
        if rotation.days and kind not in rotation.days:
            continue
        turn = (slot.day - rotation.start).days // rotation.length_days
        members = rotation.members
        for step in range(len(members)):
            person = members[(turn + step) % len(members)]
            if not _on_leave(policy, person, slot.day):
                return person
    return None


def imported_rows(db: Database, day_from: date, day_to: date) -> dict[tuple[date, str, str], str]:
    with db.read() as conn:
        rows = conn.execute(
            select(duty_assignments.c.shift_date, duty_assignments.c.shift,
                   duty_assignments.c.position, duty_assignments.c.person)
            .where(and_(duty_assignments.c.shift_date >= day_from,
                        duty_assignments.c.shift_date <= day_to))
        ).all()
    return {(r.shift_date, r.shift, r.position): r.person for r in rows}


def staff_for(
    policy: AlertingPolicy,
    slot: ShiftSlot,
    imported: Mapping[tuple[date, str, str], str],
) -> DutyStaff:
    calendar = policy.calendar.work_calendar()
    people: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for position in POSITIONS:
        person = imported.get((slot.day, slot.shift, position))
        source = "imported"
        if person is None:
            override = next((o for o in policy.duty.overrides
                             if o.date == slot.day and o.shift == slot.shift
                             and o.position == position), None)
            person, source = (override.person, "override") if override else (None, "")
        if person is None:
            person, source = rotation_person(policy, calendar, slot, position), "rotation"
        people[position] = person
        sources[position] = source if person is not None else "unassigned"
    return DutyStaff(slot, people, sources)


def on_duty(policy: AlertingPolicy, db: Database | None, moment: datetime) -> DutyStaff | None:
    """The staff of the shift covering ``moment``; None when no shift covers it."""
    slot = current_slot(policy, moment)
    return None if slot is None else _staff(policy, db, slot)


def next_on_duty(
    policy: AlertingPolicy, db: Database | None, moment: datetime
) -> DutyStaff | None:
    slot = next_slot(policy, moment)
    return None if slot is None else _staff(policy, db, slot)


def _staff(policy: AlertingPolicy, db: Database | None, slot: ShiftSlot) -> DutyStaff:
    imported = imported_rows(db, slot.day, slot.day) if db is not None else {}
    return staff_for(policy, slot, imported)


# -- the duty office's sheet -----------------------------------------------------------------


@dataclass(frozen=True)
class ImportedRow:
    day: date
    shift: str
    position: str
    person: str


def parse_roster_csv(raw: bytes, policy: AlertingPolicy) -> list[ImportedRow]:
    """Rows of ``日期,班次,岗位,姓名`` (or date,shift,position,person); every bad line is named.

    Shifts are given by key or label (夜班), positions by key or Chinese name
    (值班员, 备班, 值班领导), people by key or name (张伟). UTF-8 with or
    without BOM, and GB18030 (what spreadsheet programs on Chinese Windows
    write) are read.
    """
    if len(raw) > MAX_CSV_BYTES:
        raise DutyImportError(_("the sheet is larger than {limit} bytes; split it")
                              .format(limit=MAX_CSV_BYTES))
    try:
        text = decode_text(raw)
    except ExtractionError as exc:
        raise DutyImportError(_("the sheet cannot be read: {reason}").format(reason=exc)) from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        raise DutyImportError(_("the sheet is empty"))
    columns = _columns([h.strip() for h in header])
    shifts = _names({k: [k, s.label] for k, s in policy.duty.shifts.items()})
    positions = _names({k: [k, POSITION_NAMES[k]] for k in POSITIONS})
    people = _names({k: [k, p.name] for k, p in policy.people.items()})
    rows: list[ImportedRow] = []
    problems: list[str] = []
    for line_no, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        try:
            values = {key: cells[index].strip() for key, index in columns.items()}
        except IndexError:
            problems.append(_("line {line}: too few columns ({count} needed)")
                            .format(line=line_no, count=len(header)))
            continue
        try:
            day = date.fromisoformat(values["date"].replace("/", "-"))
        except ValueError:
            problems.append(_("line {line}: date {value!r} is not YYYY-MM-DD")
                            .format(line=line_no, value=values["date"]))
            continue
        found = []
        for key, table, unknown in (
                ("shift", shifts, _("line {line}: unknown shift {value!r} (known: {known})")),
                ("position", positions,
                 _("line {line}: unknown position {value!r} (known: {known})")),
                ("person", people, _("line {line}: unknown person {value!r} (known: {known})"))):
            value = table.get(values[key])
            if value is None:
                known = _(", ").join(sorted(table))
                problems.append(unknown.format(line=line_no, value=values[key], known=known))
            found.append(value)
        if None not in found:
            rows.append(ImportedRow(day, *[v for v in found if v is not None]))
    seen: dict[tuple[date, str, str], int] = {}
    for index, row in enumerate(rows):
        slot_key = (row.day, row.shift, row.position)
        if slot_key in seen and rows[seen[slot_key]].person != row.person:
            problems.append(_("{day} {shift} {position}: two different people")
                            .format(day=row.day, shift=row.shift, position=row.position))
        seen[slot_key] = index
    if problems:
        raise DutyImportError(_("the sheet was not imported:\n{problems}")
                              .format(problems="\n".join(problems)))
    if not rows:
        raise DutyImportError(_("the sheet has no data rows"))
    return rows


def _columns(header: list[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for key, names in CSV_COLUMNS.items():
        index = next((i for i, h in enumerate(header) if h.lower() in names), None)
        if index is None:
            raise DutyImportError(
                _("the header has no “{column}” column (it should be 日期,班次,岗位,姓名 or "
                  "date,shift,position,person; it is {header})")
                .format(column="/".join(names), header=",".join(header)))
        columns[key] = index
    return columns


def _names(aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
    return {alias: key for key, names in aliases.items() for alias in names}


def import_rows(db: Database, rows: list[ImportedRow], source: str, by: str,
                now: datetime) -> int:
    """Store the sheet's rows, replacing earlier rows for the same shift and position."""
    with db.write() as conn:
        for row in rows:
            conn.execute(delete(duty_assignments).where(
                duty_assignments.c.shift_date == row.day, duty_assignments.c.shift == row.shift,
                duty_assignments.c.position == row.position))
            conn.execute(insert(duty_assignments).values(
                shift_date=row.day, shift=row.shift, position=row.position, person=row.person,
                source=source[:500], imported_at=now, imported_by=by[:100]))
    return len(rows)


def describe(policy: AlertingPolicy, staff: DutyStaff) -> dict[str, object]:
    """The JSON shape ``GET /api/v1/duty`` and ``duty now --json`` print."""
    slot = staff.slot
    calendar = policy.calendar.work_calendar()
    period = calendar.key_period(slot.day)
    return {
        "shift": slot.shift,
        "shift_label": slot.label,
        "date": slot.day.isoformat(),
        "starts_at": slot.starts_at.isoformat(),
        "ends_at": slot.ends_at.isoformat(),
        "day_kind": calendar.day_kind(slot.day).value,
        "key_period": period.name if period else None,
        "positions": {
            position: None if person is None else {
                "id": person,
                "name": policy.people[person].name if person in policy.people else person,
                "source": staff.sources[position],
            }
            for position, person in staff.people.items()
        },
    }
