"""``leadrouter serve``: resolve settings, make sure Redis is there, run uvicorn workers.

With no Redis URL an embedded ``valkey-server`` (AOF on, in the data dir) is started here, in
the supervisor, before the workers: they all share it, and it is stopped cleanly when the
service stops — or reused if it is still running from a previous start.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["serve"]


def serve(args: argparse.Namespace) -> int:
    from router.engine.errors import RulesetError
    from router.observability.logs import configure_logging, quiet
    from router.services.rules import RulesManager
    from router.settings import Settings, SettingsError

    try:
        settings = Settings.from_env(host=args.host, port=args.port, workers=args.workers,
                                     rules_dir=args.rules_dir, redis_url=args.redis_url,
                                     data_dir=args.data_dir,
                                     embedded_port=getattr(args, "embedded_port", None))
    except SettingsError as exc:
        print(f"leadrouter: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    from router.plugins.host import PluginError, PluginHost

    # Checks: the serving process(es) log what they load, once each (with one worker, that is
    # this process again).
    try:
        with quiet("leadrouter"):
            functions = PluginHost.from_settings(settings, metrics=False).functions()
    except PluginError as exc:
        print(f"leadrouter: {exc}", file=sys.stderr)
        return 1
    try:
        # The same check every worker makes at start-up (load, then the rules' own cases),
        # done once here so a bad ruleset gives one clear message instead of a worker crash.
        with quiet("leadrouter"):
            RulesManager(settings.rules_dir, require_tests=settings.require_rules_tests,
                         functions=functions, engine=settings.engine).load_initial()
    except RulesetError as exc:
        print(f"leadrouter: the rules in {settings.rules_dir} are not valid, not starting "
              "(fix them, or set LEADROUTER_REQUIRE_RULES_TESTS=false to skip the cases).\n"
              f"{exc.summary()}", file=sys.stderr)
        return 1

    import msgspec
    import uvicorn

    embedded = None
    if not settings.redis_url:
        from router.state.embedded import EmbeddedValkey, EmbeddedValkeyError

        embedded = EmbeddedValkey(Path(settings.data_dir), port=settings.embedded_port)
        try:
            url = embedded.start()
        except EmbeddedValkeyError as exc:
            print(f"leadrouter: cannot start the embedded Valkey: {exc}", file=sys.stderr)
            return 1
        print(f"leadrouter: embedded Valkey at {url} (data in {settings.data_dir}); tools "
              f"connect with `{embedded.connect_hint}`", file=sys.stderr)
        settings = msgspec.structs.replace(settings, redis_url=url, embedded_redis=True)
    elif (problem := _check_redis(settings)) is not None:
        print(f"leadrouter: {problem}", file=sys.stderr)
        return 1
    os.environ.update(settings.to_env())
    metrics_dir = _prepare_metrics_dir(settings.data_dir)
    print(f"leadrouter: serving on http://{settings.host}:{settings.port} with "
          f"{settings.workers} worker(s), rules from {settings.rules_dir}, "
          f"{_metrics_where(settings.workers, metrics_dir)}", file=sys.stderr)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that
    # would kill this process before the embedded Valkey is stopped. Turn it into an exit.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        uvicorn.run("router.app.application:app_from_env", factory=True, host=settings.host,
                    port=settings.port, workers=settings.workers, loop="uvloop",
                    http="httptools", log_level=settings.log_level, access_log=False,
                    lifespan="on", timeout_graceful_shutdown=10,
                    # X-Forwarded-For is believed only per LEADROUTER_TRUSTED_PROXIES
                    # (router/services/ratelimit.py), not by uvicorn's default of
                    # trusting 127.0.0.1.
                    proxy_headers=False)
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


def _check_redis(settings: Any) -> str | None:
    """Why the configured Redis cannot work (a malformed URL, an unreadable TLS file, a wrong
    password, a certificate that does not verify), or None. A Redis that is merely unreachable
    does not stop start-up: the service answers 503 until it is back."""
    import asyncio

    from router.state.keys import hash_tag
    from router.state.wire import SetupError, Wire, tls_options

    async def probe() -> None:
        # The deployment's own tag: on a cluster, the probe asks the node the service will use.
        wire = Wire(settings.redis_url, tls=tls_options(settings), connect_timeout=3.0,
                    hash_tag=hash_tag(settings.key_prefix))
        try:
            await wire.call("PING")
        finally:
            await wire.close()

    try:
        asyncio.run(probe())
    except ValueError as exc:
        return f"the Redis settings cannot work: {exc}"
    except SetupError as exc:
        return f"cannot use Redis, not starting: {exc}"
    except OSError as exc:
        print(f"leadrouter: Redis is not reachable yet ({exc}); answering 503 until it is",
              file=sys.stderr)
    return None


def _prepare_metrics_dir(data_dir: str) -> Path:
    """Point every worker's prometheus-client at one fresh multiprocess directory.

    ``PROMETHEUS_MULTIPROC_DIR`` if the environment sets it, else ``<data dir>/metrics``; the
    files a previous run left there are removed first (their counters would be added to this
    run's). This process has imported prometheus-client already (the checks above), so it keeps
    its own values in memory and writes no files; with one worker uvicorn runs the app right
    here, and ``/metrics`` reads that memory (``metrics.multiprocess_dir()``).
    """
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or Path(data_dir) / "metrics")
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory.resolve())
    return directory


def _metrics_where(workers: int, directory: Path) -> str:
    """Where this run's metrics live, as the start-up line says it. With one worker the app
    runs in this process: if prometheus-client was imported here before the directory was set,
    it keeps its values in memory (``metrics.multiprocess_dir()``) and the directory stays
    unused."""
    values = sys.modules.get("prometheus_client.values")
    in_memory = workers == 1 and values is not None \
        and getattr(values, "ValueClass", None) is getattr(values, "MutexValue", object())
    if in_memory:
        return "metrics in this process's memory (one worker)"
    return f"metrics in {directory} (one file set per process, summed by /metrics)"


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # a requested, graceful stop (as with several workers)
