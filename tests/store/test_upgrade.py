"""Migrations on start: several processes starting at once on an empty PostgreSQL database."""

from __future__ import annotations

import threading

from sqlalchemy import text

from triage.store.db import Store


def test_concurrent_first_starts_migrate_once(postgres_url: str) -> None:
    stores = [Store(postgres_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def start(store: Store) -> None:
        barrier.wait()
        try:
            store.upgrade()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        with stores[0].engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        for store in stores:
            store.close()
