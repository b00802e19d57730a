"""The ``bandit-router`` command: the library's commands (:mod:`bandit_router.cli`: demo,
replay, bench) and the service's: ``serve`` (the HTTP service), ``keys`` (API keys),
``report`` (cost report from the service's database) and ``warm-start`` (history learned
into it before serving)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bandit_router import cli as library_cli

__all__ = ["main"]


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from . import Settings, create_app
    from .limits import HeadDeadlineH11

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("role", args.role)) if v is not None}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    # h11 (not httptools): it caps the request head, and HeadDeadlineH11 times it out
    protocol = type("HTTPProtocol", (HeadDeadlineH11,),
                    {"head_timeout_s": settings.header_timeout_s})
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=args.log_level, http=protocol,
                h11_max_incomplete_event_size=settings.max_header_bytes)
    return 0


def _keys(args: argparse.Namespace) -> int:
    from bandit_router import InvalidInputError

    from . import KeyStore, Settings

    try:
        store = KeyStore(args.database_url or Settings().database_url)
    except InvalidInputError as exc:  # a database URL it cannot use
        print(f"bandit-router keys: {exc}", file=sys.stderr)
        return 2
    try:
        days = getattr(args, "expires_in_days", None)
        expires_in_s = days * 86_400.0 if days is not None else None
        if args.action == "create":
            key, secret = store.create(name=args.name, scope=args.scope,
                                       expires_in_s=expires_in_s)
            print(f"created key {key.id} ({key.scope}, '{key.name}'); it is shown only once:")
            print(secret)
        elif args.action == "rotate":
            try:
                key, secret = store.rotate(args.id, grace_s=args.grace_hours * 3600.0,
                                           expires_in_s=expires_in_s)
            except KeyError:
                print(f"no live key with id {args.id}", file=sys.stderr)
                return 1
            print(f"key {args.id} stops working in {args.grace_hours:g} h; its successor "
                  f"{key.id} ({key.scope}, '{key.name}') is shown only once:")
            print(secret)
        elif args.action == "revoke":
            if not store.revoke(args.id):
                print(f"no live key with id {args.id}", file=sys.stderr)
                return 1
            print(f"revoked key {args.id}")
        else:
            now = time.time()
            for k in store.list():
                expires = ("" if k.expires_at is None else time.strftime(
                    " expires %Y-%m-%d %H:%M UTC", time.gmtime(k.expires_at)))
                print(f"{k.id:>4}  {k.scope:<6}  {k.prefix}…  {k.state(now):<7}  {k.name}"
                      f"{expires}")
    finally:
        store.close()
    return 0


def _report(args: argparse.Namespace) -> int:
    from bandit_router import InvalidInputError
    from bandit_router.core._store import Store
    from bandit_router.eval.fixed import FixedModelsReport, fixed_models
    from bandit_router.eval.reports import CostReport, cost_report, parse_period

    url = args.database_url
    if url is None:
        from . import Settings

        url = Settings().database_url
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = url[len("sqlite:///"):].split("?", 1)[0]
        if path and not os.path.exists(path):  # do not create an empty database by mistake
            print(f"no database at {path}", file=sys.stderr)
            return 1
    if args.fixed_models:
        wrong = [name for name, given in (("--format csv", args.format == "csv"),
                                          ("--by", args.by is not None),
                                          ("--reference", args.reference is not None))
                 if given]
    else:
        wrong = [name for name, given in (("--level", args.level is not None),
                                          ("--arm", args.arm is not None)) if given]
    if wrong:
        print(f"bandit-router report: {', '.join(wrong)} "
              f"{'is not' if len(wrong) == 1 else 'are not'} for "
              f"{'--fixed-models' if args.fixed_models else 'the cost report'}",
              file=sys.stderr)
        return 2
    try:
        since, until = parse_period(args.since, args.until)
        store = Store(url)
        try:  # (an option not given: the library's default)
            report: CostReport | FixedModelsReport = (
                fixed_models(store, since=since, until=until, arm=args.arm,
                             **({} if args.level is None else {"level": args.level}))
                if args.fixed_models else
                cost_report(store, since=since, until=until, reference=args.reference,
                            **({} if args.by is None else {"group_by": args.by})))
        finally:
            store.close()
    except InvalidInputError as exc:
        print(f"bandit-router report: {exc}", file=sys.stderr)
        return 2
    if isinstance(report, CostReport):
        text = {"table": report.to_table, "csv": report.to_csv, "json": report.to_json}[
            args.format]()
    else:  # (no CSV: refused above)
        text = report.to_table() if args.format == "table" else report.to_json()
    if not text.endswith("\n"):
        text += "\n"
    if args.output:
        try:
            with open(args.output, "w", newline="") as fh:
                fh.write(text)
        except OSError as exc:  # a folder that does not exist, no permission
            print(f"bandit-router report: cannot write {args.output}: {exc.strerror}",
                  file=sys.stderr)
            return 2
        print(f"{'fixed-model' if args.fixed_models else 'cost'} report "
              f"({len(report.rows)} row(s)) written to {args.output}")
    else:
        sys.stdout.write(text)
    return 0


def _warm_start(args: argparse.Namespace) -> int:
    import csv

    from sqlalchemy.engine import make_url

    from bandit_router import BanditRouterError, LearnerLock, load_logged_decisions
    from bandit_router.eval.datasets import load_table

    from . import Settings
    from .app import build_router, stop_embedding_worker

    if not os.path.isfile(args.file):
        print(f"bandit-router warm-start: no file at {args.file}", file=sys.stderr)
        return 2
    try:
        # the service's own settings, so its embedder, catalog and policy learn the history;
        # this process learns it (as the "all" role does) and checkpoints it on closing
        overrides = {"database_url": args.database_url} if args.database_url else {}
        settings = Settings(**overrides, role="all")  # type: ignore[arg-type]
        history: Any = (load_logged_decisions(args.file) if args.logged
                        else load_table(args.file))
        lock = LearnerLock(settings.database_url)
        if not lock.acquire():  # a "learner" replica learns this log: it must be the one
            print("bandit-router warm-start: cannot take the database's learner lock (a "
                  "learner replica holds it, or the database cannot be reached); stop the "
                  "learners first (docs/service.md)", file=sys.stderr)
            return 1
        try:
            router = build_router(settings)
            try:
                learned = router.warm_start(history)
            finally:
                try:
                    router.close()
                finally:
                    stop_embedding_worker(router)
        finally:
            lock.release()
    except (BanditRouterError, ValueError, OSError, EOFError, csv.Error) as exc:
        print(f"bandit-router warm-start: {exc}", file=sys.stderr)
        return 2
    kind = "logged decisions" if args.logged else "labelled tasks"
    where = make_url(settings.database_url).render_as_string(hide_password=True)
    print(f"warm start from {args.file} ({kind}): {learned} reward(s) learned and logged "
          f"in {where} (records already there were skipped)")
    return 0


def add_commands(sub: Any) -> None:
    """Add ``serve``, ``keys``, ``report`` and ``warm-start`` to the library parser's
    subparsers."""
    serve = sub.add_parser("serve", help="run the HTTP service (settings: BANDIT_ROUTER_* "
                                         "environment variables or BANDIT_ROUTER_CONFIG_FILE)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--role", choices=["all", "api", "learner"], default=None,
                       help="all (default): serve and learn; api: serve the published model; "
                            "learner: learn and publish while holding the learner lock "
                            "(several replicas on PostgreSQL: docs/service.md)")
    serve.set_defaults(func=_serve)


    keys = sub.add_parser("keys", help="create, revoke and list API keys")
    keys.add_argument("--database-url", default=None,
                      help="default: BANDIT_ROUTER_DATABASE_URL or the service's default")
    ksub = keys.add_subparsers(dest="action", required=True)
    create = ksub.add_parser("create")
    create.add_argument("--scope", choices=["client", "admin"], default="client")
    create.add_argument("--name", default="")
    create.add_argument("--expires-in-days", type=float, default=None,
                        help="the key stops working after this many days (default: never)")
    rotate = ksub.add_parser("rotate", help="a new secret for a key's holder: same name, "
                                            "scope and events; the old one keeps working "
                                            "for the grace period")
    rotate.add_argument("id", type=int)
    rotate.add_argument("--grace-hours", type=float, default=24.0)
    rotate.add_argument("--expires-in-days", type=float, default=None)
    revoke = ksub.add_parser("revoke")
    revoke.add_argument("id", type=int)
    ksub.add_parser("list")
    keys.set_defaults(func=_keys)


    report = sub.add_parser("report", help="cost report: spend and requests by day, model, "
                                           "provider and key; savings against a reference "
                                           "(or, --fixed-models, the router against always "
                                           "each model)")
    report.add_argument("--database-url", default=None,
                        help="default: BANDIT_ROUTER_DATABASE_URL or the service's default")
    report.add_argument("--since", default=None,
                        help="first UTC day YYYY-MM-DD (or ISO 8601 time, Unix seconds)")
    report.add_argument("--until", default=None,
                        help="last UTC day YYYY-MM-DD, included (or an ISO 8601 time, Unix "
                             "seconds: excluded)")
    report.add_argument("--by", default=None,
                        help="comma-separated groups among day, hour, model, provider, key "
                             "(default: day,model; empty for totals only)")
    report.add_argument("--reference", default=None, metavar="PROVIDER/MODEL",
                        help="measure savings against this model (default: the catalog's "
                             "strongest, as logged with each decision)")
    report.add_argument("--fixed-models", action="store_true",
                        help="instead: the router against always each model on the "
                             "rewarded requests (inverse propensity from the logged "
                             "probabilities, paired, with intervals and a verdict)")
    report.add_argument("--level", type=float, choices=[0.9, 0.95, 0.99], default=None,
                        help="with --fixed-models: the intervals' confidence level "
                             "(default 0.95)")
    report.add_argument("--arm", default=None,
                        help="with --fixed-models: one experiment arm's requests (default: "
                             "every arm's)")
    report.add_argument("--format", choices=["table", "csv", "json"], default="table")
    report.add_argument("--output", default=None, metavar="FILE",
                        help="write the report here instead of to standard output")
    report.set_defaults(func=_report)

    warm = sub.add_parser(
        "warm-start", help="learn from history before (or between) serving: labelled tasks "
                           "with every model's outcome, or another system's logged decisions, "
                           "into the service's database (settings as for serve)")
    warm.add_argument("file", help="a RouterBench table or a JSONL/CSV log with every model's "
                                   "outcome per task (as 'replay' reads), or with --logged "
                                   "logged decisions (load_logged_decisions' format)")
    warm.add_argument("--logged", action="store_true",
                      help="the file holds logged bandit decisions, one chosen model each")
    warm.add_argument("--database-url", default=None,
                      help="default: BANDIT_ROUTER_DATABASE_URL or the service's default")
    warm.set_defaults(func=_warm_start)


def main(argv: Sequence[str] | None = None) -> int:
    return library_cli.main(argv, extend=add_commands)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
