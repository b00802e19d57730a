"""Cost reports: spend and requests by day or hour, model, provider and API key, and the savings
against always sending every request to a reference model.

A report reads the router's event log (decisions and their rewards) for a period; warm-start
history is not traffic and is left out. Spend is what the rewards reported, plus the cost
estimated (and reserved) at decision time for decisions without a reported cost (pending, or
given the default reward). The reference cost of each request is what the reference model
was estimated to cost on it; by default the catalog's strongest model, whose estimate every
decision logs, or another model named by ``reference``, whose estimate is read from the
decision's eligible models.

>>> from bandit_router import Router
>>> from bandit_router.eval.simulation import HashEmbedder, demo_catalog
>>> router = Router(database_url="sqlite://", catalog=demo_catalog(), embedder=HashEmbedder())
>>> d = router.select("Translate 'Hello' to French", tenant="team-a")
>>> _ = router.reward(d.event_id, quality=0.9, cost_usd=0.0001)
>>> report = cost_report(router, group_by=("key",))
>>> [(row.key, row.requests, row.rewarded, round(row.spend_usd, 6)) for row in report.rows]
[('team-a', 1, 1, 0.0001)]
>>> report.reference_model
'frontier/large'
>>> report.to_csv().splitlines()[0].split(",")[:4]
['key', 'requests', 'rewarded', 'pending']
>>> router.close()
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from ..core._errors import InvalidInputError
from ..core._store import EventRow, ObservationRow, RewardRow, Store
from ..core._validation import check_time
from ..router._router import Router

__all__ = ["GROUPS", "TOTAL", "CostReport", "CostRow", "cost_report", "parse_period",
           "parse_time"]

#: The dimensions a report can group by: UTC day, model (``provider/model``), provider, and
#: key (the request's tenant: API key id or team; ``-`` when none was given).
GROUPS: tuple[str, ...] = ("day", "hour", "model", "provider", "key")
#: What the group columns of the totals row hold in CSV output and tables.
TOTAL = "(total)"
#: Shown for decisions made without a tenant.
NO_KEY = "-"
_METRICS: tuple[str, ...] = (
    "requests", "rewarded", "pending", "defaulted", "spend_usd", "reported_usd",
    "estimated_usd", "mean_quality", "reference_cost_usd", "savings_usd", "savings_pct")
_CHUNK = 500
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True, kw_only=True)
class CostRow:
    """One group of a :class:`CostReport` (or its totals, where every group field is
    ``None``). A group field the report does not group by is ``None`` too.

    ``requests`` counts decisions: ``rewarded`` (a reward reported their cost and quality),
    ``pending`` (no reward yet) and ``defaulted`` (the reward wait ran out). ``spend_usd`` is
    ``reported_usd`` (the costs the rewards reported, or that an observation recorded when
    the call ended: the gateway's calls before their quality) plus ``estimated_usd`` (the
    cost estimated at decision time, for the decisions without a reported cost).
    ``mean_quality`` is over rewarded decisions (a failed call counts as 0), ``None`` when
    there are none. ``reference_cost_usd`` is what the reference model was estimated to cost
    on the same requests; ``savings_usd`` is that minus ``spend_usd``, and ``savings_pct``
    its share of the reference cost, in percent (``None`` when the reference cost is 0).
    """

    day: str | None = None
    #: the UTC hour, ``YYYY-MM-DDTHH:00Z``
    hour: str | None = None
    model: str | None = None
    provider: str | None = None
    key: str | None = None
    requests: int = 0
    rewarded: int = 0
    pending: int = 0
    defaulted: int = 0
    spend_usd: float = 0.0
    reported_usd: float = 0.0
    estimated_usd: float = 0.0
    mean_quality: float | None = None
    reference_cost_usd: float = 0.0
    savings_usd: float = 0.0
    savings_pct: float | None = None

    def group(self, name: str) -> str | None:
        """The value of group ``name`` (one of :data:`GROUPS`)."""
        if name not in GROUPS:
            raise InvalidInputError(f"unknown group {name!r}: choose from {', '.join(GROUPS)}")
        value: str | None = getattr(self, name)
        return value

    def to_dict(self, group_by: Sequence[str] = GROUPS) -> dict[str, Any]:
        """The row as JSON-ready values: the ``group_by`` fields, then the figures."""
        out: dict[str, Any] = {name: getattr(self, name) for name in group_by}
        out.update({name: getattr(self, name) for name in _METRICS})
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class CostReport:
    """Spend, requests and savings for a period: ``rows``, one :class:`CostRow` per group
    (sorted by the group values; none when ``group_by`` is empty), and ``total``.

    ``since`` and ``until`` (Unix seconds; ``None``: unbounded) are the period, ``since``
    included and ``until`` excluded. ``reference_model`` is the model the savings are
    measured against: the one named to :func:`cost_report`, else the catalog's strongest as
    logged by the decisions (the most frequent if the catalog changed during the period).
    When the reference was named, ``reference_fallbacks`` counts the requests where it was
    not eligible, whose reference cost is the logged strongest model's instead.

    Quality, to judge the savings: ``reference_quality`` is the reference model's mean
    measured quality on the requests routed to it in the period (``None``: not measured,
    when none was rewarded), over ``reference_quality_n`` rewards; ``routed_quality`` is the
    mean measured quality of all routed traffic; ``quality_kept`` is their ratio.
    """

    group_by: tuple[str, ...]
    since: float | None
    until: float | None
    reference_model: str | None
    reference_named: bool
    reference_fallbacks: int
    reference_quality: float | None
    reference_quality_n: int
    routed_quality: float | None
    quality_kept: float | None
    rows: tuple[CostRow, ...]
    total: CostRow

    @property
    def reference_quality_source(self) -> str:
        """``"measured"`` or ``"not measured"``."""
        return "measured" if self.reference_quality is not None else "not measured"

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready; rows carry only the grouped fields.

        ``since``/``until`` are Unix seconds; ``period`` repeats them as ISO 8601 (UTC)."""
        return {
            "group_by": list(self.group_by),
            "since": self.since,
            "until": self.until,
            "period": {"since": _iso(self.since), "until": _iso(self.until)},
            "reference_model": self.reference_model,
            "reference_named": self.reference_named,
            "reference_fallbacks": self.reference_fallbacks,
            "reference_quality": self.reference_quality,
            "reference_quality_n": self.reference_quality_n,
            "reference_quality_source": self.reference_quality_source,
            "routed_quality": self.routed_quality,
            "quality_kept": self.quality_kept,
            "rows": [row.to_dict(self.group_by) for row in self.rows],
            "total": self.total.to_dict(()),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON (``null`` for figures that do not exist)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostReport:
        """The report :meth:`to_dict` (or the parsed :meth:`to_json`) describes."""
        group_by = tuple(str(g) for g in data["group_by"])
        names = {f.name for f in fields(CostRow)}

        def row(values: Mapping[str, Any]) -> CostRow:
            return CostRow(**{k: v for k, v in values.items() if k in names})

        return cls(group_by=group_by, since=data.get("since"), until=data.get("until"),
                   reference_model=data.get("reference_model"),
                   reference_named=bool(data.get("reference_named", False)),
                   reference_fallbacks=int(data.get("reference_fallbacks", 0)),
                   reference_quality=data.get("reference_quality"),
                   reference_quality_n=int(data.get("reference_quality_n", 0)),
                   routed_quality=data.get("routed_quality"),
                   quality_kept=data.get("quality_kept"),
                   rows=tuple(row(r) for r in data["rows"]), total=row(data["total"]))

    @classmethod
    def from_json(cls, text: str) -> CostReport:
        return cls.from_dict(json.loads(text))

    def to_csv(self) -> str:
        """A header row, one row per group, then the totals, whose group columns read
        ``(total)``. Empty cells for figures that do not exist (``mean_quality`` without
        rewards, ``savings_pct`` without a reference cost). Numbers are written in full
        (``repr``), so they read back exactly."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([*self.group_by, *_METRICS])
        for r in (*self.rows, self.total):
            groups = [TOTAL if r is self.total else getattr(r, g) for g in self.group_by]
            writer.writerow([*groups, *(_cell(getattr(r, m)) for m in _METRICS)])
        return buf.getvalue()

    def to_table(self) -> str:
        """A human-readable table with a header on the reference and quality."""
        lines = [f"cost report {_iso(self.since) or 'start'} .. {_iso(self.until) or 'now'}"
                 f" (UTC), by {', '.join(self.group_by) or 'nothing'}"]
        ref = self.reference_model or "none"
        if self.reference_named and self.reference_fallbacks:
            ref += (f" ({self.reference_fallbacks} request(s) where it was not eligible use "
                    f"the logged strongest model's cost)")
        lines.append(f"reference: {ref}")
        if self.reference_quality is not None:
            rq = (f"{self.reference_quality:.3f} measured on "
                  f"{self.reference_quality_n} request(s)")
        else:
            rq = "not measured"
        kept = "-" if self.quality_kept is None else f"{100 * self.quality_kept:.1f}%"
        lines.append(f"quality: routed {_fmt(self.routed_quality, '.3f')}, reference {rq}, "
                     f"kept {kept}")
        head = [*self.group_by, "requests", "rewarded", "pending", "spend $", "estimated $",
                "quality", "reference $", "saved $", "saved %"]
        body = []
        for r in (*self.rows, self.total):
            groups = [TOTAL if r is self.total else str(getattr(r, g)) for g in self.group_by]
            body.append([*groups, str(r.requests), str(r.rewarded), str(r.pending),
                         f"{r.spend_usd:.6f}", f"{r.estimated_usd:.6f}",
                         _fmt(r.mean_quality, ".3f"), f"{r.reference_cost_usd:.6f}",
                         f"{r.savings_usd:.6f}", _fmt(r.savings_pct, ".1f")])
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        n_groups = len(self.group_by)

        def fmt(cells: Sequence[str]) -> str:
            return "  ".join(c.ljust(w) if i < n_groups else c.rjust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

        rule = "  ".join("-" * w for w in widths)
        lines += ["", fmt(head), rule]
        if body[:-1]:
            lines += [*(fmt(b) for b in body[:-1]), rule]
        lines.append(fmt(body[-1]))
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def _hour(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:00Z")


def parse_time(text: str, *, end: bool = False) -> float:
    """A period bound as Unix seconds, from a UTC date ``YYYY-MM-DD``, an ISO 8601 time
    (UTC unless it says otherwise) or a number of Unix seconds. With ``end``, a bare date
    means the end of that day (the start of the next), so ``--until 2026-01-31`` includes
    the 31st.

    >>> parse_time("2026-01-01")
    1767225600.0
    >>> parse_time("2026-01-01", end=True) - parse_time("2026-01-01")
    86400.0
    >>> parse_time("1767225600.5")
    1767225600.5
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("a period bound must be a date YYYY-MM-DD, an ISO 8601 time "
                                "or Unix seconds")
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text) + (timedelta(days=1) if end else timedelta())
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        try:
            value = float(text)
        except ValueError:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            value = moment.timestamp()
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(f"period bound {text!r} is not a date YYYY-MM-DD, an ISO "
                                f"8601 time or Unix seconds ({exc})") from None
    checked = check_time("period bound", value)
    assert checked is not None
    return checked


