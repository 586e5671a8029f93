"""Fencing tokens for the jobs of a distributed sweep: a cut-off attempt cannot commit after its retry began.

A worker that loses its connection to the queue (a network partition, a stopped VM that wakes up again) may
still be crawling when its job is declared stalled and handed to another worker. Each attempt therefore takes
the shard's next ``fence`` value when it starts (:func:`claim`), and every transaction the attempt's crawl
commits first reads the shard's current fence ``FOR SHARE`` (:func:`guard_commits`): if a newer attempt has
taken the shard since, the transaction is refused and the cut-off process ends itself at once. ``FOR SHARE``
makes the check and the commit one step: a newer :func:`claim` (``UPDATE``) waits for a commit that checked
before it, and any commit that checks after it sees the new value.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from crawler.errors import TertibError
from storage import custody

logger = logging.getLogger(__name__)

FENCED_OUT_EXIT = 75  # EX_TEMPFAIL: the job belongs to another attempt now


class FencedOut(TertibError):
    """This attempt's shard was taken over by a newer attempt: nothing more may be committed."""

    exit_code = FENCED_OUT_EXIT


_READ_FENCE = {
    "postgresql": text("SELECT fence FROM sweep_shards WHERE id = :id FOR SHARE"),
    # SQLite: one writer at a time anyway; a plain read inside the write transaction
    "sqlite": text("SELECT fence FROM sweep_shards WHERE id = :id"),
}


def chain_name(shard_id: int, fence: int) -> str:
    """The custody chain of one attempt of a job (``storage.custody.use_chain``)."""
    return f"sweep-shard:{shard_id}:{fence}"


def claim(session: Session, shard_id: int, *, worker: str, job_id: int | None) -> int | None:
    """Start a new attempt of shard ``shard_id``: its next fence value, or None when the shard is done.

    The previous attempt's custody chain (a worker that died mid-job) is anchored into the global chain
    here: nothing can be appended to it any more.
    """
    row = session.execute(
        text(
            "UPDATE sweep_shards SET fence = fence + 1, attempts = attempts + 1, status = 'running', "
            "worker = :worker, job_id = :job, started_at = CURRENT_TIMESTAMP "
            "WHERE id = :id AND status NOT IN ('done', 'failed') RETURNING fence"
        ),
        {"id": shard_id, "worker": worker[:200], "job": job_id},
    ).first()
    if row is None:
        return None
    fence = int(row[0])
    if fence > 1:
        custody.anchor_chains(session, [chain_name(shard_id, fence - 1)], actor=worker)
    return fence


def current(session: Session, shard_id: int) -> int | None:
    value = session.execute(_READ_FENCE[session.get_bind().dialect.name], {"id": shard_id}).scalar()
    return int(value) if value is not None else None


def guard_commits(shard_id: int, fence: int, *, exit_on_loss: bool = True) -> Any:
    """From now on every session in this process checks the fence before it commits.

    On a lost fence the transaction is refused (:class:`FencedOut`); with ``exit_on_loss`` the process also
    ends at once (exit 75), since everything it would still do belongs to the newer attempt. Returns the
    listener (for :func:`unguard`).
    """

    def check(session: Session) -> None:
        now = current(session, shard_id)
        if now == fence:
            return
        message = f"shard {shard_id}: attempt {fence} was superseded by attempt {now}; nothing committed"
        if exit_on_loss:
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()
            os._exit(FENCED_OUT_EXIT)  # the open transaction dies with the connection: rolled back
        raise FencedOut(message)

    event.listen(Session, "before_commit", check)
    return check


def unguard(listener: Any) -> None:
    event.remove(Session, "before_commit", listener)


__all__ = ["FENCED_OUT_EXIT", "FencedOut", "chain_name", "claim", "current", "guard_commits", "unguard"]
