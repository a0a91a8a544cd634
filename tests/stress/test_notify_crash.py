"""A delivery process SIGKILLed mid-send: after a restart every recipient has its
notification, and each webhook request of it carries the same idempotency key.

The guarantee is *at least once, with a stable key*: the killed sender had posted the
webhook but not recorded it, so the new sender posts it again when the claim's lease
lapses, under the same key; a receiver that keeps keys sees one notification. The in-app
inbox is *exactly once*: its row and the delivery's "sent" commit together.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from longops import EnqueueRequest, Longops
from longops.domain.notify import DeliveryStatus
from longops.notify.secrets import SecretBox
from longops.testing import Runner
from notify_receivers import webhook
from procs import wait_for

pytestmark = pytest.mark.slow

COMPANY = "ACME"


def start_sender(db_url: str, key: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, LONGOPS_SECRET_KEY=key)
    cmd = [
        sys.executable, "-m", "longops.cli.main", "--database-url", db_url,
        "notifications", "deliver", "--lease", "2", "--interval", "0.1",
    ]  # fmt: skip
    with log.open("ab") as sink:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env=env, stdout=sink, stderr=sink)


def test_a_sender_killed_mid_send_delivers_once_per_key_after_restart(
    db_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "senders.log"
    key = SecretBox.generate_key()
    app = Longops(db_url, secret_key=key)
    app.add_company(COMPANY)
    app.security.add_user("ann")

    @app.task(name="boom", max_attempts=1)
    def boom() -> None:
        raise RuntimeError("kaput")

    procs: list[subprocess.Popen[bytes]] = []
    with webhook() as stuck, webhook() as other:
        setup = app.notification_setup
        setup.add_channel(COMPANY, "stuck", stuck.url())
        setup.add_channel(COMPANY, "other", other.url())
        setup.add_admin(COMPANY, "ann")
        to = ["channel:stuck", "channel:other", "admins"]
        setup.add_rule(COMPANY, "everyone", on="failed", to=to)
        stuck.blocking = True  # the first request hangs: the sender dies inside the send
        app.service.enqueue(EnqueueRequest(task="boom", company=COMPANY))
        Runner(app).run_until_idle()
        try:
            first = start_sender(db_url, key, log)
            procs.append(first)
            assert stuck.arrived.wait(30), "the first sender never posted"
            first.send_signal(signal.SIGKILL)
            assert first.wait(10) == -signal.SIGKILL
            [sent_once] = stuck.keys()
            stuck.blocking = False
            stuck.release.set()

            second = start_sender(db_url, key, log)
            procs.append(second)

            def all_sent() -> bool:
                found = setup.list_deliveries(COMPANY)
                return len(found) == 3 and all(d.status is DeliveryStatus.SENT for d in found)

            wait_for(all_sent, timeout=60, what=f"all sent after the restart (see {log})")
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        by = {d.recipient: d for d in setup.list_deliveries(COMPANY)}
        # The stuck channel was posted twice, under one key: once per key for a receiver
        # that drops repeats.
        assert len(stuck.keys()) == 2
        assert set(stuck.keys()) == {sent_once} == {str(by["channel:stuck"].idem_key)}
        assert by["channel:stuck"].attempts == 2
        assert other.keys() == [str(by["channel:other"].idem_key)]
        # The inbox: exactly once.
        assert [n.title for n in app.store.list_notifications(COMPANY, "ann")] == ["boom"]
    app.close()