@dataclass
class _Acc:
    requests: int = 0
    rewarded: int = 0
    pending: int = 0
    defaulted: int = 0
    reported: float = 0.0
    estimated: float = 0.0
    quality: float = 0.0
    reference: float = 0.0

    def add(self, other: _Acc) -> None:
        self.requests += other.requests
        self.rewarded += other.rewarded
        self.pending += other.pending
        self.defaulted += other.defaulted
        self.reported += other.reported
        self.estimated += other.estimated
        self.quality += other.quality
        self.reference += other.reference

    def row(self, group: Mapping[str, str]) -> CostRow:
        spend = self.reported + self.estimated
        saved = self.reference - spend
        return CostRow(
            **group, requests=self.requests, rewarded=self.rewarded, pending=self.pending,
            defaulted=self.defaulted, spend_usd=spend, reported_usd=self.reported,
            estimated_usd=self.estimated,
            mean_quality=self.quality / self.rewarded if self.rewarded else None,
            reference_cost_usd=self.reference, savings_usd=saved,
            savings_pct=100.0 * saved / self.reference if self.reference > 0 else None)


def _check_group_by(group_by: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(group_by, str):
        group_by = [g.strip() for g in group_by.split(",") if g.strip()]
    names = tuple(group_by)
    unknown = [g for g in names if g not in GROUPS]
    if unknown or len(set(names)) != len(names):
        raise InvalidInputError(f"group_by must name distinct groups among "
                                f"{', '.join(GROUPS)}; got {', '.join(map(str, names))}")
    return names


def _utc(t: float) -> str:
    """A Unix time as ``YYYY-MM-DD HH:MM:SS UTC`` (for messages).

    >>> _utc(0.0)
    '1970-01-01 00:00:00 UTC'
    """
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def parse_period(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """A period as a command line or a query gives it (either bound may be missing), as
    Unix seconds: ``until`` read as :func:`parse_time`'s end.

    >>> parse_period("2026-01-01", None)
    (1767225600.0, None)
    """
    return (parse_time(since) if since is not None else None,
            parse_time(until, end=True) if until is not None else None)


def check_period(since: float | None, until: float | None) -> tuple[float | None, float | None]:
    """A report's period ``[since, until)`` in Unix seconds, checked: :class:`InvalidInputError`
    for a bound that is no finite time, or an empty period."""
    lo, hi = check_time("since", since), check_time("until", until)
    if lo is not None and hi is not None and lo >= hi:
        raise InvalidInputError(f"the period is empty: since ({_utc(lo)}) must be before "
                                f"until ({_utc(hi)})")
    return lo, hi


def store_of(source: Router | Store) -> Store:
    """What a report reads: a Router's store, or the store given."""
    store = source.store if isinstance(source, Router) else source
    if not isinstance(store, Store):
        raise InvalidInputError("source must be a Router or a Store")
    return store


def cost_report(source: Router | Store, *, since: float | None = None,
                until: float | None = None, group_by: Sequence[str] | str = ("day", "model"),
                reference: str | None = None) -> CostReport:
    """Spend, requests and savings of the decisions logged in ``[since, until)`` (Unix
    seconds; ``None``: unbounded), grouped by any of :data:`GROUPS` (a sequence, or a
    comma-separated string), rows sorted by their group values.

    ``source`` is a :class:`Router` or its :class:`~bandit_router.core._store.Store` (every
    experiment arm on the database is included). ``reference`` (``provider/model``) names
    the model the savings are measured against, instead of the catalog's strongest logged
    with each decision. Unknown groups, a bad period or a malformed reference raise
    :class:`InvalidInputError`; so does a ``reference`` that is neither in the router's
    catalog nor among any request's eligible models in the period.
    """
    names = _check_group_by(group_by)
    lo, hi = check_period(since, until)
    if reference is not None and (not isinstance(reference, str) or reference.count("/") < 1
                                  or reference.startswith("/") or reference.endswith("/")
                                  or len(reference) > 300):
        raise InvalidInputError(f"reference must be a catalog key 'provider/model', "
                                f"got {reference!r}")
    store = store_of(source)

    cols: list[Any] = [EventRow.id, EventRow.created_at, EventRow.model_key, EventRow.tenant,
                       EventRow.reserved_usd, EventRow.reference_key,
                       EventRow.reference_cost_usd, RewardRow.quality, RewardRow.cost_usd,
                       RewardRow.is_default, ObservationRow.cost_usd]
    if reference is not None:
        cols.append(EventRow.actions)
    query = (select(*cols).outerjoin(RewardRow, RewardRow.event_id == EventRow.id)
             .outerjoin(ObservationRow, ObservationRow.event_id == EventRow.id)
             .where(EventRow.status != "history"))
    if lo is not None:
        query = query.where(EventRow.created_at >= lo)
    if hi is not None:
        query = query.where(EventRow.created_at < hi)

    groups: dict[tuple[str, ...], _Acc] = {}
    unestimated: dict[str, tuple[str, ...]] = {}  # event id -> group: no reserved estimate
    logged_refs: Counter[str] = Counter()
    quality_by_model: dict[str, list[float]] = {}  # model -> [sum, n] of rewarded quality
    fallbacks = matched = 0
    with store.engine.connect() as conn:
        result = conn.execute(query.execution_options(yield_per=2000))
        for row in result:
            (event_id, created_at, model_key, tenant, reserved, ref_key, ref_cost,
             quality, cost, is_default, observed) = row[:11]
            provider = model_key.split("/", 1)[0]
            values = {"day": _day(created_at), "hour": _hour(created_at),
                      "model": model_key, "provider": provider,
                      "key": tenant if tenant is not None else NO_KEY}
            gkey = tuple(values[g] for g in names)
            acc = groups.get(gkey)
            if acc is None:
                acc = groups[gkey] = _Acc()
            acc.requests += 1
            if quality is not None and not is_default:
                acc.rewarded += 1
                acc.reported += float(cost)
                acc.quality += float(quality)
                qm = quality_by_model.setdefault(model_key, [0.0, 0.0])
                qm[0] += float(quality)
                qm[1] += 1
            else:
                if quality is None:
                    acc.pending += 1
                else:
                    acc.defaulted += 1
                if observed is not None:  # the call's cost, observed when it ended
                    acc.reported += float(observed)
                elif reserved is not None:
                    acc.estimated += float(reserved)
                else:
                    unestimated[event_id] = gkey
            logged_refs[ref_key] += 1
            if reference is None:
                acc.reference += float(ref_cost)
            else:
                estimate = next((a.get("estimate", {}).get("cost_usd") for a in row[11] or ()
                                 if isinstance(a, dict) and a.get("key") == reference), None)
                if estimate is not None:
                    matched += 1
                    acc.reference += float(estimate)
                else:
                    fallbacks += 1
                    acc.reference += float(ref_cost)
        if unestimated:  # decisions logged before reservations: the chosen model's estimate
            ids = list(unestimated)
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                for event_id, actions, chosen in conn.execute(
                        select(EventRow.id, EventRow.actions, EventRow.chosen)
                        .where(EventRow.id.in_(chunk))):
                    groups[unestimated[event_id]].estimated += _chosen_estimate(actions, chosen)

    if reference is not None and matched == 0 and isinstance(source, Router) \
            and reference not in source.catalog:
        raise InvalidInputError(f"reference {reference!r} is not in the catalog and was not "
                                "eligible for any request in the period")
    if reference is not None:
        ref_model: str | None = reference
    elif logged_refs:
        ref_model = logged_refs.most_common(1)[0][0]
    elif isinstance(source, Router) and len(source.catalog):
        strongest = max(source.catalog, key=lambda s: (s.quality_score, s.output_price_per_1m))
        ref_model = strongest.key
    else:
        ref_model = None
    total = _Acc()
    rows = []
    for gkey in sorted(groups):
        total.add(groups[gkey])
        if names:  # without groups, the totals are the whole report
            rows.append(groups[gkey].row(dict(zip(names, gkey, strict=True))))
    ref_q = quality_by_model.get(ref_model or "")
    reference_quality = ref_q[0] / ref_q[1] if ref_q else None
    routed_quality = total.quality / total.rewarded if total.rewarded else None
    kept = (routed_quality / reference_quality
            if routed_quality is not None and reference_quality else None)
    return CostReport(group_by=names, since=lo, until=hi, reference_model=ref_model,
                      reference_named=reference is not None,
                      reference_fallbacks=fallbacks, reference_quality=reference_quality,
                      reference_quality_n=int(ref_q[1]) if ref_q else 0,
                      routed_quality=routed_quality, quality_kept=kept, rows=tuple(rows),
                      total=total.row({}))


def _chosen_estimate(actions: Iterable[Any] | None, chosen: int) -> float:
    try:
        return float(list(actions or ())[chosen]["estimate"]["cost_usd"])
    except (IndexError, KeyError, TypeError, ValueError):
        return 0.0
